/**
 * Writing a response head whose headers win over those already set on the response (security headers,
 * rate-limit counts, X-Cache), repeats kept: PHP's answers, cached answers, static files and upstream answers go
 * out this way.
 */
import type { ServerResponse } from 'node:http';
import { H2Response } from './h2.js';
import { NO_SOURCE, plainHead, type ResponseSink } from './sink.js';

/** Alternating names and values. */
export type HeaderList = readonly string[];

const NO_HEADERS: string[] = [];

/**
 * `headers`: alternating names and values; `reason` '' for the standard phrase (always '' over HTTP/2, which has
 * none). node 20's writeHead applies a raw list over preset headers with setHeader, collapsing repeats
 * (Set-Cookie, Link), so preset ones are replaced by name here first. An HTTP/2 response (h2.ts) takes the list as
 * it is: its own writeHead replaces preset headers by name and keeps repeats. Throws what writeHead throws.
 */
export function writeHeadOver(res: ServerResponse, status: number, reason: string, headers: ReadonlyArray<string | number>): void {
  if (res instanceof H2Response) {
    res.writeHead(status, headers);
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

/** A head whose names are not repeated and not set before (error pages): node's writeHead takes the list as it is. */
export function writeHeadList(res: ServerResponse, status: number, headers: ReadonlyArray<string | number>): void {
  if (res instanceof H2Response) res.writeHead(status, headers);
  else res.writeHead(status, headers as Array<string | number> as string[]);
}

/** Sets a header list (the security headers) on a response not yet started (answers other than static files). */
export function setHeaders(res: ServerResponse, list: HeaderList): void {
  for (let i = 0; i < list.length; i += 2) res.setHeader(list[i]!, list[i + 1]!);
}

/** nginx's `return CODE text`: the text as the body (nginx's default_type for it is the site's; text/plain here). */
export function answerText(sink: ResponseSink, method: string | undefined, status: number, text: string): void {
  const body = Buffer.from(text);
  if (sink.start(plainHead(status, '', ['Content-Type', 'text/plain'], 'text/plain', body.length), NO_SOURCE)) {
    sink.end(method === 'HEAD' ? undefined : body);
  }
}
