/**
 * A private HAProxy for tests: Debian's haproxy in the foreground on a loopback port, with the configuration an
 * operator writes in front of several phpgate instances (the README shows the same), a stats socket to see what
 * it thinks of each server, and its abnormal-request log kept. Stopped by its pid.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { eventually, freePort } from './proc.js';

/** Debian installs it in /usr/sbin, which an unprivileged user's PATH may lack. */
const HAPROXY = fs.existsSync('/usr/sbin/haproxy') ? '/usr/sbin/haproxy' : 'haproxy';

export interface HaproxyServer {
  readonly name: string;
  readonly port: number;
}

export interface RunningHaproxy {
  readonly port: number;
  readonly base: string;
  /** The `status` column of `show stat` per server: UP, DOWN, "UP 1/2" (going down), "DOWN 1/2" (coming up) … */
  serverStatus(): Promise<Map<string, string>>;
  /** What HAProxy logged: with `option dontlog-normal`, only failed or abnormal requests and server state changes. */
  log(): string;
  stop(): Promise<void>;
}

/** Undefined when haproxy is installed; locally, why not (the test skips); in CI, where it is required, an error. */
export function haproxyMissing(what: string): string | undefined {
  const r = spawnSync(HAPROXY, ['-v'], { encoding: 'utf8' });
  if (r.status === 0) return undefined;
  const reason = `haproxy is not installed (${r.error?.message ?? r.stderr.trim()})`;
  if (process.env['CI']) throw new Error(`haproxy is required for ${what} in CI, but: ${reason} (apt-get install -y haproxy)`);
  return reason;
}

/**
 * The backend an operator writes: /readyz checked every second, two failures take a server out, two successes
 * bring it back, round robin, HAProxy's own defaults for everything else (connection reuse, retries on connect
 * failures only, no redispatch).
 */
export function haproxyConfig(o: { port: number; statsSocket: string; servers: readonly HaproxyServer[] }): string {
  return `global
    stats socket ${o.statsSocket} mode 600 level admin
    log stderr format raw local0

defaults
    mode http
    log global
    option httplog
    option dontlog-normal
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend www
    bind 127.0.0.1:${o.port}
    default_backend phpgate

backend phpgate
    balance roundrobin
    option httpchk GET /readyz
    default-server inter 1s fall 2 rise 2
${o.servers.map((s) => `    server ${s.name} 127.0.0.1:${s.port} check`).join('\n')}
`;
}

export async function startHaproxy(servers: readonly HaproxyServer[]): Promise<RunningHaproxy> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-haproxy-'));
  const port = await freePort();
  const statsSocket = path.join(dir, 'stats.sock');
  const file = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(file, haproxyConfig({ port, statsSocket, servers }));
  // -db: foreground, no daemon, so the pid is the one that serves and stop() ends exactly it.
  const child = spawn(HAPROXY, ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
  const exited = (): boolean => child.exitCode !== null || child.signalCode !== null;
  const stop = async (): Promise<void> => {
    if (!exited()) process.kill(child.pid!, 'SIGTERM');
    await eventually('haproxy to exit', exited);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await eventually('haproxy stats socket', () => fs.existsSync(statsSocket) || exited(), 10_000);
    if (exited()) throw new Error(`haproxy exited at start (code ${child.exitCode}):\n${output}`);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    port,
    base: `http://127.0.0.1:${port}`,
    serverStatus: async () => parseStatus(await statsCommand(statsSocket, 'show stat')),
    log: () => output,
    stop,
  };
}

/** One command on the stats socket (it answers and closes). */
function statsCommand(socketPath: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    let answer = '';
    socket.setTimeout(2000, () => socket.destroy(new Error(`haproxy stats socket: no answer to "${command}"`)));
    socket.on('connect', () => socket.write(`${command}\n`));
    socket.on('data', (c: Buffer) => (answer += c.toString('utf8')));
    socket.on('error', reject);
    socket.on('close', () => resolve(answer));
  });
}

/** `show stat` is CSV with a "# pxname,svname,…" header; the backend's servers are the rows with a server name. */
function parseStatus(csv: string): Map<string, string> {
  const [head = '', ...rows] = csv.split('\n');
  const cols = head.replace(/^# /, '').split(',');
  const [px, sv, st] = ['pxname', 'svname', 'status'].map((n) => cols.indexOf(n));
  const out = new Map<string, string>();
  for (const row of rows) {
    const f = row.split(',');
    const name = f[sv!];
    if (f[px!] !== 'phpgate' || name === undefined || name === 'BACKEND' || name === 'FRONTEND') continue;
    out.set(name, f[st!] ?? '');
  }
  return out;
}
