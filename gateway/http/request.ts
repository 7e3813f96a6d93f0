/** Small facts about a request's head that more than one stage asks. */
import type { IncomingMessage } from 'node:http';
import { H2Request } from './h2.js';
import type { ParsedTarget } from './uri.js';

/** RFC 9112 §3.2: more than one Host is a 400 (nginx: "client sent duplicate host header"). */
export function hasSeveralHosts(raw: readonly string[]): boolean {
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
export function isWebSocketHandshake(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  return req.method === 'GET' && upgrade !== undefined && upgrade.toLowerCase() === 'websocket';
}

const CONDITIONALS: ReadonlySet<string> = new Set(['if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since', 'if-range', 'range']);

/**
 * The request's headers without validators and Range: what a cache fill asks with, so the answer comes in full (a
 * 304 or 206 for this client's validators is nothing to store), as nginx does not pass them to a cached upstream.
 */
export function withoutConditionals(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (!CONDITIONALS.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  return out;
}

/** An HTTP/1.1 request with two Host headers (HTTP/2 has :authority, whose repeats node refuses itself). */
export function hasDuplicateHost(req: IncomingMessage): boolean {
  return req.httpVersionMajor === 1 && hasSeveralHosts(req.rawHeaders);
}

/** RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 request is faulty framing. */
export function hasHttp10TransferEncoding(req: IncomingMessage): boolean {
  return req.httpVersionMajor === 1 && req.httpVersionMinor === 0 && req.headers['transfer-encoding'] !== undefined;
}

/** What the request names as its host, as sent: an absolute target's authority, else Host or :authority (undefined: none). */
export function rawHost(req: IncomingMessage, target: ParsedTarget): string | undefined {
  return target.authority ?? req.headers.host ?? (req.headers[':authority'] as string | undefined);
}

/** nginx's $host from the request: the host without its port or a trailing dot, lower-case ('' when none). */
export function requestHost(req: IncomingMessage, target: ParsedTarget): string {
  const h = rawHost(req, target);
  return h === undefined ? '' : (parseHost(h) ?? '');
}

/**
 * nginx's ngx_http_validate_host: the host part of a Host value as $host, or null where nginx answers 400 ("client
 * sent invalid host header"): empty, "..", a slash, a space, a control character or NUL. What follows a ':' (or an
 * IPv6 literal's ']') is the port part, held to the same characters but not kept; a trailing dot is dropped.
 */
export function parseHost(h: string): string | null {
  let dot = -2; // nginx starts past the end: a leading dot passes
  let end = h.length;
  let state: 'usual' | 'literal' | 'rest' = 'usual';
  let upper = false;
  for (let i = 0; i < h.length; i++) {
    const c = h.charCodeAt(i);
    if (c === 0x2e /* . */) {
      if (dot === i - 1) return null;
      dot = i;
    } else if (c === 0x3a /* : */) {
      if (state === 'usual') {
        end = i;
        state = 'rest';
      }
    } else if (c === 0x5b /* [ */) {
      if (i === 0) state = 'literal';
    } else if (c === 0x5d /* ] */) {
      if (state === 'literal') {
        end = i + 1;
        state = 'rest';
      }
    } else if (c <= 0x20 || c === 0x7f || c === 0x2f /* / */) {
      return null;
    } else if (c >= 0x41 && c <= 0x5a) {
      upper = true;
    }
  }
  if (dot === end - 1) end--;
  if (end <= 0) return null;
  const host = h.slice(0, end);
  // ASCII only, as nginx's ngx_strlow: a byte above 0x7f stays as it came.
  return upper ? host.replace(/[A-Z]+/g, (m) => m.toLowerCase()) : host;
}

/**
 * What PHP sees as HTTP_HOST: nginx's `$host` (validated, lower-case, no port, as Debian's fastcgi_params passes it)
 * with the port kept when it is a number (nginx's `$host$is_request_port$request_port`), so nothing but a host name
 * and digits reaches PHP, and an app on :8080 still builds its links with the port. `serverName` when no host is named.
 */
export function cgiHost(req: IncomingMessage, target: ParsedTarget, serverName: string): string {
  const h = rawHost(req, target);
  if (h === undefined) return serverName;
  const host = parseHost(h);
  if (host === null) return serverName; // refused before a handler runs; never reached
  const port = portOf(h);
  return port === '' ? host : `${host}:${port}`;
}

/** The port the request names when it is a number (nginx's `$request_port`), else '' (none, or anything else). */
export function requestPort(req: IncomingMessage, target: ParsedTarget): string {
  const h = rawHost(req, target);
  return h === undefined ? '' : portOf(h);
}

function portOf(h: string): string {
  const colon = h.startsWith('[') ? h.indexOf(']:') + 1 : h.indexOf(':');
  const port = colon > 0 ? h.slice(colon + 1) : '';
  return PORT.test(port) ? port : '';
}

const PORT = /^[0-9]{1,5}$/;

/**
 * A head nginx answers with 400: two Host headers, or a Host, :authority or absolute target's authority it refuses
 * ("..", a slash, a space). Such a host never reaches PHP as HTTP_HOST, nor a cache key.
 */
export function hasInvalidHead(req: IncomingMessage, target: ParsedTarget): boolean {
  if (hasDuplicateHost(req)) return true;
  const h = req.headers.host ?? (req.headers[':authority'] as string | undefined);
  return (h !== undefined && parseHost(h) === null) || (target.authority !== null && parseHost(target.authority) === null);
}

/**
 * A request line on an HTTP/1 connection that names another version: HTTP/2.0 and later are nginx's 505, an
 * HTTP/0.9 request (no version, or "HTTP/0.9") a 400 (node would answer it with an HTTP/1.1 head anyway). 0: fine.
 */
export function versionRefusal(req: IncomingMessage): 0 | 400 | 505 {
  if (req.httpVersionMajor === 1 || (req as unknown) instanceof H2Request) return 0;
  return req.httpVersionMajor === 0 ? 400 : 505;
}

export function headerValue(req: IncomingMessage, name: string): string {
  const v = req.headers[name];
  return v === undefined ? '' : Array.isArray(v) ? v.join(', ') : v;
}

/** `name` lower-case (as the key parser leaves it): nginx's $cookie_NAME matches the name in any letter case. */
export function cookieValue(cookie: string | undefined, name: string): string {
  if (cookie === undefined) return '';
  for (const pair of cookie.split(';')) {
    const eq = pair.indexOf('=');
    if (eq !== -1 && pair.slice(0, eq).trim().toLowerCase() === name) return pair.slice(eq + 1).trim();
  }
  return '';
}
