/**
 * One request's record while it runs: when it started, which PHP pool and child served it, how long PHP took.
 * When the response closes it becomes a RequestRecord for the observers (metrics, access log, slow log).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CacheStatus, RequestObserver } from './status.js';

export class RequestTrace {
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #observers: readonly RequestObserver[];
  readonly #started = performance.now();
  pool: string | null = null;
  workerPid = 0;
  /** performance.now() when PHP got the request, and how long until its answer ended (-1: not yet/never). */
  upstreamStart = 0;
  upstreamMs = -1;
  /** What the response cache did (HIT, MISS, STALE, BYPASS), or null when no cache rule covers the request. */
  cache: CacheStatus | null = null;
  /** The cache rule's label, set with `cache`; the refusing rate-limit rule's label, or null. */
  cacheRule: string | null = null;
  limitedBy: string | null = null;
  /** PHP body bytes written (kept for the exchange's own accounting). */
  bytes = 0;
  /** The connection's byte count when this request began: the difference at the end is what it sent. */
  readonly #socketBytes: number;

  constructor(req: IncomingMessage, res: ServerResponse, observers: readonly RequestObserver[]) {
    this.#req = req;
    this.#res = res;
    this.#observers = observers;
    // HTTP/2: many streams share one connection, so its count says nothing of this response (-1: count the body).
    this.#socketBytes = req.httpVersionMajor === 2 ? -1 : req.socket.bytesWritten;
    res.once('close', this.#onClose);
  }

  readonly #onClose = (): void => {
    const res = this.#res;
    const record = {
      method: this.#req.method ?? '',
      uri: this.#req.url ?? '',
      // A response cut before its head went out never had a status; 499 as nginx logs a client that left.
      status: res.headersSent ? res.statusCode : 499,
      // Head and body, as nginx's $bytes_sent (responses on one connection are sent one after another).
      bytes: this.#socketBytes < 0 ? this.#bodyBytes() : this.#req.socket.bytesWritten - this.#socketBytes,
      durationMs: performance.now() - this.#started,
      pool: this.pool,
      workerPid: this.workerPid,
      upstreamMs: this.upstreamMs < 0 ? null : this.upstreamMs,
      cache: this.cache,
      cacheRule: this.cacheRule,
      limitedBy: this.limitedBy,
    };
    for (const o of this.#observers) o.onRequestDone(record);
  };

  /** An HTTP/2 response's body bytes: its Content-Length when it had one, else what PHP streamed. */
  #bodyBytes(): number {
    const declared = Number(this.#res.getHeader('content-length'));
    return Number.isFinite(declared) && this.#res.headersSent ? declared : this.bytes;
  }
}
