/**
 * A private redis-server for tests: on a free loopback port, without persistence, in a temp dir; stopped (or
 * killed, to simulate an outage) by its pid. Never the system's Redis service.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { eventually, freePort } from './proc.js';

export interface RunningRedis {
  readonly port: number;
  readonly pid: number;
  /** `redis://127.0.0.1:PORT` */
  readonly url: string;
  /** Sends `signal` (SIGTERM by default; SIGKILL for a crash) and waits until the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** `port`: a given port (to restart a server where a killed one was); otherwise a free one. */
export async function startRedis(opts: { port?: number } = {}): Promise<RunningRedis> {
  const port = opts.port ?? (await freePort());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-redis-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
  let exited = false;
  child.once('exit', () => (exited = true));
  const spawned = await new Promise<Error | null>((resolve) => {
    child.once('spawn', () => resolve(null));
    child.once('error', (err) => resolve(err));
  });
  if (spawned !== null) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`redis-server did not start (apt-get install -y redis-server): ${spawned.message}`);
  }
  const pid = child.pid!;
  try {
    await answersPing(port, () => exited);
  } catch (err) {
    await stopChild(child, pid, 'SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`redis-server on port ${port} did not come up: ${(err as Error).message}\n${output}`, { cause: err });
  }
  return {
    port,
    pid,
    url: `redis://127.0.0.1:${port}`,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      await stopChild(child, pid, signal);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function stopChild(child: ChildProcess, pid: number, signal: NodeJS.Signals): Promise<void> {
  const exited = (): boolean => child.exitCode !== null || child.signalCode !== null;
  // Only while it runs: once exited and reaped, the pid may belong to someone else.
  if (!exited()) process.kill(pid, signal);
  await eventually(`redis-server ${pid} to exit`, exited);
}

/** Polls until the server answers PING (bounded), or fails at once if it exited. */
async function answersPing(port: number, exited: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited()) throw new Error('redis-server exited');
    if (await ping(port)) return;
    if (Date.now() > deadline) throw new Error('no PONG');
    await new Promise((r) => setTimeout(r, 50));
  }
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let answer = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    // Not up yet (ECONNREFUSED) is the expected answer while it starts: the caller polls again.
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (c: Buffer) => {
      answer += c.toString('latin1');
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'));
    });
  });
}
