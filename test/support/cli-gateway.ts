/**
 * A real gateway started through its command line (gateway/cli.ts via tsx) as a process of its own, for what only
 * the CLI does (signals, its log on stdout) and for tests that must kill it. PHP runs as root when the tests do
 * (PHP_USER_ENV: their docroots are 0700 temp dirs).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PHP_USER_ENV } from './gateway.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = [process.execPath, '--import', import.meta.resolve('tsx'), path.join(root, 'gateway/cli.ts')];

export type LogEntry = Record<string, unknown> & { msg?: string; level?: number };

export interface CliGateway {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
  logs(): LogEntry[];
  stop(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Starts `phpgate --config configFile` in `cwd` and resolves once it listens; a start that fails throws its output. */
export async function startCli(configFile: string, cwd: string, env: Record<string, string> = {}): Promise<CliGateway> {
  let output = '';
  const proc = spawn(cli[0]!, [...cli.slice(1), '--config', configFile], {
    cwd,
    env: { ...process.env, ...PHP_USER_ENV, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once('exit', (code, signal) => resolve({ code, signal }));
  });
  proc.stdout.on('data', (c: Buffer) => (output += c.toString()));
  proc.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const logs = (): LogEntry[] => {
    const out: LogEntry[] = [];
    for (const line of output.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        out.push(JSON.parse(line) as LogEntry);
      } catch {
        // a line still being written
      }
    }
    return out;
  };
  const gw: CliGateway = {
    proc,
    pid: proc.pid!,
    exited,
    output: () => output,
    logs,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const done = await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)]);
      if (!done) {
        proc.kill('SIGKILL');
        await exited;
      }
    },
  };
  const deadline = Date.now() + 20_000;
  while (!output.includes('phpgate listening')) {
    if (Date.now() > deadline || proc.exitCode !== null) {
      await gw.stop();
      throw new Error(`gateway did not start:\n${output}`);
    }
    await sleep(25);
  }
  return gw;
}
