/**
 * One PHP request from the gateway's side: wait for a worker, send params and the body, turn the CGI answer
 * into an HTTP response and stream it with backpressure both ways. One object per request, no closures per
 * chunk; exactly one ending (response ended, or error answered / connection cut).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode, PhpgateError, UpstreamError } from '../../core/errors.js';
import type { CgiParams } from '../../php/cgi-env.js';
import type { Logger } from '../../core/log.js';
import { logLines } from '../../php/logger.js';
import type { Pool, PoolWaiter } from '../../php/pool.js';
import { CgiHeadParser, type CgiHead } from '../../php/response.js';
import type { Worker, WorkerRequestHandler } from '../../php/worker.js';
import type { BrotliCompress, Gzip } from 'node:zlib';
import type { RequestBody } from '../http/body.js';
import { compressedHeaders, type Compression, type Encoding } from '../filters/compression.js';
import { statusForError, type ErrorResponder } from '../http/errors-http.js';
import { setHeaders, writeHeadOver, type HeaderList } from '../http/response-head.js';
import type { CacheFill } from '../filters/cache/response-cache.js';
import type { ParsedTarget } from '../http/uri.js';
import type { RequestTrace } from '../http/trace.js';

/** Bodies up to this size are compressed whole, in one call (typical pages, about 1 ms at most); bigger ones stream through zlib. */
const WHOLE_BODY_MAX = 64 * 1024;

/** nginx refuses more than 4 KiB (fastcgi_buffer_size) with 502; apps with big CSP or cookie headers need more. */
export const MAX_CGI_HEAD_BYTES = 64 * 1024;

/** What every exchange of one pipeline shares: built once, not per request. */
export interface ExchangeContext {
  readonly log: Logger;
  /** Answers failures (502/503/504) with the configured error pages. */
  readonly errors: ErrorResponder;
  /** Longest wait for a slow client to take more of a response (server.timeouts.send_ms). */
  readonly sendTimeoutMs: number;
  /** headers.strip_powered_by: PHP's X-Powered-By is not passed on. */
  readonly stripPoweredBy: boolean;
  /** compression.*, or null when both encodings are off. */
  readonly compression: Compression | null;
}

export class PhpExchange implements PoolWaiter, WorkerRequestHandler {
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #pool: Pool;
  readonly #params: CgiParams;
  readonly #body: RequestBody;
  readonly #label: string;
  readonly #log: Logger;
  readonly #cx: ExchangeContext;
  readonly #head = new CgiHeadParser(MAX_CGI_HEAD_BYTES);
  #worker: Worker | null = null;
  #headSent = false;
  #done = false;
  #drainWaiter: (() => void) | null = null;
  /** gzip/brotli between PHP and the client (piped into the response), or null: PHP's bytes go straight out. */
  #encoder: Gzip | BrotliCompress | null = null;
  /** Flush the encoder after every chunk: PHP asked for no buffering (X-Accel-Buffering: no, server-sent events). */
  #flushEach = false;
  /**
   * A body to compress, held until it ends or passes WHOLE_BODY_MAX: then compressed in one call, as nginx's gzip
   * fills its buffers. A stream through zlib costs a thread-pool round trip per PHP chunk (about twice nginx's
   * CPU per page at level 1). null: not compressing, or streaming through #encoder.
   */
  #held: Buffer[] | null = null;
  #heldBytes = 0;
  #encoding: Encoding | null = null;
  #sizeHint: number | null = null;
  /** We paused reading from PHP until the client drains; whoever ends this exchange must undo it. */
  #phpPaused = false;
  /** Body bytes still owed under PHP's own Content-Length; null when PHP sent none (node frames the body). */
  #remaining: number | null = null;
  #overflowed = false;
  /**
   * PHP's head, held while the socket read that brought it is delivered: if the answer ends in that same read
   * (nearly every small page), it goes out with a Content-Length and the body in one end(), instead of chunked.
   * Only for answers PHP gave no length, that are not compressed or cached. Sent at the read's end otherwise.
   */
  #deferred: { readonly status: number; readonly reason: string; readonly headers: string[] } | null = null;
  /** Body held with #deferred. */
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** An error page's status, sent instead of PHP's own (0: PHP's). */
  readonly #forceStatus: number;

  readonly #trace: RequestTrace | null;
  /** Runs while PHP is paused for this client; a client that takes nothing for send_ms is cut off. */
  #sendTimer: NodeJS.Timeout | null = null;
  /** For the error page of a failure (502/503/504); null when this exchange is itself an error page. */
  readonly #target: ParsedTarget | null;
  /** The response-cache entry this answer fills, or null. */
  readonly #fill: CacheFill | null;
  /** Security headers not yet on the response: they join PHP's head (PHP's own win by name), or an error answer. */
  readonly #edge: HeaderList;

  constructor(req: IncomingMessage, res: ServerResponse, pool: Pool, params: CgiParams, body: RequestBody, label: string,
    cx: ExchangeContext, target: ParsedTarget | null, forceStatus = 0, trace: RequestTrace | null = null, fill: CacheFill | null = null,
    edge: HeaderList = []) {
    this.#req = req;
    this.#res = res;
    this.#pool = pool;
    this.#params = params;
    this.#body = body;
    this.#label = label;
    this.#cx = cx;
    this.#log = cx.log;
    this.#forceStatus = forceStatus;
    this.#target = target;
    this.#trace = trace;
    this.#fill = fill;
    this.#edge = edge;
  }

  start(): void {
    this.#res.once('close', this.#onClientClose);
    let w: Worker | null;
    try {
      w = this.#pool.acquire(this);
    } catch (err) {
      this.onPoolError(err as PhpgateError);
      return;
    }
    if (w !== null) this.onWorker(w);
  }

  // PoolWaiter
  onWorker(w: Worker): void {
    if (this.#done) {
      // The client left while we queued, between cancel and hand-over: give the worker straight back.
      this.#pool.onWorkerIdle(w);
      return;
    }
    this.#worker = w;
    if (this.#trace !== null) {
      this.#trace.workerPid = w.pid;
      this.#trace.upstreamStart = performance.now();
    }
    const noBody = this.#body.length === 0;
    w.run(this.#params, this, this.#label, noBody);
    if (noBody) return;
    this.#body.pipeTo(this).then(
      () => {
        // Only if this exchange still owns the worker: after an abort it may already serve another request.
        if (!this.#done && this.#worker === w) w.endStdin();
      },
      (err: unknown) => {
        // After an abort the spool file is closed under the copy: expected, not worth a warning.
        if (this.#done) this.#log.debug({ err, request: this.#label }, 'request body copy stopped after the exchange ended');
        else {
          // PHP would wait for the rest of its input until timeout_ms: stop it and answer now.
          this.#log.error({ err, request: this.#label }, 'could not send the request body to PHP');
          w.abort();
          this.#fail(new PhpgateError(ErrorCode.BodySpool, `request body: ${String(err)}`, { cause: err }));
        }
      },
    );
  }

  onPoolError(err: PhpgateError): void {
    this.#finishWithError(err);
  }

  // BodySink (the spooled body → STDIN)
  write(chunk: Buffer): boolean {
    return this.#worker === null || this.#done ? true : this.#worker.writeStdin(chunk);
  }

  drain(): Promise<void> {
    return new Promise((resolve) => {
      this.#drainWaiter = resolve;
    });
  }

  onStdinDrain(): void {
    const w = this.#drainWaiter;
    this.#drainWaiter = null;
    if (w !== null) w();
  }

  // WorkerRequestHandler (PHP → client)
  onStdout(chunk: Buffer): boolean {
    if (this.#done) return true;
    let body = chunk;
    if (!this.#headSent) {
      let parsed;
      try {
        parsed = this.#head.push(chunk);
      } catch (err) {
        this.#log.error({ err, request: this.#label }, 'PHP sent an unusable header block');
        this.#fail(err as PhpgateError);
        return true;
      }
      if (parsed === null) return true;
      if (!this.#writeHead(parsed.head)) return true;
      body = parsed.body;
      if (body.length === 0) return true;
    }
    if (this.#remaining !== null) {
      if (body.length > this.#remaining) {
        // nginx: "upstream sent more data than specified in Content-Length"; it sends what was declared.
        if (!this.#overflowed) {
          this.#overflowed = true;
          this.#log.warn({ pool: this.#pool.poolName, request: this.#label }, 'PHP sent more data than its Content-Length; the rest is dropped');
        }
        body = body.subarray(0, this.#remaining);
      }
      this.#remaining -= body.length;
      if (body.length === 0) return true;
    }
    if (this.#trace !== null) this.#trace.bytes += body.length;
    if (this.#fill !== null) this.#fill.onBody(body);
    if (this.#deferred !== null) {
      this.#pending.push(body);
      this.#pendingBytes += body.length;
      return true;
    }
    return this.#send(body);
  }

  /** The socket read is over and the answer goes on: a held head and body go out now (chunked). */
  onReadEnd(): boolean {
    const d = this.#deferred;
    if (d === null || this.#done) return true;
    this.#deferred = null;
    if (!this.#sendHead(d.status, d.reason, d.headers)) return true;
    const pending = this.#pending;
    const bytes = this.#pendingBytes;
    this.#pending = [];
    this.#pendingBytes = 0;
    if (bytes === 0) return true;
    return this.#send(pending.length === 1 ? pending[0]! : Buffer.concat(pending, bytes));
  }

  /** A body chunk to the client (through the encoder if any); false: the client is full, PHP must wait. */
  #send(chunk: Buffer): boolean {
    let body = chunk;
    if (this.#held !== null) {
      this.#held.push(body);
      this.#heldBytes += body.length;
      if (this.#heldBytes <= WHOLE_BODY_MAX) return true;
      // Too big to hold: streamed through the encoder from here on.
      body = Buffer.concat(this.#held, this.#heldBytes);
      this.#held = null;
      this.#startEncoder(this.#cx.compression!.encoder(this.#encoding!, this.#sizeHint));
    }
    const out = this.#encoder ?? this.#res;
    const more = out.write(body);
    if (this.#flushEach) this.#encoder?.flush();
    if (more) return true;
    // Several records of one socket read may each find the client full: wait for one drain, not one per record.
    // (With an encoder, its input fills once the client stops taking its output: the pipe pauses it.)
    if (!this.#phpPaused) {
      this.#phpPaused = true;
      out.once('drain', this.#onClientDrain);
      this.#sendTimer = setTimeout(this.#onSendTimeout, this.#cx.sendTimeoutMs);
    }
    return false;
  }

  onStderr(chunk: Buffer): void {
    // PHP's own log lines (error_log(), warnings with log_errors) arrive here; nginx logs them as
    // "FastCGI sent in stderr". One log entry per line, tagged with the request.
    logLines(this.#log, { pool: this.#pool.poolName, request: this.#label }, 'PHP: ', chunk);
  }

  onEnd(): void {
    if (this.#trace !== null) this.#trace.upstreamMs = performance.now() - this.#trace.upstreamStart;
    if (this.#done) return;
    if (!this.#headSent) {
      let head;
      try {
        head = this.#head.finish();
      } catch (err) {
        this.#fail(err as PhpgateError);
        return;
      }
      if (!this.#writeHead(head)) return;
    }
    const d = this.#deferred;
    if (d !== null) {
      // The whole answer came in this read: one head with its length, one write.
      this.#deferred = null;
      d.headers.push('Content-Length', String(this.#pendingBytes));
      if (!this.#sendHead(d.status, d.reason, d.headers)) return;
      this.#done = true;
      const pending = this.#pending;
      this.#pending = [];
      this.#res.end(pending.length === 0 ? undefined : pending.length === 1 ? pending[0] : Buffer.concat(pending, this.#pendingBytes));
      void this.#body.dispose();
      return;
    }
    this.#done = true;
    this.#resumePhp();
    const short = this.#remaining !== null && this.#remaining > 0;
    this.#fill?.onEnd(!short);
    if (short) {
      // Fewer bytes than PHP declared: ending normally would leave a keep-alive client reading the next response
      // as the rest of this one. Cut the connection, as nginx does ("upstream prematurely closed").
      this.#log.error({ pool: this.#pool.poolName, request: this.#label, missing: this.#remaining }, 'PHP sent less data than its Content-Length');
      const socket = this.#req.httpVersionMajor === 1 && this.#encoding === null ? this.#res.socket : null;
      this.#held = null;
      if (socket === null) {
        this.#encoder?.destroy();
        this.#res.destroy();
      } else {
        // What did come still reaches the client (destroy() would drop what is queued), then FIN.
        this.#res.end();
        socket.end();
      }
    } else if (this.#encoder !== null) {
      this.#encoder.end(); // the pipe ends the response once the encoder's last bytes are out
    } else if (this.#held !== null) {
      this.#endHeld(this.#held);
    } else {
      this.#res.end();
    }
    void this.#body.dispose();
  }

  onError(err: PhpgateError): void {
    this.#resumePhp();
    if (this.#done) return;
    this.#log.error({ err, pool: this.#pool.poolName, request: this.#label }, 'PHP request failed');
    this.#fail(err);
  }

  /**
   * Takes PHP's status and headers: sent now, or held as #deferred. Returns false when the exchange answered
   * otherwise (a stale cached answer, or 502 for a head node refuses).
   */
  #writeHead(head: CgiHead): boolean {
    let headers = this.#cx.stripPoweredBy ? withoutPoweredBy(head.headers) : head.headers;
    const status = this.#forceStatus || head.status;
    if (this.#fill !== null && this.#fill.onHead(status, head.reason, head, headers)) {
      // A stale answer went out instead of PHP's failure (stale-if-error): the rest of PHP's answer is dropped.
      this.#done = true;
      this.#headSent = true;
      void this.#body.dispose();
      return false;
    }
    const compression = this.#cx.compression;
    const encoding = compression === null ? null
      : compression.choose(this.#req.headers['accept-encoding'], this.#req.method, status, head, headers);
    if (encoding !== null) headers = compressedHeaders(headers, encoding);
    if (this.#edge.length > 0) headers = withEdge(this.#edge, headers);
    // HTTP/2 has no reason phrase (node would warn on each one).
    const reason = this.#forceStatus !== 0 || this.#req.httpVersionMajor !== 1 ? '' : head.reason;
    const bodiless = this.#req.method === 'HEAD' || status === 204 || status === 304;
    if (encoding === null && this.#fill === null && head.contentLength === null && !bodiless) {
      this.#headSent = true; // taken: what follows is body
      this.#deferred = { status, reason, headers };
      return true;
    }
    if (!this.#sendHead(status, reason, headers)) return false;
    if (encoding !== null) {
      this.#encoding = encoding;
      this.#sizeHint = head.contentLength;
      // Server-sent events: each event must reach the browser when PHP flushes it, compressed or not.
      this.#flushEach = head.noBuffering || head.contentType.toLowerCase().startsWith('text/event-stream');
      if (this.#flushEach) this.#startEncoder(compression!.encoder(encoding, head.contentLength));
      else this.#held = [];
    }
    this.#remaining = bodiless ? null : head.contentLength;
    return true;
  }

  /**
   * Writes the head. Returns false (the exchange answered 502 instead) if node refuses it: a throw must never
   * escape into the FastCGI decoder, which would take it for a broken connection to PHP.
   */
  #sendHead(status: number, reason: string, headers: readonly string[]): boolean {
    try {
      // Headers set before PHP answered (rate-limit counts, X-Cache) are replaced by PHP's own, by name.
      // (The head parser already refused what node cannot send, so the preset ones are never half replaced.)
      writeHeadOver(this.#res, status, reason, headers);
    } catch (cause) {
      this.#res.statusMessage = ''; // node keeps a reason set before it threw; the error page must not inherit it
      const err = new UpstreamError(ErrorCode.UpstreamHeaders, `PHP sent a response head node cannot send: ${String(cause)}`, { cause });
      this.#log.error({ err, request: this.#label }, 'PHP sent an unusable header block');
      this.#headSent = false; // nothing went out: the error is answered in full
      this.#finishWithError(err);
      return false;
    }
    this.#headSent = true;
    return true;
  }

  /** The whole body arrived within WHOLE_BODY_MAX: one compression call, one write. */
  #endHeld(held: Buffer[]): void {
    this.#held = null;
    let out: Buffer;
    try {
      out = this.#cx.compression!.compressWhole(this.#encoding!, held.length === 1 ? held[0]! : Buffer.concat(held, this.#heldBytes));
    } catch (err) {
      this.#log.error({ err, request: this.#label }, 'response compression failed');
      this.#res.destroy(err as Error);
      return;
    }
    this.#res.end(out);
  }

  #startEncoder(encoder: Gzip | BrotliCompress): void {
    this.#encoder = encoder;
    encoder.once('error', (err) => {
      this.#log.error({ err, request: this.#label }, 'response compression failed');
      this.#res.destroy(err);
    });
    encoder.pipe(this.#res);
  }

  /** Before any byte was sent: answer with the error's status. After: cut the connection (truncation shows). */
  #fail(err: PhpgateError): void {
    this.#resumePhp();
    if (this.#deferred !== null) {
      // PHP's head never went out: the client gets the error's answer instead of a cut-off one.
      this.#deferred = null;
      this.#pending = [];
      this.#finishWithError(err);
      return;
    }
    if (this.#headSent) {
      this.#done = true;
      this.#held = null;
      this.#fill?.onEnd(false);
      this.#encoder?.destroy();
      this.#res.destroy(err);
      void this.#body.dispose();
      return;
    }
    this.#finishWithError(err);
  }

  #finishWithError(err: PhpgateError): void {
    if (this.#done) return;
    this.#done = true;
    this.#headSent = true;
    if (this.#fill !== null && this.#fill.onFailure()) {
      // The cached answer stood in for the failure (stale-if-error).
      void this.#body.dispose();
      return;
    }
    setHeaders(this.#res, this.#edge);
    this.#cx.errors.answerError(this.#req, this.#res, statusForError(err.code), this.#target,
      err.code === ErrorCode.PoolSaturated ? { 'Retry-After': '1' } : undefined);
    void this.#body.dispose();
  }

  readonly #onClientDrain = (): void => {
    this.#phpPaused = false;
    this.#clearSendTimer();
    this.#worker?.resume();
  };

  /** nginx's send_timeout: the client took nothing for too long. Cutting it off aborts PHP (see Worker.abort). */
  readonly #onSendTimeout = (): void => {
    this.#sendTimer = null;
    this.#log.warn({ pool: this.#pool.poolName, request: this.#label, sendTimeoutMs: this.#cx.sendTimeoutMs },
      'client took no data for send_ms; closing it');
    this.#res.destroy();
  };

  #clearSendTimer(): void {
    if (this.#sendTimer !== null) clearTimeout(this.#sendTimer);
    this.#sendTimer = null;
  }

  /**
   * The connection to PHP was paused for this exchange's client; once the exchange stops caring (ended, failed,
   * client gone) it must read again: END_REQUEST often arrives in the same socket read as the last STDOUT, and the
   * client's 'drain' never comes after the response ended, so a paused socket would stall the worker's next
   * request, and a killed child's EOF would never be seen (the worker stuck recycling, the pool one short).
   */
  #resumePhp(): void {
    if (!this.#phpPaused) return;
    this.#phpPaused = false;
    this.#clearSendTimer();
    (this.#encoder ?? this.#res).removeListener('drain', this.#onClientDrain);
    this.#worker?.resume();
  }

  readonly #onClientClose = (): void => {
    // HTTP/2's response reports itself finished even when the client reset the stream, so `#done` (we ended it)
    // tells the two apart.
    if (this.#done && this.#res.writableFinished) return;
    // The client went away before the response ended.
    const wasDone = this.#done;
    this.#done = true;
    this.#fill?.onEnd(false);
    this.#held = null;
    this.#deferred = null;
    this.#pending = [];
    this.onStdinDrain(); // a body upload waiting on STDIN drain must not hang
    this.#resumePhp();
    this.#encoder?.destroy();
    if (this.#worker === null) this.#pool.cancel(this);
    else if (!wasDone) this.#worker.abort();
    void this.#body.dispose();
  };
}


/** The security headers PHP did not send itself, then PHP's own (the order they had when set on the response first). */
function withEdge(edge: HeaderList, headers: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < edge.length; i += 2) if (!hasHeader(headers, edge[i]!)) out.push(edge[i]!, edge[i + 1]!);
  for (let i = 0; i < headers.length; i++) out.push(headers[i]!);
  return out;
}

function hasHeader(headers: readonly string[], name: string): boolean {
  const lower = name.toLowerCase();
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i]!.length === lower.length && headers[i]!.toLowerCase() === lower) return true;
  }
  return false;
}

/** expose_php's advertisement, dropped as helmet's hidePoweredBy does; a copy only when PHP sent one. */
function withoutPoweredBy(headers: string[]): string[] {
  if (!hasHeader(headers, 'x-powered-by')) return headers;
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i]!.toLowerCase() !== 'x-powered-by') out.push(headers[i]!, headers[i + 1]!);
  }
  return out;
}
