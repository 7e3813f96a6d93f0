/** nginx's access_log and php-fpm's slowlog, as pino JSON lines: one per request, and one more when slow. */
import type { Logger } from '../core/log.js';
import type { RequestObserver, RequestRecord } from './http/status.js';

export class AccessLog implements RequestObserver {
  readonly #log: Logger | null;
  readonly #slow: Logger;
  readonly #slowMs: number;

  constructor(log: Logger, o: { access: boolean; slowMs: number }) {
    this.#log = o.access ? log.child({ log: 'access' }) : null;
    this.#slow = log.child({ log: 'slow' });
    this.#slowMs = o.slowMs;
  }

  onRequestDone(r: RequestRecord): void {
    // Only the request line: cookies and authorization never reach the log.
    this.#log?.info(r);
    if (this.#slowMs > 0 && r.durationMs >= this.#slowMs) {
      this.#slow.warn(r, `slow request: ${Math.round(r.durationMs)} ms (slow_ms ${this.#slowMs})`);
    }
  }
}
