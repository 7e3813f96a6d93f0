/**
 * Runs wrk (https://github.com/wg/wrk; Debian/Ubuntu: `apt-get install -y wrk`) and parses its report.
 * Every wrk started here is tracked so an interrupted bench can stop it by pid.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

export interface WrkOptions {
  threads: number;
  connections: number;
  durationS: number;
}

export interface WrkResult {
  url: string;
  requests: number;
  rps: number;
  /** Transfer/sec as wrk reports it (response headers + bodies), in bytes. */
  bytesPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** "Non-2xx or 3xx responses" plus socket errors (connect, read, write, timeout); 0 for a clean run. */
  errors: number;
  /** The non-zero error counts by kind ("non-2xx/3xx 3, timeout 12"); '' for a clean run. */
  errorDetail: string;
}

export function wrkArgs(url: string, o: WrkOptions): string[] {
  return [`-t${o.threads}`, `-c${o.connections}`, `-d${o.durationS}s`, '--latency', url];
}

/** The command line as a person would type it, for the report. */
export function wrkCommandLine(o: WrkOptions, url = '<url>'): string {
  return ['wrk', ...wrkArgs(url, o)].join(' ');
}

export function wrkVersion(): string | null {
  const r = spawnSync('wrk', ['-v'], { encoding: 'utf8', timeout: 5000 });
  if (r.error) return null;
  // `wrk -v` prints "wrk 4.1.0 [epoll] Copyright ..." followed by the usage text.
  return (r.stdout + r.stderr).split('\n')[0]!.replace(/\s*Copyright.*$/, '').trim();
}

const TIME_UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const BYTE_UNITS: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

function num(out: string, re: RegExp, what: string): RegExpExecArray {
  const m = re.exec(out);
  if (m === null) throw new Error(`could not find ${what} in wrk's output:\n${out}`);
  return m;
}

/** Parses wrk 4.x `--latency` output. Byte units are binary (wrk's "MB" is 1024²). */
export function parseWrk(url: string, out: string): WrkResult {
  const rps = Number(num(out, /^Requests\/sec:\s+([\d.]+)/m, 'Requests/sec')[1]);
  const t = num(out, /^Transfer\/sec:\s+([\d.]+)([KMGT]?B)/m, 'Transfer/sec');
  const latency = (pct: string): number => {
    const m = num(out, new RegExp(`^\\s+${pct}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, 'm'), `the ${pct}% latency`);
    return Number(m[1]) * TIME_UNITS[m[2]!]!;
  };
  const requests = Number(num(out, /^\s+(\d+) requests in /m, 'the request count')[1]);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const counts: Array<[string, number]> = [['non-2xx/3xx', non2xx]];
  ['connect', 'read', 'write', 'timeout'].forEach((kind, i) => counts.push([kind, Number(sock?.[i + 1] ?? 0)]));
  const nonZero = counts.filter(([, n]) => n > 0);
  return {
    url,
    requests,
    rps,
    bytesPerSec: Number(t[1]) * BYTE_UNITS[t[2]!]!,
    p50Ms: latency('50'),
    p99Ms: latency('99'),
    errors: nonZero.reduce((a, [, n]) => a + n, 0),
    errorDetail: nonZero.map(([kind, n]) => `${kind} ${n}`).join(', '),
  };
}

const running = new Set<ChildProcess>();

/** Kills every wrk still running (by pid). */
export function stopAllWrk(): void {
  for (const child of running) child.kill('SIGKILL');
}

/** Runs one wrk; rejects if it fails or outlives its duration by more than `graceS` seconds. */
export function runWrk(url: string, o: WrkOptions, graceS = 15): Promise<WrkResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', wrkArgs(url, o), { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (out += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), (o.durationS + graceS) * 1000);
    let settled = false;
    const done = (err: Error | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      running.delete(child);
      if (err !== null) return reject(err);
      try {
        resolve(parseWrk(url, out));
      } catch (e) {
        reject(e as Error);
      }
    };
    child.once('error', (err: NodeJS.ErrnoException) =>
      done(err.code === 'ENOENT' ? new Error('wrk not found; install it: apt-get install -y wrk') : err),
    );
    child.once('exit', (code, signal) =>
      done(code === 0 ? null : new Error(`wrk ${url} ended with ${signal ?? `code ${code}`}:\n${out}`)),
    );
  });
}
