/**
 * CGI response header parsing (RFC 3875 §6): the header block PHP writes before its body.
 * Incremental: STDOUT arrives in arbitrary chunks and the blank line may straddle two of them.
 */
import { validateHeaderName, validateHeaderValue } from 'node:http';
import { ErrorCode, UpstreamError } from '../core/errors.js';

export interface CgiHead {
  readonly status: number;
  /** The reason PHP gave after the code (`Status: 299 Custom`), or '' to use the standard one. */
  readonly reason: string;
  /** Alternating names and values, repeats kept apart (several Set-Cookie stay several). */
  readonly headers: string[];
  /** `X-Accel-Buffering: no`: every chunk must reach the client at once, never held for compression. */
  readonly noBuffering: boolean;
  /** PHP's Content-Type as sent ('' when none). */
  readonly contentType: string;
  /** `X-Accel-Expires` (seconds, or `@` unix time): the response cache's freshness, over Cache-Control; null when none. */
  readonly accelExpires: string | null;
  /** `X-Accel-Redirect`: the URI the gateway answers with instead of this response (nginx's internal redirect), or null. */
  readonly accelRedirect: string | null;
  /**
   * PHP's own Content-Length, or null. The body must be held to it (as nginx does): bytes past it are dropped,
   * and a body that ends short must cut the connection, or a keep-alive client would read the next response
   * as the rest of this one.
   */
  readonly contentLength: number | null;
}

/**
 * Headers nginx's fastcgi module never passes to the client (fastcgi_hide_header defaults): `Status` is CGI's
 * own, and X-Accel-* are instructions to the proxy, which may carry internal paths.
 */
function isHidden(lower: string): boolean {
  return lower === 'status' || lower.startsWith('x-accel-') || HOP_BY_HOP.has(lower);
}

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1) describe PHP's connection to us, not ours to the client: passed on, a
 * `Transfer-Encoding` or `Connection: close` from PHP would break the framing node chooses. nginx drops them too, except `Upgrade`
 * (1.22 passes it on), which no FastCGI response can honour.
 */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'proxy-connection',
  'te',
  'trailer',
]);

const CR = 13;
const LF = 10;

export class CgiHeadParser {
  readonly #limit: number;
  #pending: Buffer | null = null;

  constructor(limitBytes: number) {
    this.#limit = limitBytes;
  }

  /**
   * Feeds one STDOUT chunk. Returns null while the header block is incomplete; once complete returns the head
   * and whatever body bytes followed it in the chunk. Throws UpstreamError when the block is too large or bad.
   */
  push(chunk: Buffer): { head: CgiHead; body: Buffer } | null {
    const buf = this.#pending === null ? chunk : Buffer.concat([this.#pending, chunk]);
    // Resume the search a few bytes back so a terminator split across chunks is still found.
    const from = this.#pending === null ? 0 : Math.max(0, this.#pending.length - 3);
    const end = findHeaderEnd(buf, from);
    if (end === null) {
      if (buf.length > this.#limit) {
        throw new UpstreamError(ErrorCode.UpstreamHeaders, `PHP sent a header block over ${this.#limit} bytes`);
      }
      this.#pending = buf;
      return null;
    }
    if (end.headerEnd > this.#limit) {
      throw new UpstreamError(ErrorCode.UpstreamHeaders, `PHP sent a header block over ${this.#limit} bytes`);
    }
    this.#pending = null;
    return { head: parseHead(buf.toString('latin1', 0, end.headerEnd)), body: buf.subarray(end.bodyStart) };
  }

  /** STDOUT ended before the blank line: whatever came is the header block (php-cgi always ends it, but…). */
  finish(): CgiHead {
    const text = this.#pending === null ? '' : this.#pending.toString('latin1');
    this.#pending = null;
    return parseHead(text);
  }
}

/** Finds the blank line ending the header block: CRLF CRLF or bare LF LF (both occur in the wild). */
function findHeaderEnd(buf: Buffer, from: number): { headerEnd: number; bodyStart: number } | null {
  for (let i = buf.indexOf(LF, from); i !== -1; i = buf.indexOf(LF, i + 1)) {
    const next = buf[i + 1];
    if (next === LF) return { headerEnd: i, bodyStart: i + 2 };
    if (next === CR && buf[i + 2] === LF) return { headerEnd: i, bodyStart: i + 3 };
    if (next === undefined || (next === CR && buf[i + 2] === undefined)) return null;
  }
  return null;
}

function bad(message: string): UpstreamError {
  return new UpstreamError(ErrorCode.UpstreamHeaders, message);
}

function parseHead(text: string): CgiHead {
  const headers: string[] = [];
  let status = 0;
  let reason = '';
  let hasLocation = false;
  let noBuffering = false;
  let contentType = '';
  let accelExpires: string | null = null;
  let accelRedirect: string | null = null;
  let contentLength: number | null = null;
  for (const rawLine of text.split('\n')) {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) {
      throw new UpstreamError(ErrorCode.UpstreamHeaders, `PHP sent a malformed header line: ${JSON.stringify(line.slice(0, 80))}`);
    }
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    const lower = name.toLowerCase();
    if (lower === 'status') {
      const m = /^(\d{3})(?:\s+(.*))?$/.exec(value);
      // 1xx are interim answers: sent as the final one, the client keeps waiting for a response that never comes.
      if (m === null || Number(m[1]) < 200) throw bad(`PHP sent an invalid Status: ${JSON.stringify(value)}`);
      status = Number(m[1]);
      reason = m[2] ?? '';
      if (/[^\t\x20-\x7e\x80-\xff]/.test(reason)) throw bad(`PHP sent an invalid Status: ${JSON.stringify(value)}`);
    } else if (lower === 'x-accel-buffering') {
      noBuffering = value.toLowerCase() === 'no';
    } else if (lower === 'x-accel-expires') {
      accelExpires = value;
    } else if (lower === 'x-accel-redirect') {
      accelRedirect = value;
    } else if (lower === 'location') {
      hasLocation = true;
    } else if (lower === 'content-type') {
      contentType = value;
    } else if (lower === 'content-length') {
      // nginx (≥ 1.23) answers 502 to an invalid or duplicated Content-Length; two framings would desync clients.
      if (!/^\d{1,15}$/.test(value)) throw bad(`PHP sent an invalid Content-Length: ${JSON.stringify(value.slice(0, 40))}`);
      const n = Number(value);
      if (contentLength !== null) {
        if (n !== contentLength) throw bad(`PHP sent two Content-Length headers (${contentLength} and ${n})`);
        continue; // the same value twice: one is enough
      }
      contentLength = n;
    }
    if (isHidden(lower)) continue;
    // What node would refuse to send (writeHead throws) is PHP's error, answered 502 like nginx's invalid header.
    try {
      validateHeaderName(name);
      validateHeaderValue(name, value);
    } catch {
      throw bad(`PHP sent a header node cannot send: ${JSON.stringify(line.slice(0, 80))}`);
    }
    headers.push(name, value);
  }
  // CGI: a Location without a Status is a redirect. nginx answers it with 302, and so do we.
  if (status === 0) status = hasLocation ? 302 : 200;
  return { status, reason, headers, noBuffering, contentType, accelExpires, accelRedirect, contentLength };
}
