/**
 * Regressions for the ways a gateway loses requests or workers, or lets a local user in: pipelining, client
 * aborts, hop-by-hop headers from PHP, the socket directory, a port already taken, a stop with keep-alive
 * clients, try_files literals.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../config/load.js';
import { Gateway } from '../gateway/server.js';
import { writeHandshakeScript } from '../php/handshake.js';
import { ensureFixtureSite } from './fixtures/site.js';
import { PHP_USER_ENV, request, startGateway, type RunningGateway } from './support/gateway.js';
import { eventually, running } from './support/proc.js';
import { requestArrives } from './support/server-events.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-robust-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function idleWorkers(g: RunningGateway): number {
  return g.gateway.pools
    .get('default')!
    .stats()
    .workers.filter((w) => w.state === 'idle').length;
}

/** The pid of the default pool's worker busy with a request whose label matches `label`, or 0. */
function busyWith(g: RunningGateway, label: RegExp): number {
  return (
    g.gateway.pools
      .get('default')!
      .stats()
      .workers.find((w) => w.state === 'busy' && w.current !== null && label.test(w.current.label))?.pid ?? 0
  );
}

describe('requests and workers', () => {
  let g: RunningGateway;
  before(async () => {
    g = await startGateway('php:\n  worker_count: 2\n  timeout_ms: 20000\n', { docroot: ensureFixtureSite() });
  });
  after(() => g.stop());

  test('pipelined requests on one connection run one at a time and never take every worker', async () => {
    await eventually('idle pool', () => idleWorkers(g) === 2);
    const sock = net.connect(g.port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    let received = '';
    sock.on('data', (c: Buffer) => (received += c.toString('latin1')));
    sock.on('error', () => undefined); // what was answered is checked in `received`; a reset only shows there as an answer missing
    const one = 'GET /sleep.php?ms=400 HTTP/1.1\r\nHost: x\r\n\r\n';
    sock.write(one + one + one);
    await eventually('the first pipelined request runs', () => busyWith(g, /sleep\.php/) > 0, 5000);
    // While the first runs, the other two wait their turn: one worker stays free for everyone else.
    assert.equal(idleWorkers(g), 1);
    const other = await request(g.base, '/status.php?code=200', { timeoutMs: 2000 });
    assert.equal(other.status, 200);
    await eventually('three answers', () => (received.match(/HTTP\/1\.1 200/g) ?? []).length === 3, 5000);
    sock.destroy();
  });

  test('a client that goes away makes PHP abort the script (connection_aborted, shutdown functions), as behind php-fpm', async () => {
    await eventually('idle pool', () => idleWorkers(g) === 2);
    const marker = path.join(tmp, 'abort-marker');
    await new Promise<void>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: g.port, path: `/abort.php?marker=${encodeURIComponent(marker)}`, agent: false }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err)));
    });
    // The script would stream for 10 s; it must notice the abort at its next output instead.
    await eventually('shutdown function ran', () => fs.existsSync(marker), 3000);
    assert.equal(fs.readFileSync(marker, 'utf8'), 'aborted=1');
    await eventually('worker back', () => idleWorkers(g) === 2, 5000);
  });

  test('hop-by-hop headers set by PHP never reach the client, and the connection stays usable', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await new Promise<http.IncomingMessage & { text: string }>((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port: g.port, path: '/hop.php', agent }, (res) => {
            let text = '';
            res.on('data', (c: Buffer) => (text += c.toString()));
            res.on('end', () => resolve(Object.assign(res, { text })));
          })
          .on('error', reject);
      });
      assert.equal(first.text, 'ok');
      assert.equal(first.headers['x-kept'], 'yes');
      assert.equal(first.headers['upgrade'], undefined);
      assert.notEqual(first.headers['connection'], 'close');
      assert.notEqual(first.headers['keep-alive'], 'timeout=1');
      const second = await new Promise<number>((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port: g.port, path: '/status.php?code=200', agent }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          })
          .on('error', reject);
      });
      assert.equal(second, 200);
    } finally {
      agent.destroy();
    }
  });
});

describe('the socket directory', () => {
  test('a handshake path planted as a symlink is replaced, never written through', () => {
    const dir = path.join(tmp, 'sock-planted');
    fs.mkdirSync(dir, { mode: 0o700 });
    const victim = path.join(tmp, 'victim.txt');
    fs.writeFileSync(victim, 'precious');
    fs.symlinkSync(victim, path.join(dir, 'phpgate-handshake.php'));
    const script = writeHandshakeScript(dir);
    assert.equal(fs.readFileSync(victim, 'utf8'), 'precious');
    assert.equal(fs.lstatSync(script).isSymbolicLink(), false);
    assert.match(fs.readFileSync(script, 'utf8'), /getmypid/);
  });

  test('a directory of ours left open to others is made private', () => {
    const dir = path.join(tmp, 'sock-open');
    fs.mkdirSync(dir);
    fs.chmodSync(dir, 0o777);
    writeHandshakeScript(dir);
    assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
  });

  test('a directory owned by another user is refused', (t) => {
    if (process.getuid?.() !== 0) {
      t.skip('needs root to create a directory owned by someone else');
      return;
    }
    const dir = path.join(tmp, 'sock-foreign');
    fs.mkdirSync(dir, { mode: 0o700 });
    fs.chownSync(dir, 65534, 65534);
    assert.throws(() => writeHandshakeScript(dir), /not a directory owned by this user/);
  });
});

describe('start and stop', () => {
  test('a port already taken fails the start and leaves no php-cgi behind', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as net.AddressInfo).port;
    const socketDir = path.join(tmp, 'sock-taken');
    const loaded = loadConfig({
      text: 'php:\n  worker_count: 1\n',
      file: 't.yaml',
      baseDir: tmp,
      env: { PATH: process.env['PATH'], ...PHP_USER_ENV },
      overrides: { docroot: ensureFixtureSite() },
    });
    const config = {
      ...loaded,
      server: { ...loaded.server, host: '127.0.0.1', port },
      admin: { ...loaded.admin, port: 0 },
      php: { ...loaded.php, socket_dir: socketDir },
    };
    const gw = new Gateway(config, (await import('pino')).pino({ level: 'silent' }));
    try {
      await assert.rejects(gw.start(), /EADDRINUSE/);
      const masterPid = gw.pools.get('default')!.masterPid;
      assert.equal(masterPid, null, 'the master was stopped');
      assert.deepEqual(
        fs.readdirSync(socketDir).filter((n) => n.endsWith('.sock.pid')),
        [],
      );
    } finally {
      blocker.close();
    }
  });

  test('stop() with a keep-alive client finishes the request in flight, then returns promptly, not after the grace', async () => {
    const g = await startGateway('php:\n  worker_count: 1\n', { docroot: ensureFixtureSite() });
    const agent = new http.Agent({ keepAlive: true });
    const answered = new Promise<number>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: g.port, path: '/sleep.php?ms=300', agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        })
        .on('error', reject);
    });
    await eventually('the request is in flight', () => busyWith(g, /sleep\.php/) > 0, 5000);
    const stopping = g.stop();
    const status = await answered;
    assert.equal(status, 200, 'the request in flight was answered');
    const t0 = Date.now();
    await stopping;
    assert.ok(Date.now() - t0 < 3000, `stop took ${Date.now() - t0} ms after the last answer`);
    agent.destroy();
  });
});

describe('try_files', () => {
  let g: RunningGateway;
  const docroot = path.join(tmp, 'maint');
  before(async () => {
    fs.mkdirSync(docroot);
    fs.writeFileSync(path.join(docroot, 'maintenance.html'), 'down for maintenance');
    fs.writeFileSync(path.join(docroot, 'index.php'), '<?php echo "app";');
    g = await startGateway('php:\n  worker_count: 1\n  try_files: ["/maintenance.html", "$uri", "/index.php?$query_string"]\n', { docroot });
  });
  after(() => g.stop());

  test('a literal entry (the maintenance-page recipe) is tried as that file', async () => {
    const r = await request(g.base, '/any/page');
    assert.equal(r.status, 200);
    assert.equal(r.text, 'down for maintenance');
  });
});

describe('request limits', () => {
  let g: RunningGateway;
  before(async () => {
    g = await startGateway('server:\n  limits:\n    url_kb: 1\nphp:\n  worker_count: 1\n', { docroot: ensureFixtureSite() });
  });
  after(() => g.stop());

  test('the access log counts the bytes each response sent, head and body (nginx $bytes_sent)', async () => {
    const r = await request(g.base, '/static.txt');
    assert.equal(r.status, 200);
    await eventually('access line', () => g.logs().some((l) => l['log'] === 'access' && l['uri'] === '/static.txt'));
    const line = g.logs().find((l) => l['log'] === 'access' && l['uri'] === '/static.txt')!;
    assert.ok(Number(line['bytes']) > r.body.length, `bytes ${String(line['bytes'])} covers the head and the ${r.body.length}-byte body`);
  });

  test('a request target over server.limits.url_kb gets 414 and PHP never runs', async () => {
    const served = g.gateway.pools.get('default')!.stats().workers[0]!.requestsTotal;
    const r = await request(g.base, `/dump.php?x=${'a'.repeat(1100)}`);
    assert.equal(r.status, 414);
    assert.equal(g.gateway.pools.get('default')!.stats().workers[0]!.requestsTotal, served);
    assert.equal((await request(g.base, '/dump.php?x=short')).status, 200);
  });
});

describe('CGI params over one FastCGI record (server.limits.header_kb raised)', () => {
  let g: RunningGateway;
  before(async () => {
    g = await startGateway('server:\n  limits:\n    header_kb: 256\nphp:\n  worker_count: 1\n', { docroot: ensureFixtureSite() });
  });
  after(() => g.stop());

  test('headers over 64 KiB in all reach PHP whole (php-cgi reads each PARAMS record on its own: pairs are never cut)', async () => {
    const headers = { 'X-A': 'a'.repeat(30_000), 'X-B': 'b'.repeat(30_000), 'X-C': 'c'.repeat(30_000) };
    const r = await request(g.base, '/dump.php', { headers });
    assert.equal(r.status, 200, r.text.slice(0, 300));
    const server = (JSON.parse(r.text) as { server: Record<string, string> }).server;
    assert.equal(server['HTTP_X_A'], headers['X-A']);
    assert.equal(server['HTTP_X_C'], headers['X-C']);
  });

  test('one header over a record is a 431, not a 502 counted as a crash: the worker lives on and serves the next request', async () => {
    const before = g.gateway.pools.get('default')!.stats().workers[0]!;
    const r = await request(g.base, '/dump.php', { headers: { Cookie: `big=${'c'.repeat(70_000)}` } });
    assert.equal(r.status, 431);
    const after = g.gateway.pools.get('default')!.stats().workers[0]!;
    assert.equal(after.pid, before.pid);
    assert.equal(after.requestsTotal, before.requestsTotal, 'PHP never ran');
    assert.equal((await request(g.base, '/dump.php?x=next')).status, 200);
    assert.ok(!g.logs().some((l) => /died|crash/i.test(String(l.msg))), 'no worker crash was logged');
  });
});

describe('aborts, reloads and early resets', () => {
  let g: RunningGateway;
  before(async () => {
    g = await startGateway('php:\n  worker_count: 2\n  timeout_ms: 20000\nstatic:\n  hot_cache_file_kb: 0\n', { docroot: ensureFixtureSite() });
  });
  after(() => g.stop());

  test('a client that aborts while its body is still going to PHP: the script never runs on the truncated body', async () => {
    await eventually('idle pool', () => idleWorkers(g) === 2);
    const marker = path.join(tmp, 'truncated-marker');
    // 3 MB, over the in-memory spool: streamed to PHP from disk while PHP sleeps before reading.
    const body = Buffer.alloc(3 * 1024 * 1024, 0x61);
    const sock = net.connect(g.port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.on('error', () => undefined); // the client aborts on purpose below
    sock.write(`PUT /slowread.php?ms=1200&marker=${encodeURIComponent(marker)} HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`);
    sock.write(body);
    let child = 0;
    await eventually('the upload has gone to PHP', () => (child = busyWith(g, /slowread\.php/)) > 0, 10_000);
    sock.destroy();
    // The child must be killed before its 1.2 s sleep ends and it reads the truncated body; had it read it, the
    // marker is written.
    await eventually('the child with the truncated body is killed (or the script ran)', () => !running(child) || fs.existsSync(marker), 10_000);
    assert.equal(fs.existsSync(marker), false, fs.existsSync(marker) ? fs.readFileSync(marker, 'utf8') : '');
    await eventually('both workers back', () => idleWorkers(g) === 2, 10_000);
  });

  test('concurrent reloads leave exactly one generation of php-cgi masters running', async () => {
    const masters = (): number[] => [...g.gateway.pools.values()].map((p) => p.masterPid!).filter((p) => p !== null);
    const before = masters();
    await Promise.all([g.gateway.reload(g.config), g.gateway.reload(g.config), g.gateway.reload(g.config)]);
    const now = masters();
    assert.equal(now.length, 1);
    assert.notDeepEqual(now, before);
    // The replaced masters stop once idle: only the one in force remains.
    const all = (): number => fs.readdirSync(path.join(path.dirname(g.config.php.socket_dir), 'sock')).filter((n) => n.endsWith('.sock.pid')).length;
    await eventually('old masters stopped', () => all() === 1, 10_000);
    assert.equal((await request(g.base, '/status.php?code=200')).status, 200);
  });

  test('an upload still arriving when a reload happens is served by the new pools, not refused', async () => {
    const sock = net.connect(g.port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    let received = '';
    sock.on('data', (c: Buffer) => (received += c.toString('latin1')));
    sock.on('error', () => undefined); // what was answered is checked in `received`; a reset only shows there as an answer missing
    const arrived = requestArrives("the upload's head at the gateway", (req) => req.url === '/slowread.php?ms=0');
    sock.write('POST /slowread.php?ms=0 HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nConnection: close\r\n\r\n01234');
    await arrived;
    const oldMasters = [...g.gateway.pools.values()].map((p) => p.masterPid!);
    await g.gateway.reload(g.config);
    await eventually('the old pools are stopped', () => oldMasters.every((pid) => !running(pid)), 10_000);
    sock.write('56789');
    await eventually('an answer', () => received.includes('\r\n\r\n'), 10_000);
    assert.match(received, /^HTTP\/1\.1 200 /);
    assert.match(received, /\r\nContent-Length: 2\r\n[^]*\r\n\r\n10$/, 'PHP read all 10 bytes (answer "10")');
    sock.destroy();
  });

  test('clients that reset while a large static file is being opened leave no file open', async () => {
    const big = path.join(ensureFixtureSite(), 'uploads', 'photo.txt'); // streamed: hot cache is off here
    const openFds = (): number =>
      fs.readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return fs.readlinkSync(`/proc/self/fd/${fd}`) === big;
        } catch {
          return false; // closed while listing
        }
      }).length;
    for (let i = 0; i < 30; i++) {
      const s = net.connect(g.port, '127.0.0.1');
      s.on('error', () => undefined); // resetAndDestroy() below: the error is the point
      s.write('GET /uploads/photo.txt HTTP/1.1\r\nHost: x\r\n\r\n');
      s.resetAndDestroy();
    }
    // A request on a connection made after the 30: once it is answered, the gateway has accepted and read the
    // ones before it (and any file opens they started were queued ahead of its own).
    assert.equal((await request(g.base, '/uploads/photo.txt')).status, 200);
    await eventually('no descriptor left open on the file', () => openFds() === 0, 5000).catch(() => undefined); // a leak shows in the count asserted next, with its number
    assert.equal(openFds(), 0);
  });
});
