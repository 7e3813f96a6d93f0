/**
 * Runs wrk (https://github.com/wg/wrk; Debian/Ubuntu: `apt-get install -y wrk`) and parses its report.
 * Every wrk started here is tracked (./tool.ts) so an interrupted bench can stop it by pid.
 */
import { spawnSync } from 'node:child_process';
import { runTool } from './tool.js';

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

export const WRK_MISSING = 'wrk not found; install it: apt-get install -y wrk';

/** Runs one wrk; rejects if it fails or outlives its duration by more than `graceS` seconds. */
export async function runWrk(url: string, o: WrkOptions, graceS = 15): Promise<WrkResult> {
  return parseWrk(url, await runTool('wrk', wrkArgs(url, o), o.durationS + graceS, WRK_MISSING));
}
