/**
 * A cached answer sent as a response: the response cache acting as a handler (HIT, or STALE instead of a refresh
 * or of a failure). The variant the client accepts, 304 to a matching conditional request, Age and X-Cache.
 */
import type { IncomingMessage } from 'node:http';
import type { CacheStatus } from '../../http/status.js';
import { NO_SOURCE, plainHead, type ResponseSink } from '../../http/sink.js';
import { matchesWeak, notAfter } from '../../http/conditional.js';
import type { Encoding } from '../compression.js';
import type { Entry } from './entry.js';

/** Headers a 304 carries from the cached answer (RFC 9110 §15.4.5). */
const NOT_MODIFIED_HEADERS: ReadonlySet<string> = new Set(['etag', 'last-modified', 'cache-control', 'expires', 'vary', 'content-location']);

/** What serving needs of the cache. */
export interface EntryServing {
  /** The X-Cache header's name, or '' for none. */
  readonly header: string;
  /** The encoding this Accept-Encoding gets (null: identity), as the stored variants are made. */
  negotiate(accept: string | undefined): Encoding | null;
}

/**
 * Sends `entry` into `sink`. A compressed variant still being made (the entry was just stored) is sent as the
 * identity answer: a compression filter in front of the client compresses it on the way, as it would a MISS.
 */
export function serveEntry(c: EntryServing, req: IncomingMessage, entry: Entry, status: CacheStatus, sink: ResponseSink): void {
  const encoding = entry.compressible ? c.negotiate(req.headers['accept-encoding']) : null;
  const variant = (encoding === null ? null : entry.variants[encoding]) ?? entry.identity;
  const age = String(Math.max(0, Math.floor((Date.now() - entry.storedAt) / 1000)));
  const head: string[] = [];
  if (notModified(req, variant.etag, entry.lastModifiedMs)) {
    for (let i = 0; i < variant.head.length; i += 2) {
      if (NOT_MODIFIED_HEADERS.has(variant.head[i]!.toLowerCase())) head.push(variant.head[i]!, variant.head[i + 1]!);
    }
    finishHead(c, head, age, status);
    if (sink.start(plainHead(304, '', head, entry.contentType, 0), NO_SOURCE)) sink.end();
    return;
  }
  for (let i = 0; i < variant.head.length; i++) head.push(variant.head[i]!);
  finishHead(c, head, age, status);
  if (sink.start(plainHead(entry.status, entry.reason, head, entry.contentType, variant.body.length), NO_SOURCE)) sink.end(variant.body);
}

function finishHead(c: EntryServing, head: string[], age: string, status: CacheStatus): void {
  head.push('Age', age);
  if (c.header !== '') head.push(c.header, status);
}

/** RFC 9110 §13.2.2: If-None-Match (weak comparison) wins over If-Modified-Since. */
function notModified(req: IncomingMessage, etag: string | null, lastModifiedMs: number | null): boolean {
  const inm = req.headers['if-none-match'];
  if (inm !== undefined) return etag !== null && matchesWeak(inm, etag);
  return lastModifiedMs !== null && notAfter(req.headers['if-modified-since'], lastModifiedMs) === true;
}
