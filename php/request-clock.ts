/**
 * timeout_ms of one PHP request, as nginx's fastcgi_read_timeout counts it: PHP's time only. The clock stops while
 * PHP waits for a slow client and goes on from where it stopped once the client catches up.
 */
export class RequestClock {
  readonly #onExpired: () => void;
  #timer: NodeJS.Timeout | null = null;
  /** Time left while the clock is stopped; -1 while it runs (or is off). */
  #left = -1;
  /** When the running timer was (re)started, and with how much time left then. */
  #startedAt = 0;
  #budget = 0;

  constructor(onExpired: () => void) {
    this.#onExpired = onExpired;
  }

  /** Runs for `ms` (0 or less: no limit). */
  start(ms: number): void {
    this.#left = -1;
    if (ms <= 0) return;
    this.#startedAt = Date.now();
    this.#budget = ms;
    this.#timer = setTimeout(this.#expired, ms);
  }

  /** PHP waits for the client: its time does not run meanwhile. */
  stop(): void {
    if (this.#timer === null) return;
    this.#left = Math.max(1, this.#budget - (Date.now() - this.#startedAt));
    clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** Goes on where stop() left it (nothing when it was not stopped). */
  resume(): void {
    if (this.#left >= 0) this.start(this.#left);
  }

  /** What is left of the budget now. */
  remaining(): number {
    return this.#timer === null ? this.#left : this.#budget - (Date.now() - this.#startedAt);
  }

  /** The request ended: no timeout any more. */
  finish(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#left = -1;
  }

  readonly #expired = (): void => {
    this.#timer = null;
    this.#onExpired();
  };
}
