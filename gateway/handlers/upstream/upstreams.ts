/**
 * HTTP upstream routes (upstreams[]): which requests go to which targets, and what the gateway knows of each
 * target, as nginx's `location … { proxy_pass …; }` with an `upstream {}` block keeps it: requests in flight
 * (least_conn), and a target that failed a connection skipped for down_s (max_fails=1 fail_timeout=down_s).
 * Routes are compiled when the configuration is; the proxying itself is proxy.ts's.
 */
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { ProxyServer } from 'http-proxy-3';
import { compilePattern, type PathMatcher } from '../../../config/pattern.js';
import type { UpstreamConfig } from '../../../config/types.js';
import type { Logger } from '../../../core/log.js';
import { createProxy } from './http-proxy.js';
import type { RedirectRewrite } from './headers.js';
import { encodePath, type ParsedTarget } from '../../http/uri.js';

/**
 * Idle keep-alive connections to a target are closed after this (nginx's upstream keepalive_timeout is 60 s). A
 * target that announces a shorter one (`Keep-Alive: timeout=5`, node's default) is believed, less a second, so
 * the gateway never sends on a connection the target is closing.
 */
const KEEPALIVE_IDLE_MS = 60_000;

export class UpstreamTarget {
  readonly url: URL;
  /** The `pool` of this target's requests in the access log and metrics: `upstream:host:port`. */
  readonly label: string;
  /** Keep-alive connections to this target (nginx `keepalive` in the upstream block). */
  readonly agent: http.Agent;
  /** Host sent with host_header: target (nginx $proxy_host), else null. */
  readonly hostHeader: { readonly host: string } | null;
  /** Its own URLs in a Location, and what they become (nginx's proxy_redirect default). */
  readonly redirect: RedirectRewrite;
  /** Requests (and websockets) now being served by this target. */
  inFlight = 0;
  /** performance.now() until which this target is skipped; 0: up. */
  downUntil = 0;

  /** `strip`: the route's strip_prefix without its trailing slash. */
  constructor(url: string, hostFromTarget: boolean, strip: string) {
    this.url = new URL(url);
    this.label = `upstream:${this.url.host}`;
    const options = { keepAlive: true, timeout: KEEPALIVE_IDLE_MS };
    this.agent = this.url.protocol === 'https:' ? new https.Agent(options) : new http.Agent(options);
    this.hostHeader = hostFromTarget ? { host: this.url.host } : null;
    const path = this.url.pathname.endsWith('/') ? this.url.pathname : `${this.url.pathname}/`;
    this.redirect = { from: `${this.url.origin}${path}`, to: `${strip}/` };
  }
}

/** One upstreams[] entry, compiled. */
export class Upstream {
  readonly matches: PathMatcher;
  readonly websockets: boolean;
  readonly targets: readonly UpstreamTarget[];
  readonly connectMs: number;
  readonly timeoutMs: number;
  /** The http-proxy-3 instance every route of this configuration shares. */
  readonly proxy: ProxyServer;
  readonly #leastConn: boolean;
  readonly #downMs: number;
  /** strip_prefix without a trailing slash; '' forwards the request target as sent. */
  readonly #strip: string;
  /** Where the next round-robin turn starts (least_conn: where ties start to be broken). */
  #next = 0;
  readonly #log: Logger;

  constructor(c: UpstreamConfig, proxy: ProxyServer, log: Logger) {
    this.matches = compilePattern(c.pattern);
    this.websockets = c.websockets;
    this.#strip = c.strip_prefix.replace(/\/+$/, '');
    this.targets = c.targets.map((t) => new UpstreamTarget(t, c.host_header === 'target', this.#strip));
    this.connectMs = c.connect_ms;
    this.timeoutMs = c.timeout_ms;
    this.proxy = proxy;
    this.#leastConn = c.balance === 'least_conn';
    this.#downMs = c.down_s * 1000;
    this.#log = log;
  }

  /**
   * The next target that is up and not `tried` yet by this request: in turn, or (least_conn) the one with the
   * fewest requests in flight, ties in turn. null when none is left: the request gets 502 at once, as nginx's
   * "no live upstreams", rather than waiting on a target known to be down.
   */
  pick(tried: readonly UpstreamTarget[] | null): UpstreamTarget | null {
    const targets = this.targets;
    const n = targets.length;
    const now = performance.now();
    let best: UpstreamTarget | null = null;
    let bestAt = 0;
    for (let i = 0; i < n; i++) {
      const at = (this.#next + i) % n;
      const t = targets[at]!;
      if (t.downUntil > now || (tried !== null && tried.includes(t))) continue;
      if (best === null || t.inFlight < best.inFlight) {
        best = t;
        bestAt = at;
        if (!this.#leastConn) break;
      }
    }
    if (best !== null) this.#next = (bestAt + 1) % n;
    return best;
  }

  /** A connection to `t` failed: skipped for down_s (0: never), as nginx with max_fails=1. */
  markDown(t: UpstreamTarget, why: string): void {
    if (this.#downMs === 0) return;
    if (t.downUntil === 0) this.#log.warn({ upstream: t.url.origin, why, downS: this.#downMs / 1000 }, 'upstream target marked down');
    t.downUntil = performance.now() + this.#downMs;
  }

  /** `t` answered: if it had been marked down, it is up again. */
  answered(t: UpstreamTarget): void {
    if (t.downUntil === 0) return;
    t.downUntil = 0;
    this.#log.info({ upstream: t.url.origin }, 'upstream target is back');
  }

  /**
   * The request target the upstream gets (the target URL's own path goes in front of it). Without strip_prefix,
   * the request target as the client sent it (nginx's proxy_pass without a URI). With it, as nginx's proxy_pass
   * with a URI does it: the normalised path, the prefix replaced by "/" at a segment boundary, encoded again, and
   * the query as sent: `/api/node/x?y=1` → `/x?y=1`, `/api/node` → `/`. A path the prefix does not start
   * (`/api/nodejs` for "/api/node") is forwarded as sent.
   */
  forwardPath(target: ParsedTarget): string {
    const strip = this.#strip;
    const path = target.path;
    if (strip === '' || !path.startsWith(strip)) return target.requestUri;
    let rest: string;
    if (path.length === strip.length) rest = '/';
    else if (path.charCodeAt(strip.length) === 47 /* '/' */) rest = path.slice(strip.length);
    else return target.requestUri;
    return target.query === '' ? encodePath(rest) : `${encodePath(rest)}?${target.query}`;
  }
}

/**
 * Websockets open through this gateway (across reloads): a stop closes them at once, since they never end by
 * themselves and would hold the stop for its whole drain_ms.
 */
export class WebSocketTunnels {
  readonly #open = new Set<Socket>();
  #closed = false;

  /** False (and the socket destroyed) once the gateway is stopping. */
  add(socket: Socket): boolean {
    if (this.#closed) {
      socket.destroy();
      return false;
    }
    this.#open.add(socket);
    socket.once('close', () => this.#open.delete(socket));
    return true;
  }

  /** Ends every tunnel (both sides close: http-proxy-3 ends the target's socket with the client's). */
  closeAll(): void {
    this.#closed = true;
    for (const socket of this.#open) socket.destroy();
  }
}

/** The upstreams[] of one configuration: the stage that runs before the PHP and static router. */
export class Upstreams {
  readonly #routes: readonly Upstream[];
  /** Some route takes websockets: the listener hands Upgrade requests to the pipeline. */
  readonly websockets: boolean;
  readonly tunnels: WebSocketTunnels;

  /** Upstreams of routes (`proxy:`), by their place in the list given: chosen by the route, never by a pattern. */
  readonly #ofRoutes: readonly Upstream[];

  constructor(configs: readonly UpstreamConfig[], tunnels: WebSocketTunnels, log: Logger, ofRoutes: readonly UpstreamConfig[] = []) {
    const proxy = createProxy(log);
    this.#routes = configs.map((c) => new Upstream(c, proxy, log));
    this.#ofRoutes = ofRoutes.map((c) => new Upstream(c, proxy, log));
    this.websockets = this.#routes.some((r) => r.websockets);
    this.tunnels = tunnels;
  }

  /** The upstream of the route given `i`-th to the constructor. */
  ofRoute(i: number): Upstream {
    return this.#ofRoutes[i]!;
  }

  /** The first route whose pattern matches the decoded path, or null: PHP and static files. */
  match(path: string): Upstream | null {
    for (const r of this.#routes) if (r.matches(path)) return r;
    return null;
  }

  /**
   * After a reload: idle connections close now; busy ones finish their request, then idle out (they never keep
   * the process alive).
   */
  retire(): void {
    for (const t of this.#targets()) {
      for (const sockets of Object.values(t.agent.freeSockets)) for (const s of sockets ?? []) s.destroy();
    }
  }

  /** At stop, after the drain: every connection to every target. */
  close(): void {
    for (const t of this.#targets()) t.agent.destroy();
  }

  #targets(): UpstreamTarget[] {
    return [...this.#routes, ...this.#ofRoutes].flatMap((r) => r.targets);
  }
}
