/**
 * The rate limiter's Redis connection (also the cache purge channel's settings): fail fast into the insurance
 * limiters, keep reconnecting in the background, and notice a Redis that hangs.
 */
import { createRequire } from 'node:module';
import type { Redis, RedisOptions } from 'ioredis';
import type { Logger } from '../../core/log.js';
import type { StoreEvents, StoreState } from '../http/status.js';

/** Loaded on first use: a gateway without a Redis store never pays for ioredis. */
const load = createRequire(import.meta.url);

/**
 * A limiter's command waits this long at most: Redis answers in well under a millisecond when it is healthy, and a
 * request waits for its limiter. An answer this slow (a command timed out into the insurance) trips the breaker.
 */
const LIMIT_COMMAND_TIMEOUT_MS = 250;
const SLOW_ANSWER_MS = LIMIT_COMMAND_TIMEOUT_MS * 0.9;
/** While tripped, how often a PING asks whether Redis answers again. */
const PROBE_EVERY_MS = 500;

/**
 * Redis client settings: fail fast into the insurance limiter, keep reconnecting in the background.
 * No offline queue: a command while disconnected is refused at once instead of waiting for a reconnect.
 */
const REDIS_CONNECT_TIMEOUT_MS = 2000;
const REDIS_COMMAND_TIMEOUT_MS = 1000;
const REDIS_RETRY_MAX_DELAY_MS = 2000;
const REDIS_RETRY_STEP_MS = 200;

/** How long after an error a reconnected store still counts as degraded. */
const DEGRADED_MS = 10_000;

function redisRetryDelay(attempt: number): number {
  return Math.min(attempt * REDIS_RETRY_STEP_MS, REDIS_RETRY_MAX_DELAY_MS);
}

/** Also the cache purge channel's (gateway/cache-purge.ts): same failure behaviour, same reconnection. */
export const REDIS_OPTIONS: Readonly<RedisOptions> = {
  enableOfflineQueue: false,
  connectTimeout: REDIS_CONNECT_TIMEOUT_MS,
  commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
  // Commands in flight when the connection drops fail at once (into the insurance limiter), never retried late.
  maxRetriesPerRequest: 0,
  retryStrategy: redisRetryDelay,
  connectionName: 'phpgate',
};

/**
 * The Redis connection, watched: one warning when it becomes unreachable, one when it is back (never one per
 * request; the insurance limiters count meanwhile). A Redis that hangs (a partition, a stopped process) keeps the
 * connection "ready" while every command waits for its timeout: a breaker notices the first slow answer, sends the
 * limiters straight to their insurance, and probes with PING until Redis answers again.
 */
export class RedisLink {
  readonly client: Redis;
  readonly #log: Logger;
  readonly where: string;
  readonly #events: StoreEvents | null;
  /** null until the first connection attempt settles. */
  #reachable: boolean | null = null;
  /** performance.now() of the last error, for the `degraded` state (connected, but failing lately). */
  #lastErrorAt = -Infinity;
  #closing = false;
  /** Redis stopped answering in time: the limiters use their insurance without asking it. */
  #tripped = false;
  #probe: NodeJS.Timeout | null = null;

  constructor(url: string, log: Logger, events: StoreEvents | null) {
    this.#log = log;
    this.#events = events;
    this.where = redactUrl(url);
    const { Redis } = load('ioredis') as typeof import('ioredis');
    this.client = new Redis(url, { ...REDIS_OPTIONS, commandTimeout: LIMIT_COMMAND_TIMEOUT_MS });
    this.client.on('ready', this.#onReady);
    // ioredis emits 'error' on every failed (re)connection attempt; the state flag turns them into one warning.
    this.client.on('error', this.#onError);
    this.client.on('close', this.#onClose);
  }

  readonly #onReady = (): void => {
    if (this.#reachable === false) this.#log.warn({ store: this.where }, 'rate limit store reachable again: counters are shared again');
    else this.#log.info({ store: this.where }, 'rate limit store connected');
    this.#reachable = true;
  };

  readonly #onError = (err: Error): void => {
    this.#lastErrorAt = performance.now();
    this.#events?.storeError(this.where);
    this.#down(err.message);
  };

  /**
   * connected: counters are shared; degraded: connected again, but an error came within the last DEGRADED_MS
   * (a flapping link); fallback: not connected, each instance counts alone (the insurance limiters).
   */
  state(): StoreState {
    if (this.client.status !== 'ready' || this.#tripped) return 'fallback';
    return performance.now() - this.#lastErrorAt < DEGRADED_MS ? 'degraded' : 'connected';
  }

  readonly #onClose = (): void => {
    this.#down('connection closed');
  };

  #down(reason: string): void {
    if (this.#closing || this.#reachable === false) return;
    this.#reachable = false;
    this.#log.warn({ store: this.where, reason }, 'rate limit store unreachable: limits are counted per instance until it is back');
  }

  /** The limiters go straight to their insurance while true. */
  get tripped(): boolean {
    return this.#tripped;
  }

  /** How long a limiter's call to Redis took: one that ran into the command timeout trips the breaker. */
  observe(elapsedMs: number): void {
    if (elapsedMs < SLOW_ANSWER_MS || this.#tripped || this.#closing) return;
    this.#tripped = true;
    this.#lastErrorAt = performance.now();
    this.#events?.storeError(this.where);
    this.#log.warn(
      { store: this.where, waited_ms: Math.round(elapsedMs) },
      'rate limit store not answering: limits are counted per instance until it answers again',
    );
    this.#probe = setInterval(this.#ping, PROBE_EVERY_MS);
    this.#probe.unref();
  }

  readonly #ping = (): void => {
    if (this.client.status !== 'ready') return; // reconnecting: 'ready' says when it is back
    this.client.ping().then(
      () => {
        if (!this.#tripped) return;
        this.#tripped = false;
        if (this.#probe !== null) clearInterval(this.#probe);
        this.#probe = null;
        this.#log.warn({ store: this.where }, 'rate limit store answering again: counters are shared again');
      },
      (err: unknown) => this.#log.debug({ err, store: this.where }, 'rate limit store still not answering'),
    );
  };

  async close(): Promise<void> {
    this.#closing = true;
    if (this.#probe !== null) clearInterval(this.#probe);
    if (this.client.status !== 'ready') {
      this.client.disconnect(); // also stops reconnecting
      return;
    }
    try {
      await this.client.quit();
    } catch (err) {
      // QUIT is a courtesy to the server; the connection is dropped either way.
      this.#log.debug({ err, store: this.where }, 'rate limit store: QUIT failed, disconnecting');
      this.client.disconnect();
    }
  }
}

/** A redis:// URL without its password, for the log. */
export function redactUrl(url: string): string {
  if (!URL.canParse(url)) return url;
  const u = new URL(url);
  if (u.password !== '') u.password = '***';
  return u.toString();
}
