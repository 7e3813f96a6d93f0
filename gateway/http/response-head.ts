/**
 * Writing a response head whose headers win over those already set on the response (security headers,
 * rate-limit counts, X-Cache), repeats kept: PHP's answers, cached answers, static files and upstream answers go
 * out this way.
 */
import type { ServerResponse } from 'node:http';

/** Alternating names and values. */
export type HeaderList = readonly string[];

const NO_HEADERS: string[] = [];

/** One HTTP/2 head: lower-case names, repeats gathered in an array (node sends each as its own field line). */
type Http2Head = Record<string, string | number | string[]>;

/**
 * `headers`: alternating names and values; `reason` '' for the standard phrase (always '' over HTTP/2, which has
 * none). node 20's writeHead applies a raw list over preset headers with setHeader, collapsing repeats
 * (Set-Cookie, Link), so preset ones are replaced by name here first. Throws what writeHead throws.
 */
export function writeHeadOver(res: ServerResponse, status: number, reason: string, headers: ReadonlyArray<string | number>): void {
  if (isHttp2(res)) {
    // The compatibility layer takes a list as remove, append and set for each name (three rounds of checks and a
    // `delete` that leaves the head a slow dictionary); an object is one set per name, which still replaces a
    // preset header of that name.
    res.writeHead(status, http2Head(headers));
    return;
  }
  let raw = headers as string[];
  if (res.getHeaderNames().length > 0) {
    for (let i = 0; i < raw.length; i += 2) res.removeHeader(raw[i]!);
    for (let i = 0; i < raw.length; i += 2) res.appendHeader(raw[i]!, raw[i + 1]!);
    raw = NO_HEADERS;
  }
  if (reason === '') res.writeHead(status, raw);
  else res.writeHead(status, reason, raw);
}

/**
 * A head whose names are not repeated and not set before (static files): node 1.1's writeHead takes the list as it
 * is; HTTP/2 gets it as an object, as above.
 */
export function writeHeadList(res: ServerResponse, status: number, headers: ReadonlyArray<string | number>): void {
  if (isHttp2(res)) res.writeHead(status, http2Head(headers));
  else res.writeHead(status, headers as Array<string | number> as string[]);
}

/**
 * node's HTTP/2 compatibility response: it has the stream it answers on, an http.ServerResponse has no `stream`.
 * (A property read, without going through the request, which the response only reaches through its stream.)
 */
function isHttp2(res: ServerResponse): boolean {
  return (res as { stream?: unknown }).stream !== undefined;
}

function http2Head(headers: ReadonlyArray<string | number>): Http2Head {
  const head: Http2Head = {};
  for (let i = 0; i < headers.length; i += 2) {
    const name = (headers[i] as string).toLowerCase();
    const value = headers[i + 1]!;
    const had = head[name];
    if (had === undefined) head[name] = value;
    else if (Array.isArray(had)) had.push(String(value));
    else head[name] = [String(had), String(value)];
  }
  return head;
}

/** Sets a header list (the security headers) on a response not yet started (answers other than static files). */
export function setHeaders(res: ServerResponse, list: HeaderList): void {
  for (let i = 0; i < list.length; i += 2) res.setHeader(list[i]!, list[i + 1]!);
}
