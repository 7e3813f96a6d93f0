/**
 * HTTP upstream answers go through the same filters as PHP's: compressed by compression.* (q-values, types,
 * min_bytes, an encoding the upstream chose itself kept), and cached by cache.rules (HIT without asking the
 * upstream, Set-Cookie and no-store never stored, stale instead of a failing upstream), through the real gateway
 * and a real HTTP server as the upstream.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';
import { selfSigned } from './support/certs.js';
import { startGateway, type RunningGateway } from './support/gateway.js';
import { ensureFixtureSite } from './fixtures/site.js';

const PAGE = '<!doctype html><p>' + 'an upstream page that compresses well '.repeat(400) + '</p>';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** The bytes as sent (node's client never decodes). */
function get(port: number, target: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: target, headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

describe('upstream answers through the compression and cache filters', () => {
  let upstream: http.Server;
  let g: RunningGateway;
  /** Requests the upstream saw, by path. */
  const seen = new Map<string, number>();
  let failing = false;

  before(async () => {
    upstream = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://upstream');
      seen.set(url.pathname, (seen.get(url.pathname) ?? 0) + 1);
      if (failing) {
        res.writeHead(502, { 'Content-Type': 'text/plain' });
        res.end('upstream down');
        return;
      }
      const count = String(seen.get(url.pathname));
      switch (url.pathname) {
        case '/app/page':
          res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'max-age=60, stale-if-error=60', 'X-Count': count });
          res.end(PAGE);
          return;
        case '/app/short':
          res.writeHead(200, { 'Content-Type': 'text/html', 'Cache-Control': 'max-age=1, stale-if-error=60', 'X-Count': count });
          res.end(PAGE);
          return;
        case '/app/tiny':
          // min_bytes needs a length to judge by (nginx's gzip_min_length reads Content-Length too).
          res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '4', 'X-Count': count });
          res.end('tiny');
          return;
        case '/app/image':
          res.writeHead(200, { 'Content-Type': 'image/png', 'X-Count': count });
          res.end(Buffer.alloc(5000, 7));
          return;
        case '/app/own-gzip':
          res.writeHead(200, { 'Content-Type': 'text/html', 'Content-Encoding': 'gzip', 'X-Count': count });
          res.end(zlib.gzipSync(PAGE));
          return;
        case '/app/cookie':
          res.writeHead(200, { 'Content-Type': 'text/html', 'Set-Cookie': `n=${count}`, 'X-Count': count });
          res.end(PAGE);
          return;
        case '/app/no-store':
          res.writeHead(200, { 'Content-Type': 'text/html', 'Cache-Control': 'no-store', 'X-Count': count });
          res.end(PAGE);
          return;
        case '/app/chunked':
          res.writeHead(200, { 'Content-Type': 'text/html', 'X-Count': count });
          res.write(PAGE.slice(0, 5000));
          setTimeout(() => res.end(PAGE.slice(5000)), 20);
          return;
        default:
          res.writeHead(404);
          res.end();
      }
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const port = (upstream.address() as AddressInfo).port;
    g = await startGateway(
      [
        'upstreams:',
        '  - pattern: /app/*',
        `    targets: ["http://127.0.0.1:${port}"]`,
        'cache:',
        '  rules:',
        '    - pattern: /app/*',
        '      ttl_s: 60',
        '      stale_s: 60',
      ].join('\n'),
      { docroot: ensureFixtureSite() },
    );
  });
  after(async () => {
    await g.stop();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  test("an upstream page is compressed for a client that accepts gzip, and decodes to the upstream's bytes", async () => {
    const r = await get(g.port, '/app/chunked', { 'Accept-Encoding': 'gzip' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-encoding'], 'gzip');
    assert.equal(r.headers['vary'], 'Accept-Encoding');
    assert.equal(zlib.gunzipSync(r.body).toString(), PAGE);
    assert.ok(r.body.length < PAGE.length / 5, `${r.body.length} bytes`);
  });

  test('brotli when preferred, identity without Accept-Encoding', async () => {
    const br = await get(g.port, '/app/chunked', { 'Accept-Encoding': 'gzip;q=0.5, br' });
    assert.equal(br.headers['content-encoding'], 'br');
    assert.equal(zlib.brotliDecompressSync(br.body).toString(), PAGE);
    const plain = await get(g.port, '/app/chunked');
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(plain.body.toString(), PAGE);
  });

  test('what compression leaves alone: bodies under min_bytes, images, an encoding the upstream chose', async () => {
    const tiny = await get(g.port, '/app/tiny', { 'Accept-Encoding': 'gzip' });
    assert.equal(tiny.headers['content-encoding'], undefined);
    assert.equal(tiny.body.toString(), 'tiny');
    const image = await get(g.port, '/app/image', { 'Accept-Encoding': 'gzip' });
    assert.equal(image.headers['content-encoding'], undefined);
    assert.equal(image.body.length, 5000);
    const own = await get(g.port, '/app/own-gzip', { 'Accept-Encoding': 'gzip' });
    assert.equal(own.headers['content-encoding'], 'gzip');
    assert.equal(zlib.gunzipSync(own.body).toString(), PAGE, 'compressed once, by the upstream');
  });

  test('a cacheable upstream answer is stored: the second request is a HIT the upstream never sees', async () => {
    const first = await get(g.port, '/app/page');
    assert.equal(first.headers['x-cache'], 'MISS');
    assert.equal(first.body.toString(), PAGE);
    const before = seen.get('/app/page');
    const second = await get(g.port, '/app/page');
    assert.equal(second.headers['x-cache'], 'HIT');
    assert.equal(second.body.toString(), PAGE);
    assert.equal(second.headers['x-count'], first.headers['x-count']);
    assert.equal(seen.get('/app/page'), before, 'the upstream was not asked again');
    assert.ok(second.headers['age'] !== undefined);
  });

  test('a cached upstream answer is served compressed to a client that accepts it', async () => {
    await get(g.port, '/app/page');
    const r = await get(g.port, '/app/page', { 'Accept-Encoding': 'br' });
    assert.equal(r.headers['x-cache'], 'HIT');
    assert.equal(r.headers['content-encoding'], 'br');
    assert.equal(zlib.brotliDecompressSync(r.body).toString(), PAGE);
  });

  test('Set-Cookie and no-store answers are never stored', async () => {
    const a = await get(g.port, '/app/cookie');
    const b = await get(g.port, '/app/cookie');
    assert.notEqual(a.headers['set-cookie']?.[0], b.headers['set-cookie']?.[0], 'each visitor gets its own cookie');
    assert.notEqual(b.headers['x-cache'], 'HIT');
    const c = await get(g.port, '/app/no-store');
    const d = await get(g.port, '/app/no-store');
    assert.notEqual(c.headers['x-count'], d.headers['x-count']);
    assert.notEqual(d.headers['x-cache'], 'HIT');
  });

  test('a failing upstream: its stored answer stands in once stale (stale-if-error), not its 502', async () => {
    const first = await get(g.port, '/app/short');
    assert.equal(first.headers['x-cache'], 'MISS');
    // max-age=1: past it the entry is stale and the next request asks the upstream again (the subject is time).
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    failing = true;
    try {
      const r = await get(g.port, '/app/short');
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-cache'], 'STALE');
      assert.equal(r.body.toString(), PAGE);
      assert.equal(r.headers['x-count'], first.headers['x-count']);
      const uncached = await get(g.port, '/app/short?other=key');
      assert.equal(uncached.status, 502, 'nothing stored under another key: the failure shows');
    } finally {
      failing = false;
    }
  });
});

describe('an HTTP/2 client resetting a proxied stream', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-h2up-'));
  const certs = selfSigned(tmp, 'h2up');
  let upstream: http.Server;
  let g: RunningGateway;
  /** Resolved when the upstream sees its streaming request go away. */
  let upstreamClosed: Promise<void> = Promise.resolve();

  before(async () => {
    upstream = http.createServer((_req, res) => {
      upstreamClosed = new Promise((resolve) => res.once('close', () => resolve()));
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      const timer = setInterval(() => res.write(Buffer.alloc(1000, 1)), 50);
      res.once('close', () => clearInterval(timer));
      setTimeout(() => res.end(), 10_000).unref();
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const port = (upstream.address() as AddressInfo).port;
    g = await startGateway(
      `server:\n  tls:\n    cert: ${certs.cert}\n    key: ${certs.key}\nupstreams:\n  - pattern: /feed*\n    targets: ["http://127.0.0.1:${port}"]\n`,
      { docroot: ensureFixtureSite() },
    );
  });
  after(async () => {
    await g.stop();
    upstream.closeAllConnections();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('a reset with an error code abandons the upstream request, and the gateway goes on serving', async () => {
    const session = http2.connect(`https://localhost:${g.port}`, { rejectUnauthorized: false });
    session.on('error', () => undefined); // the reset below is the point
    try {
      await new Promise<void>((resolve, reject) => {
        const stream = session.request({ ':path': '/feed' });
        stream.on('error', () => undefined); // the client's own reset
        stream.once('data', () => {
          stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
          resolve();
        });
        stream.once('close', () => reject(new Error('closed before any data')));
      });
      await Promise.race([
        upstreamClosed,
        new Promise((_, reject) => setTimeout(() => reject(new Error('the upstream request was never abandoned')), 5_000)),
      ]);
    } finally {
      session.close();
    }
    // A new session on the same gateway is served.
    const fresh = http2.connect(`https://localhost:${g.port}`, { rejectUnauthorized: false });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const stream = fresh.request({ ':path': '/static.txt' });
        stream.on('response', (h) => resolve(Number(h[':status'])));
        stream.on('error', reject);
        stream.resume();
      });
      assert.equal(status, 200);
    } finally {
      fresh.close();
    }
  });
});
