/**
 * Supervision under fault injection, against real php-cgi: memory limits, crashing children and masters, a
 * php-cgi that cannot start, reloads and graceful stops under load (through the real CLI, which owns the
 * signals), pool isolation, queue timeouts, and what metrics, status, logs and the dashboard say about it all.
 *
 * Every loop is bounded, everything listens on loopback, and every process started here is stopped by its pid.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { loadConfig } from '../config/load.js';
import { Gateway } from '../gateway/server.js';
import { PHP_USER_ENV, request, startGateway, type RunningGateway, type SimpleResponse } from './support/gateway.js';
import { ensureFixtureSite } from './fixtures/site.js';
import { eventually, eventuallyAsync, freePort, running } from './support/proc.js';
import { chromiumSkip, launchChromium } from './support/browser.js';
import { startCli, type CliGateway, type LogEntry } from './support/cli-gateway.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const poolsFixtures = fileURLToPath(new URL('./fixtures/pools/', import.meta.url));
const supervisionFixtures = fileURLToPath(new URL('./fixtures/supervision/', import.meta.url));
// tsx by absolute URL, as test/cli.test.ts does.
const cli = [process.execPath, '--import', import.meta.resolve('tsx'), path.join(root, 'gateway/cli.ts')];

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-supervision-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** What the browser-side callbacks use of a DOM element (tsconfig has no DOM lib). */
interface DomElement {
  getAttribute(name: string): string | null;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The real php-cgi, found on PATH as `command -v php-cgi` would. */
function realPhpCgi(): string {
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, 'php-cgi');
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  throw new Error('php-cgi not found on PATH');
}

/**
 * A private docroot: the pools fixtures, version.php, a static file, and whatever `extra` adds
 * (relative path → contents).
 */
function makeDocroot(name: string, extra: Record<string, string> = {}): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  for (const f of fs.readdirSync(poolsFixtures)) fs.copyFileSync(path.join(poolsFixtures, f), path.join(dir, f));
  fs.copyFileSync(path.join(supervisionFixtures, 'version.php'), path.join(dir, 'version.php'));
  fs.writeFileSync(path.join(dir, 'static.txt'), 'static ok\n');
  for (const [rel, text] of Object.entries(extra)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  }
  return dir;
}

/** The php-cgi wrapper copied out of the repository and made executable here (the repo file's mode is left alone). */
function wrapperBinary(name: string): string {
  const file = path.join(tmp, name);
  fs.copyFileSync(path.join(supervisionFixtures, 'php-cgi-once.sh'), file);
  fs.chmodSync(file, 0o755);
  return file;
}

function lineCount(file: string): number {
  try {
    return fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l !== '').length;
  } catch {
    return 0;
  }
}

async function getJson(base: string, target: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await request(base, target);
  return { status: res.status, body: res.status === 200 ? (JSON.parse(res.text) as Record<string, unknown>) : {} };
}

function stats(g: RunningGateway, pool = 'default') {
  return g.gateway.pools.get(pool)!.stats();
}

function allIdle(g: RunningGateway, pool = 'default'): boolean {
  return stats(g, pool).workers.every((w) => w.state === 'idle' && w.pid > 0);
}

function pids(g: RunningGateway, pool = 'default'): number[] {
  return stats(g, pool).workers.map((w) => w.pid);
}

function yamlQuote(s: string): string {
  return JSON.stringify(s);
}

/** The children of `pid`, from /proc (empty once it is gone). */
function childrenOf(pid: number): number[] {
  try {
    const text = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    return text === '' ? [] : text.split(/\s+/).map(Number);
  } catch {
    return [];
  }
}

/**
 * Master pids recorded in the socket directory (`*.sock.pid`), and their sockets: beside them, or (a gateway run
 * as root) in the PHP user's subdirectory `u<uid>`.
 */
function recordedMasters(socketDir: string): Array<{ file: string; socket: string; pid: number }> {
  let names: string[];
  try {
    names = fs.readdirSync(socketDir);
  } catch {
    return [];
  }
  const userDirs = names.filter((n) => /^u\d+$/.test(n)).map((n) => path.join(socketDir, n));
  return names
    .filter((n) => n.endsWith('.sock.pid'))
    .map((n) => {
      const name = n.slice(0, -'.pid'.length);
      const socket = [socketDir, ...userDirs].map((d) => path.join(d, name)).find((p) => fs.existsSync(p)) ?? path.join(socketDir, name);
      return { file: n, socket, pid: Number(fs.readFileSync(path.join(socketDir, n), 'utf8').trim()) };
    });
}

function commandLine(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

/**
 * Last resort after a failed test: SIGKILL, by pid, php-cgi masters (and their children) recorded in `socketDir`
 * that still run with that socket on their command line (so a reused pid is never hit).
 */
function killLeftoverMasters(socketDir: string): void {
  for (const m of recordedMasters(socketDir)) {
    if (!running(m.pid) || !commandLine(m.pid).includes(m.socket)) continue;
    for (const child of childrenOf(m.pid)) {
      try {
        process.kill(child, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    try {
      process.kill(m.pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The CLI, for what only it does: signals (SIGHUP reload, SIGTERM drain) and `phpgate reload`.

/** One CLI command to completion, without blocking this process's event loop (load clients run meanwhile). */
function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(cli[0]!, [...cli.slice(1), ...args], {
      cwd: tmp,
      env: { ...process.env, ...PHP_USER_ENV, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`phpgate ${args.join(' ')} did not finish within 30 s`));
    }, 30_000);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function writeAtomically(file: string, text: string): void {
  fs.writeFileSync(`${file}.tmp`, text);
  fs.renameSync(`${file}.tmp`, file);
}

// ---------------------------------------------------------------------------------------------------------------

describe('memory_limit_mb: a worker over the limit is replaced after its request, never during it', () => {
  let g: RunningGateway;
  before(async () => {
    g = await startGateway('php:\n  worker_count: 1\n  memory_limit_mb: 48\n', { docroot: poolsFixtures });
  });
  after(() => g.stop());

  test('a request holding 96 MB under a 48 MB limit completes in full, then its child is replaced and the memory restart is counted and logged', async () => {
    await eventually('pool idle', () => allIdle(g));
    const first = await getJson(g.base, '/sleep.php?ms=0');
    assert.equal(first.status, 200);
    const hogPid = Number(first.body['pid']);
    const memoryBefore = stats(g).restarts.memory;

    const hog = await request(g.base, '/hog.php?mb=96&ms=1500');
    assert.equal(hog.status, 200, 'the request is never cut for memory');
    const body = JSON.parse(hog.text) as { pid: number; held: number };
    assert.equal(body.held, 96 * 1024 * 1024, 'the whole answer arrived');
    assert.equal(body.pid, hogPid, 'it ran on the child that was then over the limit');

    await eventually('a replacement child handshaken', () => allIdle(g) && !pids(g).includes(hogPid), 5_000);
    const next = await getJson(g.base, '/sleep.php?ms=0');
    assert.equal(next.status, 200);
    assert.notEqual(next.body['pid'], hogPid, 'the next request runs on a new child');
    await eventually('the over-limit child has exited', () => !running(hogPid), 5_000);
    assert.ok(stats(g).restarts.memory >= memoryBefore + 1, `restarts.memory: ${JSON.stringify(stats(g).restarts)}`);

    const warn = g.logs().find((l) => l.level === 40 && /memory_limit_mb/.test(String(l.msg)));
    assert.ok(warn, 'the replacement is logged at warn');
    assert.match(String(warn['request']), /hog\.php/, 'the log names the script that pushed it over');
    assert.equal(warn['workerPid'], hogPid);
    assert.equal(warn['limitMb'], 48);
    assert.ok(typeof warn['privateMb'] === 'number' && warn['privateMb'] > 48, `privateMb: ${String(warn['privateMb'])}`);
  });

  test('a request that stays under the limit is measured but does not cause a replacement', async () => {
    await eventually('pool idle', () => allIdle(g), 5_000);
    const pid = pids(g)[0]!;
    const memoryBefore = stats(g).restarts.memory;
    const warnsBefore = g.logs().filter((l) => /memory_limit_mb/.test(String(l.msg))).length;
    let maxSeen = 0;
    let done = false;
    const watch = (async () => {
      for (let i = 0; i < 200 && !done; i++) {
        maxSeen = Math.max(maxSeen, stats(g).workers[0]!.privateBytes);
        await sleep(20);
      }
    })();
    const res = await getJson(g.base, '/hog.php?mb=8&ms=1200');
    done = true;
    await watch;
    assert.equal(res.status, 200);
    assert.equal(res.body['pid'], pid);
    assert.ok(maxSeen >= 8 * 1048576 && maxSeen < 48 * 1048576, `the child was sampled while it held 8 MB (max seen ${maxSeen} bytes)`);
    const again = await getJson(g.base, '/sleep.php?ms=0');
    assert.equal(again.body['pid'], pid, 'same child afterwards');
    assert.equal(stats(g).restarts.memory, memoryBefore);
    assert.equal(g.logs().filter((l) => /memory_limit_mb/.test(String(l.msg))).length, warnsBefore);
  });
});

describe('crashes', () => {
  let g: RunningGateway;
  before(async () => {
    g = await startGateway('php:\n  worker_count: 3\n', { docroot: poolsFixtures });
  });
  after(() => g.stop());

  test('a child dying mid-request fails only that request; concurrent requests succeed and the crash is counted', async () => {
    await eventually('pool idle', () => allIdle(g));
    const crashBefore = stats(g).restarts.crash;
    const [dead, ...others] = await Promise.all([
      request(g.base, '/die.php').then(
        (r): SimpleResponse | Error => r,
        (err: unknown) => err as Error,
      ),
      getJson(g.base, '/sleep.php?ms=400'),
      getJson(g.base, '/sleep.php?ms=400'),
    ]);
    if (dead instanceof Error) {
      assert.match(dead.message, /aborted|socket hang up|ECONNRESET/, 'a cut response');
    } else {
      // The status line may already be out ("about to die" was flushed): then the body ends short.
      assert.ok(dead.status === 502 || dead.text.startsWith('about to die'), `got ${dead.status}: ${dead.text.slice(0, 100)}`);
    }
    for (const r of others) assert.equal(r.status, 200);
    await eventually('crash counted', () => stats(g).restarts.crash >= crashBefore + 1, 5_000);
    await eventually('pool back to 3 idle workers', () => allIdle(g), 5_000);
    assert.equal((await getJson(g.base, '/sleep.php?ms=0')).status, 200);
  });
});

describe('a php-cgi master that keeps dying', () => {
  // A gateway and a start-attempt log per test: each test breaks its own master.
  let g: RunningGateway;
  let runsFile = '';
  let run = 0;
  beforeEach(async () => {
    const docroot = makeDocroot('failing-docroot');
    runsFile = path.join(tmp, `failing-runs-${++run}.txt`);
    const yaml = `
php:
  binary: ${yamlQuote(wrapperBinary('php-cgi-failing.sh'))}
  worker_count: 2
  queue_timeout_ms: 300
  env:
    PHPGATE_TEST_RUNS: ${yamlQuote(runsFile)}
    PHPGATE_TEST_PHP: ${yamlQuote(realPhpCgi())}
`;
    g = await startGateway(yaml, { docroot, admin: true });
  });
  afterEach(async () => {
    await g.stop();
  });

  test('restarts back off, the pool turns failing, /readyz says so on both ports, and the gateway keeps serving the rest without spinning', async (t) => {
    await eventually('pool idle', () => allIdle(g));
    assert.equal(lineCount(runsFile), 1, 'the first start went through the wrapper');
    assert.equal((await request(g.adminBase, '/readyz')).status, 200, 'ready before the fault');
    const pool = g.gateway.pools.get('default')!;
    const master = pool.masterPid!;
    const killedAt = Date.now();
    process.kill(master, 'SIGKILL');

    await eventually('the pool reports failing', () => stats(g).failing, 5_000);
    assert.equal(stats(g).ready, false);
    for (const base of [g.adminBase, g.base]) {
      const ready = await request(base, '/readyz');
      assert.equal(ready.status, 503, `${base}/readyz`);
      assert.match(ready.text, /"default"/, 'names the pool');
      assert.match(ready.text, /failing/);
      const live = await request(base, '/healthz');
      assert.equal(live.status, 200, `${base}/healthz stays 200: liveness never depends on PHP`);
    }
    const file = await request(g.base, '/static.txt');
    assert.equal(file.status, 200, 'static files are still served');
    assert.equal(file.text, 'static ok\n');
    const php = await request(g.base, '/sleep.php?ms=0', { timeoutMs: 5_000 });
    assert.ok(php.status >= 500, `a PHP request is answered (not hung) with an error: ${php.status}`);
    const metrics = await request(g.adminBase, '/metrics');
    assert.match(metrics.text, /^phpgate_pool_ready\{pool="default"\} 0$/m);

    // ~3 s after the kill: a few attempts, not a spin.
    await sleep(Math.max(0, killedAt + 3_000 - Date.now()));
    const attempts = lineCount(runsFile) - 1;
    assert.ok(attempts >= 3 && attempts < 8, `master start attempts in ~3 s after the kill: ${attempts}`);
    const backoffs = g
      .logs()
      .filter((l) => typeof l['restartInMs'] === 'number')
      .map((l) => l['restartInMs'] as number);
    t.diagnostic(`start attempts in ~3 s: ${attempts}; restartInMs: ${backoffs.join(', ')}`);
    assert.ok(backoffs.length >= 3, `restart log entries: ${JSON.stringify(backoffs)}`);
    for (let i = 1; i < backoffs.length; i++) {
      assert.ok(backoffs[i]! > backoffs[i - 1]!, `backoff grows: ${JSON.stringify(backoffs)}`);
    }
    const keepsDying = g.logs().find((l) => l.level === 50 && /keeps dying/.test(String(l.msg)));
    assert.ok(keepsDying, 'an error-level entry says the master keeps dying');
    assert.ok(
      g.logs().some((l) => /php-cgi: php-cgi-once: refusing/.test(String(l.msg))),
      "php-cgi's own stderr reaches the log",
    );
    assert.equal((await request(g.base, '/healthz')).status, 200, 'still alive after the retries');
  });

  test('once php-cgi starts again the pool serves, is ready, and is no longer reported failing', { timeout: 30_000 }, async () => {
    await eventually('pool idle', () => allIdle(g));
    process.kill(g.gateway.pools.get('default')!.masterPid!, 'SIGKILL'); // every later start attempt is refused
    await eventually('the pool reports failing', () => stats(g).failing, 5_000);
    assert.equal(stats(g).failing, true, 'the pool is failing before PHP is fixed');
    fs.writeFileSync(runsFile, ''); // "fix" PHP: the next start attempt runs the real php-cgi
    // The next attempt comes after the current backoff (up to 3.2 s after the previous one).
    await eventually('a master runs again with handshaken workers', () => stats(g).ready && allIdle(g), 10_000);
    assert.equal(lineCount(runsFile), 1, 'one start attempt was enough');
    assert.equal((await request(g.adminBase, '/readyz')).status, 200, '/readyz is back to 200');
    assert.equal((await getJson(g.base, '/sleep.php?ms=0')).status, 200, 'PHP is served again');
    // A pool that is serving again does not "keep failing to start": the dashboard's badge, status.json and
    // stats() must stop saying so once it is up (not only after a later healthy run of 10 s and another death).
    await eventually('failing cleared once the pool is ready again', () => !stats(g).failing, 2_000).catch(() => undefined);
    assert.equal(
      stats(g).failing,
      false,
      `stats() of a pool that serves again: ${JSON.stringify({ ready: stats(g).ready, failing: stats(g).failing })}`,
    );
    const s = JSON.parse((await request(g.adminBase, '/status.json')).text) as { pools: Array<{ name: string; failing: boolean }> };
    assert.equal(s.pools.find((p) => p.name === 'default')!.failing, false, "status.json (the dashboard's badge) no longer says failing");
  });
});

describe('a php-cgi that cannot start at all', () => {
  test('gateway.start() rejects with a message naming the pool and the exit, and leaves nothing listening', async () => {
    const runsFile = path.join(tmp, 'never-runs.txt');
    fs.writeFileSync(runsFile, 'pretend an earlier start\n'); // the wrapper then refuses every start
    const socketDir = path.join(tmp, 'never-sock');
    const yaml = `
php:
  binary: ${yamlQuote(wrapperBinary('php-cgi-never.sh'))}
  worker_count: 1
  socket_dir: ${yamlQuote(socketDir)}
  env:
    PHPGATE_TEST_RUNS: ${yamlQuote(runsFile)}
    PHPGATE_TEST_PHP: ${yamlQuote(realPhpCgi())}
server:
  host: 127.0.0.1
  port: ${await freePort()}
admin:
  port: 0
`;
    const loaded = loadConfig({
      text: yaml,
      file: 'never.yaml',
      baseDir: tmp,
      env: { PATH: process.env['PATH'], ...PHP_USER_ENV },
      overrides: { docroot: poolsFixtures },
    });
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(
          ...chunk
            .toString('utf8')
            .split('\n')
            .filter((l) => l !== ''),
        );
        cb();
      },
    });
    const gateway = new Gateway(loaded, pino({ level: 'debug' }, sink));
    try {
      await assert.rejects(gateway.start(), (err: Error) => {
        assert.match(err.message, /php-cgi for pool "default" exited at start \(code 1\)/);
        return true;
      });
      assert.throws(() => gateway.address(), /not listening/);
      assert.equal(fs.existsSync(path.join(socketDir, 'phpgate.pid')), false, 'no pid file for a gateway that never ran');
      const attemptsAfterReject = lineCount(runsFile);
      // A quiet period, not a wait for an event: what is asserted is that no further attempt comes.
      await sleep(500);
      assert.equal(lineCount(runsFile), attemptsAfterReject, 'no restart loop keeps going after start() gave up');
    } finally {
      await gateway.stop();
      killLeftoverMasters(socketDir);
    }
  });
});

describe('reload under load (the CLI: SIGHUP and `phpgate reload`)', () => {
  const socketDir = path.join(tmp, 'reload-sock');
  const configFile = path.join(tmp, 'reload.yaml');
  const env = { PHPGATE_SOCKET_DIR: socketDir, PHPGATE_LOG_LEVEL: 'info' };
  let gw: CliGateway | null = null;
  let base = '';
  const config = (version: string, port: number, docroot: string): string => `
server:
  host: 127.0.0.1
  port: ${port}
admin:
  port: 0
php:
  docroot: ${yamlQuote(docroot)}
  worker_count: 2
  env:
    APP_VERSION: "${version}"
logging:
  level: info
  access: false
`;
  let port = 0;
  let docroot = '';
  before(async () => {
    docroot = makeDocroot('reload-docroot');
    port = await freePort();
    fs.writeFileSync(configFile, config('1', port, docroot));
    gw = await startCli(configFile, tmp, env);
    base = `http://127.0.0.1:${port}`;
  });
  after(async () => {
    await gw?.stop();
    killLeftoverMasters(socketDir);
  });

  test(
    'no request fails across a SIGHUP reload and a `phpgate reload`; new env takes effect; old masters are stopped; a broken file is refused',
    { timeout: 40_000 },
    async (t) => {
      const g = gw!;
      const poolReady = (): number[] =>
        g
          .logs()
          .filter((l) => l.msg === 'pool ready')
          .map((l) => Number(l['masterPid']));
      const reloaded = (): number => g.logs().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('reloaded')).length;
      const retired = (): number => g.logs().filter((l) => l.msg === 'previous pools stopped after reload').length;
      assert.equal(poolReady().length, 1);
      const firstMaster = poolReady()[0]!;
      assert.deepEqual(
        recordedMasters(socketDir).map((m) => m.pid),
        [firstMaster],
      );

      interface Result {
        client: number;
        status: number;
        version: string | null;
        error?: string;
      }
      const results: Result[] = [];
      let stopLoad = false;
      const startedAt = Date.now();
      const clients = [0, 1, 2, 3].map(async (client) => {
        for (let i = 0; i < 5_000 && !stopLoad && Date.now() - startedAt < 20_000; i++) {
          try {
            const r = await request(base, `/version.php?c=${client}&i=${i}`, { timeoutMs: 10_000 });
            let version: string | null = null;
            if (r.status === 200) version = String((JSON.parse(r.text) as { version: unknown }).version);
            results.push({ client, status: r.status, version });
          } catch (err) {
            results.push({ client, status: 0, version: null, error: (err as Error).message });
          }
        }
      });
      const loadDone = Promise.all(clients);
      try {
        await eventually('some answers from version 1', () => results.filter((r) => r.version === '1').length >= 40, 10_000);

        // First reload: the file changes, then SIGHUP.
        writeAtomically(configFile, config('2', port, docroot));
        g.proc.kill('SIGHUP');
        await eventually(
          'every client sees version 2',
          () => [0, 1, 2, 3].every((c) => results.some((r) => r.client === c && r.version === '2')),
          10_000,
        );
        await eventually('first reload logged', () => reloaded() >= 1, 10_000);

        // Second reload, by the command line (same file, same socket dir → the same gateway's pid file).
        const cmd = await runCli(['reload', '--config', configFile], env);
        assert.equal(cmd.code, 0, cmd.stderr);
        assert.match(cmd.stdout, new RegExp(`reload requested \\(pid ${g.pid}\\)`));
        await eventually('second reload logged', () => reloaded() >= 2, 10_000);
        await eventually('both old generations stopped', () => retired() >= 2, 10_000);
        // Keep the load on for a while after both reloads (~4 s in all).
        await sleep(Math.max(300, startedAt + 4_000 - Date.now()));
      } finally {
        stopLoad = true;
        await loadDone;
      }

      t.diagnostic(
        `${results.length} requests: ${results.filter((r) => r.version === '1').length} answered 1, ${results.filter((r) => r.version === '2').length} answered 2`,
      );
      const failed = results.filter((r) => r.status !== 200);
      assert.equal(failed.length, 0, `${failed.length} of ${results.length} requests failed, e.g. ${JSON.stringify(failed.slice(0, 5))}`);
      assert.ok(results.length >= 100, `load was real: ${results.length} requests`);
      for (let c = 0; c < 4; c++) {
        const seq = results.filter((r) => r.client === c).map((r) => r.version);
        const firstTwo = seq.indexOf('2');
        assert.ok(seq[0] === '1' && firstTwo > 0, `client ${c} switched from 1 to 2`);
        assert.ok(
          seq.slice(firstTwo).every((v) => v === '2'),
          `client ${c} never went back to 1 after seeing 2`,
        );
        assert.ok(
          seq.every((v) => v === '1' || v === '2'),
          `client ${c}: only versions 1 and 2`,
        );
      }

      const masters = poolReady();
      const oldWorkers = g
        .logs()
        .filter((l) => l.msg === 'pool ready')
        .slice(0, 2)
        .flatMap((l) => l['workers'] as number[]);
      assert.equal(oldWorkers.length, 4, 'two workers per old generation');
      assert.equal(masters.length, 3, `a new master per reload: ${JSON.stringify(masters)}`);
      assert.equal(new Set(masters).size, 3, 'each reload started a different master');
      const current = masters[2]!;
      for (const old of masters.slice(0, 2)) {
        await eventually(`old master ${old} gone`, () => !running(old), 5_000);
      }
      for (const w of oldWorkers) await eventually(`old child ${w} gone`, () => !running(w), 5_000);
      await eventually('only the current master is recorded', () => recordedMasters(socketDir).length === 1, 5_000);
      const recorded = recordedMasters(socketDir);
      assert.equal(recorded[0]!.pid, current);
      assert.ok(running(current), 'the current master runs');
      assert.ok(commandLine(current).includes(recorded[0]!.socket), 'and serves the recorded socket');

      // A broken file is refused; the gateway keeps serving version 2 from the same master.
      writeAtomically(configFile, 'php:\n  worker_count: [2\n');
      g.proc.kill('SIGHUP');
      await eventually(
        'the invalid YAML is refused',
        () => g.logs().some((l) => l.level === 50 && /reload refused/.test(String(l.msg)) && /invalid YAML/.test(String(l.msg))),
        10_000,
      );
      writeAtomically(configFile, config('3', port, docroot).replace('worker_count: 2', 'worker_cont: 2'));
      g.proc.kill('SIGHUP');
      await eventually(
        'the unknown key is refused',
        () => g.logs().some((l) => l.level === 50 && /reload refused/.test(String(l.msg)) && /worker_cont/.test(String(l.msg))),
        10_000,
      );
      const cmd = await runCli(['reload', '--config', configFile], env);
      assert.equal(cmd.code, 2, '`phpgate reload` refuses the broken file itself');
      assert.match(cmd.stderr, /reload\.yaml:\d+:\d+: .*worker_cont/);
      for (let i = 0; i < 5; i++) {
        const r = await getJson(base, '/version.php');
        assert.equal(r.status, 200);
        assert.equal(r.body['version'], '2', 'still the last good configuration');
      }
      assert.equal(poolReady().length, 3, 'no new pool was started for a refused file');
      assert.equal(reloaded(), 2);
      assert.ok(running(current));
      assert.ok(g.proc.exitCode === null, 'the gateway is still running');
    },
  );
});

describe('graceful shutdown under load (the CLI: SIGTERM)', () => {
  const socketDir = path.join(tmp, 'drain-sock');
  let gw: CliGateway | null = null;
  after(async () => {
    await gw?.stop();
    killLeftoverMasters(socketDir);
  });

  test(
    'the in-flight slow request completes, /readyz says draining meanwhile, new connections are refused, exit 0 with no php-cgi left',
    { timeout: 30_000 },
    async () => {
      const port = await freePort();
      const adminPort = await freePort();
      const configFile = path.join(tmp, 'drain.yaml');
      fs.writeFileSync(
        configFile,
        `
server:
  host: 127.0.0.1
  port: ${port}
  timeouts:
    lame_duck_ms: 0
php:
  docroot: ${yamlQuote(poolsFixtures)}
  worker_count: 3
logging:
  level: info
`,
      );
      gw = await startCli(configFile, tmp, { PHPGATE_SOCKET_DIR: socketDir, PHPGATE_ADMIN_PORT: String(adminPort) });
      const g = gw;
      const base = `http://127.0.0.1:${port}`;
      const admin = `http://127.0.0.1:${adminPort}`;
      assert.equal((await request(admin, '/readyz')).status, 200);

      const masters = recordedMasters(socketDir);
      assert.equal(masters.length, 1);
      const masterPid = masters[0]!.pid;
      await eventuallyAsync('three children forked', () => Promise.resolve(childrenOf(masterPid).length === 3), 5_000);
      const children = childrenOf(masterPid);

      let slowDoneAt = 0;
      const slow = request(base, '/sleep.php?ms=1500').then((r) => {
        slowDoneAt = Date.now();
        return r;
      });
      const fast = await Promise.all([1, 2, 3].map((i) => request(base, `/sleep.php?ms=0&i=${i}`)));
      for (const r of fast) assert.equal(r.status, 200);
      await eventuallyAsync(
        'the slow request is running',
        async () => {
          const s = JSON.parse((await request(admin, '/status.json')).text) as {
            pools: Array<{ workers: Array<{ state: string; current: { label: string } | null }> }>;
          };
          return s.pools[0]!.workers.some((w) => w.state === 'busy' && w.current !== null && /sleep\.php\?…/.test(w.current.label));
        },
        5_000,
      );

      g.proc.kill('SIGTERM');
      const readyDuringDrain: string[] = [];
      await eventuallyAsync(
        '/readyz turns 503',
        async () => {
          const r = await request(admin, '/readyz');
          if (r.status === 503) readyDuringDrain.push(r.text);
          return r.status === 503;
        },
        5_000,
      );
      assert.equal(slowDoneAt, 0, '/readyz turned 503 while the slow request was still running');
      assert.match(readyDuringDrain[0]!, /draining/);
      await assert.rejects(request(base, '/sleep.php?ms=0', { timeoutMs: 2_000 }), /ECONNREFUSED/, 'the listener no longer accepts');

      const slowRes = await slow;
      assert.equal(slowRes.status, 200, 'the in-flight request completes');
      assert.ok(Number((JSON.parse(slowRes.text) as { pid: number }).pid) > 0);
      const exit = await Promise.race([g.exited, sleep(10_000).then(() => null)]);
      assert.deepEqual(exit, { code: 0, signal: null }, `exit after drain; output:\n${g.output().slice(-2000)}`);
      assert.ok(slowDoneAt > 0);

      assert.equal(running(masterPid), false, 'php-cgi master stopped');
      for (const c of children) assert.equal(running(c), false, `php-cgi child ${c} stopped`);
      assert.deepEqual(recordedMasters(socketDir), [], 'no master recorded any more');
      assert.equal(fs.existsSync(path.join(socketDir, 'phpgate.pid')), false, 'pid file removed');
      assert.ok(g.logs().some((l) => l.msg === 'stopping' && l['signal'] === 'SIGTERM'));
    },
  );
});

describe('graceful shutdown past drain_ms (the CLI: SIGTERM)', () => {
  const socketDir = path.join(tmp, 'drain-ms-sock');
  let gw: CliGateway | null = null;
  after(async () => {
    await gw?.stop();
    killLeftoverMasters(socketDir);
  });

  test('a request still running after drain_ms is cut, and the gateway still exits 0 with no php-cgi left', { timeout: 30_000 }, async () => {
    const port = await freePort();
    const configFile = path.join(tmp, 'drain-ms.yaml');
    fs.writeFileSync(
      configFile,
      `
server:
  host: 127.0.0.1
  port: ${port}
  timeouts:
    drain_ms: 400
    lame_duck_ms: 0
php:
  docroot: ${yamlQuote(poolsFixtures)}
  worker_count: 1
logging:
  level: info
`,
    );
    const adminPort = await freePort();
    gw = await startCli(configFile, tmp, { PHPGATE_SOCKET_DIR: socketDir, PHPGATE_ADMIN_PORT: String(adminPort) });
    const g = gw;
    const base = `http://127.0.0.1:${port}`;
    const admin = `http://127.0.0.1:${adminPort}`;
    const masterPid = recordedMasters(socketDir)[0]!.pid;
    await eventuallyAsync('the child forked', () => Promise.resolve(childrenOf(masterPid).length === 1), 5_000);
    const child = childrenOf(masterPid)[0]!;
    let exitedFirst = false;
    void g.exited.then(() => (exitedFirst = true));
    const long = request(base, '/sleep.php?ms=8000').then(
      (r) => ({ ok: true as const, status: r.status, text: r.text }),
      (err: unknown) => ({ ok: false as const, error: (err as Error).message }),
    );
    await eventuallyAsync(
      'the long request is running',
      async () => {
        const st = JSON.parse((await request(admin, '/status.json')).text) as {
          pools: Array<{ workers: Array<{ pid: number; current: { label: string } | null }> }>;
        };
        return st.pools[0]!.workers.some((w) => w.pid === child && w.current !== null && /sleep\.php\?…/.test(w.current.label));
      },
      5_000,
    );
    g.proc.kill('SIGTERM');
    const outcome = await long;
    assert.equal(exitedFirst, false, 'the client was cut before the process went away, by the drain timer');
    assert.ok(!outcome.ok || outcome.status !== 200, `the 8 s request did not complete: ${JSON.stringify(outcome)}`);
    const exit = await Promise.race([g.exited, sleep(10_000).then(() => null)]);
    assert.deepEqual(exit, { code: 0, signal: null }, `exit code; output:\n${g.output().slice(-2000)}`);
    assert.ok(
      g.logs().some((l) => l.level === 40 && /drain_ms passed/.test(String(l.msg))),
      'the cut is logged',
    );
    assert.equal(running(masterPid), false, 'php-cgi master stopped');
    assert.equal(running(child), false, 'the busy php-cgi child stopped');
    assert.deepEqual(recordedMasters(socketDir), []);
  });
});

describe('pool isolation', () => {
  let g: RunningGateway;
  before(async () => {
    const docroot = makeDocroot('isolation-docroot', { 'heavy/sleep.php': fs.readFileSync(path.join(poolsFixtures, 'sleep.php'), 'utf8') });
    g = await startGateway(
      `
php:
  worker_count: 2
pools:
  - name: heavy
    worker_count: 1
    patterns: ["/heavy/*"]
`,
      { docroot },
    );
  });
  after(() => g.stop());

  test('a saturated heavy pool (1 worker, 3 queued slow requests) does not delay the default pool', { timeout: 20_000 }, async (t) => {
    await eventually('pools idle', () => allIdle(g) && allIdle(g, 'heavy'));
    const order: string[] = [];
    const heavy = [1, 2, 3].map((i) =>
      getJson(g.base, `/heavy/sleep.php?ms=1500&h=${i}`).then((r) => {
        order.push(`heavy${i}`);
        return r;
      }),
    );
    await eventually(
      'heavy saturated: one running, two queued',
      () => {
        const s = stats(g, 'heavy');
        return s.busy === 1 && s.queued === 2 && s.workers.some((w) => w.current !== null && /heavy\/sleep\.php/.test(w.current.label));
      },
      5_000,
    );
    const fast = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        getJson(g.base, `/sleep.php?ms=0&f=${i}`).then((r) => {
          order.push(`fast${i}`);
          return r;
        }),
      ),
    );
    for (const r of fast) assert.equal(r.status, 200);
    for (const r of fast) assert.ok(pids(g).includes(Number(r.body['pid'])), 'fast requests ran on the default pool');
    const heavyResults = await Promise.all(heavy);
    for (const r of heavyResults) assert.equal(r.status, 200);
    t.diagnostic(`completion order: ${order.join(' ')}`);
    const firstHeavy = order.findIndex((o) => o.startsWith('heavy'));
    const lastFast = order.reduce((acc, o, i) => (o.startsWith('fast') ? i : acc), -1);
    assert.ok(lastFast < firstHeavy, `all 10 fast requests finished before the first heavy one: ${order.join(' ')}`);
    assert.equal(new Set(heavyResults.map((r) => r.body['pid'])).size, 1, 'the heavy requests took turns on the one heavy worker');
    assert.ok(pids(g, 'heavy').includes(Number(heavyResults[0]!.body['pid'])));
  });
});

describe('queue_timeout_ms', () => {
  let g: RunningGateway;
  before(async () => {
    g = await startGateway('php:\n  worker_count: 1\n  queue_limit: 5\n  queue_timeout_ms: 300\n', { docroot: poolsFixtures });
  });
  after(() => g.stop());

  test('a request that waits longer than queue_timeout_ms gets 503 with Retry-After, while the running one completes', async () => {
    await eventually('pool idle', () => allIdle(g));
    let slowDone = false;
    const slow = getJson(g.base, '/sleep.php?ms=1500').then((r) => {
      slowDone = true;
      return r;
    });
    await eventually('the slow request runs', () => stats(g).workers.some((w) => w.current !== null && /ms=1500/.test(w.current.label)), 5_000);
    const t0 = Date.now();
    const waited = await request(g.base, '/sleep.php?ms=0');
    const elapsed = Date.now() - t0;
    assert.equal(waited.status, 503);
    assert.ok(waited.headers['retry-after'], 'Retry-After is set');
    assert.equal(slowDone, false, 'refused while the worker was still busy');
    assert.ok(elapsed >= 250, `it waited in the queue first (${elapsed} ms), unlike a queue_limit refusal`);
    assert.equal(stats(g).queued, 0, 'the expired waiter left the queue');
    assert.equal((await slow).status, 200);
    assert.equal((await getJson(g.base, '/sleep.php?ms=0')).status, 200, 'served again once the worker is free');
  });
});

describe('observability through the real gateway', () => {
  let g: RunningGateway;
  before(async () => {
    g = await startGateway('php:\n  worker_count: 2\nlogging:\n  slow_ms: 200\n', { docroot: makeDocroot('observability-docroot'), admin: true });
  });
  after(() => g.stop());

  test('/metrics counts requests by pool and status, and shows workers, restarts and durations', async () => {
    for (let i = 0; i < 5; i++) assert.equal((await request(g.base, `/sleep.php?ms=0&m=${i}`)).status, 200);
    await eventually('pool idle', () => allIdle(g));
    const m = (await request(g.adminBase, '/metrics')).text;
    const count = /^phpgate_requests_total\{pool="default",status="200"\} (\d+)$/m.exec(m);
    assert.ok(count, 'phpgate_requests_total{pool="default",status="200"}');
    assert.ok(Number(count[1]) >= 5, `counted ${count[1]}`);
    assert.match(m, /^phpgate_pool_workers\{pool="default",state="idle"\} 2$/m);
    assert.match(m, /^phpgate_worker_restarts_total\{pool="default",reason="crash"\} \d+$/m);
    assert.match(m, /^phpgate_request_duration_seconds_bucket\{[^}]*pool="default"[^}]*\} \d+$/m);
    const durCount = /^phpgate_request_duration_seconds_count\{pool="default"\} (\d+)$/m.exec(m);
    assert.ok(durCount && Number(durCount[1]) >= 5);
  });

  test('/status.json lists the pools with the same workers and pids as stats()', async () => {
    await eventually('pool idle', () => allIdle(g));
    const s = JSON.parse((await request(g.adminBase, '/status.json')).text) as {
      pools: Array<{ name: string; masterPid: number; workers: Array<{ pid: number; state: string }> }>;
    };
    assert.deepEqual(
      s.pools.map((p) => p.name),
      [...g.gateway.pools.keys()],
    );
    const def = s.pools.find((p) => p.name === 'default')!;
    assert.equal(def.masterPid, stats(g).masterPid);
    assert.deepEqual(
      def.workers.map((w) => w.pid),
      pids(g),
    );
    for (const w of def.workers) assert.ok(w.pid > 0 && running(w.pid), `worker ${w.pid} is a live process`);
  });

  test('the access log has one entry per request with method, uri, status, duration, pool and worker pid', async () => {
    const uris = [0, 1, 2].map((i) => `/sleep.php?ms=0&access=${i}`);
    const served: number[] = [];
    for (const uri of uris) served.push(Number((await getJson(g.base, uri)).body['pid']));
    const file = await request(g.base, '/static.txt');
    assert.equal(file.status, 200);
    const entriesFor = (uri: string): LogEntry[] => g.logs().filter((l) => l['log'] === 'access' && l['uri'] === uri);
    await eventually('access entries written', () => uris.every((u) => entriesFor(u).length >= 1) && entriesFor('/static.txt').length >= 1, 5_000);
    uris.forEach((uri, i) => {
      const e = entriesFor(uri);
      assert.equal(e.length, 1, `exactly one entry for ${uri}`);
      assert.equal(e[0]!['method'], 'GET');
      assert.equal(e[0]!['status'], 200);
      assert.equal(typeof e[0]!['durationMs'], 'number');
      assert.equal(e[0]!['pool'], 'default');
      assert.equal(e[0]!['workerPid'], served[i], 'the pid of the child that answered');
    });
    const stat = entriesFor('/static.txt');
    assert.equal(stat.length, 1);
    assert.equal(stat[0]!['status'], 200);
    assert.equal(stat[0]!['pool'], null, 'a static file: no pool');
    assert.equal(stat[0]!['workerPid'], 0);
  });

  test('a request slower than slow_ms is logged at warn as a slow request; a fast one is not', async () => {
    const slowUri = '/sleep.php?ms=400&slowlog=1';
    const fastUri = '/sleep.php?ms=0&slowlog=0';
    assert.equal((await request(g.base, slowUri)).status, 200);
    assert.equal((await request(g.base, fastUri)).status, 200);
    await eventually('slow entry', () => g.logs().some((l) => l.level === 40 && /slow request/.test(String(l.msg)) && l['uri'] === slowUri), 5_000);
    await eventually('fast access entry', () => g.logs().some((l) => l['log'] === 'access' && l['uri'] === fastUri), 5_000);
    const slow = g.logs().find((l) => l.level === 40 && /slow request/.test(String(l.msg)) && l['uri'] === slowUri)!;
    assert.equal(slow['pool'], 'default');
    assert.ok((slow['durationMs'] as number) >= 400);
    assert.equal(
      g.logs().some((l) => /slow request/.test(String(l.msg)) && l['uri'] === fastUri),
      false,
    );
  });

  const skip = chromiumSkip();
  test(
    'the dashboard in headless Chromium shows the real pool and pids, and a worker row turns busy during a request',
    { skip, timeout: 60_000 },
    async () => {
      await eventually('pool idle', () => allIdle(g));
      const browser = await launchChromium();
      try {
        const page = await browser.newPage();
        const problems: string[] = [];
        page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
        page.on('console', (m) => {
          if (m.type() === 'error') problems.push(`console: ${m.text()}`);
        });
        await page.goto(`${g.adminBase}/status`, { timeout: 10_000 });
        const real = pids(g);
        for (const pid of real) {
          await page.waitForSelector(`#pools [data-pool="default"] tr[data-pid="${pid}"]`, { timeout: 5_000 }).catch(async (err: unknown) => {
            throw new Error(`dashboard never showed worker ${pid}; #error: ${await page.locator('#error').innerText()}; ${problems.join('; ')}`, {
              cause: err,
            });
          });
        }
        const shown = await page
          .locator('#pools [data-pool="default"] tr[data-pid]')
          .evaluateAll((rows: DomElement[]) => rows.map((r) => Number(r.getAttribute('data-pid'))));
        assert.deepEqual(shown.sort(), [...real].sort(), 'the rows are the real children');
        assert.equal(await page.locator('#pools [data-pool="default"]').getAttribute('data-ready'), 'true');

        const inFlight = request(g.base, '/sleep.php?ms=2500&dashboard=1');
        let busyPid = 0;
        await eventually(
          'a worker busy with the request',
          () => {
            const w = stats(g).workers.find((x) => x.current !== null && /dashboard=1/.test(x.current.label));
            busyPid = w?.pid ?? 0;
            return busyPid > 0;
          },
          5_000,
        );
        const row = `#pools [data-pool="default"] tr[data-pid="${busyPid}"]`;
        await page.waitForSelector(`${row}[data-state="busy"]`, { timeout: 4_000 });
        assert.match(await page.locator(`${row} .script`).innerText(), /sleep\.php/);
        const res = await inFlight;
        assert.equal(res.status, 200);
        assert.equal((JSON.parse(res.text) as { pid: number }).pid, busyPid, 'the busy row was the child that answered');
        await page.waitForSelector(`${row}[data-state="idle"]`, { timeout: 4_000 });
        assert.deepEqual(problems, []);
      } finally {
        await browser.close();
      }
    },
  );
});

describe('lame duck on stop (server.timeouts.lame_duck_ms)', () => {
  test('/readyz is 503 at once while the port still accepts and serves; then the port closes', { timeout: 30_000 }, async () => {
    const gw = await startGateway('server:\n  timeouts:\n    lame_duck_ms: 1500\nphp:\n  worker_count: 1\n', { docroot: ensureFixtureSite() });
    try {
      assert.equal((await request(gw.base, '/readyz')).status, 200);
      const started = Date.now();
      const stopped = gw.gateway.stop();
      const ready = await request(gw.base, '/readyz');
      assert.equal(ready.status, 503, 'the health check says draining at once');
      const served = await request(gw.base, '/static.txt');
      assert.equal(served.status, 200, 'a new connection is still served');
      const php = await request(gw.base, '/dump.php');
      assert.equal(php.status, 200, 'PHP too');
      assert.ok(Date.now() - started < 1500, 'all within the lame duck');
      await stopped;
      assert.ok(Date.now() - started >= 1400, 'the port stayed open for lame_duck_ms');
      await assert.rejects(request(gw.base, '/static.txt', { timeoutMs: 2000 }), /ECONNREFUSED/);
    } finally {
      await gw.stop();
    }
  });

  test('a keep-alive connection open at the stop gets its next answer with Connection: close, then closes (a pooled proxy connection moves off)', async () => {
    const gw = await startGateway('server:\n  timeouts:\n    lame_duck_ms: 1500\nphp:\n  worker_count: 1\n', { docroot: ensureFixtureSite() });
    const socket = net.connect(gw.port, '127.0.0.1');
    try {
      let received = '';
      socket.on('data', (c: Buffer) => (received += c.toString('latin1')));
      const ended = new Promise<void>((resolve) => socket.once('end', () => resolve()));
      const ask = (target: string): void => void socket.write(`GET ${target} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
      ask('/dump.php');
      await eventually('the first answer', () => /\r\n\r\n/.test(received), 5000);
      assert.match(received, /^HTTP\/1\.1 200 /);
      assert.match(received, /\r\nConnection: keep-alive\r\n/i, 'kept alive before the stop');
      await eventually('the first body', () => received.includes('"SCRIPT_NAME"'), 5000);
      received = '';
      const stopped = gw.gateway.stop();
      ask('/dump.php');
      await ended;
      const started = Date.now();
      assert.match(received, /^HTTP\/1\.1 200 /, 'answered during the lame duck');
      assert.match(received, /\r\nConnection: close\r\n/i);
      assert.match(received, /"SCRIPT_NAME"/, 'the whole answer came before the close');
      await stopped;
      assert.ok(Date.now() - started > 500, 'the connection closed after its answer, long before the lame duck ended');
    } finally {
      socket.destroy();
      await gw.stop();
    }
  });
});
