/**
 * One php-cgi master per pool: `php-cgi -b SOCKET` with PHP_FCGI_CHILDREN children that share opcache and
 * APCu (as php-fpm's children do). The master only forks and reaps; it replaces a child that exits at once.
 * If the master itself dies, or can no longer be reached (its socket deleted), this restarts it with backoff on a
 * fresh socket. No restart path may throw: a socket directory that cannot be written (ENOSPC, ENOTDIR, EACCES) is
 * retried with backoff, said once at error level per episode, and told to /readyz (`problem`) until a worker
 * handshakes again.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, PhpgateError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { groupWatcher } from './group-watcher.js';
import { gatewayIdentity, type PhpIdentity } from './identity.js';
import { iniDefine } from './ini.js';
import { logLines } from './logger.js';
import { commandLine, isAlive, killGroup } from './process.js';

export interface MasterOptions {
  readonly poolName: string;
  readonly binary: string;
  readonly children: number;
  readonly ini: Readonly<Record<string, string>>;
  readonly env: Readonly<Record<string, string>>;
  readonly socketDir: string;
  /** Who php-cgi runs as (php/identity.ts). */
  readonly identity: PhpIdentity;
  readonly log: Logger;
  /** Makes the socket directory's own files again (handshake scripts…) before every restart: a cleaner may have taken them. */
  readonly prepare?: () => void;
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
/** Deaths in a row that make a master "keep dying" (an error, and a failing pool). */
const FAILING_AFTER = 3;

// Where it always was, for its importers.
export { iniDefine } from './ini.js';

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
  /** Why no master can serve now, for /readyz; null when nothing is known to be wrong. */
  #problem: string | null = null;
  /** This episode (until a worker handshakes again) has had its one error-level line. */
  #errorLogged = false;
  /** Why the running master is being replaced (replace()), or null. */
  #replacing: string | null = null;
  /** A master has listened once: from then on a missing binary is retried too (a package upgrade replaces it). */
  #started = false;

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

  /**
   * Starts a master. Throws (synchronously) when the socket directory cannot be prepared or php-cgi not spawned:
   * the restart path turns that into a retry (#restart).
   */
  #spawn(): Promise<void> {
    const o = this.#o;
    fs.mkdirSync(o.socketDir, { recursive: true, mode: 0o700 });
    const self = gatewayIdentity();
    const switched = o.identity.uid !== self.uid || o.identity.gid !== self.gid;
    const name = `${o.poolName}-${process.pid}-${++generation}.sock`;
    const socketPath = path.join(socketDirFor(o.socketDir, o.identity), name);
    // The pid file stays in the gateway's own directory, where PHP's user cannot rewrite it for a later gateway.
    const pidFile = path.join(o.socketDir, `${name}.pid`);
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
    const ids = switched ? { uid: o.identity.uid, gid: o.identity.gid } : {};
    const proc = spawn(o.binary, args, { env, stdio: ['ignore', 'pipe', 'pipe'], ...ids });
    if (proc.pid !== undefined) {
      // Ends with this process however it ends (group-watcher.ts); and recorded, so that a later gateway can stop
      // it if even that failed.
      groupWatcher.add(proc.pid, o.log);
      try {
        fs.writeFileSync(pidFile, String(proc.pid), { mode: 0o600 });
      } catch (err) {
        // No record (ENOSPC…), no master: a later gateway could not reap it. End it; the caller retries.
        groupWatcher.remove(proc.pid);
        proc.once('error', (e) => o.log.debug({ err: e, pool: o.poolName }, 'php-cgi master ended before it ran'));
        proc.once('exit', () => killGroup(proc.pid));
        proc.kill('SIGKILL');
        removeQuietly(pidFile, o.log);
        throw err;
      }
    }
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
        if (e.code === ErrorCode.PhpBinaryMissing && !this.#started) this.#stopping = true;
        else this.#onExit(proc, socketPath, pidFile, `${err.code ?? err.message}`);
      });
      proc.once('exit', (code, signal) => {
        this.#onExit(proc, socketPath, pidFile, signal ?? `exit code ${code}`);
        settle(new PhpgateError(ErrorCode.UpstreamConnect, `php-cgi for pool "${o.poolName}" exited at start (${signal ?? `code ${code}`})`));
      });
      void waitForSocket(socketPath, SOCKET_WAIT_MS, () => settled, o.log).then((ok) => {
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
        this.#started = true;
        this.#listener.onMasterReady(socketPath);
      });
    });
  }

  #onExit(proc: ChildProcess, socketPath: string, pidFile: string, exit: string): void {
    const o = this.#o;
    // Orphaned children keep the listening socket and our connections; kill the whole group the master made
    // (php-cgi calls setsid(), so its pid is the group id and the group holds only its children).
    killGroup(proc.pid);
    if (proc.pid !== undefined) groupWatcher.remove(proc.pid);
    removeQuietly(socketPath, o.log);
    removeQuietly(pidFile, o.log);
    if (this.#proc !== proc) return;
    this.#proc = null;
    if (this.#stopping) return;
    const ran = Date.now() - this.#startedAt;
    if (ran >= HEALTHY_RUN_MS) {
      this.#backoff = BACKOFF_START_MS;
      this.#consecutiveFailures = 0;
    }
    this.#consecutiveFailures++;
    const replaced = this.#replacing;
    this.#replacing = null;
    const reason = replaced ?? exit;
    const fields = { pool: o.poolName, masterPid: proc.pid, reason, restartInMs: this.#backoff, failures: this.#consecutiveFailures };
    if (replaced !== null) {
      o.log.debug(fields, `php-cgi master for pool "${o.poolName}" replaced; starting another`);
    } else if (this.#consecutiveFailures >= FAILING_AFTER) {
      this.#trouble(
        `php-cgi keeps failing to start (${reason})`,
        fields,
        `php-cgi master for pool "${o.poolName}" keeps dying (${reason}); check php.ini, extensions and the log above`,
      );
    } else {
      o.log.warn(fields, `php-cgi master for pool "${o.poolName}" died (${reason}); restarting`);
    }
    this.#listener.onMasterDown(reason);
    this.#scheduleRestart();
  }

  #scheduleRestart(): void {
    const delay = this.#backoff;
    this.#backoff = Math.min(this.#backoff * 2, BACKOFF_MAX_MS);
    this.#restartTimer = setTimeout(() => this.#restart(), delay);
  }

  /** A timer's callback: never throws. A start that fails before php-cgi runs is retried with backoff. */
  #restart(): void {
    this.#restartTimer = null;
    if (this.#stopping) return;
    let started: Promise<void>;
    try {
      this.#o.prepare?.();
      started = this.#spawn();
    } catch (err) {
      this.#consecutiveFailures++;
      const { code, path: file } = err as NodeJS.ErrnoException;
      this.#trouble(
        // Short, for /readyz (no token): the path and the whole message are in the log line.
        file !== undefined ? `its socket directory is unusable (${code})` : `php-cgi cannot be started (${code ?? 'see the log'})`,
        { err, pool: this.#o.poolName, restartInMs: this.#backoff, failures: this.#consecutiveFailures },
        `php-cgi master for pool "${this.#o.poolName}" cannot be started: ${err instanceof Error ? err.message : String(err)}; retrying with backoff`,
      );
      this.#scheduleRestart();
      return;
    }
    // A master that started and then failed has exited: its exit scheduled the next try and said why.
    started.catch((err: unknown) => this.#o.log.debug({ err, pool: this.#o.poolName }, 'php-cgi master restart failed'));
  }

  /** Records why the pool cannot serve; one error-level line per episode, the retries after it at debug. */
  #trouble(problem: string, fields: Record<string, unknown>, message: string): void {
    this.#problem = problem;
    if (this.#errorLogged) {
      this.#o.log.debug(fields, message);
      return;
    }
    this.#errorLogged = true;
    this.#o.log.error(fields, message);
  }

  /**
   * The master runs but can no longer be reached: its socket was deleted (a tmp cleaner) or refuses connections, so
   * no child that leaves is ever replaced for us. It is ended (its group with it); the exit path starts another on a
   * fresh socket with the usual backoff. Requests still running on its children fail.
   */
  replace(reason: string): void {
    const proc = this.#proc;
    if (proc === null || this.#stopping || this.#replacing !== null || proc.exitCode !== null || proc.signalCode !== null) return;
    this.#replacing = reason;
    this.#trouble(
      `php-cgi master ${reason}; replacing it`,
      { pool: this.#o.poolName, masterPid: proc.pid, reason },
      `php-cgi master for pool "${this.#o.poolName}": ${reason}; replacing it on a fresh socket`,
    );
    killGroup(proc.pid);
    proc.kill('SIGKILL');
  }

  /** Why no master can serve now (what /readyz says), or null. */
  get problem(): string | null {
    return this.#problem;
  }

  /** Consecutive failed starts since the last healthy run: health reporting uses it. */
  get consecutiveFailures(): number {
    return this.#consecutiveFailures;
  }

  /** A worker handshook with the current master: it works, so the failure count and the backoff start over. */
  markHealthy(): void {
    if (this.#errorLogged)
      this.#o.log.info({ pool: this.#o.poolName, masterPid: this.pid }, `php-cgi master for pool "${this.#o.poolName}" serves again`);
    this.#consecutiveFailures = 0;
    this.#backoff = BACKOFF_START_MS;
    this.#problem = null;
    this.#errorLogged = false;
  }

  /** Something was wrong since the last healthy handshake (markHealthy has work to do). */
  get troubled(): boolean {
    return this.#consecutiveFailures !== 0 || this.#problem !== null;
  }

  /** SIGTERM the master (php-cgi then terminates its whole group), SIGKILL the group after a grace. */
  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#restartTimer !== null) clearTimeout(this.#restartTimer);
    const proc = this.#proc;
    if (proc === null || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    // Let go first: once the master is reaped its pid may be reused, and the watcher must never signal that.
    if (proc.pid !== undefined) groupWatcher.remove(proc.pid);
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
    // The socket is beside the pid file, or in a user's subdirectory (socketDirFor).
    const socketName = name.slice(0, -'.pid'.length);
    const sockets = [socketDir, ...names.filter((n) => /^u\d+$/.test(n)).map((n) => path.join(socketDir, n))].map((d) => path.join(d, socketName));
    const masterPid = Number(fs.readFileSync(pidFile, 'utf8').trim());
    const command = Number.isInteger(masterPid) && masterPid > 0 ? commandLine(masterPid) : '';
    const socketPath = sockets.find((s) => command.includes(`-b ${s} `));
    if (socketPath !== undefined) {
      log.warn({ masterPid, socketPath }, 'stopping a php-cgi master left behind by a gateway that is gone');
      killGroup(masterPid);
    }
    fs.rmSync(pidFile, { force: true });
    for (const s of sockets) fs.rmSync(s, { force: true });
  }
}

/**
 * Where a pool's php-cgi binds its socket (php-cgi makes it 0777). Not root: the socket directory, 0700. Root:
 * PHP may run as other users, who must bind there, so the socket directory is 0711 (passed through, never
 * listed: see writeHandshakeScript) and each user's sockets, root's too, lie in a subdirectory of its own
 * (`u<uid>`, owned by it, 0700). The gateway, root, reaches every socket; no other user reaches any.
 */
export function socketDirFor(socketDir: string, identity: PhpIdentity): string {
  if (gatewayIdentity().uid !== 0) return socketDir;
  const dir = path.join(socketDir, `u${identity.uid}`);
  fs.mkdirSync(dir, { mode: 0o700, recursive: true });
  // Only root creates entries in the socket directory, so this is ours; owner and mode are made right whatever
  // an earlier run left.
  const st = fs.lstatSync(dir);
  if (!st.isDirectory()) throw new PhpgateError(ErrorCode.ConfigInvalid, `${dir} is not a directory; remove it`);
  if (st.uid !== identity.uid) fs.chownSync(dir, identity.uid, identity.gid);
  if ((st.mode & 0o777) !== 0o700) fs.chmodSync(dir, 0o700);
  return dir;
}

/** Never throws: a path that cannot be read (ENOTDIR, EACCES: the directory was replaced) is no socket yet. */
async function waitForSocket(p: string, timeoutMs: number, abandoned: () => boolean, log: Logger): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 5; Date.now() < deadline && !abandoned(); delay = Math.min(delay * 2, 100)) {
    try {
      if (fs.statSync(p).isSocket()) return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.debug({ err }, 'php-cgi socket cannot be read yet');
    }
    await new Promise((r) => setTimeout(r, delay));
  }
  return false;
}

/** Removes a file the master made; what is in the way (ENOTDIR: the directory is a file now) is logged, not thrown. */
function removeQuietly(file: string, log: Logger): void {
  try {
    fs.rmSync(file, { force: true });
  } catch (err) {
    log.debug({ err, file }, 'cannot remove a php-cgi socket or pid file');
  }
}
