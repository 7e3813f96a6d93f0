/** Small facts about a request's head that more than one stage asks. */
import type { IncomingMessage } from 'node:http';

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
