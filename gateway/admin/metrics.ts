/**
 * Prometheus metrics (RoadRunner/bakpiaRun-style names under `phpgate_`), on a registry of our own — never
 * prom-client's global one, which any dependency could also fill — plus the rolling window the dashboard plots.
 * Per-request work is counting; everything about pools is read from the StatusSource when scraped.
 */
import { performance } from 'node:perf_hooks';
import type { Registry } from 'prom-client';
import { PlainHistogram, type Series } from './plain-histogram.js';
import type { GatewayStatus, RequestObserver, RequestRecord, StatusSource, StoreEvents } from '../http/status.js';
import { HISTORY_STEP_MS, HistoryRing, type HistorySample } from './history.js';
import { GatewayCounts, registerGatewayMetrics, statusClassIndex, storeStateOf } from './metrics-gateway.js';
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

/**
 * One pool's request counts, in plain numbers: a request only looks its pool up. prom-client reads them when
 * scraped (its own counters validate and hash labels on every call, too slow for each request).
 */
interface PoolSeries {
  readonly duration: Series;
  readonly upstream: Series;
  readonly byStatus: Map<number, number>;
  readonly pool: string;
  /** Requests finished, and those at or over logging.slow_ms (php-fpm's "accepted conn" and "slow requests"). */
  requests: number;
  slow: number;
}

/** A pool's counts that outlive reloads, for php-fpm's status page. */
export interface PoolCounts {
  readonly requests: number;
  readonly slow: number;
}

type CacheStatus = NonNullable<RequestRecord['cache']>;

export class Metrics implements RequestObserver, StoreEvents {
  /**
   * prom-client's registry, built when an admin listener starts (warm()) or at the first scrape: requests are
   * counted without it, and a gateway without /metrics does not carry it (about 4 MB).
   */
  #registry: Promise<Registry> | null = null;
  readonly #source: StatusSource;
  readonly #clock: () => number;
  readonly #recent: RecentWindow;
  readonly #counts = new GatewayCounts();
  readonly #cache: Record<CacheStatus, number> = this.#counts.cache;
  /** logging.slow_ms of the configuration in force (0: none), set by the gateway at each (re)load. */
  slowMs = 0;
  readonly #history = new HistoryRing();
  #sampler: NodeJS.Timeout | null = null;
  /** What the last sample saw: the deltas of the next one are from here. */
  #lastTotals = new Float64Array(10);
  #lastCpu: NodeJS.CpuUsage | null = null;
  #lastSampleAt = 0;
  readonly #percentiles = new Float64Array(2);
  readonly #duration: PlainHistogram;
  readonly #upstream: PlainHistogram;
  readonly #series = new Map<string, PoolSeries>();
  /** Restart counts per `pool\0reason` at the last scrape, and what replaced pools had counted (see the counter). */
  readonly #restartsSeen = new Map<string, number>();
  readonly #restartsBase = new Map<string, number>();
  /** One status() per scrape, shared by every gauge's collect(); null between scrapes. */
  #scrape: GatewayStatus | null = null;

  constructor(source: StatusSource, o: MetricsOptions = {}) {
    this.#source = source;
    this.#clock = o.clock ?? (() => performance.now());
    this.#recent = new RecentWindow(this.#clock());
    this.#duration = new PlainHistogram(
      'phpgate_request_duration_seconds',
      'Time from request start to the end of the response, by pool.',
      'pool',
      DURATION_BUCKETS_S,
    );
    this.#upstream = new PlainHistogram(
      'phpgate_upstream_duration_seconds',
      'Time from handing a request to PHP until its answer ended, by pool.',
      'pool',
      DURATION_BUCKETS_S,
    );
  }

  /** The registry with every metric read at scrape time (the request counts from this object's plain numbers). */
  #buildRegistry(prom: typeof import('prom-client')): Registry {
    const { collectDefaultMetrics, Counter, Gauge, Registry } = prom;
    const registry = new Registry();
    const registers = [registry];

    const series = this.#series;
    new Counter({
      name: 'phpgate_requests_total',
      help: `Finished requests by pool ("${NO_POOL_LABEL}": not served by PHP) and HTTP status.`,
      labelNames: ['pool', 'status'] as const,
      registers,
      collect() {
        this.reset();
        for (const s of series.values()) for (const [status, n] of s.byStatus) this.labels(s.pool, String(status)).inc(n);
      },
    });
    const cacheCounts = this.#cache;
    new Counter({
      name: 'phpgate_cache_requests_total',
      help: 'Requests a response-cache rule covers, by what the cache did (HIT, MISS, STALE, BYPASS).',
      labelNames: ['cache'] as const,
      registers,
      collect() {
        this.reset();
        for (const [status, n] of Object.entries(cacheCounts)) this.labels(status).inc(n); // every series, from the first scrape
      },
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
    // A counter across reloads: the counts live in each Pool, which a reload rebuilds from zero, so what the
    // replaced pools had counted (seen falling back at a scrape) is kept and added.
    const seen = this.#restartsSeen;
    const base = this.#restartsBase;
    new Counter({
      name: 'phpgate_worker_restarts_total',
      help: 'php-cgi children replaced, by pool and reason, since the gateway started (reloads included).',
      labelNames: ['pool', 'reason'] as const,
      registers,
      collect() {
        this.reset();
        const now = new Map<string, number>();
        for (const p of status().pools) for (const [reason, n] of Object.entries(p.restarts)) now.set(`${p.name}\0${reason}`, n);
        for (const [key, n] of now) {
          const last = seen.get(key) ?? 0;
          if (n < last) base.set(key, (base.get(key) ?? 0) + last);
          seen.set(key, n);
        }
        for (const key of new Set([...now.keys(), ...base.keys()])) {
          const [pool = '', reason = ''] = key.split('\0');
          this.labels(pool, reason).inc((base.get(key) ?? 0) + (now.get(key) ?? 0));
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
    registerGatewayMetrics(prom, registry, this.#counts, status);
    // Process CPU, memory, event-loop lag, GC… Its observers live as long as the process: build one Metrics.
    collectDefaultMetrics({ register: registry });
    return registry;
  }

  onRequestDone(r: RequestRecord): void {
    const s = this.#seriesFor(r.pool ?? NO_POOL_LABEL);
    s.byStatus.set(r.status, (s.byStatus.get(r.status) ?? 0) + 1);
    s.requests++;
    if (this.slowMs > 0 && r.durationMs >= this.slowMs) s.slow++;
    this.#counts.classes[statusClassIndex(r.status)]!++;
    if (r.cache !== null) {
      this.#cache[r.cache]++;
      if (r.cacheRule !== null) this.#counts.cacheOf(r.cacheRule)[r.cache]++;
    }
    if (r.limitedBy !== null) this.#counts.refusedByRule.set(r.limitedBy, (this.#counts.refusedByRule.get(r.limitedBy) ?? 0) + 1);
    s.duration.observe(r.durationMs / 1000);
    if (r.upstreamMs !== null) s.upstream.observe(r.upstreamMs / 1000);
    this.#recent.record(r.durationMs, this.#clock());
  }

  /**
   * Builds the registry now rather than at the first scrape, so process CPU, GC and event-loop lag count from the
   * start (the gateway calls it when an admin listener serves /metrics).
   */
  warm(): void {
    this.#registry ??= import('prom-client').then((prom) => this.#buildRegistry(prom));
    if (this.#sampler === null) {
      this.#lastSampleAt = Date.now();
      this.#lastCpu = process.cpuUsage();
      this.#sampler = setInterval(() => this.#sample(), HISTORY_STEP_MS);
      this.#sampler.unref(); // never what keeps the process alive
    }
  }

  /** Stops the history's sampler (the admin listener stops). */
  stop(): void {
    if (this.#sampler !== null) clearInterval(this.#sampler);
    this.#sampler = null;
  }

  storeError(store: string): void {
    this.#counts.storeErrors.set(store, (this.#counts.storeErrors.get(store) ?? 0) + 1);
  }

  /** The last minutes, one sample per second, oldest first (the dashboard's first load). */
  history(): HistorySample[] {
    return this.#history.list();
  }

  /** The newest sample, or null before the first. */
  lastSample(): HistorySample | null {
    return this.#history.last();
  }

  /** A pool's requests and slow requests since the gateway started (reloads included), by pool name. */
  poolCounts(pool: string): PoolCounts {
    const s = this.#series.get(pool);
    return s === undefined ? { requests: 0, slow: 0 } : { requests: s.requests, slow: s.slow };
  }

  /** Once a second: what the counters moved by since the last sample, and the process's RSS and CPU. */
  #sample(): void {
    const now = Date.now();
    const st = this.#source.status();
    const c = this.#counts.classes;
    const k = this.#cache;
    const totals = [c[0]! + c[1]! + c[2]! + c[3]! + c[4]! + c[5]!, c[1]!, c[2]!, c[3]!, c[4]!, c[5]!, k.HIT, k.MISS, k.STALE, k.BYPASS];
    const d = totals.map((v, i) => v - this.#lastTotals[i]!);
    this.#lastTotals = Float64Array.from(totals);
    const cpu = process.cpuUsage(this.#lastCpu ?? undefined);
    this.#lastCpu = process.cpuUsage();
    const elapsedMs = Math.max(1, now - this.#lastSampleAt);
    this.#lastSampleAt = now;
    // The second that just ended, by the window's own clock.
    this.#recent.percentilesOf(Math.floor(this.#clock() / 1000) - 1, this.#percentiles);
    this.#history.push({
      t: now,
      requests: d[0]!,
      s2xx: d[1]!,
      s3xx: d[2]!,
      s4xx: d[3]!,
      s5xx: d[4]!,
      s429: d[5]!,
      p50Ms: this.#percentiles[0]!,
      p99Ms: this.#percentiles[1]!,
      http1: st.connections.http1,
      http2: st.connections.http2,
      rssBytes: process.memoryUsage.rss(),
      cpuPct: ((cpu.user + cpu.system) / 1000 / elapsedMs) * 100,
      cacheHit: d[6]!,
      cacheMiss: d[7]!,
      cacheStale: d[8]!,
      cacheBypass: d[9]!,
      store: storeStateOf(st),
    });
  }

  /** The text exposition of every metric, for GET /metrics. */
  async render(): Promise<{ contentType: string; body: string }> {
    this.#scrape = null;
    try {
      this.warm();
      const registry = await this.#registry!;
      const body = [await registry.metrics(), this.#duration.render(), this.#upstream.render()].join('\n');
      return { contentType: registry.contentType, body };
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
      s = { pool, duration: this.#duration.series(pool), upstream: this.#upstream.series(pool), byStatus: new Map(), requests: 0, slow: 0 };
      this.#series.set(pool, s);
    }
    return s;
  }
}
