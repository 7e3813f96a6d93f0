/**
 * What every case reports in common (a Section: its method, tables, targets), the formatting they share, and
 * bench/RESULTS.md put together from the sections with the machine facts.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';

/** One target from the issues: met or not. The bench reports it and never fails on it. */
export interface Target {
  what: string;
  value: string;
  met: boolean;
}

/** What one group of cases adds to the report. */
export interface Section {
  title: string;
  /** How it was measured: bullet lines (markdown). */
  method: string[];
  /** Markdown blocks: tables and notes. */
  results: string[];
  /** Markdown blocks: every round, so the spread is visible. */
  rounds: string[];
  targets: Target[];
  /** Things worth a look (errors during a run, a case that could not be measured). */
  warnings: string[];
}

export interface ReportInput {
  date: Date;
  facts: string[];
  /** Method lines that hold for every section. */
  method: string[];
  sections: Section[];
  /** Cases asked for but not run, and why (a missing tool). */
  skipped: string[];
  reproduce: string;
}

// ---- statistics over rounds ----

/** The median of the values (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  const v = [...values].sort((a, b) => a - b);
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/** The median of one field over the rounds. */
export function medianOf<R>(runs: readonly R[], field: (r: R) => number): number {
  return median(runs.map(field));
}

/** The round with the highest Requests/sec. */
export function best<R extends { rps: number }>(runs: readonly R[]): R {
  return runs.reduce((a, b) => (b.rps > a.rps ? b : a));
}

/** Every run in the order they ran (round 1 of each side, then round 2, …), for the every-round tables. */
export function inRoundOrder<R>(sides: ReadonlyArray<readonly [string, readonly R[]]>): Array<{ round: number; who: string; run: R }> {
  const rounds = Math.max(0, ...sides.map(([, runs]) => runs.length));
  const out: Array<{ round: number; who: string; run: R }> = [];
  for (let i = 0; i < rounds; i++) {
    for (const [who, runs] of sides) if (i < runs.length) out.push({ round: i + 1, who, run: runs[i]! });
  }
  return out;
}

export function verdict(met: boolean): string {
  return met ? 'met' : 'NOT met';
}

// ---- formatting ----

const MB = 1024 * 1024;
export const fmtRps = (n: number) => Math.round(n).toLocaleString('en-US');
export const fmtMs = (ms: number) => (ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : ms < 1000 ? `${ms.toFixed(2)} ms` : `${(ms / 1000).toFixed(2)} s`);
export const fmtMBs = (b: number) => (b / MB).toFixed(1);
export const fmtMB = (b: number) => `${(b / MB).toFixed(1)} MB`;
export const fmtRatio = (r: number) => `${r.toFixed(2)}×`;
/** Microseconds ('–' for NaN: not measured). */
export const fmtUs = (us: number) => (Number.isNaN(us) ? '–' : `${us.toFixed(0)} µs`);
export const fmtPct = (part: number, whole: number) => (whole === 0 ? '–' : `${((100 * part) / whole).toFixed(1)}%`);

/** A markdown table; `right` marks the columns to right-align (numbers). */
export function mdTable(head: readonly string[], rows: ReadonlyArray<readonly string[]>, right: readonly number[] = []): string {
  const align = head.map((_, i) => (right.includes(i) ? '---:' : '---'));
  return [head, align, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

/** A table column: its head, its cell in a row, and whether it holds numbers (right-aligned). */
export interface Column<R> {
  head: string;
  cell: (row: R) => string;
  right?: boolean;
}

/** A markdown table of `rows`, one cell per column. */
export function columnsTable<R>(columns: ReadonlyArray<Column<R>>, rows: readonly R[]): string {
  return mdTable(
    columns.map((c) => c.head),
    rows.map((r) => columns.map((c) => c.cell(r))),
    columns.flatMap((c, i) => (c.right === true ? [i] : [])),
  );
}

/** "0" for a clean run, else wrk's or h2load's error counts. */
export const fmtErrors = (r: { errors: number; errorDetail: string }) => (r.errors === 0 ? '0' : r.errorDetail);

/** A target line, as both the console and RESULTS.md show it. */
export const fmtTarget = (t: Target) => `${t.what}: ${t.value} — ${verdict(t.met)}`;

// ---- the machine ----

function firstLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 5000 });
  if (r.error) return `(${cmd} not found)`;
  return ((r.stdout ?? '') + (r.stderr ?? '')).split('\n')[0]!.trim();
}

function phpFpmBinary(): string {
  for (const dir of ['/usr/sbin', '/usr/local/sbin']) {
    try {
      const found = readdirSync(dir)
        .filter((n) => /^php-fpm[\d.]*$/.test(n))
        .sort()
        .reverse()[0];
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
 * machine skews the numbers. `tools`: the load generators used, as "name: version". `source`: phpgateSource()
 * from before the run.
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

// ---- RESULTS.md ----

export function markdown(input: ReportInput): string {
  const targets = input.sections.flatMap((s) => s.targets);
  const warnings = input.sections.flatMap((s) => s.warnings);
  const out = ['# phpgate vs nginx + php-fpm', '', `Run: ${input.date.toISOString()}`, '', '## Machine', '', ...input.facts.map((f) => `- ${f}`), ''];
  out.push('## Method', '', ...input.method.map((m) => `- ${m}`), '');
  for (const s of input.sections) out.push(`### ${s.title}`, '', ...s.method.map((m) => `- ${m}`), '');
  out.push('## Results', '');
  if (input.skipped.length > 0) out.push(...input.skipped.map((s) => `- Not run: ${s}`), '');
  if (targets.length > 0) {
    out.push('Targets from the issues (reported, never enforced):', '');
    out.push(
      mdTable(
        ['target', 'this run', 'verdict'],
        targets.map((t) => [t.what, t.value, verdict(t.met)]),
      ),
      '',
    );
  }
  if (warnings.length > 0) out.push(...warnings.map((w) => `- ⚠ ${w}`), '');
  for (const s of input.sections) out.push(`### ${s.title}`, '', ...s.results.flatMap((r) => [r, '']));
  out.push('## Every round', '');
  for (const s of input.sections) if (s.rounds.length > 0) out.push(`### ${s.title}`, '', ...s.rounds.flatMap((r) => [r, '']));
  out.push(
    '## How to reproduce',
    '',
    `\`${input.reproduce}\` (needs nginx, php-fpm, php-cgi, openssl, wrk and h2load; as root the bench installs the missing ones with apt-get; the gateway is compiled from the working tree at the start of the run).`,
    '',
  );
  return out.join('\n');
}

export async function writeReport(file: string, input: ReportInput): Promise<void> {
  await writeFile(file, markdown(input));
}

/** What the console shows of a section once everything has run. */
export function consoleSummary(s: Section): string {
  return [`\n== ${s.title}\n`, ...s.results, '', ...s.targets.map(fmtTarget), ...s.warnings.map((w) => `warning: ${w}`)].join('\n');
}
