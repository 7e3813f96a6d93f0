/**
 * A pool: one php-cgi master, `worker_count` workers (one per child), an idle list and a FIFO wait queue.
 * A request gets an idle worker or waits; it never lands on a busy child.
 */
import { ErrorCode, PhpgateError } from '../config/errors.js';
import type { PoolSettings } from '../config/types.js';
import type { Logger } from './logger.js';
import { Master } from './master.js';
import { Worker, WorkerState, type WorkerHost } from './worker.js';

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
  readonly log: Logger;
}

export interface PoolStats {
  readonly name: string;
  readonly masterPid: number | null;
  readonly workers: ReadonlyArray<{ readonly pid: number; readonly state: WorkerState; readonly requests: number }>;
  readonly idle: number;
  readonly queued: number;
}

interface QueueEntry {
  waiter: PoolWaiter;
  timer: NodeJS.Timeout | null;
}

const START_TIMEOUT_MS = 15_000;

export class Pool implements WorkerHost {
  readonly poolName: string;
  readonly timeoutMs: number;
  readonly maxRequests: number;
  readonly workerCount: number;
  readonly handshakeScript: string;
  readonly log: Logger;
  readonly #settings: PoolSettings;
  readonly #master: Master;
  readonly #workers: Worker[] = [];
  readonly #idle: Worker[] = [];
  #queue: QueueEntry[] = [];
  #socketPath: string | null = null;
  #closed = false;
  #onFirstIdle: (() => void) | null = null;

  constructor(o: PoolOptions) {
    this.poolName = o.name;
    this.#settings = o.settings;
    this.timeoutMs = o.settings.timeout_ms;
    this.maxRequests = o.settings.max_requests;
    this.workerCount = o.settings.worker_count;
    this.handshakeScript = o.handshakeScript;
    this.log = o.log;
    this.#master = new Master(
      { poolName: o.name, binary: o.binary, children: o.settings.worker_count, ini: o.settings.ini, env: o.settings.env, socketDir: o.socketDir, log: o.log },
      {
        onMasterReady: (socketPath) => {
          this.#socketPath = socketPath;
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
  }

  socketPath(): string | null {
    return this.#socketPath;
  }

  servedBy(pid: number): boolean {
    return this.#workers.some((w) => w.pid === pid);
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
    const entry = this.#queue.shift();
    if (entry !== undefined) {
      if (entry.timer !== null) clearTimeout(entry.timer);
      entry.waiter.onWorker(w);
      return;
    }
    this.#idle.push(w);
    if (this.#onFirstIdle !== null) this.#onFirstIdle();
  }

  onWorkerLost(w: Worker): void {
    const i = this.#idle.indexOf(w);
    if (i !== -1) this.#idle.splice(i, 1);
  }

  stats(): PoolStats {
    return {
      name: this.poolName,
      masterPid: this.#master.pid,
      workers: this.#workers.map((w) => ({ pid: w.pid, state: w.state, requests: w.requests })),
      idle: this.#idle.length,
      queued: this.#queue.length,
    };
  }

  async stop(): Promise<void> {
    this.#closed = true;
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
    entry.waiter.onPoolError(new PhpgateError(ErrorCode.PoolSaturated,
      `pool "${this.poolName}": waited ${this.#settings.queue_timeout_ms} ms for a worker (queue_timeout_ms)`));
  }
}
