/**
 * CPU time and resident memory of a server's processes, from Linux's /proc: a server is its root processes (the
 * phpgate node process; nginx's master and php-fpm's master) and all their descendants, split into the gateway
 * (everything not PHP) and the PHP workers (processes whose name starts with "php": php-cgi, php-fpm8.2).
 *
 * /proc/PID/stat counts every thread of a process (node's libuv pool, where zlib runs, included). CPU time of a
 * process that exits between two samples is lost; the bench's servers keep their processes (max_requests 0).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

function getconf(name: string, fallback: number): number {
  try {
    const n = Number(execFileSync('getconf', [name], { encoding: 'utf8', timeout: 5000 }).trim());
    return Number.isInteger(n) && n > 0 ? n : fallback;
  } catch {
    return fallback; // no getconf: Linux's usual values
  }
}

/** Clock ticks per second (utime, stime) and the page size (rss), as `getconf CLK_TCK` / `PAGESIZE` say. */
export const CLK_TCK = getconf('CLK_TCK', 100);
const PAGE_BYTES = getconf('PAGESIZE', 4096);

interface Stat {
  pid: number;
  ppid: number;
  comm: string;
  /** utime + stime, in clock ticks. */
  ticks: number;
  rssBytes: number;
}

/** One /proc/PID/stat line; null if the process is gone. The name is in parentheses and may hold spaces. */
function readStat(pid: number): Stat | null {
  let line: string;
  try {
    line = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const close = line.lastIndexOf(')');
  const f = line.slice(close + 2).split(' '); // f[0] is field 3 (state)
  return {
    pid,
    ppid: Number(f[1]),
    comm: line.slice(line.indexOf('(') + 1, close),
    ticks: Number(f[11]) + Number(f[12]), // fields 14, 15
    rssBytes: Number(f[21]) * PAGE_BYTES, // field 24, in pages
  };
}

function allProcesses(): Stat[] {
  const out: Stat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s !== null) out.push(s);
  }
  return out;
}

export interface Usage {
  /** utime + stime of the gateway's / the PHP workers' processes, in seconds. */
  gatewayCpuS: number;
  phpCpuS: number;
  gatewayRssBytes: number;
  phpRssBytes: number;
  /** How many processes each side had. */
  gatewayProcs: number;
  phpProcs: number;
}

/** The current usage of `roots` and their descendants, gateway and PHP apart. */
export function usage(roots: readonly number[]): Usage {
  const procs = allProcesses();
  const children = new Map<number, Stat[]>();
  for (const p of procs) {
    const siblings = children.get(p.ppid);
    if (siblings === undefined) children.set(p.ppid, [p]);
    else siblings.push(p);
  }
  const u: Usage = { gatewayCpuS: 0, phpCpuS: 0, gatewayRssBytes: 0, phpRssBytes: 0, gatewayProcs: 0, phpProcs: 0 };
  const seen = new Set<number>();
  const visit = (p: Stat): void => {
    if (seen.has(p.pid)) return;
    seen.add(p.pid);
    if (p.comm.startsWith('php')) {
      u.phpCpuS += p.ticks / CLK_TCK;
      u.phpRssBytes += p.rssBytes;
      u.phpProcs++;
    } else {
      u.gatewayCpuS += p.ticks / CLK_TCK;
      u.gatewayRssBytes += p.rssBytes;
      u.gatewayProcs++;
    }
    for (const c of children.get(p.pid) ?? []) visit(c);
  };
  for (const root of roots) {
    const p = procs.find((x) => x.pid === root);
    if (p !== undefined) visit(p);
  }
  return u;
}

/** A process's resident memory split: anonymous (heap, stacks) and file-backed (mapped binaries and libraries). */
export interface RssSplit {
  anonBytes: number;
  fileBytes: number;
}

export function rssSplit(pid: number): RssSplit | null {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null; // gone
  }
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { anonBytes: kb('RssAnon'), fileBytes: kb('RssFile') };
}

/** Peak resident memory while something runs: polls usage() every `intervalMs` until stopped. */
export function watchPeakRss(roots: readonly number[], intervalMs = 500): () => { gatewayRssBytes: number; phpRssBytes: number } {
  const peak = { gatewayRssBytes: 0, phpRssBytes: 0 };
  const poll = (): void => {
    const u = usage(roots);
    peak.gatewayRssBytes = Math.max(peak.gatewayRssBytes, u.gatewayRssBytes);
    peak.phpRssBytes = Math.max(peak.phpRssBytes, u.phpRssBytes);
  };
  poll();
  const timer = setInterval(poll, intervalMs);
  return () => {
    clearInterval(timer);
    poll();
    return peak;
  };
}
