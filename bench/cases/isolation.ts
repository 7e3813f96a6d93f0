/**
 * Heavy/fast isolation: a second, small PHP pool for slow endpoints is kept saturated by a background load while
 * the fast pool's latency is measured. nginx: two php-fpm pools behind two `location` blocks; phpgate: `pools`.
 */
import type { Group } from '../lib/group.js';
import { checkBody, request } from '../lib/http.js';
import { fmtErrors, fmtMs, fmtRatio, fmtRps, inRoundOrder, mdTable, medianOf, type Section } from '../lib/report.js';
import { fmtRound, interleave, measureWrk, startPair, WORKERS, type Context, type Measured, type Side } from '../lib/servers.js';
import { runWrk, wrkCommandLine, type WrkOptions, type WrkResult } from '../lib/wrk.js';

const FAST = '/index.php';
const HEAVY = '/heavy.php';
const HEAVY_WORKERS = 2;
/** heavy.php takes 0.5 s: the heavy pool answers at most this many requests per second. */
const HEAVY_MAX_RPS = HEAVY_WORKERS / 0.5;
/** Background connections to the heavy pool: four times its workers, so it stays saturated with a queue. */
const HEAVY_CONNECTIONS = 4 * HEAVY_WORKERS;
/** The background load runs this long before the measured run starts (and after it ends). */
const LEAD_S = 1.5;

const NGINX_HEAVY_LOCATION = [
  'location ~ ^/heavy[^/]*\\.php$ {',
  '  include /etc/nginx/fastcgi_params;',
  '  fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;',
  '  fastcgi_pass unix:RUN/php-fpm-heavy.sock;',
  '}',
];
const PHPGATE_POOLS = [{ name: 'heavy', patterns: ['/heavy*'], worker_count: HEAVY_WORKERS, timeout_ms: 60_000 }];

interface Round {
  /** The fast pool alone, then with the heavy pool saturated. */
  alone: Measured;
  loaded: Measured;
  /** The background load on the heavy pool during `loaded`. */
  heavy: WrkResult;
}

const sleep = (s: number) => new Promise<void>((r) => setTimeout(r, s * 1000));

function backgroundOptions(durationS: number): WrkOptions {
  return { threads: 1, connections: HEAVY_CONNECTIONS, durationS: Math.ceil(durationS + 2 * LEAD_S), timeoutS: 10 };
}

async function oneRound(side: Side, o: WrkOptions): Promise<Round> {
  const alone = await measureWrk(side, FAST, o);
  const [loaded, heavy] = await Promise.all([
    sleep(LEAD_S).then(() => measureWrk(side, FAST, o)),
    runWrk(`http://127.0.0.1:${side.port}${HEAVY}`, backgroundOptions(o.durationS)),
  ]);
  return { alone, loaded, heavy };
}

async function run(ctx: Context): Promise<Section> {
  console.log(`\nstarting nginx + php-fpm and phpgate, each with a second PHP pool of ${HEAVY_WORKERS} workers for ${HEAVY}`);
  const p = await startPair(ctx, {
    nginx: { extraPools: [{ name: 'heavy', workers: HEAVY_WORKERS }], serverDirectives: NGINX_HEAVY_LOCATION },
    phpgate: { pools: PHPGATE_POOLS },
  });
  for (const s of p.sides) {
    checkBody(s.name, FAST, await request(s.port, FAST), 'hello');
    checkBody(s.name, HEAVY, await request(s.port, HEAVY), 'heavy');
  }
  const o: WrkOptions = { threads: 2, connections: 32, durationS: ctx.durationS };
  console.log(
    `\nisolation (${FAST} measured, ${HEAVY} saturated meanwhile): warm-up ${ctx.warmupS} s each, then ${ctx.rounds} rounds per server of ${ctx.durationS} s alone and ${ctx.durationS} s with the heavy pool saturated`,
  );
  for (const s of p.sides) await measureWrk(s, FAST, { ...o, durationS: ctx.warmupS });
  const [nginx, phpgate] = await interleave(p.sides, ctx.rounds, async (s, round) => {
    const r = await oneRound(s, o);
    console.log(
      fmtRound(
        round,
        s.name,
        r.loaded.rps,
        `fast p99 ${fmtMs(r.alone.p99Ms)} alone → ${fmtMs(r.loaded.p99Ms)} with heavy saturated (heavy answered ${r.heavy.rps.toFixed(1)} rps)${r.loaded.errors > 0 ? `, errors: ${r.loaded.errorDetail}` : ''}`,
      ),
    );
    return r;
  });
  await p.stop();

  const rows = (
    [
      ['nginx + php-fpm', nginx!],
      ['phpgate', phpgate!],
    ] as const
  ).map(([who, rounds]) => {
    const alone = rounds.map((r) => r.alone);
    const loaded = rounds.map((r) => r.loaded);
    const p99 = (runs: Measured[]) => medianOf(runs, (m) => m.p99Ms);
    return [
      who,
      `${fmtRps(medianOf(alone, (m) => m.rps))} → ${fmtRps(medianOf(loaded, (m) => m.rps))}`,
      `${fmtMs(medianOf(alone, (m) => m.p50Ms))} → ${fmtMs(medianOf(loaded, (m) => m.p50Ms))}`,
      `${fmtMs(p99(alone))} → **${fmtMs(p99(loaded))}**`,
      fmtRatio(p99(loaded) / p99(alone)),
      `${medianOf(rounds, (r) => r.heavy.rps).toFixed(1)} (at most ${HEAVY_MAX_RPS})`,
      String(loaded.reduce((a, m) => a + m.errors, 0)),
    ];
  });
  const loadedP99 = (rounds: Round[]) => medianOf(rounds, (r) => r.loaded.p99Ms);
  const roundRows = inRoundOrder([
    ['nginx', nginx!],
    ['phpgate', phpgate!],
  ]).map(({ round, who, run: r }) => [
    String(round),
    who,
    fmtRps(r.alone.rps),
    fmtMs(r.alone.p99Ms),
    fmtRps(r.loaded.rps),
    fmtMs(r.loaded.p50Ms),
    fmtMs(r.loaded.p99Ms),
    r.heavy.rps.toFixed(1),
    fmtErrors(r.loaded),
    fmtErrors(r.heavy),
  ]);
  const warnings = [...nginx!, ...phpgate!].some((r) => r.loaded.errors > 0)
    ? ['isolation: errors on the fast pool while the heavy one was saturated (see every round)']
    : [];
  return {
    title: 'Heavy/fast isolation (wrk)',
    method: [
      `Two PHP pools on each side: the fast one (${WORKERS} workers, PHP hello \`${FAST}\`) and a heavy one of ${HEAVY_WORKERS} workers for \`${HEAVY}\` (\`usleep(500000)\`: it holds a worker, not a CPU). nginx: a second php-fpm pool \`[heavy]\` (a copy of the anchor's, ${HEAVY_WORKERS} workers, its own socket) and \`${NGINX_HEAVY_LOCATION[0]} … fastcgi_pass unix:…/php-fpm-heavy.sock; }\` before the anchor's PHP location. phpgate: \`pools: ${JSON.stringify(PHPGATE_POOLS)}\`.`,
      `Each round and server: ${ctx.durationS} s of \`${wrkCommandLine(o)}\` on the fast pool alone; then a background \`${wrkCommandLine(backgroundOptions(ctx.durationS))}\` on \`${HEAVY}\` (${HEAVY_CONNECTIONS} connections for ${HEAVY_WORKERS} workers: saturated, with a queue), and after ${LEAD_S} s the same measured run on the fast pool. The heavy pool's answers per second show it was saturated (at most ${HEAVY_MAX_RPS}).`,
    ],
    results: [
      mdTable(
        [
          'server',
          'fast rps alone → heavy saturated',
          'fast p50',
          'fast p99',
          'p99 saturated ÷ alone',
          'heavy answered rps',
          'fast errors (saturated)',
        ],
        rows,
        [1, 2, 3, 4, 5, 6],
      ),
      `Fast-pool p99 with the heavy pool saturated, phpgate ÷ nginx: ${fmtRatio(loadedP99(phpgate!) / loadedP99(nginx!))} (medians; lower is better for phpgate).`,
    ],
    rounds: [
      mdTable(
        ['round', 'server', 'alone rps', 'alone p99', 'saturated rps', 'saturated p50', 'saturated p99', 'heavy rps', 'fast errors', 'heavy errors'],
        roundRows,
        [0, 2, 3, 4, 5, 6, 7],
      ),
    ],
    targets: [],
    warnings,
  };
}

export const isolation: Group = {
  cases: [{ id: 'isolation', help: 'fast-pool latency while a heavy pool is saturated (two pools on both sides)' }],
  tool: 'wrk',
  nginx: true,
  expectedS: (_ids, o) => 5 + 2 * (o.warmupS + 1) + o.rounds * 2 * (2 * o.durationS + 2 * LEAD_S + 4),
  run,
};
