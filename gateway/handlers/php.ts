/**
 * One PHP request from the gateway's side: wait for a worker, send params and the body, and produce PHP's CGI
 * answer into a ResponseSink, with backpressure both ways. What happens to the answer on its way to the client
 * (compression, the cache, X-Accel-Redirect, security headers) is the sink chain's business, not this file's.
 * One object per request, no closure per chunk.
 */
import { ErrorCode, PhpgateError, UpstreamError } from '../../core/errors.js';
import type { CgiParams } from '../../php/cgi-env.js';
import type { Logger } from '../../core/log.js';
import { RequestStderr } from '../../php/logger.js';
import type { Pool, PoolWaiter } from '../../php/pool.js';
import { CgiHeadParser, type CgiHead } from '../../php/response.js';
import type { Worker, WorkerRequestHandler } from '../../php/worker.js';
import type { RequestBody } from '../http/body.js';
import type { Exchange } from '../http/exchange.js';
import type { ClientCloseListener, ResponseSink, Source } from '../http/sink.js';

/** nginx refuses more than 4 KiB (fastcgi_buffer_size) with 502; apps with big CSP or cookie headers need more. */
export const MAX_CGI_HEAD_BYTES = 64 * 1024;

/** Waiting for a worker (or for the head of PHP's answer). */
const HEAD = 0;
/** PHP's body goes to the sink. */
const BODY = 1;
/** The sink answered otherwise (a stale cached answer, an internal redirect): PHP's output is read and dropped. */
const DROP = 2;
/** Ended: by PHP, by a failure, or by the client going away. */
const DONE = 3;
type State = typeof HEAD | typeof BODY | typeof DROP | typeof DONE;

export class PhpRequest implements PoolWaiter, WorkerRequestHandler, Source, ClientCloseListener {
  readonly #exchange: Exchange;
  readonly #sink: ResponseSink;
  readonly #pool: Pool;
  readonly #params: CgiParams;
  readonly #body: RequestBody;
  readonly #label: string;
  readonly #log: Logger;
  readonly #head = new CgiHeadParser(MAX_CGI_HEAD_BYTES);
  /** PHP's stderr for this request: one log entry when it ends. */
  readonly #stderr = new RequestStderr();
  #state: State = HEAD;
  #worker: Worker | null = null;
  #drainWaiter: (() => void) | null = null;
  /** We told PHP to wait for the client (returned false); whoever ends this request must let it read again. */
  #phpPaused = false;
  /** Body bytes still owed under PHP's own Content-Length; null when PHP sent none. */
  #remaining: number | null = null;
  #overflowed = false;

  /** `sink`: where PHP's answer goes (the exchange, or the filters in front of it). */
  constructor(exchange: Exchange, sink: ResponseSink, pool: Pool, params: CgiParams, body: RequestBody, label: string, log: Logger) {
    this.#exchange = exchange;
    this.#sink = sink;
    this.#pool = pool;
    this.#params = params;
    this.#body = body;
    this.#label = label;
    this.#log = log;
  }

  start(): void {
    this.#exchange.watch(this);
    const trace = this.#exchange.trace;
    if (trace !== null) trace.pool = this.#pool.poolName;
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
    if (this.#state === DONE) {
      // The client left while we queued, between cancel and hand-over: give the worker straight back.
      this.#pool.onWorkerIdle(w);
      return;
    }
    this.#worker = w;
    const trace = this.#exchange.trace;
    if (trace !== null) {
      trace.workerPid = w.pid;
      trace.upstreamStart = performance.now();
    }
    const noBody = this.#body.length === 0;
    try {
      w.run(this.#params, this, this.#label, noBody);
    } catch (err) {
      // Params PHP could not read (one over a FastCGI record): nothing was sent, the worker is as it was.
      this.#worker = null;
      this.#pool.onWorkerIdle(w);
      this.#fail(err as PhpgateError);
      return;
    }
    if (noBody) return;
    this.#body.pipeTo(this).then(
      () => {
        // Only if this request still owns the worker: after an abort it may already serve another request.
        if (this.#state !== DONE && this.#worker === w) w.endStdin();
      },
      (err: unknown) => {
        // After an abort the spool file is closed under the copy: expected, not worth a warning.
        if (this.#state === DONE) this.#log.debug({ err, request: this.#label }, 'request body copy stopped after the request ended');
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
    this.#fail(err);
  }

  // BodySink (the spooled body → STDIN)
  write(chunk: Buffer): boolean {
    return this.#worker === null || this.#state === DONE ? true : this.#worker.writeStdin(chunk);
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

  // WorkerRequestHandler (PHP → sink)
  onStdout(chunk: Buffer): boolean {
    let body = chunk;
    if (this.#state === HEAD) {
      let parsed;
      try {
        parsed = this.#head.push(chunk);
      } catch (err) {
        this.#log.error({ err, request: this.#label }, 'PHP sent an unusable header block');
        this.#fail(err as PhpgateError);
        return true;
      }
      if (parsed === null) return true;
      if (!this.#start(parsed.head)) return true;
      body = parsed.body;
      if (body.length === 0) return true;
    }
    if (this.#state !== BODY) return true;
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
    if (this.#sink.data(body)) return true;
    this.#phpPaused = true;
    return false;
  }

  /** The socket read is over and the answer goes on: a held head and body may go out now. */
  onReadEnd(): boolean {
    if (this.#state !== BODY || this.#sink.flush()) return true;
    this.#phpPaused = true;
    return false;
  }

  onStderr(chunk: Buffer): void {
    // PHP's own log lines (error_log(), warnings and errors with log_errors): nginx's "FastCGI sent in stderr".
    // Collected, and logged as one entry when the request ends (#finish).
    this.#stderr.add(chunk);
  }

  onEnd(): void {
    const trace = this.#exchange.trace;
    if (trace !== null) trace.upstreamMs = performance.now() - trace.upstreamStart;
    if (this.#state === HEAD) {
      let head;
      try {
        head = this.#head.finish();
      } catch (err) {
        this.#fail(err as PhpgateError);
        return;
      }
      if (!this.#start(head)) return;
    }
    if (this.#state !== BODY) {
      this.#finish();
      return;
    }
    const short = this.#remaining !== null && this.#remaining > 0;
    this.#finish();
    if (!short) {
      this.#sink.end();
      return;
    }
    // Fewer bytes than PHP declared: ending normally would leave a keep-alive client reading the next response
    // as the rest of this one. The connection is cut, as nginx does ("upstream prematurely closed").
    this.#log.error({ pool: this.#pool.poolName, request: this.#label, missing: this.#remaining }, 'PHP sent less data than its Content-Length');
    this.#sink.error(new UpstreamError(ErrorCode.UpstreamClosed, 'PHP sent less data than its Content-Length'));
  }

  onError(err: PhpgateError): void {
    if (this.#state === DONE) return;
    this.#log.error({ err, pool: this.#pool.poolName, request: this.#label }, 'PHP request failed');
    this.#fail(err);
  }

  // Source: the client took what it was given.
  resume(): void {
    if (!this.#phpPaused) return;
    this.#phpPaused = false;
    this.#worker?.resume();
  }

  // ClientCloseListener
  clientClosed(): void {
    if (this.#state === DONE) return;
    const ran = this.#worker !== null;
    this.#finish();
    this.onStdinDrain(); // a body upload waiting on STDIN drain must not hang
    if (ran) this.#worker!.abort();
    else this.#pool.cancel(this);
  }

  /** PHP's head to the sink; false when the request ended instead (the sink answered otherwise, or refused it). */
  #start(head: CgiHead): boolean {
    if (!this.#sink.start(head, this)) {
      // A stale answer or an internal redirect went out instead; the rest of PHP's answer is read and dropped.
      this.#state = this.#exchange.gone ? DONE : DROP;
      if (this.#state === DONE) this.#release();
      return false;
    }
    this.#state = BODY;
    const bodiless = head.status === 204 || head.status === 304 || this.#exchange.req.method === 'HEAD';
    this.#remaining = bodiless ? null : head.contentLength;
    return true;
  }

  /** A failure: the sink answers it (an error page before the head, a cut after it). */
  #fail(err: PhpgateError): void {
    if (this.#state === DONE) return;
    const answering = this.#state === HEAD || this.#state === BODY;
    this.#finish();
    if (answering) this.#sink.error(err);
  }

  #finish(): void {
    this.#state = DONE;
    if (!this.#stderr.empty) this.#logStderr();
    this.#release();
  }

  /** PHP's stderr for this request as one entry, with what identifies the request. */
  #logStderr(): void {
    const x = this.#exchange;
    this.#stderr.flush(this.#log, {
      log: 'php',
      requestId: x.requestId,
      method: x.req.method,
      uri: x.req.url,
      pool: this.#pool.poolName,
      workerPid: this.#worker?.pid ?? 0,
    });
  }

  /**
   * Once this request stops caring, PHP must read again: END_REQUEST often arrives in the same socket read as the
   * last STDOUT, and a client's drain never comes after its response ended, so a paused connection would stall the
   * worker's next request (and a killed child's EOF would never be seen). The body's spool goes too.
   */
  #release(): void {
    if (this.#phpPaused) {
      this.#phpPaused = false;
      this.#worker?.resume();
    }
    void this.#body.dispose();
  }
}
