/**
 * HTTP/2 on the TLS listener (ALPN, with HTTP/1.1 as fallback on the same port), driven by curl and by node's
 * HTTP/2 client through the real gateway and real php-cgi: what PHP sees, static files, uploads, the gateway's
 * own errors, multiplexing, stream limits, idle sessions and a graceful stop.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ensureFixtureSite } from './fixtures/site.js';
import { selfSigned } from './support/certs.js';
import { startGateway, type Dump, type RunningGateway } from './support/gateway.js';
import { eventually } from './support/proc.js';

const run = promisify(execFile);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-h2-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const certs = selfSigned(tmp, 'h2');

function tlsYaml(extra = ''): string {
  return `server:\n  tls:\n    cert: ${certs.cert}\n    key: ${certs.key}\n${extra}php:\n  worker_count: 2\n`;
}

/** curl's status line, headers and body, as it prints them with -i. */
async function curl(args: string[]): Promise<{ version: string; status: number; headers: Map<string, string>; body: string }> {
  const { stdout } = await run('curl', ['-sk', '-i', '--max-time', '20', ...args], { maxBuffer: 16 * 1024 * 1024 });
  const split = stdout.indexOf('\r\n\r\n');
  const [statusLine, ...lines] = stdout.slice(0, split).split('\r\n');
  const m = /^HTTP\/([\d.]+) (\d{3})/.exec(statusLine!);
  assert.ok(m, `no status line in ${stdout.slice(0, 200)}`);
  const headers = new Map(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()] as const));
  return { version: m[1]!, status: Number(m[2]), headers, body: stdout.slice(split + 4) };
}

interface H2Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
}

function h2request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer | string): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    const chunks: Buffer[] = [];
    let head: http2.IncomingHttpHeaders = {};
    stream.on('response', (h) => (head = h));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve({ status: Number(head[':status']), headers: head, body: Buffer.concat(chunks) }));
    stream.on('error', reject);
    if (body !== undefined) stream.end(body);
  });
}

/** True while a worker of the default pool runs a request whose label matches `label`. */
function busyWith(g: RunningGateway, label: RegExp): boolean {
  return g.gateway.pools
    .get('default')!
    .stats()
    .workers.some((w) => w.state === 'busy' && w.current !== null && label.test(w.current.label));
}

function connect(port: number, settings: http2.Settings = {}): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://localhost:${port}`, { rejectUnauthorized: false, settings });
    session.once('remoteSettings', () => resolve(session));
    session.once('error', reject);
  });
}

describe('HTTP/2 over TLS', () => {
  let g: RunningGateway;
  before(async () => {
    g = await startGateway(tlsYaml(), { docroot: ensureFixtureSite() });
  });
  after(() => g.stop());

  test('curl --http2 gets HTTP/2, and PHP sees HTTP/2.0, HTTPS=on, REQUEST_SCHEME=https and the :authority as HTTP_HOST', async () => {
    const r = await curl(['--http2', `https://localhost:${g.port}/dump.php?x=1`]);
    assert.equal(r.version, '2');
    assert.equal(r.status, 200);
    const d = JSON.parse(r.body) as Dump;
    assert.equal(d.server['SERVER_PROTOCOL'], 'HTTP/2.0');
    assert.equal(d.server['HTTPS'], 'on');
    assert.equal(d.server['REQUEST_SCHEME'], 'https');
    assert.equal(d.server['HTTP_HOST'], `localhost:${g.port}`);
    assert.equal(d.server['REQUEST_URI'], '/dump.php?x=1');
    assert.equal(d.server['QUERY_STRING'], 'x=1');
  });

  test('curl --http1.1 on the same port falls back to HTTP/1.1 over TLS', async () => {
    const r = await curl(['--http1.1', `https://localhost:${g.port}/dump.php`]);
    assert.equal(r.version, '1.1');
    const d = JSON.parse(r.body) as Dump;
    assert.equal(d.server['SERVER_PROTOCOL'], 'HTTP/1.1');
    assert.equal(d.server['HTTPS'], 'on');
  });

  test('cookies sent as several HTTP/2 cookie headers reach PHP joined with "; "', async () => {
    const s = await connect(g.port);
    try {
      // node's client sends each array item as its own `cookie` field, as browsers do over HTTP/2.
      const r = await h2request(s, { ':path': '/dump.php', cookie: ['a=1', 'b=2', 'c=3'] });
      const d = JSON.parse(r.body.toString()) as Dump;
      assert.equal(d.server['HTTP_COOKIE'], 'a=1; b=2; c=3');
      assert.deepEqual(d.cookie, { a: '1', b: '2', c: '3' });
    } finally {
      s.close();
    }
  });

  test('a static file over HTTP/2: length, validators, 304 and a byte range', async () => {
    const s = await connect(g.port);
    try {
      const full = await h2request(s, { ':path': '/static.txt' });
      assert.equal(full.status, 200);
      const expected = fs.readFileSync(path.join(ensureFixtureSite(), 'static.txt'));
      assert.deepEqual(full.body, expected);
      assert.equal(full.headers['content-length'], String(expected.length));
      const etag = full.headers['etag'] as string;
      assert.ok(etag);
      const again = await h2request(s, { ':path': '/static.txt', 'if-none-match': etag });
      assert.equal(again.status, 304);
      assert.equal(again.body.length, 0);
      const part = await h2request(s, { ':path': '/static.txt', range: 'bytes=0-3' });
      assert.equal(part.status, 206);
      assert.deepEqual(part.body, expected.subarray(0, 4));
    } finally {
      s.close();
    }
  });

  test('a POST body over HTTP/2 reaches PHP whole', async () => {
    const s = await connect(g.port);
    try {
      const body = Buffer.alloc(300_000, 'q');
      const r = await h2request(s, { ':method': 'POST', ':path': '/dump.php', 'content-type': 'application/octet-stream' }, body);
      const d = JSON.parse(r.body.toString()) as Dump;
      assert.equal(d.input_len, body.length);
      assert.equal(d.server['CONTENT_LENGTH'], String(body.length));
    } finally {
      s.close();
    }
  });

  test("the gateway's own errors work over HTTP/2 (404, 413 without a Connection header) and keep the session usable", async () => {
    const s = await connect(g.port);
    try {
      assert.equal((await h2request(s, { ':path': '/.env' })).status, 404);
      // The body is announced, never sent: the answer comes before it, as nginx's client_max_body_size.
      const stream = s.request({ ':method': 'POST', ':path': '/dump.php', 'content-length': String(200 * 1024 * 1024) }, { endStream: false });
      const head = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
        stream.once('response', resolve);
        stream.once('error', reject);
      });
      stream.close();
      assert.equal(head[':status'], 413);
      assert.equal(head['connection'], undefined);
      assert.equal((await h2request(s, { ':path': '/static.txt' })).status, 200, 'the same session still serves');
    } finally {
      s.close();
    }
  });

  test('30 streams multiplexed on one connection are all answered, PHP and static mixed', async () => {
    const s = await connect(g.port);
    try {
      const answers = await Promise.all(
        Array.from({ length: 30 }, (_, i) => h2request(s, { ':path': i % 2 === 0 ? `/sleep.php?ms=20&i=${i}` : '/static.txt' })),
      );
      assert.deepEqual(
        answers.map((a) => a.status),
        Array(30).fill(200),
      );
      assert.equal(answers.filter((a) => a.body.toString() === 'slept').length, 15);
    } finally {
      s.close();
    }
  });

  test('a stream the client cancels while PHP runs is aborted in PHP, and the session goes on', async () => {
    const marker = path.join(tmp, 'abort-marker');
    const s = await connect(g.port);
    try {
      const stream = s.request({ ':path': `/abort.php?marker=${encodeURIComponent(marker)}` });
      await new Promise<void>((resolve) => stream.once('data', () => resolve()));
      stream.close(http2.constants.NGHTTP2_CANCEL);
      await eventually('the shutdown function wrote its marker', () => fs.existsSync(marker), 10_000);
      assert.equal(fs.readFileSync(marker, 'utf8'), 'aborted=1');
      assert.equal((await h2request(s, { ':path': '/static.txt' })).status, 200);
    } finally {
      s.close();
    }
  });
});

describe('HTTP/2 and request bodies past max_body_mb', () => {
  test('a body without Content-Length that grows past max_body_mb gets 413, then the stream is closed: the client cannot go on uploading', async () => {
    const g = await startGateway(tlsYaml('  max_body_mb: 1\n'), { docroot: ensureFixtureSite() });
    const s = await connect(g.port);
    try {
      const stream = s.request({ ':method': 'POST', ':path': '/dump.php' }, { endStream: false });
      let status = 0;
      stream.on('response', (h) => (status = Number(h[':status'])));
      stream.on('error', () => undefined); // the gateway cuts the stream after its 413: the test checks the status and the cut
      stream.resume();
      const chunk = Buffer.alloc(64 * 1024, 'u');
      let sent = 0;
      const LIMIT = 64 * 1024 * 1024;
      await new Promise<void>((resolve) => {
        stream.once('close', () => resolve());
        const pump = (): void => {
          while (!stream.destroyed && sent < LIMIT) {
            sent += chunk.length;
            if (!stream.write(chunk)) {
              stream.once('drain', pump);
              return;
            }
          }
          if (sent >= LIMIT) stream.end();
        };
        pump();
      });
      assert.equal(status, 413);
      assert.ok(sent < LIMIT, `the gateway kept reading: ${sent} bytes went up`);
    } finally {
      s.close();
      await g.stop();
    }
  });
});

describe('HTTP/2 limits', () => {
  let g: RunningGateway;
  before(async () => {
    g = await startGateway(tlsYaml('  limits:\n    h2_max_streams: 3\n  timeouts:\n    keepalive_ms: 600\n'), { docroot: ensureFixtureSite() });
  });
  after(() => g.stop());

  test('server.limits.h2_max_streams is announced, and streams beyond it wait instead of failing', async () => {
    const s = await connect(g.port);
    try {
      assert.equal(s.remoteSettings.maxConcurrentStreams, 3);
      const answers = await Promise.all(Array.from({ length: 8 }, () => h2request(s, { ':path': '/sleep.php?ms=50' })));
      assert.deepEqual(
        answers.map((a) => a.status),
        Array(8).fill(200),
      );
    } finally {
      s.close();
    }
  });

  test('an idle HTTP/2 connection is closed after keepalive_ms (GOAWAY)', async () => {
    const s = await connect(g.port);
    assert.equal((await h2request(s, { ':path': '/static.txt' })).status, 200);
    const started = Date.now();
    await new Promise<void>((resolve) => s.once('close', () => resolve()));
    const waited = Date.now() - started;
    assert.ok(waited < 10_000, `closed after ${waited} ms`);
  });

  test('a connection that never starts its TLS handshake is closed after header_ms', async () => {
    const g2 = await startGateway(tlsYaml('  timeouts:\n    header_ms: 500\n'), { docroot: ensureFixtureSite() });
    try {
      const started = Date.now();
      await new Promise<void>((resolve, reject) => {
        const raw = net.connect(g2.port, '127.0.0.1');
        raw.on('error', reject);
        raw.on('close', () => resolve());
      });
      assert.ok(Date.now() - started < 5000, `open for ${Date.now() - started} ms`);
    } finally {
      await g2.stop();
    }
  });

  test('a request running past keepalive_ms is not cut by the idle timeout', async () => {
    const s = await connect(g.port);
    try {
      const r = await h2request(s, { ':path': '/sleep.php?ms=1500' });
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'slept');
    } finally {
      s.close();
    }
  });
});

describe('HTTP/2 and a graceful stop', () => {
  test('past drain_ms a stop cuts the HTTP/2 requests still running instead of waiting for them', async () => {
    const g = await startGateway(tlsYaml('  timeouts:\n    drain_ms: 500\n'), { docroot: ensureFixtureSite() });
    const s = await connect(g.port);
    s.on('error', () => undefined); // the stop cuts the session: that is what the test checks
    const slow = h2request(s, { ':path': '/sleep.php?ms=8000' }).then(
      (r) => (r.status === 200 ? 'answered' : 'cut'),
      () => 'cut',
    );
    await eventually('the slow request runs in PHP', () => busyWith(g, /sleep\.php\?ms=8000/), 5000);
    const started = Date.now();
    await g.stop();
    const took = Date.now() - started;
    assert.ok(took < 5000, `stop took ${took} ms`);
    assert.equal(await slow, 'cut');
  });

  test("the access log counts an HTTP/2 response's body bytes (streams share one connection)", async () => {
    const g = await startGateway(tlsYaml(), { docroot: ensureFixtureSite() });
    const s = await connect(g.port);
    try {
      const r = await h2request(s, { ':path': '/static.txt' });
      await h2request(s, { ':path': '/sleep.php?ms=1' });
      const logged = (): Array<Record<string, unknown>> => g.logs().filter((l) => l['uri'] === '/static.txt' || l['uri'] === '/sleep.php?ms=1');
      await eventually('both access lines', () => logged().length >= 2, 5000);
      const lines = logged();
      assert.deepEqual(
        lines.map((l) => l['bytes']),
        [r.body.length, 'slept'.length],
      );
    } finally {
      s.close();
      await g.stop();
    }
  });

  test('the lame duck sends GOAWAY to an open session, and a new session is still served until it ends', async () => {
    const g = await startGateway(tlsYaml('  timeouts:\n    lame_duck_ms: 1500\n'), { docroot: ensureFixtureSite() });
    const s = await connect(g.port);
    let fresh: http2.ClientHttp2Session | null = null;
    try {
      assert.equal((await h2request(s, { ':path': '/static.txt' })).status, 200);
      const goaway = new Promise<number>((resolve) => s.once('goaway', (code: number) => resolve(code)));
      const started = Date.now();
      const stopped = g.stop();
      assert.equal(await goaway, http2.constants.NGHTTP2_NO_ERROR, 'a graceful GOAWAY');
      fresh = await connect(g.port);
      assert.equal((await h2request(fresh, { ':path': '/sleep.php?ms=1' })).status, 200, 'a new connection is served');
      assert.ok(Date.now() - started < 1500, 'within the lame duck');
      await stopped;
    } finally {
      s.destroy();
      fresh?.destroy();
      await g.stop();
    }
  });

  test('stop lets a running HTTP/2 request finish, then closes the session', async () => {
    const g = await startGateway(tlsYaml(), { docroot: ensureFixtureSite() });
    const s = await connect(g.port);
    const slow = h2request(s, { ':path': '/sleep.php?ms=800' });
    await eventually('the request runs in PHP', () => busyWith(g, /sleep\.php\?ms=800/), 5000);
    const stopped = g.stop();
    const r = await slow;
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'slept');
    await stopped;
    if (!s.closed) await new Promise<void>((resolve) => s.once('close', () => resolve()));
  });
});
