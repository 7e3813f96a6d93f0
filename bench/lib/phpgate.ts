/**
 * Starts phpgate as a separate process on a free loopback port, with a private temp dir for its config, log and
 * worker sockets. It runs compiled, as `npm start` does: buildGateway() compiles the working tree's sources once per
 * bench run into node_modules/.cache/phpgate-bench/ (tsx's loader would add about 40 MB to the gateway's RSS).
 *
 * It is spawned as the leader of its own process group (detached), so a terminal's Ctrl-C reaches only the
 * bench, which then stops it: SIGTERM (the gateway stops its php-cgi pools), and past a grace SIGKILL to its
 * group plus the php-cgi masters it recorded in its socket dir (php-cgi calls setsid(), so they are in
 * groups of their own).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { httpAnswers, tail } from '../../test/support/nginx-fpm.js';
import { freePort } from '../../test/support/proc.js';
import { ServerProcess, type RunningServer } from './server-process.js';

export interface PhpgateOptions {
  workers: number;
  /** The default pool's `php.queue_limit`; 511 (php-fpm's default listen backlog) unless given. */
  queueLimit?: number;
  /** `php.ini`: settings passed to php-cgi as `-d key=value`. */
  ini?: Readonly<Record<string, string>>;
  /** `pools`: named pools with their URL patterns. */
  pools?: ReadonlyArray<{ name: string; patterns: string[]; worker_count: number; timeout_ms?: number }>;
  /** PEM files: the listener speaks TLS, HTTP/2 by ALPN with HTTP/1.1 as fallback (`server.tls`). */
  tls?: { cert: string; key: string };
  /** `rate_limit.rules` (memory store); none by default. */
  rateLimit?: Array<{ pattern: string; points: number; duration_s: number }>;
  /** `cache`: the response cache; none by default. */
  cache?: { max_mb: number; rules: Array<{ pattern: string; ttl_s: number }> };
  /** `compression`; off unless given (the nginx anchor has gzip off). */
  compression?: { gzip: boolean; brotli: boolean; gzip_level?: number };
}

export type Phpgate = RunningServer;

const REPO = fileURLToPath(new URL('../../', import.meta.url));
/** Inside the repository, so the compiled gateway finds its dependencies in node_modules and its package.json. */
const BUILD_DIR = path.join(REPO, 'node_modules', '.cache', 'phpgate-bench');
const CLI = path.join(BUILD_DIR, 'gateway', 'cli.js');
const READY_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 15_000; // the gateway itself gives its pools 10 s

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** True once anything answers HTTPS on the port (any status, any certificate). */
function httpsAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = https.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 1000, rejectUnauthorized: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(true));
      res.on('error', () => resolve(true));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/**
 * SIGKILLs the process groups of the php-cgi masters the gateway recorded in its socket dir
 * (`<pool>-<gatewayPid>-<n>.sock.pid`), if the pid still runs php-cgi on that socket (so a reused pid is never hit).
 * Only needed when the gateway itself had to be killed: a stopped gateway has stopped them already.
 */
function killRecordedMasters(socketDir: string): void {
  let names: string[];
  try {
    // As root each pool's socket (and its pid file) lies in its user's subdirectory, u<uid>.
    const top = readdirSync(socketDir);
    names = [...top, ...top.filter((d) => /^u\d+$/.test(d)).flatMap((d) => readdirSync(path.join(socketDir, d)).map((n) => path.join(d, n)))];
  } catch {
    return;
  }
  for (const name of names.filter((n) => n.endsWith('.sock.pid'))) {
    try {
      const pid = Number(readFileSync(path.join(socketDir, name), 'utf8').trim());
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (pid > 0 && cmdline.includes(path.join(socketDir, name.slice(0, -'.pid'.length)))) process.kill(-pid, 'SIGKILL');
    } catch {
      /* gone already */
    }
  }
}

/**
 * Compiles the gateway (tsconfig.build.json) into BUILD_DIR; returns tsc's complaints ('' if none). tsc writes its
 * output even past type errors (someone's work in progress elsewhere in the tree): those are returned, not fatal.
 */
export function buildGateway(): string {
  rmSync(BUILD_DIR, { recursive: true, force: true });
  const tsc = path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', BUILD_DIR, '--sourceMap', 'false'], {
    cwd: REPO,
    encoding: 'utf8',
    timeout: 120_000,
  });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
  if (r.error || !existsSync(CLI)) throw new Error(`could not compile the gateway: ${r.error?.message ?? out}`);
  return r.status === 0 ? '' : out;
}

function gatewayYaml(docroot: string, port: number, opts: PhpgateOptions, socketDir: string): string {
  // JSON is valid YAML (flow style): paths and patterns are quoted safely whatever they contain.
  const tls = opts.tls === undefined ? '' : `, tls: ${JSON.stringify({ cert: opts.tls.cert, key: opts.tls.key })}`;
  const php = {
    docroot,
    worker_count: opts.workers,
    max_requests: 0,
    queue_limit: opts.queueLimit ?? 511,
    socket_dir: socketDir,
    ini: opts.ini ?? {},
    // As root, PHP as root: the same as the php-fpm it is measured against (run with -R), and the temp docroot is 0700.
    ...(process.geteuid?.() === 0 ? { user: 'root' } : {}),
  };
  return [
    // No load balancer to tell (lame duck off): a stop only drains.
    `server: { host: "127.0.0.1", port: ${port}${tls}, timeouts: { lame_duck_ms: 0 } }`,
    'admin: { port: 0 }',
    `php: ${JSON.stringify(php)}`,
    ...(opts.pools === undefined ? [] : [`pools: ${JSON.stringify(opts.pools)}`]),
    ...(opts.rateLimit === undefined ? [] : [`rate_limit: ${JSON.stringify({ store: 'memory', rules: opts.rateLimit })}`]),
    ...(opts.cache === undefined ? [] : [`cache: ${JSON.stringify(opts.cache)}`]),
    // nginx's anchor config has gzip off; h2load sends Accept-Encoding: gzip, so phpgate would compress and nginx not.
    `compression: ${JSON.stringify(opts.compression ?? { gzip: false, brotli: false })}`,
    'logging: { level: warn }',
    '',
  ].join('\n');
}

export async function startPhpgate(docroot: string, opts: PhpgateOptions): Promise<Phpgate> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'phpgate-bench-gw-'));
  const socketDir = path.join(dir, 'sock');
  const logFile = path.join(dir, 'gateway.log');
  const configFile = path.join(dir, 'gateway.yaml');
  // PHPGATE_* variables would override the file; the bench's configuration is the one in gateway.yaml.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PHPGATE_')));

  const proc = new ServerProcess(dir, STOP_GRACE_MS, () => killRecordedMasters(socketDir));
  const { alive, stop } = proc;

  // A free port can be taken between picking and binding it: retry a few times.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    await writeFile(configFile, gatewayYaml(docroot, port, opts, socketDir));
    const fd = openSync(logFile, 'a');
    let c: ChildProcess;
    try {
      c = spawn(process.execPath, [CLI, '--config', configFile], {
        cwd: REPO,
        env,
        detached: true,
        stdio: ['ignore', fd, fd],
      });
    } finally {
      closeSync(fd);
    }
    proc.adopt(c);

    const deadline = Date.now() + READY_TIMEOUT_MS;
    let ready = false;
    while (alive() && Date.now() < deadline) {
      if (await (opts.tls === undefined ? httpAnswers(port) : httpsAnswers(port))) {
        ready = true;
        break;
      }
      await sleep(100);
    }
    if (ready) {
      return { port, pid: c.pid!, alive, logTail: () => tail(logFile), stop };
    }
    const why = alive() ? `not answering after ${READY_TIMEOUT_MS} ms` : `exited (${c.signalCode ?? `code ${c.exitCode}`})`;
    const log = await tail(logFile);
    if (log.includes('EADDRINUSE') && attempt < 3) {
      await proc.kill();
      await writeFile(logFile, '');
      continue;
    }
    await stop();
    throw new Error(`phpgate ${why}; its log:\n${log}`);
  }
}
