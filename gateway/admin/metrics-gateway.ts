/**
 * The gateway-wide counts (connections, status classes, rate limits, the response cache per rule) and their
 * Prometheus metrics. Requests add to plain numbers here; prom-client reads them only when scraped. Everything
 * lives in the Metrics object, which a reload keeps, so these counters never fall back on SIGHUP (the listener,
 * which counts connections, outlives reloads too).
 */
import type { Registry } from 'prom-client';
import type { CacheStatus, GatewayStatus, StoreState } from '../http/status.js';
import { StoreStates } from '../http/status.js';

/** Status classes as the dashboard and phpgate_responses_total count them: 429 apart from the other 4xx. */
export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', '429'] as const;
export type StatusClass = (typeof STATUS_CLASSES)[number];
const CLASS_429 = 5;

export function statusClassIndex(status: number): number {
  if (status === 429) return CLASS_429;
  const c = Math.floor(status / 100);
  return c >= 1 && c <= 5 ? c - 1 : 3; // anything odd counts as a client-side failure (4xx), as 499 does
}

export type CacheCounts = Record<CacheStatus, number>;

export function emptyCacheCounts(): CacheCounts {
  return { HIT: 0, MISS: 0, STALE: 0, BYPASS: 0 };
}

/** Plain counters filled per request (one array index or one Map lookup each) and per store error. */
export class GatewayCounts {
  /** Indexed like STATUS_CLASSES. */
  readonly classes = new Float64Array(STATUS_CLASSES.length);
  readonly cache: CacheCounts = emptyCacheCounts();
  /** By cache rule label: labels come from the configuration, never from a request. */
  readonly cacheByRule = new Map<string, CacheCounts>();
  /** 429s by the refusing rule's label. */
  readonly refusedByRule = new Map<string, number>();
  /** Errors by rate-limit store (its address without password). */
  readonly storeErrors = new Map<string, number>();

  cacheOf(rule: string): CacheCounts {
    let c = this.cacheByRule.get(rule);
    if (c === undefined) this.cacheByRule.set(rule, (c = emptyCacheCounts()));
    return c;
  }

  /** Rules of the configuration in force appear from the first scrape, at 0, as dashboards and alerts expect. */
  declare(s: GatewayStatus): void {
    for (const rule of s.cacheRules) this.cacheOf(rule);
    if (s.rateLimit === null) return;
    for (const rule of s.rateLimit.rules) if (!this.refusedByRule.has(rule)) this.refusedByRule.set(rule, 0);
    if (s.rateLimit.state !== 'local' && !this.storeErrors.has(s.rateLimit.store)) this.storeErrors.set(s.rateLimit.store, 0);
  }
}

/** Adds the gateway-wide metrics to `registry`; `status` is the scrape's one status() read. */
export function registerGatewayMetrics(
  { Counter, Gauge }: typeof import('prom-client'),
  registry: Registry,
  counts: GatewayCounts,
  status: () => GatewayStatus,
): void {
  const registers = [registry];
  new Gauge({
    name: 'phpgate_connections_open',
    help: 'Client connections open on the main listener, by protocol (http1 includes TLS handshakes under way).',
    labelNames: ['protocol'] as const,
    registers,
    collect() {
      const c = status().connections;
      this.labels('http1').set(c.http1);
      this.labels('http2').set(c.http2);
    },
  });
  new Counter({
    name: 'phpgate_connections_accepted_total',
    help: 'TCP connections the main listener accepted since the gateway started.',
    registers,
    collect() {
      this.reset();
      this.inc(status().connections.accepted);
    },
  });
  new Counter({
    name: 'phpgate_responses_total',
    help: 'Finished requests by status class; 429 (rate limited) is its own class, not in 4xx. 499: the client left first (4xx).',
    labelNames: ['class'] as const,
    registers,
    collect() {
      this.reset();
      STATUS_CLASSES.forEach((c, i) => this.labels(c).inc(counts.classes[i]));
    },
  });
  new Counter({
    name: 'phpgate_rate_limit_refused_total',
    help: 'Requests refused with 429, by the rate_limit rule that refused them (its pattern; #2, #3 for a pattern used again).',
    labelNames: ['rule'] as const,
    registers,
    collect() {
      counts.declare(status());
      this.reset();
      for (const [rule, n] of counts.refusedByRule) this.labels(rule).inc(n);
    },
  });
  new Gauge({
    name: 'phpgate_rate_limit_store_state',
    help: 'The rate-limit store: 1 for its state now. connected: counters shared; degraded: connected, errors in the last 10 s; fallback: unreachable, each instance counts alone; local: store is memory.',
    labelNames: ['store', 'state'] as const,
    registers,
    collect() {
      this.reset();
      const rl = status().rateLimit;
      if (rl === null) return;
      for (const state of StoreStates) if (state !== 'local' || rl.state === 'local') this.labels(rl.store, state).set(state === rl.state ? 1 : 0);
    },
  });
  new Counter({
    name: 'phpgate_rate_limit_store_errors_total',
    help: 'Errors of the shared rate-limit store (failed connections and reconnection attempts), by store.',
    labelNames: ['store'] as const,
    registers,
    collect() {
      counts.declare(status());
      this.reset();
      for (const [store, n] of counts.storeErrors) this.labels(store).inc(n);
    },
  });
  new Counter({
    name: 'phpgate_cache_rule_requests_total',
    help: 'Requests a response-cache rule covers, by rule (cache.rules pattern, or "route <location>") and outcome.',
    labelNames: ['rule', 'cache'] as const,
    registers,
    collect() {
      counts.declare(status());
      this.reset();
      for (const [rule, c] of counts.cacheByRule) for (const [outcome, n] of Object.entries(c)) this.labels(rule, outcome).inc(n);
    },
  });
}

/** The store state for the history, or null without rules. */
export function storeStateOf(s: GatewayStatus): StoreState | null {
  return s.rateLimit === null ? null : s.rateLimit.state;
}
