/** A file read from disk into a sink with backpressure: the static handler's answer for files too big to keep. */
import fs from 'node:fs';
import type { Logger } from '../../core/log.js';
import type { PhpgateError } from '../../core/errors.js';
import type { Exchange } from '../http/exchange.js';
import type { ClientCloseListener, ResponseHead, ResponseSink, Source } from '../http/sink.js';

/** A large file, read from disk into a sink with backpressure: paused while the client is full, closed with it. */
export class FileStream implements Source, ClientCloseListener {
  readonly #sink: ResponseSink;
  readonly #log: Logger;
  readonly #path: string;
  readonly #stream: fs.ReadStream;

  /** `chunk`: bytes per read (and at most held per slow client). */
  constructor(x: Exchange, sink: ResponseSink, log: Logger, path: string, fd: number | null, start: number, end: number, chunk: number) {
    this.#sink = sink;
    this.#log = log;
    this.#path = path;
    this.#stream =
      fd === null
        ? fs.createReadStream(path, { start, end, highWaterMark: chunk })
        : fs.createReadStream('', { fd, start, end, highWaterMark: chunk });
    x.watch(this);
  }

  start(head: ResponseHead): void {
    if (!this.#sink.start(head, this)) {
      this.#stream.destroy();
      return;
    }
    this.#stream.on('data', this.#onData);
    this.#stream.once('end', this.#onEnd);
    this.#stream.once('error', this.#onError);
  }

  resume(): void {
    this.#stream.resume();
  }

  clientClosed(): void {
    this.#stream.destroy();
  }

  readonly #onData = (chunk: Buffer | string): void => {
    if (!this.#sink.data(chunk as Buffer)) this.#stream.pause();
  };

  readonly #onEnd = (): void => {
    this.#sink.end();
  };

  readonly #onError = (err: Error): void => {
    this.#log.warn({ err, file: this.#path }, 'static file read failed mid-response');
    this.#sink.error(err as PhpgateError);
  };
}
