/**
 * A request's journey, top to bottom: parse the target → route → answer (error, redirect, static file, PHP).
 * Later stages (admin endpoints, rate limits, security headers, cache, compression) slot in here, in order.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { ErrorCode, type PhpgateError } from '../core/errors.js';
import { buildCgiParams, type CgiRequest } from '../php/cgi-env.js';
import type { Pool } from '../php/pool.js';
import { BodyKind, bodyKind, closeAfter, EMPTY_BODY, expectsContinue, readBody, type RequestBody } from './http/body.js';
import { sendError, statusForError, type ErrorResponder } from './http/errors-http.js';
import type { Logger } from '../core/log.js';
import { PhpExchange, type ExchangeContext } from './handlers/php.js';
import type { SecurityHeaders } from './filters/security-headers.js';
import { setHeaders, type HeaderList } from './http/response-head.js';
import { RouteKind, type PhpRoute, type Router } from './route/router.js';
import type { StaticFiles } from './handlers/static.js';
import { healthAnswer } from './admin/health.js';
import type { RequestObserver, StatusSource } from './http/status.js';
import { RequestTrace } from './http/trace.js';
import { unmapIPv4, type ClientInfo, type TrustedProxies } from './http/client-address.js';
import type { RateLimiter } from './gates/rate-limit.js';
import type { Compression } from './filters/compression.js';
import type { CacheFill, ResponseCache } from './filters/cache/response-cache.js';
import { parseTarget, type ParsedTarget } from './http/uri.js';
import { ProxyExchange, type ProxyContext } from './handlers/upstream/proxy.js';
import { responseOnSocket, WebSocketTunnel } from './handlers/upstream/websocket.js';
import type { Upstreams } from './handlers/upstream/upstreams.js';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

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
  readonly errorPages: ReadonlyMap<number, ParsedTarget>;
  readonly maxBodyBytes: number;
  /** Longest request target (server.limits.url_kb); longer gets 414, as nginx's large_client_header_buffers. */
  readonly maxUrlBytes: number;
  /** Longest silence while a request body arrives (server.timeouts.body_ms). */
  readonly bodyTimeoutMs: number;
  /** Longest wait for a slow client to take more of a PHP response (server.timeouts.send_ms). */
  readonly sendTimeoutMs: number;
  readonly serverName: string;
  /** Who the client is (server.trusted_proxies, PROXY protocol). */
  readonly clients: TrustedProxies;
  /** headers.*: on every answer but health checks and unparsable requests (static files take them in their head). */
  readonly securityHeaders: SecurityHeaders;
  /** compression.*: gzip/brotli of PHP's answers. */
  readonly compression: Compression;
  /** The response cache (cache.rules), or null when nothing is cached. */
  readonly cache: ResponseCache | null;
  /** rate_limit.rules, or null when there are none. */
  readonly rateLimit: RateLimiter | null;
  /** upstreams[], matched before PHP and static files; null when there are none. */
  readonly upstreams: Upstreams | null;
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
  readonly log: Logger;
}

export class Pipeline implements ErrorResponder {
  readonly #o: PipelineOptions;
  readonly #exchange: ExchangeContext;
  readonly #proxy: ProxyContext;

  constructor(o: PipelineOptions) {
    this.#o = o;
    this.#exchange = { log: o.log, errors: this, sendTimeoutMs: o.sendTimeoutMs, stripPoweredBy: o.securityHeaders.stripPoweredBy,
      compression: o.compression.enabled ? o.compression : null };
    this.#proxy = { log: o.log, errors: this, clients: o.clients, sendTimeoutMs: o.sendTimeoutMs, maxBodyBytes: o.maxBodyBytes,
      stripPoweredBy: o.securityHeaders.stripPoweredBy };
  }

  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    if (res.socket === null) {
      // A pipelined request queued behind its connection's earlier responses. Handled when its turn comes, as
      // nginx does: started now, it would hold a PHP worker for a response that cannot be sent yet (and one
      // connection could take every worker).
      res.once('socket', () => this.#o.dispatch(req, res));
      return;
    }
    try {
      this.#handle(req, res);
    } catch (err) {
      this.#failed(req, res, err);
    }
  };

  /** A bug must cost this one request, not the process or a hung client. */
  #failed(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    this.#o.log.error({ err, url: req.url }, 'request handling failed');
    if (res.headersSent) res.destroy();
    else sendError(req, res, 500);
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const trace = this.#o.observers.length === 0 ? null : new RequestTrace(req, res, this.#o.observers);
    const url = req.url ?? '';
    if (this.#o.health !== null && (url === '/healthz' || url === '/readyz')) {
      // Health for load balancers: answered here, never routed to PHP, whatever the docroot holds.
      const h = healthAnswer(url, this.#o.health)!;
      res.writeHead(h.status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(h.body), 'Cache-Control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : h.body);
      return;
    }
    if (url.length > this.#o.maxUrlBytes) {
      this.answerError(req, res, 414, null);
      return;
    }
    const target = parseTarget(url);
    if (target === null || (req.httpVersionMajor === 1 && hasSeveralHosts(req.rawHeaders))) {
      // RFC 9112 §3.2: more than one Host is a 400 (nginx: "client sent duplicate host header").
      this.answerError(req, res, 400, null);
      return;
    }
    if (req.httpVersionMinor === 0 && req.httpVersionMajor === 1 && req.headers['transfer-encoding'] !== undefined) {
      // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 is faulty framing; the connection closes after this answer,
      // whatever keep-alive the client asked for (what follows on it may be a smuggled request).
      closeAfter(req, res);
    }
    const client = this.#o.clients.resolve(req);
    const edge = this.#o.securityHeaders.for(target.path, client.https);
    const limiter = this.#o.rateLimit;
    const verdict = limiter === null ? null : limiter.check(target.path, client.address, req);
    if (verdict === null) {
      this.#route(req, res, target, client, edge, trace);
      return;
    }
    verdict.then(
      (v) => {
        try {
          setHeaders(res, v.headers);
          if (v.allowed) {
            this.#route(req, res, target, client, edge, trace);
          } else {
            setHeaders(res, edge);
            this.answerError(req, res, 429, target);
          }
        } catch (err) {
          this.#failed(req, res, err);
        }
      },
      (err: unknown) => {
        // The limiter has its own fallback (memory when Redis is down); a failure here is a bug, not a reason to refuse.
        this.#o.log.error({ err, url }, 'rate limiter failed; the request passes');
        try {
          this.#route(req, res, target, client, edge, trace);
        } catch (routeErr) {
          this.#failed(req, res, routeErr);
        }
      },
    );
  }

  /** `edge`: the security headers; static files put them in their head themselves, every other answer gets them set here. */
  #route(req: IncomingMessage, res: ServerResponse, target: ParsedTarget, client: ClientInfo, edge: HeaderList, trace: RequestTrace | null): void {
    if (this.#overMaxBody(req)) {
      // nginx answers client_max_body_size before reading a byte of the body, whatever the location; so do we
      // (a static file or a 404 would otherwise read and discard any announced body, however large).
      setHeaders(res, edge);
      closeAfter(req, res);
      this.answerError(req, res, 413, target);
      return;
    }
    // An upstream's pattern is an nginx `location … { proxy_pass …; }`: it takes the path before the docroot is asked.
    const upstream = this.#o.upstreams === null ? null : this.#o.upstreams.match(target.path);
    if (upstream !== null) {
      setHeaders(res, edge);
      new ProxyExchange(req, res, upstream, target, client, this.#proxy, trace).start();
      return;
    }
    const route = this.#o.router.resolve(target.path, target.query);
    switch (route.kind) {
      case RouteKind.Static: {
        const refused = this.#o.static.serve(req, res, route.file, route.stat, target.path, edge);
        if (refused !== 0) {
          setHeaders(res, edge);
          this.answerError(req, res, refused, target, { Allow: 'GET, HEAD' });
        }
        return;
      }
      case RouteKind.Php:
        if (this.#o.cache !== null && this.#fromCache(req, res, target, route, client, edge, trace, true)) return;
        // PHP's answer takes the security headers into its own head, in one writeHead (set one by one beforehand,
        // they cost about a tenth of a PHP hello's gateway CPU).
        this.#php(req, res, target, route, client, trace, null, edge);
        return;
      case RouteKind.Error:
        setHeaders(res, edge);
        this.answerError(req, res, route.status, target);
        return;
      case RouteKind.Redirect:
        setHeaders(res, edge);
        this.#redirect(req, res, route.location);
        return;
    }
  }

  /**
   * The response cache's turn (a PHP route, body within limits). Returns true when it took the request: answered
   * from the cache, sent to PHP to fill an entry, or waiting for another request's fill. `mayWait` false: this
   * request already waited once.
   */
  #fromCache(req: IncomingMessage, res: ServerResponse, target: ParsedTarget, route: PhpRoute, client: ClientInfo, edge: HeaderList,
    trace: RequestTrace | null, mayWait: boolean): boolean {
    const cache = this.#o.cache!;
    const rule = cache.ruleFor(target.path);
    if (rule === null) return false;
    const v = cache.lookup(rule, req, target, client.https, bodyKind(req) !== BodyKind.None, mayWait);
    switch (v.kind) {
      case 'hit':
      case 'stale': {
        const status = v.kind === 'hit' ? 'HIT' : 'STALE';
        if (trace !== null) trace.cache = status;
        cache.serve(req, res, v.entry, status, edge);
        return true;
      }
      case 'miss':
        if (trace !== null) trace.cache = 'MISS';
        setHeaders(res, edge);
        cache.mark(res, 'MISS');
        v.fill.attach(req, res, edge);
        try {
          this.#php(req, res, target, route, client, trace, v.fill, NO_HEADERS);
        } catch (err) {
          v.fill.onEnd(false); // a fill left open would hold every later miss of its key for lock_ms
          throw err;
        }
        return true;
      case 'wait': {
        // (HTTP/2's compatibility response has no `destroyed`: its 'close' tells that the client left.)
        let gone = false;
        res.once('close', () => (gone = true));
        v.fill.wait(cache.lockMs, () => {
          if (gone) return; // the client left while it waited
          try {
            if (this.#fromCache(req, res, target, route, client, edge, trace, false)) return;
            this.#php(req, res, target, route, client, trace, null, edge);
          } catch (err) {
            this.#failed(req, res, err);
          }
        });
        return true;
      }
      case 'pass':
      case 'bypass': {
        const status = v.kind === 'pass' ? 'MISS' : 'BYPASS';
        if (trace !== null) trace.cache = status;
        cache.mark(res, status);
        return false;
      }
    }
  }

  /**
   * The gateway's own error answer: the configured error page (nginx `error_page 404 /404.html;`), served under
   * the error's status, or the short built-in page. A PHP error page runs as a GET with the original
   * REQUEST_URI, as nginx's internal redirect does; an error page that itself fails gets the built-in page.
   */
  answerError(req: IncomingMessage, res: ServerResponse, status: number, target: ParsedTarget | null, headers?: OutgoingHttpHeaders): void {
    const page = target === null ? undefined : this.#o.errorPages.get(status);
    if (page === undefined || target === null) {
      sendError(req, res, status, headers);
      return;
    }
    if (headers !== undefined) for (const [k, v] of Object.entries(headers)) if (v !== undefined) res.setHeader(k, v);
    const route = this.#o.router.resolve(page.path, page.query);
    if (route.kind === RouteKind.Static) {
      this.#o.static.sendPage(req, res, route.file, route.stat, status);
    } else if (route.kind === RouteKind.Php) {
      const pool = this.#pool(route.pool);
      if (pool === undefined) sendError(req, res, status);
      // The client's body (if any) is not for the error page; node discards it once the answer is sent.
      else this.#startPhp(req, res, target, route, pool, EMPTY_BODY, '', req.method === 'HEAD' ? 'HEAD' : 'GET', status, this.#o.clients.resolve(req), null, null, NO_HEADERS);
    } else {
      sendError(req, res, status);
    }
  }

  /**
   * An HTTP/1.1 request with an Upgrade header, which node hands over raw with its socket (the listener asks only
   * while some upstream takes websockets). A websocket handshake on such an upstream's path is taken: tunnelled,
   * or refused by the rate limits. Anything else (h2c, a websocket to a PHP path) is not (false): the listener
   * serves it as an ordinary request.
   */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = req.url ?? '';
    const target = url.length > this.#o.maxUrlBytes || hasSeveralHosts(req.rawHeaders) ? null : parseTarget(url);
    const upstream = target === null || this.#o.upstreams === null ? null : this.#o.upstreams.match(target.path);
    if (target === null || upstream === null || !upstream.websockets || !isWebSocketHandshake(req)) return false;
    // node's server let go of the socket: a client that vanishes now must not become an uncaught error.
    socket.on('error', ignoreUpgradeSocketError);
    const client = this.#o.clients.resolve(req);
    const tunnel = new WebSocketTunnel(req, socket as Socket, head, upstream, target, client, this.#proxy, this.#o.upstreams!.tunnels);
    const verdict = this.#o.rateLimit === null ? null : this.#o.rateLimit.check(target.path, client.address, req);
    if (verdict === null) {
      tunnel.start();
      return true;
    }
    verdict.then(
      (v) => {
        if (v.allowed) {
          tunnel.start();
          return;
        }
        const res = responseOnSocket(req, socket);
        setHeaders(res, v.headers);
        this.answerError(req, res, 429, null);
      },
      (err: unknown) => {
        this.#o.log.error({ err, url }, 'rate limiter failed; the websocket passes');
        tunnel.start();
      },
    );
    return true;
  }

  #overMaxBody(req: IncomingMessage): boolean {
    const declared = req.headers['content-length'];
    return declared !== undefined && Number(declared) > this.#o.maxBodyBytes;
  }

  #pool(name: string): Pool | undefined {
    return this.#o.poolsNow().get(name) ?? this.#o.pools.get(name);
  }

  /**
   * A relative Location (RFC 9110 §10.2.2 allows it): nginx builds an absolute one from the Host header and its
   * own listen port, which is wrong behind a load balancer and echoes an unchecked Host back to the client.
   */
  #redirect(req: IncomingMessage, res: ServerResponse, location: string): void {
    sendError(req, res, 301, { Location: location });
  }

  /** `edge`: security headers not yet on the response; PHP's head (or an error answer) gets them. */
  #php(req: IncomingMessage, res: ServerResponse, target: ParsedTarget, route: PhpRoute, client: ClientInfo, trace: RequestTrace | null,
    fill: CacheFill | null, edge: HeaderList): void {
    const pool = this.#pool(route.pool);
    if (pool === undefined) {
      setHeaders(res, edge);
      // config/ validated pool names; a miss here is a bug worth a loud log, not a crash.
      this.#o.log.error({ pool: route.pool }, 'route names a pool that does not exist');
      fill?.onEnd(false);
      sendError(req, res, 500);
      return;
    }
    const declared = req.headers['content-length'];
    const method = req.method ?? 'GET';
    if (bodyKind(req) === BodyKind.None) {
      this.#startPhp(req, res, target, route, pool, EMPTY_BODY, declared === '0' ? '0' : '', method, 0, client, trace, fill, edge);
      return;
    }
    // With `Expect: 100-continue` the client waits for our go-ahead: given only now that the body will be read
    // (the gateway handles checkContinue itself, so a refused upload never gets a 100 first).
    if (expectsContinue(req)) res.writeContinue();
    readBody(req, this.#o.maxBodyBytes, this.#o.bodyTimeoutMs).then(
      (body) => this.#startPhp(req, res, target, route, pool, body, String(body.length), method, 0, client, trace, null, edge),
      (err: PhpgateError) => {
        if (err.code === ErrorCode.ClientAborted) return; // nobody left to answer
        setHeaders(res, edge);
        // The rest of the body is unread: the connection can't carry another request.
        closeAfter(req, res);
        this.answerError(req, res, statusForError(err.code), target);
      },
    );
  }

  /** `forceStatus` (an error page's status) replaces PHP's own, as nginx's error_page without `=` does. */
  #startPhp(req: IncomingMessage, res: ServerResponse, target: ParsedTarget, route: PhpRoute, pool: Pool, body: RequestBody,
    contentLength: string, method: string, forceStatus: number, client: ClientInfo, trace: RequestTrace | null, fill: CacheFill | null,
    edge: HeaderList): void {
    // Looked up again: the body may have arrived after a reload replaced the pool this request was routed to.
    pool = this.#pool(pool.poolName) ?? pool;
    const socket = req.socket;
    const cgi: CgiRequest = {
      method,
      requestUri: target.requestUri,
      queryString: route.queryString,
      scriptName: route.scriptName,
      pathInfo: route.pathInfo,
      // nginx's `try_files $fastcgi_script_name` sets $uri to the script, so DOCUMENT_URI is the script name.
      documentUri: route.scriptName,
      documentRoot: this.#o.router.documentRoot,
      scriptFilename: route.scriptFilename,
      serverProtocol: `HTTP/${req.httpVersion}`,
      https: client.https,
      remoteAddr: client.address,
      remotePort: client.port,
      serverAddr: unmapIPv4(socket.localAddress ?? ''),
      serverPort: socket.localPort ?? 0,
      serverName: this.#o.serverName,
      contentType: req.headers['content-type'] ?? '',
      contentLength,
      // Filling the cache, PHP must answer in full (a 304 or 206 for this client's validators is nothing to store),
      // as nginx does not pass conditional headers to a cached upstream.
      rawHeaders: fill === null ? req.rawHeaders : withoutConditionals(req.rawHeaders),
      authority: target.authority,
    };
    const params = buildCgiParams(cgi, this.#o.serverSoftware);
    const label = `${cgi.method} ${target.requestUri} → ${route.scriptName}`;
    // An error page that fails itself gets the built-in page (no target), never another round of error pages.
    if (trace !== null) trace.pool = pool.poolName;
    new PhpExchange(req, res, pool, params, body, label, this.#exchange, forceStatus === 0 ? target : null, forceStatus, trace, fill, edge)
      .start();
  }
}

const NO_HEADERS: HeaderList = [];

const CONDITIONALS: ReadonlySet<string> = new Set(['if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since', 'if-range', 'range']);

function withoutConditionals(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (!CONDITIONALS.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  return out;
}


function hasSeveralHosts(raw: readonly string[]): boolean {
  let seen = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') {
      if (seen) return true;
      seen = true;
    }
  }
  return false;
}

/** RFC 6455 §4.1: a GET with `Upgrade: websocket` (h2c and other upgrades are not websockets). */
function isWebSocketHandshake(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  return req.method === 'GET' && upgrade !== undefined && upgrade.toLowerCase() === 'websocket';
}

/** The upgrade socket's errors end it (its 'close' follows); the answer or tunnel on it learns of that there. */
function ignoreUpgradeSocketError(): void {}
