/**
 * Runs one load generator (wrk, h2load) to completion and returns what it printed. Every process started here is
 * tracked, so an interrupted bench can stop it by pid, and none may outlive its time limit.
 */
import { spawn, type ChildProcess } from 'node:child_process';

const running = new Set<ChildProcess>();

/** Kills every load generator still running (by pid). */
export function stopAllTools(): void {
  for (const child of running) child.kill('SIGKILL');
}

/**
 * Runs `cmd args`; resolves with its stdout + stderr when it exits 0, rejects otherwise, or when it is still
 * running after `limitS` seconds (it is then killed). `missing` is the message for a command that is not installed.
 */
export function runTool(cmd: string, args: string[], limitS: number, missing: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), limitS * 1000);
    let settled = false;
    const done = (err: Error | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      running.delete(child);
      if (err !== null) reject(err);
      else resolve(out);
    };
    child.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ENOENT' ? new Error(missing) : err));
    child.once('exit', (code, signal) =>
      done(code === 0 ? null : new Error(`${cmd} ${args.join(' ')} ended with ${signal ?? `code ${code}`}:\n${out}`)),
    );
  });
}
