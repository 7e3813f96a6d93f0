/**
 * Test harness: the reference nginx + php-fpm stack (test/anchors/*.conf, the same recipe as
 * the shared anchors' start.sh) started over a docroot on a free loopback port, in a private temp dir; or
 * (startNginxFpmConfig) the anchor's php-fpm behind nginx running a whole configuration given as text.
 *
 * Only processes spawned here are ever signalled: each of nginx and php-fpm is spawned as the leader of its
 * own new process group (detached), so the SIGKILL fallback can also reach its workers by group id.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, openSync, closeSync, readdirSync, realpathSync, rmSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './proc.js';

export interface NginxFpm {
  port: number;
  runDir: string;
  /** nginx error log (also gets what php-fpm relays from FastCGI stderr: "FastCGI sent in stderr: ..."). */
  nginxErrorLog: string;
  /** php-fpm's own log (catch_workers_output: what workers write to their fd 2). */
  fpmLog: string;
  /** The TLS + HTTP/2 listener's port, when started with `tls`. */
  tlsPort?: number;
  /** The nginx master's and the php-fpm master's pids (their workers are their children). */
  nginxPid: number;
  fpmPid: number;
  stop(): Promise<void>;
}

const ANCHORS = fileURLToPath(new URL('../anchors/', import.meta.url));
const READY_TIMEOUT_MS = 10_000;
const KILL_GRACE_MS = 3_000;

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    if (dir && isExecutable(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

function findFpm(): string | undefined {
  const found = onPath('php-fpm');
  if (found) return found;
  for (const dir of ['/usr/sbin', '/usr/local/sbin']) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    // php-fpm8.2, php-fpm8.3, ... : prefer the highest version.
    const candidates = names.filter((n) => /^php-fpm[\d.]*$/.test(n)).sort((a, b) => b.localeCompare(a, 'en', { numeric: true }));
    for (const n of candidates) if (isExecutable(path.join(dir, n))) return path.join(dir, n);
  }
  return undefined;
}

function findNginx(): string | undefined {
  return onPath('nginx') ?? ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx'].find(isExecutable);
}

const NGINX_INCLUDES = ['/etc/nginx/mime.types', '/etc/nginx/fastcgi_params'];

export function nginxFpmAvailable(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux' && process.platform !== 'darwin') {
    return { ok: false, reason: `nginx + php-fpm harness not supported on ${process.platform}` };
  }
  if (!findFpm()) return { ok: false, reason: 'php-fpm not found (PATH, /usr/sbin/php-fpm*)' };
  if (!findNginx()) return { ok: false, reason: 'nginx not found (PATH, /usr/sbin/nginx)' };
  const missing = NGINX_INCLUDES.filter((f) => !existsSync(f));
  if (missing.length > 0) return { ok: false, reason: `nginx config includes missing: ${missing.join(', ')}` };
  for (const f of ['nginx-php.conf', 'php-fpm.conf']) {
    if (!existsSync(path.join(ANCHORS, f))) return { ok: false, reason: `anchor config missing: test/anchors/${f}` };
  }
  return { ok: true };
}

/**
 * Replaces the DOCROOT / PORT / RUN placeholders in one pass (substituted values are never re-scanned);
 * comment lines are left alone.
 */
function substitute(template: string, vars: Record<string, string>): string {
  return template
    .split('\n')
    .map((line) => (/^\s*[#;]/.test(line) ? line : line.replace(/\b(DOCROOT|PORT|RUN)\b/g, (m) => vars[m] ?? m)))
    .join('\n');
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** True once anything answers HTTP on the port (any status). */
/**
 * Whether the tests of `what` can run: undefined when nginx + php-fpm are installed; locally, the reason they are
 * not (the tests skip); in CI, where they are required, an error.
 */
export function nginxFpmMissing(what: string): string | undefined {
  const avail = nginxFpmAvailable();
  if (avail.ok) return undefined;
  if (process.env['CI']) throw new Error(`nginx + php-fpm are required for ${what} in CI, but: ${avail.reason} (apt-get install -y nginx php-fpm)`);
  return avail.reason;
}

export function httpAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 1000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(true));
      res.on('error', () => resolve(true));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

interface Proc {
  name: string;
  child: ChildProcess;
  exited: Promise<void>;
  done: boolean;
}

function launch(name: string, bin: string, args: string[], logFile: string): Proc {
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(bin, args, { stdio: ['ignore', fd, fd], detached: true, env: process.env });
  } finally {
    closeSync(fd);
  }
  const proc: Proc = { name, child, done: false, exited: Promise.resolve() };
  proc.exited = new Promise<void>((resolve) => {
    const finish = () => {
      proc.done = true;
      resolve();
    };
    child.once('exit', finish);
    child.once('error', finish); // spawn failure: 'exit' may never come
  });
  return proc;
}

function signalGroup(p: Proc, sig: NodeJS.Signals): void {
  const pid = p.child.pid;
  if (pid === undefined) return;
  try {
    // Negative pid: the process group this child leads (detached: true), i.e. the master and its workers.
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  }
}

async function terminate(p: Proc): Promise<void> {
  if (p.done || p.child.pid === undefined) return;
  // TERM the master only: nginx (fast shutdown) and php-fpm stop their own workers.
  try {
    process.kill(p.child.pid, 'SIGTERM');
  } catch {
    /* already gone */
  }
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    p.exited.then(() => false),
    new Promise<boolean>((r) => {
      timer = setTimeout(() => r(true), KILL_GRACE_MS);
    }),
  ]);
  clearTimeout(timer);
  if (timedOut && !p.done) {
    // Still not reaped, so the pid (and its group) is still ours: kill the master and its workers.
    signalGroup(p, 'SIGKILL');
    await p.exited;
  }
}

/** The end of a log file, for error messages about a server that would not start. */
export async function tail(file: string, max = 4000): Promise<string> {
  try {
    const s = await readFile(file, 'utf8');
    return s.length > max ? '...' + s.slice(-max) : s;
  } catch {
    return '(no log)';
  }
}

async function waitFor(what: string, check: () => Promise<boolean>, procs: Proc[], logs: string[]): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (await check()) return;
    const dead = procs.find((p) => p.done);
    if (dead || Date.now() > deadline) {
      const why = dead ? `${dead.name} exited (code ${dead.child.exitCode}, signal ${dead.child.signalCode})` : 'timed out';
      const details = (await Promise.all(logs.map(async (l) => `--- ${l}\n${await tail(l)}`))).join('\n');
      throw new Error(`nginx+php-fpm: waiting for ${what}: ${why}\n${details}`);
    }
    await sleep(50);
  }
}

// Children still running when the test process exits (a test forgot stop(), or threw) are killed by pid,
// and their run dirs removed.
const live = new Set<Proc>();
const liveDirs = new Set<string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const p of live) if (!p.done) signalGroup(p, 'SIGKILL');
    for (const d of liveDirs) rmSync(d, { recursive: true, force: true });
  });
}

export interface NginxFpmOptions {
  /** php-fpm workers (pm.max_children), 4 by default. */
  workers?: number;
  /**
   * Also listen on a second loopback port with TLS and HTTP/2 (`listen … ssl http2`, nginx ≤ 1.24 syntax), same
   * server block, with these PEM files and `ssl_protocols TLSv1.2 TLSv1.3` (nginx's default from 1.23.4 on; 1.22
   * stops at TLSv1.2). The plain HTTP listener stays as it is.
   */
  tls?: { cert: string; key: string };
  /** Replaces the anchor's keepalive_requests (requests per connection, HTTP/2 included, before nginx closes it). */
  keepaliveRequests?: number;
  /**
   * false: no kept FastCGI connections (drops the upstream's `keepalive` and `fastcgi_keep_conn on`). php-fpm ties
   * a worker to each kept connection, so once one nginx worker holds idle connections to every php-fpm worker,
   * requests arriving at the other nginx worker wait until those time out (upstream keepalive_timeout, 60 s).
   */
  upstreamKeepalive?: boolean;
  /** php.ini settings for php-fpm, passed as `-d key=value` (as phpgate passes its `php.ini` to php-cgi). */
  phpIni?: Readonly<Record<string, string>>;
  /** Directives added to every php-fpm pool (`listen.backlog = 28`, …), after the anchor's own. */
  poolDirectives?: Readonly<Record<string, string>>;
  /**
   * More php-fpm pools, each a copy of the anchor's [www] pool with its own worker count and socket
   * `RUN/php-fpm-NAME.sock` (reach it from `serverDirectives` with `fastcgi_pass unix:RUN/php-fpm-NAME.sock;`).
   */
  extraPools?: ReadonlyArray<{ name: string; workers: number }>;
  /** Lines added to the http block (before the server block). DOCROOT, PORT and RUN are substituted as in the anchor. */
  httpDirectives?: readonly string[];
  /**
   * Lines added to the server block before the anchor's locations, e.g. `location = /page.php { … }` (exact
   * locations win anyway; regex ones added here are tried before the anchor's PHP location). Substituted as above.
   */
  serverDirectives?: readonly string[];
}

const FPM_NAME = /^[a-z][a-z0-9_-]*$/;
const FPM_DIRECTIVE = /^[a-z][a-z0-9_.]*(?:\[[A-Za-z0-9_.]+\])?$/;
const INI_KEY = /^[A-Za-z0-9_.]+$/;

function checkSettings(what: string, entries: Record<string, string>, key: RegExp): void {
  for (const [k, v] of Object.entries(entries)) {
    if (!key.test(k) || /[\r\n]/.test(v)) throw new Error(`${what}: unsuitable entry ${JSON.stringify(k)} = ${JSON.stringify(v)}`);
  }
}

/** php-fpm.conf from the anchor: workers, directives added to [www], and the extra pools copied from [www]. */
function fpmConfig(template: string, runDir: string, workers: number, opts: NginxFpmOptions | undefined): string {
  const extra = Object.entries(opts?.poolDirectives ?? {}).map(([k, v]) => `${k} = ${v}`);
  const conf = substitute(template, { RUN: runDir }).replace(/^pm\.max_children\s*=.*$/m, `pm.max_children = ${workers}`);
  const www = /^\[www\]$[\s\S]*/m.exec(conf);
  if (www === null || !/^listen = .*\/php-fpm\.sock$/m.test(www[0]))
    throw new Error('php-fpm anchor config: no [www] pool with a php-fpm.sock listener last');
  const pools = (opts?.extraPools ?? []).map(({ name, workers: n }) => {
    if (!FPM_NAME.test(name) || name === 'www') throw new Error(`extraPools: unsuitable pool name ${JSON.stringify(name)}`);
    if (!Number.isInteger(n) || n < 1) throw new Error(`extraPools: ${name}: workers must be a positive integer, got ${n}`);
    return [
      www[0]
        .trimEnd()
        .replace(/^\[www\]$/m, `[${name}]`)
        .replace(/^(listen = .*\/php-fpm)\.sock$/m, `$1-${name}.sock`)
        .replace(/^pm\.max_children\s*=.*$/m, `pm.max_children = ${n}`),
      ...extra,
    ].join('\n');
  });
  return [conf.trimEnd(), ...extra, ...pools.map((p) => `\n${p}`), ''].join('\n');
}

/** Adds `lines` after the first line matching `anchor` (with its indentation), or fails naming `what`. */
function addAfter(conf: string, anchor: RegExp, lines: readonly string[], what: string): string {
  if (lines.length === 0) return conf;
  if (!anchor.test(conf)) throw new Error(`nginx anchor config: no place for the ${what}`);
  return conf.replace(anchor, (line) => [line, ...lines.map((l) => `${line.match(/^\s*/)![0]}${l}`)].join('\n'));
}

/** Paths written into the nginx config must be plain (no quoting is done). */
function configPath(file: string, what: string): string {
  const real = realpathSync(file);
  if (/[\s;"'{}$\\]/.test(real)) throw new Error(`${what} path unsuitable for an nginx config: ${real}`);
  return real;
}

/** Adds the TLS + HTTP/2 listener (and its certificate) next to the anchor's plain `listen 127.0.0.1:PORT;`. */
function withTlsListener(conf: string, port: number, tlsPort: number, cert: string, key: string): string {
  const listen = new RegExp(`^(\\s*)listen 127\\.0\\.0\\.1:${port};$`, 'm');
  if (!listen.test(conf)) throw new Error('nginx anchor config: no `listen 127.0.0.1:PORT;` line to add the TLS listener to');
  return conf.replace(listen, (line, indent: string) =>
    [
      line,
      `listen 127.0.0.1:${tlsPort} ssl http2;`,
      `ssl_certificate ${cert};`,
      `ssl_certificate_key ${key};`,
      'ssl_protocols TLSv1.2 TLSv1.3;',
    ].join(`\n${indent}`),
  );
}

export async function startNginxFpm(docroot: string, opts?: NginxFpmOptions): Promise<NginxFpm> {
  const avail = nginxFpmAvailable();
  if (!avail.ok) throw new Error(avail.reason);
  if (!existsSync(docroot) || !statSync(docroot).isDirectory()) throw new Error(`docroot is not a directory: ${docroot}`);
  const root = realpathSync(docroot);
  if (/[\s;"'{}$\\]/.test(root)) throw new Error(`docroot path unsuitable for an nginx config: ${root}`);
  const workers = opts?.workers ?? 4;
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`workers must be a positive integer, got ${workers}`);
  const tls = opts?.tls === undefined ? undefined : { cert: configPath(opts.tls.cert, 'tls.cert'), key: configPath(opts.tls.key, 'tls.key') };
  checkSettings('phpIni', { ...opts?.phpIni }, INI_KEY);
  checkSettings('poolDirectives', { ...opts?.poolDirectives }, FPM_DIRECTIVE);
  const keepaliveRequests = opts?.keepaliveRequests;
  if (keepaliveRequests !== undefined && (!Number.isInteger(keepaliveRequests) || keepaliveRequests < 1)) {
    throw new Error(`keepaliveRequests must be a positive integer, got ${keepaliveRequests}`);
  }
  const nginxTemplate = await readFile(path.join(ANCHORS, 'nginx-php.conf'), 'utf8');

  return startStack(workers, opts, async (runDir, port) => {
    const vars = { DOCROOT: root, PORT: String(port), RUN: runDir };
    let conf = substitute(nginxTemplate, vars);
    // Keep nginx's other temp dirs inside runDir too (it creates them at start-up; /var/lib/nginx may not be ours).
    conf = conf.replace(/^(\s*)(proxy_temp_path .*)$/m, `$1$2\n$1uwsgi_temp_path ${runDir}/uwsgi;\n$1scgi_temp_path ${runDir}/scgi;`);
    let tlsPort: number | undefined;
    while (tls !== undefined && (tlsPort === undefined || tlsPort === port)) tlsPort = await freePort();
    if (tls !== undefined) conf = withTlsListener(conf, port, tlsPort!, tls.cert, tls.key);
    if (keepaliveRequests !== undefined) {
      if (!/^\s*keepalive_requests \d+;$/m.test(conf)) throw new Error('nginx anchor config: no keepalive_requests line to replace');
      conf = conf.replace(/^(\s*)keepalive_requests \d+;$/m, `$1keepalive_requests ${keepaliveRequests};`);
    }
    if (opts?.upstreamKeepalive === false) {
      const kept = /^(\s*upstream php \{ server [^;]+;) keepalive \d+; \}$/m;
      const keepConn = /^\s*fastcgi_keep_conn on;\n/m;
      if (!kept.test(conf) || !keepConn.test(conf)) throw new Error('nginx anchor config: no upstream keepalive / fastcgi_keep_conn to turn off');
      conf = conf.replace(kept, '$1 }').replace(keepConn, '');
    }
    const lines = (l: readonly string[] | undefined) => (l ?? []).map((x) => substitute(x, vars));
    // http directives go after the anchor's upstream (before its server block), server ones after its index line.
    conf = addAfter(conf, /^(\s*)upstream php .*$/m, lines(opts?.httpDirectives), 'http directives');
    conf = addAfter(conf, /^(\s*)index .*;$/m, lines(opts?.serverDirectives), 'server directives');
    return { conf, ...(tlsPort === undefined ? {} : { tlsPort }) };
  });
}

/** What the caller of startNginxFpmConfig learns before writing nginx's configuration. */
export interface NginxRunEnv {
  /** The private run dir: php-fpm listens on `RUN/php-fpm.sock`; the configuration is written to `RUN/nginx.conf`. */
  runDir: string;
  /** The free loopback port nginx must listen on (`listen 127.0.0.1:PORT;`). */
  port: number;
}

/** nginx's stock include files, linked into the run dir so relative includes resolve there as in /etc/nginx. */
const STOCK_INCLUDES = ['fastcgi_params', 'fastcgi.conf', 'mime.types', 'snippets'];

/**
 * php-fpm (the anchor's pool, on `RUN/php-fpm.sock`) and nginx started from a whole configuration the caller
 * writes, for real-world configs rather than the anchor's. `render` is called once the run dir and port are
 * known and returns the full nginx.conf text (main context included, see `nginxMainConfig`); it may also write
 * files it includes into the run dir. Relative includes resolve against the run dir, where Debian's stock
 * files (fastcgi_params, fastcgi.conf, snippets/, mime.types) are linked. Run as root, `user root;` is added.
 */
export async function startNginxFpmConfig(render: (env: NginxRunEnv) => string | Promise<string>, opts?: { workers?: number }): Promise<NginxFpm> {
  const avail = nginxFpmAvailable();
  if (!avail.ok) throw new Error(avail.reason);
  const workers = opts?.workers ?? 4;
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`workers must be a positive integer, got ${workers}`);
  return startStack(workers, undefined, async (runDir, port) => {
    await Promise.all(
      STOCK_INCLUDES.filter((f) => existsSync(path.join('/etc/nginx', f))).map((f) => symlink(path.join('/etc/nginx', f), path.join(runDir, f))),
    );
    return { conf: await render({ runDir, port }) };
  });
}

/**
 * The main context nginx needs around a site's http-level text (upstreams, maps, cache paths, server blocks):
 * Debian's stock http settings that matter to a site (mime.types, default_type), logs and temp dirs in the run dir.
 */
export function nginxMainConfig(runDir: string, http: string, workers = 2): string {
  return [
    `worker_processes ${workers};`,
    `pid ${runDir}/nginx.pid;`,
    `error_log ${runDir}/nginx-error.log warn;`,
    'daemon off;',
    'events { worker_connections 1024; }',
    'http {',
    '  include mime.types;',
    '  default_type application/octet-stream;',
    '  access_log off;',
    ...['client_body', 'fastcgi', 'proxy', 'uwsgi', 'scgi'].map((d) => `  ${d}_temp_path ${runDir}/${d === 'client_body' ? 'body' : d};`),
    http,
    '}',
    '',
  ].join('\n');
}

/**
 * The run dir, php-fpm and then nginx with the configuration `nginxConf` gives for a free port (retried on
 * EADDRINUSE); everything is stopped and removed again if either fails to come up.
 */
async function startStack(
  workers: number,
  opts: NginxFpmOptions | undefined,
  nginxConf: (runDir: string, port: number) => Promise<{ conf: string; tlsPort?: number }>,
): Promise<NginxFpm> {
  const fpmBin = findFpm()!;
  const nginxBin = findNginx()!;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const runDir = await mkdtemp(path.join(os.tmpdir(), 'phpgate-nginx-'));
  const nginxErrorLog = path.join(runDir, 'nginx-error.log');
  const fpmLog = path.join(runDir, 'php-fpm.log');
  const procs: Proc[] = [];
  installExitHook();
  liveDirs.add(runDir);

  const stopAll = async () => {
    // nginx first (it holds the FastCGI connections), then php-fpm.
    for (const p of [...procs].reverse()) {
      await terminate(p);
      live.delete(p);
    }
  };

  try {
    await Promise.all(['body', 'fastcgi', 'proxy', 'uwsgi', 'scgi'].map((d) => mkdir(path.join(runDir, d))));

    const fpmConf = path.join(runDir, 'php-fpm.conf');
    const fpmTemplate = await readFile(path.join(ANCHORS, 'php-fpm.conf'), 'utf8');
    await writeFile(fpmConf, fpmConfig(fpmTemplate, runDir, workers, opts));
    const ini = Object.entries(opts?.phpIni ?? {}).flatMap(([k, v]) => ['-d', `${k}=${v}`]);
    const fpmArgs = [...(isRoot ? ['-R'] : []), '-F', '-y', fpmConf, ...ini];
    const fpm = launch('php-fpm', fpmBin, fpmArgs, path.join(runDir, 'php-fpm.stdout.log'));
    procs.push(fpm);
    live.add(fpm);
    const socks = ['php-fpm.sock', ...(opts?.extraPools ?? []).map((p) => `php-fpm-${p.name}.sock`)].map((s) => path.join(runDir, s));
    await waitFor(
      'the php-fpm sockets',
      async () => {
        try {
          return (await Promise.all(socks.map((s) => stat(s)))).every((st) => st.isSocket());
        } catch {
          return false;
        }
      },
      [fpm],
      [fpmLog, path.join(runDir, 'php-fpm.stdout.log')],
    );

    // A free port can be taken between picking and binding it: retry a few times on EADDRINUSE.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const made = await nginxConf(runDir, port);
      const conf = isRoot ? `user root;\n${made.conf}` : made.conf;
      const tlsPort = made.tlsPort;
      const nginxConfFile = path.join(runDir, 'nginx.conf');
      await writeFile(nginxConfFile, conf);
      // -e: the start-up error log, before the config's error_log applies (else /var/log/nginx/error.log).
      const nginx = launch('nginx', nginxBin, ['-c', nginxConfFile, '-p', runDir + '/', '-e', nginxErrorLog], path.join(runDir, 'nginx.stdout.log'));
      procs.push(nginx);
      live.add(nginx);
      try {
        await waitFor('nginx to answer HTTP', () => httpAnswers(port), [nginx, fpm], [nginxErrorLog, fpmLog]);
      } catch (err) {
        await terminate(nginx);
        live.delete(nginx);
        procs.pop();
        const inUse = (await tail(nginxErrorLog)).includes('Address already in use');
        if (inUse && attempt < 3) continue;
        throw err;
      }

      let stopped: Promise<void> | undefined;
      return {
        port,
        ...(tlsPort === undefined ? {} : { tlsPort }),
        nginxPid: nginx.child.pid!,
        fpmPid: fpm.child.pid!,
        runDir,
        nginxErrorLog,
        fpmLog,
        stop() {
          stopped ??= (async () => {
            await stopAll();
            await rm(runDir, { recursive: true, force: true });
            liveDirs.delete(runDir);
          })();
          return stopped;
        },
      };
    }
  } catch (err) {
    await stopAll();
    await rm(runDir, { recursive: true, force: true });
    liveDirs.delete(runDir);
    throw err;
  }
}
