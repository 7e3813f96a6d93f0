/**
 * rate_limit.rules: request counters per client (or per API key) with rate-limiter-flexible, in memory or shared
 * through Redis.
 *
 * Every rule whose pattern matches the path counts the request, as several nginx `limit_req` zones on one
 * location do; the request is refused (429) when any one of them is over its points for its duration. Each rule
 * is compiled once: its matcher, its limiter, the header value of its limit, its key header and its settle
 * callbacks. A request whose path matches no rule costs one matcher call per rule and nothing else.
 *
 * With `store: redis://…` the counters live in Redis under a per-rule prefix, so gateway instances with the same
 * rules share them. Each Redis limiter is insured by an in-memory one with the same limits: when Redis cannot
 * answer (down, unreachable, too slow) a request is counted per instance instead of failing or passing unchecked.
 */
import crypto from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import type { Redis, RedisOptions } from 'ioredis';
import type { RateLimiterAbstract, RateLimiterRes } from 'rate-limiter-flexible';
import { compilePattern, type PathMatcher } from '../../config/pattern.js';
import type { RateLimitConfig, RateLimitRule } from '../../config/types.js';
import type { Logger } from '../../core/log.js';
import type { RateLimitStatus, StoreEvents, StoreState } from '../http/status.js';

export interface RateVerdict {
  readonly allowed: boolean;
  /** Flat name/value list set on the response (RateLimit-*, and Retry-After when refused). */
  readonly headers: readonly string[];
  /** The refusing rule's label (metrics: phpgate_rate_limit_refused_total{rule}), null when allowed. */
  readonly rule: string | null;
}

/** The IETF draft's fields (draft-ietf-httpapi-ratelimit-headers) and RFC 9110's Retry-After. */
const Header = {
  Limit: 'RateLimit-Limit',
  Remaining: 'RateLimit-Remaining',
  Reset: 'RateLimit-Reset',
  RetryAfter: 'Retry-After',
} as const;

/**
 * Loaded on first use: ioredis and rate-limiter-flexible cost about 30 MB of memory once loaded, which a gateway
 * without rules (or without Redis) should not pay. Both are CommonJS, so a synchronous require does it.
 */
const load = createRequire(import.meta.url);
let limiters: typeof import('rate-limiter-flexible') | null = null;
function rateLimiterFlexible(): typeof import('rate-limiter-flexible') {
  limiters ??= load('rate-limiter-flexible') as typeof import('rate-limiter-flexible');
  return limiters;
}

const MEMORY_STORE = 'memory';
/** Counter keys in a shared store: `phpgate:rl:<rule digest>:<client key>`. */
const KEY_PREFIX = 'phpgate:rl:';
const KEY_HEADER_PREFIX = 'header:';
/** Client keys are namespaced by origin (see Rule#keyOf). */
const ADDRESS_KEY = 'a:';
const HEADER_KEY = 'h:';
const HASHED_HEADER_KEY = 'h#';
/** Header values longer than this are counted under their SHA-256, so a 16 KiB header is not a 16 KiB key. */
const MAX_HEADER_KEY_CHARS = 128;

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

/** Whole seconds for Retry-After and RateLimit-Reset, rounded up (a client that waits that long gets through). */
function seconds(ms: number): number {
  return ms <= 0 ? 0 : Math.ceil(ms / 1000);
}

/** One rule's answer for one request. */
class Outcome {
  readonly rule: Rule;
  readonly res: RateLimiterRes;
  readonly allowed: boolean;

  constructor(rule: Rule, res: RateLimiterRes, allowed: boolean) {
    this.rule = rule;
    this.res = res;
    this.allowed = allowed;
  }
}

/** One rule, compiled. */
class Rule {
  readonly matches: PathMatcher;
  /** Its metrics label: the pattern, `#2`, `#3`… after a pattern already used (labels come from the config only). */
  readonly label: string;
  /** `points` as a header value, computed once. */
  readonly limit: string;
  /** Lower-case header whose value is the key (`key: "header:X-Api-Key"`), or null to count by address. */
  readonly #header: string | null;
  readonly #limiter: RateLimiterAbstract;
  /** rate_limit.headers "always": allowed answers carry RateLimit-* too. */
  readonly alwaysHeaders: boolean;

  constructor(rule: RateLimitRule, label: string, limiter: RateLimiterAbstract, alwaysHeaders: boolean) {
    this.label = label;
    this.alwaysHeaders = alwaysHeaders;
    this.matches = compilePattern(rule.pattern);
    this.limit = String(rule.points);
    this.#header = rule.key.startsWith(KEY_HEADER_PREFIX) ? rule.key.slice(KEY_HEADER_PREFIX.length).toLowerCase() : null;
    this.#limiter = limiter;
  }

  /** The verdict when this is the only matching rule (the common case: no Outcome in between). */
  check(client: string, req: IncomingMessage): Promise<RateVerdict> {
    return this.#limiter.consume(this.#keyOf(client, req)).then(this.#passedVerdict, this.#refusedVerdict);
  }

  /** This rule's count when several rules match. */
  count(client: string, req: IncomingMessage): Promise<Outcome> {
    return this.#limiter.consume(this.#keyOf(client, req)).then(this.#passed, this.#refused);
  }

  // Settle callbacks, bound once per rule rather than created per request.
  readonly #passedVerdict = (res: RateLimiterRes): RateVerdict => verdict(this, res, true);
  readonly #refusedVerdict = (rejection: unknown): RateVerdict => verdict(this, refusal(rejection), false);
  readonly #passed = (res: RateLimiterRes): Outcome => new Outcome(this, res, true);
  readonly #refused = (rejection: unknown): Outcome => new Outcome(this, refusal(rejection), false);

  /**
   * Security: keys are namespaced by where they come from. Unprefixed, a client could send `X-Api-Key: <your IP>`
   * and spend the counter of a keyless client at that address (a request without the header is counted by its
   * address).
   */
  #keyOf(client: string, req: IncomingMessage): string {
    if (this.#header === null) return ADDRESS_KEY + client;
    const value = req.headers[this.#header];
    if (typeof value !== 'string' || value === '') return ADDRESS_KEY + client;
    if (value.length <= MAX_HEADER_KEY_CHARS) return HEADER_KEY + value;
    return HASHED_HEADER_KEY + crypto.createHash('sha256').update(value).digest('base64url');
  }
}

/** A limiter's rejection is its refusal (a RateLimiterRes); anything else is an error, passed on. */
function refusal(rejection: unknown): RateLimiterRes {
  if (rejection instanceof rateLimiterFlexible().RateLimiterRes) return rejection;
  // A store failure the insurance limiter could not absorb (or a bug): the pipeline logs it and lets the request
  // pass, rather than refusing everyone while the store is broken.
  throw rejection;
}

/**
 * The answer as one rule sees it: its headers describe that rule; Retry-After is at least one second (a refused
 * client must wait, and `0` would invite an immediate retry).
 */
function verdict(rule: Rule, res: RateLimiterRes, allowed: boolean): RateVerdict {
  if (allowed && !rule.alwaysHeaders) return ALLOWED;
  const reset = seconds(res.msBeforeNext);
  const head = [Header.Limit, rule.limit, Header.Remaining, String(res.remainingPoints), Header.Reset, String(reset)];
  if (allowed) return { allowed: true, headers: head, rule: null };
  head.push(Header.RetryAfter, String(Math.max(1, reset)));
  return { allowed: false, headers: head, rule: rule.label };
}

/** An allowed request that carries no headers (rate_limit.headers "refused"): one shared answer, nothing allocated. */
const ALLOWED: RateVerdict = Object.freeze({ allowed: true, headers: Object.freeze([]), rule: null });

/**
 * Several rules matched: refused if any refused; the headers describe the tightest rule, i.e. the refusing rule
 * with the longest wait, or else the one with the fewest points left (on a tie, the later reset).
 */
function verdictOfMany(outcomes: readonly Outcome[]): RateVerdict {
  let tightest = outcomes[0]!;
  for (let i = 1; i < outcomes.length; i++) {
    const o = outcomes[i]!;
    if (tighter(o, tightest)) tightest = o;
  }
  return verdict(tightest.rule, tightest.res, tightest.allowed);
}

function tighter(a: Outcome, b: Outcome): boolean {
  if (a.allowed !== b.allowed) return !a.allowed;
  if (a.allowed && a.res.remainingPoints !== b.res.remainingPoints) return a.res.remainingPoints < b.res.remainingPoints;
  return a.res.msBeforeNext > b.res.msBeforeNext;
}

/** A short stable name per rule: instances with the same rule share its counters, a changed rule starts afresh. */
function ruleDigest(rule: RateLimitRule, occurrence: number): string {
  const id = JSON.stringify([rule.pattern, rule.points, rule.duration_s, rule.block_s, rule.key, occurrence]);
  return crypto.createHash('sha256').update(id).digest('hex').slice(0, 12);
}

/**
 * The Redis connection, watched: one warning when it becomes unreachable, one when it is back (never one per
 * request; the insurance limiters count meanwhile).
 */
class RedisLink {
  readonly client: Redis;
  readonly #log: Logger;
  readonly where: string;
  readonly #events: StoreEvents | null;
  /** null until the first connection attempt settles. */
  #reachable: boolean | null = null;
  /** performance.now() of the last error, for the `degraded` state (connected, but failing lately). */
  #lastErrorAt = -Infinity;
  #closing = false;

  constructor(url: string, log: Logger, events: StoreEvents | null) {
    this.#log = log;
    this.#events = events;
    this.where = redactUrl(url);
    const { Redis } = load('ioredis') as typeof import('ioredis');
    this.client = new Redis(url, { ...REDIS_OPTIONS });
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
    if (this.client.status !== 'ready') return 'fallback';
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

  async close(): Promise<void> {
    this.#closing = true;
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

export class RateLimiter {
  readonly #rules: readonly Rule[];
  readonly #redis: RedisLink | null;
  readonly #labels: readonly string[];

  private constructor(rules: readonly Rule[], redis: RedisLink | null) {
    this.#rules = rules;
    this.#redis = redis;
    this.#labels = rules.map((r) => r.label);
  }

  /** null when no rules are configured. `events` hears of store errors (the metrics count them across reloads). */
  static create(config: RateLimitConfig, log: Logger, events: StoreEvents | null = null): RateLimiter | null {
    if (config.rules.length === 0) return null;
    const redis = config.store === MEMORY_STORE ? null : new RedisLink(config.store, log, events);
    const seen = new Map<string, number>();
    const patterns = new Map<string, number>();
    const rules = config.rules.map((rule) => {
      // Two identical rules stay two counters (both count, as written), not one counter counted twice.
      const same = JSON.stringify(rule);
      const occurrence = seen.get(same) ?? 0;
      seen.set(same, occurrence + 1);
      const n = (patterns.get(rule.pattern) ?? 0) + 1;
      patterns.set(rule.pattern, n);
      const label = n === 1 ? rule.pattern : `${rule.pattern}#${n}`;
      return new Rule(rule, label, limiterFor(rule, ruleDigest(rule, occurrence), redis, log), config.headers === 'always');
    });
    return new RateLimiter(rules, redis);
  }

  /** The rules' labels and the store's state, for status and metrics. */
  status(): RateLimitStatus {
    const redis = this.#redis;
    return redis === null
      ? { rules: this.#labels, store: MEMORY_STORE, state: 'local' }
      : { rules: this.#labels, store: redis.where, state: redis.state() };
  }

  /**
   * null: no rule matches this path (the common, synchronous case). Otherwise every matching rule counts the
   * request; matching stops allocating until a second rule matches.
   */
  check(path: string, client: string, req: IncomingMessage): Promise<RateVerdict> | null {
    const rules = this.#rules;
    let i = 0;
    while (i < rules.length && !rules[i]!.matches(path)) i++;
    if (i === rules.length) return null;
    const first = rules[i]!;
    i++;
    while (i < rules.length && !rules[i]!.matches(path)) i++;
    if (i === rules.length) return first.check(client, req);
    const pending = [first.count(client, req), rules[i]!.count(client, req)];
    for (i++; i < rules.length; i++) if (rules[i]!.matches(path)) pending.push(rules[i]!.count(client, req));
    return Promise.all(pending).then(verdictOfMany);
  }

  /** Quits the Redis connection (if any), so the process can exit; memory counters need nothing. */
  async close(): Promise<void> {
    await this.#redis?.close();
  }
}

function limiterFor(rule: RateLimitRule, digest: string, redis: RedisLink | null, log: Logger): RateLimiterAbstract {
  const { RateLimiterMemory, RateLimiterRedis } = rateLimiterFlexible();
  const keyPrefix = KEY_PREFIX + digest;
  // block_s > 0: once over, refused for that long even after the window resets (rate-limiter-flexible's block).
  if (redis === null) return new RateLimiterMemory({ keyPrefix, points: rule.points, duration: rule.duration_s, blockDuration: rule.block_s });
  // Redis expiries are whole seconds (rate-limiter-flexible floors them, and a duration that floors to 0 would
  // never expire): round up, and say so once.
  const duration = Math.ceil(rule.duration_s);
  const blockDuration = Math.ceil(rule.block_s);
  if (duration !== rule.duration_s || blockDuration !== rule.block_s) {
    log.warn(
      { pattern: rule.pattern, duration_s: duration, block_s: blockDuration },
      'rate limit rule: a Redis store counts whole seconds; rounded up',
    );
  }
  const limits = { keyPrefix, points: rule.points, duration, blockDuration };
  return new RateLimiterRedis({
    ...limits,
    storeClient: redis.client,
    // Not connected: straight to the insurance limiter instead of trying the socket.
    rejectIfRedisNotReady: true,
    insuranceLimiter: new RateLimiterMemory(limits),
  });
}
