/**
 * HTTP/2 over TLS with h2load: nginx (`listen … ssl http2`) against phpgate (`server.tls`), same certificate. The
 * small file is measured against a ceiling too: a bare server on node's core http2 API answering the same bytes.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { selfSigned } from '../../test/support/certs.js';
import { checkSameHeaders, copiedHeaders, keepAliveTimeoutMs, startBare, type BareServer } from '../lib/bare.js';
import type { Group } from '../lib/group.js';
import { h2loadCommandLine, runH2load, type H2loadOptions, type H2loadResult } from '../lib/h2load.js';
import { checkBody, getH2, type Got } from '../lib/http.js';
import {
  best,
  columnsTable,
  fmtMBs,
  fmtMs,
  fmtRatio,
  fmtRps,
  inRoundOrder,
  mdTable,
  medianOf,
  type Column,
  type Section,
  type Target,
} from '../lib/report.js';
import { bareSide, fmtRound, interleave, startPair, type Context, type ServerName, type Side } from '../lib/servers.js';

/** h2load's --warm-up-time inside every run: connections and TLS handshakes, not measured. */
const H2_RUN_WARMUP_S = 1;
/** nginx closes an HTTP/2 connection (GOAWAY) after keepalive_requests requests; far above what a run sends. */
const NGINX_H2_KEEPALIVE_REQUESTS = 1_000_000;
/**
 * The one TLS 1.3 suite h2load offers. Left to choose, nginx takes the client's first (AES-128-GCM, as browsers
 * list it too) and node its own (AES-256-GCM): pinned, both do the same crypto.
 */
const TLS13_CIPHER = 'TLS_AES_128_GCM_SHA256';

interface H2Case {
  id: string;
  name: string;
  path: string;
  /** The target on phpgate's rps over nginx's (medians). */
  target: number;
  /** Measured against the bare http2 server (the ceiling) too. */
  ceiling?: boolean;
}

const CASES: readonly H2Case[] = [
  { id: 'h2-small', name: 'small file (2.7 KB) over HTTP/2', path: '/small.css', target: 0.7, ceiling: true },
  { id: 'h2-php', name: 'PHP hello over HTTP/2', path: '/index.php', target: 1.0 },
];

/** How the tables name the ceiling server. */
const BARE = 'bare http2';

interface CaseResult {
  c: H2Case;
  nginx: H2loadResult[];
  phpgate: H2loadResult[];
  /** The ceiling's runs; empty unless the case has one. */
  bare: H2loadResult[];
  /** The header names the ceiling copied from phpgate's answer; empty without one. */
  copied: string[];
}

const fmtLatency = (r: H2loadResult) => `${fmtMs(r.meanMs)} ± ${fmtMs(r.sdMs)} (max ${fmtMs(r.maxMs)})`;
const ratio = (r: CaseResult) => medianOf(r.phpgate, (x) => x.rps) / medianOf(r.nginx, (x) => x.rps);
const ceilingRatio = (r: CaseResult) => medianOf(r.phpgate, (x) => x.rps) / medianOf(r.bare, (x) => x.rps);
const failed = (runs: H2loadResult[]) => (runs.length === 0 ? '–' : String(runs.reduce((a, x) => a + x.errors, 0)));
const mbs = (runs: H2loadResult[]) => (runs.length === 0 ? '–' : fmtMBs(medianOf(runs, (x) => x.bytesPerSec)));

function table(results: CaseResult[]): string {
  const withBare = results.some((r) => r.bare.length > 0);
  const each = (r: CaseResult, f: (runs: H2loadResult[]) => string) => [r.nginx, r.phpgate, ...(withBare ? [r.bare] : [])].map(f).join(' / ');
  const who = withBare ? `nginx / phpgate / ${BARE}` : 'nginx / phpgate';
  const columns: Array<Column<CaseResult>> = [
    { head: 'case', cell: (r) => `${r.c.name} \`${r.c.path}\`` },
    { head: 'nginx rps', cell: (r) => fmtRps(medianOf(r.nginx, (x) => x.rps)), right: true },
    { head: 'phpgate rps', cell: (r) => fmtRps(medianOf(r.phpgate, (x) => x.rps)), right: true },
    ...(withBare
      ? [{ head: `${BARE} rps`, cell: (r: CaseResult) => (r.bare.length === 0 ? '–' : fmtRps(medianOf(r.bare, (x) => x.rps))), right: true }]
      : []),
    { head: 'phpgate/nginx (medians)', cell: (r) => `**${fmtRatio(ratio(r))}**` },
    ...(withBare
      ? [{ head: `phpgate/${BARE} (medians)`, cell: (r: CaseResult) => (r.bare.length === 0 ? '–' : `**${fmtRatio(ceilingRatio(r))}**`) }]
      : []),
    { head: 'phpgate/nginx (best rounds)', cell: (r) => fmtRatio(best(r.phpgate).rps / best(r.nginx).rps) },
    { head: 'nginx latency mean ± sd (max), best round', cell: (r) => fmtLatency(best(r.nginx)), right: true },
    { head: 'phpgate latency, best round', cell: (r) => fmtLatency(best(r.phpgate)), right: true },
    ...(withBare
      ? [{ head: `${BARE} latency, best round`, cell: (r: CaseResult) => (r.bare.length === 0 ? '–' : fmtLatency(best(r.bare))), right: true }]
      : []),
    { head: `MB/s ${who}`, cell: (r) => each(r, mbs), right: true },
    { head: `failed (all rounds) ${who}`, cell: (r) => each(r, failed), right: true },
  ];
  return columnsTable(columns, results);
}

function roundsTable(results: CaseResult[]): string {
  const rows = results.flatMap((r) =>
    inRoundOrder([
      ['nginx', r.nginx],
      ['phpgate', r.phpgate],
      [BARE, r.bare],
    ]).map(({ round, who, run: x }) => [
      r.c.name,
      String(round),
      who,
      fmtRps(x.rps),
      fmtMs(x.meanMs),
      fmtMs(x.sdMs),
      fmtMs(x.maxMs),
      fmtMBs(x.bytesPerSec),
      fmtRps(x.succeeded),
      `${x.failed} (${x.errored}, ${x.timeout})`,
      `${x.tls}, ${x.protocol}`,
    ]),
  );
  return mdTable(
    ['case', 'round', 'server', 'rps', 'mean', 'sd', 'max', 'MB/s', 'succeeded', 'failed (errored, timeout)', 'TLS, ALPN'],
    rows,
    [1, 3, 4, 5, 6, 7, 8],
  );
}

/**
 * The ceiling for `c`: a bare server on node's core http2 API (its own node process), over TLS with the same
 * certificate, answering `c.path` from memory with the headers phpgate sends for it over HTTP/2, copied from
 * phpgate's answer and checked equal (Date apart).
 */
async function startCeiling(
  ctx: Context,
  model: Got,
  c: H2Case,
  tls: { cert: string; key: string },
  ca: Buffer,
): Promise<{ bare: BareServer; copied: string[] }> {
  const headers = copiedHeaders(model);
  const bare = await ctx.started(
    startBare({
      protocol: 'h2',
      urlPath: c.path,
      file: path.join(ctx.site.docroot, c.path),
      headers,
      keepAliveTimeoutMs: keepAliveTimeoutMs(model),
      tls,
    }),
  );
  const res = await getH2(bare.port, c.path, ca);
  if (res.alpn !== 'h2') throw new Error(`${BARE}: ALPN gave "${res.alpn}", not h2`);
  checkSameHeaders(BARE, c.path, res, model);
  console.log(`${BARE} on https://127.0.0.1:${bare.port} (pid ${bare.pid}), the ceiling for ${c.path}`);
  return { bare, copied: headers.map(([name]) => name) };
}

async function run(ctx: Context, ids: readonly string[]): Promise<Section> {
  const cases = CASES.filter((c) => ids.includes(c.id));
  const certDir = await mkdtemp(path.join(os.tmpdir(), 'phpgate-bench-cert-'));
  try {
    const tls = selfSigned(certDir, 'bench');
    const ca = await readFile(tls.cert);
    console.log(`\nstarting nginx + php-fpm with a TLS + HTTP/2 listener and phpgate with server.tls`);
    const p = await startPair(ctx, { nginx: { tls, keepaliveRequests: NGINX_H2_KEEPALIVE_REQUESTS }, phpgate: { tls } });
    const pairSides: readonly Side[] = [{ ...p.sides[0], port: p.nginx.tlsPort! }, p.sides[1]];
    console.log(`nginx on https://127.0.0.1:${p.nginx.tlsPort}, phpgate on https://127.0.0.1:${p.gw.port} (pid ${p.gw.pid})`);
    const o: H2loadOptions = {
      threads: 2,
      connections: 32,
      streams: 10,
      durationS: ctx.durationS,
      warmupS: H2_RUN_WARMUP_S,
      tls13Cipher: TLS13_CIPHER,
    };

    const results: CaseResult[] = [];
    for (const c of cases) {
      let sides = pairSides;
      let ceiling: { bare: BareServer; copied: string[] } | null = null;
      if (c.ceiling === true) {
        ceiling = await startCeiling(ctx, await getH2(p.gw.port, c.path, ca), c, tls, ca);
        sides = [...pairSides, bareSide(ceiling.bare)];
      }
      for (const s of sides) {
        const res = await getH2(s.port, c.path, ca);
        if (res.alpn !== 'h2') throw new Error(`${s.name}: ALPN gave "${res.alpn}", not h2`);
        checkBody(`${s.name} (h2)`, c.path, res, c.path === '/index.php' ? 'hello' : ctx.site.files[c.path]!);
      }
      const once = async (s: Side, opts: H2loadOptions) => {
        const r = await runH2load(`https://127.0.0.1:${s.port}${c.path}`, opts);
        await s.check(`${c.path} over HTTP/2`);
        return r;
      };
      console.log(`\n${c.name} (${c.path}): warm-up ${ctx.warmupS} s each, then ${ctx.rounds} × ${ctx.durationS} s per server, interleaved`);
      for (const s of sides) await once(s, { ...o, durationS: ctx.warmupS });
      const runs = await interleave(sides, ctx.rounds, async (s, round) => {
        const r = await once(s, o);
        console.log(
          fmtRound(
            round,
            s.name,
            r.rps,
            `mean ${fmtMs(r.meanMs)} ± ${fmtMs(r.sdMs)} (max ${fmtMs(r.maxMs)})  ${fmtMBs(r.bytesPerSec)} MB/s${r.errors > 0 ? `, errors: ${r.errorDetail}` : ''}`,
          ),
        );
        return r;
      });
      await ceiling?.bare.stop();
      const runsOf = (name: ServerName) => runs[sides.findIndex((s) => s.name === name)] ?? [];
      results.push({ c, nginx: runsOf('nginx'), phpgate: runsOf('phpgate'), bare: runsOf('bare'), copied: ceiling?.copied ?? [] });
    }
    await p.stop();

    const targets: Target[] = results.map((r) => ({
      what: `${r.c.name}: phpgate/nginx rps ≥ ${r.c.target}×`,
      value: `${fmtRatio(ratio(r))} (medians)`,
      met: ratio(r) >= r.c.target,
    }));
    const warnings = results
      .filter((r) => [...r.nginx, ...r.phpgate, ...r.bare].some((x) => x.errors > 0))
      .map((r) => `${r.c.name}: h2load counted failed requests (see every round)`);
    const method = [
      `A self-signed RSA-2048 certificate made with openssl at run time, the same files for both. nginx gets a second listener \`listen 127.0.0.1:PORT ssl http2;\` (nginx 1.22 syntax) with it, \`ssl_protocols TLSv1.2 TLSv1.3\` (1.22's default stops at TLSv1.2; later nginx versions have this default) and \`keepalive_requests ${NGINX_H2_KEEPALIVE_REQUESTS}\` instead of the anchor's 100000 (nginx closes an HTTP/2 connection with GOAWAY after that many requests; h2load would count the cut streams). phpgate gets \`server.tls\` (HTTP/2 by ALPN, HTTP/1.1 fallback). h2load offers one TLS 1.3 cipher suite, so both servers do the same crypto (left to choose, nginx takes the client's first, AES-128-GCM, and node its own first, AES-256-GCM); each run is checked to have got h2 over TLS 1.3 with it (rounds table). Otherwise TLS settings are both servers' defaults.`,
      `${ctx.warmupS} s h2load warm-up of each server, then ${ctx.rounds} rounds interleaved. Command: \`${h2loadCommandLine(o)}\` (2 threads and 32 connections as the wrk cases, 10 concurrent streams per connection: up to 320 requests in flight; duration mode, so only what completes within the measured seconds counts). The warm-up time inside each run (connections and TLS handshakes) is not measured.`,
      'rps is successful (2xx/3xx) requests per second of the measured duration; h2load reports no percentiles, so the latency shown is its "time for request" mean ± sd and max. MB/s is h2load\'s traffic rate (frames, headers and bodies). Failed requests (non-2xx/3xx, resets, timeouts) are counted for both servers.',
      "PHP queueing: phpgate's `php.queue_limit` is 511, php-fpm's default `listen.backlog`, so both queue the 320 requests in flight instead of phpgate answering 503 past its default 200 (which a closed-loop load generator turns into a flood of instant retries).",
      ...results
        .filter((r) => r.bare.length > 0)
        .map(
          (r) =>
            `Ceiling for the ${r.c.name}: a bare server on node's core \`http2\` API (\`bench/lib/bare-server.ts\`: \`http2.createSecureServer\` with the same certificate and \`noDelay\` as phpgate's listener, otherwise node's defaults; the 'stream' event, \`stream.respond()\` and \`stream.end(buf)\`, no compatibility request/response objects), a node process of its own on 127.0.0.1 (compiled to plain JavaScript, no loader), answering \`${r.c.path}\` from memory (the file read once at start; other paths 404). ` +
            `Its headers are the ones phpgate sent for the file over HTTP/2 in this run, copied from phpgate's answer and checked equal (Date apart) before measuring: ${r.copied.join(', ')}; node writes Date itself. ` +
            `It runs in the same rounds (nginx, phpgate, ${BARE}, nginx, …) with the same h2load command; as for the other two, h2load's numbers only (no CPU or memory).`,
        ),
    ];
    return { title: 'HTTP/2 over TLS (h2load)', method, results: [table(results)], rounds: [roundsTable(results)], targets, warnings };
  } finally {
    await rm(certDir, { recursive: true, force: true });
  }
}

/** nginx and phpgate, and the ceiling where the case has one. */
const serversIn = (id: string) => (CASES.find((c) => c.id === id)?.ceiling === true ? 3 : 2);

export const h2: Group = {
  cases: [
    { id: 'h2-small', help: 'the small file over HTTP/2 + TLS (h2load; also against a bare node:http2 server, the ceiling)' },
    { id: 'h2-php', help: 'PHP hello over HTTP/2 + TLS (h2load)' },
  ],
  tool: 'h2load',
  nginx: true,
  expectedS: (ids, o) =>
    ids.reduce((a, id) => a + serversIn(id) * (H2_RUN_WARMUP_S + o.warmupS + 1 + o.rounds * (H2_RUN_WARMUP_S + o.durationS + 1)), 0),
  run,
};
