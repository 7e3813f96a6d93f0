/**
 * Attacks through the Host header and the request line, through the real gateway and real php-cgi:
 * - cache poisoning: a Host that PHP prints into a cached page (stored XSS for every later visitor), or one that
 *   makes `/page.php` and `/sub/page.php` share an entry;
 * - Hosts nginx refuses with 400 (ngx_http_validate_host) must not reach PHP as HTTP_HOST;
 * - request lines naming another HTTP version (nginx: 505 for 2.0 and later, 400 for HTTP/0.9).
 * The differential test in compat/differential-host.test.ts holds the same Host rules against nginx itself.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request, startGateway, type RunningGateway, type SimpleResponse } from './support/gateway.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-host-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Prints the Host it was asked for, as apps do in absolute links and canonical tags. */
const PAGE = `<?php
file_put_contents(__DIR__ . '/runs.log', "x\\n", FILE_APPEND | LOCK_EX);
echo '<a href="http://' . $_SERVER['HTTP_HOST'] . $_SERVER['REQUEST_URI'] . '">home</a> uri=' . $_SERVER['REQUEST_URI'];
`;

const xcache = (r: SimpleResponse): string | undefined => r.headers['x-cache'] as string | undefined;

/** One request as raw bytes on its own connection; resolves with everything the gateway sent before closing. */
function raw(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1', () => c.write(bytes, 'latin1'));
    let got = '';
    c.setTimeout(5000, () => c.destroy(new Error(`no answer within 5 s to ${JSON.stringify(bytes)}`)));
    c.on('data', (d: Buffer) => (got += d.toString('latin1')));
    c.on('error', reject);
    c.on('close', () => resolve(got));
  });
}

const statusOf = (answer: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);

function site(name: string): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'page.php'), PAGE);
  fs.writeFileSync(path.join(dir, 'sub', 'page.php'), PAGE);
  return dir;
}

describe('cache poisoning through Host', () => {
  let gw: RunningGateway;
  let keyless: RunningGateway;
  before(async () => {
    gw = await startGateway(`php:\n  worker_count: 2\ncache:\n  rules:\n    - { pattern: "*", ttl_s: 60 }\n`, { docroot: site('a') });
    // A key without $host (one site per gateway, as many fastcgi_cache_key lines are written).
    keyless = await startGateway(`php:\n  worker_count: 1\ncache:\n  rules:\n    - { pattern: "*", ttl_s: 60, key: "$request_uri" }\n`, {
      docroot: site('b'),
    });
  });
  after(async () => {
    await Promise.all([gw?.stop(), keyless?.stop()]);
  });

  it('markup in the port part of Host never reaches PHP, so no page carries it', async () => {
    const evil = 'example.com:"><b>pwned<b>';
    // nginx lets this Host through (no slash, space or control character); PHP sees its $host, as Debian passes it.
    const first = await request(gw.base, '/page.php?x=1', { headers: { Host: evil } });
    assert.equal(first.status, 200);
    assert.ok(first.text.includes('href="http://example.com/page.php?x=1"'), first.text);
    assert.ok(!first.text.includes('pwned'), first.text);
    for (let i = 0; i < 2; i++) {
      const normal = await request(gw.base, '/page.php?x=1', { headers: { Host: 'example.com' } });
      assert.equal(normal.status, 200);
      assert.ok(!normal.text.includes('pwned'), `a normal visitor got the poisoned page: ${normal.text}`);
      assert.equal(xcache(normal), 'HIT', 'the same page as the first one: nothing of the port part was in it');
    }
  });

  it('a numeric port reaches PHP and splits the entry: a visitor without it never gets links with it', async () => {
    const ported = await request(gw.base, '/page.php?p=1', { headers: { Host: 'example.com:8443' } });
    assert.ok(ported.text.includes('href="http://example.com:8443/page.php?p=1"'), ported.text);
    assert.equal(xcache(ported), 'MISS');
    const normal = await request(gw.base, '/page.php?p=1', { headers: { Host: 'example.com' } });
    assert.ok(normal.text.includes('href="http://example.com/page.php?p=1"'), normal.text);
    assert.equal(xcache(normal), 'MISS');
    const again = await request(gw.base, '/page.php?p=1', { headers: { Host: 'example.com:8443' } });
    assert.equal(xcache(again), 'HIT');
    assert.ok(again.text.includes('example.com:8443'), again.text);
  });

  it('a Host with a slash is refused (400), so /page.php cannot be stored as /sub/page.php', async () => {
    const sub = await request(gw.base, '/sub/page.php', { headers: { Host: 'example.com' } });
    assert.equal(sub.status, 200);
    const evil = await request(gw.base, '/page.php', { headers: { Host: 'example.com/sub' } });
    assert.equal(evil.status, 400);
    const again = await request(gw.base, '/sub/page.php', { headers: { Host: 'example.com' } });
    assert.equal(xcache(again), 'HIT');
    assert.ok(again.text.includes('uri=/sub/page.php'), again.text);
  });

  for (const host of [
    'exa mple.com',
    'example.com:80 x',
    'exa\tmple.com',
    'example..com',
    'example.com:8..0',
    '',
    ':80',
    'a/../b',
    'x\x7fy',
    'x\x00y',
  ]) {
    it(`Host ${JSON.stringify(host)} is a 400, as nginx answers it, and never reaches PHP`, async () => {
      const before = fs.existsSync(path.join(tmp, 'a', 'runs.log')) ? fs.readFileSync(path.join(tmp, 'a', 'runs.log'), 'utf8').length : 0;
      const answer = await raw(gw.port, `GET /page.php?h=1 HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      assert.equal(statusOf(answer), 400, answer.slice(0, 200));
      const now = fs.existsSync(path.join(tmp, 'a', 'runs.log')) ? fs.readFileSync(path.join(tmp, 'a', 'runs.log'), 'utf8').length : 0;
      assert.equal(now, before, 'PHP ran');
    });
  }

  it('an upper-case or dotted variant of the host is the same host to PHP and to the cache', async () => {
    const a = await request(gw.base, '/page.php?case=1', { headers: { Host: 'Example.COM.' } });
    assert.ok(a.text.includes('http://example.com/'), a.text);
    const b = await request(gw.base, '/page.php?case=1', { headers: { Host: 'example.com' } });
    assert.equal(xcache(b), 'HIT');
  });

  it('with a key that leaves $host out, another name in Host still cannot poison the entry', async () => {
    const evil = await request(keyless.base, '/page.php', { headers: { Host: 'evil.test' } });
    assert.ok(evil.text.includes('http://evil.test/'), evil.text);
    const normal = await request(keyless.base, '/page.php', { headers: { Host: 'example.com' } });
    assert.ok(!normal.text.includes('evil.test'), `poisoned: ${normal.text}`);
    assert.equal(xcache(normal), 'MISS');
    const again = await request(keyless.base, '/page.php', { headers: { Host: 'example.com' } });
    assert.equal(xcache(again), 'HIT');
  });
});

describe('request lines naming another HTTP version', () => {
  let gw: RunningGateway;
  before(async () => {
    gw = await startGateway('php:\n  worker_count: 1\n', { docroot: site('c') });
  });
  after(async () => {
    await gw?.stop();
  });

  for (const [line, status] of [
    ['GET /page.php HTTP/2.0', 505],
    ['GET /page.php HTTP/0.9', 400],
  ] as const) {
    it(`"${line}" over HTTP/1.1 is a ${status} (nginx's), without a stack trace and without running PHP`, async () => {
      const answer = await raw(gw.port, `${line}\r\nHost: example.com\r\nHost: dup.example\r\n\r\n`);
      assert.equal(statusOf(answer), status, answer.slice(0, 300));
      assert.match(answer, /\r\nconnection: close\r\n/i);
      assert.ok(!fs.existsSync(path.join(tmp, 'c', 'runs.log')), 'PHP ran');
      assert.ok(!gw.logs().some((l) => l.level === 50 || l.level === 60), JSON.stringify(gw.logs().filter((l) => Number(l.level) >= 50)));
    });
  }

  it('an HTTP/0.9 simple request (no version) does not run PHP', async () => {
    const answer = await raw(gw.port, 'GET /page.php\r\n\r\n');
    assert.ok(!answer.includes('home</a>'), answer);
    assert.ok(!fs.existsSync(path.join(tmp, 'c', 'runs.log')), 'PHP ran');
  });
});
