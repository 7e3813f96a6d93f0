/**
 * Abuse limits through the real gateway on raw sockets (HTTP/1.1, plain TCP): slow heads (slowloris), idle
 * keep-alive connections, oversize heads, bodies sent where PHP is not, and a request-smuggling corpus in which
 * the smuggled request must never run. node's parser (llhttp) does most of the refusing; these tests pin down what
 * a client of phpgate gets: a refusal and a closed connection, never a second request.
 *
 * Proven elsewhere and not repeated here:
 * - 414 past server.limits.url_kb: robustness.test.ts, "a request target over server.limits.url_kb gets 414 and
 *   PHP never runs".
 * - 413 on a declared Content-Length before the body is sent, 413 on a chunked body growing past max_body_mb, and
 *   408 on a body that stalls past body_ms (PHP routes): php-request.test.ts, "request body limits".
 * Connections per address and HTTP/2 stream limits come with their own tests.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { request, startGateway, type RunningGateway } from './support/gateway.js';
import { eventually } from './support/proc.js';

const HEADER_MS = 1000;
const KEEPALIVE_MS = 500;
const BODY_MS = 1000;
const HEADER_KB = 4;
const MAX_BODY_BYTES = 1024 * 1024;
const run = promisify(execFile);
/** Added to every "closed within" bound: timers on a loaded machine fire late, never early. */
const SLACK_MS = 2000;
/**
 * node closes an idle keep-alive socket this long after keepAliveTimeout, not at it (HTTP_SERVER_KEEP_ALIVE_
 * TIMEOUT_BUFFER in node's lib/_http_server.js), so that a client reusing the connection races the close less.
 */
const NODE_KEEPALIVE_GRACE_MS = 1000;

/** count.php (fixtures/abuse) appends "REQUEST_URI HTTP_HOST" here on every run: what PHP really executed. */
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-abuse-'));
const runLog = path.join(tmp, 'runs.log');
const docroot = fileURLToPath(new URL('./fixtures/abuse/', import.meta.url)).replace(/\/$/, '');

const CONFIG = `
server:
  max_body_mb: 1
  timeouts: { header_ms: ${HEADER_MS}, keepalive_ms: ${KEEPALIVE_MS}, body_ms: ${BODY_MS} }
  limits: { header_kb: ${HEADER_KB}, url_kb: 2 }
php:
  worker_count: 2
  env: { PHPGATE_RUN_LOG: ${JSON.stringify(runLog)} }
`;

let g: RunningGateway;
before(async () => {
  g = await startGateway(CONFIG, { docroot });
});
after(async () => {
  await g?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Lines count.php has written so far. */
function runs(): string[] {
  return fs.existsSync(runLog)
    ? fs
        .readFileSync(runLog, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
    : [];
}

/** PHP runs between two calls: `const since = runsSince(); …; since()`. */
function runsSince(): () => string[] {
  const before = runs().length;
  return () => runs().slice(before);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The statuses of the responses in `text`, read by their framing (Content-Length, chunked, or up to the close), so
 * a body that happens to hold "HTTP/1.1 200" is never taken for a response, nor one that follows a body directly.
 */
function responseStatuses(text: string): number[] {
  const statuses: number[] = [];
  let pos = 0;
  while (pos < text.length) {
    const headEnd = text.indexOf('\r\n\r\n', pos);
    const m = /^HTTP\/1\.[01] (\d{3}) /.exec(text.slice(pos, pos + 13));
    if (headEnd < 0 || m === null) break;
    const status = Number(m[1]);
    statuses.push(status);
    const head = text.slice(pos, headEnd);
    pos = headEnd + 4;
    if (status < 200 || status === 204 || status === 304) continue; // no body
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
      for (;;) {
        const lineEnd = text.indexOf('\r\n', pos);
        if (lineEnd < 0) return statuses;
        const size = parseInt(text.slice(pos, lineEnd), 16);
        pos = lineEnd + 2 + size + 2;
        if (size === 0) break;
      }
    } else if (length !== null) {
      pos += Number(length[1]);
    } else {
      break; // delimited by the close
    }
  }
  return statuses;
}

/** A plain TCP client: writes exactly the bytes it is given, keeps every byte received, knows when the server closed. */
class RawConn {
  readonly #socket: net.Socket;
  readonly #chunks: Buffer[] = [];
  readonly #openedAt = Date.now();
  readonly #closed: Promise<void>;
  #closedAt: number | null = null;
  #error: Error | null = null;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on('data', (c: Buffer) => this.#chunks.push(c));
    // The server may reset while we are still writing (it refused the head and closed): what the tests look at is
    // what arrived and that the connection ended; the error is kept for failure messages.
    socket.on('error', (err) => (this.#error = err));
    this.#closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.#closedAt = Date.now();
        resolve();
      }),
    );
  }

  static open(port: number): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.removeListener('error', reject);
        resolve(new RawConn(socket));
      });
    });
  }

  /** One exchange: connects, writes `bytes`, waits (bounded) for the server to close. */
  static async exchange(port: number, bytes: string, timeoutMs = 3000): Promise<RawConn> {
    const c = await RawConn.open(port);
    c.write(bytes);
    await c.closedWithin(timeoutMs);
    return c;
  }

  write(bytes: string | Buffer): void {
    if (!this.#socket.destroyed) this.#socket.write(bytes);
  }

  get text(): string {
    return Buffer.concat(this.#chunks).toString('latin1');
  }

  get isOpen(): boolean {
    return this.#closedAt === null;
  }

  /** The status code of every response (interim ones included) received so far. */
  statuses(): number[] {
    return responseStatuses(this.text);
  }

  /** True when the server closed the connection within `ms` from now. */
  async closedWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
    const closed = await Promise.race([this.#closed.then(() => true as const), timedOut]);
    clearTimeout(timer);
    return closed;
  }

  /** Milliseconds from connect to close, or null while open. */
  get lifetime(): number | null {
    return this.#closedAt === null ? null : this.#closedAt - this.#openedAt;
  }

  summary(): string {
    return `received ${JSON.stringify(this.text.slice(0, 200))}${this.#error === null ? '' : `, error ${this.#error.message}`}`;
  }

  destroy(): void {
    this.#socket.destroy();
  }
}

/** Writes `head`, then one more byte every `everyMs` until the server closes: a head that never ends. */
function trickle(c: RawConn, head: string, everyMs: number): () => void {
  c.write(head);
  const timer = setInterval(() => (c.isOpen ? c.write('a') : clearInterval(timer)), everyMs);
  return () => clearInterval(timer);
}

describe('slow and idle connections (header_ms 1000, keepalive_ms 500)', () => {
  test('slowloris: heads trickled a byte every 200 ms are cut after header_ms (408 or a plain close) while a normal client is served', async () => {
    const since = runsSince();
    const slow = await Promise.all(Array.from({ length: 21 }, () => RawConn.open(g.port)));
    const stops = slow.map((c) => trickle(c, 'GET /count.php?slowloris HTTP/1.1\r\nHost: x\r\nX-Slow: ', 200));
    // A client that connects and sends nothing at all is held to the same deadline.
    const silent = await RawConn.open(g.port);
    try {
      await sleep(300); // the slow clients keep trickling for a while (that they are slow is what is tested)
      assert.ok(
        [...slow, silent].every((c) => c.isOpen),
        'the slow clients are hanging when the normal one arrives',
      );
      const normal = await request(g.base, '/count.php?normal', { timeoutMs: 2000 });
      assert.equal(normal.status, 200);
      assert.equal(normal.text, 'ran 0');

      for (const c of [...slow, silent]) {
        const left = HEADER_MS + SLACK_MS - (c.lifetime ?? 0);
        assert.ok(await c.closedWithin(Math.max(left, 0)), `still open ${HEADER_MS + SLACK_MS} ms after connecting; ${c.summary()}`);
        // nginx closes without a word on client_header_timeout; node answers 408 first. Either tells the truth.
        assert.match(c.text, /^(HTTP\/1\.1 408 [^\r]*\r\n(?:[^\r]+\r\n)*\r\n)?$/, c.summary());
      }
      assert.deepEqual(since(), ['/count.php?normal 127.0.0.1:' + g.port]);
    } finally {
      for (const stop of stops) stop();
      for (const c of [...slow, silent]) c.destroy();
    }
  });

  test('an idle keep-alive connection is closed about keepalive_ms after its last response', async () => {
    const c = await RawConn.open(g.port);
    try {
      c.write('GET /static.txt HTTP/1.1\r\nHost: x\r\n\r\n');
      await eventually('first response', () => c.text.endsWith('\r\n\r\nstatic\n'), 3000);
      assert.match(c.text, /\r\nConnection: keep-alive\r\n/i);
      // The connection is reusable at first …
      c.write('GET /static.txt HTTP/1.1\r\nHost: x\r\n\r\n');
      await eventually('second response', () => c.statuses().length === 2 && c.text.endsWith('\r\n\r\nstatic\n'), 3000);
      assert.ok(c.isOpen);
      // … and once idle, the server closes it, without a word.
      const bound = KEEPALIVE_MS + NODE_KEEPALIVE_GRACE_MS + SLACK_MS;
      assert.ok(await c.closedWithin(bound), `idle connection still open ${bound} ms after the last response`);
      assert.deepEqual(c.statuses(), [200, 200]);
      assert.ok(c.text.endsWith('\r\n\r\nstatic\n'), 'nothing was sent after the last response');
    } finally {
      c.destroy();
    }
  });
});

describe('oversize heads and bodies (header_kb 4, max_body_mb 1, body_ms 1000)', () => {
  const over = HEADER_KB * 1024 + 100;
  const cases: Array<{ name: string; bytes: string }> = [
    {
      name: 'one header line longer than header_kb',
      bytes: `GET /count.php?big HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(over)}\r\n\r\n`,
    },
    {
      // node counts names and values, not the ": " and CRLF between them: twice the limit in lines, to be clear of it.
      name: 'many short headers adding up past header_kb',
      bytes: `GET /count.php?many HTTP/1.1\r\nHost: x\r\n${'X-Many: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n'.repeat(Math.ceil((2 * over) / 50))}\r\n`,
    },
    {
      // node counts the request line against maxHeaderSize: a target longer than header_kb is a 431, not a 414.
      name: 'a request line longer than header_kb',
      bytes: `GET /count.php?${'u'.repeat(over)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    },
    {
      // Trailers are headers too: a one-byte chunked body must not carry an unbounded head behind it.
      name: 'chunked trailers adding up past header_kb after a one-byte body',
      bytes: `POST /count.php?trailers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n${'X-Trailer: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\r\n'.repeat(Math.ceil((2 * over) / 50))}\r\n`,
    },
  ];
  for (const c of cases) {
    test(`${c.name}: 431 and the connection closed, PHP never runs`, async () => {
      const since = runsSince();
      const conn = await RawConn.exchange(g.port, c.bytes);
      assert.equal(conn.isOpen, false, `connection left open; ${conn.summary()}`);
      assert.deepEqual(conn.statuses(), [431], conn.summary());
      assert.deepEqual(since(), []);
    });
  }

  test('Expect: 100-continue with a Content-Length over max_body_mb gets 413 without a 100 Continue first', async () => {
    const since = runsSince();
    const conn = await RawConn.exchange(
      g.port,
      `POST /count.php?expect HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: ${MAX_BODY_BYTES + 1}\r\n\r\n`,
    );
    assert.equal(conn.isOpen, false, conn.summary());
    assert.deepEqual(conn.statuses(), [413], conn.summary());
    assert.deepEqual(since(), []);
  });

  test('Expect: 100-continue within the limit gets 100 Continue once the body will be read, then PHP runs', async () => {
    const since = runsSince();
    const { stdout, stderr } = await run('curl', [
      '-sv',
      '--max-time',
      '10',
      '-H',
      'Expect: 100-continue',
      '--data-binary',
      'x'.repeat(1000),
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `http://127.0.0.1:${g.port}/count.php?continue`,
    ]);
    assert.equal(stdout, '200');
    assert.match(stderr, /< HTTP\/1\.1 100 Continue/);
    assert.equal(since().length, 1);
  });

  test('an unknown Expect is ignored as nginx does (node alone would answer 417)', async () => {
    const r = await request(g.base, '/static.txt', { headers: { Expect: 'something-else' } });
    assert.equal(r.status, 200);
  });

  test('a Content-Length over max_body_mb sent to a static file gets 413 and a close before the body is sent', async () => {
    const conn = await RawConn.exchange(g.port, `POST /static.txt HTTP/1.1\r\nHost: x\r\nContent-Length: ${50 * MAX_BODY_BYTES}\r\n\r\n`);
    assert.equal(conn.isOpen, false, `connection left open, waiting for 50 MB; ${conn.summary()}`);
    assert.deepEqual(conn.statuses(), [413], conn.summary());
  });

  test('a body that stalls on a route without PHP (a static file) does not hold the connection open', async () => {
    const c = await RawConn.open(g.port);
    try {
      c.write('POST /static.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n0123456789');
      const bound = Math.max(BODY_MS, KEEPALIVE_MS + NODE_KEEPALIVE_GRACE_MS) + SLACK_MS;
      assert.ok(await c.closedWithin(bound), `still open ${bound} ms after the body stalled; ${c.summary()}`);
      assert.equal(c.statuses().length, 1, c.summary());
    } finally {
      c.destroy();
    }
  });
});

describe('request smuggling: refused with 400 and a close, the smuggled request never runs', () => {
  const SMUGGLED = 'GET /count.php?smuggled HTTP/1.1\r\nHost: x\r\n\r\n';
  const FRONT = 'POST /count.php?front HTTP/1.1\r\nHost: x\r\n';
  const hex = (s: string): string => s.length.toString(16);
  /** A body that is a complete chunked body followed by SMUGGLED: chunked framing leaves SMUGGLED as the next request. */
  const ENDS_EARLY = `0\r\n\r\n${SMUGGLED}`;
  /** TE.CL: a chunk carrying SMUGGLED; Content-Length covering only the size line leaves SMUGGLED as the next request. */
  const sizeLine = `${hex(SMUGGLED)}\r\n`;
  const CARRIES = `${sizeLine}${SMUGGLED}\r\n0\r\n\r\n`;

  interface SmuggleCase {
    readonly name: string;
    readonly bytes: string;
    /** Default [400]. */
    readonly statuses?: readonly number[];
    /** RFC 9112 §6.1 lets a server process an HTTP/1.0 message with Transfer-Encoding, then close. */
    readonly frontMayRun?: true;
    readonly todo?: string;
  }

  const corpus: SmuggleCase[] = [
    {
      name: 'CL.TE: Content-Length covering everything, then Transfer-Encoding: chunked',
      bytes: `${FRONT}Content-Length: ${ENDS_EARLY.length}\r\nTransfer-Encoding: chunked\r\n\r\n${ENDS_EARLY}`,
    },
    {
      name: 'TE.CL: Transfer-Encoding: chunked, then a Content-Length covering only the chunk-size line',
      bytes: `${FRONT}Transfer-Encoding: chunked\r\nContent-Length: ${sizeLine.length}\r\n\r\n${CARRIES}`,
    },
    { name: 'two different Content-Length headers', bytes: `${FRONT}Content-Length: 0\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}` },
    { name: 'a Content-Length list of two different values', bytes: `${FRONT}Content-Length: 0, ${SMUGGLED.length}\r\n\r\n${SMUGGLED}` },
    { name: 'a Content-Length with a plus sign', bytes: `${FRONT}Content-Length: +0\r\n\r\n${SMUGGLED}` },
    {
      name: 'Transfer-Encoding: xchunked beside a Content-Length',
      bytes: `${FRONT}Content-Length: ${ENDS_EARLY.length}\r\nTransfer-Encoding: xchunked\r\n\r\n${ENDS_EARLY}`,
    },
    { name: 'Transfer-Encoding: xchunked alone', bytes: `${FRONT}Transfer-Encoding: xchunked\r\n\r\n${ENDS_EARLY}` },
    { name: 'Transfer-Encoding: chunked, identity (chunked not last)', bytes: `${FRONT}Transfer-Encoding: chunked, identity\r\n\r\n${ENDS_EARLY}` },
    {
      name: 'Transfer-Encoding: chunked and Transfer-Encoding: identity on two lines',
      bytes: `${FRONT}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n${ENDS_EARLY}`,
    },
    {
      name: 'Transfer-Encoding folded onto a continuation line (obs-fold) beside a Content-Length',
      bytes: `${FRONT}Content-Length: ${ENDS_EARLY.length}\r\nTransfer-Encoding:\r\n chunked\r\n\r\n${ENDS_EARLY}`,
    },
    {
      name: 'a space before the colon: "Transfer-Encoding : chunked" beside a Content-Length',
      bytes: `${FRONT}Content-Length: ${ENDS_EARLY.length}\r\nTransfer-Encoding : chunked\r\n\r\n${ENDS_EARLY}`,
    },
    {
      name: 'a header line starting with a space right after the request line (" Content-Length")',
      bytes: `POST /count.php?front HTTP/1.1\r\n Content-Length: 0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${CARRIES}`,
    },
    {
      name: 'a bare LF hiding Transfer-Encoding inside the Host line, beside a Content-Length',
      bytes: `POST /count.php?front HTTP/1.1\r\nHost: x\nTransfer-Encoding: chunked\r\nContent-Length: ${ENDS_EARLY.length}\r\n\r\n${ENDS_EARLY}`,
    },
    { name: 'bare LF line endings throughout', bytes: `POST /count.php?front HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n\n0\n\n${SMUGGLED}` },
    { name: 'a bare CR ending the request line', bytes: `POST /count.php?front HTTP/1.1\rHost: x\r\nContent-Length: 0\r\n\r\n${SMUGGLED}` },
    {
      name: 'a chunk size that overflows 64 bits to 5',
      bytes: `${FRONT}Transfer-Encoding: chunked\r\n\r\n1${'0'.repeat(15)}5\r\nabcde\r\n0\r\n\r\n${SMUGGLED}`,
    },
    { name: 'a negative chunk size', bytes: `${FRONT}Transfer-Encoding: chunked\r\n\r\n-5\r\nabcde\r\n0\r\n\r\n${SMUGGLED}` },
    { name: 'a chunk size with a 0x prefix', bytes: `${FRONT}Transfer-Encoding: chunked\r\n\r\n0x5\r\nabcde\r\n0\r\n\r\n${SMUGGLED}` },
    { name: 'a chunk-size line ended by a bare LF', bytes: `${FRONT}Transfer-Encoding: chunked\r\n\r\n5\nabcde\r\n0\r\n\r\n${SMUGGLED}` },
    { name: 'chunk data longer than its size', bytes: `${FRONT}Transfer-Encoding: chunked\r\n\r\n3\r\nabcde\r\n0\r\n\r\n${SMUGGLED}` },
    { name: 'a chunk extension ended by a bare LF', bytes: `${FRONT}Transfer-Encoding: chunked\r\n\r\n5;a=b\nxx\r\nabcde\r\n0\r\n\r\n${SMUGGLED}` },
    {
      name: 'a chunk extension with an unterminated quoted string',
      bytes: `${FRONT}Transfer-Encoding: chunked\r\n\r\n5;a="\r\nabcde\r\n0\r\n\r\n${SMUGGLED}`,
    },
    // node's guard against unbounded chunk extensions (CVE-2024-22019) answers 413, a fine answer too.
    {
      name: 'a chunk extension over 16 KiB',
      statuses: [413],
      bytes: `${FRONT}Transfer-Encoding: chunked\r\n\r\n5;${'e'.repeat(20_000)}\r\nabcde\r\n0\r\n\r\n${SMUGGLED}`,
    },
    // The message may be processed, then the connection must close (RFC 9112 §6.1): node processes it and answers
    // the bytes behind it with 400; what matters is that they never become a request.
    {
      name: 'HTTP/1.0 with Transfer-Encoding: chunked and a request behind it',
      statuses: [400],
      frontMayRun: true,
      bytes: `POST /count.php?front HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${ENDS_EARLY}`,
    },
    {
      name: 'HTTP/1.0 keep-alive with Transfer-Encoding: chunked and a request behind it',
      statuses: [200],
      frontMayRun: true,
      bytes: `POST /count.php?front HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n${ENDS_EARLY}`,
    },
    { name: 'two Host headers', bytes: `GET /count.php?twohosts HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n` },
  ];

  test('control: a well-framed POST with a GET pipelined behind it runs both (the run log sees every run)', async () => {
    const since = runsSince();
    const conn = await RawConn.exchange(
      g.port,
      `${FRONT}Content-Length: 5\r\n\r\nabcdeGET /count.php?second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(conn.isOpen, false, conn.summary());
    assert.deepEqual(conn.statuses(), [200, 200], conn.summary());
    assert.deepEqual(since(), ['/count.php?front x', '/count.php?second x']);
  });

  for (const c of corpus) {
    const statuses = c.statuses ?? [400];
    test(c.name, c.todo === undefined ? {} : { todo: c.todo }, async () => {
      const since = runsSince();
      const conn = await RawConn.exchange(g.port, c.bytes);
      assert.equal(conn.isOpen, false, `connection left open; ${conn.summary()}`);
      assert.deepEqual(conn.statuses(), statuses, `one answer, ${statuses.join('/')}; ${conn.summary()}`);
      const ran = since();
      assert.deepEqual(
        ran.filter((l) => l.startsWith('/count.php?smuggled')),
        [],
        'the smuggled request ran',
      );
      if (c.frontMayRun !== true) assert.deepEqual(ran, [], 'PHP ran on a refused request');
    });
  }

  test("an absolute-form target with a different Host is served, with the target's authority as the host (RFC 9112 §3.2.2)", async () => {
    const since = runsSince();
    const conn = await RawConn.exchange(g.port, 'GET http://other.example/count.php?absolute HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.deepEqual(conn.statuses(), [200], conn.summary());
    assert.deepEqual(since(), ['/count.php?absolute other.example']);
  });

  test('after the corpus the gateway still serves, and no smuggled request ran late', async () => {
    assert.equal((await request(g.base, '/count.php?after')).status, 200);
    assert.deepEqual(
      runs().filter((l) => l.startsWith('/count.php?smuggled')),
      [],
    );
  });
});
