/**
 * Runs wrk (https://github.com/wg/wrk; Debian/Ubuntu: `apt-get install -y wrk`) and parses its report.
 * Every wrk started here is tracked (./tool.ts) so an interrupted bench can stop it by pid.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { runTool } from './tool.js';

export interface WrkOptions {
  threads: number;
  connections: number;
  durationS: number;
  /** A Lua script (bench/lua/) and the arguments its init() gets. */
  script?: { file: string; args?: string[] };
  /** Extra request headers, "Name: value". */
  headers?: string[];
  /** wrk's per-request timeout (--timeout); wrk's default is 2 s. */
  timeoutS?: number;
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
  /** wrk's socket errors: connections refused or reset, requests that got no answer in time. */
  socketErrors: { connect: number; read: number; write: number; timeout: number };
  /** Answers by status, when the run used bench/lua/status.lua; null otherwise. */
  statuses: Record<number, number> | null;
}

export function wrkArgs(url: string, o: WrkOptions): string[] {
  return [
    `-t${o.threads}`,
    `-c${o.connections}`,
    `-d${o.durationS}s`,
    ...(o.timeoutS === undefined ? [] : [`--timeout`, `${o.timeoutS}s`]),
    ...(o.headers ?? []).flatMap((h) => ['-H', h]),
    ...(o.script === undefined ? [] : ['-s', o.script.file]),
    '--latency',
    url,
    ...(o.script?.args === undefined ? [] : ['--', ...o.script.args]),
  ];
}

/** The command line as a person would type it, for the report (the script by its name in bench/lua/). */
export function wrkCommandLine(o: WrkOptions, url = '<url>'): string {
  const shown = o.script === undefined ? o : { ...o, script: { ...o.script, file: `bench/lua/${path.basename(o.script.file)}` } };
  return ['wrk', ...wrkArgs(url, shown).map((a) => (/[\s;]/.test(a) ? `'${a}'` : a))].join(' ');
}

export function wrkVersion(): string | null {
  const r = spawnSync('wrk', ['-v'], { encoding: 'utf8', timeout: 5000 });
  if (r.error) return null;
  // `wrk -v` prints "wrk 4.1.0 [epoll] Copyright ..." followed by the usage text.
  return (r.stdout + r.stderr)
    .split('\n')[0]!
    .replace(/\s*Copyright.*$/, '')
    .trim();
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
  const n = (i: number) => Number(sock?.[i] ?? 0);
  const socketErrors = { connect: n(1), read: n(2), write: n(3), timeout: n(4) };
  const counts: Array<[string, number]> = [['non-2xx/3xx', non2xx], ...Object.entries(socketErrors)];
  const nonZero = counts.filter(([, c]) => c > 0);
  const statusLines = [...out.matchAll(/^status (\d+) (\d+)$/gm)];
  return {
    url,
    requests,
    rps,
    bytesPerSec: Number(t[1]) * BYTE_UNITS[t[2]!]!,
    p50Ms: latency('50'),
    p99Ms: latency('99'),
    errors: nonZero.reduce((a, [, c]) => a + c, 0),
    errorDetail: nonZero.map(([kind, c]) => `${kind} ${c}`).join(', '),
    socketErrors,
    statuses: statusLines.length === 0 ? null : Object.fromEntries(statusLines.map((m) => [Number(m[1]), Number(m[2])])),
  };
}

export const WRK_MISSING = 'wrk not found; install it: apt-get install -y wrk';

/** Runs one wrk; rejects if it fails or outlives its duration by more than `graceS` seconds. */
export async function runWrk(url: string, o: WrkOptions, graceS = 15): Promise<WrkResult> {
  return parseWrk(url, await runTool('wrk', wrkArgs(url, o), o.durationS + graceS, WRK_MISSING));
}
