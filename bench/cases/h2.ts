/** HTTP/2 over TLS with h2load: nginx (`listen … ssl http2`) against phpgate (`server.tls`), same certificate. */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { selfSigned } from '../../test/support/certs.js';
import type { Group } from '../lib/group.js';
import { h2loadCommandLine, runH2load, type H2loadOptions, type H2loadResult } from '../lib/h2load.js';
import { checkBody, getH2 } from '../lib/http.js';
import { best, fmtMBs, fmtMs, fmtRatio, fmtRps, inRoundOrder, mdTable, medianOf, type Section, type Target } from '../lib/report.js';
import { fmtRound, interleave, startPair, type Context } from '../lib/servers.js';

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
  target: number;
}

const CASES: readonly H2Case[] = [
  { id: 'h2-small', name: 'small file (2.7 KB) over HTTP/2', path: '/small.css', target: 1.0 },
  { id: 'h2-php', name: 'PHP hello over HTTP/2', path: '/index.php', target: 1.0 },
];

interface CaseResult {
  c: H2Case;
  nginx: H2loadResult[];
  phpgate: H2loadResult[];
}

const fmtLatency = (r: H2loadResult) => `${fmtMs(r.meanMs)} ± ${fmtMs(r.sdMs)} (max ${fmtMs(r.maxMs)})`;
const ratio = (r: CaseResult) => medianOf(r.phpgate, (x) => x.rps) / medianOf(r.nginx, (x) => x.rps);

function table(results: CaseResult[]): string {
  return mdTable(
    [
      'case',
      'nginx rps',
      'phpgate rps',
      'ratio (medians)',
      'ratio (best rounds)',
      'nginx latency mean ± sd (max), best round',
      'phpgate latency, best round',
      'MB/s nginx / phpgate',
      'failed (all rounds) nginx / phpgate',
    ],
    results.map((r) => {
      const [n, g] = [best(r.nginx), best(r.phpgate)];
      const failed = (runs: H2loadResult[]) => String(runs.reduce((a, x) => a + x.errors, 0));
      return [
        `${r.c.name} \`${r.c.path}\``,
        fmtRps(medianOf(r.nginx, (x) => x.rps)),
        fmtRps(medianOf(r.phpgate, (x) => x.rps)),
        `**${fmtRatio(ratio(r))}**`,
        fmtRatio(g.rps / n.rps),
        fmtLatency(n),
        fmtLatency(g),
        `${fmtMBs(medianOf(r.nginx, (x) => x.bytesPerSec))} / ${fmtMBs(medianOf(r.phpgate, (x) => x.bytesPerSec))}`,
        `${failed(r.nginx)} / ${failed(r.phpgate)}`,
      ];
    }),
    [1, 2, 5, 6, 7, 8],
  );
}

function roundsTable(results: CaseResult[]): string {
  const rows = results.flatMap((r) =>
    inRoundOrder([
      ['nginx', r.nginx],
      ['phpgate', r.phpgate],
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

async function run(ctx: Context, ids: readonly string[]): Promise<Section> {
  const cases = CASES.filter((c) => ids.includes(c.id));
  const certDir = await mkdtemp(path.join(os.tmpdir(), 'phpgate-bench-cert-'));
  try {
    const tls = selfSigned(certDir, 'bench');
    const ca = await readFile(tls.cert);
    console.log(`\nstarting nginx + php-fpm with a TLS + HTTP/2 listener and phpgate with server.tls`);
    const p = await startPair(ctx, { nginx: { tls, keepaliveRequests: NGINX_H2_KEEPALIVE_REQUESTS }, phpgate: { tls } });
    const sides = [{ ...p.sides[0], port: p.nginx.tlsPort! }, p.sides[1]] as const;
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
      for (const s of sides) {
        const res = await getH2(s.port, c.path, ca);
        if (res.alpn !== 'h2') throw new Error(`${s.name}: ALPN gave "${res.alpn}", not h2`);
        checkBody(`${s.name} (h2)`, c.path, res, c.path === '/index.php' ? 'hello' : ctx.site.files[c.path]!);
      }
      const once = async (s: (typeof sides)[number], opts: H2loadOptions) => {
        const r = await runH2load(`https://127.0.0.1:${s.port}${c.path}`, opts);
        await s.check(`${c.path} over HTTP/2`);
        return r;
      };
      console.log(`\n${c.name} (${c.path}): warm-up ${ctx.warmupS} s each, then ${ctx.rounds} × ${ctx.durationS} s per server, interleaved`);
      for (const s of sides) await once(s, { ...o, durationS: ctx.warmupS });
      const [nginx, phpgate] = await interleave(sides, ctx.rounds, async (s, round) => {
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
      results.push({ c, nginx: nginx!, phpgate: phpgate! });
    }
    await p.stop();

    const targets: Target[] = results.map((r) => ({
      what: `${r.c.name}: phpgate/nginx rps ≥ ${r.c.target}×`,
      value: `${fmtRatio(ratio(r))} (medians)`,
      met: ratio(r) >= r.c.target,
    }));
    const warnings = results
      .filter((r) => [...r.nginx, ...r.phpgate].some((x) => x.errors > 0))
      .map((r) => `${r.c.name}: h2load counted failed requests (see every round)`);
    const method = [
      `A self-signed RSA-2048 certificate made with openssl at run time, the same files for both. nginx gets a second listener \`listen 127.0.0.1:PORT ssl http2;\` (nginx 1.22 syntax) with it, \`ssl_protocols TLSv1.2 TLSv1.3\` (1.22's default stops at TLSv1.2; later nginx versions have this default) and \`keepalive_requests ${NGINX_H2_KEEPALIVE_REQUESTS}\` instead of the anchor's 100000 (nginx closes an HTTP/2 connection with GOAWAY after that many requests; h2load would count the cut streams). phpgate gets \`server.tls\` (HTTP/2 by ALPN, HTTP/1.1 fallback). h2load offers one TLS 1.3 cipher suite, so both servers do the same crypto (left to choose, nginx takes the client's first, AES-128-GCM, and node its own first, AES-256-GCM); each run is checked to have got h2 over TLS 1.3 with it (rounds table). Otherwise TLS settings are both servers' defaults.`,
      `${ctx.warmupS} s h2load warm-up of each server, then ${ctx.rounds} rounds interleaved. Command: \`${h2loadCommandLine(o)}\` (2 threads and 32 connections as the wrk cases, 10 concurrent streams per connection: up to 320 requests in flight; duration mode, so only what completes within the measured seconds counts). The warm-up time inside each run (connections and TLS handshakes) is not measured.`,
      'rps is successful (2xx/3xx) requests per second of the measured duration; h2load reports no percentiles, so the latency shown is its "time for request" mean ± sd and max. MB/s is h2load\'s traffic rate (frames, headers and bodies). Failed requests (non-2xx/3xx, resets, timeouts) are counted for both servers.',
      "PHP queueing: phpgate's `php.queue_limit` is 511, php-fpm's default `listen.backlog`, so both queue the 320 requests in flight instead of phpgate answering 503 past its default 200 (which a closed-loop load generator turns into a flood of instant retries).",
    ];
    return { title: 'HTTP/2 over TLS (h2load)', method, results: [table(results)], rounds: [roundsTable(results)], targets, warnings };
  } finally {
    await rm(certDir, { recursive: true, force: true });
  }
}

export const h2: Group = {
  cases: [
    { id: 'h2-small', help: 'the small file over HTTP/2 + TLS (h2load)' },
    { id: 'h2-php', help: 'PHP hello over HTTP/2 + TLS (h2load)' },
  ],
  tool: 'h2load',
  nginx: true,
  expectedS: (ids, o) => ids.length * 2 * (H2_RUN_WARMUP_S + o.warmupS + 1 + o.rounds * (H2_RUN_WARMUP_S + o.durationS + 1)),
  run,
};
