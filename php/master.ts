/**
 * One php-cgi master per pool: `php-cgi -b SOCKET` with PHP_FCGI_CHILDREN children that share opcache and
 * APCu (as php-fpm's children do). The master only forks and reaps; it replaces a child that exits at once.
 * If the master itself dies, this restarts it with backoff on a fresh socket.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, PhpgateError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { logLines } from './logger.js';
import { commandLine, isAlive, killGroup } from './process.js';

export interface MasterOptions {
  readonly poolName: string;
  readonly binary: string;
  readonly children: number;
  readonly ini: Readonly<Record<string, string>>;
  readonly env: Readonly<Record<string, string>>;
  readonly socketDir: string;
  readonly log: Logger;
}

export interface MasterListener {
  /** A master is listening on `socketPath`; workers may connect. */
  onMasterReady(socketPath: string): void;
  /** The master died; its children were killed with it. A new one is being started. */
  onMasterDown(reason: string): void;
}

const BACKOFF_START_MS = 100;
const BACKOFF_MAX_MS = 10_000;
/** A master that ran this long before dying was healthy: restart it without a long wait. */
const HEALTHY_RUN_MS = 10_000;
const SOCKET_WAIT_MS = 10_000;
const STOP_GRACE_MS = 3_000;

let generation = 0;

export class Master {
  readonly #o: MasterOptions;
  readonly #listener: MasterListener;
  #proc: ChildProcess | null = null;
  #socketPath = '';
  #stopping = false;
  #backoff = BACKOFF_START_MS;
  #startedAt = 0;
  #restartTimer: NodeJS.Timeout | null = null;
  #consecutiveFailures = 0;

  constructor(options: MasterOptions, listener: MasterListener) {
    this.#o = options;
    this.#listener = listener;
  }

  get pid(): number | null {
    return this.#proc?.pid ?? null;
  }

  get socketPath(): string {
    return this.#socketPath;
  }

  /** Starts the first master and resolves once its socket is listening; rejects if php-cgi can't run at all. */
  async start(): Promise<void> {
    fs.mkdirSync(this.#o.socketDir, { recursive: true, mode: 0o700 });
    await this.#spawn();
  }

  #spawn(): Promise<void> {
    const o = this.#o;
    const socketPath = path.join(o.socketDir, `${o.poolName}-${process.pid}-${++generation}.sock`);
    fs.rmSync(socketPath, { force: true });
    const args = ['-b', socketPath];
    for (const [k, v] of Object.entries(o.ini)) args.push('-d', iniDefine(k, v));
    // clear_env = yes, as php-fpm: php-cgi copies its own environment into $_SERVER, so the gateway's must not
    // leak there. Only the two variables that make it a pre-forking master, and php.env, are passed.
    const env: Record<string, string> = {
      ...o.env,
      PHP_FCGI_CHILDREN: String(o.children),
      // Without this every child exits after 500 requests; recycling is the gateway's decision.
      PHP_FCGI_MAX_REQUESTS: '0',
    };
    const proc = spawn(o.binary, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    // Recorded beside the socket so a later gateway can stop this master if we die without stopping it.
    if (proc.pid !== undefined) fs.writeFileSync(`${socketPath}.pid`, String(proc.pid), { mode: 0o600 });
    this.#proc = proc;
    this.#socketPath = socketPath;
    this.#startedAt = Date.now();
    const logLine = (chunk: Buffer): void => logLines(o.log, { pool: o.poolName, masterPid: proc.pid }, 'php-cgi: ', chunk);
    proc.stdout.on('data', logLine);
    proc.stderr.on('data', logLine);

    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (err: PhpgateError | null): void => {
        if (settled) return;
        settled = true;
        if (err === null) resolve();
        else reject(err);
      };
      proc.once('error', (err: NodeJS.ErrnoException) => {
        const e =
          err.code === 'ENOENT'
            ? new PhpgateError(ErrorCode.PhpBinaryMissing, `php-cgi not found (php.binary: "${o.binary}"). Install it: apt-get install -y php-cgi`, {
                cause: err,
              })
            : new PhpgateError(ErrorCode.UpstreamConnect, `could not start ${o.binary}: ${err.message}`, { cause: err });
        settle(e);
        // 'exit' may not follow a spawn error. A missing binary won't come back: stop for good. Anything else
        // (EAGAIN, EMFILE) may pass: try again with backoff.
        if (e.code === ErrorCode.PhpBinaryMissing) this.#stopping = true;
        else this.#onExit(proc, socketPath, null, null);
      });
      proc.once('exit', (code, signal) => {
        this.#onExit(proc, socketPath, code, signal);
        settle(new PhpgateError(ErrorCode.UpstreamConnect, `php-cgi for pool "${o.poolName}" exited at start (${signal ?? `code ${code}`})`));
      });
      void waitForSocket(socketPath, SOCKET_WAIT_MS, () => settled).then((ok) => {
        if (settled) return;
        if (!ok) {
          settle(
            new PhpgateError(ErrorCode.UpstreamConnect, `php-cgi for pool "${o.poolName}" did not open ${socketPath} within ${SOCKET_WAIT_MS} ms`),
          );
          // A socketless master serves nobody: end it, and its exit schedules the next try.
          killGroup(proc.pid);
          return;
        }
        settle(null);
        this.#listener.onMasterReady(socketPath);
      });
    });
  }

  #onExit(proc: ChildProcess, socketPath: string, code: number | null, signal: NodeJS.Signals | null): void {
    const o = this.#o;
    // Orphaned children keep the listening socket and our connections; kill the whole group the master made
    // (php-cgi calls setsid(), so its pid is the group id and the group holds only its children).
    killGroup(proc.pid);
    fs.rmSync(socketPath, { force: true });
    fs.rmSync(`${socketPath}.pid`, { force: true });
    if (this.#proc !== proc) return;
    this.#proc = null;
    if (this.#stopping) return;
    const ran = Date.now() - this.#startedAt;
    if (ran >= HEALTHY_RUN_MS) {
      this.#backoff = BACKOFF_START_MS;
      this.#consecutiveFailures = 0;
    }
    this.#consecutiveFailures++;
    const reason = signal ?? `exit code ${code}`;
    const level = this.#consecutiveFailures >= 3 ? 'error' : 'warn';
    o.log[level](
      { pool: o.poolName, masterPid: proc.pid, reason, restartInMs: this.#backoff, failures: this.#consecutiveFailures },
      this.#consecutiveFailures >= 3
        ? `php-cgi master for pool "${o.poolName}" keeps dying (${reason}); check php.ini, extensions and the log above`
        : `php-cgi master for pool "${o.poolName}" died (${reason}); restarting`,
    );
    this.#listener.onMasterDown(String(reason));
    const delay = this.#backoff;
    this.#backoff = Math.min(this.#backoff * 2, BACKOFF_MAX_MS);
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = null;
      this.#spawn().catch((err: unknown) => {
        o.log.error({ err, pool: o.poolName }, 'php-cgi master restart failed');
      });
    }, delay);
  }

  /** Consecutive failed starts since the last healthy run: health reporting uses it. */
  get consecutiveFailures(): number {
    return this.#consecutiveFailures;
  }

  /** A worker handshook with the current master: it works, so the failure count and the backoff start over. */
  markHealthy(): void {
    this.#consecutiveFailures = 0;
    this.#backoff = BACKOFF_START_MS;
  }

  /** SIGTERM the master (php-cgi then terminates its whole group), SIGKILL the group after a grace. */
  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#restartTimer !== null) clearTimeout(this.#restartTimer);
    const proc = this.#proc;
    if (proc === null || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => killGroup(proc.pid), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  }
}

/**
 * Stops php-cgi masters left behind by a gateway that died without stopping them (SIGKILL, OOM): their
 * children would hold memory and sockets forever. Only masters whose gateway process is gone, and whose
 * command line still names the recorded socket (so a reused pid is never hit), are killed.
 */
export function reapStaleMasters(socketDir: string, log: Logger): void {
  let names: string[];
  try {
    names = fs.readdirSync(socketDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  for (const name of names) {
    const m = /^.+-(\d+)-\d+\.sock\.pid$/.exec(name);
    if (m === null) continue;
    const gatewayPid = Number(m[1]);
    if (gatewayPid === process.pid || isAlive(gatewayPid)) continue;
    const pidFile = path.join(socketDir, name);
    const socketPath = pidFile.slice(0, -'.pid'.length);
    const masterPid = Number(fs.readFileSync(pidFile, 'utf8').trim());
    if (Number.isInteger(masterPid) && masterPid > 0 && commandLine(masterPid).includes(socketPath)) {
      log.warn({ masterPid, socketPath }, 'stopping a php-cgi master left behind by a gateway that is gone');
      killGroup(masterPid);
    }
    fs.rmSync(pidFile, { force: true });
    fs.rmSync(socketPath, { force: true });
  }
}

async function waitForSocket(p: string, timeoutMs: number, abandoned: () => boolean): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 5; Date.now() < deadline && !abandoned(); delay = Math.min(delay * 2, 100)) {
    try {
      if (fs.statSync(p).isSocket()) return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    await new Promise((r) => setTimeout(r, delay));
  }
  return false;
}

/** A value the ini syntax reads back as written when unquoted: a plain token (`256M`, `/var/lib/php`, `On`). */
const PLAIN = /^[A-Za-z0-9_./:+@,%-]*$/;
/** An expression of php.ini constants (`E_ALL & ~E_NOTICE`): left unquoted so php.ini's arithmetic applies. */
const EXPRESSION = /^(?=.*[A-Z])[A-Z0-9_\s&|^~!()]+$/;

/**
 * `-d KEY=VALUE` that PHP reads back as VALUE, byte for byte: php-cgi hands `KEY=VALUE` to the ini parser, which
 * cuts an unquoted value at `=`, `;` or `'` (a Redis session.save_path `tcp://h:6379?prefix=x` became
 * `tcp://h:6379?prefix`), evaluates `&|~` and expands `${…}`. Anything but a plain token or an expression of
 * constants is single-quoted (literal in ini), or double-quoted when it holds a `'` (config/ refuses the one value
 * neither keeps). So `E_ALL & ~E_NOTICE` is still an expression and `Off` a boolean, as in php.ini.
 */
export function iniDefine(key: string, value: string): string {
  if (PLAIN.test(value) || EXPRESSION.test(value)) return `${key}=${value}`;
  return value.includes("'") ? `${key}="${value}"` : `${key}='${value}'`;
}
