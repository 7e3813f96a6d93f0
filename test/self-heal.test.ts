/**
 * A pool must never die for good without saying so. Against real php-cgi, through the real gateway:
 * - its socket file removed (a tmp cleaner): workers that reconnect (max_requests: 1 recycles one per request)
 *   find no socket; the master is replaced on a fresh socket, /readyz is 503 naming the pool meanwhile, and one
 *   error-level line says why;
 * - its socket directory unusable when the master restarts (a regular file in its place; a full tmpfs when this
 *   machine lets the test mount one): no uncaught exception, /readyz 503 with the reason, healed once it is usable;
 * - the default socket directory is not where request bodies spool.
 *
 * Every loop is bounded, everything listens on loopback, every process started here is stopped by its pid.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../config/load.js';
import { request, startGateway, type RunningGateway } from './support/gateway.js';
import { freePort, running } from './support/proc.js';
import { startCli, type CliGateway } from './support/cli-gateway.js';

const poolsFixtures = fileURLToPath(new URL('./fixtures/pools/', import.meta.url));

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-heal-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function docroot(): string {
  const dir = path.join(tmp, 'site');
  if (fs.existsSync(dir)) return dir;
  fs.mkdirSync(dir, { recursive: true });
  for (const f of fs.readdirSync(poolsFixtures)) fs.copyFileSync(path.join(poolsFixtures, f), path.join(dir, f));
  return dir;
}

/** Polls /readyz every 10 ms until stopped; keeps every answer that was not 200. */
function watchReadiness(base: string): { stop(): Promise<Array<{ status: number; text: string }>> } {
  const seen: Array<{ status: number; text: string }> = [];
  let on = true;
  const loop = (async () => {
    while (on) {
      try {
        const r = await request(base, '/readyz', { timeoutMs: 2_000 });
        if (r.status !== 200) seen.push({ status: r.status, text: r.text });
      } catch (err) {
        seen.push({ status: 0, text: String(err) });
      }
      await sleep(10);
    }
  })();
  return {
    async stop() {
      on = false;
      await loop;
      return seen;
    },
  };
}

describe('a pool whose socket file is deleted', () => {
  let g: RunningGateway;
  after(async () => g?.stop());

  test(
    'replaces its master on a fresh socket: requests are served again without a reload, /readyz 503 meanwhile, one error line',
    { timeout: 40_000 },
    async (t) => {
      g = await startGateway(`php:\n  worker_count: 1\n  max_requests: 1\n  queue_timeout_ms: 4000\n`, { docroot: docroot() });
      const pool = g.gateway.pools.get('default')!;
      assert.equal((await request(g.base, '/sleep.php?ms=0')).status, 200);
      const socket = pool.socketPath()!;
      const master = pool.masterPid!;
      assert.ok(fs.statSync(socket).isSocket(), `the pool's socket: ${socket}`);
      const logsBefore = g.logs().length;

      fs.rmSync(socket); // a tmp cleaner
      const readiness = watchReadiness(g.base);
      const statuses: number[] = [];
      // Every request recycles the worker: from the second on, a worker must connect to the socket again.
      for (let i = 0; i < 6; i++) {
        const r = await request(g.base, '/sleep.php?ms=0', { timeoutMs: 10_000 });
        statuses.push(r.status);
      }
      const notReady = await readiness.stop();
      t.diagnostic(`statuses: ${statuses.join(' ')}; /readyz not ready ${notReady.length} times: ${JSON.stringify(notReady[0])}`);
      assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200], 'every request is served (queued while the master is replaced)');
      assert.notEqual(pool.masterPid, master, 'a new master');
      assert.notEqual(pool.socketPath(), socket, 'on a fresh socket');
      assert.equal(running(master), false, 'the old master is gone');
      assert.ok(notReady.length > 0, '/readyz said not ready while the pool could not serve');
      assert.ok(
        notReady.some((r) => r.status === 503 && /"default"/.test(r.text) && /socket/.test(r.text)),
        `/readyz names the pool and the reason: ${JSON.stringify(notReady.slice(0, 3))}`,
      );
      // With one worker recycled after every request, the pool is briefly "starting" after each: ready within moments.
      let ready = await request(g.base, '/readyz');
      for (let i = 0; i < 50 && ready.status !== 200; i++) {
        await sleep(100);
        ready = await request(g.base, '/readyz');
      }
      assert.equal(ready.status, 200, `ready again by itself: ${ready.text}`);
      const errors = g
        .logs()
        .slice(logsBefore)
        .filter((l) => (l['level'] as number) >= 50);
      assert.equal(errors.length, 1, `one error-level line for the episode: ${JSON.stringify(errors)}`);
      assert.match(String(errors[0]!.msg), /socket/);
    },
  );
});

/** A gateway through its CLI on this configuration (written to a file of its own). */
function startCliOn(yaml: string): Promise<CliGateway> {
  const file = path.join(tmp, `heal-${Date.now()}.yaml`);
  fs.writeFileSync(file, yaml);
  return startCli(file, tmp);
}

/** The master pids recorded in the socket directory (`*.sock.pid`), still running. */
function recordedMasters(socketDir: string): number[] {
  return fs
    .readdirSync(socketDir)
    .filter((n) => n.endsWith('.sock.pid'))
    .map((n) => Number(fs.readFileSync(path.join(socketDir, n), 'utf8')))
    .filter((pid) => running(pid));
}

/**
 * Starts a gateway through the CLI on `socketDir`, breaks the directory with `breakIt`, kills the master so that
 * it must restart into the broken directory, checks what the gateway says, then `repair`s it and waits for PHP.
 */
async function restartIntoBrokenDir(
  t: { diagnostic(s: string): void },
  socketDir: string,
  breakIt: () => void,
  repair: () => void,
  reason: RegExp,
): Promise<void> {
  const port = await freePort();
  const gw = await startCliOn(
    `server:\n  port: ${port}\n  host: 127.0.0.1\nadmin:\n  port: 0\nphp:\n  docroot: ${JSON.stringify(docroot())}\n  worker_count: 1\n  queue_timeout_ms: 2000\n  socket_dir: ${JSON.stringify(socketDir)}\n`,
  );
  const base = `http://127.0.0.1:${port}`;
  try {
    assert.equal((await request(base, '/sleep.php?ms=0')).status, 200);
    const [master] = recordedMasters(socketDir);
    assert.ok(master !== undefined, 'the master is recorded in the socket directory');
    breakIt();
    process.kill(master, 'SIGKILL');
    let ready = await request(base, '/readyz');
    const deadline = Date.now() + 5_000;
    while (!(ready.status === 503 && reason.test(ready.text)) && Date.now() < deadline) {
      await sleep(50);
      ready = await request(base, '/readyz');
    }
    t.diagnostic(`/readyz while broken: ${ready.status} ${ready.text}`);
    assert.doesNotMatch(gw.output(), /uncaught exception|unhandled rejection/, 'a failed restart is no uncaught exception');
    assert.equal(ready.status, 503, 'not ready while the socket directory is unusable');
    assert.match(ready.text, /"default"/);
    assert.match(ready.text, reason, 'says why');
    await sleep(1_500); // several restart attempts into the broken directory
    assert.equal(gw.proc.exitCode, null, 'the gateway runs');
    assert.doesNotMatch(gw.output(), /uncaught exception|unhandled rejection/);
    const errors = gw.logs().filter((l) => (l.level ?? 0) >= 50);
    t.diagnostic(`error lines: ${errors.map((e) => e.msg).join(' | ')}`);
    assert.equal(errors.length, 1, 'one error-level line, not one per retry');

    repair();
    const healedBy = Date.now() + 15_000;
    // A request that times out while PHP is still down counts as not served yet (null): the loop asks again.
    const ask = (): Promise<{ status: number } | null> => request(base, '/sleep.php?ms=0', { timeoutMs: 5_000 }).catch(() => null);
    let php = await ask();
    while (php?.status !== 200 && Date.now() < healedBy) {
      await sleep(200);
      php = await ask();
    }
    assert.equal(php?.status, 200, 'PHP is served again once the directory is usable, with no reload');
    assert.equal((await request(base, '/readyz')).status, 200, 'ready again');
    assert.doesNotMatch(gw.output(), /uncaught exception|unhandled rejection/);
  } finally {
    await gw.stop();
  }
}

describe('a socket directory that cannot be written when the master restarts', () => {
  test(
    'replaced by a regular file: /readyz 503 with the reason, no uncaught exception, healed once it is a directory again',
    { timeout: 60_000 },
    async (t) => {
      const socketDir = path.join(tmp, 'sock-file');
      await restartIntoBrokenDir(
        t,
        socketDir,
        () => {
          fs.rmSync(socketDir, { recursive: true, force: true });
          fs.writeFileSync(socketDir, 'not a directory\n');
        },
        () => fs.rmSync(socketDir), // a tmp cleaner took everything: the gateway makes the directory and its scripts again
        /socket directory is unusable \((EEXIST|ENOTDIR)\)/,
      );
    },
  );

  test('on a tmpfs with no inodes left (ENOSPC): the same, healed once space is freed', { timeout: 60_000 }, async (t) => {
    const mnt = path.join(tmp, 'tiny');
    fs.mkdirSync(mnt);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,nr_inodes=64,mode=0755', 'tmpfs', mnt], { stdio: 'pipe' });
    } catch (err) {
      t.skip(`cannot mount a tmpfs here (${String(err).split('\n')[0]}): the regular-file variant covers the restart path`);
      return;
    }
    const fillers: string[] = [];
    try {
      const socketDir = path.join(mnt, 'sock');
      await restartIntoBrokenDir(
        t,
        socketDir,
        () => {
          // Every inode taken; the scripts beside the socket are gone too, as after a cleaner.
          for (const f of fs.readdirSync(socketDir)) if (f.endsWith('.php')) fs.rmSync(path.join(socketDir, f));
          for (let i = 0; i < 200; i++) {
            const f = path.join(mnt, `fill-${i}`);
            try {
              fs.writeFileSync(f, '');
            } catch (err) {
              if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
              throw err;
            }
            fillers.push(f);
          }
        },
        () => {
          for (const f of fillers.splice(0)) fs.rmSync(f);
        },
        /socket directory is unusable \(ENOSPC\)/,
      );
    } finally {
      execFileSync('umount', [mnt]);
    }
  });
});

describe('default locations', () => {
  test('as root the default socket directory is under /run, apart from the temp dir where request bodies spool', (t) => {
    const c = loadConfig({
      text: `php:\n  docroot: ${JSON.stringify(docroot())}\n`,
      file: path.join(tmp, 'defaults.yaml'),
      baseDir: tmp,
      env: {},
      overrides: {},
    });
    const dir = c.php.socket_dir;
    const spool = os.tmpdir();
    t.diagnostic(`socket_dir ${dir}; bodies spool to ${spool}`);
    assert.ok(!dir.startsWith(spool + path.sep), 'the socket directory is not in the temp dir');
    if (process.geteuid?.() === 0) {
      assert.match(dir, /^\/run\/phpgate\/[^/]+$/, 'root: under /run/phpgate, one directory per configuration file');
      // On Debian /run is a tmpfs, /tmp usually the root filesystem: a body filling /tmp cannot starve the sockets.
      if (fs.existsSync('/run') && fs.statSync('/run').dev !== fs.statSync(spool).dev) {
        assert.notEqual(fs.statSync('/run').dev, fs.statSync(spool).dev);
      } else t.diagnostic('/run and the temp dir are one filesystem on this machine (a container): only the paths differ');
    }
    const other = loadConfig({
      text: `php:\n  docroot: ${JSON.stringify(docroot())}\n`,
      file: path.join(tmp, 'other.yaml'),
      baseDir: tmp,
      env: {},
      overrides: {},
    });
    assert.notEqual(other.php.socket_dir, dir, 'two configuration files, two socket directories');
  });
});
