/**
 * Memory at rest and with 1,000 idle keep-alive connections: each connection makes one request, then stays open
 * doing nothing (held by this process's http.Agent). RSS of the gateway and of the PHP workers, nginx and phpgate.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { Group } from '../lib/group.js';
import { checkBody, request } from '../lib/http.js';
import { fmtMB, mdTable, type Section, type Target } from '../lib/report.js';
import { rssSplit, usage, type RssSplit, type Usage } from '../lib/procfs.js';
import { startPair, type Context, type Side } from '../lib/servers.js';

const CONNECTIONS = 1000;
/** Connections opened at a time (the servers' listen backlogs are 511). */
const BATCH = 100;
const SETTLE_S = 2;
const WARM_REQUESTS = 50;
const TARGETS = { idle: 60 * 1024 * 1024, connections: 150 * 1024 * 1024 };
const PATH = '/small.css';

const sleep = (s: number) => new Promise<void>((r) => setTimeout(r, s * 1000));

/** This process's soft limit on open files (children inherit it): each held connection takes one here and one in the server. */
function openFilesLimit(): number {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m === null || m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

interface Measure {
  /** Just started (it has answered the start-up checks), after some traffic, and holding the connections. */
  fresh: Usage;
  idle: Usage;
  held: Usage;
}

/**
 * Opens CONNECTIONS keep-alive connections (one request each), waits, measures, and closes them. Each has an
 * agent of its own, which keeps its one socket open and idle after the answer (one shared agent would reuse them).
 */
async function withConnections(side: Side, ctx: Context): Promise<Usage> {
  const agents = Array.from({ length: CONNECTIONS }, () => new http.Agent({ keepAlive: true, maxSockets: 1 }));
  try {
    for (let opened = 0; opened < CONNECTIONS; opened += BATCH) {
      const batch = await Promise.all(agents.slice(opened, opened + BATCH).map((agent) => request(side.port, PATH, { agent })));
      for (const res of batch) checkBody(side.name, PATH, res, ctx.site.files[PATH]!);
    }
    await sleep(SETTLE_S);
    const held = usage(side.roots);
    const open = agents.filter((a) => Object.values(a.freeSockets).some((list) => list !== undefined && list.some((s) => !s.destroyed))).length;
    if (open !== CONNECTIONS) throw new Error(`${side.name}: ${open} of ${CONNECTIONS} keep-alive connections still open after ${SETTLE_S} s`);
    return held;
  } finally {
    for (const a of agents) a.destroy();
  }
}

/**
 * The floor under phpgate's number: the same node binary running nothing (an idle timer), its RSS after SETTLE_S,
 * with how much of it is file-backed (pages of the node binary and its libraries, mapped from the page cache).
 */
async function nodeAlone(): Promise<RssSplit | null> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)'], { stdio: 'ignore' });
  try {
    await sleep(SETTLE_S);
    return child.pid === undefined ? null : rssSplit(child.pid);
  } finally {
    child.kill();
  }
}

/** Why phpgate's idle RSS is what it is: node itself, then what phpgate loads on top (its code, dependencies, heap). */
function idleNote(gw: RssSplit | null, bare: RssSplit | null): string[] {
  if (gw === null || bare === null) return [];
  const total = (r: RssSplit) => r.anonBytes + r.fileBytes;
  return [
    `What phpgate's idle RSS is made of: ${fmtMB(total(gw))} = ${fmtMB(gw.fileBytes)} file-backed (mostly pages of the node binary) + ${fmtMB(gw.anonBytes)} anonymous (V8's heap, code and phpgate's state). ` +
      `The same node binary running nothing takes ${fmtMB(total(bare))} here (${fmtMB(bare.fileBytes)} file-backed + ${fmtMB(bare.anonBytes)} anonymous), ` +
      `so phpgate's code, its dependencies and what they keep add ${fmtMB(total(gw) - total(bare))} to node's own.`,
  ];
}

async function run(ctx: Context): Promise<Section> {
  const limit = openFilesLimit();
  if (limit < CONNECTIONS + 200) {
    const why = `open-files limit ${limit} is below ${CONNECTIONS + 200} (raise it with \`ulimit -n 4096\`)`;
    return {
      title: 'Memory: idle, and with 1,000 idle keep-alive connections',
      method: [],
      results: [`Not run: ${why}.`],
      rounds: [],
      targets: [],
      warnings: [`idle: ${why}`],
    };
  }
  console.log(`\nstarting nginx + php-fpm and phpgate (memory at rest and with ${CONNECTIONS} idle connections)`);
  const p = await startPair(ctx);
  const measures: Measure[] = [];
  let gwSplit: RssSplit | null = null;
  await sleep(SETTLE_S);
  const fresh = p.sides.map((s) => usage(s.roots));
  for (const [i, side] of p.sides.entries()) {
    // Warm: every kind of answer once, so lazily built parts exist, as on a server that has been up a while.
    for (let i = 0; i < WARM_REQUESTS; i++)
      await Promise.all([request(side.port, '/index.php'), request(side.port, PATH), request(side.port, '/realistic.php')]);
    await sleep(SETTLE_S);
    const idle = usage(side.roots);
    if (side.name === 'phpgate') gwSplit = rssSplit(p.gw.pid);
    const held = await withConnections(side, ctx);
    await side.check(`${CONNECTIONS} idle connections`);
    console.log(
      `  ${side.name.padEnd(8)} gateway ${fmtMB(fresh[i]!.gatewayRssBytes)} at start, ${fmtMB(idle.gatewayRssBytes)} idle after traffic → ${fmtMB(held.gatewayRssBytes)} with ${CONNECTIONS} connections; PHP ${fmtMB(idle.phpRssBytes)} → ${fmtMB(held.phpRssBytes)}`,
    );
    measures.push({ fresh: fresh[i]!, idle, held });
  }
  await p.stop();
  const bare = await nodeAlone();

  const rows = p.sides.map((s, i) => {
    const { fresh: start, idle, held } = measures[i]!;
    const perConn = (held.gatewayRssBytes - idle.gatewayRssBytes) / CONNECTIONS / 1024;
    return [
      s.name === 'nginx'
        ? `nginx (${idle.gatewayProcs} processes) + php-fpm (${idle.phpProcs})`
        : `phpgate (${idle.gatewayProcs} process) + php-cgi (${idle.phpProcs})`,
      fmtMB(start.gatewayRssBytes),
      fmtMB(idle.gatewayRssBytes),
      fmtMB(held.gatewayRssBytes),
      `${perConn.toFixed(1)} KB`,
      fmtMB(idle.phpRssBytes),
      fmtMB(held.phpRssBytes),
    ];
  });
  const gw = measures[1]!;
  const targets: Target[] = [
    {
      what: 'phpgate gateway RSS idle ≤ 60 MB',
      value: `${fmtMB(gw.idle.gatewayRssBytes)} after some traffic (${fmtMB(gw.fresh.gatewayRssBytes)} just started)`,
      met: gw.idle.gatewayRssBytes <= TARGETS.idle,
    },
    {
      what: `phpgate gateway RSS with ${CONNECTIONS.toLocaleString('en-US')} idle keep-alive connections ≤ 150 MB`,
      value: fmtMB(gw.held.gatewayRssBytes),
      met: gw.held.gatewayRssBytes <= TARGETS.connections,
    },
  ];
  return {
    title: 'Memory: idle, and with 1,000 idle keep-alive connections',
    method: [
      `A fresh pair (defaults above); its RSS ${SETTLE_S} s after start ("just started": it has answered the start-up checks only). Then each server gets ${WARM_REQUESTS} rounds of \`/index.php\`, \`${PATH}\` and \`/realistic.php\`; ${SETTLE_S} s later its RSS is read ("idle after traffic", the one the target is judged on: a server in use has served requests). Then the bench opens ${CONNECTIONS} keep-alive connections to it (${BATCH} at a time, each makes one GET of \`${PATH}\` and then stays open, idle, each in an http.Agent of its own), waits ${SETTLE_S} s, reads RSS again, checks all ${CONNECTIONS} are still open, and closes them. One server at a time.`,
      `The floor: after the pair has stopped, the same node binary is started with nothing to run (\`node -e 'setInterval(() => {}, 1 << 30)'\`) and its RSS read ${SETTLE_S} s later; phpgate's and its split into file-backed and anonymous pages come from /proc/PID/status (RssFile, RssAnon), read with its idle RSS.`,
      "RSS from /proc/PID/stat, summed over each side's processes: gateway (nginx master + workers; the phpgate node process) and PHP (php-fpm master + workers; php-cgi masters + children; shared pages such as opcache count once per process on both sides).",
    ],
    results: [
      mdTable(
        [
          'server',
          'gateway RSS just started',
          'gateway RSS idle after traffic',
          `gateway RSS with ${CONNECTIONS} connections`,
          'per connection',
          'PHP RSS idle',
          `PHP RSS with ${CONNECTIONS} connections`,
        ],
        rows,
        [1, 2, 3, 4, 5, 6],
      ),
      ...idleNote(gwSplit, bare),
    ],
    rounds: [],
    targets,
    warnings: [],
  };
}

export const idle: Group = {
  cases: [{ id: 'idle', help: `gateway and PHP memory at rest and with ${CONNECTIONS} idle keep-alive connections` }],
  tool: null,
  nginx: true,
  expectedS: () => 40,
  run,
};
