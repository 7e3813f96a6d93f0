/**
 * One php-cgi child, seen through the one keep-alive connection bound to it, and known by its pid (learned by
 * the handshake). Supervises by pid: timeout kill, recycle after max_requests. Reconnects itself when the
 * connection goes (the master forks a replacement child for the one that left).
 */
import { ErrorCode, UpstreamError, type PhpgateError } from '../core/errors.js';
import { FcgiConnection, type ConnectionOwner, type FcgiResponseHandler } from './fastcgi/connection.js';
import { handshake } from './handshake.js';
import { killAbandoned, type ChildOwner } from './abandoned.js';
import { parentOf, signalPid } from './process.js';
import { RequestClock } from './request-clock.js';
import { RestartReason, WorkerState } from './worker-state.js';
import type { ParamValue } from './fastcgi/record.js';

export interface WorkerRequestHandler extends FcgiResponseHandler {
  /** STDIN may be written again after writeStdin returned false. */
  onStdinDrain(): void;
}

/** What the worker needs of its pool. */
export interface WorkerHost extends ChildOwner {
  readonly poolName: string;
  readonly timeoutMs: number;
  readonly maxRequests: number;
  readonly workerCount: number;
  readonly handshakeScript: string;
  /** The current master's socket, or null while no master is listening. */
  socketPath(): string | null;
  onWorkerIdle(w: Worker): void;
  onWorkerLost(w: Worker): void;
  /** Connecting or handshaking failed; the worker retries with backoff. */
  onConnectFailed(w: Worker, err: PhpgateError): void;
  /** A child is being replaced, and why. */
  onRestart(reason: RestartReason): void;
  /** Whether the child a handshake named may serve (php/abandoned.ts; not another pool's php-cgi). */
  mayServe(pid: number): boolean;
  /** A request just ended on this worker (the pool may sample its memory). */
  afterRequest(w: Worker): void;
}

export { RestartReason, WorkerState } from './worker-state.js';

const CONNECT_TIMEOUT_MS = 5_000;
const HANDSHAKE_TIMEOUT_MS = 10_000;
const RECONNECT_MIN_MS = 20;
const RECONNECT_MAX_MS = 2_000;
/** SIGTERM first so PHP's shutdown functions may run; SIGKILL if the child is still there after this. */
const KILL_GRACE_MS = 1_000;

export class Worker implements FcgiResponseHandler, ConnectionOwner {
  readonly id: number;
  readonly #host: WorkerHost;
  #state: WorkerState = WorkerState.Connecting;
  #conn: FcgiConnection | null = null;
  #pid = 0;
  #requests = 0;
  /** Requests this child serves before it is recycled (0: never). */
  #limit = 0;
  #generation = 0;
  #request: WorkerRequestHandler | null = null;
  #label = '';
  #startedAt = 0;
  /** The last site request (not the gateway's probes), '' before one, and its duration (ms; -1 while it runs): php-fpm's status shows it when idle. */
  #lastLabel = '';
  #lastMs = -1;
  /** When the current child was handshaken (ms epoch): php-fpm's per-process "start time". Read-only outside. */
  childSince = 0;
  /** timeout_ms of the request being served, stopped while PHP waits for its client. */
  readonly #clock = new RequestClock(() => this.#onTimeout());
  #reconnectDelay = RECONNECT_MIN_MS;
  #reconnectTimer: NodeJS.Timeout | null = null;
  /** Private memory (bytes) at the last sample; 0 before the first. */
  #privateBytes = 0;
  /** Over memory_limit_mb while serving: replaced as soon as its current request ends. */
  #overMemory = false;
  #requestsTotal = 0;

  constructor(id: number, host: WorkerHost) {
    this.id = id;
    this.#host = host;
  }

  get state(): WorkerState {
    return this.#state;
  }
  get pid(): number {
    return this.#pid;
  }
  get requests(): number {
    return this.#requests;
  }
  /** Requests served by every child this worker slot has had. */
  get requestsTotal(): number {
    return this.#requestsTotal;
  }
  get privateBytes(): number {
    return this.#privateBytes;
  }
  last(): { readonly label: string; readonly ms: number } | null {
    return this.#lastLabel === '' ? null : { label: this.#lastLabel, ms: this.#lastMs };
  }
  /** The request being served, or null: what /status shows. */
  current(): { readonly label: string; readonly startedAt: number } | null {
    return this.#state === WorkerState.Busy && this.#request !== null ? { label: this.#label, startedAt: this.#startedAt } : null;
  }

  /**
   * Records a memory sample. Over `limitBytes`, the child is replaced: now if idle, else once its request ends
   * (the request is never cut short for memory, as php-fpm's and RoadRunner's limits behave).
   */
  noteMemory(bytes: number, limitBytes: number): void {
    this.#privateBytes = bytes;
    if (limitBytes <= 0 || bytes <= limitBytes || this.#overMemory) return;
    this.#overMemory = true;
    this.#host.log.warn(
      {
        pool: this.#host.poolName,
        workerPid: this.#pid,
        privateMb: Math.round(bytes / 1048576),
        limitMb: Math.round(limitBytes / 1048576),
        request: this.#label,
      },
      'worker over memory_limit_mb; replacing it (request = the script that pushed it over)',
    );
    if (this.#state === WorkerState.Idle) {
      this.#host.onWorkerLost(this);
      this.#host.onRestart(RestartReason.Memory);
      this.#retire();
    }
  }

  /** Connects (or reconnects) and handshakes; on success the worker reports itself idle. */
  connect(): void {
    if (this.#state === WorkerState.Stopped || this.#conn !== null || this.#reconnectTimer !== null) return;
    const socketPath = this.#host.socketPath();
    if (socketPath === null) return; // the pool calls connect() again when a master is listening
    this.#state = WorkerState.Connecting;
    FcgiConnection.connect(socketPath, this, CONNECT_TIMEOUT_MS)
      .then(async (conn) => {
        if (this.#stopped()) {
          conn.destroy();
          return;
        }
        this.#conn = conn;
        const pid = await handshake(conn, this.#host.handshakeScript, HANDSHAKE_TIMEOUT_MS);
        // stop() destroyed it meanwhile, or it closed: onConnectionClose has taken over.
        if (this.#conn !== conn || conn.closed) return;
        if (!this.#host.mayServe(pid)) throw new UpstreamError(ErrorCode.UpstreamConnect, `the socket's child ${pid} is not one this pool may use`);
        this.#pid = pid;
        this.childSince = Date.now();
        this.#requests = 0;
        this.#privateBytes = 0;
        this.#overMemory = false;
        this.#limit = this.#recycleLimit();
        this.#generation++;
        this.#reconnectDelay = RECONNECT_MIN_MS;
        this.#state = WorkerState.Idle;
        this.#host.onWorkerIdle(this);
      })
      .catch((err: PhpgateError) => {
        this.#host.onConnectFailed(this, err);
        const conn = this.#conn;
        this.#conn = null;
        conn?.destroy();
        this.#scheduleReconnect();
      });
  }

  /**
   * Starts a request on this (idle) worker. The params go out at once; the caller streams STDIN with
   * writeStdin/endStdin, unless `noBody`. `label` (script and URI) names the request in the logs.
   */
  run(params: Iterable<readonly [string, ParamValue]>, handler: WorkerRequestHandler, label: string, noBody = false, internal = false): void {
    const conn = this.#conn;
    if (this.#state !== WorkerState.Idle || conn === null) throw new Error(`worker ${this.id} is not idle`);
    // First, so params that cannot be sent throw (ParamTooLarge) while this worker is still idle and untouched.
    conn.begin(params, this, noBody);
    this.#state = WorkerState.Busy;
    this.#request = handler;
    this.#label = label;
    this.#startedAt = Date.now();
    // The gateway's own probes are not the site's requests: they count neither for max_requests nor in stats.
    if (!internal) {
      this.#requests++;
      this.#requestsTotal++;
      this.#lastLabel = label;
      this.#lastMs = -1;
    }
    this.#clock.start(this.#host.timeoutMs);
  }

  writeStdin(chunk: Buffer): boolean {
    return this.#conn === null ? true : this.#conn.writeStdin(chunk);
  }

  endStdin(): void {
    this.#conn?.endStdin();
  }

  /** The client caught up: read from PHP again, and restart PHP's clock where it stopped. */
  resume(): void {
    if (this.#state === WorkerState.Busy) this.#clock.resume();
    this.#conn?.resume();
  }

  /**
   * The client went away mid-request. php-cgi ignores FCGI_ABORT_REQUEST, so the connection is closed instead:
   * the script's next output fails and PHP aborts it (connection_aborted(), shutdown functions), as php-fpm
   * does behind nginx. A script that never writes again is killed when its timeout_ms runs out. If its body was
   * not fully sent, the script must not run on a truncated input at all: it is killed at once.
   */
  abort(): void {
    if (this.#state !== WorkerState.Busy) return;
    this.#request = null;
    const conn = this.#conn;
    const pid = this.#pid;
    const bodyCut = conn !== null && conn.stdinOpen;
    const left = this.#clock.remaining();
    this.#clock.finish();
    this.#state = WorkerState.Recycling;
    this.#host.onRestart(RestartReason.ClientAbort);
    // Let go of the child now: until its connection's close arrives this slot would still claim it (servedBy).
    this.#pid = 0;
    conn?.destroy();
    if (pid <= 0) return;
    if (bodyCut) killAbandoned(this.#host, pid);
    // Also after a body cut (the kill may have lost a race with the child): its deadline stands.
    if (this.#host.timeoutMs > 0) setTimeout(() => killAbandoned(this.#host, pid), Math.max(0, left)).unref();
  }

  stop(): void {
    this.#state = WorkerState.Stopped;
    this.#clock.finish();
    if (this.#reconnectTimer !== null) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
    this.#conn?.destroy();
  }

  // FcgiResponseHandler: forwards to the current request, and keeps the books.
  onStdout(chunk: Buffer): boolean {
    if (this.#request === null || this.#request.onStdout(chunk)) return true;
    this.#clock.stop();
    return false;
  }

  onReadEnd(): boolean {
    if (this.#request === null || this.#request.onReadEnd === undefined || this.#request.onReadEnd()) return true;
    this.#clock.stop();
    return false;
  }

  onStderr(chunk: Buffer): void {
    if (this.#request !== null) this.#request.onStderr(chunk);
  }

  onEnd(appStatus: number): void {
    const req = this.#request;
    this.#request = null;
    if (this.#lastMs < 0) this.#lastMs = Date.now() - this.#startedAt;
    this.#clock.finish();
    if (this.#state === WorkerState.Busy) {
      this.#host.afterRequest(this);
      if (this.#overMemory) {
        this.#host.onRestart(RestartReason.Memory);
        this.#retire();
      } else if (this.#limit > 0 && this.#requests >= this.#limit) {
        // Recycled while idle, so no request ever sees it.
        this.#host.log.info({ pool: this.#host.poolName, workerPid: this.#pid, requests: this.#requests }, 'recycling worker after max_requests');
        this.#host.onRestart(RestartReason.MaxRequests);
        this.#retire();
      } else if (this.#conn !== null && this.#conn.idle) {
        this.#state = WorkerState.Idle;
      } else {
        // PHP answered before reading all of its body: the connection is being closed (see FcgiConnection), which
        // is no crash; reconnect at once.
        this.#state = WorkerState.Recycling;
      }
    }
    if (req !== null) req.onEnd(appStatus);
    // Reported after the request's own end, so the next request can't overtake this one's last writes.
    if (this.#state === WorkerState.Idle) this.#host.onWorkerIdle(this);
  }

  onError(err: PhpgateError): void {
    const req = this.#request;
    this.#request = null;
    this.#clock.finish();
    if (req !== null) req.onError(err);
  }

  onConnectionDrain(): void {
    if (this.#request !== null) this.#request.onStdinDrain();
  }

  onConnectionClose(conn: FcgiConnection): void {
    if (this.#conn !== conn) return;
    this.#conn = null;
    const wasBusy = this.#state === WorkerState.Busy;
    const wasRetired = this.#state === WorkerState.Recycling;
    if (wasBusy) {
      this.#host.log.warn({ pool: this.#host.poolName, workerPid: this.#pid, request: this.#label }, 'php-cgi child died mid-request');
    }
    if (!wasRetired && this.#state !== WorkerState.Stopped && this.#pid > 0) this.#host.onRestart(RestartReason.Crash);
    if (this.#state !== WorkerState.Stopped) {
      this.#state = WorkerState.Connecting;
      this.#pid = 0;
      this.#host.onWorkerLost(this);
      // A child we retired on purpose is replaced at once; an unexpected loss backs off.
      this.#scheduleReconnect(wasRetired);
    }
  }

  #onTimeout(): void {
    const req = this.#request;
    this.#request = null;
    const elapsedMs = Date.now() - this.#startedAt;
    this.#host.log.error(
      { pool: this.#host.poolName, workerPid: this.#pid, request: this.#label, elapsedMs },
      `request exceeded timeout_ms (${this.#host.timeoutMs}); killing the worker`,
    );
    this.#state = WorkerState.Recycling;
    this.#host.onRestart(RestartReason.Timeout);
    this.#kill();
    if (req !== null) {
      req.onError(new UpstreamError(ErrorCode.UpstreamTimeout, `PHP did not answer within ${this.#host.timeoutMs} ms`));
    }
  }

  /**
   * Recycles an idle child. php-cgi's SIGTERM handler only sets a shutdown flag that the child reads when it goes
   * back to accept(); closing our connection sends it there, so it exits at once and the master forks anew.
   */
  #retire(): void {
    this.#state = WorkerState.Recycling;
    const pid = this.#pid;
    if (pid > 0) {
      signalPid(pid, 'SIGTERM');
      this.#killLater(pid);
    }
    this.#conn?.destroy();
  }

  /**
   * Kills the child of a request past its timeout. A running script ignores SIGTERM (see #retire), so the SIGKILL
   * after the grace is what ends it; the grace lets a child that traps SIGTERM (pcntl) finish its shutdown.
   */
  #kill(): void {
    const pid = this.#pid;
    const conn = this.#conn;
    if (pid <= 0) {
      conn?.destroy();
      return;
    }
    signalPid(pid, 'SIGTERM');
    // The child's death shows as the connection closing; a socket paused for a slow client would never see it.
    conn?.resume();
    this.#killLater(pid);
  }

  #killLater(pid: number): void {
    setTimeout(() => {
      const master = this.#host.masterPid;
      if (master !== null && parentOf(pid) === master) signalPid(pid, 'SIGKILL');
    }, KILL_GRACE_MS).unref();
  }

  /**
   * max_requests for this child. The first children of a pool get staggered limits (from max down to max/2),
   * so a pool under even load doesn't recycle every child in the same instant.
   */
  #recycleLimit(): number {
    const max = this.#host.maxRequests;
    if (max <= 0 || this.#generation > 0) return max;
    return max - Math.floor((this.id * max) / (2 * this.#host.workerCount));
  }

  #stopped(): boolean {
    return this.#state === WorkerState.Stopped;
  }

  #scheduleReconnect(immediately = false): void {
    if (this.#state === WorkerState.Stopped || this.#reconnectTimer !== null) return;
    let delay = 0;
    if (!immediately) {
      delay = this.#reconnectDelay;
      this.#reconnectDelay = Math.min(delay * 2, RECONNECT_MAX_MS);
    }
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      this.connect();
    }, delay);
  }
}
