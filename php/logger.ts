/** What php/ adds to the project's Logger (core/log.ts): PHP's own output, per line or per request. */
import type { Logger } from '../core/log.js';

/**
 * Logs each non-blank line of what PHP wrote to stderr as its own warning (a php-cgi process's own stderr pipe,
 * outside any request). `prefix` says who wrote it; `context` ties it to a pool or a process.
 */
export function logLines(log: Logger, context: object, prefix: string, chunk: Buffer): void {
  for (const line of chunk.toString('utf8').split('\n')) {
    const text = line.trim();
    if (text !== '') log.warn(context, `${prefix}${text}`);
  }
}

/** At most this much of one request's stderr is kept: a script looping on a warning must not fill the log. */
export const REQUEST_STDERR_MAX_BYTES = 8 * 1024;

/** A line's level: PHP's fatal kinds are errors, notices and deprecations are information, anything else a warning. */
const ERROR_LINE = /^PHP (?:Fatal error|Parse error|Recoverable fatal error|Core error|Compile error):/;
const INFO_LINE = /^PHP (?:Notice|Deprecated|Strict Standards):/;

const INFO = 0;
const WARN = 1;
const ERROR = 2;

/**
 * What PHP wrote to FastCGI STDERR during one request (its warnings, fatal errors, error_log() lines), logged as ONE
 * entry when the request ends — nginx's "FastCGI sent in stderr", but tied to the request (its id, method, URI, pool,
 * worker) and at the level of its worst line. The text is kept up to REQUEST_STDERR_MAX_BYTES; the level counts
 * every line, kept or not.
 */
export class RequestStderr {
  #chunks: Buffer[] | null = null;
  #kept = 0;
  #dropped = 0;
  #level = INFO;

  add(chunk: Buffer): void {
    for (const line of chunk.toString('latin1').split('\n')) {
      const text = line.trim();
      if (text === '') continue;
      const level = ERROR_LINE.test(text) ? ERROR : INFO_LINE.test(text) ? INFO : WARN;
      if (level > this.#level) this.#level = level;
    }
    const room = REQUEST_STDERR_MAX_BYTES - this.#kept;
    const keep = chunk.length <= room ? chunk : chunk.subarray(0, room);
    this.#dropped += chunk.length - keep.length;
    if (keep.length === 0) return;
    (this.#chunks ??= []).push(keep);
    this.#kept += keep.length;
  }

  /** Nothing came (nearly every request): no entry to describe. */
  get empty(): boolean {
    return this.#chunks === null;
  }

  /** Logs what came as one entry with `context` (nothing if nothing came), and starts over. */
  flush(log: Logger, context: Record<string, unknown>): void {
    const chunks = this.#chunks;
    if (chunks === null) return;
    const lines = Buffer.concat(chunks, this.#kept)
      .toString('utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '');
    const dropped = this.#dropped;
    const level = this.#level === ERROR ? 'error' : this.#level === WARN ? 'warn' : 'info';
    this.#chunks = null;
    this.#kept = 0;
    this.#dropped = 0;
    this.#level = INFO;
    if (lines.length === 0) return;
    if (dropped > 0) lines.push(`[… ${dropped} more bytes of stderr not logged]`);
    log[level](dropped > 0 ? { ...context, stderrTruncated: dropped } : context, lines.join('\n'));
  }
}
