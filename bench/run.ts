/**
 * phpgate against nginx + php-fpm on one docroot, case by case (bench/cases/), interleaved rounds; prints the
 * tables and overwrites bench/RESULTS.md with them, the machine facts and the method.
 *
 *   npm run bench [-- --only CASE[,CASE…]] [--duration SECONDS] [--rounds N] [--no-install]
 *
 * The gateway is compiled from the working tree first (as `npm start` runs it). Needs nginx, php-fpm, php-cgi,
 * openssl, wrk and h2load; as root it installs the missing ones with apt-get. Loopback only; everything it starts
 * is stopped by pid on exit, Ctrl-C or error, and the whole run is bounded in time. Not part of `npm test`: speed
 * is measured and reported here, never asserted.
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzip } from './cases/gzip.js';
import { h2 } from './cases/h2.js';
import { http1 } from './cases/http1.js';
import { idle } from './cases/idle.js';
import { isolation } from './cases/isolation.js';
import { overload } from './cases/overload.js';
import { ratelimit } from './cases/ratelimit.js';
import type { Group } from './lib/group.js';
import { h2loadVersion } from './lib/h2load.js';
import { ensurePrograms, installHint, type Program } from './lib/install.js';
import { buildGateway } from './lib/phpgate.js';
import { consoleSummary, machineFacts, phpgateSource, writeReport, type Section } from './lib/report.js';
import { PHP_INI, WORKERS, type Context } from './lib/servers.js';
import { makeSite } from './lib/site.js';
import { stopAllTools } from './lib/tool.js';
import { wrkVersion } from './lib/wrk.js';

const RESULTS = fileURLToPath(new URL('./RESULTS.md', import.meta.url));
/** In the order they run. */
const GROUPS: readonly Group[] = [http1, gzip, isolation, overload, idle, h2, ratelimit];
const DEFAULT_DURATION_S = 6;
const DEFAULT_ROUNDS = 3;
const WARMUP_S = 2;

const ALIASES: Record<string, string[]> = {
  static: ['small', 'big'],
  h2: ['h2-small', 'h2-php'],
  all: GROUPS.flatMap((g) => g.cases.map((c) => c.id)),
};

const USAGE = `Usage: npm run bench [-- --only CASE[,CASE…]] [--duration SECONDS] [--rounds N] [--no-install]
  --only        cases to run (default: all):
${GROUPS.flatMap((g) => g.cases.map((c) => `                  ${c.id.padEnd(10)} ${c.help}`)).join('\n')}
${Object.entries(ALIASES)
  .map(([a, ids]) => `                  ${a.padEnd(10)} ${a === 'all' ? 'every case' : ids.join(',')}`)
  .join('\n')}
  --duration    seconds per measured run (default ${DEFAULT_DURATION_S}), after a ${WARMUP_S} s warm-up per server and case
  --rounds      measured runs per server and case, interleaved (default ${DEFAULT_ROUNDS})
  --no-install  never run apt-get for missing programs (as root it otherwise installs them)
`;

function usage(message: string): never {
  process.stderr.write(`bench: ${message}\n${USAGE}`);
  process.exit(2);
}

interface Cli {
  ids: Set<string>;
  durationS: number;
  rounds: number;
  install: boolean;
  only: string | undefined;
}

function parseCli(): Cli {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        only: { type: 'string' },
        duration: { type: 'string' },
        rounds: { type: 'string' },
        'no-install': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    usage((err as Error).message);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const durationS = Number(values.duration ?? DEFAULT_DURATION_S);
  if (!Number.isInteger(durationS) || durationS < 1 || durationS > 300) usage('--duration must be a whole number of seconds from 1 to 300');
  const rounds = Number(values.rounds ?? DEFAULT_ROUNDS);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20) usage('--rounds must be a whole number from 1 to 20');
  const known = new Set(ALIASES['all']);
  const ids = new Set<string>();
  for (const sel of (values.only ?? 'all').split(',').map((s) => s.trim())) {
    const expanded = ALIASES[sel] ?? (known.has(sel) ? [sel] : undefined);
    if (expanded === undefined) usage(`unknown case "${sel}"`);
    expanded.forEach((id) => ids.add(id));
  }
  return { ids, durationS, rounds, install: values['no-install'] !== true, only: values.only };
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

for (const [sig, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
  ['SIGHUP', 129],
] as const) {
  process.on(sig, () => void shutdown(code, `${sig}: stopping everything`));
}

async function main(): Promise<void> {
  const cli = parseCli();
  let plan = GROUPS.map((g) => ({ g, ids: g.cases.map((c) => c.id).filter((id) => cli.ids.has(id)) })).filter((p) => p.ids.length > 0);

  // Programs: the servers are needed by every case but the rate-limit one; a missing load generator skips its cases.
  const needed = new Set<Program>(['php-cgi']);
  for (const { g } of plan) {
    if (g.tool !== null) needed.add(g.tool);
    if (g.nginx) needed.add('nginx + php-fpm');
  }
  const missing = ensurePrograms([...needed], cli.install);
  if (missing.includes('php-cgi')) usage(`php-cgi is missing: ${installHint(['php-cgi'])}`);
  const skipped: string[] = [];
  plan = plan.filter(({ g, ids }) => {
    const lacking = [...(g.tool === null ? [] : [g.tool]), ...(g.nginx ? ['nginx + php-fpm' as const] : [])].filter((p) => missing.includes(p));
    if (lacking.length > 0) skipped.push(`${ids.join(', ')}: ${lacking.join(' and ')} not installed (\`${installHint(lacking)}\`)`);
    return lacking.length === 0;
  });
  if (plan.length === 0) usage('nothing left to run: install the programs named above');
  const tools = [...new Set(plan.map((p) => p.g.tool))].flatMap((t) => (t === null ? [] : [`${t}: ${t === 'wrk' ? wrkVersion() : h2loadVersion()}`]));

  const loadAtStart = os.loadavg();
  const source = phpgateSource();
  console.log('compiling the gateway (tsconfig.build.json) …');
  const complaints = buildGateway();
  if (complaints !== '')
    process.stderr.write(`bench: tsc reported errors (work in progress elsewhere in the tree?); measuring what it emitted:\n${complaints}\n`);

  const timing = { durationS: cli.durationS, rounds: cli.rounds, warmupS: WARMUP_S };
  // Bounded: each group's own estimate, plus start-up and shut-down allowance; then whatever still runs is stopped.
  const limitS = 60 + plan.reduce((a, { g, ids }) => a + 60 + g.expectedS(ids, timing), 0);
  const deadline = setTimeout(() => void shutdown(1, `gave up: still running after ${limitS} s`), limitS * 1000);
  deadline.unref();

  const site = await makeSite();
  cleanups.push(() => site.remove());
  const ctx: Context = {
    site,
    ...timing,
    started: async (start) => {
      const server = await start;
      cleanups.push(() => server.stop());
      return server;
    },
    phpDifferences: null,
  };
  console.log(`site: ${site.docroot}; ${cli.rounds} rounds of ${cli.durationS} s per server and case; time limit ${limitS} s`);

  const sections: Section[] = [];
  for (const { g, ids } of plan) sections.push(await g.run(ctx, ids));

  const differences =
    ctx.phpDifferences === null
      ? ''
      : ctx.phpDifferences.length === 0
        ? ' Every other php.ini setting is equal too (checked through `/php-settings.php`).'
        : ` Other php.ini settings that differ between the two SAPIs (checked through \`/php-settings.php\`): ${ctx.phpDifferences.join('; ')}.`;
  const method = [
    'All servers on 127.0.0.1, on the same machine as the load generator (so it, nginx, PHP and node share the CPUs above). Each group of cases starts its own servers and stops them when it is done.',
    `nginx + php-fpm: \`test/anchors/\` configs through \`test/support/nginx-fpm.ts\` (nginx \`worker_processes 2\`, \`sendfile on\`, access log off; php-fpm \`pm = static\`, ${WORKERS} workers), plus what a case adds (named in its method). One change to the anchor: nginx connects to php-fpm per request, as a stock Debian site does, instead of keeping FastCGI connections (\`keepalive 8\` + \`fastcgi_keep_conn on\`). php-fpm ties a worker to each kept connection, so once one nginx worker holds idle connections to all ${WORKERS} php-fpm workers, requests reaching the other nginx worker wait up to the upstream keepalive timeout (60 s): with the anchor as it is, nginx's PHP cases showed p99 of 1.5–1.8 s and wrk timeouts.`,
    `phpgate: compiled from the working tree with \`tsc -p tsconfig.build.json\` at the start of the run and started as \`node …/gateway/cli.js --config FILE\` (as \`npm start\` runs it; one process), \`php: { worker_count: ${WORKERS}, max_requests: 0, queue_limit: 511 }\` (511: php-fpm's default listen backlog), \`compression\` off unless the case is about it (gzip is off in the nginx anchor), \`logging: { level: warn }\`, plus what a case adds.`,
    `Same PHP settings: php-fpm and php-cgi read the same Debian php.ini and conf.d (opcache on, JIT off), and both get these on their command line as \`-d\` (php-fpm directly, phpgate through \`php.ini\`): ${Object.entries(
      PHP_INI,
    )
      .map(([k, v]) => `\`${k}=${v}\``)
      .join(', ')}. Each pair of servers is checked to have opcache on and these values equal.${differences}`,
    `Rounds: after a ${WARMUP_S} s warm-up of each server, ${cli.rounds} measured runs of ${cli.durationS} s per server, interleaved (nginx, phpgate, nginx, phpgate, …; where a case also measures the bare node server, the ceiling, it runs third in each round), so drift hits all alike. Reported: the median of the rounds (every round is listed at the end); ratios are phpgate's medians over nginx's (phpgate/nginx) or over the bare node server's (phpgate/bare).`,
    'Memory: RSS from /proc/PID/stat of the gateway processes (nginx master + workers; the phpgate node process) and, apart, of all PHP processes (php-fpm master + children; the php-cgi masters + children), summed over each process tree.',
  ];
  await writeReport(RESULTS, {
    date: new Date(),
    facts: machineFacts(tools, loadAtStart, os.loadavg(), source),
    method,
    sections,
    skipped,
    reproduce: `npm run bench -- ${cli.only === undefined ? '' : `--only ${cli.only} `}--duration ${cli.durationS} --rounds ${cli.rounds}`,
  });

  for (const s of sections) console.log(consoleSummary(s));
  for (const s of skipped) console.log(`not run: ${s}`);
  console.log(`\nwritten: ${path.relative(process.cwd(), RESULTS)}`);
}

main().then(
  () => shutdown(0),
  (err: unknown) => shutdown(1, err instanceof Error ? err.message : String(err)),
);
