/**
 * What every request body needs: its kind, `Expect: 100-continue`, and closing a connection whose body is left
 * unread. Reading a body whole (before PHP is asked), in memory or spooled to a temp file, is body-spool.ts's.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2Stream } from 'node:http2';

export { BodyMemory, EMPTY_BODY, MEMORY_LIMIT, openSpool, readBody, RequestBody, type BodySink } from './body-spool.js';

/** What follows a request's head. Unsized: chunked HTTP/1.1, or HTTP/2 without Content-Length. */
export const BodyKind = { None: 0, Sized: 1, Unsized: 2 } as const;
export type BodyKind = (typeof BodyKind)[keyof typeof BodyKind];

export function bodyKind(req: IncomingMessage): BodyKind {
  const declared = req.headers['content-length'];
  if (req.httpVersionMajor === 2) {
    // HTTP/2 needs no Content-Length: a request without a body ends its stream with its headers.
    if ((req as unknown as { stream: { endAfterHeaders: boolean } }).stream.endAfterHeaders || declared === '0') return BodyKind.None;
    return declared === undefined ? BodyKind.Unsized : BodyKind.Sized;
  }
  if (req.headers['transfer-encoding'] !== undefined) return BodyKind.Unsized;
  return declared === undefined || declared === '0' ? BodyKind.None : BodyKind.Sized;
}

/** What node itself takes for `100-continue` (its checkContinue test). */
const CONTINUE = /(?:^|\W)100-continue(?:$|\W)/i;

/** The client waits for `100 Continue` before sending its body (never an HTTP/1.0 client: it knows no 1xx). */
export function expectsContinue(req: IncomingMessage): boolean {
  const expect = req.headers.expect;
  return req.httpVersion !== '1.0' && expect !== undefined && CONTINUE.test(expect);
}

/**
 * An HTTP/1.1 connection whose request body is left unread cannot carry another request. HTTP/2 has no such
 * header (the stream alone ends, and node forbids connection headers there).
 */
export function closeAfter(req: IncomingMessage, res: ServerResponse): void {
  if (req.httpVersionMajor === 1) {
    res.setHeader('Connection', 'close');
    return;
  }
  // The answer goes out whole, then the stream is reset with NO_ERROR (RFC 9113 §8.1): the client stops sending
  // what nobody reads, instead of uploading into a drained stream for as long as it likes.
  // (The stream's own 'finish': the compatibility response reports 'finish' only once the whole stream closed.)
  const stream = (req as unknown as { stream: Http2Stream }).stream;
  stream.once('finish', () => stream.close(NGHTTP2_NO_ERROR));
}

/** RFC 9113 §7 NO_ERROR (node:http2's constant; this module does not load node:http2 for a plain listener). */
const NGHTTP2_NO_ERROR = 0;
