/**
 * The response cache (cache.*) through the real gateway and real php-cgi. Every PHP script here appends its
 * request URI to a run log, so each test counts how often PHP really ran: a HIT is a request PHP never saw.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';
import { loadConfig } from '../config/load.js';
import { ConfigError } from '../config/errors.js';
import { request, startGateway, type RunningGateway, type SimpleResponse } from './support/gateway.js';
import { eventually, eventuallyAsync } from './support/proc.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-cache-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Logs its run, then answers as the query asks: sleep, headers, failure (while fail.flag exists), size. */
const PAGE = `<?php
$log = __DIR__ . '/runs.log';
file_put_contents($log, $_SERVER['REQUEST_URI'] . "\\n", FILE_APPEND | LOCK_EX);
$runs = count(array_keys(file($log, FILE_IGNORE_NEW_LINES), $_SERVER['REQUEST_URI']));
if (isset($_GET['sleep'])) usleep((int)$_GET['sleep'] * 1000);
if (file_exists(__DIR__ . '/slow.flag') && isset($_GET['failable'])) sleep(3);
if (file_exists(__DIR__ . '/fail.flag') && isset($_GET['failable'])) {
  http_response_code((int)file_get_contents(__DIR__ . '/fail.flag'));
  echo "PHP failed";
  exit;
}
if (isset($_GET['cc'])) header('Cache-Control: ' . $_GET['cc']);
if (isset($_GET['expires'])) header('Expires: ' . $_GET['expires']);
if (isset($_GET['accel'])) header('X-Accel-Expires: ' . $_GET['accel']);
if (isset($_GET['vary'])) header('Vary: ' . $_GET['vary']);
if (isset($_GET['cookie'])) setcookie('seen', '1');
if (isset($_GET['status'])) http_response_code((int)$_GET['status']);
header('ETag: "e' . $runs . '"');
$lang = $_SERVER['HTTP_ACCEPT_LANGUAGE'] ?? '-';
echo "<html><body><p>run $runs lang $lang cookie " . ($_COOKIE['currency'] ?? '-') . "</p>" . str_repeat('<p>cached page text</p>', (int)($_GET['pad'] ?? 100)) . "</body></html>";
`;

/** Streams `kb` KiB in 8 KiB flushes, with no Content-Length: the cache learns the size only as it streams. */
const BIG = `<?php
file_put_contents(__DIR__ . '/runs.log', $_SERVER['REQUEST_URI'] . "\\n", FILE_APPEND | LOCK_EX);
$kb = (int)$_GET['kb'];
for ($i = 0; $i < $kb / 8; $i++) { echo str_repeat(chr(97 + $i % 26), 8192); flush(); }
`;

function site(name: string): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'page.php'), PAGE);
  fs.writeFileSync(path.join(dir, 'big.php'), BIG);
  fs.copyFileSync(path.join(dir, 'page.php'), path.join(dir, 'other.php'));
  return dir;
}

function runs(dir: string, uri: string): number {
  const log = path.join(dir, 'runs.log');
  if (!fs.existsSync(log)) return 0;
  return fs
    .readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => l === uri).length;
}

function cli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'gateway/cli.ts', ...args], { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ status: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr });
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const xcache = (r: SimpleResponse): string | undefined => r.headers['x-cache'] as string | undefined;

const CONFIG = `php:
  worker_count: 4
  timeout_ms: 1500
cache:
  lock_ms: 5000
  max_entry_kb: 64
  rules:
    - pattern: "/page.php"
      ttl_s: 30
    - pattern: "/big.php"
      ttl_s: 30
    - pattern: "/other.php"
      ttl_s: 1
      stale_s: 30
      key: "$scheme$request_method$host$request_uri$cookie_currency"
`;

describe('response cache: HIT, MISS, BYPASS', () => {
  let g: RunningGateway;
  let dir: string;
  before(async () => {
    dir = site('basic');
    g = await startGateway(CONFIG, { docroot: dir, admin: true });
  });
  after(() => g.stop());

  test('the first request runs PHP (MISS), the next is served from memory (HIT) with Age', async () => {
    const a = await request(g.base, '/page.php?t=1');
    assert.equal(a.status, 200);
    assert.equal(xcache(a), 'MISS');
    const b = await request(g.base, '/page.php?t=1');
    assert.equal(xcache(b), 'HIT');
    assert.equal(b.text, a.text);
    assert.match(String(b.headers['age']), /^\d+$/);
    assert.equal(b.headers['etag'], a.headers['etag']);
    assert.equal(b.headers['x-frame-options'], 'SAMEORIGIN', 'security headers on hits too');
    assert.equal(runs(dir, '/page.php?t=1'), 1);
  });

  test('the query is part of the key', async () => {
    await request(g.base, '/page.php?t=q1');
    const other = await request(g.base, '/page.php?t=q2');
    assert.equal(xcache(other), 'MISS');
    assert.equal(runs(dir, '/page.php?t=q2'), 1);
  });

  test('a path no rule covers gets no X-Cache and always runs PHP', async () => {
    fs.copyFileSync(path.join(dir, 'page.php'), path.join(dir, 'uncached.php'));
    const a = await request(g.base, '/uncached.php');
    const b = await request(g.base, '/uncached.php');
    assert.equal(xcache(a), undefined);
    assert.equal(xcache(b), undefined);
    assert.equal(runs(dir, '/uncached.php'), 2);
  });

  test('session cookies and Authorization bypass the cache (no HIT served, nothing stored)', async () => {
    await request(g.base, '/page.php?t=bypass');
    for (const headers of [{ Cookie: 'PHPSESSID=abc' }, { Cookie: 'theme=dark; wordpress_logged_in_123abc=x' }, { Authorization: 'Bearer t' }]) {
      const r = await request(g.base, '/page.php?t=bypass', { headers });
      assert.equal(xcache(r), 'BYPASS', JSON.stringify(headers));
    }
    assert.equal(runs(dir, '/page.php?t=bypass'), 4);
    // An unrelated cookie does not bypass.
    const plain = await request(g.base, '/page.php?t=bypass', { headers: { Cookie: 'theme=dark' } });
    assert.equal(xcache(plain), 'HIT');
  });

  test('POST is never cached', async () => {
    const r = await request(g.base, '/page.php?t=post', {
      method: 'POST',
      body: 'a=1',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(xcache(r), 'BYPASS');
    const get = await request(g.base, '/page.php?t=post');
    assert.equal(xcache(get), 'MISS');
  });

  test('Set-Cookie answers are never stored', async () => {
    const a = await request(g.base, '/page.php?t=c&cookie=1');
    const b = await request(g.base, '/page.php?t=c&cookie=1');
    assert.ok(a.headers['set-cookie'] !== undefined);
    assert.equal(xcache(b), 'MISS');
    assert.ok(b.headers['set-cookie'] !== undefined);
    assert.equal(runs(dir, '/page.php?t=c&cookie=1'), 2);
  });

  test('Cache-Control no-store, private and no-cache from PHP are honoured', async () => {
    for (const cc of ['no-store', 'private, max-age=60', 'no-cache']) {
      const uri = `/page.php?cc=${encodeURIComponent(cc)}`;
      await request(g.base, uri);
      const b = await request(g.base, uri);
      assert.equal(xcache(b), 'MISS', cc);
      assert.equal(runs(dir, uri), 2, cc);
    }
  });

  test("PHP's max-age, s-maxage, Expires and X-Accel-Expires set the freshness; 0 or the past is not stored", async () => {
    const past = new Date(Date.now() - 60_000).toUTCString();
    const soon = new Date(Date.now() + 60_000).toUTCString();
    const cases: Array<[string, number]> = [
      ['/page.php?cc=max-age%3D0', 2],
      ['/page.php?cc=max-age%3D60', 1],
      ['/page.php?cc=max-age%3D60%2C%20s-maxage%3D0', 2],
      [`/page.php?expires=${encodeURIComponent(past)}`, 2],
      [`/page.php?expires=${encodeURIComponent(soon)}`, 1],
      ['/page.php?accel=0&cc=max-age%3D60', 2],
      ['/page.php?accel=60&cc=no-cache%3D%22x%22', 2], // no-cache still wins over X-Accel-Expires
      ['/page.php?accel=60', 1],
    ];
    for (const [uri, expected] of cases) {
      const a = await request(g.base, uri);
      assert.equal(a.headers['x-accel-expires'], undefined, 'X-Accel-* never reaches the client');
      await request(g.base, uri);
      assert.equal(runs(dir, uri), expected, uri);
    }
  });

  test('only the configured statuses are stored (200, 301, 302 by default): a 404 runs PHP each time', async () => {
    await request(g.base, '/page.php?status=404');
    const b = await request(g.base, '/page.php?status=404');
    assert.equal(b.status, 404);
    assert.equal(runs(dir, '/page.php?status=404'), 2);
    await request(g.base, '/page.php?status=301');
    const r = await request(g.base, '/page.php?status=301');
    assert.equal(r.status, 301);
    assert.equal(xcache(r), 'HIT');
  });

  test('Vary: one entry per value of the named request header', async () => {
    const uri = '/page.php?vary=Accept-Language';
    const en = await request(g.base, uri, { headers: { 'Accept-Language': 'en' } });
    const de = await request(g.base, uri, { headers: { 'Accept-Language': 'de' } });
    assert.match(en.text, /lang en/);
    assert.match(de.text, /lang de/);
    assert.equal(xcache(de), 'MISS');
    const en2 = await request(g.base, uri, { headers: { 'Accept-Language': 'en' } });
    const de2 = await request(g.base, uri, { headers: { 'Accept-Language': 'de' } });
    assert.equal(xcache(en2), 'HIT');
    assert.match(en2.text, /lang en/);
    assert.equal(xcache(de2), 'HIT');
    assert.match(de2.text, /lang de/);
    assert.equal(runs(dir, uri), 2);
  });

  test('Vary: * is never stored', async () => {
    await request(g.base, '/page.php?vary=*');
    await request(g.base, '/page.php?vary=*');
    assert.equal(runs(dir, '/page.php?vary=*'), 2);
  });

  test('a key with $cookie_currency keeps one entry per currency', async () => {
    const eur = await request(g.base, '/other.php?k=1', { headers: { Cookie: 'currency=EUR' } });
    const usd = await request(g.base, '/other.php?k=1', { headers: { Cookie: 'currency=USD' } });
    assert.match(eur.text, /cookie EUR/);
    assert.match(usd.text, /cookie USD/);
    const eur2 = await request(g.base, '/other.php?k=1', { headers: { Cookie: 'currency=EUR' } });
    assert.equal(xcache(eur2), 'HIT');
    assert.match(eur2.text, /cookie EUR/);
  });

  test('$cookie_NAME in a key matches the cookie name in any letter case, as nginx does', async () => {
    const eur = await request(g.base, '/other.php?k=case', { headers: { Cookie: 'Currency=EUR' } });
    const usd = await request(g.base, '/other.php?k=case', { headers: { Cookie: 'CURRENCY=USD' } });
    assert.equal(xcache(eur), 'MISS');
    assert.equal(xcache(usd), 'MISS', 'another currency is another entry');
    const eur2 = await request(g.base, '/other.php?k=case', { headers: { Cookie: 'currency=EUR' } });
    assert.equal(xcache(eur2), 'HIT');
  });

  test("HEAD is answered from the GET's entry, without a body", async () => {
    const get = await request(g.base, '/page.php?t=head');
    const head = await request(g.base, '/page.php?t=head', { method: 'HEAD' });
    assert.equal(xcache(head), 'HIT');
    assert.equal(head.body.length, 0);
    assert.equal(head.headers['content-length'], String(get.body.length));
    assert.equal(runs(dir, '/page.php?t=head'), 1);
  });

  test('a HEAD miss runs PHP and stores nothing', async () => {
    const head = await request(g.base, '/page.php?t=headfirst', { method: 'HEAD' });
    assert.equal(xcache(head), 'MISS');
    const get = await request(g.base, '/page.php?t=headfirst');
    assert.equal(xcache(get), 'MISS');
  });

  test('a conditional request matching the cached ETag gets 304 from the cache', async () => {
    const a = await request(g.base, '/page.php?t=cond');
    const r = await request(g.base, '/page.php?t=cond', { headers: { 'If-None-Match': String(a.headers['etag']) } });
    assert.equal(r.status, 304);
    assert.equal(xcache(r), 'HIT');
    assert.equal(r.headers['etag'], a.headers['etag']);
    const other = await request(g.base, '/page.php?t=cond', { headers: { 'If-None-Match': '"nope"' } });
    assert.equal(other.status, 200);
    assert.equal(runs(dir, '/page.php?t=cond'), 1);
  });

  test('a conditional miss still fills the entry with the full answer', async () => {
    const r = await request(g.base, '/page.php?t=condmiss', { headers: { 'If-None-Match': '"e1"' } });
    assert.equal(r.status, 200, 'PHP is not shown the validators while filling');
    const b = await request(g.base, '/page.php?t=condmiss');
    assert.equal(xcache(b), 'HIT');
  });

  test('answers bigger than max_entry_kb stream through uncached, whole', async () => {
    const a = await request(g.base, '/big.php?kb=256');
    assert.equal(a.body.length, 256 * 1024);
    assert.equal(xcache(a), 'MISS');
    const b = await request(g.base, '/big.php?kb=256');
    assert.equal(b.body.length, 256 * 1024);
    assert.equal(xcache(b), 'MISS');
    assert.equal(runs(dir, '/big.php?kb=256'), 2);
    // Under the limit it is stored.
    await request(g.base, '/big.php?kb=32');
    const small = await request(g.base, '/big.php?kb=32');
    assert.equal(xcache(small), 'HIT');
    assert.equal(small.body.length, 32 * 1024);
  });

  test('50 simultaneous misses run PHP once (the rest wait for its answer)', async () => {
    const uri = '/page.php?t=herd&sleep=300';
    const all = await Promise.all(Array.from({ length: 50 }, () => request(g.base, uri)));
    assert.equal(runs(dir, uri), 1);
    assert.ok(all.every((r) => r.status === 200 && r.text === all[0]!.text));
    assert.equal(all.filter((r) => xcache(r) === 'MISS').length, 1);
    assert.equal(all.filter((r) => xcache(r) === 'HIT').length, 49);
  });

  test("simultaneous misses of an answer that cannot be stored each get PHP's own answer", async () => {
    const uri = '/page.php?t=herdcookie&sleep=200&cookie=1';
    const all = await Promise.all(Array.from({ length: 6 }, () => request(g.base, uri)));
    assert.ok(all.every((r) => r.status === 200 && r.headers['set-cookie'] !== undefined));
    assert.equal(runs(dir, uri), 6);
  });

  test('the access log and the metrics say what the cache did', async () => {
    const count = async (status: string): Promise<number> => {
      const m = new RegExp(`^phpgate_cache_requests_total\\{cache="${status}"\\} (\\d+)$`, 'm').exec((await request(g.adminBase, '/metrics')).text);
      return Number(m?.[1] ?? NaN);
    };
    const [hits, misses] = [await count('HIT'), await count('MISS')];
    await request(g.base, '/page.php?t=log');
    await request(g.base, '/page.php?t=log');
    const lines = g.logs().filter((l) => l['log'] === 'access' && l['uri'] === '/page.php?t=log');
    assert.deepEqual(
      lines.map((l) => l['cache']),
      ['MISS', 'HIT'],
    );
    assert.equal(await count('HIT'), hits + 1);
    assert.equal(await count('MISS'), misses + 1);
  });

  test('purge through the admin endpoint drops matching entries only', async () => {
    await request(g.base, '/page.php?t=p1');
    await request(g.base, '/other.php?t=p2');
    const refused = await request(g.adminBase, '/cache/purge?pattern=/page.php');
    assert.equal(refused.status, 405, 'GET does not purge');
    const r = await request(g.adminBase, '/cache/purge?pattern=/page.php', { method: 'POST' });
    assert.equal(r.status, 200);
    const body = JSON.parse(r.text) as { purged: number };
    assert.ok(body.purged >= 1, r.text);
    assert.equal(xcache(await request(g.base, '/page.php?t=p1')), 'MISS');
    assert.equal(xcache(await request(g.base, '/other.php?t=p2')), 'HIT');
    const bad = await request(g.adminBase, '/cache/purge?pattern=blog', { method: 'POST' });
    assert.equal(bad.status, 400);
  });

  test('a purge a page of another site makes a browser send (Origin, Sec-Fetch-Site) is refused, and nothing is purged', async () => {
    await request(g.base, '/page.php?t=csrf');
    const port = new URL(g.adminBase).port;
    for (const headers of [
      { Origin: 'http://evil.example' },
      { Origin: 'null' },
      { Origin: `http://127.0.0.1:${port}`, 'Sec-Fetch-Site': 'cross-site' },
    ]) {
      const r = await request(g.adminBase, '/cache/purge?pattern=*', { method: 'POST', headers });
      assert.equal(r.status, 403, JSON.stringify(headers));
    }
    assert.equal(xcache(await request(g.base, '/page.php?t=csrf')), 'HIT');
    const own = await request(g.adminBase, '/cache/purge?pattern=/page.php', { method: 'POST', headers: { Origin: `http://127.0.0.1:${port}` } });
    assert.equal(own.status, 200, "the listener's own origin may purge");
  });

  test('DNS rebinding: without admin.token, a request naming the admin listener by a DNS name is refused (health checks excepted)', async () => {
    const port = new URL(g.adminBase).port;
    const rebound = { Host: `evil.example:${port}` };
    for (const p of ['/status.json', '/metrics', '/fpm-status?json&full', '/status']) {
      assert.equal((await request(g.adminBase, p, { headers: rebound })).status, 421, p);
    }
    assert.equal((await request(g.adminBase, '/cache/purge?pattern=*', { method: 'POST', headers: rebound })).status, 421);
    assert.equal((await request(g.adminBase, '/healthz', { headers: rebound })).status, 200);
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]) {
      assert.equal((await request(g.adminBase, '/status.json', { headers: { Host: host } })).status, 200, host);
    }
  });

  test('phpgate cache purge PATTERN asks the running gateway', async () => {
    await request(g.base, '/other.php?t=cli');
    const cfg = path.join(tmp, 'purge.yaml');
    fs.writeFileSync(cfg, `admin:\n  port: ${new URL(g.adminBase).port}\nphp:\n  docroot: ${JSON.stringify(dir)}\n`);
    // Not spawnSync: the gateway answering the command runs in this very process.
    const out = await cli(['cache', 'purge', '/other.php', '--config', cfg]);
    assert.equal(out.status, 0, out.stderr);
    assert.match(out.stdout, /purged [1-9]\d* cached answer\(s\) matching \/other\.php/);
    assert.equal(xcache(await request(g.base, '/other.php?t=cli')), 'MISS');
    const usage = await cli(['cache', 'purge']);
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /Usage: phpgate cache purge PATTERN/);
  });
});

describe('response cache: stale answers', () => {
  let g: RunningGateway;
  let dir: string;
  before(async () => {
    dir = site('stale');
    g = await startGateway(
      `php:\n  worker_count: 4\n  timeout_ms: 1000\ncache:\n  rules:\n    - pattern: "/page.php"\n      ttl_s: 1\n      stale_s: 30\n    - pattern: "/other.php"\n      ttl_s: 1\n      stale_s: 0\n`,
      { docroot: dir },
    );
  });
  after(() => g.stop());
  const flag = (): string => path.join(dir, 'fail.flag');

  test('past its ttl, an entry is served STALE while one request refreshes it', async () => {
    const uri = '/page.php?t=swr&sleep=600';
    const first = await request(g.base, uri);
    assert.match(first.text, /run 1 /);
    await sleep(1100); // past ttl_s 1: the entry turns stale (the time passing is what is tested)
    const refreshing = request(g.base, uri);
    await eventually('the refresh has reached PHP', () => runs(dir, uri) === 2, 5_000);
    const during = await request(g.base, uri);
    assert.equal(xcache(during), 'STALE');
    assert.match(during.text, /run 1 /);
    const refreshed = await refreshing;
    assert.equal(xcache(refreshed), 'MISS');
    assert.match(refreshed.text, /run 2 /);
    const after = await request(g.base, uri);
    assert.equal(xcache(after), 'HIT');
    assert.match(after.text, /run 2 /);
  });

  test('when PHP answers 5xx, the stale entry is served instead', async () => {
    const uri = '/page.php?t=err&failable=1';
    await request(g.base, uri);
    await sleep(1100); // past ttl_s 1 (the time passing is what is tested)
    fs.writeFileSync(flag(), '503');
    try {
      const r = await request(g.base, uri);
      assert.equal(r.status, 200);
      assert.equal(xcache(r), 'STALE');
      assert.match(r.text, /run 1 /);
      assert.equal(runs(dir, uri), 2, 'PHP was asked');
    } finally {
      fs.rmSync(flag(), { force: true });
    }
    const healed = await request(g.base, uri);
    assert.equal(xcache(healed), 'MISS');
    assert.match(healed.text, /run 3 /);
  });

  test('when PHP times out (504), the stale entry is served instead', async () => {
    const uri = '/page.php?t=timeout&failable=1';
    await request(g.base, uri);
    await sleep(1100); // past ttl_s 1 (the time passing is what is tested)
    fs.writeFileSync(path.join(dir, 'slow.flag'), '');
    try {
      const r = await request(g.base, uri, { timeoutMs: 10_000 });
      assert.equal(r.status, 200);
      assert.equal(xcache(r), 'STALE');
      assert.match(r.text, /run 1 /);
    } finally {
      fs.rmSync(path.join(dir, 'slow.flag'), { force: true });
    }
  });

  test("must-revalidate from PHP: never served stale, PHP's failure reaches the client", async () => {
    const uri = '/page.php?t=mr&failable=1&cc=max-age%3D1%2C%20must-revalidate';
    await request(g.base, uri);
    assert.equal(xcache(await request(g.base, uri)), 'HIT');
    await sleep(1100); // past ttl_s 1 (the time passing is what is tested)
    fs.writeFileSync(flag(), '503');
    try {
      const r = await request(g.base, uri);
      assert.equal(r.status, 503);
    } finally {
      fs.rmSync(flag(), { force: true });
    }
  });

  test("with stale_s 0 PHP's failure reaches the client", async () => {
    const uri = '/other.php?t=nostale&failable=1';
    await request(g.base, uri);
    await sleep(1100); // past ttl_s 1 (the time passing is what is tested)
    fs.writeFileSync(flag(), '500');
    try {
      const r = await request(g.base, uri);
      assert.equal(r.status, 500);
      assert.equal(xcache(r), 'MISS');
    } finally {
      fs.rmSync(flag(), { force: true });
    }
  });
});

describe('response cache and compression', () => {
  let g: RunningGateway;
  let dir: string;
  before(async () => {
    dir = site('gzip');
    g = await startGateway(`php:\n  worker_count: 2\ncache:\n  rules:\n    - pattern: "/page.php"\n      ttl_s: 30\n`, { docroot: dir });
  });
  after(() => g.stop());

  test('hits are sent in the encoding each client accepts, from variants made once', async () => {
    const identity = await request(g.base, '/page.php?t=z');
    // The variants are made off the event loop right after storing. Until one is ready a HIT is compressed on
    // the way, without a length; a HEAD (served from the entry, never running PHP) shows when both are ready.
    for (const encoding of ['gzip', 'br']) {
      await eventuallyAsync(
        `the ${encoding} variant of the stored answer`,
        async () => {
          const head = await request(g.base, '/page.php?t=z', { method: 'HEAD', headers: { 'Accept-Encoding': encoding } });
          return head.headers['content-encoding'] === encoding && head.headers['content-length'] !== undefined;
        },
        5_000,
      );
    }
    const gz = await request(g.base, '/page.php?t=z', { headers: { 'Accept-Encoding': 'gzip' } });
    const br = await request(g.base, '/page.php?t=z', { headers: { 'Accept-Encoding': 'br, gzip' } });
    const plain = await request(g.base, '/page.php?t=z');
    for (const r of [gz, br, plain]) assert.equal(xcache(r), 'HIT');
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(zlib.gunzipSync(gz.body).toString(), identity.text);
    assert.equal(br.headers['content-encoding'], 'br');
    assert.equal(zlib.brotliDecompressSync(br.body).toString(), identity.text);
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(plain.text, identity.text);
    // A prepared variant has its length; one compressed on the way would be chunked.
    assert.equal(gz.headers['content-length'], String(gz.body.length));
    assert.equal(br.headers['content-length'], String(br.body.length));
    assert.match(String(gz.headers['vary']), /Accept-Encoding/);
    assert.equal(gz.headers['etag'], `W/${String(identity.headers['etag'])}`);
    assert.equal(runs(dir, '/page.php?t=z'), 1);
  });

  test('a compressed MISS stores the identity body (a later identity HIT is whole)', async () => {
    const miss = await request(g.base, '/page.php?t=zmiss', { headers: { 'Accept-Encoding': 'gzip' } });
    assert.equal(xcache(miss), 'MISS');
    assert.equal(miss.headers['content-encoding'], 'gzip');
    const plain = await request(g.base, '/page.php?t=zmiss');
    assert.equal(xcache(plain), 'HIT');
    assert.equal(plain.text, zlib.gunzipSync(miss.body).toString());
  });
});

describe('response cache over HTTP/2', () => {
  test('an HTTP/2 client gets hits', async () => {
    const { selfSigned } = await import('./support/certs.js');
    const dir = site('h2');
    const c = selfSigned(tmp, 'localhost');
    const g = await startGateway(
      `server:\n  tls: { cert: ${c.cert}, key: ${c.key} }\nphp:\n  worker_count: 1\ncache:\n  rules:\n    - pattern: "/page.php"\n      ttl_s: 30\n`,
      { docroot: dir },
    );
    const session = http2.connect(`https://localhost:${g.port}`, { rejectUnauthorized: false });
    try {
      const get = (): Promise<{ headers: http2.IncomingHttpHeaders; body: string }> =>
        new Promise((resolve, reject) => {
          const s = session.request({ ':path': '/page.php?t=h2' });
          let headers: http2.IncomingHttpHeaders = {};
          const chunks: Buffer[] = [];
          s.on('response', (h) => (headers = h));
          s.on('data', (d: Buffer) => chunks.push(d));
          s.on('end', () => resolve({ headers, body: Buffer.concat(chunks).toString() }));
          s.on('error', reject);
          s.end();
        });
      const a = await get();
      const b = await get();
      assert.equal(a.headers['x-cache'], 'MISS');
      assert.equal(b.headers['x-cache'], 'HIT');
      assert.equal(b.body, a.body);
      assert.equal(runs(dir, '/page.php?t=h2'), 1);
    } finally {
      session.close();
      await g.stop();
    }
  });
});

describe('cache configuration', () => {
  const load = (text: string): unknown => loadConfig({ text, file: 'gw.yaml', baseDir: tmp, env: {} });

  test('defaults for a rule: statuses 200 301 302, stale_s 60, nginx-style key', () => {
    fs.mkdirSync(path.join(tmp, 'public'), { recursive: true });
    const c = loadConfig({ text: 'cache:\n  rules:\n    - pattern: "/blog/*"\n      ttl_s: 1\n', file: 'gw.yaml', baseDir: tmp, env: {} });
    assert.deepEqual(c.cache.rules[0], {
      pattern: '/blog/*',
      ttl_s: 1,
      statuses: [200, 301, 302],
      stale_s: 60,
      key: '$scheme$request_method$host$request_uri',
    });
    assert.equal(c.cache.header, 'X-Cache');
    assert.equal(c.cache.lock_ms, 5000);
    assert.equal(c.cache.max_entry_kb, 1024);
  });

  test('an unknown key variable is refused at its place, with the variables allowed', () => {
    assert.throws(
      () => load('cache:\n  rules:\n    - pattern: "/x"\n      ttl_s: 1\n      key: "$scheme$nope"\n'),
      (e: unknown) => e instanceof ConfigError && /gw\.yaml:5:\d+/.test(e.message) && /\$cookie_NAME/.test(e.message),
    );
  });

  test('a status outside 200–599 and a rule without ttl_s are refused', () => {
    assert.throws(
      () => load('cache:\n  rules:\n    - pattern: "/x"\n      ttl_s: 1\n      statuses: [100]\n'),
      (e: unknown) => e instanceof ConfigError && /gw\.yaml:5/.test(e.message),
    );
    assert.throws(
      () => load('cache:\n  rules:\n    - pattern: "/x"\n'),
      (e: unknown) => e instanceof ConfigError && /ttl_s/.test(e.message),
    );
  });
});
