/**
 * HTTP upstream routes (upstreams[]) through the real gateway to small Node HTTP + websocket servers started here:
 * what the upstream sees (path, strip_prefix, X-Forwarded-*, hop-by-hop headers, bodies) and what the client gets
 * back (status, headers, the gateway's security headers under the upstream's), round-robin and least_conn, dead
 * and silent targets (502/504, marked down, back after down_s), websockets, HTTP/2 clients, 413 before proxying,
 * PHP routes beside upstream ones, rate limits, error pages and a reload.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../config/load.js';
import { prepareRequestHeaders, responseHeaders } from '../gateway/handlers/upstream/headers.js';
import { selfSigned } from './support/certs.js';
import { PHP_USER_ENV, request, startGateway, type RunningGateway } from './support/gateway.js';
import { eventually } from './support/proc.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-upstreams-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function site(): string {
  const dir = path.join(tmp, 'site');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'hello.php'), '<?php echo "php:" . $_SERVER["REQUEST_URI"];');
  fs.writeFileSync(path.join(dir, 'echo.php'), '<?php echo "php:", $_SERVER["REQUEST_METHOD"], ":", file_get_contents("php://input");');
  fs.writeFileSync(path.join(dir, '50x.html'), 'our own 50x page\n');
  return dir;
}

/** What a backend saw of one request. */
interface Seen {
  id: string;
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  rawNames: string[];
  body: string;
}

/**
 * A small upstream: answers every request with what it saw (JSON), plus a few special paths; websocket handshakes
 * get a hand-written RFC 6455 echo (text frames up to 125 bytes are all the tests send).
 */
class Backend {
  readonly id: string;
  readonly seen: Seen[] = [];
  /** KiB written so far by the answers of /big. */
  bigKb = 0;
  /** Answers whose connection was closed before they were complete. */
  cut = 0;
  readonly server: http.Server;
  port = 0;

  constructor(id: string) {
    this.id = id;
    this.server = http.createServer((req, res) => this.#serve(req, res));
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex) => acceptWebSocket(req, socket, id));
  }

  async listen(port = 0): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  hits(): number {
    return this.seen.length;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  #serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    res.on('close', () => (res.writableFinished ? undefined : this.cut++));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rawNames: string[] = [];
      for (let i = 0; i < req.rawHeaders.length; i += 2) rawNames.push(req.rawHeaders[i]!.toLowerCase());
      const seen: Seen = {
        id: this.id,
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawNames,
        body: Buffer.concat(chunks).toString(),
      };
      this.seen.push(seen);
      const u = new URL(req.url ?? '/', 'http://x');
      const wait = Number(u.searchParams.get('ms') ?? 0);
      if (u.pathname.endsWith('/hang')) return; // never answers
      if (u.pathname.endsWith('/big')) {
        res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
        const kb = Number(u.searchParams.get('kb'));
        let sent = 0;
        const more = (): void => {
          while (sent < kb) {
            sent++;
            this.bigKb++;
            if (!res.write(Buffer.alloc(1024, 97 + (sent % 26)))) return void res.once('drain', more);
          }
          res.end();
        };
        more();
        return;
      }
      if (u.pathname.endsWith('/redirect')) {
        res.writeHead(302, { Location: u.searchParams.get('to') ?? `http://127.0.0.1:${this.port}/login?next=%2F` });
        res.end();
        return;
      }
      if (u.pathname.endsWith('/cut')) {
        res.writeHead(200, { 'Content-Length': '1000' });
        res.write('only part of it');
        setTimeout(() => res.socket?.destroy(), 50);
        return;
      }
      setTimeout(() => {
        if (u.pathname.endsWith('/headers')) {
          res.setHeader('X-Frame-Options', 'DENY');
          res.setHeader('Set-Cookie', ['a=1; Path=/', 'b=2; Path=/']);
          res.setHeader('Server', 'backend/1.0');
          res.setHeader('X-Powered-By', 'Express');
          res.setHeader('X-Accel-Redirect', '/internal/secret');
          res.setHeader('Connection', 'keep-alive, X-Hop');
          res.setHeader('X-Hop', 'hop-by-hop');
          res.statusMessage = 'Made';
          res.statusCode = 201;
        }
        res.setHeader('Content-Type', 'application/json');
        res.setHeader('X-Backend', this.id);
        res.end(req.method === 'HEAD' ? undefined : JSON.stringify(seen));
      }, wait);
    });
  }
}

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

function acceptWebSocket(req: http.IncomingMessage, socket: Duplex, id: string): void {
  const accept = crypto
    .createHash('sha1')
    .update(`${req.headers['sec-websocket-key'] ?? ''}${WS_GUID}`)
    .digest('base64');
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${accept}\r\nX-Seen-Path: ${req.url ?? ''}\r\nX-Seen-For: ${String(req.headers['x-forwarded-for'])}\r\n\r\n`,
  );
  const frames = new FrameReader();
  socket.on('data', (d: Buffer) => {
    for (const f of frames.push(d)) {
      if (f.opcode === 8) socket.end(frame(8, f.payload, false));
      else socket.write(frame(1, Buffer.from(`${id}:${f.payload.toString()}`), false));
    }
  });
  socket.on('end', () => socket.end()); // node's HTTP server leaves upgraded sockets half-open
  socket.on('error', () => socket.destroy()); // the gateway cut the tunnel: nothing to answer
}

/** One websocket frame (payload under 126 bytes); client frames are masked, as RFC 6455 requires. */
function frame(opcode: number, payload: Buffer, masked: boolean): Buffer {
  assert.ok(payload.length < 126);
  const head = Buffer.from([0x80 | opcode, (masked ? 0x80 : 0) | payload.length]);
  if (!masked) return Buffer.concat([head, payload]);
  const mask = crypto.randomBytes(4);
  return Buffer.concat([head, mask, Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!))]);
}

class FrameReader {
  #buf = Buffer.alloc(0);

  push(data: Buffer): Array<{ opcode: number; payload: Buffer }> {
    this.#buf = Buffer.concat([this.#buf, data]);
    const out: Array<{ opcode: number; payload: Buffer }> = [];
    for (;;) {
      const b = this.#buf;
      if (b.length < 2) break;
      const masked = (b[1]! & 0x80) !== 0;
      const len = b[1]! & 0x7f;
      const start = 2 + (masked ? 4 : 0);
      if (b.length < start + len) break;
      let payload = b.subarray(start, start + len);
      if (masked) payload = Buffer.from(payload.map((x, i) => x ^ b[2 + (i % 4)]!));
      out.push({ opcode: b[0]! & 0x0f, payload });
      this.#buf = b.subarray(start + len);
    }
    return out;
  }
}

/** A hand-written websocket client over a raw socket: the handshake's answer, then text frames both ways. */
class WsClient {
  readonly socket: net.Socket;
  status = 0;
  head = '';
  readonly #frames = new FrameReader();
  readonly #messages: string[] = [];
  #waiting: ((m: string) => void) | null = null;
  readonly closed: Promise<void>;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  /** `tls`: over TLS, as a browser opens wss:// (ALPN http/1.1). */
  static open(port: number, target: string, opts: { tls?: boolean } = {}): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const socket =
        opts.tls === true
          ? tls.connect({ port, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
          : net.connect(port, '127.0.0.1');
      const client = new WsClient(socket);
      const key = crypto.randomBytes(16).toString('base64');
      socket.once(opts.tls === true ? 'secureConnect' : 'connect', () =>
        socket.write(
          `GET ${target} HTTP/1.1\r\nHost: gateway.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        ),
      );
      let pending = Buffer.alloc(0);
      const onData = (d: Buffer): void => {
        if (client.status !== 0) return void client.#onFrames(d);
        pending = Buffer.concat([pending, d]);
        const end = pending.indexOf('\r\n\r\n');
        if (end < 0) return;
        client.head = pending.subarray(0, end).toString();
        client.status = Number(/^HTTP\/1\.1 (\d{3})/.exec(client.head)?.[1] ?? 0);
        if (client.status === 101) {
          const expected = crypto.createHash('sha1').update(`${key}${WS_GUID}`).digest('base64');
          assert.match(client.head, new RegExp(`sec-websocket-accept: ${expected.replace(/[+/]/g, '\\$&')}`, 'i'));
        }
        client.#onFrames(pending.subarray(end + 4));
        resolve(client);
      };
      socket.on('data', onData);
      socket.once('error', reject);
      socket.once('close', () => (client.status === 0 ? reject(new Error('closed before the handshake answer')) : undefined));
    });
  }

  header(name: string): string | undefined {
    const m = new RegExp(`^${name}: (.*)$`, 'im').exec(this.head);
    return m?.[1];
  }

  send(text: string): void {
    this.socket.write(frame(1, Buffer.from(text), true));
  }

  next(): Promise<string> {
    const m = this.#messages.shift();
    if (m !== undefined) return Promise.resolve(m);
    return new Promise((resolve) => (this.#waiting = resolve));
  }

  #onFrames(data: Buffer): void {
    for (const f of this.#frames.push(data)) {
      const text = f.payload.toString();
      const w = this.#waiting;
      this.#waiting = null;
      if (w !== null) w(text);
      else this.#messages.push(text);
    }
  }
}

/**
 * A loopback port whose connections are never accepted: a child process listens with a backlog of 1 and blocks
 * its event loop, two connections fill the queue, and the kernel drops every later SYN (a swallowed connection,
 * as behind a firewall that drops, without sending anything off this host).
 */
async function blackhole(): Promise<{ port: number; close(): void }> {
  const child = spawn(
    process.execPath,
    [
      '-e',
      `
    const srv = require('node:net').createServer();
    srv.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
      process.stdout.write(srv.address().port + '\\n');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
    });`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = await new Promise<number>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
  const fillers = await Promise.all(
    [0, 1].map(
      () =>
        new Promise<net.Socket>((resolve) => {
          const s = net.connect(port, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  return {
    port,
    close() {
      for (const s of fillers) s.destroy();
      child.kill('SIGKILL');
    },
  };
}

/** A loopback port nothing listens on (just closed): connections to it are refused at once. */
async function deadPort(): Promise<number> {
  const b = await new Backend('gone').listen();
  await b.close();
  return b.port;
}

function seenOf(res: { text: string }): Seen {
  return JSON.parse(res.text) as Seen;
}

function logsWith(g: RunningGateway, msg: string): number {
  return g.logs().filter((l) => l.msg === msg).length;
}

/** Backends named by `ids`, then a gateway (one PHP worker) with `yaml(backends)`; `run`, then all of them stop. */
async function withGateway(
  ids: readonly string[],
  yaml: (b: Backend[]) => string,
  run: (g: RunningGateway, b: Backend[]) => Promise<void>,
): Promise<void> {
  const backends = await Promise.all(ids.map((id) => new Backend(id).listen()));
  const g = await startGateway(`php:\n  worker_count: 1\n${yaml(backends)}`, { docroot: site() });
  try {
    await run(g, backends);
  } finally {
    await g.stop();
    for (const b of backends) await b.close();
  }
}

describe('proxied requests', () => {
  let a: Backend;
  let g: RunningGateway;
  before(async () => {
    a = await new Backend('A').listen();
    g = await startGateway(
      `php:\n  worker_count: 1\nserver:\n  max_body_mb: 1\nupstreams:
  - { pattern: "/api/node*", targets: ["${a.url}"], strip_prefix: /api/node }
  - { pattern: "/raw/*", targets: ["${a.url}"] }
  - { pattern: "/based/*", targets: ["${a.url}/base"], strip_prefix: /based/ }
  - { pattern: "/own-host/*", targets: ["${a.url}"], host_header: target }
`,
      { docroot: site() },
    );
  });
  after(async () => {
    await g.stop();
    await a.close();
  });

  test("a GET reaches the upstream with the X-Forwarded-* headers, the client's Host, and no hop-by-hop headers", async () => {
    const res = await request(g.base, '/raw/page?x=1', {
      headers: { Host: 'shop.example:8443', Connection: 'keep-alive, X-Drop', 'X-Drop': 'gone', 'Keep-Alive': '5', TE: 'trailers', 'X-Keep': 'kept' },
    });
    assert.equal(res.status, 200);
    const seen = seenOf(res);
    assert.equal(seen.url, '/raw/page?x=1');
    assert.equal(seen.headers['host'], 'shop.example:8443');
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen.headers['x-real-ip'], '127.0.0.1');
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    assert.equal(seen.headers['x-forwarded-host'], 'shop.example:8443');
    assert.equal(seen.headers['x-keep'], 'kept');
    for (const hop of ['x-drop', 'keep-alive', 'te', 'upgrade', 'expect']) assert.equal(seen.headers[hop], undefined, hop);
    assert.notEqual(seen.headers['connection'], 'keep-alive, X-Drop');
  });

  test('X-Forwarded-* and X-Real-IP from a client that is not a trusted proxy are replaced, not passed on', async () => {
    const res = await request(g.base, '/raw/spoof', {
      headers: {
        'X-Forwarded-For': '6.6.6.6',
        'X-Real-IP': '6.6.6.6',
        'X-Forwarded-Proto': 'https',
        'X-Forwarded-Host': 'evil.example',
        'X-Forwarded-Prefix': '/admin',
        Forwarded: 'for=6.6.6.6',
      },
    });
    const seen = seenOf(res);
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen.headers['x-real-ip'], '127.0.0.1');
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    assert.equal(seen.headers['x-forwarded-host'], `127.0.0.1:${g.port}`);
    assert.equal(seen.headers['x-forwarded-prefix'], undefined);
    assert.equal(seen.headers['forwarded'], undefined);
  });

  test('header names with underscores are not passed on (nginx: underscores_in_headers off), so X_Forwarded_For spoofs nothing', async () => {
    const res = await request(g.base, '/raw/underscore', {
      headers: [
        ['Host', 'localhost'],
        ['X_Forwarded_For', '6.6.6.6'],
        ['X_Real_IP', '6.6.6.6'],
        ['X-Plain', 'kept'],
        ['X.Dotted', 'x'],
      ],
    });
    const seen = seenOf(res);
    assert.equal(seen.headers['x_forwarded_for'], undefined);
    assert.equal(seen.headers['x_real_ip'], undefined);
    assert.equal(seen.headers['x.dotted'], undefined);
    assert.equal(seen.headers['x-plain'], 'kept');
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
  });

  test('a POST body streams to the upstream whole, sized or chunked', async () => {
    const body = crypto
      .randomBytes(300 * 1024)
      .toString('hex')
      .slice(0, 300 * 1024);
    const sized = seenOf(await request(g.base, '/raw/upload', { method: 'POST', body, headers: { 'Content-Type': 'text/plain' } }));
    assert.equal(sized.method, 'POST');
    assert.equal(sized.headers['content-length'], String(body.length));
    assert.equal(sized.headers['content-type'], 'text/plain');
    assert.equal(sized.body, body);
    const chunked = seenOf(
      await request(g.base, '/raw/upload', {
        method: 'POST',
        body: [Buffer.from('part one, '), Buffer.from('part two')],
        headers: { 'Transfer-Encoding': 'chunked' },
      }),
    );
    assert.equal(chunked.headers['transfer-encoding'], 'chunked');
    assert.equal(chunked.body, 'part one, part two');
  });

  test('a chunked DELETE body stays framed: it is never smuggled to the upstream as a second request', async () => {
    const before = a.hits();
    const res = await request(g.base, '/raw/item', {
      method: 'DELETE',
      body: [Buffer.from('GET /raw/smuggled HTTP/1.1\r\nHost: x\r\n\r\n')],
      headers: { 'Transfer-Encoding': 'chunked' },
    });
    const seen = seenOf(res);
    assert.equal(seen.method, 'DELETE');
    assert.equal(seen.body, 'GET /raw/smuggled HTTP/1.1\r\nHost: x\r\n\r\n');
    // A quiet period, not a wait for an event: what is asserted is that no second request arrives.
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(
      a.hits(),
      before + 1,
      a.seen
        .slice(before)
        .map((s) => s.url)
        .join(', '),
    );
  });

  test('Expect: 100-continue is answered by the gateway and not passed on', async () => {
    const seen = await new Promise<Seen>((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1',
        port: g.port,
        path: '/raw/expect',
        method: 'PUT',
        headers: { Expect: '100-continue', 'Content-Length': 5 },
        agent: false,
      });
      req.setTimeout(5000, () => req.destroy(new Error('no answer within 5 s')));
      req.on('continue', () => req.end('hello'));
      req.on('response', (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve(JSON.parse(text) as Seen));
      });
      req.on('error', reject);
    });
    assert.equal(seen.body, 'hello');
    assert.equal(seen.headers['expect'], undefined);
  });

  test('strip_prefix: /api/node/x?y=1 → /x?y=1, /api/node → /, escapes kept as escapes; a path it does not prefix goes as sent', async () => {
    assert.equal(seenOf(await request(g.base, '/api/node/x?y=1')).url, '/x?y=1');
    assert.equal(seenOf(await request(g.base, '/api/node')).url, '/');
    assert.equal(seenOf(await request(g.base, '/api/node/')).url, '/');
    assert.equal(seenOf(await request(g.base, '/api/node/a%20b/%C3%A9?q=%20')).url, '/a%20b/%C3%A9?q=%20');
    assert.equal(seenOf(await request(g.base, '/api/node/100%25')).url, '/100%25');
    assert.equal(seenOf(await request(g.base, '/api/nodejs/x')).url, '/api/nodejs/x');
  });

  test('without strip_prefix the request target goes as the client sent it', async () => {
    assert.equal(seenOf(await request(g.base, '/raw/%7Euser/a%2Fb?q=1&r')).url, '/raw/%7Euser/a%2Fb?q=1&r');
  });

  test("a target URL's path goes in front of the forwarded one", async () => {
    assert.equal(seenOf(await request(g.base, '/based/x?y=2')).url, '/base/x?y=2');
  });

  test("host_header: target sends the target's host and port (nginx $proxy_host); X-Forwarded-Host keeps the client's", async () => {
    const seen = seenOf(await request(g.base, '/own-host/x', { headers: { Host: 'shop.example' } }));
    assert.equal(seen.headers['host'], `127.0.0.1:${a.port}`);
    assert.equal(seen.headers['x-forwarded-host'], 'shop.example');
  });

  test("the answer: status and reason, the upstream's headers over the security headers, repeated Set-Cookie, and what nginx hides dropped", async () => {
    const res = await request(g.base, '/raw/headers');
    assert.equal(res.status, 201);
    assert.equal(res.statusMessage, 'Made');
    assert.equal(res.headers['x-frame-options'], 'DENY', "the upstream's own wins");
    assert.equal(res.headers['x-content-type-options'], 'nosniff', "the gateway's where the upstream says nothing");
    assert.deepEqual(res.headers['set-cookie'], ['a=1; Path=/', 'b=2; Path=/']);
    assert.equal(res.headers['server'], 'phpgate');
    assert.equal(res.headers['x-backend'], 'A');
    for (const hidden of ['x-powered-by', 'x-accel-redirect', 'x-hop']) assert.equal(res.headers[hidden], undefined, hidden);
    assert.notEqual(res.headers['keep-alive'], 'timeout=5', "the upstream's keep-alive is its own");
    assert.equal(seenOf(res).url, '/raw/headers');
  });

  test('a Location pointing at the target is made to point through the gateway (nginx proxy_redirect default); others stay', async () => {
    assert.equal((await request(g.base, '/api/node/redirect')).headers['location'], '/api/node/login?next=%2F');
    assert.equal((await request(g.base, '/raw/redirect')).headers['location'], '/login?next=%2F');
    assert.equal(
      (await request(g.base, '/based/redirect')).headers['location'],
      `http://127.0.0.1:${a.port}/login?next=%2F`,
      "not under the target's /base/",
    );
    const elsewhere = `/raw/redirect?to=${encodeURIComponent('https://sso.example/login')}`;
    assert.equal((await request(g.base, elsewhere)).headers['location'], 'https://sso.example/login');
  });

  test('HEAD gets the head only', async () => {
    const res = await request(g.base, '/raw/headers', { method: 'HEAD' });
    assert.equal(res.status, 201);
    assert.equal(res.body.length, 0);
    assert.equal(res.headers['x-backend'], 'A');
  });

  test('a large answer to a slow reader holds the upstream back (backpressure), then arrives whole', async () => {
    const kb = 64 * 1024;
    a.bigKb = 0;
    let writtenWhilePaused = 0;
    const size = await new Promise<number>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: g.port, path: `/raw/big?kb=${kb}`, agent: false }, (res) => {
          res.pause();
          let n = 0;
          setTimeout(() => {
            writtenWhilePaused = a.bigKb;
            res.on('data', (c: Buffer) => (n += c.length));
            res.on('end', () => resolve(n));
            res.resume();
          }, 500);
        })
        .on('error', reject);
    });
    assert.equal(size, kb * 1024);
    // Socket buffers on both sides hold a few MiB at most; without backpressure the gateway would take all 64 MiB.
    assert.ok(writtenWhilePaused < kb / 2, `${writtenWhilePaused} KiB written while the client read nothing`);
  });

  test("an upstream that dies mid-answer cuts the client's connection (the answer is visibly incomplete)", async () => {
    const outcome = await new Promise<string>((resolve) => {
      setTimeout(() => resolve('still open after 5 s'), 5000).unref();
      http
        .get({ host: '127.0.0.1', port: g.port, path: '/raw/cut', agent: false }, (res) => {
          res.on('data', () => undefined);
          res.on('end', () => resolve('ended'));
          res.on('error', () => resolve('cut'));
          res.on('aborted', () => resolve('cut'));
        })
        .on('error', () => resolve('cut'));
    });
    assert.equal(outcome, 'cut');
  });

  test('413 before proxying: a declared body over max_body_mb never reaches the upstream', async () => {
    const before = a.hits();
    const res = await request(g.base, '/raw/upload', { method: 'POST', headers: { 'Content-Length': String(2 * 1024 * 1024) }, body: [] });
    assert.equal(res.status, 413);
    assert.equal(res.headers['connection'], 'close');
    assert.equal(a.hits(), before);
  });

  test('a chunked body passing max_body_mb gets 413 and the upstream request is cut', async () => {
    const before = a.hits();
    const chunk = Buffer.alloc(64 * 1024, 120);
    const res = await request(g.base, '/raw/upload', {
      method: 'POST',
      headers: { 'Transfer-Encoding': 'chunked' },
      body: Array.from({ length: 20 }, () => chunk),
    }).catch((err: Error) => ({ status: -1, text: err.message }));
    assert.ok(res.status === 413 || res.status === -1, `${res.status}`);
    // A quiet period, not a wait for an event: what is asserted is that the upstream never completes a request.
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(a.hits(), before, 'the upstream never saw a complete request');
  });

  test('PHP routes are unaffected', async () => {
    const res = await request(g.base, '/hello.php?x=1');
    assert.equal(res.status, 200);
    assert.equal(res.text, 'php:/hello.php?x=1');
  });

  test('the access log names the upstream as the pool', async () => {
    await request(g.base, '/raw/logged');
    await eventually('access line', () => g.logs().some((l) => l['log'] === 'access' && l['uri'] === '/raw/logged'));
    const line = g.logs().find((l) => l['log'] === 'access' && l['uri'] === '/raw/logged')!;
    assert.equal(line['pool'], `upstream:127.0.0.1:${a.port}`);
    assert.equal(line['status'], 200);
    assert.equal(typeof line['upstreamMs'], 'number');
  });
});

describe('a client that takes nothing', () => {
  test('is cut off after send_ms, and the upstream request with it', async () => {
    await withGateway(
      ['A'],
      ([a]) => `server:\n  timeouts: { send_ms: 300 }\nupstreams:\n  - { pattern: "/*", targets: ["${a!.url}"] }\n`,
      async (g, [a]) => {
        const t0 = Date.now();
        const socket = net.connect(g.port, '127.0.0.1', () => socket.write(`GET /big?kb=${64 * 1024} HTTP/1.1\r\nHost: x\r\n\r\n`));
        socket.pause(); // reads nothing, ever
        try {
          await eventually('the gateway gave up on the client', () => logsWith(g, 'client took no data for send_ms; closing it') === 1, 5000);
          assert.ok(Date.now() - t0 >= 250, `${Date.now() - t0} ms`);
          await eventually('the upstream request was closed', () => a!.cut === 1, 2000);
          assert.ok(a!.bigKb < 64 * 1024, `${a!.bigKb} KiB`);
        } finally {
          socket.destroy();
        }
      },
    );
  });
});

describe('behind a trusted proxy', () => {
  test('the received X-Forwarded-For is kept with the sender appended; X-Real-IP is the client; X-Forwarded-Proto and -Host are believed', async () => {
    await withGateway(
      ['A'],
      ([a]) => `server:\n  trusted_proxies: ["127.0.0.1"]\nupstreams:\n  - { pattern: "/*", targets: ["${a!.url}"] }\n`,
      async (g) => {
        const seen = seenOf(
          await request(g.base, '/x', {
            headers: {
              'X-Forwarded-For': '203.0.113.7, 10.9.9.9',
              'X-Forwarded-Proto': 'https',
              'X-Forwarded-Host': 'shop.example',
              'X-Forwarded-Prefix': '/shop',
            },
          }),
        );
        assert.equal(seen.headers['x-forwarded-for'], '203.0.113.7, 10.9.9.9, 127.0.0.1');
        assert.equal(seen.headers['x-real-ip'], '10.9.9.9', 'the rightmost untrusted address, as real_ip_recursive');
        assert.equal(seen.headers['x-forwarded-proto'], 'https');
        assert.equal(seen.headers['x-forwarded-host'], 'shop.example');
        assert.equal(seen.headers['x-forwarded-prefix'], '/shop');
      },
    );
  });
});

describe('load balancing', () => {
  let a: Backend;
  let b: Backend;
  before(async () => {
    a = await new Backend('A').listen();
    b = await new Backend('B').listen();
  });
  after(async () => {
    await a.close();
    await b.close();
  });

  test('round_robin (the default) takes the targets in turn', async () => {
    const g = await startGateway(`php:\n  worker_count: 1\nupstreams:\n  - { pattern: "/rr/*", targets: ["${a.url}", "${b.url}"] }\n`, {
      docroot: site(),
    });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) ids.push(seenOf(await request(g.base, `/rr/${i}`)).id);
      assert.deepEqual(ids, ['A', 'B', 'A', 'B', 'A', 'B']);
    } finally {
      await g.stop();
    }
  });

  test('least_conn sends new requests to the target with the fewest in flight', async () => {
    const g = await startGateway(
      `php:\n  worker_count: 1\nupstreams:\n  - { pattern: "/lc/*", targets: ["${a.url}", "${b.url}"], balance: least_conn }\n`,
      { docroot: site() },
    );
    try {
      const slow = request(g.base, '/lc/slow?ms=1500');
      await eventually('the slow request reached a target', () => [...a.seen, ...b.seen].some((s) => s.url === '/lc/slow?ms=1500'));
      const busy = [...a.seen, ...b.seen].find((s) => s.url === '/lc/slow?ms=1500')!.id;
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push(seenOf(await request(g.base, `/lc/${i}`)).id);
      assert.deepEqual(ids, Array(4).fill(busy === 'A' ? 'B' : 'A'), 'never the busy target');
      assert.equal((await slow).status, 200);
    } finally {
      await g.stop();
    }
  });
});

describe('dead and silent targets', () => {
  test('a dead target: the GET goes to the next target at once, the dead one is marked down and skipped after that', async () => {
    const dead = await deadPort();
    await withGateway(
      ['A'],
      ([a]) => `upstreams:\n  - { pattern: "/*", targets: ["http://127.0.0.1:${dead}", "${a!.url}"] }\n`,
      async (g) => {
        const t0 = Date.now();
        const first = await request(g.base, '/one');
        assert.equal(first.status, 200);
        assert.equal(seenOf(first).id, 'A');
        assert.ok(Date.now() - t0 < 2000, `${Date.now() - t0} ms`);
        assert.equal(logsWith(g, 'upstream target marked down'), 1);
        for (let i = 0; i < 4; i++) assert.equal(seenOf(await request(g.base, `/more/${i}`)).id, 'A');
        assert.equal(logsWith(g, 'upstream request failed; trying the next target'), 1, 'the dead target was not tried again');
      },
    );
  });

  test('a target that never accepts the connection: connect_ms, marked down, and the GET goes to the next target', async () => {
    const hole = await blackhole();
    try {
      await withGateway(
        ['A'],
        ([a]) => `upstreams:\n  - { pattern: "/*", targets: ["http://127.0.0.1:${hole.port}", "${a!.url}"], connect_ms: 300 }\n`,
        async (g) => {
          const t0 = Date.now();
          const res = await request(g.base, '/swallowed');
          const took = Date.now() - t0;
          assert.equal(seenOf(res).id, 'A');
          assert.ok(took >= 250 && took < 2000, `${took} ms`);
          const down = g.logs().find((l) => l.msg === 'upstream target marked down');
          assert.match(String(down?.['why']), /no connection within connect_ms \(300 ms\)/);
        },
      );
    } finally {
      hole.close();
    }
  });

  test('a target that accepts and hangs up before answering is marked down, and the GET goes to the next target', async () => {
    const rude = net.createServer((s) => s.destroy());
    await new Promise<void>((resolve) => rude.listen(0, '127.0.0.1', resolve));
    try {
      const port = (rude.address() as net.AddressInfo).port;
      await withGateway(
        ['A'],
        ([a]) => `upstreams:\n  - { pattern: "/*", targets: ["http://127.0.0.1:${port}", "${a!.url}"] }\n`,
        async (g) => {
          assert.equal(seenOf(await request(g.base, '/hung-up')).id, 'A');
          assert.equal(logsWith(g, 'upstream target marked down'), 1);
          for (let i = 0; i < 3; i++) assert.equal(seenOf(await request(g.base, `/again/${i}`)).id, 'A');
        },
      );
    } finally {
      await new Promise<void>((resolve) => rude.close(() => resolve()));
    }
  });

  test('a POST is not resent: 502 from the dead target, then the next POST goes to the live one', async () => {
    const dead = await deadPort();
    await withGateway(
      ['A'],
      ([a]) => `upstreams:\n  - { pattern: "/*", targets: ["http://127.0.0.1:${dead}", "${a!.url}"] }\n`,
      async (g, [a]) => {
        const first = await request(g.base, '/form', { method: 'POST', body: 'x=1' });
        assert.equal(first.status, 502);
        assert.equal(a!.hits(), 0);
        const second = await request(g.base, '/form', { method: 'POST', body: 'x=2' });
        assert.equal(seenOf(second).body, 'x=2');
      },
    );
  });

  test('every target down: 502 within 2 s, then 502 at once without another connection attempt; the error page applies', async () => {
    const dead = await deadPort();
    await withGateway(
      [],
      () => `static:\n  error_pages: { 502: /50x.html }\nupstreams:\n  - { pattern: "/down/*", targets: ["http://127.0.0.1:${dead}"] }\n`,
      async (g) => {
        const t0 = Date.now();
        const first = await request(g.base, '/down/x');
        assert.equal(first.status, 502);
        assert.equal(first.text, 'our own 50x page\n');
        assert.ok(Date.now() - t0 < 2000, `${Date.now() - t0} ms`);
        const second = await request(g.base, '/down/y');
        assert.equal(second.status, 502);
        assert.equal(logsWith(g, 'upstream request failed'), 1, 'one connection attempt, then the target is known to be down');
        assert.equal(logsWith(g, 'upstream target marked down'), 1);
      },
    );
  });

  test('a target marked down is tried again after down_s, and serves once it is back', async () => {
    const port = await deadPort();
    const g = await startGateway(`php:\n  worker_count: 1\nupstreams:\n  - { pattern: "/*", targets: ["http://127.0.0.1:${port}"], down_s: 0.5 }\n`, {
      docroot: site(),
    });
    const back = new Backend('back');
    try {
      assert.equal((await request(g.base, '/x')).status, 502);
      await back.listen(port);
      assert.equal((await request(g.base, '/x')).status, 502, 'still marked down');
      await new Promise((r) => setTimeout(r, 600)); // past down_s (the time passing is what is tested)
      const res = await request(g.base, '/x');
      assert.equal(res.status, 200);
      assert.equal(seenOf(res).id, 'back');
      assert.equal(logsWith(g, 'upstream target is back'), 1);
    } finally {
      await g.stop();
      await back.close();
    }
  });

  test('a target that does not answer within timeout_ms: 504, and it is not marked down', async () => {
    await withGateway(
      ['A'],
      ([a]) => `upstreams:\n  - { pattern: "/*", targets: ["${a!.url}"], timeout_ms: 400 }\n`,
      async (g) => {
        const t0 = Date.now();
        const res = await request(g.base, '/hang');
        const took = Date.now() - t0;
        assert.equal(res.status, 504);
        assert.ok(took >= 300 && took < 5000, `${took} ms`);
        assert.equal(logsWith(g, 'upstream target marked down'), 0);
        assert.equal((await request(g.base, '/fine')).status, 200);
      },
    );
  });
});

describe('websockets', () => {
  let a: Backend;
  let g: RunningGateway;
  before(async () => {
    a = await new Backend('A').listen();
    g = await startGateway(
      `php:\n  worker_count: 1\nupstreams:
  - { pattern: "/ws/*", targets: ["${a.url}"], websockets: true, strip_prefix: /ws }
  - { pattern: "/plain/*", targets: ["${a.url}"] }
  - { pattern: "/down/*", targets: ["http://127.0.0.1:${await deadPort()}"], websockets: true }
`,
      { docroot: site() },
    );
  });
  after(async () => {
    await g.stop();
    await a.close();
  });

  test('a websocket echoes through the gateway, with the path stripped and X-Forwarded-For set', async () => {
    const ws = await WsClient.open(g.port, '/ws/chat?room=1');
    try {
      assert.equal(ws.status, 101);
      assert.equal(ws.header('x-seen-path'), '/chat?room=1');
      assert.equal(ws.header('x-seen-for'), '127.0.0.1');
      ws.send('hello');
      assert.equal(await ws.next(), 'A:hello');
      ws.send('again');
      assert.equal(await ws.next(), 'A:again');
    } finally {
      ws.socket.destroy();
    }
  });

  test('with websockets: false an Upgrade request is proxied as plain HTTP, without Upgrade', async () => {
    const ws = await WsClient.open(g.port, '/plain/chat');
    try {
      assert.equal(ws.status, 200);
      const body = ws.head.length;
      assert.ok(body > 0);
      const seen = a.seen.at(-1)!;
      assert.equal(seen.url, '/plain/chat');
      assert.equal(seen.headers['upgrade'], undefined);
      assert.equal(seen.headers['sec-websocket-key'] !== undefined, true, 'end-to-end headers still go');
    } finally {
      ws.socket.destroy();
    }
  });

  test('an Upgrade request to a PHP path is served by PHP as an ordinary request, on a connection that stays open', async () => {
    const ws = await WsClient.open(g.port, '/hello.php');
    try {
      assert.equal(ws.status, 200);
      assert.match(ws.head, /connection: keep-alive/i);
    } finally {
      ws.socket.destroy();
    }
  });

  test('an h2c upgrade with a body (curl --http2 -d) reaches PHP with its body, and the next request on the connection is served', async () => {
    const answers = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(g.port, '127.0.0.1', () => {
        socket.write(
          'POST /echo.php HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n' +
            'Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 11\r\n\r\nhello',
        );
        setTimeout(() => socket.write(' world' + 'GET /hello.php HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), 50);
      });
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString()));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
      socket.setTimeout(5000, () => socket.destroy());
    });
    assert.match(answers, /php:POST:hello world/);
    assert.match(answers, /php:\/hello\.php/);
  });

  test('a websocket to a dead target gets 502', async () => {
    const ws = await WsClient.open(g.port, '/down/x');
    assert.equal(ws.status, 502);
    await ws.closed;
  });

  test('a stop closes open websockets at once instead of waiting out drain_ms', async () => {
    const b = await new Backend('B').listen();
    const own = await startGateway(
      `php:\n  worker_count: 1\nserver:\n  timeouts: { drain_ms: 20000 }\nupstreams:\n  - { pattern: "/ws/*", targets: ["${b.url}"], websockets: true }\n`,
      { docroot: site() },
    );
    try {
      const ws = await WsClient.open(own.port, '/ws/x');
      ws.send('ping');
      assert.equal(await ws.next(), 'B:ping');
      const t0 = Date.now();
      await own.stop();
      await ws.closed;
      assert.ok(Date.now() - t0 < 10_000, `${Date.now() - t0} ms`);
    } finally {
      await b.close();
    }
  });
});

describe('over TLS', () => {
  test('a websocket over TLS (wss://, HTTP/1.1 by ALPN) echoes through the gateway', async () => {
    const certs = selfSigned(tmp, 'wss');
    await withGateway(
      ['A'],
      ([a]) =>
        `server:\n  tls: { cert: ${certs.cert}, key: ${certs.key} }\nupstreams:\n  - { pattern: "/ws/*", targets: ["${a!.url}"], websockets: true }\n`,
      async (g) => {
        const ws = await WsClient.open(g.port, '/ws/secure', { tls: true });
        try {
          assert.equal(ws.status, 101);
          ws.send('over tls');
          assert.equal(await ws.next(), 'A:over tls');
        } finally {
          ws.socket.destroy();
        }
      },
    );
  });
});

describe('HTTP/2 clients', () => {
  test('GET and POST over HTTP/2 are proxied: pseudo-headers never forwarded, Host from :authority, X-Forwarded-Proto https', async () => {
    const a = await new Backend('A').listen();
    const certs = selfSigned(tmp, 'up');
    const g = await startGateway(
      `server:\n  tls: { cert: ${certs.cert}, key: ${certs.key} }\nphp:\n  worker_count: 1\nupstreams:\n  - { pattern: "/api/*", targets: ["${a.url}"], strip_prefix: /api }\n`,
      { docroot: site() },
    );
    const session = http2.connect(`https://localhost:${g.port}`, { rejectUnauthorized: false });
    const h2 = (headers: http2.OutgoingHttpHeaders, body?: string): Promise<{ headers: http2.IncomingHttpHeaders; text: string }> =>
      new Promise((resolve, reject) => {
        const stream = session.request(headers, { endStream: body === undefined });
        let head: http2.IncomingHttpHeaders = {};
        let text = '';
        stream.on('response', (h) => (head = h));
        stream.on('data', (c: Buffer) => (text += c.toString()));
        stream.on('end', () => resolve({ headers: head, text }));
        stream.on('error', reject);
        if (body !== undefined) stream.end(body);
      });
    try {
      const got = await h2({ ':path': '/api/x?y=1', 'x-test': 'h2' });
      assert.equal(got.headers[':status'], 200);
      assert.equal(got.headers['x-backend'], 'A');
      assert.equal(got.headers['x-content-type-options'], 'nosniff');
      const seen = JSON.parse(got.text) as Seen;
      assert.equal(seen.url, '/x?y=1');
      assert.equal(seen.headers['host'], `localhost:${g.port}`);
      assert.equal(seen.headers['x-forwarded-proto'], 'https');
      assert.equal(seen.headers['x-forwarded-host'], `localhost:${g.port}`);
      assert.equal(seen.headers['x-test'], 'h2');
      assert.deepEqual(
        seen.rawNames.filter((n) => n.startsWith(':')),
        [],
      );
      const headers = await h2({ ':path': '/api/headers' });
      assert.equal(headers.headers[':status'], 201);
      assert.deepEqual(headers.headers['set-cookie'], ['a=1; Path=/', 'b=2; Path=/']);
      assert.equal(headers.headers['connection'], undefined);
      const posted = JSON.parse(
        (await h2({ ':path': '/api/form', ':method': 'POST', 'content-type': 'text/plain' }, 'streamed without a length')).text,
      ) as Seen;
      assert.equal(posted.method, 'POST');
      assert.equal(posted.body, 'streamed without a length');
      assert.equal(posted.headers['transfer-encoding'], 'chunked');
    } finally {
      session.close();
      await g.stop();
      await a.close();
    }
  });
});

describe('with the rest of the edge', () => {
  test('rate limits apply to upstream routes and websocket handshakes: the refused ones never reach the upstream', async () => {
    const yaml = ([a]: Backend[]): string =>
      `rate_limit:\n  rules: [{ pattern: "/api/*", points: 1, duration_s: 60 }]\nupstreams:\n  - { pattern: "/api/*", targets: ["${a!.url}"], websockets: true }\n`;
    await withGateway(['A'], yaml, async (g, [a]) => {
      assert.equal((await request(g.base, '/api/1')).status, 200);
      assert.equal((await request(g.base, '/api/2')).status, 429);
      const ws = await WsClient.open(g.port, '/api/ws');
      assert.equal(ws.status, 429);
      assert.match(ws.head, /retry-after: \d+/i);
      await ws.closed;
      assert.equal(a!.hits(), 1);
    });
  });

  test('a reload picks up changed upstreams, websockets included', async () => {
    const yaml = (target: string, websockets: boolean): string =>
      `upstreams:\n  - { pattern: "/api/*", targets: ["${target}"], websockets: ${websockets} }\n`;
    await withGateway(
      ['A', 'B'],
      ([a]) => yaml(a!.url, false),
      async (g, [, b]) => {
        assert.equal(seenOf(await request(g.base, '/api/x')).id, 'A');
        const before = await WsClient.open(g.port, '/api/ws');
        before.socket.destroy();
        assert.equal(before.status, 200, 'no websockets yet: plain HTTP');
        const next = loadConfig({
          text: yaml(b!.url, true),
          file: 'test.yaml',
          env: { PATH: process.env['PATH'], ...PHP_USER_ENV },
          overrides: { docroot: site() },
        });
        await g.gateway.reload({
          ...next,
          server: g.config.server,
          admin: g.config.admin,
          php: { ...next.php, socket_dir: g.config.php.socket_dir },
        });
        assert.equal(seenOf(await request(g.base, '/api/x')).id, 'B');
        const ws = await WsClient.open(g.port, '/api/ws');
        try {
          assert.equal(ws.status, 101);
          ws.send('after reload');
          assert.equal(await ws.next(), 'B:after reload');
        } finally {
          ws.socket.destroy();
        }
      },
    );
  });
});

describe('proxy headers, on their own', () => {
  test("a Connection header cannot make the proxy drop the body's length or the Host", () => {
    const h: http.IncomingHttpHeaders = { host: 'h', 'content-length': '5', connection: 'content-length, host, x-a', 'x-a': '1' };
    prepareRequestHeaders(h, {
      chain: '1.2.3.4',
      believed: false,
      clientAddress: '1.2.3.4',
      https: false,
      upgrade: false,
      chunked: false,
      requestId: '',
    });
    assert.equal(h['content-length'], '5');
    assert.equal(h.host, 'h');
    assert.equal(h['x-a'], undefined);
    assert.equal(h.connection, undefined);
  });

  test("the answer's headers: hop-by-hop, Connection-named, Date, Server and X-Accel-* dropped; the list is reused when nothing is", () => {
    const redirect = { from: 'http://t:1/x/', to: '/p/' };
    const clean = ['Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Location', 'http://t:1/elsewhere'];
    assert.equal(responseHeaders(clean, true, redirect), clean);
    assert.deepEqual(
      responseHeaders(
        [
          'Connection',
          'x-secret',
          'X-Secret',
          '1',
          'Date',
          'd',
          'Server',
          's',
          'X-Accel-Buffering',
          'no',
          'X-Powered-By',
          'p',
          'Keep-Alive',
          'timeout=5',
          'X-A',
          'a',
        ],
        true,
        redirect,
      ),
      ['X-A', 'a'],
    );
    assert.deepEqual(responseHeaders(['X-Powered-By', 'p'], false, redirect), ['X-Powered-By', 'p']);
    assert.deepEqual(responseHeaders(['Location', 'http://t:1/x/y'], true, redirect), ['Location', '/p/y']);
  });
});
