/**
 * Compression cost: a ~50 KB HTML page through PHP, gzip at level 1 and at level 6 on both sides (nginx `gzip on;
 * gzip_comp_level N`, phpgate `compression.gzip_level: N`). The metric is the gateway processes' CPU time per
 * request (/proc utime + stime); PHP's is shown apart.
 */
import { gunzipSync } from 'node:zlib';
import type { Group } from '../lib/group.js';
import { header, request } from '../lib/http.js';
import { fmtErrors, fmtMBs, fmtMs, fmtRatio, fmtRps, fmtUs, inRoundOrder, mdTable, medianOf, type Section } from '../lib/report.js';
import { cpuPerRequestUs, fmtRound, interleave, measureWrk, startPair, type Context, type Measured, type Side } from '../lib/servers.js';
import { wrkCommandLine, type WrkOptions } from '../lib/wrk.js';

const LEVELS = [1, 6] as const;
const PATH = '/page50k.php';
const ACCEPT = 'Accept-Encoding: gzip';

interface LevelResult {
  level: number;
  /** null when phpgate could not be configured for it (compression.gzip_level not there yet). */
  unavailable: string | null;
  nginx: Measured[];
  phpgate: Measured[];
  /** The gzip body each sends for the page, in bytes. */
  size: { nginx: number; phpgate: number };
}

/** Both answer the page gzip-encoded, and it inflates to the page's bytes; returns the encoded size. */
async function checkGzip(side: Side, page: Buffer): Promise<number> {
  const res = await request(side.port, PATH, { headers: { 'accept-encoding': 'gzip' } });
  const enc = header(res, 'content-encoding');
  if (res.status !== 200 || enc !== 'gzip')
    throw new Error(`${side.name} ${PATH}: status ${res.status}, Content-Encoding "${enc}" (expected 200 and gzip)`);
  if (!gunzipSync(res.body).equals(page)) throw new Error(`${side.name} ${PATH}: the gzip body does not inflate to the page`);
  return res.body.length;
}

const us = (runs: Measured[], f: (m: Measured) => number) => (runs.length === 0 ? NaN : cpuPerRequestUs(runs, f));

async function run(ctx: Context): Promise<Section> {
  const page = ctx.site.files['/page50k.html']!;
  const o: WrkOptions = { threads: 2, connections: 16, durationS: ctx.durationS, headers: [ACCEPT] };
  const results: LevelResult[] = [];
  const warnings: string[] = [];
  for (const level of LEVELS) {
    console.log(`\nstarting nginx (gzip_comp_level ${level}) and phpgate (compression.gzip_level ${level})`);
    let p;
    try {
      p = await startPair(ctx, {
        nginx: { httpDirectives: ['gzip on;', `gzip_comp_level ${level};`] },
        phpgate: { compression: { gzip: true, brotli: false, gzip_level: level } },
      });
    } catch (err) {
      if (!/gzip_level/.test((err as Error).message)) throw err;
      const unavailable = `phpgate has no compression.gzip_level yet (${
        (err as Error).message
          .split('\n')
          .find((l) => l.includes('gzip_level'))
          ?.trim() ?? 'refused'
      })`;
      warnings.push(`gzip level ${level}: ${unavailable}; not measured`);
      results.push({ level, unavailable, nginx: [], phpgate: [], size: { nginx: 0, phpgate: 0 } });
      continue;
    }
    const size = { nginx: await checkGzip(p.sides[0], page), phpgate: await checkGzip(p.sides[1], page) };
    console.log(`gzip level ${level}: nginx sends ${size.nginx} bytes, phpgate ${size.phpgate} (page ${page.length})`);
    for (const s of p.sides) await measureWrk(s, PATH, { ...o, durationS: ctx.warmupS });
    const [nginx, phpgate] = await interleave(p.sides, ctx.rounds, async (s, round) => {
      const m = await measureWrk(s, PATH, o);
      console.log(
        fmtRound(
          round,
          s.name,
          m.rps,
          `gateway CPU ${fmtUs(cpuPerRequestUs([m], (x) => x.gatewayCpuS))}/request  p99 ${fmtMs(m.p99Ms)}${m.errors > 0 ? `, errors: ${m.errorDetail}` : ''}`,
        ),
      );
      return m;
    });
    await p.stop();
    if ([...nginx!, ...phpgate!].some((m) => m.errors > 0)) warnings.push(`gzip level ${level}: the load generator saw errors (see every round)`);
    results.push({ level, unavailable: null, nginx: nginx!, phpgate: phpgate!, size });
  }

  const rows = results.map((r) => {
    const [n, g] = [us(r.nginx, (m) => m.gatewayCpuS), us(r.phpgate, (m) => m.gatewayCpuS)];
    const rps = (runs: Measured[]) => (runs.length === 0 ? '–' : fmtRps(medianOf(runs, (m) => m.rps)));
    return [
      `gzip level ${r.level}`,
      fmtUs(n),
      r.unavailable ?? fmtUs(g),
      r.unavailable === null ? `**${fmtRatio(g / n)}**` : '–',
      `${fmtUs(us(r.nginx, (m) => m.phpCpuS))} / ${fmtUs(us(r.phpgate, (m) => m.phpCpuS))}`,
      `${rps(r.nginx)} / ${rps(r.phpgate)}`,
      r.unavailable === null ? `${r.size.nginx.toLocaleString('en-US')} / ${r.size.phpgate.toLocaleString('en-US')}` : '–',
    ];
  });
  const table = mdTable(
    [
      'level',
      'nginx CPU per request',
      'phpgate CPU per request',
      'ratio phpgate/nginx (lower is better)',
      'PHP CPU per request php-fpm / php-cgi',
      'rps nginx / phpgate (medians)',
      'gzip body bytes nginx / phpgate',
    ],
    rows,
    [1, 2, 3, 4, 5, 6],
  );
  const roundRows = results.flatMap((r) =>
    inRoundOrder([
      ['nginx', r.nginx],
      ['phpgate', r.phpgate],
    ]).map(({ round, who, run: m }) => [
      String(r.level),
      String(round),
      who,
      fmtRps(m.rps),
      fmtUs(cpuPerRequestUs([m], (x) => x.gatewayCpuS)),
      fmtUs(cpuPerRequestUs([m], (x) => x.phpCpuS)),
      fmtMs(m.p99Ms),
      fmtMBs(m.bytesPerSec),
      fmtErrors(m),
    ]),
  );
  return {
    title: 'Compression: gzip of a 50 KB HTML page (wrk)',
    method: [
      `\`/page50k.php\` sends \`page50k.html\` (${(page.length / 1024).toFixed(1)} KB of generated article HTML, the same bytes every run) with \`readfile()\`, as \`text/html\`. Every request carries \`${ACCEPT}\`.`,
      `Per level, a fresh pair: nginx with \`gzip on; gzip_comp_level N;\` (text/html is always in gzip_types; window and memory level are nginx's defaults) and phpgate with \`compression: { gzip: true, brotli: false, gzip_level: N }\` (node's zlib, default window and memory level as nginx). Before measuring, both are checked to answer \`Content-Encoding: gzip\` with a body that inflates to the page; its size is in the table.`,
      `${ctx.warmupS} s warm-up each, then ${ctx.rounds} rounds interleaved. Command: \`${wrkCommandLine(o)}\` (16 connections, the same for both; closed loop, so rps differ and the CPU time is divided by each one's own completed requests).`,
      "CPU per request: utime + stime from /proc/PID/stat (clock ticks ÷ `getconf CLK_TCK`) of the gateway processes only — the nginx master and workers; the phpgate node process with all its threads (zlib runs on libuv's pool) — read before and after each measured run, summed over the rounds and divided by the requests wrk completed in them. The PHP workers' (php-fpm master and children; php-cgi masters and children) is shown apart.",
    ],
    results: [table],
    rounds: [
      mdTable(
        ['level', 'round', 'server', 'rps', 'gateway CPU/request', 'PHP CPU/request', 'p99', 'MB/s', 'errors'],
        roundRows,
        [0, 1, 3, 4, 5, 6, 7],
      ),
    ],
    targets: [],
    warnings,
  };
}

export const gzip: Group = {
  cases: [{ id: 'gzip', help: 'gzip of a 50 KB HTML page through PHP at levels 1 and 6: gateway CPU per request' }],
  tool: 'wrk',
  nginx: true,
  expectedS: (_ids, o) => LEVELS.length * (5 + 2 * (o.warmupS + 1 + o.rounds * (o.durationS + 1))),
  run,
};
