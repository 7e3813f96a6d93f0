/**
 * Response buffering (php.response_*, nginx's fastcgi_buffering) and the minimum send rate, through a real gateway
 * and real php-cgi on loopback: slow clients (HTTP/1.1 trickle readers, an HTTP/2 connection with a zero window) do
 * not hold PHP workers; the temp files never outlive their request; `X-Accel-Buffering: no` keeps PHP streaming
 * with backpressure; the temp file's limit brings backpressure back; min_send_rate cuts a trickle reader only.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { selfSigned } from './support/certs.js';
import { request, startGateway, type RunningGateway } from './support/gateway.js';
import { eventually } from './support/proc.js';

const WORKERS = 2;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-buffering-'));
const docroot = path.join(tmp, 'site');
fs.mkdirSync(docroot);
// KiB of a known pattern with a Content-Length, so a client can tell when it has the whole body.
fs.writeFileSync(
  path.join(docroot, 'big.php'),
  `<?php $kb = (int)($_GET['kb'] ?? 64);
if (isset($_GET['nobuf'])) header('X-Accel-Buffering: no');
header('Content-Length: ' . ($kb * 1024));
$block = str_repeat('0123456789abcdef', 512);
for ($i = 0; $i < $kb / 8; $i++) echo $block;`,
);
fs.writeFileSync(path.join(docroot, 'hello.php'), '<?php echo "hello";');
fs.writeFileSync(
  path.join(docroot, 'stream.php'),
  `<?php if (isset($_GET['nobuf'])) header('X-Accel-Buffering: no');
while (ob_get_level()) ob_end_flush();
echo "first\\n"; flush(); usleep(1500000); echo "second\\n";`,
);
const certs = selfSigned(tmp, 'buffering');

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

// A full collection before measuring memory: 48 MiB passed through buffers that are garbage, not held.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Bytes in Buffers still reachable after a full collection. */
function heldBuffers(): number {
  gc();
  return process.memoryUsage().arrayBuffers;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** This process's open response temp files (the gateway runs in it): unlinked, so only /proc shows them. */
function spoolFiles(): Array<{ fd: string; size: number }> {
  const found: Array<{ fd: string; size: number }> = [];
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // closed between the listing and the read
    }
    if (!target.includes('phpgate-response-')) continue;
    try {
      found.push({ fd, size: fs.statSync(`/proc/self/fd/${fd}`).size });
    } catch {
      // closed meanwhile: not open any more, which is what is counted
    }
  }
  return found;
}

function idle(g: RunningGateway): number {
  return g.gateway.pools.get('default')!.stats().idle;
}

/**
 * An HTTP/1.1 client reading `bytes` every `everyMs` (0 bytes: not at all): a slow-read client. `headSeen` resolves
 * once the response head arrived; `done` with how it ended.
 */
function slowReader(port: number, target: string, bytes: number, everyMs: number) {
  const sock = net.connect(port, '127.0.0.1');
  sock.write(`GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`);
  sock.pause();
  let got = 0;
  let total = -1;
  let head = '';
  let onHead: () => void = () => undefined;
  const headSeen = new Promise<void>((r) => (onHead = r));
  const take = (n: number): void => {
    for (;;) {
      const c = (sock.read(n) as Buffer | null) ?? (sock.read() as Buffer | null);
      if (c === null) return;
      if (total < 0) {
        head += c.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) continue;
        total = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 'NaN');
        got = head.length - end - 4;
        onHead();
      } else got += c.length;
      if (n > 0) return;
    }
  };
  // The head first, however slow the reader is afterwards.
  const headPoll = setInterval(() => (total < 0 ? take(0) : clearInterval(headPoll)), 20);
  const timer = bytes > 0 ? setInterval(() => total >= 0 && take(bytes), everyMs) : null;
  const done = new Promise<'whole' | 'cut'>((resolve) => {
    sock.on('close', () => {
      clearInterval(headPoll);
      if (timer !== null) clearInterval(timer);
      resolve(total >= 0 && got === total ? 'whole' : 'cut');
    });
    sock.on('error', () => undefined); // a cut shows as the close above
  });
  return {
    headSeen,
    done,
    got: () => got,
    /** Reads the rest as fast as it comes. */
    readAll(): void {
      if (timer !== null) clearInterval(timer);
      sock.on('data', (c: Buffer) => {
        got += c.length;
        if (got === total) sock.end();
      });
      sock.resume();
    },
    destroy: () => sock.destroy(),
  };
}

describe('slow clients do not hold PHP workers (buffering on by default)', () => {
  let g: RunningGateway;
  before(async () => {
    g = await startGateway(`php:\n  worker_count: ${WORKERS}\n  queue_timeout_ms: 5000\n`, { docroot });
  });
  after(() => g.stop());

  test('worker_count+1 HTTP/1.1 clients reading 16 MiB at ~1 KiB/s: a normal request still answers within 1 s', async () => {
    const memBefore = heldBuffers();
    const readers = Array.from({ length: WORKERS + 1 }, () => slowReader(g.port, '/big.php?kb=16384', 1024, 1000));
    try {
      await Promise.all(readers.map((r) => r.headSeen));
      await sleep(500);
      const r = await request(g.base, '/hello.php', { timeoutMs: 1000 });
      assert.equal(r.text, 'hello');
      await eventually('every worker is free while the slow clients read', () => idle(g) === WORKERS, 3000);
      // What the clients have not taken is in temp files, not in memory: 48 MiB of answers, bounded memory.
      const files = spoolFiles();
      assert.equal(files.length, WORKERS + 1, 'one temp file per slow answer');
      for (const f of files) assert.ok(f.size > 1024 * 1024, `temp file holds the backlog (${f.size} bytes)`);
      const grew = heldBuffers() - memBefore;
      assert.ok(grew < 8 * 1024 * 1024, `buffers grew by ${grew} bytes for 48 MiB of backlog`);
    } finally {
      for (const r of readers) r.destroy();
    }
    // Clients gone mid-download: no temp file stays open (they are unlinked from the start).
    await eventually('the temp files are closed after the clients left', () => spoolFiles().length === 0, 3000);
  });

  test('a slow client that reads the rest later gets every byte, and the temp file goes with the answer', async () => {
    const r = slowReader(g.port, '/big.php?kb=8192', 0, 0);
    await r.headSeen;
    await eventually('PHP answered whole and its worker is free', () => idle(g) === WORKERS, 3000);
    assert.equal(spoolFiles().length, 1);
    r.readAll();
    assert.equal(await r.done, 'whole');
    await eventually('the temp file is closed once the answer went out', () => spoolFiles().length === 0, 3000);
  });

  test('X-Accel-Buffering: no keeps backpressure to PHP (its worker waits for the client) and uses no temp file', async () => {
    const r = slowReader(g.port, '/big.php?kb=16384&nobuf=1', 0, 0);
    try {
      await r.headSeen;
      await sleep(700);
      assert.equal(idle(g), WORKERS - 1, 'the worker waits for the client, as without buffering');
      assert.equal(spoolFiles().length, 0);
    } finally {
      r.destroy();
    }
    await eventually('the worker is back after the client left', () => idle(g) === WORKERS, 10_000);
  });

  for (const [name, target] of [
    ['buffered', '/stream.php'],
    ['with X-Accel-Buffering: no', '/stream.php?nobuf=1'],
  ] as const) {
    test(`flushed output reaches a reading client before the script ends (${name})`, async () => {
      const t0 = performance.now();
      const first = await new Promise<{ chunk: string; ms: number; rest: Promise<string> }>((resolve, reject) => {
        const sock = net.connect(g.port, '127.0.0.1');
        sock.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
        let all = '';
        let told = false;
        const rest = new Promise<string>((res) => sock.on('end', () => res(all)));
        sock.on('data', (c: Buffer) => {
          all += c.toString();
          if (!told && all.includes('first')) {
            told = true;
            resolve({ chunk: all, ms: performance.now() - t0, rest });
          }
        });
        sock.on('error', reject);
      });
      assert.doesNotMatch(first.chunk, /second/);
      assert.ok(first.ms < 1000, `first chunk after ${first.ms.toFixed(0)} ms`);
      assert.match(await first.rest, /first\n[\s\S]*second\n/);
    });
  }
});

describe('buffer limits: past response_temp_max_mb PHP waits for the client again', () => {
  let g: RunningGateway;
  before(async () => {
    g = await startGateway(`php:\n  worker_count: ${WORKERS}\n  response_buffer_kb: 64\n  response_temp_max_mb: 1\n  response_temp_dir: ${tmp}\n`, {
      docroot,
    });
  });
  after(() => g.stop());

  test('the temp file stops at its limit, the worker waits, and the client still gets every byte', async () => {
    const r = slowReader(g.port, '/big.php?kb=16384', 0, 0);
    await r.headSeen;
    await sleep(700);
    assert.equal(idle(g), WORKERS - 1, 'PHP waits for the client once the temp file is full');
    const files = spoolFiles();
    assert.equal(files.length, 1);
    // 1 MiB, plus at most the read that crossed it.
    assert.ok(files[0]!.size <= 1024 * 1024 + 256 * 1024, `temp file of ${files[0]!.size} bytes`);
    assert.ok(files[0]!.size > 0);
    assert.deepEqual(
      fs.readdirSync(tmp).filter((f) => f.startsWith('phpgate-response-')),
      [],
      'nothing is left in the directory (unlinked at once)',
    );
    r.readAll();
    assert.equal(await r.done, 'whole');
    await eventually('temp file closed, worker free', () => spoolFiles().length === 0 && idle(g) === WORKERS, 5000);
  });
});

describe('php.response_buffering: false (nginx fastcgi_buffering off)', () => {
  let g: RunningGateway;
  before(async () => {
    g = await startGateway(`php:\n  worker_count: ${WORKERS}\n  response_buffering: false\n`, { docroot });
  });
  after(() => g.stop());

  test('a client that does not read holds its worker, as before, and no temp file is made', async () => {
    const r = slowReader(g.port, '/big.php?kb=16384', 0, 0);
    try {
      await r.headSeen;
      await sleep(700);
      assert.equal(idle(g), WORKERS - 1);
      assert.equal(spoolFiles().length, 0);
    } finally {
      r.destroy();
    }
    await eventually('the worker is back after the client left', () => idle(g) === WORKERS, 10_000);
  });
});

describe('HTTP/2: a connection with a zero window and one stream per worker', () => {
  let g: RunningGateway;
  before(async () => {
    g = await startGateway(
      `server:\n  tls:\n    cert: ${certs.cert}\n    key: ${certs.key}\nphp:\n  worker_count: ${WORKERS}\n  queue_timeout_ms: 5000\n`,
      {
        docroot,
      },
    );
  });
  after(() => g.stop());

  function connect(settings: http2.Settings): Promise<http2.ClientHttp2Session> {
    return new Promise((resolve, reject) => {
      const s = http2.connect(`https://localhost:${g.port}`, { rejectUnauthorized: false, settings });
      s.once('remoteSettings', () => resolve(s));
      s.once('error', reject);
    });
  }

  test('streams that cannot take a byte of a 300 KiB page do not stop a normal request (within 1 s)', async () => {
    const stuck = await connect({ initialWindowSize: 0 });
    stuck.on('error', () => undefined); // closed at the end of the test
    const normal = await connect({});
    try {
      const heads = Array.from(
        { length: WORKERS + 1 },
        () =>
          new Promise<void>((resolve, reject) => {
            const st = stuck.request({ ':path': '/big.php?kb=300' });
            st.on('response', () => resolve());
            st.on('error', () => undefined); // reset when the session closes
            st.setTimeout(5000, () => reject(new Error('no head')));
          }),
      );
      await Promise.all(heads);
      await sleep(300);
      const t0 = performance.now();
      const body = await new Promise<string>((resolve, reject) => {
        const st = normal.request({ ':path': '/hello.php' });
        let text = '';
        st.setEncoding('utf8');
        st.on('data', (c: string) => (text += c));
        st.on('end', () => resolve(text));
        st.on('error', reject);
        st.setTimeout(1000, () => reject(new Error('/hello.php took over 1 s')));
      });
      assert.equal(body, 'hello');
      assert.ok(performance.now() - t0 < 1000);
      await eventually('every worker is free', () => idle(g) === WORKERS, 3000);
    } finally {
      stuck.destroy();
      normal.close();
    }
    await eventually('the temp files are closed with the connection', () => spoolFiles().length === 0, 3000);
  });
});

describe('server.timeouts.min_send_rate', () => {
  // Loopback's send buffers grow to megabytes, and Linux wakes a writer only once half of one is free: a client must
  // take megabytes per send_ms for the rate to be judged before send_ms cuts it. Hence the high rates here.
  let g: RunningGateway;
  const SEND_MS = 3000;
  before(async () => {
    g = await startGateway(`server:\n  timeouts:\n    send_ms: ${SEND_MS}\n    min_send_rate: 2097152\nphp:\n  worker_count: ${WORKERS}\n`, {
      docroot,
    });
  });
  after(() => g.stop());

  const cuts = (what: string): number => g.logs().filter((l) => typeof l.msg === 'string' && l.msg.includes(what)).length;

  test('a client taking 1 MiB/s (under 2 MiB/s, yet something within every send_ms) is cut for its rate', async () => {
    const before = cuts('min_send_rate');
    const r = slowReader(g.port, '/big.php?kb=65536', 256 * 1024, 250);
    try {
      await r.headSeen;
      await eventually('the slow client is cut for its rate', () => cuts('min_send_rate') > before, 20_000);
      assert.equal(await Promise.race([r.done, sleep(15_000).then(() => 'still open' as const)]), 'cut');
    } finally {
      r.destroy();
    }
  });

  test('a client reading at 6 MiB/s and one reading at full speed are never cut', async () => {
    const before = cuts('min_send_rate') + cuts('send_ms');
    const steady = slowReader(g.port, '/big.php?kb=65536', 1536 * 1024, 250);
    const fast = await request(g.base, '/big.php?kb=32768', { timeoutMs: 20_000 });
    assert.equal(fast.body.length, 32 * 1024 * 1024);
    try {
      await steady.headSeen;
      const ended = await Promise.race([steady.done, sleep(SEND_MS * 2).then(() => 'still open' as const)]);
      assert.equal(ended, 'still open', `the steady reader was cut after ${steady.got()} bytes`);
      assert.equal(cuts('min_send_rate') + cuts('send_ms'), before);
    } finally {
      steady.destroy();
    }
  });
});
