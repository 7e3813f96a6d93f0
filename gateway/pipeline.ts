/**
 * A request's journey, top to bottom: parse the target → gates (health, limits, rate limits) → route → a handler
 * producing into its sink chain. The only file that knows both handlers/ and filters/: it composes them.
 *
 *   producer (PHP, upstream, static file, cached entry)
 *     → [cache fill] → [X-Accel-Redirect: PHP only] → [compression] → Exchange (security headers, framing, the client)
 *
 * A filter is in the chain only when it can act: no cache rule, no fill; compression off or no Accept-Encoding, no
 * compressor.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { ErrorCode, type PhpgateError } from '../core/errors.js';
import type { Pool } from '../php/pool.js';
import { healthAnswer, sendHealth } from './admin/health.js';
import { AccelRedirectFilter } from './filters/accel-redirect.js';
import type { CacheFill } from './filters/cache/fill.js';
import { serveEntry } from './filters/cache/serve.js';
import type { CacheLookup } from './filters/cache/store.js';
import { RouteHeadersFilter } from './filters/route-headers.js';
import { CompressFilter } from './filters/compress.js';
import { PhpRequest } from './handlers/php.js';
import { phpParams, type PhpScript, type PhpSite } from './handlers/php-params.js';
import { ProxyExchange, type ProxyContext } from './handlers/upstream/proxy.js';
import { BodyKind, bodyKind, closeAfter, EMPTY_BODY, expectsContinue, readBody, type RequestBody } from './http/body.js';
import type { ClientInfo } from './http/client-address.js';
import { sendError, statusForError, type ErrorResponder } from './http/errors-http.js';
import { Exchange, type ExchangeContext } from './http/exchange.js';
import { hasHttp10TransferEncoding, hasInvalidHead, versionRefusal } from './http/request.js';
import { answerText, setHeaders } from './http/response-head.js';
import type { ResponseSink } from './http/sink.js';
import { RequestTrace } from './http/trace.js';
import { parseTarget, type ParsedTarget } from './http/uri.js';
import { RouteKind, type PhpRoute, type Route } from './route/router.js';
import { asRoute, type Decision } from './route/routes.js';
import { Upgrades } from './upgrade.js';
import { InternalRequests, refuseRoute } from './internal.js';
import type { Job, PipelineOptions } from './pipeline-options.js';

export type { PipelineOptions } from './pipeline-options.js';

const BYPASSED: CacheLookup = { kind: 'bypass' };
const NOT_STORED: CacheLookup = { kind: 'pass' };

export class Pipeline implements ErrorResponder {
  readonly #o: PipelineOptions;
  readonly #cx: ExchangeContext;
  readonly #proxy: ProxyContext;
  readonly #site: PhpSite;
  readonly #upgrades: Upgrades;
  readonly #internal: InternalRequests;

  constructor(o: PipelineOptions) {
    this.#o = o;
    const { sendTimeoutMs, minSendRate, serverName, serverSoftware, requestIdToPhp } = o;
    this.#cx = { log: o.log, errors: this, sendTimeoutMs, minSendRate, stripPoweredBy: o.securityHeaders.stripPoweredBy };
    this.#proxy = { log: o.log, clients: o.clients, maxBodyBytes: o.maxBodyBytes };
    this.#site = { documentRoot: o.router.documentRoot, serverName, serverSoftware, requestIdToPhp };
    this.#upgrades = new Upgrades({ ...o, proxy: this.#proxy, errors: this });
    this.#internal = new InternalRequests({ ...o, cx: this.#cx, php: this.#internalPhp, route: this.#internalRoute });
  }

  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    if (res.socket === null) {
      // A pipelined request waits for its turn, as in nginx: started now, it would hold a PHP worker for an answer
      // that cannot be sent yet (and one connection could take every worker).
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
    const trace = this.#o.observers.length === 0 ? null : new RequestTrace(req, res, this.#o.observers, this.#o.clients);
    const url = req.url ?? '';
    if (this.#o.health !== null && (url === '/healthz' || url === '/readyz')) {
      // For load balancers: answered here, never routed to PHP, whatever the docroot holds.
      sendHealth(req, res, healthAnswer(url, this.#o.health)!);
      return;
    }
    if (url.length > this.#o.maxUrlBytes) {
      this.answerError(req, res, 414, null);
      return;
    }
    const refusal = versionRefusal(req); // HTTP/2.0 or 0.9 on an HTTP/1 connection: nothing after it can be trusted
    if (refusal !== 0) {
      sendError(req, res, refusal, { Connection: 'close' });
      return;
    }
    const target = parseTarget(url);
    if (target === null || hasInvalidHead(req, target)) {
      closeAfter(req, res);
      this.answerError(req, res, 400, null);
      return;
    }
    if (hasHttp10TransferEncoding(req)) {
      // RFC 9112 §6.1: faulty framing; the connection closes after this answer, whatever keep-alive was asked (smuggling).
      closeAfter(req, res);
    }
    const client = this.#o.clients.resolve(req);
    if (trace !== null) trace.client = client;
    const x = new Exchange(req, res, this.#cx, target, this.#o.securityHeaders.for(target.path, client.https), trace);
    const limiter = this.#o.rateLimit;
    const verdict = limiter === null ? null : limiter.check(target.path, client.address, req);
    if (verdict === null) {
      this.#route(x, client);
      return;
    }
    verdict.then(
      (v) => {
        try {
          setHeaders(res, v.headers);
          if (!v.allowed && x.trace !== null) x.trace.limitedBy = v.rule;
          if (v.allowed) this.#route(x, client);
          else x.refuse(429);
        } catch (err) {
          this.#failed(req, res, err);
        }
      },
      (err: unknown) => {
        // The limiter falls back to memory when Redis is down: a failure here is a bug, not a reason to refuse.
        this.#o.log.error({ err, url }, 'rate limiter failed; the request passes');
        try {
          this.#route(x, client);
        } catch (routeErr) {
          this.#failed(req, res, routeErr);
        }
      },
    );
  }

  #route(x: Exchange, client: ClientInfo): void {
    const req = x.req;
    const target = x.target!;
    if (this.#overMaxBody(req)) {
      // nginx's client_max_body_size, before a byte of the body is read, whatever the location (a static file or a
      // 404 would otherwise read and discard any announced body, however large).
      closeAfter(req, x.res);
      x.refuse(413);
      return;
    }
    if (this.#internal.isInternal(target.path)) {
      x.refuse(404); // nginx's `internal`: such a location answers a client as if it did not exist
      return;
    }
    // An upstream's pattern is an nginx `location … { proxy_pass …; }`: it takes the path before the docroot is asked.
    const upstream = this.#o.upstreams === null ? null : this.#o.upstreams.match(target.path);
    if (upstream !== null) {
      this.#job(x, client, { kind: 'upstream', upstream, tail: x, at: null, extras: null }, true);
      return;
    }
    if (this.#o.routes !== null) {
      this.#routed(x, client, this.#o.routes.resolve(req, target, client, this.#o.guards));
      return;
    }
    const route = this.#o.router.resolve(target.path, target.query);
    switch (route.kind) {
      case RouteKind.Static: {
        const refused = this.#o.static.serve(x, x, route.file, route.stat, target.path);
        if (refused !== 0) x.refuse(refused, { Allow: 'GET, HEAD' });
        return;
      }
      case RouteKind.Php:
        this.#job(x, client, { kind: 'php', route, tail: x, at: null, extras: null }, true);
        return;
      case RouteKind.Error:
      case RouteKind.Redirect:
        refuseRoute(x, route);
        return;
    }
  }

  /** A request routes: decided (routes.ts): the answer, through the route's headers and cache. */
  #routed(x: Exchange, client: ClientInfo, d: Decision): void {
    const at = d.at ?? null;
    const extras = d.extras ?? null;
    const tail = extras?.headers == null ? x : new RouteHeadersFilter(x, extras.headers);
    switch (d.kind) {
      case RouteKind.Static: {
        const refused = this.#o.static.serve(x, tail, d.file, d.stat, x.target!.path);
        if (refused !== 0) x.refuse(refused, { Allow: 'GET, HEAD' });
        return;
      }
      case RouteKind.Php:
        this.#job(x, client, { kind: 'php', route: d, tail, at, extras }, true);
        return;
      case 'proxy':
        this.#job(x, client, { kind: 'upstream', upstream: this.#o.routeUpstreams.get(d.at)!, tail, at, extras }, true);
        return;
      case 'text':
        answerText(tail, x.req.method, d.status, d.body);
        return;
      case 'redirect':
      case RouteKind.Redirect:
        x.refuse(d.status, { Location: d.location });
        return;
      case 'auth':
        x.refuse(401, { 'WWW-Authenticate': d.challenge });
        return;
      case 'wait':
        d.wait.then(
          () => this.#afterWait(x, client),
          (err: unknown) => this.#failed(x.req, x.res, err),
        );
        return;
      case RouteKind.Error:
        // nginx's 444: close the connection without an answer.
        if (d.status === 444) x.res.destroy();
        else x.refuse(d.status);
        return;
    }
  }

  /** auth_basic verified a password off the event loop: the route again, answered from the verifier's memory now. */
  #afterWait(x: Exchange, client: ClientInfo): void {
    if (x.gone) return;
    try {
      const again = this.#o.routes!.resolve(x.req, x.target!, client, this.#o.guards);
      if (again.kind === 'wait') x.refuse(503);
      else this.#routed(x, client, again);
    } catch (err) {
      this.#failed(x.req, x.res, err);
    }
  }

  /**
   * The response cache's turn, then the job. A cached answer is served without it; a miss runs it to fill an
   * entry; a miss while another request fills the same entry waits for that one (`mayWait` false: waited once).
   */
  #job(x: Exchange, client: ClientInfo, job: Job, mayWait: boolean): void {
    const cache = this.#o.cache;
    const own = job.at?.cache ?? null;
    const rule = cache === null ? null : own !== null ? cache.ruleOfRoute(own, job.at!.text) : cache.ruleFor(x.target!.path);
    // A route's cache, as nginx's fastcgi_cache_methods GET HEAD: other methods never meet it (no status header).
    if (rule === null || (own !== null && x.req.method !== 'GET' && x.req.method !== 'HEAD')) {
      this.#produce(x, client, job, null);
      return;
    }
    const trace = x.trace;
    if (trace !== null) trace.cacheRule = rule.label;
    const hasBody = bodyKind(x.req) !== BodyKind.None;
    let v = job.extras?.cacheBypass === true ? BYPASSED : cache!.lookup(rule, x.req, x.target!, client.https, hasBody, mayWait);
    if (v.kind === 'miss' && job.extras?.cacheNoStore === true) {
      // fastcgi_no_cache: an entry may be served, but this answer is not stored.
      v.fill.abandon();
      v = NOT_STORED;
    }
    switch (v.kind) {
      case 'hit':
      case 'stale': {
        const status = v.kind === 'hit' ? 'HIT' : 'STALE';
        if (trace !== null) trace.cache = status;
        serveEntry(cache!, x.req, v.entry, status, this.#compressing(x, job.tail));
        return;
      }
      case 'miss':
        if (trace !== null) trace.cache = 'MISS';
        try {
          this.#produce(x, client, job, v.fill);
        } catch (err) {
          v.fill.abandon(); // a fill left open would hold every later miss of its key for lock_ms
          throw err;
        }
        return;
      case 'wait':
        v.fill.wait(cache!.lockMs, () => {
          if (x.gone) return; // the client left while it waited
          try {
            this.#job(x, client, job, false);
          } catch (err) {
            this.#failed(x.req, x.res, err);
          }
        });
        return;
      case 'pass':
      case 'bypass': {
        const status = v.kind === 'pass' ? 'MISS' : 'BYPASS';
        if (trace !== null) trace.cache = status;
        if (cache!.header !== '') x.res.setHeader(cache!.header, status);
        this.#produce(x, client, job, null);
        return;
      }
    }
  }

  /** The job's answer through its filters: [fill] → [X-Accel-Redirect: PHP's answers] → [compression] → the exchange. */
  #produce(x: Exchange, client: ClientInfo, job: Job, fill: CacheFill | null): void {
    const out = this.#compressing(x, job.tail);
    let sink: ResponseSink = job.kind === 'php' ? new AccelRedirectFilter(out, x, this.#internal) : out;
    if (fill !== null) {
      fill.attach(x.req, sink);
      x.watch(fill);
      sink = fill;
    }
    if (job.kind === 'upstream') new ProxyExchange(x, sink, job.upstream, client, this.#proxy).start();
    else this.#php(x, client, job.route, sink, fill);
  }

  /** `tail` (the exchange, or a route's headers in front of it), behind a compressor when this client accepts an encoding. */
  #compressing(x: Exchange, tail: ResponseSink): ResponseSink {
    const compression = this.#o.compression;
    const accept = x.req.headers['accept-encoding'];
    if (!compression.enabled || accept === undefined || accept === '' || x.req.method === 'HEAD') return tail;
    const filter = new CompressFilter(tail, compression, accept, x.req.method, this.#o.log);
    x.watch(filter);
    return filter;
  }

  #php(x: Exchange, client: ClientInfo, route: PhpRoute, sink: ResponseSink, fill: CacheFill | null): void {
    const req = x.req;
    const pool = this.#pool(route.pool);
    if (pool === undefined) {
      this.#o.log.error({ pool: route.pool }, 'route names a pool that does not exist'); // config/ checked: a bug
      fill?.abandon();
      x.refuse(500);
      return;
    }
    const declared = req.headers['content-length'];
    const method = req.method ?? 'GET';
    if (bodyKind(req) === BodyKind.None) {
      this.#startPhp(x, x.target!, client, route, pool, EMPTY_BODY, declared === '0' ? '0' : '', method, sink, fill !== null);
      return;
    }
    // `Expect: 100-continue`: the go-ahead only now that the body will be read (a refused upload never gets a 100).
    if (expectsContinue(req)) x.res.writeContinue();
    readBody(req, this.#o.maxBodyBytes, this.#o.bodyTimeoutMs, this.#o.bodyMemory).then(
      (body) => this.#startPhp(x, x.target!, client, route, pool, body, String(body.length), method, sink, false),
      (err: PhpgateError) => {
        if (err.code === ErrorCode.ClientAborted) return; // nobody left to answer
        // The rest of the body is unread: the connection can't carry another request.
        closeAfter(req, x.res);
        x.refuse(statusForError(err.code));
      },
    );
  }

  #startPhp(
    x: Exchange,
    target: ParsedTarget,
    client: ClientInfo,
    script: PhpScript & { readonly pool: string },
    pool: Pool,
    body: RequestBody,
    contentLength: string,
    method: string,
    sink: ResponseSink,
    forFill: boolean,
  ): void {
    // Looked up again: the body may have arrived after a reload replaced the pool this request was routed to.
    const current = this.#pool(pool.poolName) ?? pool;
    const params = phpParams(x, target, script, this.#site, client, method, contentLength, forFill);
    const label = `${method} ${target.requestUri} → ${script.scriptName}`;
    new PhpRequest(x, this.#o.bufferPhp(x, sink), current, params, body, label, this.#o.log).start();
  }

  /** Internal requests run PHP through here: as a GET or HEAD without a body, into `sink`; false when the pool is gone. */
  #internalPhp = (x: Exchange, target: ParsedTarget, route: PhpRoute, method: string, sink: ResponseSink): boolean => {
    const pool = this.#pool(route.pool);
    if (pool === undefined) return false;
    this.#startPhp(x, target, this.#o.clients.resolve(x.req), route, pool, EMPTY_BODY, '', method, sink, false);
    return true;
  };

  /** An internal redirect's URI, through the routes (as nginx's `internal` locations see it) or the router. */
  #internalRoute = (req: IncomingMessage, target: ParsedTarget): Route => {
    const routes = this.#o.routes;
    if (routes === null) return this.#o.router.resolve(target.path, target.query);
    return asRoute(routes.resolve(req, target, this.#o.clients.resolve(req), this.#o.guards, true));
  };

  answerError(req: IncomingMessage, res: ServerResponse, status: number, target: ParsedTarget | null, headers?: OutgoingHttpHeaders): void {
    this.#internal.answerError(req, res, status, target, headers);
  }

  /** An HTTP/1.1 request with an Upgrade header (see upgrade.ts): true when it was taken. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    return this.#upgrades.take(req, socket, head);
  }

  #overMaxBody(req: IncomingMessage): boolean {
    const declared = req.headers['content-length'];
    return declared !== undefined && Number(declared) > this.#o.maxBodyBytes;
  }

  #pool(name: string): Pool | undefined {
    return this.#o.poolsNow().get(name) ?? this.#o.pools.get(name);
  }
}
