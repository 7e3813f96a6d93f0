/** What a Pipeline is built from: one configuration's stages (server.ts builds them), and what it sends a request to. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { InternalLocation } from '../config/types.js';
import type { Logger } from '../core/log.js';
import type { Pool } from '../php/pool.js';
import type { ResponseCache } from './filters/cache/store.js';
import type { Compression } from './filters/compression.js';
import type { Exchange } from './http/exchange.js';
import type { SecurityHeaders } from './filters/security-headers.js';
import type { RateLimiter } from './gates/rate-limit.js';
import type { StaticFiles } from './handlers/static.js';
import type { Upstream, Upstreams } from './handlers/upstream/upstreams.js';
import type { BodyMemory } from './http/body.js';
import type { ResponseSink } from './http/sink.js';
import type { PhpRoute, Router } from './route/router.js';
import type { AccessGuards, RouteExtras, RouteTable } from './route/routes.js';
import type { TrustedProxies } from './http/client-address.js';
import type { RequestObserver, StatusSource } from './http/status.js';
import type { ErrorPage } from './internal.js';
import type { Location } from './route/locations.js';

export interface PipelineOptions {
  readonly router: Router;
  readonly static: StaticFiles;
  readonly pools: ReadonlyMap<string, Pool>;
  /**
   * The pools in force now. A request routed by this pipeline may reach PHP after a reload replaced it (its body
   * was still arriving): it then goes to the new pool of the same name, not to a retired one.
   */
  readonly poolsNow: () => ReadonlyMap<string, Pool>;
  /** nginx error_page: status → URI answering the gateway's own errors. */
  readonly errorPages: ReadonlyMap<number, ErrorPage>;
  readonly maxBodyBytes: number;
  /** Request-body memory, shared by every request of every generation (server.limits.body_memory_mb). */
  readonly bodyMemory: BodyMemory;
  /** Longest request target (server.limits.url_kb); longer gets 414, as nginx's large_client_header_buffers. */
  readonly maxUrlBytes: number;
  /** Longest silence while a request body arrives (server.timeouts.body_ms). */
  readonly bodyTimeoutMs: number;
  /** Longest wait for a slow client to take more of a PHP response (server.timeouts.send_ms). */
  readonly sendTimeoutMs: number;
  /** Slowest average a waiting client may take a response at, bytes/s (server.timeouts.min_send_rate; 0: off). */
  readonly minSendRate: number;
  /** php.response_*: puts a PHP answer's sink behind a buffer, so a slow client never holds a worker (or not: off). */
  readonly bufferPhp: (x: Exchange, sink: ResponseSink) => ResponseSink;
  readonly serverName: string;
  /** Who the client is (server.trusted_proxies, PROXY protocol). */
  readonly clients: TrustedProxies;
  /** headers.*: on every answer but health checks and unparsable requests (static files take them in their head). */
  readonly securityHeaders: SecurityHeaders;
  /** compression.*: gzip/brotli of PHP's and upstreams' answers. */
  readonly compression: Compression;
  /** static.internal: prefixes reachable only by internal redirect (X-Accel-Redirect), and their directories. */
  readonly internal: readonly InternalLocation[];
  /** The response cache (cache.rules), or null when nothing is cached. */
  readonly cache: ResponseCache | null;
  /** rate_limit.rules, or null when there are none. */
  readonly rateLimit: RateLimiter | null;
  /** upstreams[], matched before PHP and static files, and the routes' upstreams; null when there are none. */
  readonly upstreams: Upstreams | null;
  /** routes: (nginx's locations), or null: the router's global keys decide. */
  readonly routes: RouteTable | null;
  /** The access phase of routes (deny/allow by address, auth_basic). */
  readonly guards: AccessGuards;
  /** A route with `proxy:` → its upstream. */
  readonly routeUpstreams: ReadonlyMap<Location, Upstream>;
  /** Told about every finished request (metrics, access log); empty: no per-request record is kept. */
  readonly observers: readonly RequestObserver[];
  /**
   * Where a deferred (pipelined) request is handed when its turn comes: the gateway's dispatcher, so that after
   * a reload it reaches the pipeline then in force, not this one.
   */
  readonly dispatch: (req: IncomingMessage, res: ServerResponse) => void;
  /** /healthz and /readyz on this port (admin.health_on_main), or null. */
  readonly health: StatusSource | null;
  readonly serverSoftware: string;
  /** logging.request_id_to_php: PHP always gets HTTP_X_REQUEST_ID, the access log's request id. */
  readonly requestIdToPhp: boolean;
  readonly log: Logger;
}

/** What a request is sent to once routed: a PHP script or an HTTP upstream (both may be cached). */
export type Job = ({ readonly kind: 'php'; readonly route: PhpRoute } | { readonly kind: 'upstream'; readonly upstream: Upstream }) & {
  /** The sink in front of the exchange: a route's headers filter, or the exchange. */
  readonly tail: ResponseSink;
  /** The route that answers, when routes: decide (its cache, bypass and no_store). */
  readonly at: Location | null;
  readonly extras: RouteExtras | null;
};
