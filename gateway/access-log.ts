/**
 * nginx's access_log and php-fpm's slowlog: one line per request, and one more when slow. In logging.format json an
 * access line is a pino line with the record's fields; in combined and pretty it is written as text straight from the
 * record (log-format.ts), to logging.access_file or with the rest. The slow line goes through the logger in every format.
 */
import type { LoggingConfig } from '../config/types.js';
import type { Logger } from '../core/log.js';
import { combinedLine, prettyAccessLine, type LineSink } from './http/log-format.js';
import { colourFor, logDestination, loggerTo } from './http/log.js';
import type { RequestObserver, RequestRecord } from './http/status.js';

/** Access lines are info lines: a level above info leaves them out, as it does in json. */
const INFO_OR_BELOW: ReadonlySet<string> = new Set(['trace', 'debug', 'info']);

export class AccessLog implements RequestObserver {
  /** json: the logger access lines go through; null otherwise, or with access lines off. */
  readonly #json: Logger | null = null;
  /** combined or pretty: where the text lines go; null otherwise. */
  readonly #text: LineSink | null = null;
  readonly #colour: boolean = false;
  readonly #combined: boolean;
  readonly #slow: Logger;
  readonly #slowMs: number;

  constructor(log: Logger, cfg: LoggingConfig) {
    this.#slow = log.child({ log: 'slow' });
    this.#slowMs = cfg.slow_ms;
    this.#combined = cfg.format === 'combined';
    if (!cfg.access) return;
    const file = cfg.access_file === '' ? cfg.file : cfg.access_file;
    if (cfg.format === 'json') {
      this.#json = (cfg.access_file === '' ? log : loggerTo(cfg, cfg.access_file)).child({ log: 'access' });
    } else if (INFO_OR_BELOW.has(cfg.level)) {
      this.#text = logDestination(file);
      this.#colour = colourFor(file);
    }
  }

  onRequestDone(r: RequestRecord): void {
    // Only the request line and a few named headers: cookies and authorization never reach the log.
    if (this.#json !== null) this.#json.info(r);
    else if (this.#text !== null) {
      const now = Date.now();
      this.#text.write(this.#combined ? combinedLine(r, now) : prettyAccessLine(r, now, this.#colour));
    }
    if (this.#slowMs > 0 && r.durationMs >= this.#slowMs) {
      this.#slow.warn(r, `slow request: ${Math.round(r.durationMs)} ms (slow_ms ${this.#slowMs})`);
    }
  }
}
