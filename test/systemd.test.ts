/**
 * Running under systemd, without a running systemd: the readiness protocol (Type=notify) as the gateway speaks it
 * to a NOTIFY_SOCKET this test listens on (a unix datagram socket, read by php-cli's sockets extension with the
 * sender's credentials, as systemd reads it), and the unit in deploy/ as `systemd-analyze verify` sees it.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PHP_USER_ENV, request } from './support/gateway.js';
import { eventually, freePort } from './support/proc.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = [process.execPath, '--import', import.meta.resolve('tsx'), path.join(root, 'gateway/cli.ts')];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-systemd-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Undefined when `tool` (from Debian's systemd package) runs; locally, why not (skip); in CI, an error. */
function systemdToolMissing(tool: string): string | undefined {
  const r = spawnSync(tool, ['--version'], { encoding: 'utf8' });
  if (r.status === 0) return undefined;
  const reason = `${tool} is not installed (${r.error?.message ?? r.stderr.trim()})`;
  if (process.env['CI']) throw new Error(`${reason}: CI installs it (apt-get install -y systemd)`);
  return reason;
}

/** Prints every datagram as a JSON line with the sender's pid (SCM_CREDENTIALS), as systemd attributes them. */
const RECEIVER = `<?php
$s = socket_create(AF_UNIX, SOCK_DGRAM, 0);
if (!socket_bind($s, $argv[1])) exit(1);
socket_set_option($s, SOL_SOCKET, SO_PASSCRED, 1);
echo "bound\\n";
for (;;) {
  $m = ['name' => [], 'buffer_size' => 4096, 'controllen' => socket_cmsg_space(SOL_SOCKET, SCM_CREDENTIALS)];
  if (socket_recvmsg($s, $m, 0) === false) continue;
  $pid = null;
  foreach ($m['control'] ?? [] as $c) if ($c['level'] === SOL_SOCKET && $c['type'] === SCM_CREDENTIALS) $pid = $c['data']['pid'];
  echo json_encode(['pid' => $pid, 'text' => $m['iov'][0] ?? '']), "\\n";
}
`;

interface Notification {
  readonly pid: number | null;
  readonly fields: Map<string, string>;
  /** What the gateway's log said when the message arrived. */
  readonly logThen: string;
}

/** CAP_SYS_ADMIN lets systemd-notify send in its parent's name (bit 21 of the effective set). */
function canSpeakForParent(): boolean {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m !== null && (BigInt(`0x${m[1]!}`) & (1n << 21n)) !== 0n;
}

/** A NOTIFY_SOCKET of the test's own: the notifications it got, the gateway's log as each arrived. */
class NotifySocket {
  readonly path: string;
  readonly got: Notification[] = [];
  /** The gateway's output so far (what `logThen` records). */
  log = '';
  readonly #receiver: ChildProcess;
  #pending = '';
  #stderr = '';

  constructor(dir: string) {
    this.path = path.join(dir, 'notify.sock');
    fs.writeFileSync(path.join(dir, 'receiver.php'), RECEIVER);
    this.#receiver = spawn('php', [path.join(dir, 'receiver.php'), this.path], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#receiver.stderr!.on('data', (c: Buffer) => (this.#stderr += c.toString()));
    this.#receiver.stdout!.on('data', (c: Buffer) => this.#read(c.toString()));
  }

  async bound(): Promise<void> {
    await eventually('the receiver binds its socket', () => fs.existsSync(this.path) || this.#receiver.exitCode !== null, 10_000);
    assert.equal(this.#receiver.exitCode, null, `the receiver could not bind: ${this.#stderr}`);
  }

  /** The first field of each message: READY, RELOADING, STOPPING. */
  kinds(): string[] {
    return this.got.map((n) => [...n.fields.keys()][0]!);
  }

  /** Starts the CLI with NOTIFY_SOCKET set, its output kept in `log`. */
  startGateway(config: string): ChildProcess {
    const proc = spawn(cli[0]!, [...cli.slice(1), '--config', config], {
      cwd: path.dirname(config),
      env: { ...process.env, ...PHP_USER_ENV, NOTIFY_SOCKET: this.path },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc.stdout.on('data', (c: Buffer) => (this.log += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (this.log += c.toString()));
    return proc;
  }

  async close(): Promise<void> {
    this.#receiver.kill('SIGTERM');
    if (this.#receiver.exitCode === null) await new Promise((r) => this.#receiver.once('exit', r));
  }

  #read(text: string): void {
    this.#pending += text;
    let nl: number;
    while ((nl = this.#pending.indexOf('\n')) >= 0) {
      const line = this.#pending.slice(0, nl);
      this.#pending = this.#pending.slice(nl + 1);
      if (line === 'bound') continue;
      const m = JSON.parse(line) as { pid: number | null; text: string };
      // systemd-notify's own barrier (it waits until the manager has read the message) is not the gateway's word.
      if (m.text === 'BARRIER=1') continue;
      const fields = new Map(m.text.split('\n').map((f) => [f.slice(0, f.indexOf('=')), f.slice(f.indexOf('=') + 1)] as const));
      this.got.push({ pid: m.pid, fields, logThen: this.log });
    }
  }
}

async function stopped(proc: ChildProcess | null): Promise<void> {
  if (proc === null || proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill('SIGTERM');
  await new Promise((r) => proc.once('exit', r));
}

describe('systemd readiness (Type=notify through NOTIFY_SOCKET)', { skip: systemdToolMissing('systemd-notify') }, () => {
  test(
    'READY=1 once serving, RELOADING=1 then READY=1 around SIGHUP (a refused reload too), STOPPING=1 on SIGTERM',
    { timeout: 60_000 },
    async () => {
      const dir = fs.mkdtempSync(path.join(tmp, 'notify-'));
      fs.mkdirSync(path.join(dir, 'www'));
      fs.writeFileSync(path.join(dir, 'www', 'index.php'), '<?php echo "v1";');
      const port = await freePort();
      const config = path.join(dir, 'gateway.yaml');
      const yaml = `server: { host: 127.0.0.1, port: ${port}, timeouts: { lame_duck_ms: 300 } }\nadmin: { port: 0 }\nphp: { docroot: ./www, worker_count: 2, socket_dir: ./sock }\n`;
      fs.writeFileSync(config, yaml);
      const notify = new NotifySocket(dir);
      const { got } = notify;
      let gateway: ChildProcess | null = null;
      try {
        await notify.bound();
        gateway = notify.startGateway(config);
        await eventually('READY=1', () => got.length >= 1, 30_000);
        assert.deepEqual(notify.kinds(), ['READY'], notify.log);
        const ready = got[0]!;
        // Ordered by what the gateway does, not by when its log line crosses another pipe than the datagram: the
        // STATUS is only written once listening, and the pools serve at once.
        assert.equal(ready.fields.get('STATUS'), `listening on 127.0.0.1:${port}`);
        assert.equal((await request(`http://127.0.0.1:${port}`, '/readyz')).status, 200, 'ready means ready');
        assert.equal((await request(`http://127.0.0.1:${port}`, '/')).text, 'v1');
        // systemd accepts a NotifyAccess=main unit's messages from its main process only: root's systemd-notify sends
        // in the gateway's name (without CAP_SYS_ADMIN it can only send in its own, and the unit needs NotifyAccess=all).
        if (canSpeakForParent()) assert.equal(ready.pid, gateway.pid, 'sent in the name of the gateway (the main process)');

        fs.writeFileSync(path.join(dir, 'www', 'index.php'), '<?php echo "v2";');
        gateway.kill('SIGHUP');
        await eventually('RELOADING=1 and READY=1', () => got.length >= 3, 20_000);
        assert.deepEqual(notify.kinds(), ['READY', 'RELOADING', 'READY']);
        assert.match(got[1]!.fields.get('MONOTONIC_USEC') ?? '', /^\d+$/, 'the clock systemd 253+ matches the reload by');
        assert.ok(!got[1]!.logThen.includes('reloaded: new requests go to the new pools'), 'RELOADING=1 before the new pools');
        assert.equal(got[2]!.fields.get('STATUS'), 'reloaded');
        assert.equal((await request(`http://127.0.0.1:${port}`, '/')).text, 'v2', 'READY=1 once the new pools serve');

        fs.writeFileSync(config, `${yaml}php_typo: 1\n`);
        gateway.kill('SIGHUP');
        await eventually('a refused reload ends with READY=1 too', () => got.length >= 5, 20_000);
        assert.deepEqual(notify.kinds(), ['READY', 'RELOADING', 'READY', 'RELOADING', 'READY']);
        assert.match(got[4]!.fields.get('STATUS') ?? '', /^reload refused/);
        assert.equal((await request(`http://127.0.0.1:${port}`, '/')).status, 200, 'the running configuration serves on');

        const exited = new Promise<number | null>((resolve) => gateway!.once('exit', (code) => resolve(code)));
        gateway.kill('SIGTERM');
        await eventually('STOPPING=1', () => got.length >= 6, 10_000);
        assert.deepEqual(notify.kinds(), ['READY', 'RELOADING', 'READY', 'RELOADING', 'READY', 'STOPPING']);
        assert.equal(await exited, 0);
        if (canSpeakForParent()) assert.ok(got.every((n) => n.pid === gateway!.pid));
      } finally {
        await stopped(gateway);
        await notify.close();
      }
    },
  );

  test('server.processes: the supervisor alone notifies, READY=1 once every process listens, and STOPPING=1', { timeout: 60_000 }, async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'notify-n-'));
    fs.mkdirSync(path.join(dir, 'www'));
    fs.writeFileSync(path.join(dir, 'www', 'index.php'), '<?php echo getmypid();');
    const port = await freePort();
    const config = path.join(dir, 'gateway.yaml');
    fs.writeFileSync(
      config,
      `server: { host: 127.0.0.1, port: ${port}, processes: 2, timeouts: { lame_duck_ms: 0 } }\nadmin: { port: 0 }\nphp: { docroot: ./www, worker_count: 2, socket_dir: ./sock }\n`,
    );
    const notify = new NotifySocket(dir);
    let gateway: ChildProcess | null = null;
    try {
      await notify.bound();
      gateway = notify.startGateway(config);
      await eventually('READY=1', () => notify.got.length >= 1, 30_000);
      assert.equal(notify.got[0]!.fields.get('STATUS'), '2 gateway processes listening');
      // (The supervisor writes READY=1 once both processes said they listen; their log lines come on another pipe.)
      await eventually('both processes log listening', () => (notify.log.match(/"phpgate listening"/g) ?? []).length === 2, 5_000);
      const exited = new Promise<number | null>((resolve) => gateway!.once('exit', (code) => resolve(code)));
      gateway.kill('SIGTERM');
      assert.equal(await exited, 0);
      await eventually('STOPPING=1', () => notify.got.length >= 2, 5_000);
      assert.deepEqual(notify.kinds(), ['READY', 'STOPPING'], 'nothing from the gateway processes themselves');
      if (canSpeakForParent())
        assert.ok(
          notify.got.every((n) => n.pid === gateway!.pid),
          "all in the supervisor's name",
        );
    } finally {
      await stopped(gateway);
      await notify.close();
    }
  });
});

describe('deploy/phpgate.service', { skip: systemdToolMissing('systemd-analyze') }, () => {
  test('systemd-analyze verify finds nothing to say about it', () => {
    // verify also checks that the programs exist: the unit's phpgate path is one of this test's files instead.
    const bin = path.join(tmp, 'phpgate');
    fs.writeFileSync(bin, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    const unit = fs.readFileSync(path.join(root, 'deploy/phpgate.service'), 'utf8');
    assert.ok(unit.includes('/usr/local/bin/phpgate'), 'the unit runs phpgate from where npm install -g puts it');
    const copy = path.join(tmp, 'phpgate.service');
    fs.writeFileSync(copy, unit.replaceAll('/usr/local/bin/phpgate', bin));
    const r = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8', timeout: 30_000 });
    // It warns about unknown keys and bad values on stderr but still exits 0: both must be clean.
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr.trim(), '');
    const keys = new Map(
      unit
        .split('\n')
        .filter((l) => /^\w+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const),
    );
    assert.equal(keys.get('Type'), 'notify');
    assert.equal(keys.get('KillMode'), 'mixed', 'SIGTERM to the gateway only: php-cgi must not be stopped under running requests');
    assert.ok(Number(keys.get('TimeoutStopSec')) >= 3 + 30, 'TimeoutStopSec covers the default lame duck and drain');
    assert.ok(!keys.has('MemoryDenyWriteExecute'), "node's JIT needs writable executable memory");
  });
});
