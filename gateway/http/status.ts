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
  /** The main listener's connections: open now by protocol, and accepted since start. */
  readonly connections: ConnectionCounts;
  /** rate_limit.rules' labels (their metrics' `rule`) and the shared store's state; null without rules. */
  readonly rateLimit: RateLimitStatus | null;
  /** cache.rules' labels (their metrics' `rule`); routes' caches add theirs as they are first used. */
  readonly cacheRules: readonly string[];
}

export interface ConnectionCounts {
  /** HTTP/1.1 connections, plain or TLS (TLS handshakes under way included). */
  readonly http1: number;
  readonly http2: number;
  /** TCP connections accepted since the listener started (a counter). */
  readonly accepted: number;
}

/** A shared rate-limit store as the limiter sees it; `local`: rate_limit.store is memory. */
export type StoreState = 'connected' | 'degraded' | 'fallback' | 'local';
export const StoreStates: readonly StoreState[] = ['connected', 'degraded', 'fallback', 'local'];

export interface RateLimitStatus {
  readonly rules: readonly string[];
  /** The store's address without its password, or "memory". */
  readonly store: string;
  readonly state: StoreState;
}

/** Told of events that outlive the component a reload replaces (the counts live in the metrics). */
export interface StoreEvents {
  storeError(store: string): void;
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
  /** The cache rule's label (its pattern, or `route <location>`), or null with no rule. */
  readonly cacheRule: string | null;
  /** The rate-limit rule that refused it (429), or null. */
  readonly limitedBy: string | null;
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
