/**
 * phpgate vs nginx + php-fpm, side by side on one docroot: HTTP/1.1 measured with wrk, HTTP/2 over TLS with
 * h2load, and phpgate's rate-limiting overhead (phpgate with and without a rule, wrk).
 *
 *   npm run bench [-- --only small|big|php|static|h2|h2-small|h2-php|ratelimit[,...]] [--duration SECONDS]
 *
 * No build step: the gateway runs from source (`node --import tsx gateway/cli.ts`). Needs nginx, php-fpm, php-cgi
 * and openssl (as the test suite does), wrk (`apt-get install -y wrk`) and h2load (`apt-get install -y
 * nghttp2-client`); it installs nothing: cases whose load generator is missing are skipped with that hint.
 * Loopback only; everything it starts is stopped by pid on exit, Ctrl-C or error, and the whole run is bounded in
 * time. Not part of `npm test`: speed is measured and reported here, never asserted.
 *
 * Prints the comparison tables and overwrites bench/RESULTS.md with them, the machine facts and the method.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { selfSigned } from '../test/support/certs.js';
import { nginxFpmAvailable, startNginxFpm } from '../test/support/nginx-fpm.js';
import { H2LOAD_MISSING, h2loadCommandLine, h2loadVersion, runH2load, type H2loadOptions, type H2loadResult } from './lib/h2load.js';
import { startPhpgate, type Phpgate } from './lib/phpgate.js';
import {
  h2Ratio,
  h2Table,
  machineFacts,
  medianRps,
  phpgateSource,
  rateLimitRatio,
  rateLimitTable,
  ratio,
  table,
  verdict,
  writeReport,
  type CaseResult,
  type H2CaseResult,
  type RateLimitResult,
  type ReportInput,
} from './lib/report.js';
import { stopAllTools } from './lib/tool.js';
import { WRK_MISSING, runWrk, wrkCommandLine, wrkVersion, type WrkOptions, type WrkResult } from './lib/wrk.js';

const RESULTS = fileURLToPath(new URL('./RESULTS.md', import.meta.url));
const WORKERS = 4;
const ROUNDS = 2;
/** The rate-limit target (≤ 5% overhead) is finer than the spread between two rounds: more rounds there. */
const RATE_LIMIT_ROUNDS = 4;
const WARMUP_S = 2;
/** h2load's --warm-up-time inside every run: connections and TLS handshakes, not measured. */
const H2_RUN_WARMUP_S = 1;
/** nginx closes an HTTP/2 connection (GOAWAY) after keepalive_requests requests; far above what a run sends. */
const NGINX_H2_KEEPALIVE_REQUESTS = 1_000_000;
/**
 * The one TLS 1.3 suite h2load offers. Left to choose, nginx takes the client's first (AES-128-GCM, as browsers
 * list it too) and node its own (AES-256-GCM): pinned, both do the same crypto.
 */
const TLS13_CIPHER = 'TLS_AES_128_GCM_SHA256';
const SMALL_CSS_BYTES = 2700;
const BIG_BYTES = 1024 * 1024;
/** Never refuses: a billion requests per second from one client. */
const RATE_RULE = { pattern: '/*', points: 1_000_000_000, duration_s: 1 };
const PROBE_PATH = '/rate-limit-probe';
const PROBE_RULE = { pattern: PROBE_PATH, points: 1, duration_s: 60 };
const RATE_RULE_YAML = `rate_limit: { rules: [{ pattern: "${RATE_RULE.pattern}", points: ${RATE_RULE.points}, duration_s: ${RATE_RULE.duration_s} }] }`;

type Kind = 'wrk' | 'h2' | 'ratelimit';

interface Case {
  id: string;
  kind: Kind;
  name: string;
  path: string;
  metric: CaseResult['metric'];
  target: number | null;
}

const CASES: Case[] = [
  { id: 'small', kind: 'wrk', name: 'small file (2.7 KB)', path: '/small.css', metric: 'rps', target: 1.0 },
  { id: 'big', kind: 'wrk', name: '1 MB file', path: '/big.bin', metric: 'throughput', target: 0.9 },
  { id: 'php', kind: 'wrk', name: 'PHP hello', path: '/index.php', metric: 'rps', target: null },
  { id: 'h2-small', kind: 'h2', name: 'small file (2.7 KB) over HTTP/2', path: '/small.css', metric: 'rps', target: 1.0 },
  { id: 'h2-php', kind: 'h2', name: 'PHP hello over HTTP/2', path: '/index.php', metric: 'rps', target: 1.0 },
  { id: 'ratelimit', kind: 'ratelimit', name: 'small file (2.7 KB), rate limiting on vs off', path: '/small.css', metric: 'rps', target: 0.95 },
];
const SELECTORS: Record<string, string[]> = {
  small: ['small'],
  big: ['big'],
  php: ['php'],
  static: ['small', 'big'],
  h2: ['h2-small', 'h2-php'],
  'h2-small': ['h2-small'],
  'h2-php': ['h2-php'],
  ratelimit: ['ratelimit'],
  all: CASES.map((c) => c.id),
};

const USAGE = `Usage: npm run bench [-- --only ${Object.keys(SELECTORS).join('|')}[,...]] [--duration SECONDS]
  --only       cases to run (default: all):
                 small = 2.7 KB CSS, big = 1 MB file, php = PHP hello (HTTP/1.1, wrk, nginx vs phpgate);
                 static = small,big;
                 h2-small, h2-php = the small file and PHP hello over HTTP/2 + TLS (h2load, nginx vs phpgate); h2 = both;
                 ratelimit = phpgate with one never-refusing memory-store rule vs without rules (small file, wrk)
  --duration   seconds per measured run (default 10); each case runs ${ROUNDS} rounds per server (ratelimit: ${RATE_LIMIT_ROUNDS})
               after a ${WARMUP_S} s warm-up
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
    const ids = SELECTORS[sel];
    if (ids === undefined) usage(`unknown case "${sel}"`);
    ids.forEach((id) => wanted.add(id));
  }
  return { cases: CASES.filter((c) => wanted.has(c.id)), durationS, only: values.only };
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

interface Got {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** The ALPN protocol of an HTTPS request ('h2'), '' for plain HTTP. */
  alpn: string;
}

function get(port: number, urlPath: string): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), alpn: '' }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${urlPath} timed out`)));
    req.on('error', reject);
  });
}

/** One HTTP/2 GET over TLS, trusting only `ca` (the bench's self-signed certificate). */
function getH2(port: number, urlPath: string, ca: Buffer): Promise<Got> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { ca, ALPNProtocols: ['h2'] });
    const fail = (err: Error) => {
      session.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(`h2 GET ${urlPath} timed out`)), 5000);
    session.once('error', fail);
    const stream = session.request({ ':path': urlPath });
    let headers: Got['headers'] = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (headers = h));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.once('error', fail);
    stream.on('end', () => {
      clearTimeout(timer);
      const alpn = session.alpnProtocol ?? '';
      session.close();
      resolve({ status: Number(headers[':status'] ?? 0), headers, body: Buffer.concat(chunks), alpn });
    });
  });
}

// ---- cleanup: everything started registers how to stop it; shutdown() runs that once, newest first ----

const cleanups: Array<() => Promise<void>> = [];
let shuttingDown: Promise<never> | undefined;

function shutdown(code: number, why?: string): Promise<never> {
  shuttingDown ??= (async () => {
    if (why !== undefined) process.stderr.write(`bench: ${why}\n`);
    stopAllTools();
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

/** Checks a response is the file's exact bytes; the comparison means nothing otherwise. */
function checkSame(who: string, urlPath: string, res: Got, expected: Buffer): void {
  if (res.status !== 200 || !res.body.equals(expected)) {
    throw new Error(`${who} GET ${urlPath}: status ${res.status}, ${res.body.length} bytes (expected 200 and the file's ${expected.length} bytes)`);
  }
}

/** Waits for a server to start and registers its stop() with the cleanup (stop() is idempotent, so a group may stop it early). */
async function started<T extends { stop(): Promise<void> }>(start: Promise<T>): Promise<T> {
  const server = await start;
  cleanups.push(() => server.stop());
  return server;
}

function alive(gws: Phpgate[], what: string): Promise<void> {
  const dead = gws.find((g) => !g.alive());
  return dead === undefined ? Promise.resolve() : dead.logTail().then((log) => Promise.reject(new Error(`phpgate died during ${what}; its log:\n${log}`)));
}

const fmtRound = (round: number, who: string, rps: number, rest: string) =>
  `  round ${round} ${who.padEnd(8)} ${Math.round(rps).toString().padStart(7)} rps  ${rest}`;

async function main(): Promise<void> {
  const { cases: asked, durationS, only } = parseCli();
  const skipped: string[] = [];
  const tools: string[] = [];
  let cases = asked;
  if (cases.some((c) => c.kind !== 'h2')) {
    const wrkVer = wrkVersion();
    if (wrkVer === null) {
      process.stderr.write(`bench: ${WRK_MISSING}; skipping the wrk cases\n`);
      skipped.push(`${cases.filter((c) => c.kind !== 'h2').map((c) => c.id).join(', ')}: wrk not installed (\`apt-get install -y wrk\`)`);
      cases = cases.filter((c) => c.kind === 'h2');
    } else {
      tools.push(`wrk: ${wrkVer}`);
    }
  }
  if (cases.some((c) => c.kind === 'h2')) {
    const h2Ver = h2loadVersion();
    if (h2Ver === null) {
      process.stderr.write(`bench: ${H2LOAD_MISSING}; skipping the HTTP/2 cases\n`);
      skipped.push(`${cases.filter((c) => c.kind === 'h2').map((c) => c.id).join(', ')}: h2load not installed (\`apt-get install -y nghttp2-client\`)`);
      cases = cases.filter((c) => c.kind !== 'h2');
    } else {
      tools.push(`h2load: ${h2Ver}`);
    }
  }
  if (cases.length === 0) usage('nothing left to run: install the load generator named above');
  if (cases.some((c) => c.kind !== 'ratelimit')) {
    const avail = nginxFpmAvailable();
    if (!avail.ok) usage(avail.reason);
  }
  const loadAtStart = os.loadavg();
  const source = phpgateSource();
  const wrkCases = cases.filter((c) => c.kind === 'wrk');
  const h2Cases = cases.filter((c) => c.kind === 'h2');
  const rlCases = cases.filter((c) => c.kind === 'ratelimit');

  // Bounded: start-up and shut-down allowance per group plus every measured run, then stop whatever is still going.
  const groups = [wrkCases, h2Cases, rlCases].filter((g) => g.length > 0).length;
  const expectedS =
    wrkCases.length * 2 * (WARMUP_S + 1 + ROUNDS * (durationS + 1)) +
    h2Cases.length * 2 * (H2_RUN_WARMUP_S + WARMUP_S + 1 + ROUNDS * (H2_RUN_WARMUP_S + durationS + 1)) +
    rlCases.length * 2 * (WARMUP_S + 1 + RATE_LIMIT_ROUNDS * (durationS + 1));
  const limitS = expectedS + 60 + 60 * groups;
  const deadline = setTimeout(() => void shutdown(1, `gave up: still running after ${limitS} s`), limitS * 1000);
  deadline.unref();

  const docroot = await mkdtemp(path.join(os.tmpdir(), 'phpgate-bench-docroot-'));
  cleanups.push(() => rm(docroot, { recursive: true, force: true }));
  const css = smallCss();
  const big = randomBytes(BIG_BYTES);
  await writeFile(path.join(docroot, 'small.css'), css);
  await writeFile(path.join(docroot, 'big.bin'), big);
  await writeFile(path.join(docroot, 'index.php'), '<?php echo "hello";');
  const expected: Record<string, Buffer> = { '/small.css': Buffer.from(css), '/big.bin': big, '/index.php': Buffer.from('hello') };

  const wrkOpts: WrkOptions = { threads: 2, connections: 32, durationS };
  const h2Opts: H2loadOptions = { threads: 2, connections: 32, streams: 10, durationS, warmupS: H2_RUN_WARMUP_S, tls13Cipher: TLS13_CIPHER };
  const report: ReportInput = {
    date: new Date(),
    rounds: ROUNDS,
    durationS,
    warmupS: WARMUP_S,
    wrk: null,
    h2: null,
    rateLimit: null,
    skipped,
    reproduce: `npm run bench -- ${only === undefined ? '' : `--only ${only} `}--duration ${durationS}`,
  };

  // ---- HTTP/1.1, wrk: nginx vs phpgate ----
  if (wrkCases.length > 0) {
    console.log(`starting nginx + php-fpm (${WORKERS} workers) and phpgate (${WORKERS} workers) on ${docroot}`);
    const nginx = await started(startNginxFpm(docroot, { workers: WORKERS }));
    const gw = await started(startPhpgate(docroot, { workers: WORKERS }));
    const servers = [
      { name: 'nginx', port: nginx.port },
      { name: 'phpgate', port: gw.port },
    ] as const;
    console.log(`nginx on 127.0.0.1:${nginx.port}, phpgate on 127.0.0.1:${gw.port} (pid ${gw.pid})`);
    for (const c of wrkCases) for (const s of servers) checkSame(s.name, c.path, await get(s.port, c.path), expected[c.path]!);

    const run = async (port: number, c: Case, o: WrkOptions): Promise<WrkResult> => {
      const r = await runWrk(`http://127.0.0.1:${port}${c.path}`, o);
      await alive([gw], c.path);
      return r;
    };
    const results: CaseResult[] = [];
    for (const c of wrkCases) {
      console.log(`\n${c.name} (${c.path}): warm-up ${WARMUP_S} s each, then ${ROUNDS} × ${durationS} s per server, interleaved`);
      for (const s of servers) await run(s.port, c, { ...wrkOpts, durationS: WARMUP_S });
      const result: CaseResult = { name: c.name, path: c.path, metric: c.metric, target: c.target, nginx: [], phpgate: [] };
      for (let round = 1; round <= ROUNDS; round++) {
        for (const s of servers) {
          const r = await run(s.port, c, wrkOpts);
          result[s.name].push(r);
          const errors = r.errors > 0 ? `, errors: ${r.errorDetail}` : '';
          console.log(fmtRound(round, s.name, r.rps, `p99 ${r.p99Ms.toFixed(2)} ms  ${(r.bytesPerSec / 1024 ** 2).toFixed(1)} MB/s${errors}`));
        }
      }
      results.push(result);
    }
    report.wrk = { command: wrkCommandLine(wrkOpts), cases: results };
    await gw.stop();
    await nginx.stop();
  }

  // ---- HTTP/2 over TLS, h2load: nginx vs phpgate, same certificate ----
  if (h2Cases.length > 0) {
    const certDir = await mkdtemp(path.join(os.tmpdir(), 'phpgate-bench-cert-'));
    cleanups.push(() => rm(certDir, { recursive: true, force: true }));
    const tls = selfSigned(certDir, 'bench');
    const ca = await readFile(tls.cert);
    console.log(`\nstarting nginx + php-fpm with a TLS + HTTP/2 listener and phpgate with server.tls (${WORKERS} workers each)`);
    const nginx = await started(startNginxFpm(docroot, { workers: WORKERS, tls, keepaliveRequests: NGINX_H2_KEEPALIVE_REQUESTS }));
    const gw = await started(startPhpgate(docroot, { workers: WORKERS, tls }));
    const servers = [
      { name: 'nginx', port: nginx.tlsPort! },
      { name: 'phpgate', port: gw.port },
    ] as const;
    console.log(`nginx on https://127.0.0.1:${nginx.tlsPort}, phpgate on https://127.0.0.1:${gw.port} (pid ${gw.pid})`);
    for (const c of h2Cases) {
      for (const s of servers) {
        const res = await getH2(s.port, c.path, ca);
        if (res.alpn !== 'h2') throw new Error(`${s.name}: ALPN gave "${res.alpn}", not h2`);
        checkSame(`${s.name} (h2)`, c.path, res, expected[c.path]!);
      }
    }

    const run = async (port: number, c: Case, o: H2loadOptions): Promise<H2loadResult> => {
      const r = await runH2load(`https://127.0.0.1:${port}${c.path}`, o);
      await alive([gw], `${c.path} over HTTP/2`);
      return r;
    };
    const results: H2CaseResult[] = [];
    for (const c of h2Cases) {
      console.log(`\n${c.name} (${c.path}): warm-up ${WARMUP_S} s each, then ${ROUNDS} × ${durationS} s per server, interleaved`);
      for (const s of servers) await run(s.port, c, { ...h2Opts, durationS: WARMUP_S });
      const result: H2CaseResult = { name: c.name, path: c.path, target: c.target, nginx: [], phpgate: [] };
      for (let round = 1; round <= ROUNDS; round++) {
        for (const s of servers) {
          const r = await run(s.port, c, h2Opts);
          result[s.name].push(r);
          const errors = r.errors > 0 ? `, errors: ${r.errorDetail}` : '';
          console.log(fmtRound(round, s.name, r.rps, `mean ${r.meanMs.toFixed(2)} ms ± ${r.sdMs.toFixed(2)} (max ${r.maxMs.toFixed(1)} ms)  ${(r.bytesPerSec / 1024 ** 2).toFixed(1)} MB/s${errors}`));
        }
      }
      results.push(result);
    }
    report.h2 = { command: h2loadCommandLine(h2Opts), cases: results, keepaliveRequests: NGINX_H2_KEEPALIVE_REQUESTS };
    await gw.stop();
    await nginx.stop();
  }

  // ---- Rate-limit overhead: phpgate without rules vs with one never-refusing rule ----
  for (const c of rlCases) {
    console.log(`\nstarting two phpgates (${WORKERS} workers each): without rate_limit rules, and with ${RATE_RULE_YAML}`);
    const off = await started(startPhpgate(docroot, { workers: WORKERS }));
    const on = await started(startPhpgate(docroot, { workers: WORKERS, rateLimit: [RATE_RULE, PROBE_RULE] }));
    const gws = [
      { name: 'without', gw: off },
      { name: 'with', gw: on },
    ] as const;
    console.log(`without rules on 127.0.0.1:${off.port} (pid ${off.pid}), with the rule on 127.0.0.1:${on.port} (pid ${on.pid})`);
    for (const { name, gw } of gws) {
      const res = await get(gw.port, c.path);
      checkSame(`phpgate ${name} rules`, c.path, res, expected[c.path]!);
      // The rule is in force (RateLimit-* only come with 429s by default): a second, one-point rule on a probe
      // path refuses its second request; the measured path matches only the never-refusing rule.
      await get(gw.port, PROBE_PATH);
      const limited = (await get(gw.port, PROBE_PATH)).status === 429;
      if (limited !== (name === 'with')) throw new Error(`phpgate ${name} rules: the rate limiter is ${limited ? 'on' : 'off'}`);
    }
    const run = async (port: number, o: WrkOptions): Promise<WrkResult> => {
      const r = await runWrk(`http://127.0.0.1:${port}${c.path}`, o);
      await alive([off, on], `${c.path} (rate-limit case)`);
      return r;
    };
    console.log(`\n${c.name} (${c.path}): warm-up ${WARMUP_S} s each, then ${RATE_LIMIT_ROUNDS} × ${durationS} s per gateway, interleaved`);
    for (const { gw } of gws) await run(gw.port, { ...wrkOpts, durationS: WARMUP_S });
    const result: RateLimitResult = { name: c.name, path: c.path, rule: RATE_RULE_YAML, target: c.target!, off: [], on: [] };
    for (let round = 1; round <= RATE_LIMIT_ROUNDS; round++) {
      for (const { name, gw } of gws) {
        const r = await run(gw.port, wrkOpts);
        result[name === 'with' ? 'on' : 'off'].push(r);
        const errors = r.errors > 0 ? `, errors: ${r.errorDetail}` : '';
        console.log(fmtRound(round, name, r.rps, `p99 ${r.p99Ms.toFixed(2)} ms${errors}`));
      }
    }
    report.rateLimit = { command: wrkCommandLine(wrkOpts), rounds: RATE_LIMIT_ROUNDS, result };
    await on.stop();
    await off.stop();
  }

  await writeReport(RESULTS, report, machineFacts(tools, loadAtStart, os.loadavg(), source));

  console.log(`\nbest of the rounds per server (highest Requests/sec)`);
  if (report.wrk !== null) {
    console.log(`\nHTTP/1.1: ${report.wrk.command}\n`);
    console.log(table(report.wrk.cases));
    for (const c of report.wrk.cases.filter((x) => x.target !== null)) {
      console.log(`${c.name}: ${ratio(c).toFixed(2)}× nginx ${c.metric === 'rps' ? 'rps' : 'throughput'} (target ≥ ${c.target!.toFixed(1)}×: ${verdict(ratio(c), c.target!)})`);
    }
  }
  if (report.h2 !== null) {
    console.log(`\nHTTP/2: ${report.h2.command}\n`);
    console.log(h2Table(report.h2.cases));
    for (const c of report.h2.cases.filter((x) => x.target !== null)) {
      console.log(`${c.name}: ${h2Ratio(c).toFixed(2)}× nginx rps (target ≥ ${c.target!.toFixed(1)}×: ${verdict(h2Ratio(c), c.target!)})`);
    }
  }
  if (report.rateLimit !== null) {
    const r = report.rateLimit.result;
    console.log(`\nrate limiting: ${report.rateLimit.command}\n`);
    console.log(rateLimitTable(r));
    console.log(`with/without: ${rateLimitRatio(r).toFixed(3)}× (best rounds), ${(medianRps(r.on) / medianRps(r.off)).toFixed(3)}× (medians); target ≥ ${r.target}×: ${verdict(rateLimitRatio(r), r.target)}`);
  }
  const withErrors = [
    ...(report.wrk?.cases ?? []).filter((c) => [...c.nginx, ...c.phpgate].some((r) => r.errors > 0)).map((c) => c.name),
    ...(report.h2?.cases ?? []).filter((c) => [...c.nginx, ...c.phpgate].some((r) => r.errors > 0)).map((c) => c.name),
    ...(report.rateLimit !== null && [...report.rateLimit.result.off, ...report.rateLimit.result.on].some((r) => r.errors > 0) ? [report.rateLimit.result.name] : []),
  ];
  if (withErrors.length > 0) console.log(`warning: the load generator saw errors during ${withErrors.join('; ')} (every round is in RESULTS.md)`);
  for (const s of skipped) console.log(`not run: ${s}`);
  console.log(`\nwritten: ${path.relative(process.cwd(), RESULTS)}`);
}

main().then(
  () => shutdown(0),
  (err: unknown) => shutdown(1, err instanceof Error ? err.message : String(err)),
);
