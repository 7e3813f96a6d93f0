/**
 * A pool: one php-cgi master, `worker_count` workers (one per child), an idle list and a FIFO wait queue.
 * A request gets an idle worker or waits; it never lands on a busy child.
 */
import { ErrorCode, PhpgateError } from '../core/errors.js';
import type { PoolSettings } from '../config/types.js';
import type { Logger } from '../core/log.js';
import { gatewayIdentity, type PhpIdentity } from './identity.js';
import { KilledChildren } from './abandoned.js';
import { Master } from './master.js';
import fs from 'node:fs';
import { handshakeParams as probeParams, probeScriptBeside, restoreSocketDir, ScriptAnswer } from './handshake.js';
import { type RestartReason, Worker, WorkerState, type WorkerHost } from './worker.js';

/** Someone waiting for a worker. Exactly one of the two is called, unless the wait is cancelled first. */
export interface PoolWaiter {
  onWorker(w: Worker): void;
  onPoolError(err: PhpgateError): void;
}

export interface PoolOptions {
  readonly name: string;
  readonly settings: PoolSettings;
  readonly binary: string;
  readonly socketDir: string;
  readonly handshakeScript: string;
  /** Who php-cgi runs as (php/identity.ts). */
  readonly identity: PhpIdentity;
  readonly log: Logger;
}

export interface WorkerStats {
  readonly pid: number;
  readonly state: WorkerState;
  /** Requests served by the current child. */
  readonly requests: number;
  /** Requests served by every child of this slot. */
  readonly requestsTotal: number;
  /** Private memory at the last sample (bytes; 0 before the first). */
  readonly privateBytes: number;
  /** The request being served: script and URI, and since when (ms epoch). */
  readonly current: { readonly label: string; readonly startedAt: number } | null;
  /** When this slot's current child started (ms epoch; 0 before one). */
  readonly childSince: number;
  /** The last site request served (or being served) and its duration (ms, -1 while it runs), or null. */
  readonly last: { readonly label: string; readonly ms: number } | null;
}

export interface PoolStats {
  readonly name: string;
  readonly masterPid: number | null;
  readonly workers: readonly WorkerStats[];
  readonly idle: number;
  readonly busy: number;
  /** Connecting, handshaking or being replaced. */
  readonly starting: number;
  readonly queued: number;
  readonly queueLimit: number;
  /** At least one worker can take a request now or soon (live and handshaken). */
  readonly ready: boolean;
  /** The master keeps dying at start: a bad php.ini, a missing extension… (what /readyz and the log say). */
  readonly failing: boolean;
  /** Why the master cannot serve (lost its socket, cannot be started, keeps dying), or null: /readyz says it. */
  readonly problem: string | null;
  readonly restarts: Readonly<Record<RestartReason, number>>;
  /** The master's shared opcache and APCu memory at the last probe (bytes), or null before one / if unknown. */
  readonly shared: SharedMemory | null;
  /** Most requests that waited at once, most workers busy at once (seen at each wait and each stats()), and how many requests had to wait for a worker. */
  readonly maxQueued: number;
  readonly maxBusy: number;
  readonly waited: number;
}

export interface SharedMemory {
  readonly opcacheUsed: number | null;
  readonly opcacheFree: number | null;
  readonly apcuUsed: number | null;
  readonly apcuSize: number | null;
}

interface QueueEntry {
  waiter: PoolWaiter;
  timer: NodeJS.Timeout | null;
}

const START_TIMEOUT_MS = 15_000;
/** How often every worker's private memory is sampled (and after each request once it nears the limit). */
const MEMORY_SAMPLE_MS = 500;
/** Past this share of the limit, a worker is sampled after every request too, not only every 500 ms. */
const MEMORY_WATCH_SHARE = 0.8;
/** How often the shared-memory probe runs (on an idle worker only, never queued ahead of a request). */
const PROBE_MS = 10_000;
/** Master restarts in a row that make a pool "failing". */
const FAILING_AFTER = 3;
/**
 * Connects in a row refused (ENOENT, ECONNREFUSED) while the master runs: its socket is gone, and no worker that
 * leaves will ever come back. More than one, so a master that just died (its exit not yet seen) is not "lost".
 */
const LOST_SOCKET_AFTER = 3;

export class Pool implements WorkerHost {
  readonly poolName: string;
  readonly timeoutMs: number;
  readonly maxRequests: number;
  readonly workerCount: number;
  readonly handshakeScript: string;
  readonly log: Logger;
  readonly #settings: PoolSettings;
  readonly #probeScript: string;
  readonly #master: Master;
  /** Children killed after an abort, lately: a handshake naming one is thrown away. */
  readonly #killed = new KilledChildren();
  readonly #workers: Worker[] = [];
  readonly #idle: Worker[] = [];
  #queue: QueueEntry[] = [];
  #socketPath: string | null = null;
  #closed = false;
  #onFirstIdle: (() => void) | null = null;
  readonly #memoryLimitBytes: number;
  #memoryTimer: NodeJS.Timeout | null = null;
  #probeTimer: NodeJS.Timeout | null = null;
  #shared: SharedMemory | null = null;
  #maxQueued = 0;
  #maxBusy = 0;
  #waited = 0;
  /** Connects refused in a row since a worker last handshook (LOST_SOCKET_AFTER). */
  #refused = 0;
  readonly #restarts: Record<RestartReason, number> = { crash: 0, memory: 0, max_requests: 0, timeout: 0, client_abort: 0, reload: 0 };

  constructor(o: PoolOptions) {
    this.poolName = o.name;
    this.#settings = o.settings;
    this.timeoutMs = o.settings.timeout_ms;
    this.maxRequests = o.settings.max_requests;
    this.workerCount = o.settings.worker_count;
    this.#memoryLimitBytes = o.settings.memory_limit_mb * 1024 * 1024;
    this.handshakeScript = o.handshakeScript;
    this.#probeScript = probeScriptBeside(o.handshakeScript);
    this.log = o.log;
    this.#master = new Master(
      {
        poolName: o.name,
        binary: o.binary,
        children: o.settings.worker_count,
        ini: o.settings.ini,
        env: o.settings.env,
        socketDir: o.socketDir,
        identity: o.identity,
        log: o.log,
        // As root, PHP's users pass through the socket directory to their own (socketDirFor), as server.ts made it.
        prepare: () => restoreSocketDir(o.socketDir, gatewayIdentity().uid === 0),
      },
      {
        onMasterReady: (socketPath) => {
          this.#socketPath = socketPath;
          this.#refused = 0;
          for (const w of this.#workers) w.connect();
        },
        onMasterDown: () => {
          this.#socketPath = null;
        },
      },
    );
    for (let i = 0; i < o.settings.worker_count; i++) this.#workers.push(new Worker(i, this));
  }

  get masterPid(): number | null {
    return this.#master.pid;
  }

  /** Starts the master and resolves once every worker has handshaken (or rejects if PHP can't start). */
  async start(): Promise<void> {
    await this.#master.start();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#onFirstIdle = null;
        reject(new PhpgateError(ErrorCode.UpstreamConnect, `pool "${this.poolName}": workers not ready within ${START_TIMEOUT_MS} ms`));
      }, START_TIMEOUT_MS);
      this.#onFirstIdle = () => {
        if (this.#idle.length < this.#workers.length) return;
        clearTimeout(timer);
        this.#onFirstIdle = null;
        resolve();
      };
      this.#onFirstIdle();
    });
    this.log.info({ pool: this.poolName, masterPid: this.#master.pid, workers: this.#workers.map((w) => w.pid) }, 'pool ready');
    this.#probe();
    this.#probeTimer = setInterval(() => this.#probe(), PROBE_MS);
    this.#probeTimer.unref();
    if (this.#memoryLimitBytes > 0) {
      this.#memoryTimer = setInterval(() => {
        for (const w of this.#workers) this.#sampleMemory(w);
      }, MEMORY_SAMPLE_MS);
      this.#memoryTimer.unref();
    }
  }

  socketPath(): string | null {
    return this.#socketPath;
  }

  onRestart(reason: RestartReason): void {
    this.#restarts[reason]++;
  }

  afterRequest(w: Worker): void {
    if (this.#memoryLimitBytes > 0 && w.privateBytes > this.#memoryLimitBytes * MEMORY_WATCH_SHARE) this.#sampleMemory(w);
  }

  /**
   * Private memory from /proc/PID/smaps_rollup (Private_Clean + Private_Dirty), not RSS: the opcache and APCu
   * pages all children of the master share count in each child's RSS, and would recycle healthy workers.
   */
  #sampleMemory(w: Worker): void {
    const pid = w.pid;
    if (pid <= 0) return;
    let text: string;
    try {
      text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'latin1');
    } catch (err) {
      void err; // gone between the check and the read: its replacement gets sampled next round
      return;
    }
    let kb = 0;
    for (const m of text.matchAll(/^Private_(?:Clean|Dirty):\s+(\d+) kB/gm)) kb += Number(m[1]);
    w.noteMemory(kb * 1024, this.#memoryLimitBytes);
  }

  /** Runs the shared-memory probe on an idle worker, if one is idle and nobody waits; skipped otherwise. */
  #probe(): void {
    if (this.#closed || this.#queue.length > 0) return;
    const w = this.#idle.pop();
    if (w === undefined) return;
    const answer = new ScriptAnswer(
      (body) => {
        try {
          this.#shared = JSON.parse(body) as SharedMemory;
        } catch (err) {
          this.log.debug({ err, pool: this.poolName }, 'shared-memory probe answered something else');
        }
      },
      (err) => this.log.debug({ err, pool: this.poolName }, 'shared-memory probe failed'),
    );
    w.run(probeParams(this.#probeScript), answer, 'phpgate probe', true, true);
  }

  servedBy(pid: number): boolean {
    return this.#workers.some((w) => w.pid === pid);
  }

  killed(pid: number): void {
    this.#killed.add(pid);
  }

  mayServe(pid: number): boolean {
    const verdict = this.#killed.judge(pid, this.#master.pid);
    if (verdict !== 'foreign') return verdict === 'ours';
    // A socket that leads elsewhere is no longer this pool's: a new master on a fresh socket, said loudly.
    this.log.error({ pool: this.poolName, workerPid: pid }, "the pool's socket led to a process that is not its php-cgi child");
    this.#master.replace('its socket led to another process');
    return false;
  }

  /**
   * An idle worker now, or null after queueing the waiter (it is called back later). Throws PoolSaturated when
   * the queue is full: the caller answers 503.
   */
  acquire(waiter: PoolWaiter): Worker | null {
    if (this.#closed) throw new PhpgateError(ErrorCode.PoolClosed, `pool "${this.poolName}" is stopping`);
    const w = this.#idle.pop();
    if (w !== undefined) return w;
    if (this.#queue.length >= this.#settings.queue_limit) {
      throw new PhpgateError(ErrorCode.PoolSaturated, `pool "${this.poolName}": ${this.#queue.length} requests already waiting (queue_limit)`);
    }
    const entry: QueueEntry = { waiter, timer: null };
    if (this.#settings.queue_timeout_ms > 0) {
      entry.timer = setTimeout(() => this.#expire(entry), this.#settings.queue_timeout_ms);
    }
    this.#queue.push(entry);
    // The slow path only: every live worker is busy now (php-fpm's max active processes / max children reached).
    this.#waited++;
    if (this.#queue.length > this.#maxQueued) this.#maxQueued = this.#queue.length;
    const busy = this.#workers.reduce((n, x) => (x.state === WorkerState.Busy ? n + 1 : n), 0);
    if (busy > this.#maxBusy) this.#maxBusy = busy;
    return null;
  }

  /** The waiter no longer wants a worker (its client went away). */
  cancel(waiter: PoolWaiter): void {
    const i = this.#queue.findIndex((e) => e.waiter === waiter);
    if (i === -1) return;
    const [entry] = this.#queue.splice(i, 1);
    if (entry!.timer !== null) clearTimeout(entry!.timer);
  }

  onWorkerIdle(w: Worker): void {
    if (this.#closed) return;
    this.#refused = 0;
    if (this.#master.troubled) this.#master.markHealthy();
    const entry = this.#queue.shift();
    if (entry !== undefined) {
      if (entry.timer !== null) clearTimeout(entry.timer);
      entry.waiter.onWorker(w);
      return;
    }
    this.#idle.push(w);
    if (this.#onFirstIdle !== null) this.#onFirstIdle();
  }

  onConnectFailed(w: Worker, err: PhpgateError): void {
    this.log.debug({ err, pool: this.poolName, worker: w.id }, 'worker connect failed; retrying');
    const code = (err.cause as NodeJS.ErrnoException | undefined)?.code;
    if (this.#closed || this.#socketPath === null || (code !== 'ENOENT' && code !== 'ECONNREFUSED')) return;
    if (++this.#refused < LOST_SOCKET_AFTER) return;
    this.#refused = 0;
    this.#master.replace(code === 'ENOENT' ? 'lost its socket (deleted)' : 'lost its socket (connections refused)');
  }

  onWorkerLost(w: Worker): void {
    const i = this.#idle.indexOf(w);
    if (i !== -1) this.#idle.splice(i, 1);
  }

  stats(): PoolStats {
    let busy = 0;
    let live = 0;
    const workers = this.#workers.map((w): WorkerStats => {
      if (w.state === WorkerState.Busy) busy++;
      if (w.state === WorkerState.Busy || w.state === WorkerState.Idle) live++;
      return {
        pid: w.pid,
        state: w.state,
        requests: w.requests,
        requestsTotal: w.requestsTotal,
        privateBytes: w.privateBytes,
        current: w.current(),
        childSince: w.childSince,
        last: w.last(),
      };
    });
    if (busy > this.#maxBusy) this.#maxBusy = busy;
    return {
      name: this.poolName,
      masterPid: this.#master.pid,
      workers,
      idle: this.#idle.length,
      busy,
      starting: this.#workers.length - live,
      queued: this.#queue.length,
      queueLimit: this.#settings.queue_limit,
      ready: !this.#closed && live > 0,
      failing: this.#master.consecutiveFailures >= FAILING_AFTER,
      problem: this.#master.problem,
      restarts: { ...this.#restarts },
      shared: this.#shared,
      maxQueued: this.#maxQueued,
      maxBusy: this.#maxBusy,
      waited: this.#waited,
    };
  }

  /** Resolves once no request runs or waits here (a reload retiring this pool), or after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && (this.#queue.length > 0 || this.#workers.some((w) => w.state === WorkerState.Busy))) {
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(): Promise<void> {
    this.#closed = true;
    if (this.#memoryTimer !== null) clearInterval(this.#memoryTimer);
    if (this.#probeTimer !== null) clearInterval(this.#probeTimer);
    const queue = this.#queue;
    this.#queue = [];
    for (const e of queue) {
      if (e.timer !== null) clearTimeout(e.timer);
      e.waiter.onPoolError(new PhpgateError(ErrorCode.PoolClosed, `pool "${this.poolName}" is stopping`));
    }
    for (const w of this.#workers) w.stop();
    this.#idle.length = 0;
    await this.#master.stop();
  }

  #expire(entry: QueueEntry): void {
    const i = this.#queue.indexOf(entry);
    if (i === -1) return;
    this.#queue.splice(i, 1);
    entry.waiter.onPoolError(
      new PhpgateError(
        ErrorCode.PoolSaturated,
        `pool "${this.poolName}": waited ${this.#settings.queue_timeout_ms} ms for a worker (queue_timeout_ms)`,
      ),
    );
  }
}
