/** The comparison table (stdout) and bench/RESULTS.md. */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import type { WrkResult } from './wrk.js';

export interface CaseResult {
  name: string;
  path: string;
  /** What the ratio compares, and the target for it (none for PHP). */
  metric: 'rps' | 'throughput';
  target: number | null;
  nginx: WrkResult[];
  phpgate: WrkResult[];
}

export interface ReportInput {
  date: Date;
  wrkCommand: string;
  rounds: number;
  durationS: number;
  warmupS: number;
  cases: CaseResult[];
  reproduce: string;
}

/** The round reported for a server: the one with the highest Requests/sec. */
export function best(runs: WrkResult[]): WrkResult {
  return runs.reduce((a, b) => (b.rps > a.rps ? b : a));
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

function ratioCell(c: CaseResult): string {
  const r = ratio(c);
  const what = c.metric === 'rps' ? 'rps' : 'MB/s';
  if (c.target === null) return `${r.toFixed(2)}× (${what}; no target)`;
  return `**${r.toFixed(2)}×** (${what}; target ≥ ${c.target.toFixed(1)}×: ${r >= c.target ? 'met' : 'NOT met'})`;
}

export function table(cases: CaseResult[]): string {
  const rows = [
    '| case | nginx rps | phpgate rps | ratio (phpgate/nginx) | nginx p99 | phpgate p99 | nginx MB/s | phpgate MB/s |',
    '|---|---:|---:|---|---:|---:|---:|---:|',
  ];
  for (const c of cases) {
    const n = best(c.nginx);
    const g = best(c.phpgate);
    const total = (runs: WrkResult[]) => runs.reduce((a, r) => a + r.errors, 0);
    const errors = total(c.nginx) + total(c.phpgate) > 0
      ? ` ⚠ errors (all rounds): nginx ${total(c.nginx)}, phpgate ${total(c.phpgate)}`
      : '';
    rows.push(
      `| ${c.name} \`${c.path}\`${errors} | ${fmtRps(n.rps)} | ${fmtRps(g.rps)} | ${ratioCell(c)} | ${fmtMs(n.p99Ms)} | ${fmtMs(g.p99Ms)} | ${fmtMBs(n.bytesPerSec)} | ${fmtMBs(g.bytesPerSec)} |`,
    );
  }
  return rows.join('\n');
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

/** `loadAtStart`: os.loadavg() before the servers started; other work on the machine skews the numbers. */
export function machineFacts(wrkVersion: string, loadAtStart: number[]): string[] {
  const cpus = os.cpus();
  return [
    `CPUs: ${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown'}`,
    `Memory: ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    `OS: ${os.type()} ${os.release()} (${os.arch()})`,
    `Load average before the run (1/5/15 min): ${loadAtStart.map((l) => l.toFixed(2)).join(' / ')}`,
    `Node: ${process.version}`,
    `nginx: ${firstLine('nginx', ['-v']).replace(/^nginx version:\s*/, '')}`,
    `php-fpm: ${firstLine(phpFpmBinary(), ['-v'])}`,
    `php-cgi (phpgate's workers): ${firstLine('php-cgi', ['-v'])}`,
    `wrk: ${wrkVersion}`,
  ];
}

export function markdown(input: ReportInput, facts: string[]): string {
  const targets = input.cases.filter((c) => c.target !== null);
  return [
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
    '- Same temp docroot for both: `small.css` (2.7 KB CSS), `big.bin` (1 MB random bytes), `index.php` (`<?php echo "hello";`).',
    '- nginx + php-fpm: `test/anchors/` configs (nginx `worker_processes 2`, `sendfile on`, access log off; php-fpm `pm = static`, 4 workers).',
    '- phpgate: from source (`node --import tsx gateway/cli.ts`), `php: { worker_count: 4, max_requests: 0 }`, `logging: { level: warn }`, one process.',
    '- Both on 127.0.0.1, on the same machine as wrk (so wrk, nginx, php and node share the CPUs above).',
    `- Per case: ${input.warmupS} s wrk warm-up of each server, then ${input.rounds} rounds interleaved (nginx, phpgate, nginx, phpgate, …) so drift hits both alike.`,
    `- Command: \`${input.wrkCommand}\``,
    `- Reported: the best of ${input.rounds} rounds per server and case (the round with the highest Requests/sec; its p99 and MB/s are shown). MB/s is wrk's Transfer/sec (headers + bodies, MB = 1024² bytes).`,
    '',
    '## Results',
    '',
    table(input.cases),
    '',
    `Targets (from the issue): ${targets.length === 0 ? 'none of the cases run has one' : 'small files ≥ 1.0× nginx rps; 1 MB files ≥ 0.9× nginx throughput'}. PHP hello has no target; it is shown for reference.`,
    '',
    '### Every round',
    '',
    roundsTable(input.cases),
    '',
    '## How to reproduce',
    '',
    `\`${input.reproduce}\` (needs nginx, php-fpm, php-cgi and wrk: \`apt-get install -y wrk\`; no build step, the gateway runs from source).`,
    '',
  ].join('\n');
}

export async function writeReport(file: string, input: ReportInput, facts: string[]): Promise<void> {
  await writeFile(file, markdown(input, facts));
}
