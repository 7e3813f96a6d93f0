/**
 * The admin listener (admin.host:admin.port): health for load balancers, Prometheus metrics, and php-fpm's status
 * page as JSON and as a live dashboard. Separate from the main port so it can stay on loopback or a private
 * network; it never reaches PHP.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import http, { type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { INVALID, urlPattern } from '../../config/checks.js';
import type { AdminConfig } from '../../config/types.js';
import { sendError } from '../http/errors-http.js';
import type { Logger } from '../../core/log.js';
import type { GatewayStatus, StatusSource } from '../http/status.js';
import { DEFAULT_POOL_NAME } from '../../config/semantics.js';
import { DASHBOARD_CSP, DASHBOARD_HTML } from './dashboard.js';
import { choosePool, FpmStatusPath, fpmStatusPage, redactLabel } from './fpm-status.js';
import { HEALTH_CONTENT_TYPE, healthAnswer, HealthPath } from './health.js';
import { fromOtherSite, namedByAddress } from './guard.js';
import type { Metrics } from './metrics.js';
import type { PurgeOutcome } from '../cache-purge.js';

export interface AdminServerOptions {
  readonly config: AdminConfig;
  readonly source: StatusSource;
  readonly metrics: Metrics;
  /** Drops cached answers whose path matches a URL pattern, here and wherever purges are shared; null: no cache. */
  readonly purge: (pattern: string) => PurgeOutcome | null | Promise<PurgeOutcome | null>;
  readonly log: Logger;
}

export const AdminPath = {
  Live: HealthPath.Live,
  Ready: HealthPath.Ready,
  Metrics: '/metrics',
  Dashboard: '/status',
  StatusJson: '/status.json',
  /** The dashboard's first load: the last minutes, one sample per second. */
  History: '/history.json',
  /** php-fpm's own status page (text, ?json, ?full; ?pool=NAME), for tools that read php-fpm's. */
  FpmStatus: FpmStatusPath,
  /** POST ?pattern=/blog/* — the response cache's purge (nginx users' fastcgi_cache_purge). */
  CachePurge: '/cache/purge',
} as const;
export type AdminPath = (typeof AdminPath)[keyof typeof AdminPath];

/** php-fpm's other formats; /metrics has their figures. */
const UNSUPPORTED_FPM_FORMATS = ['html', 'xml', 'openmetrics'] as const;
const ROUTES: ReadonlySet<string> = new Set<string>(Object.values(AdminPath));
const ALLOW = 'GET, HEAD';
/** Admin requests are small and answered from memory: anything slower is a stuck or hostile client. */
const REQUEST_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 2_000;
const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(['127.0.0.1', '::1', 'localhost']);
const IDLE_SWEEP_MS = 50;

/** Every admin answer is live state: never cached, never sniffed into another type. */
const COMMON_HEADERS: OutgoingHttpHeaders = { 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' };
const DASHBOARD_BODY = Buffer.from(DASHBOARD_HTML);
const DASHBOARD_HEADERS: OutgoingHttpHeaders = {
  ...COMMON_HEADERS,
  'Content-Type': 'text/html; charset=utf-8',
  'Content-Length': DASHBOARD_BODY.length,
  'Content-Security-Policy': DASHBOARD_CSP,
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
};
const UNAUTHORIZED_HEADERS: OutgoingHttpHeaders = { ...COMMON_HEADERS, 'WWW-Authenticate': 'Bearer realm="phpgate admin"' };

export class AdminServer {
  readonly #config: AdminConfig;
  readonly #source: StatusSource;
  readonly #metrics: Metrics;
  readonly #purge: AdminServerOptions['purge'];
  readonly #log: Logger;
  /** SHA-256 of admin.token, or null when no token is configured (the listener is then open to whoever reaches it). */
  readonly #tokenDigest: Buffer | null;
  /** The listener's callback, bound once. */
  readonly #onRequest: (req: IncomingMessage, res: ServerResponse) => void;
  #server: http.Server | null = null;

  constructor(o: AdminServerOptions) {
    this.#config = o.config;
    this.#source = o.source;
    this.#metrics = o.metrics;
    this.#purge = o.purge;
    this.#log = o.log;
    this.#tokenDigest = o.config.token === '' ? null : digest(o.config.token);
    this.#onRequest = (req, res) => this.#handle(req, res);
  }

  /** Listens on admin.host:admin.port; does nothing when admin.port is 0. */
  async start(): Promise<void> {
    if (this.#config.port === 0 || this.#server !== null) return;
    const server = http.createServer({ requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS }, this.#onRequest);
    const { host, port } = this.#config;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(new Error(`admin listener on ${host}:${port}: ${err.message}`, { cause: err }));
      server.once('error', onError);
      server.listen(port, host, () => {
        server.removeListener('error', onError);
        resolve();
      });
    });
    server.on('error', (err) => this.#log.error({ err }, 'admin listener error'));
    // /metrics is served from now on: process CPU, GC and event-loop lag count from here, not from a first scrape.
    this.#metrics.warm();
    this.#server = server;
    this.#log.info({ host, port: this.address()?.port, token: this.#tokenDigest !== null }, 'admin listening');
    if (this.#tokenDigest === null && !LOOPBACK_HOSTS.has(host)) {
      // Status shows request URIs and worker pids: say so loudly when anyone on the network can read them.
      this.#log.warn({ host, port }, 'admin listener reachable beyond loopback without admin.token: status and metrics are open');
    }
  }

  address(): AddressInfo | null {
    const a = this.#server?.address();
    return a === null || a === undefined || typeof a === 'string' ? null : a;
  }

  /** Stops accepting; idle keep-alive connections close now, busy ones as they finish (all within 2 s). */
  async stop(): Promise<void> {
    this.#metrics.stop();
    const server = this.#server;
    this.#server = null;
    if (server === null) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const sweep = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_MS);
    const grace = setTimeout(() => server.closeAllConnections(), STOP_GRACE_MS);
    await closed;
    clearInterval(sweep);
    clearTimeout(grace);
  }

  /** Never throws: a failure is logged and answered 500. */
  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    try {
      const done = this.#route(req, res, path, q === -1 ? '' : url.slice(q + 1));
      if (done !== null) done.catch((err: unknown) => this.#fail(req, res, path, err));
    } catch (err) {
      this.#fail(req, res, path, err);
    }
  }

  #route(req: IncomingMessage, res: ServerResponse, path: string, query: string): Promise<void> | null {
    if (!ROUTES.has(path)) {
      sendError(req, res, 404, COMMON_HEADERS);
      return null;
    }
    const probe = path === AdminPath.Live || path === AdminPath.Ready;
    if (!probe && this.#tokenDigest === null && !namedByAddress(req.headers.host)) {
      // DNS rebinding (guard.ts): without a token, a name in Host may be an attacker's pointing here.
      send(req, res, 421, 'text/plain;charset=UTF-8', 'without admin.token this listener answers only requests to its address or localhost\n');
      return null;
    }
    if (path === AdminPath.CachePurge) return this.#cachePurge(req, res, query);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendError(req, res, 405, { ...COMMON_HEADERS, Allow: ALLOW });
      return null;
    }
    const health = healthAnswer(path, this.#source);
    if (health !== null) {
      // No token, ever: load balancers and orchestrator probes cannot send one.
      send(req, res, health.status, HEALTH_CONTENT_TYPE, health.body);
      return null;
    }
    // php-fpm's status page too: it shows request paths and pids (agents send the token as a Bearer header).
    if (!this.#authorized(req, path === AdminPath.Dashboard ? query : '')) {
      sendError(req, res, 401, UNAUTHORIZED_HEADERS);
      return null;
    }
    switch (path) {
      case AdminPath.Metrics:
        return this.#metrics.render().then((m) => send(req, res, 200, m.contentType, m.body));
      case AdminPath.StatusJson: {
        // The pools with every worker (URIs without their query's contents), the recent traffic, the newest sample.
        const s = this.#source.status();
        const body = JSON.stringify({
          ...s,
          pools: redactedPools(s),
          recent: this.#metrics.recent(),
          sample: this.#metrics.lastSample(),
          now: Date.now(),
        });
        send(req, res, 200, 'application/json', body);
        return null;
      }
      case AdminPath.History:
        send(req, res, 200, 'application/json', JSON.stringify({ samples: this.#metrics.history(), now: Date.now() }));
        return null;
      case AdminPath.FpmStatus:
        this.#fpmStatus(req, res, query);
        return null;
      default: // AdminPath.Dashboard
        res.writeHead(200, DASHBOARD_HEADERS);
        res.end(req.method === 'HEAD' ? undefined : DASHBOARD_BODY);
        return null;
    }
  }

  /** php-fpm's status page for one pool: `?pool=NAME`, else the default pool; an unknown pool is a 404. */
  #fpmStatus(req: IncomingMessage, res: ServerResponse, query: string): void {
    const q = new URLSearchParams(query);
    const s = this.#source.status();
    const p = choosePool(s.pools, q.get('pool'), DEFAULT_POOL_NAME);
    if (p === null) {
      send(req, res, 404, 'text/plain;charset=UTF-8', `no such pool; pools: ${s.pools.map((x) => x.name).join(', ') || 'none'}\n`);
      return;
    }
    const other = UNSUPPORTED_FPM_FORMATS.find((f) => q.has(f));
    if (other !== undefined) {
      // Answering another format than asked would be read wrongly without a word: refuse it plainly.
      send(req, res, 400, 'text/plain;charset=UTF-8', `?${other} is not served: ask for the text page, ?json, or /metrics\n`);
      return;
    }
    const page = fpmStatusPage(p, this.#metrics.poolCounts(p.name), s.startedAt, q);
    // php-fpm's own headers: never cached.
    res.writeHead(200, {
      ...COMMON_HEADERS,
      Expires: 'Thu, 01 Jan 1970 00:00:00 GMT',
      'Cache-Control': 'no-cache, no-store, must-revalidate, max-age=0',
      'Content-Type': page.contentType,
      'Content-Length': Buffer.byteLength(page.body),
    });
    res.end(req.method === 'HEAD' ? undefined : page.body);
  }

  /** A change of state, so POST only, and always behind the token when one is set. */
  #cachePurge(req: IncomingMessage, res: ServerResponse, query: string): Promise<void> | null {
    if (req.method !== 'POST') {
      sendError(req, res, 405, { ...COMMON_HEADERS, Allow: 'POST' });
      return null;
    }
    if (fromOtherSite(req)) {
      send(req, res, 403, 'text/plain;charset=UTF-8', 'a purge from a page of another site is refused\n');
      return null;
    }
    if (!this.#authorized(req, '')) {
      sendError(req, res, 401, UNAUTHORIZED_HEADERS);
      return null;
    }
    const pattern = new URLSearchParams(query).get('pattern');
    if (pattern === null || urlPattern.parse(pattern) === INVALID) {
      send(
        req,
        res,
        400,
        'application/json',
        JSON.stringify({ error: 'pattern is required: a URL pattern starting with / or * (e.g. ?pattern=/blog/*)' }),
      );
      return null;
    }
    return Promise.resolve(this.#purge(pattern)).then((outcome) => {
      if (outcome === null) {
        send(req, res, 409, 'application/json', JSON.stringify({ error: 'no response cache is configured (cache.rules is empty)' }));
        return;
      }
      this.#log.info({ pattern, ...outcome }, 'cache purged');
      send(req, res, 200, 'application/json', JSON.stringify({ pattern, ...outcome }));
    });
  }

  /**
   * With admin.token set: `Authorization: Bearer <token>`, or for the dashboard page alone `?token=<token>`, since
   * a browser cannot send a header when it navigates (the page then strips it from the address bar and sends
   * the header on its own requests). Compared as SHA-256 digests with timingSafeEqual: constant time whatever
   * the guess, its length included.
   */
  #authorized(req: IncomingMessage, query: string): boolean {
    const expected = this.#tokenDigest;
    if (expected === null) return true;
    const header = req.headers.authorization;
    let given: string | null = null;
    if (header !== undefined) {
      const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
      given = m === null ? null : m[1]!;
    } else if (query !== '') {
      given = new URLSearchParams(query).get('token');
    }
    return given !== null && timingSafeEqual(digest(given), expected);
  }

  #fail(req: IncomingMessage, res: ServerResponse, path: string, err: unknown): void {
    // The path only: the dashboard's query may carry the token.
    this.#log.error({ err, method: req.method, path }, 'admin request failed');
    sendError(req, res, 500, COMMON_HEADERS);
  }
}

/** The pools as status.json shows them: a worker's request URI without its query's contents. */
function redactedPools(s: GatewayStatus): GatewayStatus['pools'] {
  return s.pools.map((p) => ({
    ...p,
    workers: p.workers.map((w) => ({
      ...w,
      current: w.current === null ? null : { ...w.current, label: redactLabel(w.current.label) },
      last: w.last === null ? null : { ...w.last, label: redactLabel(w.last.label) },
    })),
  }));
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

function send(req: IncomingMessage, res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { ...COMMON_HEADERS, 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  res.end(req.method === 'HEAD' ? undefined : body);
}
