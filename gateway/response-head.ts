/**
 * Writing a response head whose headers win over those already set on the response (security headers,
 * rate-limit counts, X-Cache), repeats kept: PHP's answers, cached answers and upstream answers go out this way.
 */
import type { ServerResponse } from 'node:http';

const NO_HEADERS: string[] = [];

/**
 * `headers`: alternating names and values; `reason` '' for the standard phrase (always '' over HTTP/2, which has
 * none). node 20's writeHead applies a raw list over preset headers with setHeader, collapsing repeats
 * (Set-Cookie, Link), so preset ones are replaced by name here first. Throws what writeHead throws.
 */
export function writeHeadOver(res: ServerResponse, status: number, reason: string, headers: readonly string[]): void {
  let raw = headers as string[];
  if (res.getHeaderNames().length > 0) {
    for (let i = 0; i < raw.length; i += 2) res.removeHeader(raw[i]!);
    for (let i = 0; i < raw.length; i += 2) res.appendHeader(raw[i]!, raw[i + 1]!);
    raw = NO_HEADERS;
  }
  if (reason === '') res.writeHead(status, raw);
  else res.writeHead(status, reason, raw);
}
