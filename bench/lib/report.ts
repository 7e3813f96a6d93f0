/** The comparison table (stdout) and bench/RESULTS.md. */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import type { H2loadResult } from './h2load.js';
import type { WrkResult } from './wrk.js';

export interface CaseResult {
  name: string;
  path: string;
  /** What the ratio compares, and the issue's target for it (none for PHP). */
  metric: 'rps' | 'throughput';
  target: number | null;
  nginx: WrkResult[];
  phpgate: WrkResult[];
}

/** One HTTP/2 case: nginx and phpgate over TLS, driven by h2load. Always compares rps. */
export interface H2CaseResult {
  name: string;
  path: string;
  target: number | null;
  nginx: H2loadResult[];
  phpgate: H2loadResult[];
}

/** phpgate alone, without rate-limit rules (`off`) and with one rule that never refuses (`on`). */
export interface RateLimitResult {
  name: string;
  path: string;
  /** The rule, as written in the gateway's config. */
  rule: string;
  target: number;
  off: WrkResult[];
  on: WrkResult[];
}

export interface ReportInput {
  date: Date;
  rounds: number;
  durationS: number;
  warmupS: number;
  /** HTTP/1.1 cases (wrk), nginx vs phpgate. */
  wrk: { command: string; cases: CaseResult[] } | null;
  /** HTTP/2 cases (h2load), nginx vs phpgate. */
  h2: { command: string; cases: H2CaseResult[]; keepaliveRequests: number } | null;
  rateLimit: { command: string; rounds: number; result: RateLimitResult } | null;
  /** Cases asked for but not run, and why (a missing tool). */
  skipped: string[];
  reproduce: string;
}

/** The round reported for a server: the one with the highest Requests/sec. */
export function best<R extends { rps: number }>(runs: R[]): R {
  return runs.reduce((a, b) => (b.rps > a.rps ? b : a));
}

/** The median Requests/sec of the rounds (the mean of the middle two for an even count). */
export function medianRps(runs: Array<{ rps: number }>): number {
  const v = runs.map((r) => r.rps).sort((a, b) => a - b);
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

const MB = 1024 * 1024;
const fmtRps = (n: number) => Math.round(n).toLocaleString('en-US');
const fmtMs = (ms: number) =>
  ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : ms < 1000 ? `${ms.toFixed(2)} ms` : `${(ms / 1000).toFixed(2)} s`;
const fmtMBs = (b: number) => (b / MB).toFixed(1);

export function ratio(c: CaseResult): number {
  const n = best(c.nginx);
  const g = best(c.phpgate);
  return c.metric === 'rps' ? g.rps / n.rps : g.bytesPerSec / n.bytesPerSec;
}

export function h2Ratio(c: H2CaseResult): number {
  return best(c.phpgate).rps / best(c.nginx).rps;
}

/** with rule / without rules, best round of each. */
export function rateLimitRatio(r: RateLimitResult): number {
  return best(r.on).rps / best(r.off).rps;
}

export function verdict(r: number, target: number): string {
  return r >= target ? 'met' : 'NOT met';
}

function cell(r: number, what: string, target: number | null, digits = 1): string {
  if (target === null) return `${r.toFixed(2)}× (${what}; no target)`;
  return `**${r.toFixed(2)}×** (${what}; target ≥ ${target.toFixed(digits)}×: ${verdict(r, target)})`;
}

function ratioCell(c: CaseResult): string {
  return cell(ratio(c), c.metric === 'rps' ? 'rps' : 'MB/s', c.target);
}

const sum = (runs: Array<{ errors: number }>) => runs.reduce((a, r) => a + r.errors, 0);

function errorNote(a: string, aRuns: Array<{ errors: number }>, b: string, bRuns: Array<{ errors: number }>): string {
  return sum(aRuns) + sum(bRuns) > 0 ? ` ⚠ errors (all rounds): ${a} ${sum(aRuns)}, ${b} ${sum(bRuns)}` : '';
}

/** One side of a comparison row: what both tables need of a wrk or an h2load run. */
interface Run {
  rps: number;
  bytesPerSec: number;
  errors: number;
}

/** nginx against phpgate, best rounds: the columns the tables share, with their own latency and ratio cells. */
function comparisonTable<R extends Run, C extends { name: string; path: string; nginx: R[]; phpgate: R[] }>(
  cases: C[], latencyTitle: string, latency: (r: R) => string, ratioOf: (c: C) => string): string {
  const rows = [
    `| case | nginx rps | phpgate rps | ratio (phpgate/nginx) | nginx ${latencyTitle} | phpgate ${latencyTitle} | nginx MB/s | phpgate MB/s |`,
    '|---|---:|---:|---|---:|---:|---:|---:|',
  ];
  for (const c of cases) {
    const n = best(c.nginx);
    const g = best(c.phpgate);
    const errors = errorNote('nginx', c.nginx, 'phpgate', c.phpgate);
    rows.push(
      `| ${c.name} \`${c.path}\`${errors} | ${fmtRps(n.rps)} | ${fmtRps(g.rps)} | ${ratioOf(c)} | ${latency(n)} | ${latency(g)} | ${fmtMBs(n.bytesPerSec)} | ${fmtMBs(g.bytesPerSec)} |`,
    );
  }
  return rows.join('\n');
}

export function table(cases: CaseResult[]): string {
  return comparisonTable(cases, 'p99', (r: WrkResult) => fmtMs(r.p99Ms), ratioCell);
}

/** Every round, in the order it ran, so the spread between rounds is visible. */
function roundsTable(cases: CaseResult[]): string {
  const rows = ['| case | round | server | rps | p50 | p99 | MB/s | errors |', '|---|---:|---|---:|---:|---:|---:|---|'];
  for (const c of cases) {
    c.nginx.forEach((n, i) => {
      const g = c.phpgate[i]!;
      for (const [server, r] of [['nginx', n], ['phpgate', g]] as const) {
        rows.push(`| ${c.name} | ${i + 1} | ${server} | ${fmtRps(r.rps)} | ${fmtMs(r.p50Ms)} | ${fmtMs(r.p99Ms)} | ${fmtMBs(r.bytesPerSec)} | ${r.errors === 0 ? 0 : r.errorDetail} |`);
      }
    });
  }
  return rows.join('\n');
}

const fmtH2Latency = (r: H2loadResult) => `${fmtMs(r.meanMs)} ± ${fmtMs(r.sdMs)} (max ${fmtMs(r.maxMs)})`;

/** HTTP/2: h2load gives no percentiles, only min/max/mean/sd of its "time for request". */
export function h2Table(cases: H2CaseResult[]): string {
  return comparisonTable(cases, 'latency mean ± sd (max)', fmtH2Latency, (c) => cell(h2Ratio(c), 'rps', c.target));
}

function h2RoundsTable(cases: H2CaseResult[]): string {
  const rows = [
    '| case | round | server | rps | mean | sd | max | MB/s | succeeded | failed (errored, timeout) | TLS, ALPN |',
    '|---|---:|---|---:|---:|---:|---:|---:|---:|---|---|',
  ];
  for (const c of cases) {
    c.nginx.forEach((n, i) => {
      const g = c.phpgate[i]!;
      for (const [server, r] of [['nginx', n], ['phpgate', g]] as const) {
        rows.push(
          `| ${c.name} | ${i + 1} | ${server} | ${fmtRps(r.rps)} | ${fmtMs(r.meanMs)} | ${fmtMs(r.sdMs)} | ${fmtMs(r.maxMs)} | ${fmtMBs(r.bytesPerSec)} | ${fmtRps(r.succeeded)} | ${r.failed} (${r.errored}, ${r.timeout}) | ${r.tls}, ${r.protocol} |`,
        );
      }
    });
  }
  return rows.join('\n');
}

export function rateLimitTable(r: RateLimitResult): string {
  const off = best(r.off);
  const on = best(r.on);
  const medianRatio = medianRps(r.on) / medianRps(r.off);
  const errors = errorNote('without', r.off, 'with', r.on);
  return [
    '| case | without rules rps | with the rule rps | ratio (with/without), best rounds | ratio of the medians | without p99 | with p99 |',
    '|---|---:|---:|---|---:|---:|---:|',
    `| ${r.name} \`${r.path}\`${errors} | ${fmtRps(off.rps)} | ${fmtRps(on.rps)} | ${cell(rateLimitRatio(r), 'rps', r.target, 2)} | ${medianRatio.toFixed(2)}× | ${fmtMs(off.p99Ms)} | ${fmtMs(on.p99Ms)} |`,
  ].join('\n');
}

function rateLimitRoundsTable(r: RateLimitResult): string {
  const rows = ['| round | phpgate | rps | p50 | p99 | MB/s | errors |', '|---:|---|---:|---:|---:|---:|---|'];
  r.off.forEach((off, i) => {
    for (const [which, w] of [['without rules', off], ['with the rule', r.on[i]!]] as const) {
      rows.push(`| ${i + 1} | ${which} | ${fmtRps(w.rps)} | ${fmtMs(w.p50Ms)} | ${fmtMs(w.p99Ms)} | ${fmtMBs(w.bytesPerSec)} | ${w.errors === 0 ? 0 : w.errorDetail} |`);
    }
  });
  return rows.join('\n');
}

function firstLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 5000 });
  if (r.error) return `(${cmd} not found)`;
  return ((r.stdout ?? '') + (r.stderr ?? '')).split('\n')[0]!.trim();
}

function phpFpmBinary(): string {
  for (const dir of ['/usr/sbin', '/usr/local/sbin']) {
    try {
      const found = readdirSync(dir).filter((n) => /^php-fpm[\d.]*$/.test(n)).sort().reverse()[0];
      if (found !== undefined) return `${dir}/${found}`;
    } catch {
      /* no such dir */
    }
  }
  return 'php-fpm';
}

/** Which phpgate is measured: the commit, and whether the gateway's sources differ from it (ask before the run). */
export function phpgateSource(): string {
  const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', timeout: 5000 });
  if (head.error || head.status !== 0) return '(not a git checkout)';
  const dirty = spawnSync('git', ['status', '--porcelain', '--', 'gateway', 'config', 'php', 'package.json'], { encoding: 'utf8', timeout: 5000 });
  const changed = (dirty.stdout ?? '').split('\n').filter((l) => l.trim() !== '').length;
  return `commit ${head.stdout.trim()}${changed > 0 ? ` plus uncommitted changes to ${changed} file(s) under gateway/, config/, php/ (work in progress at the time of the run)` : ''}`;
}

/**
 * `loadAtStart`, `loadAtEnd`: os.loadavg() before the servers started and after the last run; other work on the
 * machine skews the numbers.
 * `tools`: the load generators used, as "name: version". `source`: phpgateSource() from before the run.
 */
export function machineFacts(tools: string[], loadAtStart: number[], loadAtEnd: number[], source: string): string[] {
  const cpus = os.cpus();
  return [
    `CPUs: ${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown'}`,
    `Memory: ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    `OS: ${os.type()} ${os.release()} (${os.arch()})`,
    `Load average before the run (1/5/15 min): ${loadAtStart.map((l) => l.toFixed(2)).join(' / ')}; after it: ${loadAtEnd.map((l) => l.toFixed(2)).join(' / ')} (the bench's own load counts here too)`,
    `Node: ${process.version}`,
    `nginx: ${firstLine('nginx', ['-v']).replace(/^nginx version:\s*/, '')}`,
    `php-fpm: ${firstLine(phpFpmBinary(), ['-v'])}`,
    `php-cgi (phpgate's workers): ${firstLine('php-cgi', ['-v'])}`,
    `openssl (the test certificate; nginx and node link their own libssl): ${firstLine('openssl', ['version'])}`,
    ...tools,
    `phpgate: ${source}`,
  ];
}

export function markdown(input: ReportInput, facts: string[]): string {
  const { wrk, h2, rateLimit } = input;
  const targets: string[] = [];
  if (wrk?.cases.some((c) => c.path === '/small.css')) targets.push('small files ≥ 1.0× nginx rps');
  if (wrk?.cases.some((c) => c.path === '/big.bin')) targets.push('1 MB files ≥ 0.9× nginx throughput');
  if (h2 !== null) targets.push('HTTP/2 PHP hello and small file ≥ 1.0× nginx rps');
  if (rateLimit !== null) targets.push('rate limiting on (memory store) costs ≤ 5% rps, i.e. ≥ 0.95× phpgate without rules');
  const out = [
    '# phpgate vs nginx + php-fpm',
    '',
    `Run: ${input.date.toISOString()}`,
    '',
    '## Machine',
    '',
    ...facts.map((f) => `- ${f}`),
    '',
    '## Method',
    '',
    '- Same temp docroot for every server: `small.css` (2.7 KB CSS), `big.bin` (1 MB random bytes), `index.php` (`<?php echo "hello";`).',
    '- nginx + php-fpm: `test/anchors/` configs (nginx `worker_processes 2`, `sendfile on`, access log off; php-fpm `pm = static`, 4 workers).',
    '- phpgate: from source (`node --import tsx gateway/cli.ts`), `php: { worker_count: 4, max_requests: 0, queue_limit: 511 }`, `compression` off (as gzip is in the nginx anchor; h2load asks for gzip), `logging: { level: warn }`, one process.',
    '- All on 127.0.0.1, on the same machine as the load generator (so it, nginx, php and node share the CPUs above).',
    '- Each group of cases starts its own servers and stops them when it is done; servers of other groups are not running meanwhile.',
    `- Reported: the best of the rounds per server and case (the round with the highest Requests/sec; its latency and MB/s are shown). Every round is listed below, so the spread is visible.`,
  ];
  if (wrk !== null) {
    out.push(
      `- HTTP/1.1 cases: ${input.warmupS} s wrk warm-up of each server, then ${input.rounds} rounds interleaved (nginx, phpgate, nginx, phpgate, …) so drift hits both alike. Command: \`${wrk.command}\`. MB/s is wrk's Transfer/sec (headers + bodies, MB = 1024² bytes).`,
    );
  }
  if (h2 !== null) {
    out.push(
      `- HTTP/2 cases: a self-signed RSA-2048 certificate made with openssl at run time, the same files for both. nginx gets a second listener \`listen 127.0.0.1:PORT ssl http2;\` (nginx 1.22 syntax) with it, \`ssl_protocols TLSv1.2 TLSv1.3\` (1.22's default stops at TLSv1.2; later nginx versions have this default) and \`keepalive_requests ${h2.keepaliveRequests}\` instead of the anchor's 100000 (nginx closes an HTTP/2 connection with GOAWAY after that many requests; h2load would count the cut streams). phpgate gets \`server.tls\` (HTTP/2 by ALPN, HTTP/1.1 fallback). h2load offers one TLS 1.3 cipher suite, so both servers do the same crypto (left to choose, nginx takes the client's first, AES-128-GCM, and node its own first, AES-256-GCM); each run is checked to have got h2 over TLS 1.3 with it (rounds table). Otherwise TLS settings are both servers' defaults.`,
      `- HTTP/2 runs: ${input.warmupS} s h2load warm-up of each server, then ${input.rounds} rounds interleaved. Command: \`${h2.command}\` (2 threads and 32 connections as the wrk cases, 10 concurrent streams per connection: up to 320 requests in flight; duration mode, so only what completes within the measured seconds counts). The warm-up time inside each run (connections and TLS handshakes) is not measured.`,
      '- HTTP/2 rps is successful (2xx/3xx) requests per second of the measured duration; h2load reports no percentiles, so the latency shown is its "time for request" mean ± sd and max. MB/s is h2load\'s traffic rate (frames, headers and bodies, MB = 1024² bytes). Failed requests (non-2xx/3xx, resets, timeouts) are counted for both servers and shown with the results.',
      '- PHP queueing: phpgate\'s `php.queue_limit` is set to 511, php-fpm\'s default `listen.backlog`, so both queue the 320 requests in flight instead of phpgate answering 503 past its default 200 (which a closed-loop load generator turns into a flood of instant retries).',
    );
  }
  if (rateLimit !== null) {
    out.push(
      `- Rate-limit overhead: two phpgate processes on the same docroot, no nginx: one without \`rate_limit\` rules and one with \`${rateLimit.result.rule}\` (memory store, key: client address, so every request counts against one counter that never reaches its limit). ${input.warmupS} s warm-up each, then ${rateLimit.rounds} rounds interleaved (without, with, without, with, …). Command: \`${rateLimit.command}\`. Both the ratio of the best rounds and the ratio of the median rounds are shown: a 5% threshold is within the round-to-round spread on a shared machine.`,
    );
  }
  out.push('', '## Results', '');
  if (input.skipped.length > 0) out.push(...input.skipped.map((s) => `- Not run: ${s}`), '');
  if (wrk !== null) out.push('### HTTP/1.1 (wrk)', '', table(wrk.cases), '');
  if (h2 !== null) out.push('### HTTP/2 over TLS (h2load)', '', h2Table(h2.cases), '');
  if (rateLimit !== null) out.push('### Rate-limit overhead (phpgate alone, HTTP/1.1, wrk)', '', rateLimitTable(rateLimit.result), '');
  out.push(
    `Targets (from the issues): ${targets.length === 0 ? 'none of the cases run has one' : targets.join('; ')}. PHP hello over HTTP/1.1 has no target; it is shown for reference.`,
    '',
    '### Every round',
    '',
  );
  if (wrk !== null) out.push('HTTP/1.1 (wrk):', '', roundsTable(wrk.cases), '');
  if (h2 !== null) out.push('HTTP/2 over TLS (h2load):', '', h2RoundsTable(h2.cases), '');
  if (rateLimit !== null) out.push(`Rate-limit overhead, ${rateLimit.result.name} (wrk):`, '', rateLimitRoundsTable(rateLimit.result), '');
  out.push(
    '## How to reproduce',
    '',
    `\`${input.reproduce}\` (needs nginx, php-fpm, php-cgi, openssl, wrk and h2load: \`apt-get install -y wrk nghttp2-client\`; no build step, the gateway runs from source).`,
    '',
  );
  return out.join('\n');
}

export async function writeReport(file: string, input: ReportInput, facts: string[]): Promise<void> {
  await writeFile(file, markdown(input, facts));
}
