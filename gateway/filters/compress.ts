/**
 * gzip/brotli of any handler's answer (PHP, an HTTP upstream), as a sink in front of the next one: the policy is
 * compression.ts's, this is the streaming. A body that ends within WHOLE_BODY_MAX is compressed in one call and
 * goes out with its length; a bigger one streams through zlib with backpressure both ways; flushed output
 * (X-Accel-Buffering: no, server-sent events) is flushed through the encoder chunk by chunk.
 */
import type { BrotliCompress, Gzip } from 'node:zlib';
import type { PhpgateError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { withHeaders, type ClientCloseListener, type ResponseHead, type ResponseSink, type Source } from '../http/sink.js';
import { compressedHeaders, type Compression, type Encoding } from './compression.js';

/** Bodies up to this size are compressed whole, in one call (typical pages, about 1 ms at most); bigger ones stream through zlib. */
const WHOLE_BODY_MAX = 64 * 1024;

export class CompressFilter implements ResponseSink, Source, ClientCloseListener {
  readonly #next: ResponseSink;
  readonly #compression: Compression;
  readonly #accept: string | undefined;
  readonly #method: string | undefined;
  readonly #log: Logger;
  /** null: passing the answer through as it is. */
  #encoding: Encoding | null = null;
  #source: Source | null = null;
  #sizeHint: number | null = null;
  /** Flush the encoder after every chunk: the producer asked for no buffering. */
  #flushEach = false;
  /** The body so far while it may still be compressed whole; null once streaming (or passing through). */
  #held: Buffer[] | null = null;
  #heldBytes = 0;
  #encoder: Gzip | BrotliCompress | null = null;
  /** The producer was told to wait for the encoder's input to drain. */
  #producerWaiting = false;
  /** Encoder output the next sink refused: the encoder is paused until it resumes us. */
  #nextFull = false;
  /** end() was called: the rest is the encoder's to finish. */
  #ended = false;
  /** Failed or the client left: nothing more goes to the next sink. */
  #failed = false;

  constructor(next: ResponseSink, compression: Compression, acceptEncoding: string | undefined, method: string | undefined, log: Logger) {
    this.#next = next;
    this.#compression = compression;
    this.#accept = acceptEncoding;
    this.#method = method;
    this.#log = log;
  }

  start(head: ResponseHead, source: Source): boolean {
    const encoding = this.#compression.choose(this.#accept, this.#method, head.status, head, head.headers);
    if (encoding === null) return this.#next.start(head, source);
    this.#encoding = encoding;
    this.#source = source;
    this.#sizeHint = head.contentLength;
    // Server-sent events: each event must reach the browser when the producer flushes it, compressed or not.
    this.#flushEach = head.noBuffering || head.contentType.toLowerCase().startsWith('text/event-stream');
    const accepted = this.#next.start(withHeaders(head, compressedHeaders(head.headers, encoding), null), this);
    if (!accepted) return false;
    // The head goes out now, chunked, as nginx's gzip sends it (the encoder decides the length).
    this.#next.flush();
    if (this.#flushEach) this.#startEncoder();
    else this.#held = [];
    return true;
  }

  data(chunk: Buffer): boolean {
    if (this.#encoding === null) return this.#next.data(chunk);
    if (this.#ended || this.#failed) return true;
    if (this.#held !== null) {
      this.#held.push(chunk);
      this.#heldBytes += chunk.length;
      if (this.#heldBytes <= WHOLE_BODY_MAX) return true;
      // Too big to hold: streamed through the encoder from here on.
      const body = Buffer.concat(this.#held, this.#heldBytes);
      this.#held = null;
      this.#startEncoder();
      return this.#write(body);
    }
    return this.#write(chunk);
  }

  flush(): boolean {
    // While held, nothing is to go out yet; a streaming encoder's output reaches the next sink as it comes.
    return this.#encoding === null ? this.#next.flush() : true;
  }

  end(last?: Buffer): void {
    if (this.#encoding === null) {
      this.#next.end(last);
      return;
    }
    if (this.#ended || this.#failed) return;
    // A false from data() only asks to wait; at the end nothing more will come.
    if (last !== undefined && last.length > 0) this.data(last);
    this.#ended = true;
    const held = this.#held;
    if (held !== null) {
      // The whole body arrived within WHOLE_BODY_MAX: one compression call, one write.
      this.#held = null;
      let out: Buffer;
      try {
        out = this.#compression.compressWhole(this.#encoding, held.length === 1 ? held[0]! : Buffer.concat(held, this.#heldBytes));
      } catch (err) {
        this.#failed = true;
        this.#log.error({ err }, 'response compression failed');
        this.#next.error(err as PhpgateError);
        return;
      }
      this.#next.end(out);
      return;
    }
    this.#encoder!.end(); // its 'end' ends the next sink once the last bytes are out
  }

  error(err: PhpgateError): void {
    if (this.#encoding !== null) {
      if (this.#failed) return;
      this.#failed = true;
      this.#held = null;
      this.#encoder?.destroy();
    }
    this.#next.error(err);
  }

  // Source: the next sink took the encoder's output; more may come.
  resume(): void {
    if (!this.#nextFull) return;
    this.#nextFull = false;
    this.#encoder?.resume();
  }

  // ClientCloseListener: the encoder stops with the client.
  clientClosed(): void {
    this.#failed = true;
    this.#held = null;
    this.#encoder?.destroy();
  }

  #write(chunk: Buffer): boolean {
    const encoder = this.#encoder!;
    const more = encoder.write(chunk);
    if (this.#flushEach) encoder.flush();
    if (more) return true;
    if (!this.#producerWaiting) {
      this.#producerWaiting = true;
      encoder.once('drain', this.#onEncoderDrain);
    }
    return false;
  }

  #startEncoder(): void {
    const encoder = this.#compression.encoder(this.#encoding!, this.#sizeHint);
    this.#encoder = encoder;
    encoder.on('data', this.#onEncoded);
    encoder.once('end', this.#onEncoderEnd);
    encoder.once('error', this.#onEncoderError);
  }

  readonly #onEncoded = (out: Buffer): void => {
    if (this.#next.data(out) || this.#nextFull) return;
    this.#nextFull = true;
    this.#encoder!.pause();
  };

  readonly #onEncoderDrain = (): void => {
    this.#producerWaiting = false;
    this.#source!.resume();
  };

  readonly #onEncoderEnd = (): void => {
    this.#next.end();
  };

  readonly #onEncoderError = (err: Error): void => {
    if (this.#failed) return;
    this.#failed = true;
    this.#log.error({ err }, 'response compression failed');
    this.#next.error(err as PhpgateError);
  };
}
