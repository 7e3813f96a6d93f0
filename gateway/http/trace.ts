/**
 * One request's record while it runs: when it started, which PHP pool and child served it, how long PHP took.
 * When the response closes it becomes a RequestRecord for the observers (metrics, access log, slow log).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { remoteUser } from '../../php/cgi-env.js';
import type { ClientInfo, TrustedProxies } from './client-address.js';
import { requestIdOf } from './request-id.js';
import type { CacheStatus, RequestObserver } from './status.js';

export class RequestTrace {
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #observers: readonly RequestObserver[];
  readonly #clients: TrustedProxies;
  readonly #started = performance.now();
  /** The client as the pipeline resolved it; null when the request was answered before (then resolved at the end). */
  client: ClientInfo | null = null;
  #requestId: string | null = null;
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

  constructor(req: IncomingMessage, res: ServerResponse, observers: readonly RequestObserver[], clients: TrustedProxies) {
    this.#req = req;
    this.#res = res;
    this.#observers = observers;
    this.#clients = clients;
    // HTTP/2: many streams share one connection, so its count says nothing of this response (-1: count the body).
    this.#socketBytes = req.httpVersionMajor === 2 ? -1 : req.socket.bytesWritten;
    res.once('close', this.#onClose);
  }

  /** The request's id (http/request-id.ts), made when first asked for: by PHP's params, an upstream, or the log. */
  requestId(): string {
    return (this.#requestId ??= requestIdOf(this.#req, this.#clients));
  }

  readonly #onClose = (): void => {
    const req = this.#req;
    const res = this.#res;
    const h = req.headers;
    const h2 = req.httpVersionMajor === 2;
    // Head and body, as nginx's $bytes_sent (responses on one connection are sent one after another).
    const bytes = h2 ? this.#bodyBytes() : req.socket.bytesWritten - this.#socketBytes;
    const record = {
      remoteAddr: (this.client ?? this.#clients.resolve(req)).address,
      remoteUser: h.authorization === undefined ? '' : userName(req.rawHeaders),
      method: req.method ?? '',
      uri: req.url ?? '',
      protocol: h2 ? 'HTTP/2.0' : req.httpVersion === '1.1' ? 'HTTP/1.1' : `HTTP/${req.httpVersion}`,
      // A response cut before its head went out never had a status; 499 as nginx logs a client that left.
      status: res.headersSent ? res.statusCode : 499,
      bytes,
      bodyBytes: h2 ? bytes : Math.max(0, bytes - headBytes(res)),
      durationMs: micro(performance.now() - this.#started),
      pool: this.pool,
      workerPid: this.workerPid,
      upstreamMs: this.upstreamMs < 0 ? null : micro(this.upstreamMs),
      cache: this.cache,
      cacheRule: this.cacheRule,
      limitedBy: this.limitedBy,
      host: h.host ?? (h[':authority'] as string | undefined) ?? '',
      referer: h.referer ?? '',
      userAgent: h['user-agent'] ?? '',
      requestId: this.requestId(),
    };
    for (const o of this.#observers) o.onRequestDone(record);
  };

  /** An HTTP/2 response's body bytes: its Content-Length when it had one, else what PHP streamed. */
  #bodyBytes(): number {
    if (this.#req.method === 'HEAD') return 0;
    const declared = Number(this.#res.getHeader('content-length'));
    return Number.isFinite(declared) && this.#res.headersSent ? declared : this.bytes;
  }
}

/** ms to the µs: what a log line needs of performance.now()'s digits. */
function micro(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** The length of the head node wrote for an HTTP/1.x response (0 before one went out); the rest of $bytes_sent is body. */
function headBytes(res: ServerResponse): number {
  const head = (res as { _header?: unknown })._header;
  return typeof head === 'string' ? head.length : 0;
}

/** $remote_user as text for the log (a name in another encoding keeps its bytes, one character each). */
function userName(raw: readonly string[]): string {
  const user = remoteUser(raw);
  return typeof user === 'string' ? user : user.toString('latin1');
}
