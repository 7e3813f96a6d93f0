/**
 * The last ~10 s of traffic for the dashboard: requests per second and latency percentiles, kept in a ring of
 * per-second slots. Each slot counts its requests in fixed log-spaced latency bins (10 % apart) rather than
 * keeping a few sampled latencies: a handful of samples per second would miss exactly the slow tail a p99 is
 * about, while bins count every request, cost O(1) and no allocation per request, and are off by at most ~5 %.
 */

/** Seconds the window covers (the current, partial second included). */
export const RECENT_WINDOW_S = 10;
/** Seconds req/s is counted over: short, so the dashboard's figure follows a change within a few seconds. */
export const RPS_WINDOW_S = 3;
/** Lower edge of the first latency bin (ms); anything faster lands in it. */
const MIN_MS = 0.1;
/** Each bin's upper edge is this many times its lower edge. */
const RATIO = 1.1;
/** Up to 60 s; anything slower lands in the last bin. */
const MAX_MS = 60_000;
const BINS = Math.ceil(Math.log(MAX_MS / MIN_MS) / Math.log(RATIO)) + 1;
const INV_LN_RATIO = 1 / Math.log(RATIO);
/** The latency a bin stands for: its geometric middle. */
const BIN_MS = Float64Array.from({ length: BINS }, (_, i) => MIN_MS * RATIO ** (i + 0.5));

export interface RecentTraffic {
  /** Requests per second over the last RPS_WINDOW_S seconds (the current, partial one included). */
  readonly rps: number;
  /** Median request duration (ms), 0 with no requests. */
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Seconds the percentiles cover: up to RECENT_WINDOW_S, less just after start, never under 1. */
  readonly windowS: number;
}

export class RecentWindow {
  /** Which second (clock ms / 1000, floored) each slot holds; -1: never used. */
  readonly #slotSecond = new Float64Array(RECENT_WINDOW_S).fill(-1);
  readonly #count = new Uint32Array(RECENT_WINDOW_S);
  /** RECENT_WINDOW_S rows of BINS counters. */
  readonly #bins = new Uint32Array(RECENT_WINDOW_S * BINS);
  /** Reused by summary(): the window's bins added up. */
  readonly #merged = new Uint32Array(BINS);
  readonly #startedAt: number;

  /** `now`: the clock's reading (ms) when counting starts; the clock must be monotonic (performance.now()). */
  constructor(now: number) {
    this.#startedAt = now;
  }

  record(durationMs: number, now: number): void {
    const sec = Math.floor(now / 1000);
    const slot = sec % RECENT_WINDOW_S;
    if (this.#slotSecond[slot] !== sec) {
      this.#slotSecond[slot] = sec;
      this.#count[slot] = 0;
      this.#bins.fill(0, slot * BINS, (slot + 1) * BINS);
    }
    this.#count[slot]!++;
    this.#bins[slot * BINS + binOf(durationMs)]!++;
  }

  /** That second's p50 and p99 into out[0], out[1] (0 when it has no requests or has left the window). */
  percentilesOf(sec: number, out: Float64Array): void {
    const slot = sec % RECENT_WINDOW_S;
    if (this.#slotSecond[slot] !== sec) {
      out[0] = 0;
      out[1] = 0;
      return;
    }
    const bins = this.#bins.subarray(slot * BINS, (slot + 1) * BINS);
    out[0] = percentile(bins, this.#count[slot]!, 0.5);
    out[1] = percentile(bins, this.#count[slot]!, 0.99);
  }

  summary(now: number): RecentTraffic {
    const sec = Math.floor(now / 1000);
    const merged = this.#merged;
    merged.fill(0);
    let total = 0;
    let recent = 0;
    for (let slot = 0; slot < RECENT_WINDOW_S; slot++) {
      const s = this.#slotSecond[slot]!;
      if (s <= sec - RECENT_WINDOW_S || s > sec) continue;
      total += this.#count[slot]!;
      if (s > sec - RPS_WINDOW_S) recent += this.#count[slot]!;
      const base = slot * BINS;
      for (let b = 0; b < BINS; b++) merged[b]! += this.#bins[base + b]!;
    }
    const span = RECENT_WINDOW_S - 1 + (now - sec * 1000) / 1000;
    const windowS = Math.max(1, Math.min(span, (now - this.#startedAt) / 1000));
    const rpsS = Math.max(1, Math.min(RPS_WINDOW_S - 1 + (now - sec * 1000) / 1000, (now - this.#startedAt) / 1000));
    return { rps: recent / rpsS, p50Ms: percentile(merged, total, 0.5), p99Ms: percentile(merged, total, 0.99), windowS };
  }
}

function binOf(ms: number): number {
  if (!(ms > MIN_MS)) return 0; // also NaN
  const b = Math.floor(Math.log(ms / MIN_MS) * INV_LN_RATIO);
  return b < BINS ? b : BINS - 1;
}

function percentile(bins: Uint32Array, total: number, q: number): number {
  if (total === 0) return 0;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let b = 0; b < BINS; b++) {
    seen += bins[b]!;
    if (seen >= rank) return BIN_MS[b]!;
  }
  return BIN_MS[BINS - 1]!;
}
