/**
 * Production operations: PHP never runs as root unless told to (php.user / php.group, per pool), and a gateway
 * killed with SIGKILL leaves no php-cgi behind (php/group-watcher.ts). Real gateways, real php-cgi; the user
 * switching needs root (as CI runs), so those tests skip with the reason otherwise.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { findUser } from '../config/accounts.js';
import type { ConfigError } from '../config/errors.js';
import { loadConfig } from '../config/load.js';
import { Gateway } from '../gateway/server.js';
import { request } from './support/gateway.js';
import { eventually, eventuallyAsync, freePort, running } from './support/proc.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = [process.execPath, '--import', import.meta.resolve('tsx'), path.join(root, 'gateway/cli.ts')];
const isRoot = process.geteuid?.() === 0;
const wwwData = findUser('www-data');
const nobody = findUser('nobody');
const rootOnly = isRoot ? (wwwData === null ? 'needs a www-data user (Debian has one)' : false) : 'switching users needs root (CI runs as root)';

// A docroot every user can read: the tests' usual mkdtemp dirs are 0700, which is what the refusal test needs.
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-user-'));
fs.chmodSync(tmp, 0o755);
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const site = path.join(tmp, 'site');
fs.mkdirSync(path.join(site, 'other'), { recursive: true });
fs.chmodSync(site, 0o755);
fs.chmodSync(path.join(site, 'other'), 0o755);
// PHP's own view of who it is, from the kernel (no posix extension needed), and the owner of a file it creates.
const WHO = `<?php
$s = file_get_contents('/proc/self/status');
preg_match('/^Uid:\\s+\\d+\\s+(\\d+)/m', $s, $u);
preg_match('/^Gid:\\s+\\d+\\s+(\\d+)/m', $s, $g);
$f = tempnam(sys_get_temp_dir(), 'pgu');
$owner = fileowner($f);
unlink($f);
header('Content-Type: application/json');
echo json_encode(['euid' => (int) $u[1], 'egid' => (int) $g[1], 'fileOwner' => $owner, 'pid' => getmypid()]);
`;
for (const dir of [site, path.join(site, 'other')]) fs.writeFileSync(path.join(dir, 'who.php'), WHO, { mode: 0o644 });
fs.writeFileSync(path.join(site, 'slow.php'), '<?php sleep(20); echo "late";', { mode: 0o644 });

interface Who {
  euid: number;
  egid: number;
  fileOwner: number;
  pid: number;
}

/** The effective uid of a process, from /proc/PID/status. */
function euidOf(pid: number): number {
  const m = /^Uid:\s+\d+\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]);
}

/** The direct children of a process (all its threads'), from /proc. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out; // gone
  }
  for (const t of tasks) {
    try {
      out.push(...fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

function commandOf(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

/** A gateway in this process, configured as written (no `php.user: root` added, unlike support/gateway.ts). */
async function startAsWritten(yaml: string): Promise<{ gateway: Gateway; base: string; logs: string[]; stop(): Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(tmp, 'gw-'));
  fs.chmodSync(dir, 0o755);
  const loaded = loadConfig({ text: yaml, file: 'gateway.yaml', baseDir: dir, env: { PATH: process.env['PATH'] } });
  const config = {
    ...loaded,
    server: { ...loaded.server, host: '127.0.0.1', port: 0, timeouts: { ...loaded.server.timeouts, lame_duck_ms: 0 } },
    admin: { ...loaded.admin, port: 0 },
    php: { ...loaded.php, socket_dir: path.join(dir, 'sock') },
  };
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString('utf8'));
      cb();
    },
  });
  const gateway = new Gateway(config, pino({ level: 'debug' }, sink));
  await gateway.start();
  return { gateway, base: `http://127.0.0.1:${gateway.address().port}`, logs, stop: () => gateway.stop() };
}

async function who(base: string, target = '/who.php'): Promise<Who> {
  const r = await request(base, target);
  assert.equal(r.status, 200, r.text);
  return JSON.parse(r.text) as Who;
}

describe('php.user: PHP never runs as root unless told to', { skip: rootOnly }, () => {
  test('started as root with php.user unset, php-cgi (master, children) and PHP itself run as www-data, still supervised', async () => {
    const g = await startAsWritten(`php: { docroot: ${JSON.stringify(site)}, worker_count: 2, timeout_ms: 1000 }\n`);
    try {
      const me = await who(g.base);
      assert.equal(me.euid, wwwData!.uid, 'PHP reads its own euid from /proc/self/status');
      assert.equal(me.egid, wwwData!.gid, "and www-data's primary group");
      assert.equal(me.fileOwner, wwwData!.uid, 'a file PHP creates belongs to www-data');
      const pool = g.gateway.pools.get('default')!;
      const master = pool.masterPid!;
      assert.equal(euidOf(master), wwwData!.uid, 'the master');
      for (const w of pool.stats().workers) assert.equal(euidOf(w.pid), wwwData!.uid, `child ${w.pid}`);
      // Its socket lies in a directory of its own that no other user can enter; the socket directory only lets
      // users through, and holds no socket itself.
      const sock = fs.statSync(path.dirname(pool.socketPath()!));
      assert.equal(sock.uid, wwwData!.uid);
      assert.equal(sock.mode & 0o777, 0o700);
      const socketDir = path.dirname(path.dirname(pool.socketPath()!));
      assert.equal(fs.statSync(socketDir).mode & 0o777, 0o711);
      assert.deepEqual(
        fs.readdirSync(socketDir).filter((n) => n.endsWith('.sock')),
        [],
      );
      // Supervision reads and signals www-data's processes: private memory from /proc, the kill past timeout_ms.
      await eventually('memory sampled', () => pool.stats().workers.every((w) => w.privateBytes > 0), 5_000);
      const before = pool.stats().workers.map((w) => w.pid);
      assert.equal((await request(g.base, '/slow.php')).status, 504);
      await eventually('the timed-out child killed', () => before.some((p) => !running(p)), 5_000);
    } finally {
      await g.stop();
    }
  });

  test('each pool runs as its own user (pools[].user), the others as php.user', { skip: nobody === null && 'needs a nobody user' }, async () => {
    const g = await startAsWritten(
      `php: { docroot: ${JSON.stringify(site)}, worker_count: 1 }\npools:\n  - { name: other, patterns: ["/other/*"], worker_count: 1, user: nobody }\n`,
    );
    try {
      const other = await who(g.base, '/other/who.php');
      assert.equal(other.euid, nobody!.uid);
      assert.equal(other.egid, nobody!.gid, "the pool user's own primary group");
      assert.equal((await who(g.base)).euid, wwwData!.uid);
    } finally {
      await g.stop();
    }
  });

  test("a pool's socket swapped for another pool's (PHP owns its socket directory) never runs its requests as that pool's user", async () => {
    // PHP of the default pool (www-data) can replace its own socket with a link to the root pool's; the test does it
    // as PHP could, then kills the default pool's child so its worker connects again, through the link.
    const g = await startAsWritten(
      `php: { docroot: ${JSON.stringify(site)}, worker_count: 1 }\npools:\n  - { name: other, patterns: ["/other/*"], worker_count: 1, user: root }\n`,
    );
    try {
      const before = await who(g.base);
      assert.equal(before.euid, wwwData!.uid);
      const otherChild = await who(g.base, '/other/who.php');
      assert.equal(otherChild.euid, 0);
      const own = g.gateway.pools.get('default')!.socketPath()!;
      const root = g.gateway.pools.get('other')!.socketPath()!;
      assert.ok(fs.existsSync(own) && fs.existsSync(root), `${own}, ${root}`);
      fs.rmSync(own);
      fs.symlinkSync(root, own);
      process.kill(before.pid, 'SIGKILL');
      // The other pool's only child is bound to its own worker: killed too, its master's next child accepts the
      // connection that came through the link first (what recycling there would do in time).
      await new Promise((r) => setTimeout(r, 300));
      process.kill(otherChild.pid, 'SIGKILL');
      const seen: number[] = [];
      for (const until = Date.now() + 4000; Date.now() < until;) {
        const r = await request(g.base, '/who.php');
        if (r.status === 200)
          seen.push((JSON.parse(r.text) as Who).euid); // other answers: while the master is replaced
        else await new Promise((res) => setTimeout(res, 100));
      }
      assert.ok(!seen.includes(0), `the default pool's requests ran as root: ${seen.join(' ')}`);
      assert.ok(
        g.logs.some((l) => l.includes("the pool's socket led to a process that is not its php-cgi child")),
        'said loudly',
      );
      await eventuallyAsync('the default pool serves again as www-data', async () => (await who(g.base)).euid === wwwData!.uid, 10_000);
    } finally {
      await g.stop();
    }
  });

  test('php.user: root, written out, runs PHP as root', async () => {
    const g = await startAsWritten(`php: { docroot: ${JSON.stringify(site)}, worker_count: 1, user: root }\n`);
    try {
      assert.equal((await who(g.base)).euid, 0);
    } finally {
      await g.stop();
    }
  });

  test("a docroot that PHP's user cannot read is refused with one line naming the directory, the user and the fix", async () => {
    const closed = fs.mkdtempSync(path.join(tmp, 'closed-')); // 0700, as /root is
    fs.mkdirSync(path.join(closed, 'site'));
    await assert.rejects(startAsWritten(`php: { docroot: ${JSON.stringify(path.join(closed, 'site'))}, worker_count: 1 }\n`), (err: Error) => {
      assert.equal(
        err.message,
        `php.docroot ${path.join(closed, 'site')}: ${closed} (mode 0700, owner root (uid 0)) does not let www-data (uid ${wwwData!.uid}) enter it, and PHP runs as www-data (uid ${wwwData!.uid}): let that user read it (or move the site), or set php.user`,
      );
      return true;
    });
    // phpgate check says the same, and starts nothing.
    const file = path.join(closed, 'gateway.yaml');
    fs.writeFileSync(file, 'php: { docroot: ./site }\n');
    const r = spawnSync(cli[0]!, [...cli.slice(1), 'check', '--config', file], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 2, r.stdout);
    assert.match(r.stderr, /: php: php\.docroot .* does not let www-data \(uid \d+\) enter it/);
  });

  test('the bundled example site (no configuration) falls back to the gateway user, saying why; a configured site does not', async () => {
    const closed = fs.mkdtempSync(path.join(tmp, 'closed-')); // a socket directory PHP's user cannot reach
    const port = await freePort();
    let output = '';
    const proc = spawn(cli[0]!, [...cli.slice(1), '--port', String(port), '--host', '127.0.0.1', '--workers', '1'], {
      cwd: tmp,
      env: { ...process.env, PHPGATE_SOCKET_DIR: path.join(closed, 'sock'), PHPGATE_ADMIN_PORT: '0', PHPGATE_PHP_USER: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc.stdout.on('data', (c: Buffer) => (output += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise((r) => proc.once('exit', r));
    try {
      await eventually('the example site listens', () => output.includes('phpgate listening') || proc.exitCode !== null, 20_000);
      assert.match(output, /PHP runs as root \(uid 0\) for the bundled example site only, because php\.socket_dir .* does not let www-data/);
      assert.equal((await request(`http://127.0.0.1:${port}`, '/')).status, 200);
    } finally {
      proc.kill('SIGTERM');
      await exited;
    }
    const file = path.join(tmp, 'configured.yaml');
    fs.writeFileSync(file, `php: { docroot: ${JSON.stringify(site)}, socket_dir: ${JSON.stringify(path.join(closed, 'sock2'))} }\n`);
    const r = spawnSync(cli[0]!, [...cli.slice(1), '--config', file], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, PHPGATE_PHP_USER: '' },
    });
    assert.equal(r.status, 2);
    assert.match(
      r.stderr.trim(),
      /^phpgate: php\.socket_dir .* does not let www-data \(uid \d+\) enter it, and PHP runs as www-data \(uid \d+\): choose another php\.socket_dir$/,
    );
  });

  test(
    'a gateway that is not root cannot switch users: refused at start, naming the setting',
    { skip: nobody === null && 'needs a nobody user' },
    () => {
      // `phpgate check` run as www-data (node and the repository are world-readable here) with php.user: nobody.
      const file = path.join(tmp, 'as-www-data.yaml');
      fs.writeFileSync(file, `php: { docroot: ${JSON.stringify(site)}, user: nobody }\n`, { mode: 0o644 });
      const r = spawnSync(cli[0]!, [...cli.slice(1), 'check', '--config', file], {
        encoding: 'utf8',
        timeout: 60_000,
        uid: wwwData!.uid,
        gid: wwwData!.gid,
        cwd: tmp,
        env: { PATH: process.env['PATH'], HOME: tmp },
      });
      if (r.status !== 2 && /EACCES|permission denied/i.test(r.stderr)) return; // the checkout is not readable by www-data here
      assert.equal(r.status, 2, r.stderr);
      assert.match(
        r.stderr,
        /php: php\.user "nobody": only root can run PHP as another user or group, and phpgate runs as www-data \(uid \d+\); unset it, or start phpgate as root/,
      );
    },
  );
});

describe('php.user in the file', () => {
  test('an unknown user or group is a configuration error at its line:col, and phpgate check reports it', () => {
    const text = 'php:\n  user: no-such-user\npools:\n  - name: a\n    patterns: ["/a/*"]\n    group: no-such-group\n';
    assert.throws(
      () => loadConfig({ text, file: 'gw.yaml', baseDir: tmp, env: {}, overrides: { docroot: site } }),
      (err: ConfigError) => {
        assert.match(err.message, /gw\.yaml:2:9: php\.user: no user "no-such-user" in \/etc\/passwd/);
        assert.match(err.message, /gw\.yaml:6:12: pools\[0\]\.group: no group "no-such-group" in \/etc\/group/);
        return true;
      },
    );
    const file = path.join(tmp, 'unknown-user.yaml');
    fs.writeFileSync(file, `php:\n  docroot: ${JSON.stringify(site)}\n  user: no-such-user\n`);
    const r = spawnSync(cli[0]!, [...cli.slice(1), 'check', '--config', file], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown-user\.yaml:3:9: php\.user: no user "no-such-user" in \/etc\/passwd/);
  });

  test('a numeric user needs a group when /etc/passwd does not know it', () => {
    assert.throws(
      () => loadConfig({ text: 'php:\n  user: 4000000\n', file: 'gw.yaml', baseDir: tmp, env: {}, overrides: { docroot: site } }),
      /gw\.yaml:2:9: php\.user 4000000 is not in \/etc\/passwd, so it has no primary group: set php\.group too/,
    );
    const c = loadConfig({ text: 'php:\n  user: 4000000\n  group: 4000000\n', file: 'gw.yaml', baseDir: tmp, env: {}, overrides: { docroot: site } });
    assert.equal(c.php.user, '4000000');
  });
});

// ---------------------------------------------------------------------------------------------------------------
// kill -9 of a gateway: its php-cgi masters and their children end by themselves (php/group-watcher.ts).

interface Spawned {
  proc: ChildProcess;
  output(): string;
  exited: Promise<unknown>;
}

function spawnGateway(config: string, detached = false): Spawned {
  let output = '';
  // PHP as the default user (www-data, run as root): the docroot and the socket directory let anyone through.
  const proc = spawn(cli[0]!, [...cli.slice(1), '--config', config], { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'], detached });
  proc.stdout.on('data', (c: Buffer) => (output += c.toString()));
  proc.stderr.on('data', (c: Buffer) => (output += c.toString()));
  return { proc, output: () => output, exited: new Promise((r) => proc.once('exit', r)) };
}

/** The php-cgi masters started by these gateway processes, and every child of those masters. */
function phpProcesses(gatewayPids: number[]): { masters: number[]; all: number[] } {
  const masters = gatewayPids.flatMap(childrenOf).filter((p) => commandOf(p).includes('php-cgi'));
  return { masters, all: [...masters, ...masters.flatMap(childrenOf)] };
}

async function assertAllGoneWithin2s(pids: number[]): Promise<void> {
  // The requirement is a bound: every php-cgi gone within 2 s of the gateway's SIGKILL (zombies count as gone).
  await eventually(`php-cgi ${pids.join(', ')} gone`, () => pids.every((p) => !running(p)), 2_000);
}

describe('kill -9 of a gateway leaves no php-cgi', { skip: isRoot && wwwData === null && 'needs a www-data user (PHP runs as it)' }, () => {
  test('one process: masters and children (old and new pools after a reload) end within 2 s', async () => {
    const port = await freePort();
    const file = path.join(tmp, 'kill9.yaml');
    fs.writeFileSync(
      file,
      `server: { host: 127.0.0.1, port: ${port} }\nadmin: { port: 0 }\nphp: { docroot: ${JSON.stringify(site)}, worker_count: 2, socket_dir: ${JSON.stringify(path.join(tmp, 'sock-kill9'))} }\npools:\n  - { name: other, patterns: ["/other/*"], worker_count: 1 }\n`,
    );
    const g = spawnGateway(file);
    try {
      await eventually('the gateway listens', () => g.output().includes('phpgate listening') || g.proc.exitCode !== null, 20_000);
      assert.equal(g.proc.exitCode, null, g.output());
      const before = phpProcesses([g.proc.pid!]);
      assert.equal(before.masters.length, 2, 'a master per pool');
      // A reload starts new pools beside the old ones; the new ones must end with the gateway too.
      g.proc.kill('SIGHUP');
      await eventually('the reload', () => g.output().includes('previous pools stopped after reload'), 20_000);
      const { masters, all } = phpProcesses([g.proc.pid!]);
      assert.equal(masters.length, 2);
      assert.ok(
        masters.every((m) => !before.masters.includes(m)),
        'new masters after the reload',
      );
      assert.ok(all.length >= 5, `masters and children: ${all.join(', ')}`);
      const watchers = childrenOf(g.proc.pid!).filter((p) => commandOf(p).startsWith('/bin/sh -c'));
      g.proc.kill('SIGKILL');
      await g.exited;
      await assertAllGoneWithin2s(all);
      await eventually('the watcher ended too', () => watchers.every((p) => !running(p)), 2_000);
    } finally {
      g.proc.kill('SIGKILL');
    }
  });

  test("a SIGKILL to the gateway's whole process group (a harness stopping what it started) leaves no php-cgi either", async () => {
    const port = await freePort();
    const file = path.join(tmp, 'kill9-group.yaml');
    fs.writeFileSync(
      file,
      `server: { host: 127.0.0.1, port: ${port} }\nadmin: { port: 0 }\nphp: { docroot: ${JSON.stringify(site)}, worker_count: 2, socket_dir: ${JSON.stringify(path.join(tmp, 'sock-kill9g'))} }\n`,
    );
    const g = spawnGateway(file, true); // the leader of its own process group
    try {
      await eventually('the gateway listens', () => g.output().includes('phpgate listening') || g.proc.exitCode !== null, 20_000);
      assert.equal(g.proc.exitCode, null, g.output());
      const { all } = phpProcesses([g.proc.pid!]);
      assert.ok(all.length >= 3, `a master and its children: ${all.join(', ')}`);
      process.kill(-g.proc.pid!, 'SIGKILL');
      await g.exited;
      await assertAllGoneWithin2s(all);
    } finally {
      g.proc.kill('SIGKILL');
    }
  });

  test('server.processes: 2 — the primary killed, its gateway processes and every php-cgi end within 2 s', async () => {
    const port = await freePort();
    const file = path.join(tmp, 'kill9-cluster.yaml');
    fs.writeFileSync(
      file,
      `server: { host: 127.0.0.1, port: ${port}, processes: 2 }\nadmin: { port: 0 }\nphp: { docroot: ${JSON.stringify(site)}, worker_count: 2, socket_dir: ${JSON.stringify(path.join(tmp, 'sock-kill9c'))} }\n`,
    );
    const g = spawnGateway(file);
    try {
      await eventually(
        'both processes listen',
        () => g.output().includes('phpgate running as several processes') || g.proc.exitCode !== null,
        30_000,
      );
      assert.equal(g.proc.exitCode, null, g.output());
      const workers = childrenOf(g.proc.pid!).filter((p) => commandOf(p).includes('cli.ts'));
      assert.equal(workers.length, 2, 'two gateway processes');
      const { masters, all } = phpProcesses(workers);
      assert.equal(masters.length, 2, 'a master in each');
      g.proc.kill('SIGKILL');
      await g.exited;
      await assertAllGoneWithin2s([...workers, ...all]);
    } finally {
      g.proc.kill('SIGKILL');
    }
  });

  test('killed together with its watcher, a www-data master is stopped by the next gateway on that socket dir', async () => {
    const port = await freePort();
    const socketDir = path.join(tmp, 'sock-stale');
    const file = path.join(tmp, 'stale.yaml');
    fs.writeFileSync(
      file,
      `server: { host: 127.0.0.1, port: ${port} }\nadmin: { port: 0 }\nphp: { docroot: ${JSON.stringify(site)}, worker_count: 1, socket_dir: ${JSON.stringify(socketDir)} }\n`,
    );
    const first = spawnGateway(file);
    let second: Spawned | null = null;
    try {
      await eventually('the gateway listens', () => first.output().includes('phpgate listening') || first.proc.exitCode !== null, 20_000);
      const { masters } = phpProcesses([first.proc.pid!]);
      const watcher = childrenOf(first.proc.pid!).find((p) => commandOf(p).startsWith('/bin/sh -c'))!;
      // Stopped first and killed after, as when the OOM killer takes the whole service: the watcher cannot act.
      process.kill(watcher, 'SIGSTOP');
      first.proc.kill('SIGKILL');
      await first.exited;
      process.kill(watcher, 'SIGKILL');
      assert.ok(masters.every(running), 'left behind');
      second = spawnGateway(file);
      await eventually('the second listens', () => second!.output().includes('phpgate listening') || second!.proc.exitCode !== null, 20_000);
      await eventually('the stale master stopped', () => masters.every((m) => !running(m)), 5_000);
      assert.match(second.output(), /left behind by a gateway that is gone/);
      const userDir = isRoot ? path.join(socketDir, `u${wwwData!.uid}`) : socketDir;
      const sockets = fs.readdirSync(userDir).filter((n) => n.endsWith('.sock'));
      assert.deepEqual(sockets, [`default-${second.proc.pid}-1.sock`], "the dead gateway's socket removed");
    } finally {
      first.proc.kill('SIGKILL');
      second?.proc.kill('SIGTERM');
      await second?.exited;
    }
  });

  test('a normal stop leaves nothing either: the watcher is told first and exits without signalling', async () => {
    const port = await freePort();
    const file = path.join(tmp, 'stop.yaml');
    fs.writeFileSync(
      file,
      `server: { host: 127.0.0.1, port: ${port} }\nadmin: { port: 0 }\nphp: { docroot: ${JSON.stringify(site)}, worker_count: 1, socket_dir: ${JSON.stringify(path.join(tmp, 'sock-stop'))} }\n`,
    );
    const g = spawnGateway(file);
    try {
      await eventually('the gateway listens', () => g.output().includes('phpgate listening') || g.proc.exitCode !== null, 20_000);
      const { all } = phpProcesses([g.proc.pid!]);
      const watchers = childrenOf(g.proc.pid!).filter((p) => commandOf(p).startsWith('/bin/sh -c'));
      assert.equal(watchers.length, 1, 'one watcher per gateway process');
      g.proc.kill('SIGTERM');
      await g.exited;
      assert.equal(g.proc.exitCode, 0, g.output());
      await eventually('php-cgi and the watcher gone', () => [...all, ...watchers].every((p) => !running(p)), 5_000);
    } finally {
      g.proc.kill('SIGKILL');
    }
  });
});
