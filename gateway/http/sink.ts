/**
 * The response seam. A handler (static files, PHP, an HTTP upstream, the response cache) produces one response into
 * a ResponseSink; filters (compression, the cache fill, X-Accel-Redirect) are sinks that transform what they are
 * given and pass it to the next one; the last sink is the Exchange, which owns the client side. As undici's
 * dispatch handlers and h2o's generators and filters do it:
 *
 *   start(head, source)   the status and headers, once; false: a filter answered otherwise (a stale cached answer,
 *                         an internal redirect) and the producer must stop sending (and make no terminal call)
 *   data(chunk) → boolean false: the client is full; the producer waits for source.resume()
 *   flush() → boolean     the end of one read at the producer: a sink holding the head to learn the length may
 *                         send it now (chunked), so flushed output still streams; false as from data()
 *   end(last?)            the answer is complete (terminal)
 *   error(err)            the producer failed (terminal): before any byte went out the client gets the error's
 *                         answer, after that the connection is cut so the truncation shows
 *
 * Exactly one terminal call per response; the Exchange asserts it. A client that goes away is told to whoever
 * watches the Exchange (ClientCloseListener), producers and filters alike; after that their calls are ignored.
 */
import type { PhpgateError } from '../../core/errors.js';

/** A response head as a producer gives it: what the filters decide by is read once, where the head is parsed. */
export interface ResponseHead {
  readonly status: number;
  /** The reason phrase, or '' for the standard one (HTTP/2 has none). */
  readonly reason: string;
  /** Alternating names and values, repeats kept apart (several Set-Cookie stay several). */
  readonly headers: string[];
  /** Content-Type as sent ('' when none). */
  readonly contentType: string;
  /** The body's length when the producer knows it, or null: the Exchange then frames it. */
  readonly contentLength: number | null;
  /** `X-Accel-Buffering: no`: every chunk must reach the client at once, never held. */
  readonly noBuffering: boolean;
  /** `X-Accel-Expires` (seconds, or `@` unix time) for the response cache, or null. */
  readonly accelExpires: string | null;
  /** `X-Accel-Redirect`: the URI that answers instead of this response (nginx's internal redirect), or null. */
  readonly accelRedirect: string | null;
  /**
   * The same head object goes out again for other requests (a hot file's 200): a sink may keep what it makes of it
   * (the exchange keeps its merge with the security headers). Its headers are never changed once made.
   */
  readonly stable?: true;
}

/** What a sink calls back on the producer that is waiting for it. */
export interface Source {
  /** The sink can take more: data() returned false before, and may be called again now. */
  resume(): void;
}

export interface ResponseSink {
  start(head: ResponseHead, source: Source): boolean;
  data(chunk: Buffer): boolean;
  flush(): boolean;
  end(last?: Buffer): void;
  error(err: PhpgateError): void;
}

/** A filter's base: every call passes to the next sink; a filter overrides what it changes (start, error …). */
export class ForwardingSink implements ResponseSink {
  constructor(protected readonly next: ResponseSink) {}

  start(head: ResponseHead, source: Source): boolean {
    return this.next.start(head, source);
  }

  data(chunk: Buffer): boolean {
    return this.next.data(chunk);
  }

  flush(): boolean {
    return this.next.flush();
  }

  end(last?: Buffer): void {
    this.next.end(last);
  }

  error(err: PhpgateError): void {
    this.next.error(err);
  }
}

/** Told once when the client goes away before its response ended (a reset stream, a closed connection, send_ms). */
export interface ClientCloseListener {
  clientClosed(): void;
}

/** A head with other headers (the rest of it unchanged). */
export function withHeaders(head: ResponseHead, headers: string[], contentLength: number | null = head.contentLength): ResponseHead {
  return {
    status: head.status,
    reason: head.reason,
    headers,
    contentType: head.contentType,
    contentLength,
    noBuffering: head.noBuffering,
    accelExpires: head.accelExpires,
    accelRedirect: head.accelRedirect,
  };
}

/** A head the gateway makes itself (static files, cached answers): no X-Accel instructions. */
export function plainHead(status: number, reason: string, headers: string[], contentType: string, contentLength: number | null): ResponseHead {
  return { status, reason, headers, contentType, contentLength, noBuffering: false, accelExpires: null, accelRedirect: null };
}

/** `head`, marked as sent again unchanged (see ResponseHead.stable). */
export function stableHead(head: ResponseHead): ResponseHead {
  return { ...head, stable: true };
}

/** The index of header `name` (any letter case) in a name/value list, or -1. */
export function headerIndex(headers: readonly string[], name: string): number {
  const lower = name.toLowerCase();
  for (let i = 0; i < headers.length; i += 2) {
    const n = headers[i]!;
    if (n.length === lower.length && n.toLowerCase() === lower) return i;
  }
  return -1;
}

/** A producer that never waits (it gives everything at once): resume has nothing to do. */
export const NO_SOURCE: Source = {
  resume(): void {
    // Nothing waits: the whole answer was given at once.
  },
};
