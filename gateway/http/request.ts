/** Small facts about a request's head that more than one stage asks. */
import type { IncomingMessage } from 'node:http';
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

/** nginx's $host from the request: the authority or Host without its port, lower-case ('' when none). */
export function requestHost(req: IncomingMessage, target: ParsedTarget): string {
  const h = target.authority ?? req.headers.host ?? (req.headers[':authority'] as string | undefined) ?? '';
  const end = h.startsWith('[') ? h.indexOf(']') + 1 : h.lastIndexOf(':');
  return (end > 0 ? h.slice(0, end) : h).toLowerCase();
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
