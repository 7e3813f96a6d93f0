/**
 * The response side of a PHP request, end to end: a real phpgate in this process, real php-cgi children behind
 * it, node's HTTP client in front. What PHP writes (status, headers, body, stderr, errors) must reach the client
 * as nginx + php-fpm would deliver it, streamed and with backpressure, and the gateway must keep serving after
 * upstream and client misbehaviour.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { ensureFixtureSite } from './fixtures/site.js';
import { request, startGateway, type RunningGateway, type SimpleResponse } from './support/gateway.js';

const WORKERS = 2;
/** Small enough for the timeout test to be quick, large enough for every other request here (≤ 1.5 s each). */
const TIMEOUT_MS = 4000;
const SEND_MS = 2000;
const MiB = 1024 * 1024;

/** What big.php?mb=N prints: N MiB of 1 KiB lines (1023 characters of a fixed alphabet, then "\n"). */
function bigExpected(mb: number): Buffer {
  const alphabet = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
  const line = alphabet.repeat(17).slice(0, 1023) + '\n';
  const mib = Buffer.from(line.repeat(1024), 'latin1');
  assert.equal(mib.length, MiB);
  return mb === 0 ? Buffer.alloc(0) : Buffer.alloc(mb * MiB, mib);
}

/** What binary.php prints: every byte value 0..255, repeated 1024 times. */
function binaryExpected(): Buffer {
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  return Buffer.alloc(256 * 1024, all);
}

/** Polls `done` every 10 ms for up to 3 s. */
async function waitFor(done: () => boolean): Promise<void> {
  for (let i = 0; i < 300 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(done(), 'waited 3 s');
}

/** Header names in the order received, lower-cased (one entry per header line). */
function headerNames(r: SimpleResponse): string[] {
  return r.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
}

function headerValues(r: SimpleResponse, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < r.rawHeaders.length; i += 2) {
    if (r.rawHeaders[i]!.toLowerCase() === name) out.push(r.rawHeaders[i + 1]!);
  }
  return out;
}

/** Byte-exact comparison without dumping megabytes into the assertion message. */
function assertSameBytes(actual: Buffer, expected: Buffer, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  if (!actual.equals(expected)) {
    let i = 0;
    while (i < actual.length && actual[i] === expected[i]) i++;
    assert.fail(`${what}: first difference at byte ${i} (got ${actual[i]}, expected ${expected[i]})`);
  }
}

interface Timed {
  status: number;
  firstChunk: string;
  firstMs: number;
  endMs: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

/** A raw GET that records when the first body chunk and the end arrive, relative to sending the request. */
function timedGet(port: number, target: string): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.get({ host: '127.0.0.1', port, path: target, agent: false }, (res) => {
      let firstMs = -1;
      let firstChunk = '';
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        if (firstMs < 0) {
          firstMs = performance.now() - t0;
          firstChunk = c.toString('utf8');
        }
        chunks.push(c);
      });
      res.on('error', reject);
      res.on('end', () => {
        resolve({
          status: res.statusCode ?? 0,
          firstChunk,
          firstMs,
          endMs: performance.now() - t0,
          body: Buffer.concat(chunks).toString('utf8'),
          headers: res.headers,
        });
      });
    });
    req.setTimeout(15_000, () => req.destroy(new Error(`timeout: GET ${target}`)));
    req.on('error', reject);
  });
}

/**
 * Raw bytes on one connection: what the server sent, and whether it closed the connection (as opposed to the
 * client giving up after `waitMs`). For framing questions node's client would hide.
 */
function rawExchange(port: number, requests: string, waitMs = 2000): Promise<{ data: string; closedByServer: boolean }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(requests));
    let data = '';
    let closedByServer = true;
    const timer = setTimeout(() => {
      closedByServer = false;
      s.destroy();
    }, waitMs);
    s.on('data', (d: Buffer) => (data += d.toString('latin1')));
    s.on('error', reject);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ data, closedByServer });
    });
  });
}

/** Splits one HTTP/1.1 response with a Content-Length off the front of `data`. */
function splitResponse(data: string): { head: string; body: string; rest: string } {
  const end = data.indexOf('\r\n\r\n');
  assert.ok(end !== -1, `no header block in ${JSON.stringify(data.slice(0, 200))}`);
  const head = data.slice(0, end);
  const m = /\r\ncontent-length: *(\d+)/i.exec(head);
  assert.ok(m, `no Content-Length in ${JSON.stringify(head)}`);
  const len = Number(m[1]);
  return { head, body: data.slice(end + 4, end + 4 + len), rest: data.slice(end + 4 + len) };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

describe('PHP responses through the real gateway and php-cgi', () => {
  let gw: RunningGateway;
  let docroot: string;

  before(async () => {
    docroot = ensureFixtureSite();
    gw = await startGateway(`server:\n  timeouts:\n    send_ms: ${SEND_MS}\nphp:\n  worker_count: ${WORKERS}\n  timeout_ms: ${TIMEOUT_MS}\n`, {
      docroot,
    });
    assert.equal(gw.config.php.worker_count, WORKERS);
  });

  after(async () => {
    await gw?.stop();
  });

  const get = (target: string, opts: Parameters<typeof request>[2] = {}): Promise<SimpleResponse> =>
    request(gw.base, target, { timeoutMs: 20_000, ...opts });

  function defaultPool() {
    const pool = gw.gateway.pools.get('default');
    assert.ok(pool, 'the default pool exists');
    return pool;
  }

  /** Waits until every worker of the pool is idle again (bounded). */
  async function allWorkersIdle(deadlineMs = 10_000): Promise<void> {
    const pool = defaultPool();
    const until = Date.now() + deadlineMs;
    while (pool.stats().idle < WORKERS) {
      if (Date.now() > until) assert.fail(`workers not idle after ${deadlineMs} ms: ${JSON.stringify(pool.stats())}`);
      await sleep(20);
    }
  }

  describe('status line', () => {
    test('Status: 404 Not Found gives 404 with that reason', async () => {
      const r = await get('/status.php?code=404&reason=Not%20Found');
      assert.equal(r.status, 404);
      assert.equal(r.statusMessage, 'Not Found');
      assert.equal(r.text, 'status 404');
    });

    test('Status: 404 without a reason gives 404 with the standard reason', async () => {
      const r = await get('/status.php?code=404');
      assert.equal(r.status, 404);
      assert.equal(r.statusMessage, 'Not Found');
      assert.equal(r.text, 'status 404');
    });

    test('Status: 299 Custom keeps the custom reason phrase', async () => {
      const r = await get('/status.php?code=299&reason=Custom');
      assert.equal(r.status, 299);
      assert.equal(r.statusMessage, 'Custom');
    });

    test('http_response_code(418) sets the status', async () => {
      const r = await get('/http_response_code.php?code=418');
      assert.equal(r.status, 418);
      assert.equal(r.text, 'code 418');
    });

    test('an invalid Status (two digits, or zero) is answered 502', async () => {
      for (const code of ['42', '0']) {
        const r = await get(`/status.php?code=${code}`);
        assert.equal(r.status, 502, `Status: ${code}`);
        assert.match(r.text, /502 Bad Gateway/);
        assert.doesNotMatch(r.text, /status /, 'none of what PHP printed leaks into the error page');
      }
    });
  });

  describe('response heads node must not pass on as they are', () => {
    test('an interim (1xx) Status as the final answer is a 502, not a response the client waits on forever', async () => {
      for (const code of ['100', '101', '103']) {
        const r = await get(`/status.php?code=${code}`, { timeoutMs: 5000 });
        assert.equal(r.status, 502, `Status: ${code}`);
      }
    });

    test('a header node refuses to send (control byte in a value, space in a name) is a 502 and the worker stays', async () => {
      const pidsBefore = defaultPool()
        .stats()
        .workers.map((w) => w.pid)
        .sort();
      for (const c of ['ctl', 'badname']) {
        const r = await get(`/response_edge.php?case=${c}`, { timeoutMs: 5000 });
        assert.equal(r.status, 502, c);
        assert.equal(r.statusMessage, 'Bad Gateway');
        assert.match(r.text, /502 Bad Gateway/);
      }
      await allWorkersIdle(2000);
      // The FastCGI connection was never taken for broken: same children, no reconnect.
      assert.deepEqual(
        defaultPool()
          .stats()
          .workers.map((w) => w.pid)
          .sort(),
        pidsBefore,
      );
      assert.equal(gw.logs().filter((l) => l.msg === 'php-cgi child died mid-request').length, 0);
    });

    test("PHP's own Content-Length is kept when it is right", async () => {
      const r = await get('/response_edge.php?case=cl_ok');
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-length'], '5');
      assert.equal(r.text, 'hello');
      const same = await get('/response_edge.php?case=cl_same');
      assert.equal(same.status, 200);
      assert.deepEqual(headerValues(same, 'content-length'), ['5'], 'the same Content-Length twice is sent once');
      assert.equal(same.text, 'hello');
    });

    test('an invalid or contradictory Content-Length is a 502', async () => {
      for (const c of ['cl_bad', 'cl_dup']) {
        const r = await get(`/response_edge.php?case=${c}`, { timeoutMs: 5000 });
        assert.equal(r.status, 502, c);
      }
    });

    test('more body than Content-Length: only the declared bytes go out, and the connection stays in step', async () => {
      const { data, closedByServer } = await rawExchange(
        gw.port,
        'GET /response_edge.php?case=cl_short HTTP/1.1\r\nHost: t\r\n\r\n' +
          'GET /status.php?code=200 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n',
      );
      assert.ok(closedByServer, 'the second (Connection: close) response ended the exchange');
      const first = splitResponse(data);
      assert.match(first.head, /^HTTP\/1\.1 200 /);
      assert.equal(first.body, 'hel');
      // The pipelined second response starts right after the 3 declared bytes: "lo" never went out.
      assert.match(first.rest, /^HTTP\/1\.1 200 OK\r\n/);
      assert.match(first.rest, /status 200/);
    });

    test('less body than Content-Length: what came is sent, then the connection is closed (as nginx)', async () => {
      const { data, closedByServer } = await rawExchange(gw.port, 'GET /response_edge.php?case=cl_long HTTP/1.1\r\nHost: t\r\n\r\n');
      assert.ok(closedByServer, 'the gateway closed the keep-alive connection instead of leaving it out of step');
      assert.match(data, /^HTTP\/1\.1 200 /);
      assert.match(data, /\r\ncontent-length: 10\r\n/i);
      assert.ok(data.endsWith('\r\n\r\nhello'), JSON.stringify(data));
      await allWorkersIdle(2000);
    });
  });

  describe('redirects', () => {
    test('Location without an explicit status is a 302', async () => {
      const r = await get('/redirect.php?to=/static.txt');
      assert.equal(r.status, 302);
      assert.equal(r.headers.location, '/static.txt');
    });

    test('Location with code=301 is a 301 and keeps the Location', async () => {
      const r = await get('/redirect.php?to=/elsewhere&code=301');
      assert.equal(r.status, 301);
      assert.equal(r.headers.location, '/elsewhere');
    });
  });

  describe('response headers', () => {
    test('several Set-Cookie headers stay separate', async () => {
      const r = await get('/cookies.php');
      assert.equal(r.status, 200);
      const cookies = headerValues(r, 'set-cookie');
      assert.equal(cookies.length, 3, JSON.stringify(r.rawHeaders));
      assert.match(cookies[0]!, /^a=1/);
      assert.match(cookies[1]!, /^b=2; path=\/sub; HttpOnly$/);
      assert.match(cookies[2]!, /^c=3; SameSite=Lax$/);
      assert.deepEqual(r.headers['set-cookie'], cookies);
    });

    test('a repeated X-Custom header stays two headers, in order', async () => {
      const r = await get('/headers.php?redirect=0');
      assert.equal(r.status, 200);
      assert.deepEqual(headerValues(r, 'x-custom'), ['one', 'two']);
      assert.equal(r.text, 'ok');
    });

    test('Status and every X-Accel-* header never reach the client', async () => {
      for (const target of ['/headers.php', '/headers.php?redirect=0', '/status.php?code=404&reason=Not%20Found', '/stream.php?ms=0&accel=0']) {
        const r = await get(target);
        const names = headerNames(r);
        assert.ok(!names.includes('status'), `${target}: ${JSON.stringify(r.rawHeaders)}`);
        assert.deepEqual(
          names.filter((n) => n.startsWith('x-accel-')),
          [],
          `${target}: ${JSON.stringify(r.rawHeaders)}`,
        );
      }
    });
  });

  describe('bodies', () => {
    test('binary output arrives byte for byte (256 KiB, all byte values)', async () => {
      const r = await get('/binary.php');
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'application/octet-stream');
      assertSameBytes(r.body, binaryExpected(), 'binary.php');
    });

    test('an 8 MiB output arrives complete and exact', async () => {
      const r = await get('/big.php?mb=8');
      assert.equal(r.status, 200);
      assertSameBytes(r.body, bigExpected(8), 'big.php?mb=8');
    });

    test('a small answer, whole in one read from PHP, goes out with a Content-Length instead of chunked', async () => {
      const r = await get('/status.php?code=200');
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-length'], String(r.body.length));
      assert.equal(r.headers['transfer-encoding'], undefined);
      const streamed = await get('/stream.php?ms=200');
      assert.equal(streamed.headers['transfer-encoding'], 'chunked', 'an answer PHP flushed in parts stays chunked');
    });

    test('an HTTP/1.0 keep-alive client keeps its connection across small PHP answers', async () => {
      const sock = net.connect(gw.port, '127.0.0.1');
      await new Promise((r) => sock.once('connect', r));
      let received = '';
      sock.on('data', (c: Buffer) => (received += c.toString('latin1')));
      const ask = 'GET /status.php?code=200 HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n';
      sock.write(ask);
      await waitFor(
        () =>
          /\r\n\r\n/.test(received) &&
          received.length >= Number(/Content-Length: (\d+)/i.exec(received)?.[1] ?? 1e9) + received.indexOf('\r\n\r\n') + 4,
      );
      assert.match(received, /^HTTP\/1\.1 200 [^]*\r\nConnection: keep-alive\r\n/i);
      assert.equal(sock.destroyed || sock.readyState !== 'open', false, 'still open after the first answer');
      received = '';
      sock.write(ask);
      await waitFor(() => /\r\n\r\n/.test(received));
      assert.match(received, /^HTTP\/1\.1 200 /);
      sock.destroy();
    });

    test('HEAD on a PHP script has headers and no body', async () => {
      const r = await get('/status.php?code=200', { method: 'HEAD' });
      assert.equal(r.status, 200);
      assert.match(String(r.headers['content-type']), /^text\/html/);
      assert.equal(r.body.length, 0);
    });
  });

  describe('streaming (flushed output is never held back from a reading client)', () => {
    for (const [name, target] of [
      ['by default', '/stream.php?ms=1500'],
      ['with X-Accel-Buffering: no', '/stream.php?ms=1500&accel=0'],
    ] as const) {
      test(`flushed output reaches the client before the script ends, ${name}`, async () => {
        const r = await timedGet(gw.port, target);
        assert.equal(r.status, 200);
        assert.equal(r.body, 'first\nsecond\n');
        assert.match(r.firstChunk, /^first\n/);
        assert.doesNotMatch(r.firstChunk, /second/);
        assert.ok(r.firstMs < 1000, `first chunk after ${r.firstMs.toFixed(0)} ms`);
        assert.ok(r.endMs >= 1400, `end after ${r.endMs.toFixed(0)} ms`);
        assert.equal(r.headers['x-accel-buffering'], undefined);
      });
    }
  });

  describe('PHP errors and exits', () => {
    test('a fatal error answers 500 with what PHP printed before it', async () => {
      const r = await get('/fatal.php');
      assert.equal(r.status, 500);
      assert.equal(r.text, 'before\n');
    });

    test('exit() mid-script ends the response normally with what was printed', async () => {
      const r = await get('/exit.php');
      assert.equal(r.status, 200);
      assert.equal(r.text, 'partial');
    });

    test('PHP stderr (error_log) goes to the gateway log, not the response', async () => {
      const r = await get('/stderr.php');
      assert.equal(r.status, 200);
      assert.equal(r.text, 'ok');
      const hit = gw.logs().find((l) => typeof l.msg === 'string' && l.msg.includes('phpgate-test-stderr-line'));
      assert.ok(hit, 'a log entry carries the stderr line');
    });

    test('a header block over the limit is a 502, and the gateway keeps serving', async () => {
      const r = await get('/hugeheader.php?kb=100');
      assert.equal(r.status, 502);
      assert.equal(r.headers['x-huge'], undefined);
      // The failed request's worker discards the rest and comes back; every worker still answers.
      await allWorkersIdle();
      const after = await Promise.all(Array.from({ length: WORKERS + 1 }, () => get('/status.php?code=200')));
      for (const a of after) assert.equal(a.status, 200);
      // A header block under the limit (but over nginx's 4 KiB) still passes.
      const ok = await get('/hugeheader.php?kb=8');
      assert.equal(ok.status, 200);
      assert.equal(ok.headers['x-huge'], 'h'.repeat(8 * 1024));
    });
  });

  describe('static files', () => {
    test('static.txt: 200 text/plain (no charset, as nginx) with Content-Length, ETag, Last-Modified', async () => {
      const st = fs.statSync(path.join(docroot, 'static.txt'));
      const r = await get('/static.txt');
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'text/plain');
      assert.equal(r.headers['content-length'], String(st.size));
      assert.equal(r.text, fs.readFileSync(path.join(docroot, 'static.txt'), 'utf8'));
      assert.match(String(r.headers.etag), /^"[0-9a-f]+-[0-9a-f]+"$/);
      assert.equal(r.headers['last-modified'], st.mtime.toUTCString());
    });

    test('If-None-Match with the ETag answers 304 with no body', async () => {
      const first = await get('/static.txt');
      const etag = String(first.headers.etag);
      const r = await get('/static.txt', { headers: { 'If-None-Match': etag } });
      assert.equal(r.status, 304);
      assert.equal(r.body.length, 0);
      assert.equal(r.headers.etag, etag);
      const miss = await get('/static.txt', { headers: { 'If-None-Match': '"nope"' } });
      assert.equal(miss.status, 200);
    });

    test('HEAD on a static file: the GET headers, Content-Length included, and no body', async () => {
      const r = await get('/static.txt', { method: 'HEAD' });
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-length'], String(fs.statSync(path.join(docroot, 'static.txt')).size));
      assert.equal(r.headers['content-type'], 'text/plain');
      assert.equal(r.body.length, 0);
    });

    test('If-Modified-Since at or after the mtime answers 304; before it, 200', async () => {
      const st = fs.statSync(path.join(docroot, 'static.txt'));
      const same = await get('/static.txt', { headers: { 'If-Modified-Since': st.mtime.toUTCString() } });
      assert.equal(same.status, 304);
      assert.equal(same.body.length, 0);
      const older = await get('/static.txt', { headers: { 'If-Modified-Since': new Date(st.mtimeMs - 3600_000).toUTCString() } });
      assert.equal(older.status, 200);
      assert.equal(older.text, fs.readFileSync(path.join(docroot, 'static.txt'), 'utf8'));
    });

    test('POST to a static file is 405 with Allow: GET, HEAD (as nginx)', async () => {
      const r = await get('/static.txt', { method: 'POST', body: 'x=1' });
      assert.equal(r.status, 405);
      assert.equal(r.headers.allow, 'GET, HEAD');
    });

    test('page.html is text/html', async () => {
      const r = await get('/page.html');
      assert.equal(r.status, 200);
      assert.match(String(r.headers['content-type']), /^text\/html/);
      assert.match(r.text, /static html page/);
    });
  });

  describe('backpressure and client disconnects', () => {
    test('a client that pauses reading for 1 s still gets all 32 MiB exactly (buffered: its worker is free meanwhile)', async () => {
      const pool = defaultPool();
      await allWorkersIdle();
      const result = await new Promise<{ status: number; body: Buffer; busyDuringPause: boolean }>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port: gw.port, path: '/big.php?mb=32', agent: false }, (res) => {
          // No 'data' listener yet: nothing is read for a second, so every buffer on the way fills up.
          setTimeout(() => {
            // PHP's answer went to the response buffer's temp file, not into the client: its worker is free already.
            const busyDuringPause = pool.stats().idle < WORKERS;
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('error', reject);
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), busyDuringPause }));
          }, 1000);
        });
        req.setTimeout(30_000, () => req.destroy(new Error('slow reader timed out')));
        req.on('error', reject);
      });
      assert.equal(result.status, 200);
      assert.ok(!result.busyDuringPause, 'the worker was free while the client did not read');
      assertSameBytes(result.body, bigExpected(32), 'big.php?mb=32 read slowly');
    });

    test('a response that filled the client socket does not stall the next request on the same worker', async () => {
      // Regression: the exchange paused PHP's socket for a full client, END_REQUEST came in the same read, the
      // client's 'drain' never came after the end, and the worker's next request hung until timeout_ms.
      await allWorkersIdle();
      for (let i = 0; i < 3; i++) {
        const bin = await get('/binary.php', { timeoutMs: 3000 });
        assertSameBytes(bin.body, binaryExpected(), 'binary.php');
        // Sequential requests go to the worker that just finished (the idle list is LIFO), and to the others.
        for (let j = 0; j <= WORKERS; j++) {
          const r = await get('/big.php?mb=1', { timeoutMs: 3000 });
          assertSameBytes(r.body, bigExpected(1), 'big.php?mb=1 after binary.php');
        }
      }
      await allWorkersIdle(2000);
    });

    test('a client that never reads is cut off after send_ms (nginx send_timeout): PHP is stopped and its worker comes back', async () => {
      await allWorkersIdle();
      const logged = () => gw.logs().filter((l) => typeof l.msg === 'string' && l.msg.includes('send_ms')).length;
      const before = logged();
      const req = http.get({ host: '127.0.0.1', port: gw.port, path: '/big.php?mb=64', agent: false }, (res) => {
        res.on('error', () => {
          // never read: PHP blocks on a full socket until the client is cut off, which ends here
        });
      });
      req.on('error', () => {
        // the same cut-off, seen from the request
      });
      try {
        const until = Date.now() + SEND_MS + 5000;
        while (logged() === before) {
          if (Date.now() > until) assert.fail('the request was never timed out');
          await sleep(50);
        }
        // The killed child's replacement is connected and handshaken: the pool is whole again.
        await allWorkersIdle(10_000);
      } finally {
        req.destroy();
      }
      const answers = await Promise.all(Array.from({ length: WORKERS + 1 }, () => get('/status.php?code=200', { timeoutMs: 5000 })));
      for (const a of answers) assert.equal(a.status, 200);
    });

    test('a slow but steady client gets the whole response even when the download outlasts timeout_ms', async () => {
      await allWorkersIdle();
      const mb = 24;
      const t0 = Date.now();
      const got = await new Promise<number>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port: gw.port, path: `/big.php?mb=${mb}`, agent: false }, (res) => {
          let n = 0;
          let pauses = 0;
          res.on('data', (c: Buffer) => {
            n += c.length;
            // Three pauses of 1.5 s: the download takes longer than timeout_ms, PHP's own work does not.
            if (pauses < 3 && n > (pauses + 1) * 6 * 1024 * 1024) {
              pauses++;
              res.pause();
              setTimeout(() => res.resume(), 1500);
            }
          });
          res.on('end', () => resolve(n));
          res.on('error', reject);
        });
        req.on('error', reject);
      });
      assert.ok(Date.now() - t0 > TIMEOUT_MS, 'the download really outlasted timeout_ms');
      assert.equal(got, mb * 1024 * 1024);
    });

    test('a client that disconnects mid-response leaves the gateway serving with every worker back', async () => {
      await allWorkersIdle();
      await new Promise<void>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port: gw.port, path: '/big.php?mb=32', agent: false }, (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
          res.on('error', () => {
            // the request was destroyed after its first chunk
          });
        });
        req.on('error', (err) => {
          if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(err);
        });
        req.setTimeout(15_000, () => req.destroy(new Error('no first chunk')));
      });
      await allWorkersIdle();
      const t0 = Date.now();
      const answers = await Promise.all(Array.from({ length: WORKERS + 2 }, () => get('/sleep.php?ms=100', { timeoutMs: 10_000 })));
      for (const a of answers) {
        assert.equal(a.status, 200);
        assert.equal(a.text, 'slept');
      }
      assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
    });
  });
});
