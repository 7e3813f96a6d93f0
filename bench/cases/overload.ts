/**
 * Overload: twice as many connections as the PHP pool and its queue can hold, on a 20 ms script. What matters is
 * how the excess is turned away: answers by status (503 from phpgate's queue limit, 502 from nginx when php-fpm's
 * listen backlog is full) against connection errors and timeouts.
 */
import path from 'node:path';
import type { Group } from '../lib/group.js';
import { checkBody, request } from '../lib/http.js';
import { fmtMs, fmtPct, fmtRps, inRoundOrder, mdTable, medianOf, type Section } from '../lib/report.js';
import { fmtRound, interleave, measureWrk, startPair, WORKERS, type Context, type Measured } from '../lib/servers.js';
import { LUA_DIR } from '../lib/site.js';
import { wrkCommandLine, type WrkOptions } from '../lib/wrk.js';

const PATH = '/slow.php';
/** phpgate's php.queue_limit and php-fpm's listen.backlog: the pool takes WORKERS + QUEUE requests at a time. */
const QUEUE = 28;
const CAPACITY = WORKERS + QUEUE;
const CONNECTIONS = 2 * CAPACITY;
const TIMEOUT_S = 5;

/** The outcomes counted, in the order shown. */
const OUTCOMES = ['200', '503', '502', 'other status', 'connect errors', 'read/write errors', 'timeouts'] as const;

function outcomes(m: Measured): Record<(typeof OUTCOMES)[number], number> {
  const st = m.statuses ?? {};
  const known = (st[200] ?? 0) + (st[503] ?? 0) + (st[502] ?? 0);
  const all = Object.values(st).reduce((a, n) => a + n, 0);
  return {
    '200': st[200] ?? 0,
    '503': st[503] ?? 0,
    '502': st[502] ?? 0,
    'other status': all - known,
    'connect errors': m.socketErrors.connect,
    'read/write errors': m.socketErrors.read + m.socketErrors.write,
    timeouts: m.socketErrors.timeout,
  };
}

const sumOutcomes = (runs: Measured[]) => {
  const total = Object.fromEntries(OUTCOMES.map((k) => [k, 0])) as Record<(typeof OUTCOMES)[number], number>;
  for (const m of runs) for (const [k, n] of Object.entries(outcomes(m))) total[k as (typeof OUTCOMES)[number]] += n;
  return total;
};

async function run(ctx: Context): Promise<Section> {
  console.log(`\nstarting nginx + php-fpm (listen.backlog ${QUEUE}) and phpgate (queue_limit ${QUEUE})`);
  const p = await startPair(ctx, { nginx: { poolDirectives: { 'listen.backlog': String(QUEUE) } }, phpgate: { queueLimit: QUEUE } });
  for (const s of p.sides) checkBody(s.name, PATH, await request(s.port, PATH), 'slow');
  const o: WrkOptions = {
    threads: 2,
    connections: CONNECTIONS,
    durationS: ctx.durationS,
    timeoutS: TIMEOUT_S,
    script: { file: path.join(LUA_DIR, 'status.lua') },
  };
  console.log(`\noverload (${PATH}, ${CONNECTIONS} connections for ${CAPACITY} places): ${ctx.rounds} × ${ctx.durationS} s per server, interleaved`);
  const [nginx, phpgate] = await interleave(p.sides, ctx.rounds, async (s, round) => {
    const m = await measureWrk(s, PATH, o);
    const c = outcomes(m);
    console.log(
      fmtRound(
        round,
        s.name,
        m.rps,
        `200: ${c['200']}, 503: ${c['503']}, 502: ${c['502']}, other: ${c['other status']}, socket errors: ${c['connect errors'] + c['read/write errors'] + c.timeouts}`,
      ),
    );
    return m;
  });
  await p.stop();

  const rows = (
    [
      ['nginx + php-fpm', nginx!],
      ['phpgate', phpgate!],
    ] as const
  ).map(([who, runs]) => {
    const t = sumOutcomes(runs);
    const all = Object.values(t).reduce((a, n) => a + n, 0);
    const durationS = runs.length * ctx.durationS;
    return [
      who,
      fmtRps(t['200'] / durationS),
      ...OUTCOMES.map((k) => `${fmtPct(t[k], all)} (${t[k].toLocaleString('en-US')})`),
      fmtMs(medianOf(runs, (m) => m.p99Ms)),
    ];
  });
  const roundRows = inRoundOrder([
    ['nginx', nginx!],
    ['phpgate', phpgate!],
  ]).map(({ round, who, run: m }) => [String(round), who, ...OUTCOMES.map((k) => String(outcomes(m)[k])), fmtMs(m.p50Ms), fmtMs(m.p99Ms)]);
  return {
    title: 'Overload: 2× what the pool and its queue take (wrk)',
    method: [
      `\`${PATH}\` (\`usleep(20000)\`): ${WORKERS} workers answer about ${WORKERS * 50} requests per second. Both sides hold ${CAPACITY} requests (${WORKERS} running + ${QUEUE} waiting): phpgate with \`php.queue_limit: ${QUEUE}\` (past it: 503 with Retry-After), php-fpm with \`listen.backlog = ${QUEUE}\` (past it nginx's connect() to the socket fails: 502).`,
      `${ctx.rounds} rounds interleaved, no warm-up (it would be overload too). Command: \`${wrkCommandLine(o)}\`: ${CONNECTIONS} connections, twice the capacity; bench/lua/status.lua counts the answers by status. A closed loop: a connection that is turned away at once asks again at once, so the shares say how the excess is refused, not how many clients were.`,
    ],
    results: [
      mdTable(
        ['server', 'answered 200 per second', ...OUTCOMES.map((k) => (/^\d+$/.test(k) ? `status ${k}` : k)), 'p99 (all answers)'],
        rows,
        [1, 2, 3, 4, 5, 6, 7, 8, 9],
      ),
      'Shares of everything wrk counted (answers by status, plus its socket errors), all rounds together.',
    ],
    rounds: [mdTable(['round', 'server', ...OUTCOMES, 'p50', 'p99'], roundRows, [0, 2, 3, 4, 5, 6, 7, 8, 9, 10])],
    targets: [],
    warnings: [],
  };
}

export const overload: Group = {
  cases: [{ id: 'overload', help: '2× the connections the PHP pool + queue take: shares of 503/502 vs errors' }],
  tool: 'wrk',
  nginx: true,
  expectedS: (_ids, o) => 5 + o.rounds * 2 * (o.durationS + TIMEOUT_S + 1),
  run,
};
