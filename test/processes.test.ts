/**
 * server.processes: the real CLI with two gateway processes on one port: both serve, the PHP workers are shared
 * out, a purge reaches every process's cache, a killed process is replaced, reload and stop reach them all.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { configForProcess } from '../gateway/processes.js';
import { loadConfig } from '../config/load.js';
import { PHP_USER_ENV, request } from './support/gateway.js';
import { eventually, eventuallyAsync, freePort, running } from './support/proc.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-procs-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Line {
  pid: number;
  msg?: string;
  log?: string;
  method?: string;
  uri?: string;
  cache?: string;
  process?: number;
}

describe('server.processes: 2', () => {
  let proc: ReturnType<typeof spawn>;
  let output = '';
  let base = '';
  let admin = '';
  const lines = (): Line[] =>
    output
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Line);
  const access = (uri: string, method = 'GET'): Line[] => lines().filter((l) => l.log === 'access' && l.uri === uri && l.method === method);

  before(async () => {
    const docroot = path.join(tmp, 'site');
    fs.mkdirSync(docroot);
    fs.writeFileSync(path.join(docroot, 'page.php'), '<?php echo "page from PHP ", getmypid();');
    const port = await freePort();
    const adminPort = await freePort();
    const file = path.join(tmp, 'gw.yaml');
    fs.writeFileSync(
      file,
      `server:\n  host: 127.0.0.1\n  port: ${port}\n  processes: 2\nadmin:\n  port: ${adminPort}\nphp:\n  docroot: ${JSON.stringify(docroot)}\n  worker_count: 3\n  socket_dir: ${JSON.stringify(path.join(tmp, 'sock'))}\ncache:\n  rules:\n    - { pattern: "/page.php", ttl_s: 600 }\n`,
    );
    proc = spawn(process.execPath, ['--import', 'tsx', 'gateway/cli.ts', '--config', file], {
      cwd: root,
      env: { ...process.env, ...PHP_USER_ENV },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc.stdout!.on('data', (c: Buffer) => (output += c.toString()));
    proc.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    await eventually('both processes listening', () => output.includes('phpgate running as several processes') || proc.exitCode !== null, 30_000);
    assert.equal(proc.exitCode, null, output);
    base = `http://127.0.0.1:${port}`;
    admin = `http://127.0.0.1:${adminPort}`;
  });
  after(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    }
  });

  /** Fresh connections, one request each: the primary hands connections out in turn. */
  async function spread(uri: string, n: number): Promise<void> {
    for (let i = 0; i < n; i++) assert.equal((await request(base, uri)).status, 200);
  }

  test('both processes serve requests, each with its share of the PHP workers', async () => {
    await spread('/page.php?t=spread', 10);
    await eventually('access lines', () => access('/page.php?t=spread').length === 10);
    const pids = new Set(access('/page.php?t=spread').map((l) => l.pid));
    assert.equal(pids.size, 2, 'two gateway processes answered');
    const status = JSON.parse((await request(admin, '/status.json')).text) as { pools: Array<{ workers: unknown[] }> };
    assert.equal(status.pools[0]!.workers.length, 2, 'process 0 runs 2 of the 3 workers');
    const ready = lines().filter((l) => l.msg === 'pool ready');
    assert.equal(ready.length, 2);
  });

  test("a purge through the admin listener empties every process's cache", async () => {
    await spread('/page.php?t=purge', 6);
    await eventually('filled', () => access('/page.php?t=purge').length === 6);
    const before = access('/page.php?t=purge');
    for (const pid of new Set(before.map((l) => l.pid))) {
      assert.ok(
        before.some((l) => l.pid === pid && l.cache === 'HIT'),
        `process ${pid} has the page cached`,
      );
    }
    const r = await request(admin, '/cache/purge?pattern=/page.php', { method: 'POST' });
    assert.equal(r.status, 200, r.text);
    // The purge reaches the other process through the primary, later. A HEAD is answered from the cache but never
    // fills it (a HEAD miss stores nothing): HEADs until every process has answered one with a MISS.
    const processes = new Set(before.map((l) => l.pid));
    await eventuallyAsync(
      'every process dropped its entry (the relay through the primary)',
      async () => {
        assert.equal((await request(base, '/page.php?t=purge', { method: 'HEAD' })).status, 200);
        const missed = new Set(
          access('/page.php?t=purge', 'HEAD')
            .filter((l) => l.cache === 'MISS')
            .map((l) => l.pid),
        );
        return [...processes].every((pid) => missed.has(pid));
      },
      10_000,
    );
    await spread('/page.php?t=purge', 4);
    await eventually('served again', () => access('/page.php?t=purge').length === 10);
    const after = access('/page.php?t=purge').slice(6);
    for (const pid of new Set(after.map((l) => l.pid))) {
      assert.equal(after.find((l) => l.pid === pid)!.cache, 'MISS', `process ${pid} dropped its entry`);
    }
    assert.equal(new Set(after.map((l) => l.pid)).size, 2);
  });

  test('a gateway process that dies is replaced, and the port keeps answering', async () => {
    await spread('/page.php?t=victim', 1);
    await eventually('access line', () => access('/page.php?t=victim').length === 1);
    const victim = access('/page.php?t=victim')[0]!.pid;
    const replaced = (): number => lines().filter((l) => l.msg === 'gateway process replaced').length;
    const replacedBefore = replaced();
    process.kill(victim, 'SIGKILL');
    await eventually('replacement', () => replaced() === replacedBefore + 1, 20_000);
    await spread('/page.php?t=after-kill', 6);
    await eventually('lines', () => access('/page.php?t=after-kill').length === 6);
    const pids = new Set(access('/page.php?t=after-kill').map((l) => l.pid));
    assert.equal(pids.size, 2);
    assert.ok(!pids.has(victim));
  });

  test('SIGHUP to the primary reloads every process', async () => {
    const reloadsBefore = lines().filter((l) => l.msg?.startsWith('reloaded')).length;
    proc.kill('SIGHUP');
    await eventually('two reloads', () => lines().filter((l) => l.msg?.startsWith('reloaded')).length === reloadsBefore + 2, 20_000);
  });

  test('SIGTERM stops every process and PHP worker, exit 0', async () => {
    const status = JSON.parse((await request(admin, '/status.json')).text) as { pools: Array<{ masterPid: number }> };
    const master = status.pools[0]!.masterPid;
    await spread('/page.php?t=stop', 4);
    await eventually('access lines', () => access('/page.php?t=stop').length === 4);
    const gateways = [...new Set(access('/page.php?t=stop').map((l) => l.pid))];
    assert.equal(gateways.length, 2, 'both gateway processes answered');
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    proc.kill('SIGTERM');
    assert.equal(await exited, 0);
    for (const pid of [master, ...gateways]) assert.equal(running(pid), false, `pid ${pid} is gone`);
    assert.equal(fs.existsSync(path.join(tmp, 'sock', 'phpgate.pid')), false);
  });
});

describe('configForProcess', () => {
  test('workers are shared out (at least one each), sockets apart, the admin listener in process 0 only', () => {
    fs.mkdirSync(path.join(tmp, 'public'), { recursive: true });
    const c = loadConfig({
      text: 'php:\n  worker_count: 5\npools:\n  - { name: heavy, patterns: ["/export/*"], worker_count: 1 }\n',
      file: 'gw.yaml',
      baseDir: tmp,
      env: {},
    });
    const parts = [0, 1, 2].map((i) => configForProcess(c, i, 3));
    assert.deepEqual(
      parts.map((p) => p.php.worker_count),
      [2, 2, 1],
    );
    assert.deepEqual(
      parts.map((p) => p.pools[0]!.worker_count),
      [1, 1, 1],
    );
    assert.equal(new Set(parts.map((p) => p.php.socket_dir)).size, 3);
    assert.deepEqual(
      parts.map((p) => p.admin.port),
      [c.admin.port, 0, 0],
    );
  });
});
