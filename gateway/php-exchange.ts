/**
 * One PHP request from the gateway's side: wait for a worker, send params and the body, turn the CGI answer
 * into an HTTP response and stream it with backpressure both ways. One object per request, no closures per
 * chunk; exactly one ending (response ended, or error answered / connection cut).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode, type PhpgateError } from '../config/errors.js';
import type { Logger } from '../php/logger.js';
import type { Pool, PoolWaiter } from '../php/pool.js';
import { CgiHeadParser } from '../php/response.js';
import type { Worker, WorkerRequestHandler } from '../php/worker.js';
import type { RequestBody } from './body.js';
import { sendError, statusForError } from './errors-http.js';

/** nginx refuses more than 4 KiB (fastcgi_buffer_size) with 502; apps with big CSP or cookie headers need more. */
export const MAX_CGI_HEAD_BYTES = 64 * 1024;

export class PhpExchange implements PoolWaiter, WorkerRequestHandler {
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #pool: Pool;
  readonly #params: Array<[string, string]>;
  readonly #body: RequestBody;
  readonly #label: string;
  readonly #log: Logger;
  readonly #head = new CgiHeadParser(MAX_CGI_HEAD_BYTES);
  #worker: Worker | null = null;
  #headSent = false;
  #done = false;
  #drainWaiter: (() => void) | null = null;

  constructor(req: IncomingMessage, res: ServerResponse, pool: Pool, params: Array<[string, string]>, body: RequestBody, label: string, log: Logger) {
    this.#req = req;
    this.#res = res;
    this.#pool = pool;
    this.#params = params;
    this.#body = body;
    this.#label = label;
    this.#log = log;
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
    w.run(this.#params, this, this.#label);
    if (this.#body.length === 0) {
      w.endStdin();
      return;
    }
    this.#body.pipeTo(this).then(
      () => w.endStdin(),
      (err: unknown) => this.#log.warn({ err, request: this.#label }, 'could not send the request body to PHP'),
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
      this.#writeHead(parsed.head.status, parsed.head.reason, parsed.head.headers);
      body = parsed.body;
      if (body.length === 0) return true;
    }
    if (this.#res.write(body)) return true;
    this.#res.once('drain', this.#onClientDrain);
    return false;
  }

  onStderr(chunk: Buffer): void {
    // PHP's own log lines (error_log(), warnings with log_errors) arrive here; nginx logs them as
    // "FastCGI sent in stderr". One log entry per line, tagged with the request.
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim() !== '') this.#log.warn({ pool: this.#pool.poolName, request: this.#label }, `PHP: ${line.trim()}`);
    }
  }

  onEnd(): void {
    if (this.#done) return;
    if (!this.#headSent) {
      let head;
      try {
        head = this.#head.finish();
      } catch (err) {
        this.#fail(err as PhpgateError);
        return;
      }
      this.#writeHead(head.status, head.reason, head.headers);
    }
    this.#done = true;
    this.#res.end();
    void this.#body.dispose();
  }

  onError(err: PhpgateError): void {
    if (this.#done) return;
    this.#log.error({ err, pool: this.#pool.poolName, request: this.#label }, 'PHP request failed');
    this.#fail(err);
  }

  #writeHead(status: number, reason: string, headers: string[]): void {
    this.#headSent = true;
    if (reason === '') this.#res.writeHead(status, headers);
    else this.#res.writeHead(status, reason, headers);
  }

  /** Before any byte was sent: answer with the error's status. After: cut the connection (truncation shows). */
  #fail(err: PhpgateError): void {
    if (this.#headSent) {
      this.#done = true;
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
    sendError(this.#req, this.#res, statusForError(err.code), err.code === ErrorCode.PoolSaturated ? { 'Retry-After': '1' } : undefined);
    void this.#body.dispose();
  }

  readonly #onClientDrain = (): void => {
    this.#worker?.resume();
  };

  readonly #onClientClose = (): void => {
    if (this.#res.writableFinished) return;
    // The client went away before the response ended.
    const wasDone = this.#done;
    this.#done = true;
    this.onStdinDrain(); // a body upload waiting on STDIN drain must not hang
    if (this.#worker === null) this.#pool.cancel(this);
    else if (!wasDone) this.#worker.abort();
    void this.#body.dispose();
  };
}
