/**
 * A request's journey, top to bottom: parse the target → route → answer (error, redirect, static file, PHP).
 * Later stages (admin endpoints, rate limits, security headers, cache, compression) slot in here, in order.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode, type PhpgateError } from '../config/errors.js';
import { buildCgiParams, type CgiRequest } from '../php/cgi-env.js';
import type { Pool } from '../php/pool.js';
import { EMPTY_BODY, readBody, type RequestBody } from './body.js';
import { sendError, statusForError } from './errors-http.js';
import type { Logger } from './log.js';
import { PhpExchange } from './php-exchange.js';
import { RouteKind, type PhpRoute, type Router } from './router.js';
import { serveStatic } from './static.js';
import { parseTarget, type ParsedTarget } from './uri.js';

export interface PipelineOptions {
  readonly router: Router;
  readonly pools: ReadonlyMap<string, Pool>;
  readonly maxBodyBytes: number;
  /** Longest silence while a request body arrives (server.timeouts.body_ms). */
  readonly bodyTimeoutMs: number;
  readonly serverName: string;
  readonly serverSoftware: string;
  readonly log: Logger;
}

export class Pipeline {
  readonly #o: PipelineOptions;

  constructor(o: PipelineOptions) {
    this.#o = o;
  }

  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    const target = parseTarget(req.url ?? '');
    if (target === null) {
      sendError(req, res, 400);
      return;
    }
    const route = this.#o.router.resolve(target.path, target.query);
    switch (route.kind) {
      case RouteKind.Error:
        sendError(req, res, route.status);
        return;
      case RouteKind.Redirect:
        this.#redirect(req, res, route.location);
        return;
      case RouteKind.Static:
        serveStatic(req, res, route.file, route.stat);
        return;
      case RouteKind.Php:
        this.#php(req, res, target, route);
        return;
    }
  };

  /**
   * A relative Location (RFC 9110 §10.2.2 allows it): nginx builds an absolute one from the Host header and its
   * own listen port, which is wrong behind a load balancer and echoes an unchecked Host back to the client.
   */
  #redirect(req: IncomingMessage, res: ServerResponse, location: string): void {
    sendError(req, res, 301, { Location: location });
  }

  #php(req: IncomingMessage, res: ServerResponse, target: ParsedTarget, route: PhpRoute): void {
    const pool = this.#o.pools.get(route.pool);
    if (pool === undefined) {
      // config/ validated pool names; a miss here is a bug worth a loud log, not a crash.
      this.#o.log.error({ pool: route.pool }, 'route names a pool that does not exist');
      sendError(req, res, 500);
      return;
    }
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > this.#o.maxBodyBytes) {
      // nginx answers client_max_body_size before reading a byte of the body, and so do we.
      res.setHeader('Connection', 'close');
      sendError(req, res, 413);
      return;
    }
    const hasBody = (declared !== undefined && declared !== '0') || req.headers['transfer-encoding'] !== undefined;
    if (!hasBody) {
      this.#startPhp(req, res, target, route, pool, EMPTY_BODY, declared === '0' ? '0' : '');
      return;
    }
    readBody(req, this.#o.maxBodyBytes, this.#o.bodyTimeoutMs).then(
      (body) => this.#startPhp(req, res, target, route, pool, body, String(body.length)),
      (err: PhpgateError) => {
        if (err.code === ErrorCode.ClientAborted) return; // nobody left to answer
        // The rest of the body is unread: the connection can't carry another request.
        res.setHeader('Connection', 'close');
        sendError(req, res, statusForError(err.code));
      },
    );
  }

  #startPhp(req: IncomingMessage, res: ServerResponse, target: ParsedTarget, route: PhpRoute, pool: Pool, body: RequestBody, contentLength: string): void {
    const socket = req.socket;
    const cgi: CgiRequest = {
      method: req.method ?? 'GET',
      requestUri: target.requestUri,
      queryString: route.queryString,
      scriptName: route.scriptName,
      pathInfo: route.pathInfo,
      // nginx's `try_files $fastcgi_script_name` sets $uri to the script, so DOCUMENT_URI is the script name.
      documentUri: route.scriptName,
      documentRoot: this.#o.router.documentRoot,
      scriptFilename: route.scriptFilename,
      serverProtocol: `HTTP/${req.httpVersion}`,
      https: isTls(req),
      remoteAddr: unmapIPv4(socket.remoteAddress ?? ''),
      remotePort: socket.remotePort ?? 0,
      serverAddr: unmapIPv4(socket.localAddress ?? ''),
      serverPort: socket.localPort ?? 0,
      serverName: this.#o.serverName,
      contentType: req.headers['content-type'] ?? '',
      contentLength,
      rawHeaders: req.rawHeaders,
      authority: target.authority,
    };
    const params = buildCgiParams(cgi, this.#o.serverSoftware);
    const label = `${cgi.method} ${target.requestUri} → ${route.scriptName}`;
    new PhpExchange(req, res, pool, params, body, label, this.#o.log).start();
  }
}

function isTls(req: IncomingMessage): boolean {
  return (req.socket as { encrypted?: boolean }).encrypted === true;
}

/** A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d; PHP apps expect the plain IPv4 form. */
function unmapIPv4(addr: string): string {
  return addr.startsWith('::ffff:') && addr.indexOf('.') !== -1 ? addr.slice(7) : addr;
}
