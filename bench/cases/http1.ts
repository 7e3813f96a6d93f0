/**
 * HTTP/1.1 with wrk, nginx + php-fpm against phpgate on one pair of servers: static files, PHP pages, a JSON POST,
 * a multipart upload, and a PHP page both answer from their response cache (nginx fastcgi_cache, phpgate cache).
 * The small file is measured against a ceiling too: a bare node:http server answering the same bytes from memory.
 */
import path from 'node:path';
import { checkSameHeaders, copiedHeaders, keepAliveTimeoutMs, startBare, type BareServer } from '../lib/bare.js';
import type { Group } from '../lib/group.js';
import { checkBody, header, request, type Got } from '../lib/http.js';
import {
  columnsTable,
  fmtErrors,
  fmtMB,
  fmtMBs,
  fmtMs,
  fmtRatio,
  fmtRps,
  fmtUs,
  inRoundOrder,
  mdTable,
  medianOf,
  best,
  type Column,
  type Section,
  type Target,
} from '../lib/report.js';
import {
  bareSide,
  cpuPerRequestUs,
  fmtRound,
  interleave,
  measureWrk,
  startPair,
  type Context,
  type Measured,
  type ServerName,
  type Side,
} from '../lib/servers.js';
import { LUA_DIR, type Body, type Site } from '../lib/site.js';
import { wrkCommandLine, type WrkOptions } from '../lib/wrk.js';

interface Http1Case {
  id: string;
  name: string;
  path: string;
  /** What the ratio compares: requests/s, or bytes/s for the large file. */
  metric: 'rps' | 'throughput';
  /** The issue's target on the ratio of the medians; `p99`: phpgate's p99 must also be at most nginx's. */
  target?: { ratio: number; p99?: boolean };
  /** The issue's target on phpgate's own median rps. */
  minRps?: number;
  /** The target on phpgate's rps over the bare node:http server's (the ceiling), which is then measured too. */
  ceiling?: number;
  /** Sent with every request (bench/lua/body.lua). */
  body?: (site: Site) => Body;
  /** What both must answer (200 and these bytes), or 'same': 200 and the same bytes from both. */
  // eslint-disable-next-line @typescript-eslint/no-redundant-type-constituents -- 'same' is named for the reader: a marker, not any string
  expect: (site: Site) => Buffer | string | 'same';
  /** Answered from the servers' response caches: checked to be cache hits before it is measured. */
  cached?: boolean;
}

const CASES: readonly Http1Case[] = [
  {
    id: 'small',
    name: 'small file (2.7 KB)',
    path: '/small.css',
    metric: 'rps',
    target: { ratio: 1.0 },
    ceiling: 0.85,
    expect: (s) => s.files['/small.css']!,
  },
  { id: 'big', name: '1 MB file', path: '/big.bin', metric: 'throughput', target: { ratio: 0.9 }, expect: (s) => s.files['/big.bin']! },
  { id: 'php', name: 'PHP hello', path: '/index.php', metric: 'rps', target: { ratio: 1.25, p99: true }, expect: () => 'hello' },
  { id: 'realistic', name: 'realistic PHP page (~20 KB)', path: '/realistic.php', metric: 'rps', target: { ratio: 1.1 }, expect: () => 'same' },
  { id: 'json-post', name: 'JSON POST (1 KB)', path: '/json.php', metric: 'rps', body: (s) => s.json, expect: () => 'same' },
  { id: 'upload', name: '100 KB multipart upload', path: '/upload.php', metric: 'rps', body: (s) => s.upload, expect: (s) => s.upload.expected },
  { id: 'cached', name: 'cached PHP page (~20 KB)', path: '/cached.php', metric: 'rps', minRps: 20_000, expect: () => 'same', cached: true },
];

/** nginx's response cache for the cached case only (an exact location: the other PHP cases are not cached). */
const NGINX_CACHE_HTTP = ['fastcgi_cache_path RUN/cache levels=1:2 keys_zone=bench:10m max_size=64m inactive=10m;'];
const NGINX_CACHE_LOCATION = [
  'location = /cached.php {',
  '  include /etc/nginx/fastcgi_params;',
  '  fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;',
  '  fastcgi_pass php;',
  '  fastcgi_cache bench;',
  '  fastcgi_cache_key "$scheme$request_method$host$request_uri";',
  '  fastcgi_cache_valid 200 60s;',
  '  fastcgi_cache_lock on;',
  '  add_header X-Cache-Status $upstream_cache_status;',
  '}',
];
const PHPGATE_CACHE = { max_mb: 64, rules: [{ pattern: '/cached.php', ttl_s: 60 }] };
/** The header each server marks a cached answer with. */
const CACHE_HEADER = { nginx: 'X-Cache-Status', phpgate: 'X-Cache' } as const;

const THREADS = 2;
const CONNECTIONS = 32;
/** How the tables name the ceiling server. */
const BARE = 'bare node:http';

interface CaseResult {
  c: Http1Case;
  nginx: Measured[];
  phpgate: Measured[];
  /** The ceiling's runs; empty unless the case has one. */
  bare: Measured[];
  /** The header names the ceiling copied from phpgate's answer; empty without one. */
  copied: string[];
  /** Why phpgate was not measured (its cache is not there yet), or null. */
  unavailable: string | null;
  /** Response body size, for the table. */
  bytes: number;
}

function wrkOptions(c: Http1Case, site: Site, durationS: number): WrkOptions {
  const body = c.body?.(site);
  return {
    threads: THREADS,
    connections: CONNECTIONS,
    durationS,
    ...(body === undefined ? {} : { script: { file: path.join(LUA_DIR, 'body.lua'), args: [body.method, body.contentType, body.file] } }),
  };
}

function send(side: Side, c: Http1Case, site: Site): Promise<Got> {
  const body = c.body?.(site);
  return request(
    side.port,
    c.path,
    body === undefined ? {} : { method: body.method, headers: { 'content-type': body.contentType }, body: body.bytes },
  );
}

/** Both answer what the case expects; returns the body size. */
async function checkAnswers(sides: readonly Side[], c: Http1Case, site: Site): Promise<number> {
  const got = await Promise.all(sides.map((s) => send(s, c, site)));
  const want = c.expect(site);
  const expected = want === 'same' ? got[0]!.body : want;
  got.forEach((res, i) => checkBody(sides[i]!.name, `${c.path} (${c.name})`, res, expected));
  if (got[0]!.body.length === 0) throw new Error(`${c.path}: empty answer`);
  return got[0]!.body.length;
}

/** The cache header after up to three requests (the first fills the cache): 'HIT' when the server caches. */
async function cacheStatus(side: Side<keyof typeof CACHE_HEADER>, c: Http1Case): Promise<string> {
  let last = '';
  for (let i = 0; i < 3 && last !== 'HIT'; i++) last = header(await request(side.port, c.path), CACHE_HEADER[side.name]);
  return last;
}

/**
 * The ceiling for `c`: a bare node:http server (its own node process) answering `c.path` from memory with the
 * headers phpgate sends for it, copied from phpgate's answer and checked equal (Date apart).
 */
async function startCeiling(ctx: Context, gwPort: number, c: Http1Case): Promise<{ bare: BareServer; copied: string[] }> {
  const model = await request(gwPort, c.path);
  const headers = copiedHeaders(model);
  const bare = await ctx.started(
    startBare({
      protocol: 'http1',
      urlPath: c.path,
      file: path.join(ctx.site.docroot, c.path),
      headers,
      keepAliveTimeoutMs: keepAliveTimeoutMs(model),
      tls: null,
    }),
  );
  checkSameHeaders(BARE, c.path, await request(bare.port, c.path), model);
  console.log(`${BARE} on 127.0.0.1:${bare.port} (pid ${bare.pid}), the ceiling for ${c.path}`);
  return { bare, copied: headers.map(([name]) => name) };
}

const ratioOf = (r: CaseResult, field: (m: Measured) => number) => medianOf(r.phpgate, field) / medianOf(r.nginx, field);
const ceilingRatio = (r: CaseResult) => medianOf(r.phpgate, (m) => m.rps) / medianOf(r.bare, (m) => m.rps);
const metricOf = (c: Http1Case) => (c.metric === 'rps' ? (m: Measured) => m.rps : (m: Measured) => m.bytesPerSec);

function targets(results: CaseResult[]): Target[] {
  const out: Target[] = [];
  for (const r of results) {
    const { c } = r;
    if (r.unavailable !== null) {
      if (c.minRps !== undefined) out.push({ what: `${c.name}: phpgate ≥ ${fmtRps(c.minRps)} rps`, value: r.unavailable, met: false });
      continue;
    }
    if (c.target !== undefined) {
      const ratio = ratioOf(r, metricOf(c));
      const [np99, gp99] = [medianOf(r.nginx, (m) => m.p99Ms), medianOf(r.phpgate, (m) => m.p99Ms)];
      const p99 = c.target.p99 === true ? ` and p99 ≤ nginx's` : '';
      out.push({
        what: `${c.name}: phpgate/nginx ${c.metric === 'rps' ? 'rps' : 'MB/s'} ≥ ${c.target.ratio}×${p99}`,
        value: `${fmtRatio(ratio)} (medians)${c.target.p99 === true ? `; p99 ${fmtMs(gp99)} vs ${fmtMs(np99)}` : ''}`,
        met: ratio >= c.target.ratio && (c.target.p99 !== true || gp99 <= np99),
      });
    }
    if (c.ceiling !== undefined && r.bare.length > 0) {
      out.push({
        what: `${c.name}: phpgate/${BARE} rps ≥ ${c.ceiling}×`,
        value: `${fmtRatio(ceilingRatio(r))} (medians)`,
        met: ceilingRatio(r) >= c.ceiling,
      });
    }
    if (c.minRps !== undefined) {
      const rps = medianOf(r.phpgate, (m) => m.rps);
      out.push({
        what: `${c.name}: phpgate ≥ ${fmtRps(c.minRps)} rps`,
        value: `${fmtRps(rps)} rps (median; ${fmtRatio(ratioOf(r, (m) => m.rps))} nginx with fastcgi_cache)`,
        met: rps >= c.minRps,
      });
    }
  }
  return out;
}

const p50p99 = (runs: Measured[]) =>
  runs.length === 0 ? '–' : `${fmtMs(medianOf(runs, (m) => m.p50Ms))} / ${fmtMs(medianOf(runs, (m) => m.p99Ms))}`;
const med = (runs: Measured[], f: (m: Measured) => number, fmt: (n: number) => string) => (runs.length === 0 ? '–' : fmt(medianOf(runs, f)));
const errs = (runs: Measured[]) => (runs.length === 0 ? '–' : String(runs.reduce((a, m) => a + m.errors, 0)));
const peak = (runs: Measured[], f: (m: Measured) => number) => (runs.length === 0 ? '–' : fmtMB(Math.max(...runs.map(f))));
const cpu = (runs: Measured[], f: (m: Measured) => number) => (runs.length === 0 ? '–' : fmtUs(cpuPerRequestUs(runs, f)));

function tables(results: CaseResult[]): string[] {
  const withBare = results.some((r) => r.bare.length > 0);
  /** The servers' runs of a row, nginx / phpgate (/ the ceiling, when a row has one), each formatted by `f`. */
  const each = (r: CaseResult, f: (runs: Measured[]) => string) => [r.nginx, r.phpgate, ...(withBare ? [r.bare] : [])].map(f).join(' / ');
  const who = withBare ? `nginx / phpgate / ${BARE}` : 'nginx / phpgate';
  const ceiling = (r: CaseResult, cell: (r: CaseResult) => string) => (r.bare.length > 0 && r.unavailable === null ? cell(r) : '–');
  const main: Array<Column<CaseResult>> = [
    { head: 'case', cell: (r) => `${r.c.name} \`${r.c.path}\` (answer ${r.bytes < 1024 ? `${r.bytes} B` : `${(r.bytes / 1024).toFixed(1)} KB`})` },
    { head: 'nginx rps', cell: (r) => med(r.nginx, (m) => m.rps, fmtRps), right: true },
    { head: 'phpgate rps', cell: (r) => r.unavailable ?? med(r.phpgate, (m) => m.rps, fmtRps), right: true },
    ...(withBare ? [{ head: `${BARE} rps`, cell: (r: CaseResult) => med(r.bare, (m) => m.rps, fmtRps), right: true }] : []),
    {
      head: 'phpgate/nginx (medians)',
      cell: (r) => (r.unavailable === null ? `**${fmtRatio(ratioOf(r, metricOf(r.c)))}**${r.c.metric === 'throughput' ? ' (MB/s)' : ''}` : '–'),
    },
    ...(withBare ? [{ head: `phpgate/${BARE} (medians)`, cell: (r: CaseResult) => ceiling(r, (x) => `**${fmtRatio(ceilingRatio(x))}**`) }] : []),
    {
      head: 'phpgate/nginx (best rounds)',
      cell: (r) => (r.unavailable === null ? fmtRatio(metricOf(r.c)(best(r.phpgate)) / metricOf(r.c)(best(r.nginx))) : '–'),
    },
    { head: 'p50 / p99 nginx', cell: (r) => p50p99(r.nginx), right: true },
    { head: 'p50 / p99 phpgate', cell: (r) => p50p99(r.phpgate), right: true },
    ...(withBare ? [{ head: `p50 / p99 ${BARE}`, cell: (r: CaseResult) => p50p99(r.bare), right: true }] : []),
    { head: `MB/s ${who}`, cell: (r) => each(r, (runs) => med(runs, (m) => m.bytesPerSec, fmtMBs)), right: true },
    { head: `errors (all rounds) ${who}`, cell: (r) => each(r, errs), right: true },
  ];
  const memory: Array<Column<CaseResult>> = [
    { head: 'case', cell: (r) => r.c.name },
    { head: `gateway RSS ${who}`, cell: (r) => each(r, (runs) => peak(runs, (m) => m.gatewayRssBytes)), right: true },
    {
      head: 'PHP workers RSS php-fpm / php-cgi',
      cell: (r) => `${peak(r.nginx, (m) => m.phpRssBytes)} / ${peak(r.phpgate, (m) => m.phpRssBytes)}`,
      right: true,
    },
    { head: `gateway CPU per request ${who}`, cell: (r) => each(r, (runs) => cpu(runs, (m) => m.gatewayCpuS)), right: true },
    {
      head: 'PHP CPU per request php-fpm / php-cgi',
      cell: (r) => `${cpu(r.nginx, (m) => m.phpCpuS)} / ${cpu(r.phpgate, (m) => m.phpCpuS)}`,
      right: true,
    },
  ];
  return [
    `Medians of the rounds (p50 and p99: the medians of the rounds' percentiles).${withBare ? ` ${BARE}: the ceiling, node's own HTTP server answering the same bytes with the same headers from memory (its own process; measured for the small file only).` : ''}`,
    columnsTable(main, results),
    `Memory (the peak during the measured runs, sampled every 0.5 s; RSS summed over processes, so pages shared between PHP workers, opcache included, count once per worker on both sides) and CPU time per request (utime + stime over all rounds ÷ requests)${withBare ? `; the ${BARE} server is one node process, counted as a gateway` : ''}:`,
    columnsTable(memory, results),
    ...cpuBudgets(results),
  ];
}

/**
 * Why a PHP ratio target is missed, from this run's own numbers. The load generator shares the machine's cores, so
 * once they are saturated requests per second follow the CPU a request costs: for phpgate to answer r× nginx's
 * rate, gateway + PHP together may cost at most 1/r of nginx + php-fpm's (less still, as wrk's own CPU per request,
 * not measured, is the same on both sides). What PHP costs on phpgate's side leaves the gateway its budget.
 */
function cpuBudgets(results: CaseResult[]): string[] {
  const lines: string[] = [];
  for (const r of results) {
    const t = r.c.target;
    if (t === undefined || r.c.metric !== 'rps' || r.unavailable !== null || r.nginx.length === 0 || r.phpgate.length === 0) continue;
    const [ng, np, gg, gp] = [
      cpuPerRequestUs(r.nginx, (m) => m.gatewayCpuS),
      cpuPerRequestUs(r.nginx, (m) => m.phpCpuS),
      cpuPerRequestUs(r.phpgate, (m) => m.gatewayCpuS),
      cpuPerRequestUs(r.phpgate, (m) => m.phpCpuS),
    ];
    if (np === 0 || ratioOf(r, (m) => m.rps) >= t.ratio) continue; // a static case, or met
    const budget = (ng + np) / t.ratio - gp;
    lines.push(
      `- ${r.c.name}: nginx + php-fpm spend ${fmtUs(ng)} + ${fmtUs(np)} = ${fmtUs(ng + np)} of CPU per request, phpgate + php-cgi ${fmtUs(gg)} + ${fmtUs(gp)} = ${fmtUs(gg + gp)}. ` +
        `For ${t.ratio}× nginx's rate, phpgate's gateway could spend at most ${budget > 0 ? `about ${fmtUs(budget)}` : 'nothing'} per request (${fmtUs(ng + np)} ÷ ${t.ratio} − php-cgi's ${fmtUs(gp)}), ` +
        `against ${fmtUs(gg)} measured; nginx's own gateway work is ${fmtUs(ng)}.`,
    );
  }
  if (lines.length === 0) return [];
  return [
    "Why the PHP targets are missed, in this run's CPU per request: the machine's cores are shared by the load generator, the gateway and PHP, and saturated, so a server's rate follows what a request costs all its processes together (wrk's own share, not measured, is the same on both sides and makes each budget below smaller still):",
    lines.join('\n'),
  ];
}

function roundsTable(results: CaseResult[]): string {
  const rows = results.flatMap((r) =>
    inRoundOrder([
      ['nginx', r.nginx],
      ['phpgate', r.phpgate],
      [BARE, r.bare],
    ]).map(({ round, who, run: m }) => [
      r.c.name,
      String(round),
      who,
      fmtRps(m.rps),
      fmtMs(m.p50Ms),
      fmtMs(m.p99Ms),
      fmtMBs(m.bytesPerSec),
      fmtMB(m.gatewayRssBytes),
      who === BARE ? '–' : fmtMB(m.phpRssBytes),
      fmtErrors(m),
    ]),
  );
  return mdTable(['case', 'round', 'server', 'rps', 'p50', 'p99', 'MB/s', 'gateway RSS', 'PHP RSS', 'errors'], rows, [1, 3, 4, 5, 6, 7, 8]);
}

async function run(ctx: Context, ids: readonly string[]): Promise<Section> {
  const cases = CASES.filter((c) => ids.includes(c.id));
  const withCache = cases.some((c) => c.cached === true);
  console.log(`starting nginx + php-fpm and phpgate (HTTP/1.1 cases)`);
  const p = await startPair(ctx, {
    nginx: withCache ? { httpDirectives: NGINX_CACHE_HTTP, serverDirectives: NGINX_CACHE_LOCATION } : {},
    phpgate: withCache ? { cache: PHPGATE_CACHE } : {},
  });
  console.log(`nginx on 127.0.0.1:${p.nginx.port}, phpgate on 127.0.0.1:${p.gw.port} (pid ${p.gw.pid})`);

  const results: CaseResult[] = [];
  const warnings: string[] = [];
  for (const c of cases) {
    let sides: readonly Side[] = p.sides;
    let ceiling: { bare: BareServer; copied: string[] } | null = null;
    if (c.ceiling !== undefined) {
      ceiling = await startCeiling(ctx, p.gw.port, c);
      sides = [...p.sides, bareSide(ceiling.bare)];
    }
    const bytes = await checkAnswers(sides, c, ctx.site);
    let unavailable: string | null = null;
    if (c.cached === true) {
      const [n, g] = await Promise.all(p.sides.map((s) => cacheStatus(s, c)));
      if (n !== 'HIT') throw new Error(`nginx ${c.path}: ${CACHE_HEADER.nginx} "${n}" after three requests, not HIT (fastcgi_cache not working)`);
      if (g !== 'HIT') {
        unavailable = `phpgate cache not available (${CACHE_HEADER.phpgate}: ${g === '' ? 'absent' : `"${g}"`} after three requests)`;
        warnings.push(`${c.name}: ${unavailable}; only nginx was measured`);
        sides = [p.sides[0]];
      }
    }
    const o = wrkOptions(c, ctx.site, ctx.durationS);
    console.log(`\n${c.name} (${c.path}): warm-up ${ctx.warmupS} s each, then ${ctx.rounds} × ${ctx.durationS} s per server, interleaved`);
    for (const s of sides) await measureWrk(s, c.path, { ...o, durationS: ctx.warmupS });
    const runs = await interleave(sides, ctx.rounds, async (s, round) => {
      const m = await measureWrk(s, c.path, o);
      console.log(
        fmtRound(round, s.name, m.rps, `p99 ${fmtMs(m.p99Ms)}  ${fmtMBs(m.bytesPerSec)} MB/s${m.errors > 0 ? `, errors: ${m.errorDetail}` : ''}`),
      );
      return m;
    });
    await ceiling?.bare.stop();
    const runsOf = (name: ServerName) => runs[sides.findIndex((s) => s.name === name)] ?? [];
    const result: CaseResult = {
      c,
      nginx: runsOf('nginx'),
      phpgate: runsOf('phpgate'),
      bare: runsOf('bare'),
      copied: ceiling?.copied ?? [],
      unavailable,
      bytes,
    };
    if ([...result.nginx, ...result.phpgate, ...result.bare].some((m) => m.errors > 0))
      warnings.push(`${c.name}: the load generator saw errors (see every round)`);
    results.push(result);
  }
  await p.stop();

  const plain = wrkCommandLine({ threads: THREADS, connections: CONNECTIONS, durationS: ctx.durationS });
  const bodies = cases
    .filter((c) => c.body !== undefined)
    .map(
      (c) => `${c.name}: \`${wrkCommandLine(wrkOptions(c, ctx.site, ctx.durationS)).replace(/ -- POST .*/, ' -- POST <content-type> <body file>')}\``,
    );
  const method = [
    `Cases: ${cases.map((c) => `${c.name} \`${c.path}\``).join('; ')}.`,
    `Each case: ${ctx.warmupS} s wrk warm-up of each server, then ${ctx.rounds} rounds interleaved (nginx, phpgate, nginx, phpgate, …) so drift hits both alike. Command: \`${plain}\`${bodies.length > 0 ? `; the POST cases send their body with bench/lua/body.lua (${bodies.join('; ')})` : ''}. MB/s is wrk's Transfer/sec (headers + bodies, MB = 1024² bytes).`,
    "Before measuring, each case checks both servers answer 200 with the same bytes (the file's, \"hello\", upload.php's report of the file's size and md5, or each other's for the generated pages).",
  ];
  for (const r of results.filter((x) => x.bare.length > 0)) {
    method.push(
      `Ceiling for the ${r.c.name}: a bare \`node:http\` server (\`bench/lib/bare-server.ts\`, no framework), a node process of its own on 127.0.0.1 (the same node binary; compiled to plain JavaScript, no loader), answering \`${r.c.path}\` from memory (the file read once at start; other paths 404). ` +
        `Its headers are the ones phpgate sent for the file in this run, copied from phpgate's answer and checked equal (Date apart) before measuring: ${r.copied.join(', ')}; node writes Date, Connection and Keep-Alive itself, its keep-alive timeout set to phpgate's so that the Keep-Alive line is the same too. ` +
        `It runs in the same rounds (nginx, phpgate, ${BARE}, nginx, …) with the same wrk command, its CPU time and RSS measured as phpgate's. Target: phpgate ≥ ${r.c.ceiling}× its rps (medians).`,
    );
  }
  if (cases.some((c) => c.id === 'realistic')) {
    method.push(
      'Realistic page (`bench/site/realistic.php`): 112 products built with mt_rand, sorted with usort, grouped, escaped and formatted into ~20 KB of HTML.',
    );
  }
  if (withCache) {
    method.push(
      `Cached page: \`/cached.php\` (the realistic page). nginx: \`${NGINX_CACHE_HTTP[0]}\` and \`location = /cached.php { … ${NGINX_CACHE_LOCATION.filter(
        (l) => /cache/i.test(l) && !l.startsWith('location'),
      )
        .map((l) => l.trim())
        .join(
          ' ',
        )} }\`. phpgate: \`cache: ${JSON.stringify(PHPGATE_CACHE)}\`. Both are checked to answer from cache before measuring (nginx \`X-Cache-Status: HIT\`, phpgate \`X-Cache: HIT\`); if phpgate does not, it is reported as not available and only nginx is measured. Target: phpgate ≥ 20,000 rps on this machine.`,
    );
  }
  return { title: 'HTTP/1.1 (wrk)', method, results: tables(results), rounds: [roundsTable(results)], targets: targets(results), warnings };
}

/** nginx and phpgate, and the ceiling where the case has one. */
const serversIn = (id: string) => (CASES.find((c) => c.id === id)?.ceiling === undefined ? 2 : 3);

export const http1: Group = {
  cases: [
    { id: 'small', help: 'a 2.7 KB CSS file (also against a bare node:http server, the ceiling)' },
    { id: 'big', help: 'a 1 MB file (throughput)' },
    { id: 'php', help: 'PHP hello' },
    { id: 'realistic', help: 'a ~20 KB PHP page with some work' },
    { id: 'json-post', help: 'a 1 KB JSON POST to PHP' },
    { id: 'upload', help: 'a 100 KB multipart upload to PHP' },
    { id: 'cached', help: 'a PHP page from the response cache (nginx fastcgi_cache vs phpgate cache)' },
  ],
  tool: 'wrk',
  nginx: true,
  expectedS: (ids, o) => ids.reduce((a, id) => a + serversIn(id) * (o.warmupS + 1 + o.rounds * (o.durationS + 1)), 0),
  run,
};
