/**
 * The one http-proxy-3 instance of a configuration and how its events find the exchange a call belongs to.
 */
import http, { type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { ProxyServer, ServerOptions } from 'http-proxy-3';
import { createRequire } from 'node:module';
import type { Logger } from '../../../core/log.js';

/** The per-call options key under which http-proxy-3's events find the exchange an upstream request belongs to. */
export const ATTEMPT = Symbol('phpgate.upstream-attempt');

export interface Attempt {
  /** http-proxy-3 made the upstream request (its 'proxyReq' / 'proxyReqWs' event). */
  onProxyRequest(proxyReq: ClientRequest): void;
  /** The request body has no length: it must go out chunked. */
  readonly chunked: boolean;
}

export type AttemptOptions = ServerOptions & { readonly [ATTEMPT]: Attempt };

function attemptOf(options: ServerOptions): Attempt {
  return (options as AttemptOptions)[ATTEMPT];
}

/**
 * The one http-proxy-3 instance of a configuration. Its options hold for every call: the gateway writes the
 * answer itself (selfHandleResponse), and the path it passes is sent as it is (toProxy: http-proxy-3 would
 * otherwise re-parse it as a WHATWG URL, which rewrites `%2e%2e` and `\`), after the target URL's own path.
 */
export function createProxy(log: Logger): ProxyServer {
  // Loaded here, with the first upstream: a gateway without upstreams does not pay its memory.
  const { createProxyServer } = createRequire(import.meta.url)('http-proxy-3') as typeof import('http-proxy-3');
  const proxy = createProxyServer({ selfHandleResponse: true, toProxy: true, prependPath: true });
  proxy.before('web', 'stream', keepChunkedFraming);
  proxy.on('proxyReq', (proxyReq, _req, _res, options) => attemptOf(options).onProxyRequest(proxyReq));
  proxy.on('proxyReqWs', (proxyReq, _req, _socket, options) => attemptOf(options).onProxyRequest(proxyReq));
  // Every call passes its own error callback, so only a websocket client's socket errors arrive here (and
  // http-proxy-3 would rethrow them without a listener). The tunnel closes with the socket.
  proxy.on('error', (err, _req, socket) => {
    log.debug({ err }, 'websocket client connection failed');
    if (!(socket instanceof http.ServerResponse)) socket.destroy();
  });
  return proxy;
}

/**
 * http-proxy-3's deleteLength pass gives a DELETE or OPTIONS without Content-Length a `Content-Length: 0` and drops
 * Transfer-Encoding, even when a chunked body follows: that body would reach the upstream unframed, where it reads
 * as the next request (request smuggling). Run just before the upstream request is made, this puts the framing back.
 */
function keepChunkedFraming(req: IncomingMessage, _res: ServerResponse, options: ServerOptions): void {
  if (!attemptOf(options).chunked) return;
  delete req.headers['content-length'];
  req.headers['transfer-encoding'] = 'chunked';
}
