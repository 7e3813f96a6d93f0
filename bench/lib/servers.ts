/**
 * What the cases share: the run's context, nginx + php-fpm and phpgate started side by side on the site with the
 * same PHP settings (checked, not assumed), the bare ceiling server beside them where a case measures it,
 * interleaved rounds, and a wrk run measured with the servers' CPU time and peak memory.
 */
import { startNginxFpm, type NginxFpm, type NginxFpmOptions } from '../../test/support/nginx-fpm.js';
import type { BareServer } from './bare.js';
import { request } from './http.js';
import { startPhpgate, type Phpgate, type PhpgateOptions } from './phpgate.js';
import type { RunningServer } from './server-process.js';
import { usage, watchPeakRss } from './procfs.js';
import type { Site } from './site.js';
import { runWrk, type WrkOptions, type WrkResult } from './wrk.js';

/** PHP workers per server: php-fpm's pm.max_children and phpgate's worker_count. */
export const WORKERS = 4;

/**
 * The opcache settings both php-fpm and php-cgi get on their command line (`-d`): PHP 8.2's defaults, written out
 * so that a machine's php.ini cannot make the two differ (Debian ships the same php.ini and conf.d for both SAPIs).
 */
export const PHP_INI: Readonly<Record<string, string>> = {
  'opcache.enable': '1',
  'opcache.memory_consumption': '128',
  'opcache.interned_strings_buffer': '8',
  'opcache.max_accelerated_files': '10000',
  'opcache.validate_timestamps': '1',
  'opcache.revalidate_freq': '2',
  'opcache.jit': 'off',
};

export interface Context {
  site: Site;
  durationS: number;
  rounds: number;
  warmupS: number;
  /** Starts a server and registers its stop() with the bench's cleanup (stop() is idempotent: a case may stop it early). */
  started<T extends { stop(): Promise<void> }>(start: Promise<T>): Promise<T>;
  /** php.ini settings in which php-fpm and php-cgi differed, filled by the first startPair(). */
  phpDifferences: string[] | null;
}

/** 'bare': the ceiling, node's own HTTP server answering the small file from memory (./bare-server.ts). */
export type ServerName = 'nginx' | 'phpgate' | 'bare';

/** One server under test, as the cases drive and measure it. */
export interface Side<N extends ServerName = ServerName> {
  name: N;
  port: number;
  /** Its processes' roots for procfs.usage(): phpgate's or the bare server's node process; nginx's and php-fpm's masters. */
  roots: number[];
  /** Rejects if the server died (during `what`). */
  check(what: string): Promise<void>;
}

export interface Pair {
  nginx: NginxFpm;
  gw: Phpgate;
  /** nginx first, as the rounds run: nginx, phpgate, nginx, phpgate, … */
  sides: readonly [Side<'nginx'>, Side<'phpgate'>];
  stop(): Promise<void>;
}

/** A server that is one node process the bench started (phpgate, the bare server): dead means its log is the story. */
function nodeProcessSide<N extends ServerName>(name: N, label: string, p: RunningServer): Side<N> {
  return {
    name,
    port: p.port,
    roots: [p.pid],
    check: (what) =>
      p.alive() ? Promise.resolve() : p.logTail().then((log) => Promise.reject(new Error(`${label} died during ${what}; its log:\n${log}`))),
  };
}

export const phpgateSide = (gw: Phpgate): Side<'phpgate'> => nodeProcessSide('phpgate', 'phpgate', gw);
export const bareSide = (b: BareServer): Side<'bare'> => nodeProcessSide('bare', 'the bare node server', b);

/** The settings both PHPs report through /php-settings.php: every ini value, and whether opcache is really on. */
async function phpSettings(port: number, who: string): Promise<{ ini: Record<string, unknown>; opcache_enabled: boolean }> {
  const res = await request(port, '/php-settings.php');
  if (res.status !== 200) throw new Error(`${who} /php-settings.php: status ${res.status}`);
  return JSON.parse(res.body.toString()) as { ini: Record<string, unknown>; opcache_enabled: boolean };
}

/**
 * Fails unless opcache is on in both PHPs and the pinned settings agree; returns the other ini keys whose values
 * differ (SAPI-specific ones such as cgi.* or fpm.*), for the report.
 */
async function comparePhp(nginxPort: number, gwPort: number): Promise<string[]> {
  const [fpm, cgi] = await Promise.all([phpSettings(nginxPort, 'php-fpm'), phpSettings(gwPort, 'php-cgi')]);
  if (!fpm.opcache_enabled || !cgi.opcache_enabled) {
    throw new Error(`opcache is off in ${[!fpm.opcache_enabled && 'php-fpm', !cgi.opcache_enabled && 'php-cgi'].filter(Boolean).join(' and ')}`);
  }
  const keys = [...new Set([...Object.keys(fpm.ini), ...Object.keys(cgi.ini)])].sort();
  const differ = keys.filter((k) => JSON.stringify(fpm.ini[k] ?? null) !== JSON.stringify(cgi.ini[k] ?? null));
  const pinned = differ.filter((k) => k in PHP_INI);
  if (pinned.length > 0) throw new Error(`php-fpm and php-cgi differ in ${pinned.join(', ')}`);
  return differ.map((k) => `${k} (php-fpm ${JSON.stringify(fpm.ini[k] ?? null)}, php-cgi ${JSON.stringify(cgi.ini[k] ?? null)})`);
}

/**
 * nginx + php-fpm and phpgate on the site, WORKERS PHP workers each and PHP_INI on both; `nginx` and `phpgate`
 * add each server's own options for the case. nginx connects to php-fpm per request, as a stock Debian site does:
 * the anchor's kept FastCGI connections stall requests under load (see NginxFpmOptions.upstreamKeepalive).
 */
export async function startPair(
  ctx: Context,
  opts: { nginx?: Omit<NginxFpmOptions, 'workers' | 'phpIni'>; phpgate?: Omit<PhpgateOptions, 'workers' | 'ini'> } = {},
): Promise<Pair> {
  const nginx = await ctx.started(startNginxFpm(ctx.site.docroot, { upstreamKeepalive: false, ...opts.nginx, workers: WORKERS, phpIni: PHP_INI }));
  let gw: Phpgate;
  try {
    gw = await ctx.started(startPhpgate(ctx.site.docroot, { ...opts.phpgate, workers: WORKERS, ini: PHP_INI }));
  } catch (err) {
    await nginx.stop();
    throw err;
  }
  if (opts.phpgate?.tls === undefined) {
    // Every pair is checked (opcache on, pinned settings equal); the report lists the first pair's other differences.
    const differences = await comparePhp(nginx.port, gw.port);
    ctx.phpDifferences ??= differences;
  }
  const nginxSide: Side<'nginx'> = { name: 'nginx', port: nginx.port, roots: [nginx.nginxPid, nginx.fpmPid], check: () => Promise.resolve() };
  return {
    nginx,
    gw,
    sides: [nginxSide, phpgateSide(gw)],
    stop: async () => {
      await gw.stop();
      await nginx.stop();
    },
  };
}

/** Runs `rounds` rounds, each running every side once in order; returns the results per side, in round order. */
export async function interleave<S, R>(sides: readonly S[], rounds: number, run: (side: S, round: number) => Promise<R>): Promise<R[][]> {
  const out: R[][] = sides.map(() => []);
  for (let round = 1; round <= rounds; round++) {
    for (const [i, side] of sides.entries()) out[i]!.push(await run(side, round));
  }
  return out;
}

/** A wrk run with what the server used meanwhile: CPU seconds (before → after) and peak RSS, gateway and PHP apart. */
export interface Measured extends WrkResult {
  gatewayCpuS: number;
  phpCpuS: number;
  gatewayRssBytes: number;
  phpRssBytes: number;
}

/** CPU time per request in µs: all the runs' CPU seconds (`field`) over all their requests. */
export function cpuPerRequestUs(runs: readonly Measured[], field: (m: Measured) => number): number {
  return (
    (1e6 * runs.reduce((a, m) => a + field(m), 0)) /
    Math.max(
      1,
      runs.reduce((a, m) => a + m.requests, 0),
    )
  );
}

export async function measureWrk(side: Side, urlPath: string, o: WrkOptions): Promise<Measured> {
  const before = usage(side.roots);
  const stopWatch = watchPeakRss(side.roots);
  let r: WrkResult;
  let peak: ReturnType<typeof stopWatch>;
  try {
    r = await runWrk(`http://127.0.0.1:${side.port}${urlPath}`, o);
  } finally {
    peak = stopWatch();
  }
  const after = usage(side.roots);
  await side.check(urlPath);
  return { ...r, ...peak, gatewayCpuS: after.gatewayCpuS - before.gatewayCpuS, phpCpuS: after.phpCpuS - before.phpCpuS };
}

export const fmtRound = (round: number, who: string, rps: number, rest: string) =>
  `  round ${round} ${who.padEnd(8)} ${Math.round(rps).toString().padStart(7)} rps  ${rest}`;
