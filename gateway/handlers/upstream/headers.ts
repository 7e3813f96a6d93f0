/**
 * The headers that cross the reverse proxy, both ways, as nginx's proxy module decides them:
 *
 *   to the upstream:   hop-by-hop headers stay behind (RFC 9110 §7.6.1, and whatever Connection names), and so do
 *                      Expect (the gateway answers 100-continue itself) and TE, as nginx sends them empty; the
 *                      upstream learns who the client is from X-Forwarded-For/-Proto/-Host and X-Real-IP, and the
 *                      request's id from X-Request-Id (the access log's).
 *   to the client:     hop-by-hop headers stay behind too, and so do the upstream's Date, Server and X-Accel-*
 *                      (nginx's proxy_hide_header defaults): the gateway's own Date and Server go out instead;
 *                      a Location pointing at the target is rewritten to point through the gateway (proxy_redirect).
 *
 * Pure functions over header objects and lists; no sockets.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { HOP_BY_HOP } from '../../../php/response.js';

/** Request headers never forwarded besides the hop-by-hop ones. */
const NOT_FORWARDED = new Set(['expect', 'http2-settings']);

/**
 * nginx's ignore_invalid_headers with underscores_in_headers off: a name with anything but letters, digits and '-'
 * is dropped (`X_Forwarded_For` would reach an app that folds '_' and '-' together as the real header).
 */
const VALID_NAME = /^[a-z0-9-]+$/;

/** Response headers never passed to the client besides the hop-by-hop ones (nginx proxy_hide_header). */
const HIDDEN = new Set(['date', 'server', 'x-pad']);

/**
 * Who sent the request and how, as the upstream is told. From a sender that is not a trusted proxy, X-Forwarded-*,
 * Forwarded and X-Real-IP are claims anyone can make: they are removed, then set from what the gateway knows.
 */
export interface Forwarding {
  /** X-Forwarded-For: the received list (trusted senders only) and the sender (TrustedProxies.forwardedChain). */
  readonly chain: string;
  /** The sender is a trusted proxy: its X-Forwarded-* headers are passed on, X-Forwarded-Host among them. */
  readonly believed: boolean;
  /** X-Real-IP: the client after server.trusted_proxies (nginx $remote_addr with real_ip). */
  readonly clientAddress: string;
  readonly https: boolean;
  /** A websocket handshake: Upgrade and `Connection: upgrade` are kept. */
  readonly upgrade: boolean;
  /** A body of unknown length follows (chunked HTTP/1.1, or HTTP/2 without Content-Length): sent chunked. */
  readonly chunked: boolean;
  /** X-Request-Id: the access log's id (a trusted proxy's, or the gateway's own), replacing any a client sent; '' : as received. */
  readonly requestId: string;
}

/**
 * Turns a request's headers into the upstream's, in place: http-proxy-3 copies `req.headers` into the upstream
 * request (its own X-Forwarded pass works the same way). HTTP/2 pseudo-headers stay: node's compatibility request
 * reads its method and URL from them, and http-proxy-3 leaves them out of what it sends (it sends :authority as Host).
 */
export function prepareRequestHeaders(h: IncomingHttpHeaders, f: Forwarding): void {
  const host = h.host ?? (h[':authority'] as string | undefined);
  const upgrade = h.upgrade;
  const connection = h.connection;
  if (connection !== undefined) {
    for (const token of connection.split(',')) {
      const name = token.trim().toLowerCase();
      // Never the framing or the host: a client must not make the proxy send a body without its length.
      if (name !== 'content-length' && name !== 'host') delete h[name];
    }
  }
  for (const name in h) {
    if (HOP_BY_HOP.has(name) || NOT_FORWARDED.has(name)) delete h[name];
    else if (!VALID_NAME.test(name) && name.charCodeAt(0) !== 58 /* ':' an HTTP/2 pseudo-header */) delete h[name];
    else if (!f.believed && (name === 'forwarded' || name === 'x-real-ip' || name.startsWith('x-forwarded-'))) delete h[name];
  }
  h['x-forwarded-for'] = f.chain;
  h['x-forwarded-proto'] = f.https ? 'https' : 'http';
  if (h['x-forwarded-host'] === undefined && host !== undefined) h['x-forwarded-host'] = host;
  h['x-real-ip'] = f.clientAddress;
  if (f.requestId !== '') h['x-request-id'] = f.requestId;
  if (f.upgrade && upgrade !== undefined) {
    h.connection = 'upgrade';
    h.upgrade = upgrade;
  }
  if (f.chunked) {
    delete h['content-length'];
    h['transfer-encoding'] = 'chunked';
  }
}

/**
 * nginx's `proxy_redirect default`: a Location that points at the target itself (`http://127.0.0.1:3000/login`,
 * made by an app that knows only its own address) is made to point through the gateway (`/api/node/login` with
 * strip_prefix "/api/node").
 */
export interface RedirectRewrite {
  /** The target's origin and path, ending in "/". */
  readonly from: string;
  /** strip_prefix and "/", or "/". */
  readonly to: string;
}

/**
 * The upstream's response headers (node's rawHeaders: alternating names and values, repeats kept apart) as the
 * client gets them. The list is reused when nothing changes.
 */
export function responseHeaders(raw: string[], stripPoweredBy: boolean, redirect: RedirectRewrite): string[] {
  let named: Set<string> | null = null;
  let change = false;
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase();
    if (lower === 'connection') named = connectionTokens(raw[i + 1]!, named);
    if (!change) change = isHidden(lower, stripPoweredBy) || (lower === 'location' && raw[i + 1]!.startsWith(redirect.from));
  }
  if (!change && named === null) return raw;
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase();
    if (isHidden(lower, stripPoweredBy) || (named !== null && named.has(lower))) continue;
    const value = raw[i + 1]!;
    out.push(raw[i]!, lower === 'location' && value.startsWith(redirect.from) ? redirect.to + value.slice(redirect.from.length) : value);
  }
  return out;
}

function isHidden(lower: string, stripPoweredBy: boolean): boolean {
  return HOP_BY_HOP.has(lower) || HIDDEN.has(lower) || lower.startsWith('x-accel-') || (stripPoweredBy && lower === 'x-powered-by');
}

function connectionTokens(value: string, into: Set<string> | null): Set<string> {
  const out = into ?? new Set<string>();
  for (const token of value.split(',')) out.add(token.trim().toLowerCase());
  return out;
}
