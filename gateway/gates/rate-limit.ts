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
import type { RateLimiterAbstract, RateLimiterRes } from 'rate-limiter-flexible';
import { compilePattern, type PathMatcher } from '../../config/pattern.js';
import type { RateLimitConfig, RateLimitRule } from '../../config/types.js';
import type { Logger } from '../../core/log.js';
import type { RateLimitStatus, StoreEvents } from '../http/status.js';
import { RedisLink } from './redis-link.js';

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
  /** With a Redis store: the link whose breaker may send counts to `#insurance` without asking Redis. */
  readonly #link: RedisLink | null;
  readonly #insurance: RateLimiterAbstract | null;
  /** rate_limit.headers "always": allowed answers carry RateLimit-* too. */
  readonly alwaysHeaders: boolean;

  constructor(rule: RateLimitRule, label: string, limiters: Limiters, alwaysHeaders: boolean) {
    this.label = label;
    this.alwaysHeaders = alwaysHeaders;
    this.matches = compilePattern(rule.pattern);
    this.limit = String(rule.points);
    this.#header = rule.key.startsWith(KEY_HEADER_PREFIX) ? rule.key.slice(KEY_HEADER_PREFIX.length).toLowerCase() : null;
    this.#limiter = limiters.limiter;
    this.#link = limiters.link;
    this.#insurance = limiters.insurance;
  }

  /** The verdict when this is the only matching rule (the common case: no Outcome in between). */
  check(client: string, req: IncomingMessage): Promise<RateVerdict> {
    return this.#consume(this.#keyOf(client, req)).then(this.#passedVerdict, this.#refusedVerdict);
  }

  /** This rule's count when several rules match. */
  count(client: string, req: IncomingMessage): Promise<Outcome> {
    return this.#consume(this.#keyOf(client, req)).then(this.#passed, this.#refused);
  }

  /** Counts in Redis, timed for the breaker; while it is tripped, in the insurance limiter at once. */
  #consume(key: string): Promise<RateLimiterRes> {
    const link = this.#link;
    if (link === null) return this.#limiter.consume(key);
    if (link.tripped) return this.#insurance!.consume(key);
    const started = performance.now();
    const counted = this.#limiter.consume(key);
    void counted.then(
      () => link.observe(performance.now() - started),
      () => link.observe(performance.now() - started),
    );
    return counted;
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

/**
 * The script a PATH_INFO URL runs, as `split_path_info` cuts it (`/wp-login.php/x` and `/wp-login.php%2f` run
 * /wp-login.php), or null: a rule written for a script counts every request that runs it, not only its own URL.
 */
function scriptOf(path: string): string | null {
  const at = path.indexOf('.php/');
  return at === -1 ? null : path.slice(0, at + 4);
}

function covers(rule: Rule, path: string, script: string | null): boolean {
  return rule.matches(path) || (script !== null && rule.matches(script));
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
      return new Rule(rule, label, limitersFor(rule, ruleDigest(rule, occurrence), redis, log), config.headers === 'always');
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
    const script = scriptOf(path);
    let i = 0;
    while (i < rules.length && !covers(rules[i]!, path, script)) i++;
    if (i === rules.length) return null;
    const first = rules[i]!;
    i++;
    while (i < rules.length && !covers(rules[i]!, path, script)) i++;
    if (i === rules.length) return first.check(client, req);
    const pending = [first.count(client, req), rules[i]!.count(client, req)];
    for (i++; i < rules.length; i++) if (covers(rules[i]!, path, script)) pending.push(rules[i]!.count(client, req));
    return Promise.all(pending).then(verdictOfMany);
  }

  /** Quits the Redis connection (if any), so the process can exit; memory counters need nothing. */
  async close(): Promise<void> {
    await this.#redis?.close();
  }
}

/** A rule's limiter; with Redis, its insurance too (the breaker uses it directly) and the link. */
interface Limiters {
  readonly limiter: RateLimiterAbstract;
  readonly insurance: RateLimiterAbstract | null;
  readonly link: RedisLink | null;
}

function limitersFor(rule: RateLimitRule, digest: string, redis: RedisLink | null, log: Logger): Limiters {
  const { RateLimiterMemory, RateLimiterRedis } = rateLimiterFlexible();
  const keyPrefix = KEY_PREFIX + digest;
  // block_s > 0: once over, refused for that long even after the window resets (rate-limiter-flexible's block).
  if (redis === null) {
    const limiter = new RateLimiterMemory({ keyPrefix, points: rule.points, duration: rule.duration_s, blockDuration: rule.block_s });
    return { limiter, insurance: null, link: null };
  }
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
  const insurance = new RateLimiterMemory(limits);
  const limiter = new RateLimiterRedis({
    ...limits,
    storeClient: redis.client,
    // Not connected: straight to the insurance limiter instead of trying the socket.
    rejectIfRedisNotReady: true,
    insuranceLimiter: insurance,
  });
  return { limiter, insurance, link: redis };
}
