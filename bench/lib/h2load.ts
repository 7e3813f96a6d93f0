/**
 * Runs h2load (nghttp2's HTTP/2 load generator; Debian/Ubuntu: `apt-get install -y nghttp2-client`) in
 * duration mode and parses its report. Every h2load started here is tracked (./tool.ts) so an interrupted bench
 * can stop it by pid.
 */
import { spawnSync } from 'node:child_process';
import { runTool } from './tool.js';

export interface H2loadOptions {
  threads: number;
  /** Connections (h2load's "clients"). */
  connections: number;
  /** Concurrent streams per connection. */
  streams: number;
  /** Measured seconds (-D). */
  durationS: number;
  /** Seconds of load before the measured part (--warm-up-time): connections and TLS handshakes happen here. */
  warmupS: number;
  /** The only TLS 1.3 cipher suite offered (--tls13-ciphers), so every server does the same crypto. */
  tls13Cipher: string;
}

export interface H2loadResult {
  url: string;
  /** ALPN result ("h2"), and the TLS version and cipher h2load got. */
  protocol: string;
  tls: string;
  /** Requests completed within the measured duration, and how they ended (h2load's counters). */
  done: number;
  succeeded: number;
  failed: number;
  errored: number;
  timeout: number;
  /** Successful (2xx/3xx) requests per second of the measured duration: succeeded / durationS. */
  rps: number;
  /** h2load's own "req/s" figure, for reference. */
  h2loadRps: number;
  /** h2load's traffic rate (frames, headers and bodies), in bytes (its "MB" is 1024²). */
  bytesPerSec: number;
  /** h2load's "time for request" line: the time from sending a request to its response's end. */
  minMs: number;
  meanMs: number;
  sdMs: number;
  maxMs: number;
  /** h2load's "failed" (non-2xx/3xx responses, resets, timeouts, connection errors); 0 for a clean run. */
  errors: number;
  /** The non-zero counters ("failed 3 (errored 3, timeout 0), 5xx 0"); '' for a clean run. */
  errorDetail: string;
}

export const H2LOAD_MISSING = 'h2load not found; install it: apt-get install -y nghttp2-client';

export function h2loadArgs(url: string, o: H2loadOptions): string[] {
  return [
    `-t${o.threads}`,
    `-c${o.connections}`,
    `-m${o.streams}`,
    `-D${o.durationS}`,
    `--warm-up-time=${o.warmupS}`,
    `--tls13-ciphers=${o.tls13Cipher}`,
    url,
  ];
}

/** The command line as a person would type it, for the report. */
export function h2loadCommandLine(o: H2loadOptions, url = '<url>'): string {
  return ['h2load', ...h2loadArgs(url, o)].join(' ');
}

export function h2loadVersion(): string | null {
  const r = spawnSync('h2load', ['--version'], { encoding: 'utf8', timeout: 5000 });
  if (r.error) return null;
  return (r.stdout + r.stderr).split('\n')[0]!.trim(); // "h2load nghttp2/1.52.0"
}

const TIME_UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000 };
const BYTE_UNITS: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

function num(out: string, re: RegExp, what: string): RegExpExecArray {
  const m = re.exec(out);
  if (m === null) throw new Error(`could not find ${what} in h2load's output:\n${out}`);
  return m;
}

const TIME = '([\\d.]+)(us|ms|s)';

/** Parses h2load 1.4x–1.6x output (`finished in …`, `requests: …`, `status codes: …`, `time for request: …`). */
export function parseH2load(url: string, out: string, durationS: number): H2loadResult {
  const fin = num(out, /^finished in [\d.]+(?:us|ms|s), ([\d.]+) req\/s, ([\d.]+)([KMGT]?B)\/s$/m, 'the "finished in" line');
  const req = num(
    out,
    /^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout$/m,
    'the "requests:" line',
  );
  const st = num(out, /^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx$/m, 'the "status codes:" line');
  const t = num(out, new RegExp(`^time for request:\\s+${TIME}\\s+${TIME}\\s+${TIME}\\s+${TIME}`, 'm'), 'the "time for request" line');
  const ms = (i: number) => Number(t[i]) * TIME_UNITS[t[i + 1]!]!;
  const [done, succeeded, failed, errored, timeout] = [3, 4, 5, 6, 7].map((i) => Number(req[i]));
  const [s4xx, s5xx] = [3, 4].map((i) => Number(st[i]));
  const detail: string[] = [];
  if (failed! > 0) detail.push(`failed ${failed} (errored ${errored}, timeout ${timeout})`);
  if (s4xx! > 0) detail.push(`4xx ${s4xx}`);
  if (s5xx! > 0) detail.push(`5xx ${s5xx}`);
  return {
    url,
    protocol: /^Application protocol: (\S+)/m.exec(out)?.[1] ?? '(none)',
    tls: [/^TLS Protocol: (\S+)/m.exec(out)?.[1], /^Cipher: (\S+)/m.exec(out)?.[1]].filter((x) => x !== undefined).join(' ') || '(none)',
    done: done!,
    succeeded: succeeded!,
    failed: failed!,
    errored: errored!,
    timeout: timeout!,
    rps: succeeded! / durationS,
    h2loadRps: Number(fin[1]),
    bytesPerSec: Number(fin[2]) * BYTE_UNITS[fin[3]!]!,
    minMs: ms(1),
    maxMs: ms(3),
    meanMs: ms(5),
    sdMs: ms(7),
    errors: failed!,
    errorDetail: detail.join(', '),
  };
}

/**
 * Runs one h2load; rejects if it fails, did not get h2 over TLS 1.3 with the one cipher suite offered, or outlives
 * its run by more than `graceS` seconds.
 */
export async function runH2load(url: string, o: H2loadOptions, graceS = 15): Promise<H2loadResult> {
  const out = await runTool('h2load', h2loadArgs(url, o), o.warmupS + o.durationS + graceS, H2LOAD_MISSING);
  const r = parseH2load(url, out, o.durationS);
  if (r.protocol !== 'h2') throw new Error(`h2load ${url}: negotiated "${r.protocol}", not h2:\n${out}`);
  if (r.tls !== `TLSv1.3 ${o.tls13Cipher}`) throw new Error(`h2load ${url}: negotiated "${r.tls}", not TLSv1.3 ${o.tls13Cipher}:\n${out}`);
  return r;
}
