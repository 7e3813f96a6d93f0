/**
 * The client side of one request: the last ResponseSink of every response (see sink.ts). It owns what every handler
 * used to do for itself: the security headers in the head (PHP's own win by name), X-Powered-By stripping, the head
 * held until the body's length is known, backpressure and send_ms, the client going away, the error answer before
 * the head and the cut after it. One state value, not a flag per way of ending; terminal calls are asserted.
 *
 * (HTTP/1.1 and HTTP/2 both arrive here as node's response objects today; what differs between them is decided here
 * and in response-head.ts.)
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode, type PhpgateError, UpstreamError } from '../../core/errors.js';
import { statusForError, type ErrorResponder } from './errors-http.js';
import type { Logger } from '../../core/log.js';
import { mergedOnce, withEdge } from './edge-headers.js';
import { setHeaders, writeHeadOver, type HeaderList } from './response-head.js';
import type { ClientCloseListener, ResponseHead, ResponseSink, Source } from './sink.js';
import type { RequestTrace } from './trace.js';
import type { ParsedTarget } from './uri.js';

/** Who answers an internal redirect (X-Accel-Redirect's targets). */
export interface InternalRedirects {
  /** Answers `uri` (path and query, as the header gave it) for the exchange's request into `sink`. */
  redirect(x: Exchange, uri: string, carried: string[], sink: ResponseSink): void;
}

/** What every exchange of one pipeline shares: built once, not per request. */
export interface ExchangeContext {
  readonly log: Logger;
  /** Answers failures (502/503/504…) with the configured error pages. */
  readonly errors: ErrorResponder;
  /** Longest wait for a slow client to take more of a response (server.timeouts.send_ms). */
  readonly sendTimeoutMs: number;
  /**
   * server.timeouts.min_send_rate (bytes/s, 0: off): a client that keeps the response waiting must take it at least
   * this fast on average over the time it made us wait, judged once that time passes send_ms.
   */
  readonly minSendRate?: number;
  /** headers.strip_powered_by: a producer's X-Powered-By is not passed on. */
  readonly stripPoweredBy: boolean;
}

/** Nothing sent yet. */
const IDLE = 0;
/** The head is held until the body's length is known (the end) or the producer's read ends (flush). */
const HELD = 1;
/** The head went out; body chunks follow. */
const SENDING = 2;
/** Ended by a terminal call. */
const DONE = 3;
/** The client went away first. */
const GONE = 4;
type State = typeof IDLE | typeof HELD | typeof SENDING | typeof DONE | typeof GONE;

const STATE_NAMES = ['idle', 'head held', 'sending', 'done', 'client gone'] as const;

export class Exchange implements ResponseSink {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** For the error page of a failure; null when this exchange is itself an error page (or the target was unusable). */
  readonly target: ParsedTarget | null;
  readonly trace: RequestTrace | null;
  readonly #cx: ExchangeContext;
  /** Security headers not yet on the response: they join the head (the producer's own win by name), or an error answer. */
  readonly #edge: HeaderList;
  /** An error page's status, sent instead of the producer's own (0: the producer's). */
  readonly #forceStatus: number;
  #state: State = IDLE;
  #source: Source | null = null;
  #watcher: ClientCloseListener | null = null;
  #watchers: ClientCloseListener[] | null = null;
  /** The held head (state HELD) and the body that came with it. */
  #held: { readonly status: number; readonly reason: string; readonly headers: string[] } | null = null;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #bodiless = false;
  /** The head carried a Content-Length: a cut answer can still end gracefully (a short body shows). */
  #lengthFramed = false;
  #waiting = false;
  #sendTimer: NodeJS.Timeout | null = null;
  /** The current wait for the client: when it began, and what the client must take to end it. */
  #waitStart = 0;
  #waitBytes = 0;
  /** All waits for the client so far, and what the client took during them (min_send_rate). */
  #waitedMs = 0;
  #takenBytes = 0;
  /** The current wait's timer is min_send_rate's, not send_ms's. */
  #rateTimer = false;

  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    cx: ExchangeContext,
    target: ParsedTarget | null,
    edge: HeaderList,
    trace: RequestTrace | null,
    forceStatus = 0,
  ) {
    this.req = req;
    this.res = res;
    this.target = target;
    this.trace = trace;
    this.#cx = cx;
    this.#edge = edge;
    this.#forceStatus = forceStatus;
    // 'close' comes once; `on` spares the wrapper `once` makes on every request.
    res.on('close', this.#onClose);
  }

  /** `l` is told if the client goes away before the response ended. */
  watch(l: ClientCloseListener): void {
    if (this.#watcher === null) this.#watcher = l;
    else (this.#watchers ??= []).push(l);
  }

  /** The request's id (http/request-id.ts): '' when nothing traces requests (no access log, no metrics). */
  get requestId(): string {
    return this.trace === null ? '' : this.trace.requestId();
  }

  /** The client went away before the response ended. */
  get gone(): boolean {
    return this.#state === GONE;
  }

  start(head: ResponseHead, source: Source): boolean {
    if (this.#state === GONE) return false;
    this.#expect(IDLE, 'start');
    this.#source = source;
    const headers =
      this.#edge.length === 0 && !this.#cx.stripPoweredBy
        ? head.headers
        : head.stable === true
          ? mergedOnce(head, this.#edge, this.#cx.stripPoweredBy)
          : withEdge(this.#edge, head.headers, this.#cx.stripPoweredBy);
    const status = this.#forceStatus || head.status;
    // HTTP/2 has no reason phrase (node would warn on each one).
    const reason = this.#forceStatus !== 0 || this.req.httpVersionMajor !== 1 ? '' : head.reason;
    this.#bodiless = this.req.method === 'HEAD' || status === 204 || status === 304;
    if (head.contentLength === null && !this.#bodiless) {
      // Held while the producer's read is delivered: an answer that ends in it (nearly every small page) goes out
      // with a Content-Length and its body in one end(), instead of chunked.
      this.#state = HELD;
      // Its Content-Length is added at the end: never to the producer's own list.
      this.#held = { status, reason, headers: headers === head.headers || head.stable === true ? headers.slice() : headers };
      return true;
    }
    if (!this.#sendHead(status, reason, headers)) return false;
    this.#lengthFramed = head.contentLength !== null;
    this.#state = SENDING;
    return true;
  }

  data(chunk: Buffer): boolean {
    const state = this.#state;
    if (state === GONE) return true;
    if (state === HELD) {
      this.#pending.push(chunk);
      this.#pendingBytes += chunk.length;
      return true;
    }
    this.#expect(SENDING, 'data');
    if (this.trace !== null) this.trace.bytes += chunk.length;
    if (this.#bodiless || chunk.length === 0) return true;
    if (this.res.write(chunk)) return true;
    // Several chunks of one read may each find the client full: one drain to wait for, not one per chunk.
    if (!this.#waiting) {
      this.#waiting = true;
      this.res.once('drain', this.#onDrain);
      this.#sendTimer = setTimeout(this.#onSendTimeout, this.#waitLimit());
    }
    return false;
  }

  flush(): boolean {
    if (this.#state !== HELD) return true;
    const held = this.#held!;
    this.#held = null;
    if (!this.#sendHead(held.status, held.reason, held.headers)) {
      // Answered with a 502 instead: the producer learns it as a client gone, and its further calls are ignored.
      this.#state = GONE;
      this.#tellWatchers();
      return true;
    }
    this.#state = SENDING;
    const pending = this.#pending;
    const bytes = this.#pendingBytes;
    this.#pending = [];
    this.#pendingBytes = 0;
    return bytes === 0 || this.data(pending.length === 1 ? pending[0]! : Buffer.concat(pending, bytes));
  }

  end(last?: Buffer): void {
    const state = this.#state;
    if (state === GONE) return;
    if (state === HELD) {
      // The whole answer is here: one head with its length, one write.
      const held = this.#held!;
      this.#held = null;
      let body: Buffer | undefined = last;
      if (this.#pendingBytes > 0) {
        if (last !== undefined && last.length > 0) this.#pending.push(last);
        body = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending);
      }
      this.#pending = [];
      held.headers.push('Content-Length', String(body === undefined ? 0 : body.length));
      if (!this.#sendHead(held.status, held.reason, held.headers)) return;
      this.#state = DONE;
      if (this.trace !== null && body !== undefined) this.trace.bytes += body.length;
      this.res.end(body);
      return;
    }
    this.#expect(SENDING, 'end');
    this.#state = DONE;
    this.#stopWaiting();
    if (last !== undefined && last.length > 0 && !this.#bodiless) {
      if (this.trace !== null) this.trace.bytes += last.length;
      this.res.end(last);
    } else {
      this.res.end();
    }
  }

  error(err: PhpgateError): void {
    // After another ending this is a bug in a producer or filter: loud (failed() alone would let it pass).
    if (this.#state === DONE) this.#expect(IDLE, 'error');
    this.failed(err);
  }

  /**
   * Ends the response with a failure whatever its state: the error's answer if nothing went out yet (not a cut-off
   * one), else a cut. Watchers are told: a filter may fail on its own (a compression error), and a producer waiting
   * for a drain must let go. Never throws: also for a bug on the way (a throw where none was expected).
   */
  failed(err: PhpgateError): void {
    const state = this.#state;
    if (state === GONE || state === DONE) return;
    this.#state = DONE;
    this.#stopWaiting();
    this.#held = null;
    this.#pending = [];
    if (state === SENDING) this.#cut(err);
    else this.#answerError(err);
    this.#tellWatchers();
  }

  /**
   * The gateway's own answer with `status` (an error page when configured), instead of a producer's: a terminal
   * call like error(), for refusals known before any head (a vanished file, 404 of an internal redirect).
   */
  refuse(status: number, headers?: Readonly<Record<string, string>>): void {
    if (this.#state === GONE) return;
    this.#expect(IDLE, 'refuse');
    this.#state = DONE;
    setHeaders(this.res, this.#edge);
    this.#cx.errors.answerError(this.req, this.res, status, this.target, headers);
  }

  /** After the head: the truncation must show. A body framed by Content-Length can end early and gracefully (what
   * came still reaches the client, then FIN, as nginx does); a chunked or HTTP/2 one is reset. */
  #cut(err: PhpgateError): void {
    const socket = this.#lengthFramed && this.req.httpVersionMajor === 1 ? this.res.socket : null;
    if (socket === null) {
      this.res.destroy(err);
      return;
    }
    this.res.end();
    socket.end();
  }

  #answerError(err: PhpgateError): void {
    const res = this.res;
    if (res.headersSent) {
      res.destroy(err);
      return;
    }
    setHeaders(res, this.#edge);
    this.#cx.errors.answerError(
      this.req,
      res,
      statusForError(err.code),
      this.target,
      err.code === ErrorCode.PoolSaturated ? { 'Retry-After': '1' } : undefined,
    );
  }

  /**
   * Writes the head. Returns false (the exchange answered 502 instead) if node refuses it: a throw must never
   * escape into a producer (the FastCGI decoder would take it for a broken connection to PHP).
   */
  #sendHead(status: number, reason: string, headers: readonly string[]): boolean {
    try {
      // Headers set before (rate-limit counts): the head's own replace them by name.
      writeHeadOver(this.res, status, reason, headers);
      return true;
    } catch (cause) {
      this.res.statusMessage = ''; // node keeps a reason set before it threw; the error page must not inherit it
      for (let i = 0; i < headers.length; i += 2) this.res.removeHeader(headers[i]!);
      const err = new UpstreamError(ErrorCode.UpstreamHeaders, `a response head node cannot send: ${String(cause)}`, { cause });
      this.#cx.log.error({ err, url: this.req.url }, 'unusable response head');
      this.#state = DONE;
      this.#held = null;
      this.#pending = [];
      this.#answerError(err);
      return false;
    }
  }

  /** A terminal call or a chunk out of turn is a bug in a producer or filter: loud, never a silently broken answer. */
  #expect(state: State, call: string): void {
    if (this.#state !== state) {
      throw new Error(`response sink: ${call}() while ${STATE_NAMES[this.#state]} (a producer or filter broke the one-ending contract)`);
    }
  }

  /**
   * How long this wait for the client may last: send_ms, or less when the client has been slower than min_send_rate.
   * At the drain the client has taken what was queued when the wait began (the kernel's buffers were full), so the
   * rate is what it took over how long we waited for it, averaged over about the last send_ms of waiting (older
   * waits fade out): counted only while the client is the one we wait for, so a slow producer (server-sent
   * events, a long poll) is never held against it. Not judged before the waits add up to send_ms, so a short stall
   * of a normal client costs nothing.
   */
  #waitLimit(): number {
    const send = this.#cx.sendTimeoutMs;
    const rate = this.#cx.minSendRate ?? 0;
    this.#rateTimer = false;
    if (rate <= 0) return send;
    this.#waitStart = performance.now();
    this.#waitBytes = (this.res as { writableLength?: number }).writableLength ?? 0;
    const allowed = Math.max(send, ((this.#takenBytes + this.#waitBytes) * 1000) / rate) - this.#waitedMs;
    if (allowed >= send) return send;
    this.#rateTimer = true;
    return Math.max(1, Math.ceil(allowed));
  }

  readonly #onDrain = (): void => {
    this.#waiting = false;
    if (this.#waitStart !== 0) {
      this.#waitedMs += performance.now() - this.#waitStart;
      this.#takenBytes += this.#waitBytes;
      // A moving average over about send_ms of waiting: what the kernel's buffers took at first (megabytes, in
      // waits of a millisecond) must not pay for a trickle forever.
      const window = this.#cx.sendTimeoutMs;
      if (this.#waitedMs > window) {
        this.#takenBytes *= window / this.#waitedMs;
        this.#waitedMs = window;
      }
    }
    this.#clearSendTimer();
    if (this.#state === SENDING) this.#source!.resume();
  };

  /** nginx's send_timeout: the client took nothing for too long. Its 'close' then tells the producer. */
  readonly #onSendTimeout = (): void => {
    this.#sendTimer = null;
    if (this.#rateTimer) {
      const waitedMs = Math.round(this.#waitedMs + performance.now() - this.#waitStart);
      this.#cx.log.warn(
        { url: this.req.url, minSendRate: this.#cx.minSendRate, takenBytes: this.#takenBytes, waitedMs },
        'client took the response slower than min_send_rate; closing it',
      );
    } else {
      this.#cx.log.warn({ url: this.req.url, sendTimeoutMs: this.#cx.sendTimeoutMs }, 'client took no data for send_ms; closing it');
    }
    this.res.destroy();
  };

  #stopWaiting(): void {
    if (!this.#waiting) return;
    this.#waiting = false;
    this.#clearSendTimer();
    this.res.removeListener('drain', this.#onDrain);
  }

  #clearSendTimer(): void {
    if (this.#sendTimer !== null) clearTimeout(this.#sendTimer);
    this.#sendTimer = null;
  }

  readonly #onClose = (): void => {
    // Ended by us (whatever node says of a reset HTTP/2 stream, whose response reports itself finished), or told already.
    if (this.#state === DONE || this.#state === GONE) return;
    this.#state = GONE;
    this.#stopWaiting();
    this.#held = null;
    this.#pending = [];
    this.#tellWatchers();
  };

  #tellWatchers(): void {
    const one = this.#watcher;
    const more = this.#watchers;
    this.#watcher = null;
    this.#watchers = null;
    if (one !== null) one.clientClosed();
    if (more !== null) for (const l of more) l.clientClosed();
  }
}
