#!/usr/bin/env node
/**
 * phpgate's command line. `phpgate [--config FILE] [flags]` runs the gateway; `phpgate check --config FILE`
 * validates a configuration. Exit codes: 0 fine, 1 could not start, 2 bad configuration or usage.
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/errors.js';
import { ErrorCode, PhpgateError } from '../core/errors.js';
import { ENV_VARS, loadConfig, type Overrides } from '../config/load.js';
import { explainRouting } from '../config/explain.js';
import { checkPhpPools } from '../php/check.js';
import { ensureSocketDir } from '../php/handshake.js';
import type { GatewayConfig } from '../config/types.js';
import { createLogger, reopenLogFiles } from './http/log.js';
import { Gateway, PID_FILE } from './server.js';
import { NOT_SHARED, type PurgeOutcome } from './cache-purge.js';
import { configForProcess, onPurgeFromOthers, processCount, processSlot, runPrimary } from './processes.js';
import cluster from 'node:cluster';
import fs from 'node:fs';
import path from 'node:path';
import { EXAMPLE_DIR, VERSION } from './version.js';
import { ServiceNotifier } from './notify.js';

const HELP = `phpgate ${VERSION} — a gateway in front of PHP: HTTP in front, supervised php-cgi pools behind.

Usage:
  phpgate [--config FILE] [options]     run the gateway (no --config: ./gateway.yaml if there is one, else the
                                        bundled example site; the first log line says which)
  phpgate check [--config FILE] [--explain]
                                        validate a configuration, and each pool's php.ini with php-cgi itself, and
                                        exit; --explain prints how it routes requests (the routes in nginx's search
                                        order, or what the global keys amount to)
  phpgate reload [--config FILE]        tell the running gateway (same config) to reload: same as SIGHUP
  phpgate cache purge PATTERN [--config FILE]
                                        drop the running gateway's cached answers for paths matching PATTERN
                                        ("/blog/*", "/", "*" for all), through its admin listener, and every
                                        other instance's through Redis (cache.purge_redis); exit 1 if they
                                        could not be reached
  phpgate import-nginx FILE [--server NAME] [-o gateway.yaml] [--docroot DIR] [--prefix DIR]
                                        translate an nginx site into gateway.yaml (stdout without -o); the
                                        report (file:line of every directive not translated) goes to stderr;
                                        --prefix: nginx's configuration prefix (default /etc/nginx), for
                                        relative include, auth_basic_user_file and certificate paths
  phpgate --help | --version

Options:
  -c, --config FILE    gateway.yaml to use; without it, phpgate serves the bundled example site
  -p, --port N         listen port (server.port)
      --host ADDR      listen address (server.host)
  -d, --docroot DIR    document root (php.docroot)
  -w, --workers N      workers of the default pool (php.worker_count)
  -h, --help           this text
  -v, --version        print the version

Environment (overridden by options, override the file):
${ENV_VARS.map((e) => `  ${e.name.padEnd(22)} ${e.description}`).join('\n')}

Exit codes: 0 ok, 1 could not start, 2 invalid configuration or usage.
`;

function fail(code: number, message: string): never {
  process.stderr.write(message.endsWith('\n') ? message : message + '\n');
  process.exit(code);
}

type Command = 'run' | 'check' | 'reload' | 'cache';

function parseCli(argv: string[]): { command: Command; args: string[]; config: string | undefined; overrides: Overrides } {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        port: { type: 'string', short: 'p' },
        host: { type: 'string' },
        docroot: { type: 'string', short: 'd' },
        workers: { type: 'string', short: 'w' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
        explain: { type: 'boolean' },
      },
    });
  } catch (err) {
    fail(2, `phpgate: ${(err as Error).message}\nRun phpgate --help for the list of options.`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  if (values.version) {
    process.stdout.write(`phpgate ${VERSION}\n`);
    process.exit(0);
  }
  const [command = 'run', ...rest] = positionals;
  if (command === 'cache' && (rest.length !== 2 || rest[0] !== 'purge')) {
    fail(2, 'Usage: phpgate cache purge PATTERN [--config FILE]   (PATTERN: a URL pattern such as "/blog/*", or "*" for all)');
  }
  if ((command !== 'run' && command !== 'check' && command !== 'reload' && command !== 'cache') || (command !== 'cache' && rest.length > 0)) {
    fail(2, `phpgate: unknown command "${positionals.join(' ')}". Commands: run (the default), check, reload, cache purge.`);
  }
  const overrides: Overrides = {};
  if (values.host !== undefined) overrides.host = values.host;
  if (values.docroot !== undefined) overrides.docroot = values.docroot;
  if (values.port !== undefined) overrides.port = intFlag('--port', values.port);
  if (values.workers !== undefined) overrides.workers = intFlag('--workers', values.workers);
  // Without --config, a gateway.yaml in the current directory is the configuration (as nginx reads its own file).
  const here = path.resolve('gateway.yaml');
  return { command, args: rest, config: values.config ?? (fs.existsSync(here) ? here : undefined), overrides };
}

function intFlag(name: string, value: string): number {
  if (!/^\d+$/.test(value)) fail(2, `phpgate: ${name} must be a whole number, got "${value}"`);
  return Number(value);
}

function load(configFile: string | undefined, overrides: Overrides): Readonly<GatewayConfig> {
  try {
    return reread(configFile, overrides);
  } catch (err) {
    if (err instanceof ConfigError) fail(2, err.message);
    throw err;
  }
}

async function main(): Promise<void> {
  installReopenSignal();
  if (process.argv[2] === 'import-nginx') return importNginxCommand(process.argv.slice(3));
  const { command, args, config: configFile, overrides } = parseCli(process.argv.slice(2));
  if (command === 'check') {
    if (configFile === undefined) fail(2, 'phpgate check: --config FILE is required (or a gateway.yaml in this directory)');
    const checked = load(configFile, overrides);
    // What php-fpm -t would catch: PHP's own view of each pool's php.ini settings, as the pool's user.
    const complaints = checkPhpPools(checked).map((c) => `${configFile}: ${c}`);
    if (complaints.length > 0) fail(2, [...new Set(complaints)].join('\n'));
    process.stdout.write(`${configFile}: ok\n`);
    if (process.argv.includes('--explain')) process.stdout.write(explainRouting(checked));
    return;
  }
  if (command === 'reload') {
    signalRunning(load(configFile, overrides));
    return;
  }
  if (command === 'cache') {
    await purgeRunning(load(configFile, overrides), args[1]!);
    return;
  }
  const loaded = load(configFile, overrides);
  const count = processCount(loaded.server.processes);
  if (count > 1 && cluster.isPrimary) {
    // server.processes: this process only supervises the gateway processes it forks (the same command line).
    // As root, PHP's users must pass through to their processes' socket directories (php/master.ts socketDirFor).
    ensureSocketDir(loaded.php.socket_dir, process.geteuid?.() === 0);
    const primaryLog = createLogger(loaded.logging);
    const code = await runPrimary({
      config: loaded,
      count,
      pidFile: path.join(loaded.php.socket_dir, PID_FILE),
      log: primaryLog,
      // The primary is the unit's main process: it speaks for all (the gateway processes never notify).
      notifier: ServiceNotifier.fromEnv(process.env, primaryLog),
      validate: () => {
        try {
          reread(configFile, overrides);
          return null;
        } catch (err) {
          return (err as Error).message;
        }
      },
    });
    process.exit(code);
  }
  const slot = processSlot();
  const forThisProcess = (c: Readonly<GatewayConfig>): Readonly<GatewayConfig> => (slot === null ? c : configForProcess(c, slot.index, slot.count));
  const config = forThisProcess(loaded);
  const log = slot === null ? createLogger(config.logging) : createLogger(config.logging).child({ process: slot.index });
  // The first line says which file runs: --config, ./gateway.yaml, or (neither) the bundled example site.
  log.info(
    { version: VERSION, config: config.source },
    configFile === undefined
      ? 'phpgate starting: no --config and no ./gateway.yaml here, so the bundled example site'
      : `phpgate starting with ${configFile}`,
  );
  const exampleSite = configFile === undefined && config.php.docroot === path.join(EXAMPLE_DIR, 'public');
  const gateway = new Gateway(config, log, { exampleSite });
  const notifier = slot === null ? ServiceNotifier.fromEnv(process.env, log) : null;
  onPurgeFromOthers((pattern) => gateway.purgeCache(pattern));
  // Last line of defence: one bad request must not take every other request down with the process.
  process.on('uncaughtException', (err) => log.fatal({ err }, 'uncaught exception (the gateway keeps running)'));
  process.on('unhandledRejection', (err) => log.fatal({ err }, 'unhandled rejection (the gateway keeps running)'));
  try {
    await gateway.start();
  } catch (err) {
    if (err instanceof PhpgateError && err.code === ErrorCode.PhpBinaryMissing) fail(1, `phpgate: ${err.message}`);
    if (err instanceof PhpgateError && err.code === ErrorCode.ConfigInvalid) fail(2, `phpgate: ${err.message}`);
    const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
    if (e.code === 'EADDRINUSE') {
      // One clear line: another instance (or another server) has the port; this one must not half-start.
      // The pools started before the listener failed: stopped, whatever that says; the port is what to report.
      await gateway.stop().catch(() => undefined);
      fail(1, `phpgate: ${e.address ?? ''}:${e.port ?? ''} is already in use (another phpgate or server listens there): stop it, or set server.port`);
    }
    log.fatal({ err }, 'phpgate could not start');
    fail(1, `phpgate: could not start: ${(err as Error).message}`);
  }
  const listening = gateway.address();
  void notifier?.ready(`listening on ${listening.address}:${listening.port}`);
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    void notifier?.stopping();
    gateway.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  reopened = (): void => log.info('log files reopened (SIGUSR1)');
  // Reload: the file is read again; a bad one is refused and the running configuration stays, as nginx -s reload.
  process.on('SIGHUP', () => {
    if (stopping) return;
    // The service manager sees the reload begin and end, whether it took effect or not (the gateway serves on).
    void notifier?.reloading();
    let next: Readonly<GatewayConfig>;
    try {
      next = forThisProcess(reread(configFile, overrides));
    } catch (err) {
      log.error({ err }, `reload refused, the running configuration stays: ${(err as Error).message}`);
      void notifier?.ready('reload refused (invalid configuration): the previous configuration serves');
      return;
    }
    gateway.reload(next).then(
      () => void notifier?.ready('reloaded'),
      (err: unknown) => {
        log.error({ err }, 'reload failed; the previous pools keep serving');
        void notifier?.ready('reload failed: the previous pools serve');
      },
    );
  });
}

/** The configuration file read (again, on reload): throws ConfigError when it is invalid. */
function reread(configFile: string | undefined, overrides: Overrides): Readonly<GatewayConfig> {
  // No --config: the embedded default, whose docroot (./public) is the bundled example site.
  return configFile === undefined ? loadConfig({ overrides, baseDir: EXAMPLE_DIR }) : loadConfig({ file: configFile, overrides });
}

/** `phpgate reload`: SIGHUP to the gateway that runs with this configuration (found by its pid file). */
function signalRunning(config: Readonly<GatewayConfig>): void {
  const pidFile = path.join(config.php.socket_dir, PID_FILE);
  let pid: number;
  try {
    pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
  } catch (err) {
    void err; // no pid file: reported below as "no running gateway"
    fail(1, `phpgate reload: no running gateway found (${pidFile} is missing)`);
  }
  try {
    process.kill(pid, 'SIGHUP');
  } catch (err) {
    fail(1, `phpgate reload: gateway pid ${pid} from ${pidFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  process.stdout.write(`phpgate: reload requested (pid ${pid})\n`);
}

/** `phpgate cache purge PATTERN`: the running gateway's admin endpoint does it (the cache lives in its memory). */
async function purgeRunning(config: Readonly<GatewayConfig>, pattern: string): Promise<void> {
  const { host, port, token } = config.admin;
  if (port === 0) fail(1, 'phpgate cache purge: needs the admin listener (admin.port is 0)');
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/cache/purge?pattern=${encodeURIComponent(pattern)}`;
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers: token === '' ? {} : { Authorization: `Bearer ${token}` } });
  } catch (err) {
    fail(
      1,
      `phpgate cache purge: no running gateway answered on ${host}:${port} (${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message})`,
    );
  }
  const body = await res.text();
  if (!res.ok) {
    let why = body;
    try {
      why = (JSON.parse(body) as { error?: string }).error ?? body;
    } catch (err) {
      void err; // not JSON (an older gateway or something else on the port): the text as it came
    }
    fail(1, `phpgate cache purge: ${res.status} ${why.trim()}`);
  }
  const { purged, instances, subscribers } = JSON.parse(body) as PurgeOutcome;
  const here = `phpgate: purged ${purged} cached answer(s) matching ${pattern}`;
  if (instances === 'all') {
    process.stdout.write(`${here} here, and sent the purge to every instance on Redis (${subscribers ?? 0} gateway process(es) subscribed)\n`);
  } else if (instances === undefined || instances === NOT_SHARED) {
    process.stdout.write(`${here}\n`);
  } else {
    // Purges are shared but this one was not: the other instances still serve the old pages, so not a success.
    process.stdout.write(`${here} here\n`);
    fail(1, `phpgate cache purge: the other instances were not reached (${instances}): purge again once Redis is back`);
  }
}

const IMPORT_USAGE = 'Usage: phpgate import-nginx FILE [--server NAME] [-o gateway.yaml] [--docroot DIR] [--prefix DIR]';

/**
 * `phpgate import-nginx FILE`: nginx site → gateway.yaml (stdout, or -o FILE), the report on stderr. Exit 2 when
 * the nginx file is malformed or does not say which server to import. nginx-compat/ is loaded only here.
 */
async function importNginxCommand(argv: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        server: { type: 'string' },
        output: { type: 'string', short: 'o' },
        docroot: { type: 'string', short: 'd' },
        prefix: { type: 'string' },
      },
    });
  } catch (err) {
    fail(2, `phpgate import-nginx: ${(err as Error).message}\n${IMPORT_USAGE}`);
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1) fail(2, IMPORT_USAGE);
  const file = positionals[0]!;
  const { importNginx, formatWarning } = await import('../nginx-compat/index.js');
  let result;
  try {
    result = importNginx(file, { server: values.server, root: values.docroot, prefix: values.prefix });
  } catch (err) {
    if (err instanceof PhpgateError && err.code === ErrorCode.ConfigInvalid) fail(2, err.message);
    throw err;
  }
  if (values.output === undefined) {
    process.stdout.write(result.yaml);
  } else {
    try {
      fs.writeFileSync(values.output, result.yaml);
    } catch (err) {
      fail(1, `phpgate import-nginx: cannot write ${values.output}: ${(err as Error).message}`);
    }
  }
  const warnings = result.warnings.filter((w) => w.kind === 'warning');
  for (const w of result.warnings) process.stderr.write(`${w.kind}: ${formatWarning(w)}\n`);
  const where = values.output === undefined ? 'stdout' : values.output;
  process.stderr.write(
    `phpgate import-nginx: ${file} → ${where}: ${warnings.length} warning(s) to review, ${result.warnings.length - warnings.length} note(s)\n`,
  );
}

/** Said once the log files were reopened (the running gateway's logger, once there is one). */
let reopened = (): void => undefined;

/**
 * SIGUSR1 is nginx's "reopen the logs" (what logrotate's postrotate sends). Node's own meaning, opening its
 * inspector on 127.0.0.1:9229 in a process that may run as root, is never wanted: this listener replaces it, and
 * is installed first thing, before the signal can do anything else.
 */
function installReopenSignal(): void {
  process.on('SIGUSR1', () => {
    reopenLogFiles();
    reopened();
  });
}

void main();
