/**
 * Security headers (headers.*, decided by helmet): the defaults on PHP, static and error answers, HSTS only over
 * TLS (or behind a trusted proxy that says https), per-route overrides, headers PHP sets winning, the Server
 * header, and X-Powered-By stripped; through the real gateway and real php-cgi.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { selfSigned } from './support/certs.js';
import { request, startGateway, type RunningGateway } from './support/gateway.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-headers-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function site(): string {
  const dir = path.join(tmp, 'site');
  fs.mkdirSync(path.join(dir, 'admin'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'index.php'), '<?php echo "home";');
  fs.writeFileSync(
    path.join(dir, 'own.php'),
    "<?php header('X-Frame-Options: DENY'); header('Referrer-Policy: no-referrer'); header('Set-Cookie: a=1', false); header('Set-Cookie: b=2', false); echo 'own';",
  );
  fs.writeFileSync(path.join(dir, 'bad.php'), "<?php header('X-Frame-Options: DENY'); header('Bad Name: 1'); echo 'never';");
  fs.writeFileSync(path.join(dir, 'powered.php'), "<?php header('X-Powered-By: PHP/8.2.0'); echo 'p';");
  fs.writeFileSync(path.join(dir, 'admin', 'index.php'), '<?php echo "admin";');
  fs.writeFileSync(path.join(dir, 'page.html'), '<p>static</p>');
  return dir;
}

function getTls(port: number, target: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    https
      .get({ host: '127.0.0.1', port, path: target, rejectUnauthorized: false, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
      })
      .on('error', reject);
  });
}

/** One request over HTTP/2; node's client joins a repeated header into one value, Set-Cookie into an array. */
function getH2(port: number, target: string): Promise<{ status: number; headers: http2.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
    session.once('error', reject);
    const stream = session.request({ ':path': target });
    let headers: http2.IncomingHttpHeaders = {};
    stream.on('response', (h) => (headers = h));
    stream.resume();
    stream.on('end', () => {
      session.close();
      resolve({ status: Number(headers[':status']), headers });
    });
    stream.on('error', reject);
  });
}

const DEFAULTS: Record<string, string> = {
  'x-frame-options': 'SAMEORIGIN',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'strict-origin-when-cross-origin',
  server: 'phpgate',
};

describe('security headers: defaults', () => {
  let g: RunningGateway;
  before(async () => {
    g = await startGateway('server:\n  trusted_proxies: ["127.0.0.1"]\nphp:\n  worker_count: 1\n', { docroot: site() });
  });
  after(() => g.stop());

  for (const [what, target, status] of [
    ['PHP', '/', 200],
    ['a static file', '/page.html', 200],
    ['a gateway error', '/.env', 404],
  ] as const) {
    test(`${what} gets helmet's defaults for PHP sites, without CSP, HSTS, cross-origin isolation or the legacy headers`, async () => {
      const r = await request(g.base, target);
      assert.equal(r.status, status);
      for (const [name, value] of Object.entries(DEFAULTS)) assert.equal(r.headers[name], value, name);
      for (const absent of [
        'content-security-policy',
        'strict-transport-security',
        'cross-origin-opener-policy',
        'cross-origin-resource-policy',
        'x-dns-prefetch-control',
        'origin-agent-cluster',
        'x-download-options',
        'x-permitted-cross-domain-policies',
        'x-xss-protection',
      ]) {
        assert.equal(r.headers[absent], undefined, absent);
      }
    });
  }

  test('headers PHP sets itself win over the defaults, and repeated ones from PHP stay repeated', async () => {
    const r = await request(g.base, '/own.php');
    assert.equal(r.headers['x-frame-options'], 'DENY');
    assert.equal(r.headers['referrer-policy'], 'no-referrer');
    assert.deepEqual(r.headers['set-cookie'], ['a=1', 'b=2']);
    assert.equal(r.rawHeaders.filter((n) => n.toLowerCase() === 'x-frame-options').length, 1, 'one X-Frame-Options, not two');
  });

  test('a head node cannot send (a header name with a space) is a 502 that still carries the security headers', async () => {
    const r = await request(g.base, '/bad.php');
    assert.equal(r.status, 502);
    assert.equal(r.headers['x-frame-options'], 'SAMEORIGIN');
    assert.equal(r.headers['bad name'], undefined);
  });

  test('X-Powered-By from PHP is stripped', async () => {
    const r = await request(g.base, '/powered.php');
    assert.equal(r.text, 'p');
    assert.equal(r.headers['x-powered-by'], undefined);
  });

  test('HSTS is sent when a trusted proxy says the client came over https', async () => {
    const r = await request(g.base, '/', { headers: { 'X-Forwarded-Proto': 'https' } });
    assert.equal(r.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains');
  });
});

describe('security headers: configured', () => {
  let g: RunningGateway;
  before(async () => {
    const { cert, key } = selfSigned(tmp, 'hdr');
    g = await startGateway(
      [
        'server:',
        `  tls: { cert: ${cert}, key: ${key} }`,
        'headers:',
        '  hsts: "max-age=60"',
        '  server: ""',
        '  strip_powered_by: false',
        '  set: { X-Robots-Tag: noindex, Permissions-Policy: "camera=()" }',
        '  routes:',
        `    - pattern: "/admin/*"`,
        `      frame_options: DENY`,
        `      csp: "default-src 'self'"`,
        '      set: { X-Robots-Tag: "noindex, nofollow" }',
        `    - pattern: "/page.html"`,
        '      csp: true',
        '      nosniff: false',
        'php:',
        '  worker_count: 1',
      ].join('\n'),
      { docroot: site() },
    );
  });
  after(() => g.stop());

  test('over TLS the configured HSTS value is sent; an empty server hides the Server header; extra headers are added', async () => {
    const r = await getTls(g.port, '/');
    assert.equal(r.headers['strict-transport-security'], 'max-age=60');
    assert.equal(r.headers['server'], undefined);
    assert.equal(r.headers['x-robots-tag'], 'noindex');
    assert.equal(r.headers['permissions-policy'], 'camera=()');
    assert.equal(r.headers['x-frame-options'], 'SAMEORIGIN');
  });

  test('a route overrides what it names and inherits the rest (extra headers merged by name)', async () => {
    const r = await getTls(g.port, '/admin/');
    assert.equal(r.headers['x-frame-options'], 'DENY');
    assert.equal(r.headers['content-security-policy'], "default-src 'self'");
    assert.equal(r.headers['x-robots-tag'], 'noindex, nofollow');
    assert.equal(r.headers['permissions-policy'], 'camera=()');
    assert.equal(r.headers['strict-transport-security'], 'max-age=60');
  });

  test("csp: true is helmet's default policy; nosniff can be turned off per route", async () => {
    const r = await getTls(g.port, '/page.html');
    assert.match(String(r.headers['content-security-policy']), /default-src 'self'.*object-src 'none'/);
    assert.equal(r.headers['x-content-type-options'], undefined);
  });

  test('over HTTP/2 the same heads: PHP wins by name and keeps its repeats, static files and 502s carry the headers', async () => {
    const own = await getH2(g.port, '/own.php');
    assert.equal(own.status, 200);
    assert.equal(own.headers['x-frame-options'], 'DENY', "one X-Frame-Options, PHP's");
    assert.equal(own.headers['referrer-policy'], 'no-referrer');
    assert.deepEqual(own.headers['set-cookie'], ['a=1', 'b=2']);
    assert.equal(own.headers['x-robots-tag'], 'noindex');
    assert.equal(own.headers['strict-transport-security'], 'max-age=60');
    const page = await getH2(g.port, '/page.html');
    assert.equal(page.status, 200);
    assert.equal(page.headers['content-type'], 'text/html');
    assert.equal(page.headers['content-length'], String('<p>static</p>'.length));
    assert.equal(page.headers['x-frame-options'], 'SAMEORIGIN');
    assert.match(String(page.headers['content-security-policy']), /default-src 'self'/);
    const bad = await getH2(g.port, '/bad.php');
    assert.equal(bad.status, 502);
    assert.equal(bad.headers['x-frame-options'], 'SAMEORIGIN');
  });

  test("strip_powered_by: false passes PHP's X-Powered-By on", async () => {
    const r = await getTls(g.port, '/powered.php');
    assert.equal(r.headers['x-powered-by'], 'PHP/8.2.0');
  });
});
