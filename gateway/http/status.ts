/**
 * What the gateway tells about itself: the shapes the admin endpoints (health, metrics, dashboard) read.
 * Produced by Gateway (pools, draining) and by the pipeline (one record per finished request).
 */
import type { PoolStats } from '../../php/pool.js';

/** What the response cache did for a request, as the X-Cache header and the access log say it. */
export type CacheStatus = 'HIT' | 'MISS' | 'STALE' | 'BYPASS';

export interface GatewayStatus {
  readonly version: string;
  /** ms since the epoch */
  readonly startedAt: number;
  /** Shutting down or otherwise refusing new work: /readyz answers 503. */
  readonly draining: boolean;
  readonly pools: readonly PoolStats[];
}

export interface StatusSource {
  status(): GatewayStatus;
}

/** One finished request, as the access log and the metrics see it (README: Logging names each field). */
export interface RequestRecord {
  /** The client after server.trusted_proxies (nginx's $remote_addr with real_ip). */
  readonly remoteAddr: string;
  /** The user name of an `Authorization: Basic` header, checked or not (nginx's $remote_user), or ''. */
  readonly remoteUser: string;
  readonly method: string;
  /** The request target as sent (path and query). */
  readonly uri: string;
  /** HTTP/1.0, HTTP/1.1 or HTTP/2.0, as nginx spells $server_protocol. */
  readonly protocol: string;
  readonly status: number;
  /** Bytes sent for this response, head and body (nginx's $bytes_sent). */
  readonly bytes: number;
  /** Body bytes sent (nginx's $body_bytes_sent). */
  readonly bodyBytes: number;
  readonly durationMs: number;
  /** The PHP pool that served it, or null (static file, redirect, error). */
  readonly pool: string | null;
  /** The php-cgi child that served it, or 0. */
  readonly workerPid: number;
  /** From handing the request to PHP until PHP's answer ended (ms), or null when PHP was not involved. */
  readonly upstreamMs: number | null;
  /** What the response cache did (HIT, MISS, STALE, BYPASS), or null when no cache rule covers the request. */
  readonly cache: CacheStatus | null;
  /** Host header (or HTTP/2 :authority), referer and user agent as sent; '' when absent. */
  readonly host: string;
  readonly referer: string;
  readonly userAgent: string;
  /** A trusted proxy's X-Request-Id, or the gateway's own (http/request-id.ts). */
  readonly requestId: string;
}

export interface RequestObserver {
  onRequestDone(r: RequestRecord): void;
}
