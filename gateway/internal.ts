/**
 * Requests the gateway makes itself for a client's request, as nginx's internal redirects: the configured error
 * pages (error_page) and the targets of X-Accel-Redirect, with `static.internal` locations reachable only this way.
 */
import fs from 'node:fs';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import path from 'node:path';
import type { Logger } from '../core/log.js';
import type { InternalLocation } from '../config/types.js';
import type { StaticFiles } from './handlers/static.js';
import { sendError, type ErrorResponder } from './http/errors-http.js';
import { Exchange, type ExchangeContext, type InternalRedirects } from './http/exchange.js';
import type { HeaderList } from './http/response-head.js';
import type { ResponseSink } from './http/sink.js';
import { parseTarget, type ParsedTarget } from './http/uri.js';
import { RouteKind, type ErrorRoute, type PhpRoute, type RedirectRoute, type Route } from './route/router.js';

/** nginx's error_page target, and the status it is answered with (0: the page's own, nginx's `= URI`). */
export interface ErrorPage {
  readonly target: ParsedTarget;
  readonly status: number;
}

export interface InternalRequestsOptions {
  /** What answers a URI inside the gateway (the routes, as an internal redirect; else the router). */
  readonly route: (req: IncomingMessage, target: ParsedTarget) => Route;
  readonly static: StaticFiles;
  /** nginx error_page: status → URI answering the gateway's own errors. */
  readonly errorPages: ReadonlyMap<number, ErrorPage>;
  /** static.internal: prefixes reachable only by internal redirect, and their directories. */
  readonly internal: readonly InternalLocation[];
  readonly cx: ExchangeContext;
  /** Runs `route` for the exchange as `method` without a body into `sink`; false when its pool does not exist. */
  readonly php: (x: Exchange, target: ParsedTarget, route: PhpRoute, method: string, sink: ResponseSink) => boolean;
  readonly log: Logger;
}

const NO_HEADERS: HeaderList = [];

export class InternalRequests implements ErrorResponder, InternalRedirects {
  readonly #o: InternalRequestsOptions;

  constructor(o: InternalRequestsOptions) {
    this.#o = o;
  }

  /**
   * nginx's internal redirect for X-Accel-Redirect: the URI is answered for this request as a GET (a HEAD stays a
   * HEAD), from an internal location or as any file or script of the site; REQUEST_URI stays the client's. An
   * unsafe URI (dot segments, a NUL) is a 404, as nginx's ngx_http_parse_unsafe_uri makes it.
   */
  redirect(x: Exchange, uri: string, carried: string[], sink: ResponseSink): void {
    const target = /(?:^|\/)\.\.?(?:\/|\?|$)|%2e|%00|\\/i.test(uri.split('?', 1)[0]!) ? null : parseTarget(uri);
    if (target === null || !uri.startsWith('/')) {
      this.#o.log.warn({ uri, url: x.req.url }, 'X-Accel-Redirect to an unusable URI; answered 404');
      x.refuse(404);
      return;
    }
    const method = x.req.method === 'HEAD' ? 'HEAD' : 'GET';
    const internal = this.#internalFor(target.path);
    if (internal !== null) {
      const file = path.join(internal.alias, target.path.slice(internal.prefix.length));
      // A blocking stat, as the router's (nginx's open_file_cache does the same). No such file, a name too long, a
      // loop of symlinks, no permission: 404, as nginx answers a target it cannot open.
      let stat: fs.Stats | undefined;
      try {
        stat = fs.statSync(file, { throwIfNoEntry: false });
      } catch (err) {
        this.#o.log.debug({ err, file }, 'X-Accel-Redirect target cannot be looked up; answered 404');
      }
      if (stat === undefined || !stat.isFile()) x.refuse(404);
      else this.#o.static.serve(x, sink, file, stat, target.path, carried, method);
      return;
    }
    const route = this.#o.route(x.req, target);
    switch (route.kind) {
      case RouteKind.Static:
        this.#o.static.serve(x, sink, route.file, route.stat, target.path, carried, method);
        return;
      case RouteKind.Php:
        // The script's own X-Accel-Redirect is not followed again (its sink has no such filter): no loops.
        if (!this.#o.php(x, x.target!, route, method, sink)) x.refuse(500);
        return;
      case RouteKind.Error:
      case RouteKind.Redirect:
        refuseRoute(x, route);
        return;
    }
  }

  /** nginx's `internal`: such a location answers a client as if it did not exist. */
  isInternal(uriPath: string): boolean {
    return this.#internalFor(uriPath) !== null;
  }

  #internalFor(uriPath: string): InternalLocation | null {
    for (const l of this.#o.internal) if (uriPath.startsWith(l.prefix)) return l;
    return null;
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
    const route = this.#o.route(req, page.target);
    if (route.kind === RouteKind.Static) {
      this.#o.static.sendPage(req, res, route.file, route.stat, page.status === 0 ? 200 : page.status);
    } else if (route.kind === RouteKind.Php) {
      // The client's body (if any) is not for the error page; node discards it once the answer is sent. No target:
      // an error page that fails gets the built-in page, never another round of error pages.
      const x = new Exchange(req, res, this.#o.cx, null, NO_HEADERS, null, page.status);
      if (!this.#o.php(x, target, route, req.method === 'HEAD' ? 'HEAD' : 'GET', x)) sendError(req, res, status);
    } else {
      sendError(req, res, status);
    }
  }
}

/**
 * The router's refusals, answered on the exchange: an error status, or a redirect with a relative Location (RFC
 * 9110 §10.2.2 allows it): nginx builds an absolute one from the Host header and its own listen port, which is
 * wrong behind a load balancer and echoes an unchecked Host back.
 */
export function refuseRoute(x: Exchange, route: ErrorRoute | RedirectRoute): void {
  if (route.kind === RouteKind.Error) x.refuse(route.status);
  else x.refuse(route.status, { Location: route.location });
}

/** static.error_pages as the pipeline uses them. */
export function compileErrorPages(pages: Readonly<Record<string, string>>): Map<number, ErrorPage> {
  const out = new Map<number, ErrorPage>();
  for (const [status, value] of Object.entries(pages)) {
    // config/ checked the form: [= | =CODE] URI.
    const m = /^(?:=(\d{3})?\s+)?(\/.*)$/.exec(value)!;
    // A page named with non-ASCII letters (or a space) is written as it is: encoded here to the request form.
    const target = parseTarget(m[2]!.replace(/[^\x21-\x7e]/gu, (c) => encodeURIComponent(c)));
    const answer = value.startsWith('=') ? (m[1] === undefined ? 0 : Number(m[1])) : Number(status);
    if (target !== null) out.set(Number(status), { target, status: answer });
  }
  return out;
}
