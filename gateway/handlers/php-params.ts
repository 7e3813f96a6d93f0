/** The CGI environment of one PHP request, from what the front and the router know (php/cgi-env.ts builds it). */
import { buildCgiParams, type CgiParams, type CgiRequest } from '../../php/cgi-env.js';
import { unmapIPv4, type ClientInfo } from '../http/client-address.js';
import type { Exchange } from '../http/exchange.js';
import { cgiHost, withoutConditionals } from '../http/request.js';
import type { ParsedTarget } from '../http/uri.js';

/** The script a request runs, as the router resolved it. */
export interface PhpScript {
  readonly scriptName: string;
  /** null: PHP gets no PATH_INFO (a route without split_path_info). */
  readonly pathInfo: string | null;
  readonly scriptFilename: string;
  /** nginx's $args after any rewrite. */
  readonly queryString: string;
  /** nginx's $document_uri when routes: chose the script (the URI after rewrites and try_files); else the script name. */
  readonly documentUri?: string;
}

/** What every PHP request of one configuration shares. */
export interface PhpSite {
  readonly documentRoot: string;
  readonly serverName: string;
  readonly serverSoftware: string;
  /** PHP always gets HTTP_X_REQUEST_ID = the request's id; otherwise only an X-Request-Id header as sent (as nginx). */
  readonly requestIdToPhp: boolean;
}

/**
 * `target`: the request as the client sent it (REQUEST_URI stays the original after an error page or an internal
 * redirect, as nginx's $request_uri does). `method` and `contentLength` as PHP must see them (an error page or internal redirect runs as a GET without a
 * body); `forFill`: the answer fills a cache entry, so PHP gets no validators and must answer in full.
 */
export function phpParams(
  x: Exchange,
  target: ParsedTarget,
  script: PhpScript,
  site: PhpSite,
  client: ClientInfo,
  method: string,
  contentLength: string,
  forFill: boolean,
): CgiParams {
  const req = x.req;
  const socket = req.socket;
  const raw = forFill ? withoutConditionals(req.rawHeaders) : req.rawHeaders;
  const cgi: CgiRequest = {
    method,
    requestUri: target.requestUri,
    queryString: script.queryString,
    scriptName: script.scriptName,
    pathInfo: script.pathInfo,
    // nginx's `try_files $fastcgi_script_name` sets $uri to the script, so DOCUMENT_URI is the script name.
    documentUri: script.documentUri ?? script.scriptName,
    documentRoot: site.documentRoot,
    scriptFilename: script.scriptFilename,
    serverProtocol: `HTTP/${req.httpVersion}`,
    https: client.https,
    remoteAddr: client.address,
    remotePort: client.port,
    serverAddr: unmapIPv4(socket.localAddress ?? ''),
    serverPort: socket.localPort ?? 0,
    serverName: site.serverName,
    contentType: req.headers['content-type'] ?? '',
    contentLength,
    rawHeaders: site.requestIdToPhp && x.requestId !== '' ? withRequestId(raw, x.requestId) : raw,
    host: cgiHost(req, target, site.serverName),
  };
  return buildCgiParams(cgi, site.serverSoftware);
}

/** The headers with X-Request-Id set to `id`: a client's own (untrusted) one is replaced, never joined to it. */
function withRequestId(raw: readonly string[], id: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length !== 12 || name.toLowerCase() !== 'x-request-id') out.push(name, raw[i + 1]!);
  }
  out.push('X-Request-Id', id);
  return out;
}
