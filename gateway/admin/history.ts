/**
 * The last minutes of the gateway, one sample per second, kept in the gateway itself so the dashboard shows
 * them on its first load (it fetches history.json once, then adds the samples status.json brings). A fixed
 * ring: a sample is a few numbers taken once a second from counters the requests already keep, so it costs a
 * request nothing.
 */
import type { StoreState } from '../http/status.js';

/** Five minutes of one-second samples. */
export const HISTORY_SAMPLES = 300;
export const HISTORY_STEP_MS = 1000;

export interface HistorySample {
  /** ms since the epoch, the end of the second it covers. */
  readonly t: number;
  /** Requests finished in that second, and by status class (429 apart from the other 4xx). */
  readonly requests: number;
  readonly s2xx: number;
  readonly s3xx: number;
  readonly s4xx: number;
  readonly s5xx: number;
  readonly s429: number;
  /** Latency of that second's requests (ms), 0 without any. */
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Open connections at the end of the second. */
  readonly http1: number;
  readonly http2: number;
  /** The gateway process (not php-cgi): resident memory (bytes) and CPU over the second (% of one core). */
  readonly rssBytes: number;
  readonly cpuPct: number;
  /** Response-cache outcomes in that second (every rule together). */
  readonly cacheHit: number;
  readonly cacheMiss: number;
  readonly cacheStale: number;
  readonly cacheBypass: number;
  /** The rate-limit store's state, or null without rate_limit.rules. */
  readonly store: StoreState | null;
}

export class HistoryRing {
  readonly #slots: Array<HistorySample | undefined>;
  #next = 0;
  #size = 0;

  constructor(capacity = HISTORY_SAMPLES) {
    this.#slots = new Array<HistorySample | undefined>(capacity);
  }

  push(s: HistorySample): void {
    this.#slots[this.#next] = s;
    this.#next = (this.#next + 1) % this.#slots.length;
    if (this.#size < this.#slots.length) this.#size++;
  }

  /** Oldest first. */
  list(): HistorySample[] {
    const out: HistorySample[] = [];
    const n = this.#slots.length;
    for (let i = 0; i < this.#size; i++) out.push(this.#slots[(this.#next - this.#size + i + n) % n]!);
    return out;
  }

  last(): HistorySample | null {
    return this.#size === 0 ? null : this.#slots[(this.#next - 1 + this.#slots.length) % this.#slots.length]!;
  }
}
