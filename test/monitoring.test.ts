/**
 * Monitoring through the real gateway (real php-cgi, a private redis-server, real nginx + php-fpm, headless
 * Chromium): each metric moves when it should, counters survive a reload, php-fpm's status page has the keys
 * and layout real php-fpm 8.2 gives, and the dashboard shows the gateway's own history on its first load.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../config/load.js';
import { chromiumSkip, launchChromium } from './support/browser.js';
import { selfSigned } from './support/certs.js';
import { PHP_USER_ENV, request, startGateway, type RunningGateway } from './support/gateway.js';
import { nginxFpmMissing, startNginxFpm } from './support/nginx-fpm.js';
import { eventuallyAsync } from './support/proc.js';
import { startRedis } from './support/redis.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-monitoring-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function docroot(): string {
  const dir = fs.mkdtempSync(path.join(tmp, 'doc-'));
  fs.writeFileSync(path.join(dir, 'index.php'), '<?php echo "hello";');
  fs.writeFileSync(path.join(dir, 'slow.php'), '<?php usleep(1500000); echo "slow";');
  fs.writeFileSync(path.join(dir, 'hello.txt'), 'hello');
  for (const d of ['a', 'b', 'c1', 'c2']) {
    fs.mkdirSync(path.join(dir, d));
    fs.writeFileSync(path.join(dir, d, 'x.php'), '<?php echo "x";');
  }
  return dir;
}

/** One metric's value from /metrics (labels as written, in prom-client's order), or null when absent. */
async function metric(gw: RunningGateway, name: string, labels = ''): Promise<number | null> {
  const text = (await request(gw.adminBase, '/metrics')).text;
  const line = text.split('\n').find((l) => l.startsWith(labels === '' ? `${name} ` : `${name}{${labels}} `));
  return line === undefined ? null : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function reloadWith(gw: RunningGateway, text: string, dir: string): Promise<void> {
  const next = loadConfig({ text, file: 'test.yaml', env: { PATH: process.env['PATH'], ...PHP_USER_ENV }, overrides: { docroot: dir } });
  await gw.gateway.reload({ ...next, server: gw.config.server, admin: gw.config.admin, php: { ...next.php, socket_dir: gw.config.php.socket_dir } });
}

const CONFIG = (points: number, ttl = 60): string => `php: { worker_count: 2 }
rate_limit:
  rules:
    - { pattern: "/a/*", points: ${points}, duration_s: 60 }
    - { pattern: "/b/*", points: 2, duration_s: 60 }
cache:
  rules:
    - { pattern: "/c1/*", ttl_s: ${ttl} }
    - { pattern: "/c2/*", ttl_s: 60 }
`;

describe('metrics through the real gateway', () => {
  let dir: string;
  let gw: RunningGateway;
  before(async () => {
    dir = docroot();
    gw = await startGateway(CONFIG(1), { docroot: dir, admin: true });
  });
  after(() => gw.stop());

  test('open connections while a client holds one; accepted connections counted', async () => {
    const accepted = (await metric(gw, 'phpgate_connections_accepted_total'))!;
    assert.equal(await metric(gw, 'phpgate_connections_open', 'protocol="http1"'), 0);
    const socket = net.connect(gw.port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    try {
      socket.write('GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n');
      await new Promise((resolve) => socket.once('data', resolve));
      assert.equal(await metric(gw, 'phpgate_connections_open', 'protocol="http1"'), 1, 'the kept-alive connection is open');
      assert.equal(await metric(gw, 'phpgate_connections_accepted_total'), accepted + 1);
    } finally {
      socket.destroy();
    }
    await eventuallyAsync('the connection counted closed', async () => (await metric(gw, 'phpgate_connections_open', 'protocol="http1"')) === 0);
  });

  test('429s per rule, with two rules; status classes count them apart from 4xx', async () => {
    const statuses = [];
    for (const p of ['/a/x.php', '/a/x.php', '/a/x.php', '/b/x.php', '/b/x.php', '/b/x.php']) statuses.push((await request(gw.base, p)).status);
    assert.deepEqual(statuses, [200, 429, 429, 200, 200, 429]);
    assert.equal(await metric(gw, 'phpgate_rate_limit_refused_total', 'rule="/a/*"'), 2);
    assert.equal(await metric(gw, 'phpgate_rate_limit_refused_total', 'rule="/b/*"'), 1);
    assert.equal(await metric(gw, 'phpgate_responses_total', 'class="429"'), 3);
    assert.equal(await metric(gw, 'phpgate_rate_limit_store_state', 'store="memory",state="local"'), 1);
  });

  test('cache hits and misses per rule, beside the totals', async () => {
    const xc = async (p: string): Promise<unknown> => (await request(gw.base, p)).headers['x-cache'];
    assert.deepEqual([await xc('/c1/x.php'), await xc('/c1/x.php'), await xc('/c1/x.php'), await xc('/c2/x.php')], ['MISS', 'HIT', 'HIT', 'MISS']);
    assert.equal(await metric(gw, 'phpgate_cache_rule_requests_total', 'rule="/c1/*",cache="MISS"'), 1);
    assert.equal(await metric(gw, 'phpgate_cache_rule_requests_total', 'rule="/c1/*",cache="HIT"'), 2);
    assert.equal(await metric(gw, 'phpgate_cache_rule_requests_total', 'rule="/c2/*",cache="MISS"'), 1);
    assert.equal(await metric(gw, 'phpgate_cache_rule_requests_total', 'rule="/c2/*",cache="HIT"'), 0);
    assert.equal(await metric(gw, 'phpgate_cache_requests_total', 'cache="HIT"'), 2);
  });

  test('counters survive a reload that replaces the limiter, the cache and the pools', async () => {
    const names: Array<[string, string]> = [
      ['phpgate_rate_limit_refused_total', 'rule="/a/*"'],
      ['phpgate_responses_total', 'class="2xx"'],
      ['phpgate_responses_total', 'class="429"'],
      ['phpgate_cache_rule_requests_total', 'rule="/c1/*",cache="HIT"'],
      ['phpgate_connections_accepted_total', ''],
      ['phpgate_requests_total', 'pool="default",status="200"'],
    ];
    const before = await Promise.all(names.map(([n, l]) => metric(gw, n, l)));
    await reloadWith(gw, CONFIG(5, 30), dir); // changed rules: a new limiter, a new cache, new pools
    const afterReload = await Promise.all(names.map(([n, l]) => metric(gw, n, l)));
    names.forEach(([n, l], i) => assert.ok(afterReload[i]! >= before[i]!, `${n}{${l}}: ${before[i]} before the reload, ${afterReload[i]} after`));
    assert.equal(afterReload[0], before[0]);
    assert.equal((await request(gw.base, '/c1/x.php')).headers['x-cache'], 'MISS', 'the cache itself was replaced');
    assert.equal(await metric(gw, 'phpgate_cache_rule_requests_total', 'rule="/c1/*",cache="MISS"'), 2, 'counted on from where it was');
  });
});

describe('HTTP/2 connections', () => {
  test('an HTTP/2 session held open counts as one http2 connection, and is gone once closed', async () => {
    const dir = docroot();
    const certs = selfSigned(tmp, 'mon');
    const gw = await startGateway(`server:\n  tls:\n    cert: ${certs.cert}\n    key: ${certs.key}\nphp: { worker_count: 1 }\n`, {
      docroot: dir,
      admin: true,
    });
    const session = http2.connect(`https://127.0.0.1:${gw.port}`, { rejectUnauthorized: false });
    try {
      await new Promise<void>((resolve, reject) => {
        const s = session.request({ ':path': '/hello.txt' });
        s.on('response', () => s.resume());
        s.on('end', () => resolve());
        s.on('error', reject);
        s.end();
      });
      assert.equal(await metric(gw, 'phpgate_connections_open', 'protocol="http2"'), 1);
      assert.equal(await metric(gw, 'phpgate_connections_open', 'protocol="http1"'), 0);
      session.close();
      await eventuallyAsync('the session counted closed', async () => (await metric(gw, 'phpgate_connections_open', 'protocol="http2"')) === 0);
    } finally {
      session.destroy();
      await gw.stop();
    }
  });
});

describe('the rate-limit store state', () => {
  test('Redis stopped: connected → fallback, errors counted; Redis back: connected again (degraded while errors are recent)', async () => {
    const dir = docroot();
    let redis = await startRedis();
    const port = redis.port;
    const gw = await startGateway(
      `php: { worker_count: 1 }\nrate_limit:\n  store: ${redis.url}\n  rules: [{ pattern: "/a/*", points: 100, duration_s: 60 }]\n`,
      {
        docroot: dir,
        admin: true,
      },
    );
    const store = `store="redis://127.0.0.1:${port}"`;
    const state = async (): Promise<string | undefined> => {
      const text = (await request(gw.adminBase, '/metrics')).text;
      return /^phpgate_rate_limit_store_state\{store="[^"]+",state="(\w+)"\} 1$/m.exec(text)?.[1];
    };
    try {
      await eventuallyAsync('connected', async () => (await state()) === 'connected');
      assert.equal(await metric(gw, 'phpgate_rate_limit_store_errors_total', store), 0);
      await redis.stop('SIGKILL');
      await eventuallyAsync('fallback once Redis is gone', async () => (await state()) === 'fallback');
      // Each failed reconnection attempt is an error (ioredis retries within 200 ms).
      await eventuallyAsync('store errors counted', async () => ((await metric(gw, 'phpgate_rate_limit_store_errors_total', store)) ?? 0) >= 1);
      assert.equal((await request(gw.base, '/a/x.php')).status, 200, 'still served, counted locally');
      redis = await startRedis({ port });
      await eventuallyAsync('back once Redis is', async () => ['degraded', 'connected'].includes((await state()) ?? ''), 15_000);
    } finally {
      await gw.stop();
      await redis.stop();
    }
  });
});

/** `name:` keys of php-fpm's text page, in order (the process blocks after the `****` lines). */
function textKeys(body: string): string[] {
  return body
    .split('\n')
    .filter((l) => l.includes(':') && !l.startsWith('*'))
    .map((l) => l.slice(0, l.indexOf(':')));
}

/** Each key with the JSON type of its value, in order. */
function shape(o: Record<string, unknown>): string[] {
  return Object.entries(o).map(([k, v]) => `${k}:${Array.isArray(v) ? 'array' : typeof v}`);
}

async function get(base: string, p: string): Promise<{ status: number; type: string; headers: http.IncomingHttpHeaders; text: string }> {
  const r = await request(base, p);
  return { status: r.status, type: String(r.headers['content-type']), headers: r.headers, text: r.text };
}

describe("php-fpm's status page", () => {
  const missing = nginxFpmMissing("php-fpm's status page compared with real php-fpm");
  test('the keys, their order and types, the text layout and the headers equal real php-fpm 8.2', { skip: missing }, async () => {
    const dir = docroot();
    const fpm = await startNginxFpm(dir, {
      workers: 2,
      poolDirectives: { 'pm.status_path': '/fpm-status' },
      serverDirectives: [
        'location = /fpm-status { include /etc/nginx/fastcgi_params; fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name; fastcgi_pass php; }',
      ],
    });
    const gw = await startGateway('php: { worker_count: 2 }\n', { docroot: dir, admin: true });
    try {
      const fpmBase = `http://127.0.0.1:${fpm.port}`;
      await request(fpmBase, '/index.php?x=1');
      await request(gw.base, '/index.php?x=1');
      for (const q of ['?json&full', '?json']) {
        const real = await get(fpmBase, `/fpm-status${q}`);
        const ours = await get(gw.adminBase, `/fpm-status${q}`);
        assert.equal(ours.status, 200);
        assert.equal(ours.type, real.type, `${q}: Content-Type`);
        const r = JSON.parse(real.text) as Record<string, unknown>;
        const o = JSON.parse(ours.text) as Record<string, unknown>;
        assert.deepEqual(shape(o), shape(r), `${q}: top-level keys and types`);
        if (q.includes('full')) {
          const rp = r['processes'] as Array<Record<string, unknown>>;
          const op = o['processes'] as Array<Record<string, unknown>>;
          assert.ok(rp.length > 0 && op.length > 0);
          assert.deepEqual(shape(op[0]!), shape(rp[0]!), `${q}: per-process keys and types`);
          // php-fpm writes the CPU share with two decimals, and escapes "/" in strings: byte-level parsers see the same.
          assert.match(real.text, /"last request cpu":\d+\.\d\d,/);
          assert.match(ours.text, /"last request cpu":\d+\.\d\d,/);
          assert.match(ours.text, /"request uri":"\\\/index\.php\?…"/);
        }
        for (const h of ['expires', 'cache-control']) assert.equal(ours.headers[h], real.headers[h], `${q}: ${h}`);
      }
      for (const q of ['', '?full']) {
        const real = await get(fpmBase, `/fpm-status${q}`);
        const ours = await get(gw.adminBase, `/fpm-status${q}`);
        assert.equal(ours.type, real.type, `text${q}: Content-Type`);
        const realKeys = textKeys(real.text);
        const ourKeys = textKeys(ours.text);
        // One process block each is enough to compare (the pools' sizes differ at any instant).
        const block = (keys: string[]): string[] => keys.slice(0, keys.indexOf('last request memory') + 1 || keys.length);
        assert.deepEqual(block(ourKeys), block(realKeys), `text${q}: names and order`);
        // The value column starts at the same place: the 22-column alignment.
        assert.deepEqual(
          ours.text
            .split('\n')
            .slice(0, 14)
            .map((l) => /^[^:]+:\s+/.exec(l)?.[0].length),
          real.text
            .split('\n')
            .slice(0, 14)
            .map((l) => /^[^:]+:\s+/.exec(l)?.[0].length),
        );
        assert.match(ours.text, /^start time:\s+\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}$/m);
      }
      assert.equal((await request(gw.adminBase, '/fpm-status?pool=nope')).status, 404);
      assert.equal((await request(gw.adminBase, '/fpm-status?pool=default&json&full')).status, 200);
      assert.equal((await request(gw.adminBase, '/fpm-status?xml')).status, 400, 'a format not served is refused, not answered as text');
    } finally {
      await gw.stop();
      await fpm.stop();
    }
  });

  test('the request URI is shown without its query string (a token in it never appears), busy and idle', async () => {
    const dir = docroot();
    const gw = await startGateway('php: { worker_count: 2 }\n', { docroot: dir, admin: true });
    try {
      await request(gw.base, '/index.php?password=hunter2');
      const slow = request(gw.base, '/slow.php?token=supersecret');
      await eventuallyAsync('the slow request running', async () => (await get(gw.adminBase, '/fpm-status?full')).text.includes('Running'));
      const pages = await Promise.all(['/fpm-status?full', '/fpm-status?json&full', '/status.json'].map((p) => get(gw.adminBase, p)));
      for (const p of pages) {
        assert.doesNotMatch(p.text, /supersecret|hunter2/);
        assert.match(p.text, /slow\.php\?…/);
      }
      assert.match(pages[0]!.text, /request method:\s+GET\n/);
      assert.equal((await slow).status, 200);
      // Idle, a worker shows its last request (as php-fpm), redacted too, with how long it took (µs).
      const idle = (await get(gw.adminBase, '/fpm-status?full')).text;
      assert.doesNotMatch(idle, /Running|supersecret|hunter2/);
      assert.match(idle, /request duration:\s+(\d+)\nrequest method:\s+GET\nrequest URI:\s+\/slow\.php\?…\n/);
      assert.ok(
        Number(/request duration:\s+(\d{7,})\nrequest method:\s+GET\nrequest URI:\s+\/slow/.exec(idle)?.[1]) >= 1_000_000,
        'the slow request took over a second',
      );
    } finally {
      await gw.stop();
    }
  });
});

describe('the dashboard', () => {
  test('shows the gateway’s own history on its first load (Chromium)', { skip: chromiumSkip() }, async () => {
    const dir = docroot();
    const gw = await startGateway('php: { worker_count: 1 }\n', { docroot: dir, admin: true });
    const browser = await launchChromium();
    try {
      // A few seconds of traffic before anyone looks.
      const until = Date.now() + 3_500;
      while (Date.now() < until) {
        await request(gw.base, '/hello.txt');
        assert.equal((await request(gw.base, '/hello.txt', { method: 'DELETE' })).status, 405);
      }
      await eventuallyAsync(
        'history has samples',
        async () => (JSON.parse((await request(gw.adminBase, '/history.json')).text) as { samples: unknown[] }).samples.length >= 3,
      );
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(`console: ${m.text()}`);
      });
      const opened = Date.now();
      await page.goto(`${gw.adminBase}/status`, { timeout: 10_000 });
      // The first poll's render: polling alone would have drawn one sample by now.
      await page.waitForSelector('#updated[data-now]', { timeout: 5_000 }); // set by the first render (a selector: the page's CSP forbids eval)
      const samples = Number(await page.locator('#chart').getAttribute('data-samples'));
      const oldest = Number(await page.locator('#chart').getAttribute('data-oldest'));
      assert.ok(samples >= 3, `samples drawn at the first render: ${samples}`);
      assert.ok(oldest < opened - 2_000, `the oldest sample is from before the page opened (${opened - oldest} ms)`);
      assert.ok(Number(await page.locator('#c2xx').innerText()) > 0, '2xx in the last minute');
      assert.ok(Number(await page.locator('#c4xx').innerText()) > 0, '4xx in the last minute');
      assert.equal(await page.locator('#c429').innerText(), '0');
      assert.match(await page.locator('#rss').innerText(), /^\d+\.\d$/);
      assert.match(await page.locator('#cpu').innerText(), /^\d+\.\d$/);
      assert.match(await page.locator('#conn-http1').innerText(), /^\d+$/);
      assert.equal(await page.locator('#store').getAttribute('data-state'), 'none');
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
      await gw.stop();
    }
  });
});
