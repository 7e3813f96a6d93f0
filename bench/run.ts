/**
 * phpgate vs nginx + php-fpm, side by side on one docroot, measured with wrk.
 *
 *   npm run bench [-- --only small|big|php|static[,...]] [--duration SECONDS]
 *
 * No build step: the gateway runs from source (`node --import tsx gateway/cli.ts`). Needs nginx, php-fpm and
 * php-cgi (as the test suite does) and wrk (`apt-get install -y wrk`). Loopback only; everything it starts is
 * stopped by pid on exit, Ctrl-C or error, and the whole run is bounded in time. Not part of `npm test`:
 * speed is measured and reported here, never asserted.
 *
 * Prints the comparison table and overwrites bench/RESULTS.md with it, the machine facts and the method.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { nginxFpmAvailable, startNginxFpm } from '../test/support/nginx-fpm.js';
import { startPhpgate } from './lib/phpgate.js';
import { machineFacts, ratio, table, writeReport, type CaseResult } from './lib/report.js';
import { runWrk, stopAllWrk, wrkCommandLine, wrkVersion, type WrkOptions, type WrkResult } from './lib/wrk.js';

const RESULTS = fileURLToPath(new URL('./RESULTS.md', import.meta.url));
const WORKERS = 4;
const ROUNDS = 2;
const WARMUP_S = 2;
const SMALL_CSS_BYTES = 2700;
const BIG_BYTES = 1024 * 1024;

interface Case {
  name: string;
  path: string;
  metric: CaseResult['metric'];
  target: number | null;
}

const CASES: Case[] = [
  { name: 'small file (2.7 KB)', path: '/small.css', metric: 'rps', target: 1.0 },
  { name: '1 MB file', path: '/big.bin', metric: 'throughput', target: 0.9 },
  { name: 'PHP hello', path: '/index.php', metric: 'rps', target: null },
];
const SELECTORS: Record<string, string[]> = {
  small: ['/small.css'],
  big: ['/big.bin'],
  php: ['/index.php'],
  static: ['/small.css', '/big.bin'],
  all: CASES.map((c) => c.path),
};

const USAGE = `Usage: npm run bench [-- --only ${Object.keys(SELECTORS).join('|')}[,...]] [--duration SECONDS]
  --only       cases to run (default: all): small = 2.7 KB CSS, big = 1 MB file, php = PHP hello, static = small,big
  --duration   seconds per wrk run (default 10); each case runs ${ROUNDS} rounds per server after a ${WARMUP_S} s warm-up
`;

function usage(message: string): never {
  process.stderr.write(`bench: ${message}\n${USAGE}`);
  process.exit(2);
}

function parseCli(): { cases: Case[]; durationS: number; only: string | undefined } {
  let values;
  try {
    ({ values } = parseArgs({
      options: { only: { type: 'string' }, duration: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (err) {
    usage((err as Error).message);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const durationS = Number(values.duration ?? 10);
  if (!Number.isInteger(durationS) || durationS < 1 || durationS > 300) usage('--duration must be a whole number of seconds from 1 to 300');
  const wanted = new Set<string>();
  for (const sel of (values.only ?? 'all').split(',').map((s) => s.trim())) {
    const paths = SELECTORS[sel];
    if (paths === undefined) usage(`unknown case "${sel}"`);
    paths.forEach((p) => wanted.add(p));
  }
  return { cases: CASES.filter((c) => wanted.has(c.path)), durationS, only: values.only };
}

/** ~2.7 KB of plausible CSS, exactly SMALL_CSS_BYTES long. */
function smallCss(): string {
  let css = '';
  for (let i = 0; css.length < SMALL_CSS_BYTES - 200; i++) {
    css += `.card-${i} { margin: 0 auto; padding: ${i % 7}px ${i % 5}px; color: #${(0x123456 + i * 4099).toString(16).slice(-6)}; }\n`;
  }
  const pad = SMALL_CSS_BYTES - css.length - '/*  */\n'.length;
  return `${css}/* ${'-'.repeat(pad)} */\n`;
}

function get(port: number, urlPath: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${urlPath} timed out`)));
    req.on('error', reject);
  });
}

// ---- cleanup: everything started registers how to stop it; shutdown() runs that once, newest first ----

const cleanups: Array<() => Promise<void>> = [];
let shuttingDown: Promise<never> | undefined;

function shutdown(code: number, why?: string): Promise<never> {
  shuttingDown ??= (async () => {
    if (why !== undefined) process.stderr.write(`bench: ${why}\n`);
    stopAllWrk();
    for (const stop of cleanups.reverse()) {
      try {
        await stop();
      } catch (err) {
        process.stderr.write(`bench: while stopping: ${(err as Error).message}\n`);
      }
    }
    process.exit(code);
  })();
  return shuttingDown;
}

for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
  process.on(sig, () => void shutdown(code, `${sig}: stopping everything`));
}

async function main(): Promise<void> {
  const { cases, durationS, only } = parseCli();
  const wrkVer = wrkVersion();
  if (wrkVer === null) usage('wrk not found; install it: apt-get install -y wrk');
  const avail = nginxFpmAvailable();
  if (!avail.ok) usage(avail.reason);
  const loadAtStart = os.loadavg();

  // Bounded: start-up and shut-down allowance plus every wrk run, then stop whatever is still going.
  const expectedS = cases.length * 2 * (WARMUP_S + 1 + ROUNDS * (durationS + 1));
  const deadline = setTimeout(() => void shutdown(1, `gave up: still running after ${expectedS + 120} s`), (expectedS + 120) * 1000);
  deadline.unref();

  const docroot = await mkdtemp(path.join(os.tmpdir(), 'phpgate-bench-docroot-'));
  cleanups.push(() => rm(docroot, { recursive: true, force: true }));
  const css = smallCss();
  const big = randomBytes(BIG_BYTES);
  await writeFile(path.join(docroot, 'small.css'), css);
  await writeFile(path.join(docroot, 'big.bin'), big);
  await writeFile(path.join(docroot, 'index.php'), '<?php echo "hello";');
  const expected: Record<string, Buffer> = { '/small.css': Buffer.from(css), '/big.bin': big, '/index.php': Buffer.from('hello') };

  console.log(`starting nginx + php-fpm (${WORKERS} workers) and phpgate (${WORKERS} workers) on ${docroot}`);
  const nginx = await startNginxFpm(docroot, { workers: WORKERS });
  cleanups.push(() => nginx.stop());
  const gw = await startPhpgate(docroot, { workers: WORKERS });
  cleanups.push(() => gw.stop());
  const servers = [
    { name: 'nginx', port: nginx.port },
    { name: 'phpgate', port: gw.port },
  ] as const;
  console.log(`nginx on 127.0.0.1:${nginx.port}, phpgate on 127.0.0.1:${gw.port} (pid ${gw.pid})`);

  // Both must serve the same bytes, or the comparison means nothing.
  for (const c of cases) {
    for (const s of servers) {
      const res = await get(s.port, c.path);
      if (res.status !== 200 || !res.body.equals(expected[c.path]!)) {
        throw new Error(`${s.name} GET ${c.path}: status ${res.status}, ${res.body.length} bytes (expected 200 and the file's ${expected[c.path]!.length} bytes)`);
      }
    }
  }

  const wrkOpts: WrkOptions = { threads: 2, connections: 32, durationS };
  const run = async (port: number, c: Case, o: WrkOptions): Promise<WrkResult> => {
    const r = await runWrk(`http://127.0.0.1:${port}${c.path}`, o);
    if (!gw.alive()) throw new Error(`phpgate died during ${c.path}; its log:\n${await gw.logTail()}`);
    return r;
  };
  const results: CaseResult[] = [];
  for (const c of cases) {
    console.log(`\n${c.name} (${c.path}): warm-up ${WARMUP_S} s each, then ${ROUNDS} × ${durationS} s per server, interleaved`);
    for (const s of servers) await run(s.port, c, { ...wrkOpts, durationS: WARMUP_S });
    const result: CaseResult = { name: c.name, path: c.path, metric: c.metric, target: c.target, nginx: [], phpgate: [] };
    for (let round = 1; round <= ROUNDS; round++) {
      for (const s of servers) {
        const r = await run(s.port, c, wrkOpts);
        result[s.name].push(r);
        const errors = r.errors > 0 ? `, errors: ${r.errorDetail}` : '';
        console.log(`  round ${round} ${s.name.padEnd(7)} ${Math.round(r.rps).toString().padStart(7)} rps  p99 ${r.p99Ms.toFixed(2)} ms  ${(r.bytesPerSec / 1024 ** 2).toFixed(1)} MB/s${errors}`);
      }
    }
    results.push(result);
  }

  const reproduce = `npm run bench -- ${only === undefined ? '' : `--only ${only} `}--duration ${durationS}`;
  const facts = machineFacts(wrkVer, loadAtStart);
  await writeReport(RESULTS, {
    date: new Date(),
    wrkCommand: wrkCommandLine(wrkOpts),
    rounds: ROUNDS,
    durationS,
    warmupS: WARMUP_S,
    cases: results,
    reproduce,
  }, facts);

  console.log(`\nbest of ${ROUNDS} rounds per server (highest Requests/sec), ${wrkCommandLine(wrkOpts)}\n`);
  console.log(table(results));
  for (const c of results.filter((x) => x.target !== null)) {
    const r = ratio(c);
    console.log(`${c.name}: ${r.toFixed(2)}× nginx ${c.metric === 'rps' ? 'rps' : 'throughput'} (target ≥ ${c.target!.toFixed(1)}×: ${r >= c.target! ? 'met' : 'NOT met'})`);
  }
  const withErrors = results.filter((c) => [...c.nginx, ...c.phpgate].some((r) => r.errors > 0));
  if (withErrors.length > 0) console.log(`warning: wrk saw errors during ${withErrors.map((c) => c.path).join(', ')} (every round is in RESULTS.md)`);
  console.log(`\nwritten: ${path.relative(process.cwd(), RESULTS)}`);
}

main().then(
  () => shutdown(0),
  (err: unknown) => shutdown(1, err instanceof Error ? err.message : String(err)),
);
