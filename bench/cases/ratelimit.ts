/** phpgate's rate-limiting overhead: phpgate without rules against phpgate with one rule that never refuses. */
import type { Group } from '../lib/group.js';
import { checkBody, request } from '../lib/http.js';
import { startPhpgate } from '../lib/phpgate.js';
import { best, fmtErrors, fmtMBs, fmtMs, fmtRatio, fmtRps, inRoundOrder, mdTable, medianOf, type Section } from '../lib/report.js';
import { fmtRound, interleave, measureWrk, phpgateSide, WORKERS, type Context } from '../lib/servers.js';
import { wrkCommandLine, type WrkOptions } from '../lib/wrk.js';

/** The target (≤ 5% overhead) is finer than the spread between two rounds: more rounds here. */
const MIN_ROUNDS = 4;
const PATH = '/small.css';
const TARGET = 0.95;
/** Never refuses: a billion requests per second from one client. */
const RATE_RULE = { pattern: '/*', points: 1_000_000_000, duration_s: 1 };
const PROBE_PATH = '/rate-limit-probe';
const PROBE_RULE = { pattern: PROBE_PATH, points: 1, duration_s: 60 };
const RULE_YAML = `rate_limit: { rules: [{ pattern: "${RATE_RULE.pattern}", points: ${RATE_RULE.points}, duration_s: ${RATE_RULE.duration_s} }] }`;

const rounds = (o: { rounds: number }) => Math.max(MIN_ROUNDS, o.rounds);

async function run(ctx: Context): Promise<Section> {
  console.log(`\nstarting two phpgates: without rate_limit rules, and with ${RULE_YAML}`);
  const off = await ctx.started(startPhpgate(ctx.site.docroot, { workers: WORKERS }));
  const on = await ctx.started(startPhpgate(ctx.site.docroot, { workers: WORKERS, rateLimit: [RATE_RULE, PROBE_RULE] }));
  const gws = [
    { label: 'without rules', short: 'without', gw: off, side: phpgateSide(off), limited: false },
    { label: 'with the rule', short: 'with', gw: on, side: phpgateSide(on), limited: true },
  ] as const;
  console.log(`without rules on 127.0.0.1:${off.port} (pid ${off.pid}), with the rule on 127.0.0.1:${on.port} (pid ${on.pid})`);
  for (const g of gws) {
    checkBody(`phpgate ${g.label}`, PATH, await request(g.gw.port, PATH), ctx.site.files[PATH]!);
    // The rule is in force (RateLimit-* only come with 429s by default): a second, one-point rule on a probe path
    // refuses its second request; the measured path matches only the never-refusing rule.
    await request(g.gw.port, PROBE_PATH);
    const limited = (await request(g.gw.port, PROBE_PATH)).status === 429;
    if (limited !== g.limited) throw new Error(`phpgate ${g.label}: the rate limiter is ${limited ? 'on' : 'off'}`);
  }
  const o: WrkOptions = { threads: 2, connections: 32, durationS: ctx.durationS };
  console.log(
    `\nsmall file, rate limiting on vs off (${PATH}): warm-up ${ctx.warmupS} s each, then ${rounds(ctx)} × ${ctx.durationS} s per gateway, interleaved`,
  );
  for (const g of gws) await measureWrk(g.side, PATH, { ...o, durationS: ctx.warmupS });
  const [without, withRule] = await interleave(gws, rounds(ctx), async (g, round) => {
    const m = await measureWrk(g.side, PATH, o);
    console.log(fmtRound(round, g.short, m.rps, `p99 ${fmtMs(m.p99Ms)}${m.errors > 0 ? `, errors: ${m.errorDetail}` : ''}`));
    return m;
  });
  await on.stop();
  await off.stop();

  const ratioMedians = medianOf(withRule!, (m) => m.rps) / medianOf(without!, (m) => m.rps);
  const ratioBest = best(withRule!).rps / best(without!).rps;
  const results = mdTable(
    ['case', 'without rules rps', 'with the rule rps', 'ratio (medians)', 'ratio (best rounds)', 'p99 without / with (medians)'],
    [
      [
        `small file (2.7 KB) \`${PATH}\``,
        fmtRps(medianOf(without!, (m) => m.rps)),
        fmtRps(medianOf(withRule!, (m) => m.rps)),
        `**${fmtRatio(ratioMedians)}**`,
        fmtRatio(ratioBest),
        `${fmtMs(medianOf(without!, (m) => m.p99Ms))} / ${fmtMs(medianOf(withRule!, (m) => m.p99Ms))}`,
      ],
    ],
    [1, 2, 4],
  );
  const roundRows = inRoundOrder([
    ['without rules', without!],
    ['with the rule', withRule!],
  ]).map(({ round, who, run: m }) => [String(round), who, fmtRps(m.rps), fmtMs(m.p50Ms), fmtMs(m.p99Ms), fmtMBs(m.bytesPerSec), fmtErrors(m)]);
  const errors = [...without!, ...withRule!].some((m) => m.errors > 0);
  return {
    title: 'Rate-limit overhead (phpgate alone, wrk)',
    method: [
      `Two phpgate processes on the same docroot, no nginx: one without \`rate_limit\` rules and one with \`${RULE_YAML}\` (memory store, key: client address, so every request counts against one counter that never reaches its limit) plus a one-point rule on a probe path that proves the limiter is on. ${ctx.warmupS} s warm-up each, then ${rounds(ctx)} rounds interleaved (without, with, without, with, …). Command: \`${wrkCommandLine(o)}\`. A 5% threshold is within the round-to-round spread on a shared machine: the ratio of the medians is the one judged, the best rounds' is shown too.`,
    ],
    results: [results],
    rounds: [mdTable(['round', 'phpgate', 'rps', 'p50', 'p99', 'MB/s', 'errors'], roundRows, [0, 2, 3, 4, 5])],
    targets: [
      {
        what: `rate limiting on: with/without rps ≥ ${TARGET}×`,
        value: `${fmtRatio(ratioMedians)} (medians; best rounds ${fmtRatio(ratioBest)})`,
        met: ratioMedians >= TARGET,
      },
    ],
    warnings: errors ? ['rate-limit case: the load generator saw errors (see every round)'] : [],
  };
}

export const ratelimit: Group = {
  cases: [{ id: 'ratelimit', help: 'phpgate with one never-refusing memory-store rule vs without rules (small file)' }],
  tool: 'wrk',
  nginx: false,
  expectedS: (_ids, o) => 2 * (o.warmupS + 1 + rounds(o) * (o.durationS + 1)),
  run,
};
