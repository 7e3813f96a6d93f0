/**
 * Prometheus metrics (RoadRunner/bakpiaRun-style names under `phpgate_`), on a registry of our own — never
 * prom-client's global one, which any dependency could also fill — plus the rolling window the dashboard plots.
 * Per-request work is counting; everything about pools is read from the StatusSource when scraped.
 */
import { performance } from 'node:perf_hooks';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { GatewayStatus, RequestObserver, RequestRecord, StatusSource } from '../status.js';
import { RecentWindow, type RecentTraffic } from './recent.js';

export type { RecentTraffic };

/**
 * The `pool` label of requests no PHP pool served: static files, redirects, the gateway's own errors. "-" (as
 * in nginx logs) rather than "static", since not all of them are static files.
 */
export const NO_POOL_LABEL = '-';

/** Request and upstream durations (seconds): 1 ms … 30 s, roughly ×2.5 apart. */
export const DURATION_BUCKETS_S: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export interface MetricsOptions {
  /** Monotonic ms for the rolling window (tests pass their own); performance.now() by default. */
  readonly clock?: () => number;
}

/** The prebuilt children of one pool's request series, so a request only looks its pool up. */
interface PoolSeries {
  readonly duration: Histogram.Internal<'pool'>;
  readonly upstream: Histogram.Internal<'pool'>;
  readonly byStatus: Map<number, Counter.Internal>;
  readonly pool: string;
}

export class Metrics implements RequestObserver {
  readonly #registry = new Registry();
  readonly #source: StatusSource;
  readonly #clock: () => number;
  readonly #recent: RecentWindow;
  readonly #requests: Counter<'pool' | 'status'>;
  /** By cache status, resolved once: the hot path only increments. */
  readonly #cache: Readonly<Record<NonNullable<RequestRecord['cache']>, Counter.Internal>>;
  readonly #duration: Histogram<'pool'>;
  readonly #upstream: Histogram<'pool'>;
  readonly #series = new Map<string, PoolSeries>();
  /** One status() per scrape, shared by every gauge's collect(); null between scrapes. */
  #scrape: GatewayStatus | null = null;

  constructor(source: StatusSource, o: MetricsOptions = {}) {
    this.#source = source;
    this.#clock = o.clock ?? (() => performance.now());
    this.#recent = new RecentWindow(this.#clock());
    const registers = [this.#registry];

    this.#requests = new Counter({
      name: 'phpgate_requests_total',
      help: `Finished requests by pool ("${NO_POOL_LABEL}": not served by PHP) and HTTP status.`,
      labelNames: ['pool', 'status'] as const,
      registers,
    });
    const cache = new Counter({
      name: 'phpgate_cache_requests_total',
      help: 'Requests a response-cache rule covers, by what the cache did (HIT, MISS, STALE, BYPASS).',
      labelNames: ['cache'] as const,
      registers,
    });
    this.#cache = { HIT: cache.labels('HIT'), MISS: cache.labels('MISS'), STALE: cache.labels('STALE'), BYPASS: cache.labels('BYPASS') };
    for (const c of Object.values(this.#cache)) c.inc(0); // every series present from the first scrape
    this.#duration = new Histogram({
      name: 'phpgate_request_duration_seconds',
      help: 'Time from request start to the end of the response, by pool.',
      labelNames: ['pool'] as const,
      buckets: [...DURATION_BUCKETS_S],
      registers,
    });
    this.#upstream = new Histogram({
      name: 'phpgate_upstream_duration_seconds',
      help: 'Time from handing a request to PHP until its answer ended, by pool.',
      labelNames: ['pool'] as const,
      buckets: [...DURATION_BUCKETS_S],
      registers,
    });

    const status = (): GatewayStatus => (this.#scrape ??= this.#source.status());
    new Gauge({
      name: 'phpgate_pool_workers',
      help: 'Workers by state: idle, busy, starting (connecting, handshaking or being replaced).',
      labelNames: ['pool', 'state'] as const,
      registers,
      collect() {
        this.reset();
        for (const p of status().pools) {
          this.labels(p.name, 'idle').set(p.idle);
          this.labels(p.name, 'busy').set(p.busy);
          this.labels(p.name, 'starting').set(p.starting);
        }
      },
    });
    new Gauge({
      name: 'phpgate_pool_queue_length',
      help: 'Requests waiting for a worker.',
      labelNames: ['pool'] as const,
      registers,
      collect() {
        this.reset();
        for (const p of status().pools) this.labels(p.name).set(p.queued);
      },
    });
    new Gauge({
      name: 'phpgate_pool_queue_limit',
      help: 'Most requests that may wait for a worker (queue_limit); more are answered 503.',
      labelNames: ['pool'] as const,
      registers,
      collect() {
        this.reset();
        for (const p of status().pools) this.labels(p.name).set(p.queueLimit);
      },
    });
    // A gauge, though named _total: the counts live in each Pool, which a reload rebuilds from zero. Declared a
    // counter, that drop would read as a reset; as a gauge it is simply what the current pools have seen.
    new Gauge({
      name: 'phpgate_worker_restarts_total',
      help: 'php-cgi children replaced since the pool was built, by reason.',
      labelNames: ['pool', 'reason'] as const,
      registers,
      collect() {
        this.reset();
        for (const p of status().pools) {
          for (const [reason, n] of Object.entries(p.restarts)) this.labels(p.name, reason).set(n);
        }
      },
    });
    new Gauge({
      name: 'phpgate_worker_private_memory_bytes',
      help: 'Private memory of each php-cgi child at its last sample (only sampled when memory_limit_mb is set).',
      labelNames: ['pool', 'pid'] as const,
      registers,
      collect() {
        this.reset(); // children come and go: only the live ones are reported
        for (const p of status().pools) {
          for (const w of p.workers) {
            if (w.pid > 0 && w.privateBytes > 0) this.labels(p.name, String(w.pid)).set(w.privateBytes);
          }
        }
      },
    });
    new Gauge({
      name: 'phpgate_pool_ready',
      help: '1 when the pool has a worker that can take a request now or soon.',
      labelNames: ['pool'] as const,
      registers,
      collect() {
        this.reset();
        for (const p of status().pools) this.labels(p.name).set(p.ready ? 1 : 0);
      },
    });
    new Gauge({
      name: 'phpgate_pool_shared_memory_bytes',
      help: "The pool master's shared memory, by kind: opcache_used, opcache_free, apcu_used, apcu_size (from PHP, every 10 s).",
      labelNames: ['pool', 'kind'] as const,
      registers,
      collect() {
        this.reset();
        for (const p of status().pools) {
          const m = p.shared;
          if (m === null) continue;
          if (m.opcacheUsed !== null) this.labels(p.name, 'opcache_used').set(m.opcacheUsed);
          if (m.opcacheFree !== null) this.labels(p.name, 'opcache_free').set(m.opcacheFree);
          if (m.apcuUsed !== null) this.labels(p.name, 'apcu_used').set(m.apcuUsed);
          if (m.apcuSize !== null) this.labels(p.name, 'apcu_size').set(m.apcuSize);
        }
      },
    });
    new Gauge({
      name: 'phpgate_draining',
      help: '1 while the gateway is shutting down and refusing new work.',
      registers,
      collect() {
        this.set(status().draining ? 1 : 0);
      },
    });
    // Process CPU, memory, event-loop lag, GC… Its observers live as long as the process: build one Metrics.
    collectDefaultMetrics({ register: this.#registry });
  }

  onRequestDone(r: RequestRecord): void {
    const s = this.#seriesFor(r.pool ?? NO_POOL_LABEL);
    let counter = s.byStatus.get(r.status);
    if (counter === undefined) {
      counter = this.#requests.labels(s.pool, String(r.status));
      s.byStatus.set(r.status, counter);
    }
    counter.inc();
    if (r.cache !== null) this.#cache[r.cache].inc();
    s.duration.observe(r.durationMs / 1000);
    if (r.upstreamMs !== null) s.upstream.observe(r.upstreamMs / 1000);
    this.#recent.record(r.durationMs, this.#clock());
  }

  /** The text exposition of every metric, for GET /metrics. */
  async render(): Promise<{ contentType: string; body: string }> {
    this.#scrape = null;
    try {
      const body = await this.#registry.metrics();
      return { contentType: this.#registry.contentType, body };
    } finally {
      this.#scrape = null;
    }
  }

  /** Requests per second and latency percentiles over the last ~10 s (the dashboard's chart). */
  recent(): RecentTraffic {
    return this.#recent.summary(this.#clock());
  }

  #seriesFor(pool: string): PoolSeries {
    let s = this.#series.get(pool);
    if (s === undefined) {
      s = { pool, duration: this.#duration.labels(pool), upstream: this.#upstream.labels(pool), byStatus: new Map() };
      this.#series.set(pool, s);
    }
    return s;
  }
}
