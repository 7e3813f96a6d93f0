/**
 * php-fpm's status page (pm.status_path), field for field as php-fpm 8.2 writes it, so the tools that read
 * php-fpm's status over HTTP (monitoring agents' php-fpm checks, exporters scraping a status URL) read phpgate's:
 * `/fpm-status` plain text, `?json`, `?full` and `?json&full`; one pool per page as php-fpm, `?pool=NAME`
 * choosing it (the default pool otherwise).
 *
 * Where phpgate has no such figure the value is php-fpm's own "nothing" (`-`, 0, 0.00); see the README's
 * monitoring section for what each field means here. A request URI is shown without its query string's
 * contents (`/search.php?…`): query strings carry tokens and passwords, and status pages get shared.
 */
import type { PoolStats, WorkerStats } from '../../php/pool.js';
import type { PoolCounts } from './metrics.js';

export const FpmStatusPath = '/fpm-status';

/** The pool shown without ?pool=: the default pool if there is one, else the first. */
export function choosePool(pools: readonly PoolStats[], wanted: string | null, defaultName: string): PoolStats | null {
  if (wanted !== null) return pools.find((p) => p.name === wanted) ?? null;
  return pools.find((p) => p.name === defaultName) ?? pools[0] ?? null;
}

export interface FpmPage {
  readonly contentType: string;
  readonly body: string;
}

/** One row of php-fpm's process list (only live workers: php-fpm lists the children it has). */
interface FpmProcess {
  pid: number;
  state: string;
  startTime: number;
  startSince: number;
  requests: number;
  /** µs */
  duration: number;
  method: string;
  uri: string;
  contentLength: number;
  user: string;
  script: string;
  cpu: number;
  memory: number;
}

/** What phpgate's worker label (`METHOD URI → SCRIPT`) says, the URI's query replaced by `?…`. */
export function splitLabel(label: string): { method: string; uri: string; script: string } {
  const space = label.indexOf(' ');
  const arrow = label.lastIndexOf(' → ');
  if (space === -1 || arrow < space) return { method: '-', uri: '-', script: '-' };
  return { method: label.slice(0, space), uri: redactQuery(label.slice(space + 1, arrow)), script: label.slice(arrow + 3) };
}

/** The worker label with its URI's query redacted: what status.json and the dashboard show. */
export function redactLabel(label: string): string {
  if (!label.includes('?')) return label;
  const { method, uri, script } = splitLabel(label);
  return `${method} ${uri} → ${script}`;
}

/** `/path?anything` → `/path?…`: the path stays, what the query carried does not. */
export function redactQuery(uri: string): string {
  const q = uri.indexOf('?');
  return q === -1 ? uri : `${uri.slice(0, q)}?…`;
}

function processOf(w: WorkerStats, nowMs: number): FpmProcess | null {
  if (w.pid <= 0 || (w.state !== 'idle' && w.state !== 'busy')) return null;
  const busy = w.state === 'busy' && w.current !== null;
  const shown = busy ? w.current.label : (w.last?.label ?? '');
  const { method, uri, script } = shown === '' ? { method: '-', uri: '-', script: '-' } : splitLabel(shown);
  const durationMs = busy ? nowMs - w.current.startedAt : Math.max(0, w.last?.ms ?? 0);
  return {
    pid: w.pid,
    state: busy ? 'Running' : 'Idle',
    startTime: Math.floor(w.childSince / 1000),
    startSince: Math.max(0, Math.floor((nowMs - w.childSince) / 1000)),
    requests: w.requests,
    duration: Math.round(durationMs * 1000),
    method,
    uri,
    contentLength: 0,
    user: '-',
    script,
    cpu: 0,
    // php-fpm reports the last request's memory once it is over, 0 while one runs; here the child's private memory.
    memory: busy ? 0 : w.privateBytes,
  };
}

interface FpmSummary {
  pool: string;
  startTime: number;
  startSince: number;
  accepted: number;
  queue: number;
  maxQueue: number;
  queueLen: number;
  idle: number;
  active: number;
  maxActive: number;
  maxChildrenReached: number;
  slow: number;
}

function summaryOf(p: PoolStats, counts: PoolCounts, startedAtMs: number, nowMs: number): FpmSummary {
  return {
    pool: p.name,
    startTime: Math.floor(startedAtMs / 1000),
    startSince: Math.max(0, Math.floor((nowMs - startedAtMs) / 1000)),
    accepted: counts.requests,
    queue: p.queued,
    maxQueue: p.maxQueued,
    queueLen: p.queueLimit,
    idle: p.idle,
    active: p.busy,
    maxActive: p.maxBusy,
    maxChildrenReached: p.waited,
    slow: counts.slow,
  };
}

/** The page for this query (php-fpm reads `json` and `full` as present or not, whatever their value). */
export function fpmStatusPage(p: PoolStats, counts: PoolCounts, startedAtMs: number, query: URLSearchParams, nowMs = Date.now()): FpmPage {
  const s = summaryOf(p, counts, startedAtMs, nowMs);
  const procs = query.has('full') ? p.workers.map((w) => processOf(w, nowMs)).filter((x): x is FpmProcess => x !== null) : null;
  return query.has('json')
    ? { contentType: 'application/json', body: json(s, procs) }
    : { contentType: 'text/plain;charset=UTF-8', body: text(s, procs) };
}

/** php's JSON string escaping as php-fpm writes it (`/` as `\/` too). */
function jsonString(v: string): string {
  return JSON.stringify(v).replace(/\//g, '\\/');
}

function json(s: FpmSummary, procs: FpmProcess[] | null): string {
  let out =
    `{"pool":${jsonString(s.pool)},"process manager":"static","start time":${s.startTime},"start since":${s.startSince},` +
    `"accepted conn":${s.accepted},"listen queue":${s.queue},"max listen queue":${s.maxQueue},"listen queue len":${s.queueLen},` +
    `"idle processes":${s.idle},"active processes":${s.active},"total processes":${s.idle + s.active},` +
    `"max active processes":${s.maxActive},"max children reached":${s.maxChildrenReached},"slow requests":${s.slow}`;
  if (procs === null) return `${out}}`;
  const rows = procs.map(
    (w) =>
      `{"pid":${w.pid},"state":${jsonString(w.state)},"start time":${w.startTime},"start since":${w.startSince},"requests":${w.requests},` +
      `"request duration":${w.duration},"request method":${jsonString(w.method)},"request uri":${jsonString(w.uri)},` +
      `"content length":${w.contentLength},"user":${jsonString(w.user)},"script":${jsonString(w.script)},` +
      `"last request cpu":${w.cpu.toFixed(2)},"last request memory":${w.memory}}`,
  );
  out += `, "processes":[${rows.join(',')}]}`;
  return out;
}

/** `name:` padded to php-fpm's 22 columns. */
function line(name: string, value: string | number): string {
  return `${`${name}:`.padEnd(22)}${value}\n`;
}

function text(s: FpmSummary, procs: FpmProcess[] | null): string {
  let out =
    line('pool', s.pool) +
    line('process manager', 'static') +
    line('start time', fpmTime(s.startTime)) +
    line('start since', s.startSince) +
    line('accepted conn', s.accepted) +
    line('listen queue', s.queue) +
    line('max listen queue', s.maxQueue) +
    line('listen queue len', s.queueLen) +
    line('idle processes', s.idle) +
    line('active processes', s.active) +
    line('total processes', s.idle + s.active) +
    line('max active processes', s.maxActive) +
    line('max children reached', s.maxChildrenReached) +
    line('slow requests', s.slow);
  for (const w of procs ?? []) {
    out +=
      '\n************************\n' +
      line('pid', w.pid) +
      line('state', w.state) +
      line('start time', fpmTime(w.startTime)) +
      line('start since', w.startSince) +
      line('requests', w.requests) +
      line('request duration', w.duration) +
      line('request method', w.method) +
      line('request URI', w.uri) +
      line('content length', w.contentLength) +
      line('user', w.user) +
      line('script', w.script) +
      line('last request cpu', w.cpu.toFixed(2)) +
      line('last request memory', w.memory);
  }
  return out;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** strftime's `%d/%b/%Y:%H:%M:%S %z` in local time, as php-fpm's text page. */
export function fpmTime(epochS: number): string {
  const d = new Date(epochS * 1000);
  const two = (n: number): string => String(n).padStart(2, '0');
  const off = -d.getTimezoneOffset();
  const zone = `${off < 0 ? '-' : '+'}${two(Math.floor(Math.abs(off) / 60))}${two(Math.abs(off) % 60)}`;
  return `${two(d.getDate())}/${MONTHS[d.getMonth()]!}/${d.getFullYear()}:${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} ${zone}`;
}
