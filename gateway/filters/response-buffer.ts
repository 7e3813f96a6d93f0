/**
 * Response buffering, as nginx's `fastcgi_buffering on`: a producer's answer is taken as fast as it comes, whatever
 * the client's speed, so a slow client holds a socket (and some memory or a temp file), never a PHP worker. Without
 * it, 4 clients reading a big page at 1 KiB/s held all 4 workers (and one HTTP/2 connection with a zero window did
 * it with one stream per worker).
 *
 * The common case costs nothing: while the next sink takes what it is given (a client that keeps up), every call
 * passes straight through, no copy, no disk. Only when the next sink asks to wait (data() false) does this filter
 * keep what follows: in memory up to `memoryBytes`, then in an unlinked temp file (gone with its handle, so a crash
 * leaves nothing) up to `maxFileBytes`; past that the producer is told to wait as before (nginx's
 * fastcgi_max_temp_file_size). The end the producer gave is delivered once the backlog is out. The temp file is
 * closed whatever ends the request (the client gone, an error, the gateway stopping: the exchange tells its
 * watchers).
 *
 * `X-Accel-Buffering: no` (a head's noBuffering) turns it off for that answer: every call passes through with
 * its backpressure, so flushed output and server-sent events reach the client as they are written.
 */
import type { FileHandle } from 'node:fs/promises';
import os from 'node:os';
import type { PhpConfig } from '../../config/types.js';
import { ErrorCode, PhpgateError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { openSpool } from '../http/body.js';
import type { Exchange } from '../http/exchange.js';
import type { ClientCloseListener, ResponseHead, ResponseSink, Source } from '../http/sink.js';

/** Built once per configuration (php.response_*). */
export interface ResponseBuffering {
  /** Backlog kept in memory before the temp file is used (php.response_buffer_kb). */
  readonly memoryBytes: number;
  /** Where temp files are made (php.response_temp_dir; unlinked at once). */
  readonly tempDir: string;
  /** Largest temp file; past it the producer waits for the client (php.response_temp_max_mb; 0: no file). */
  readonly maxFileBytes: number;
  readonly log: Logger;
}

/** php.response_*: what puts one PHP answer's sink behind a buffer (its worker is free once PHP has answered). */
export function phpResponseBuffer(php: PhpConfig, log: Logger): (x: Exchange, sink: ResponseSink) => ResponseSink {
  if (!php.response_buffering) return unbuffered;
  const o: ResponseBuffering = {
    memoryBytes: php.response_buffer_kb * 1024,
    tempDir: php.response_temp_dir === '' ? os.tmpdir() : php.response_temp_dir,
    maxFileBytes: php.response_temp_max_mb * 1024 * 1024,
    log,
  };
  return (x, sink) => new ResponseBuffer(x, sink, o);
}

function unbuffered(_x: Exchange, sink: ResponseSink): ResponseSink {
  return sink;
}

/** A read back from the temp file: nginx's fastcgi_buffers are 8 × 8 KiB; a socket write of 64 KiB costs less. */
const READ_CHUNK = 64 * 1024;

/** Passing through: nothing is kept. */
const PASS = 0;
/** The next sink asked to wait: what comes is kept, and sent when it resumes us. */
const BACKLOG = 1;
/** X-Accel-Buffering: no, or the head was refused: every call passes through, backpressure included. */
const OFF = 2;
/** Ended, or the client went away: the backlog and the temp file are gone. */
const DONE = 3;
type State = typeof PASS | typeof BACKLOG | typeof OFF | typeof DONE;

/** The producer's terminal call, held until the backlog is out. */
type Ending = { readonly err: PhpgateError | null } | null;

export class ResponseBuffer implements ResponseSink, Source, ClientCloseListener {
  readonly #x: Exchange;
  readonly #next: ResponseSink;
  readonly #o: ResponseBuffering;
  #state: State = PASS;
  #source: Source | null = null;
  /** The next sink asked to wait and has not resumed us yet. */
  #waiting = false;
  /** The oldest part of the backlog: in memory, in order. */
  #memory: Buffer[] = [];
  #memoryBytes = 0;
  /** The newer part, once memory was full: written to the file in order, read back from #readPos. */
  #file: FileHandle | null = null;
  #opening = false;
  #toWrite: Buffer[] = [];
  #toWriteBytes = 0;
  #writing = false;
  /** Bytes on disk; bytes given to the file (on disk, being written, or waiting to be); bytes read back. */
  #written = 0;
  #fileEnd = 0;
  #readPos = 0;
  #reading = false;
  /** The producer flushed while the backlog was there: the next sink gets a flush once it is out. */
  #flushOwed = false;
  #ending: Ending = null;
  /** We asked the producer to wait (memory and file full, or the disk behind). */
  #producerWaiting = false;
  #watching = false;
  /** A pump is running: a resume from inside it must not start another. */
  #pumping = false;

  constructor(x: Exchange, next: ResponseSink, o: ResponseBuffering) {
    this.#x = x;
    this.#next = next;
    this.#o = o;
  }

  start(head: ResponseHead, source: Source): boolean {
    this.#source = source;
    if (head.noBuffering) this.#state = OFF;
    const accepted = this.#next.start(head, this);
    // Refused (a stale cached answer or an internal redirect went out): the producer makes no further call.
    if (!accepted) this.#state = OFF;
    return accepted;
  }

  data(chunk: Buffer): boolean {
    const state = this.#state;
    if (state === OFF) return this.#next.data(chunk);
    if (state === DONE) return true;
    if (state === PASS) {
      if (!this.#next.data(chunk)) this.#startBacklog();
      return true;
    }
    this.#keep(chunk);
    return this.#mayGoOn();
  }

  flush(): boolean {
    const state = this.#state;
    if (state === OFF) return this.#next.flush();
    if (state === DONE) return true;
    if (state === PASS) {
      if (!this.#next.flush()) this.#startBacklog();
      return true;
    }
    this.#flushOwed = true;
    return this.#mayGoOn();
  }

  end(last?: Buffer): void {
    if (this.#state === BACKLOG) {
      if (last !== undefined && last.length > 0) this.#keep(last);
      this.#ending = { err: null };
      this.#pump();
      return;
    }
    if (this.#state !== DONE) this.#next.end(last);
    this.#close();
  }

  error(err: PhpgateError): void {
    if (this.#state === BACKLOG) {
      // What PHP sent before it failed still goes out; then the cut shows the failure.
      this.#ending = { err };
      this.#pump();
      return;
    }
    if (this.#state !== DONE) this.#next.error(err);
    this.#close();
  }

  // Source: the next sink can take more.
  resume(): void {
    if (this.#state === OFF) {
      this.#source?.resume();
      return;
    }
    this.#waiting = false;
    if (this.#state === BACKLOG) this.#pump();
  }

  // ClientCloseListener: the backlog is for nobody now.
  clientClosed(): void {
    this.#close();
  }

  #startBacklog(): void {
    this.#state = BACKLOG;
    this.#waiting = true;
    if (!this.#watching) {
      this.#watching = true;
      this.#x.watch(this);
    }
  }

  /** Keeps a chunk at the end of the backlog: in memory while the file holds nothing and memory has room. */
  #keep(chunk: Buffer): void {
    const fileEmpty = this.#readPos === this.#fileEnd;
    if (this.#o.maxFileBytes === 0 || (fileEmpty && this.#memoryBytes + chunk.length <= this.#o.memoryBytes)) {
      this.#memory.push(chunk);
      this.#memoryBytes += chunk.length;
      return;
    }
    this.#toWrite.push(chunk);
    this.#toWriteBytes += chunk.length;
    this.#fileEnd += chunk.length;
    this.#writeOut();
  }

  /** Whether the producer may send more now; false: it waits for our resume (as for a slow client without buffering). */
  #mayGoOn(): boolean {
    const o = this.#o;
    const full =
      o.maxFileBytes === 0
        ? this.#memoryBytes >= o.memoryBytes
        : // The file at its limit, or the disk behind by more than memory may hold.
          this.#fileEnd >= o.maxFileBytes || this.#fileEnd - this.#written >= Math.max(o.memoryBytes, READ_CHUNK);
    if (!full) return true;
    this.#producerWaiting = true;
    return false;
  }

  /** The backlog shrank or reached the disk: a producer told to wait may go on. */
  #letProducerGoOn(): void {
    if (!this.#producerWaiting || this.#ending !== null || this.#state !== BACKLOG) return;
    // The same test as #mayGoOn, without setting the flag.
    this.#producerWaiting = false;
    if (this.#mayGoOn()) this.#source?.resume();
  }

  /** Sends what the next sink takes: memory first, then the file; then the held flush and end. */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (this.#state === BACKLOG && !this.#waiting) {
        const chunk = this.#memory.shift();
        if (chunk !== undefined) {
          this.#memoryBytes -= chunk.length;
          if (!this.#next.data(chunk)) this.#waiting = true;
          continue;
        }
        if (this.#file !== null && this.#readPos < this.#written) {
          this.#readBack();
          break;
        }
        if (this.#fileEnd > this.#written) break; // the rest is on its way to the file: its write calls us again
        this.#drained();
        break;
      }
    } finally {
      this.#pumping = false;
    }
    this.#letProducerGoOn();
  }

  /** Nothing is kept any more: the file is reused from its start, the held flush and end go out. */
  #drained(): void {
    this.#written = 0;
    this.#fileEnd = 0;
    this.#readPos = 0;
    if (this.#flushOwed) {
      this.#flushOwed = false;
      if (!this.#next.flush()) {
        this.#waiting = true;
        return;
      }
    }
    const ending = this.#ending;
    if (ending === null) {
      // Caught up: pass straight through again (the temp file stays open for a next backlog).
      this.#state = PASS;
      if (this.#producerWaiting) {
        this.#producerWaiting = false;
        this.#source?.resume();
      }
      return;
    }
    this.#close();
    if (ending.err === null) this.#next.end();
    else this.#next.error(ending.err);
  }

  #readBack(): void {
    if (this.#reading) return;
    this.#reading = true;
    const file = this.#file!;
    const pos = this.#readPos;
    // A fresh buffer per read: the socket may still hold the previous one in its write queue.
    const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, this.#written - pos));
    file.read(buf, 0, buf.length, pos).then(
      ({ bytesRead }) => {
        this.#reading = false;
        if (this.#state === DONE) {
          this.#closeFile();
          return;
        }
        if (bytesRead === 0) {
          this.#failSpool(new Error(`temp file ended at ${pos} of ${this.#written} bytes`));
          return;
        }
        this.#readPos += bytesRead;
        if (!this.#next.data(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead))) this.#waiting = true;
        this.#pump();
      },
      (err: unknown) => {
        this.#reading = false;
        this.#failSpool(err);
      },
    );
  }

  /** Writes what waits for the file, in order, one write at a time. */
  #writeOut(): void {
    if (this.#writing || this.#toWriteBytes === 0 || this.#state === DONE) return;
    if (this.#file === null) {
      if (this.#opening) return;
      this.#opening = true;
      openSpool(this.#o.tempDir, 'response').then(
        (fh) => {
          this.#opening = false;
          this.#file = fh;
          if (this.#state === DONE) this.#closeFile();
          else this.#writeOut();
        },
        (err: unknown) => {
          this.#opening = false;
          this.#failSpool(err);
        },
      );
      return;
    }
    this.#writing = true;
    const parts = this.#toWrite;
    const bytes = this.#toWriteBytes;
    this.#toWrite = [];
    this.#toWriteBytes = 0;
    const file = this.#file;
    // The pieces are PHP's records (a few KiB each): one write of their concatenation, not one per record.
    const buf = parts.length === 1 ? parts[0]! : Buffer.concat(parts, bytes);
    void writeAll(file, buf, this.#written).then(
      () => {
        this.#writing = false;
        if (this.#state === DONE) {
          this.#closeFile();
          return;
        }
        this.#written += bytes;
        this.#writeOut();
        this.#pump();
      },
      (err: unknown) => {
        this.#writing = false;
        this.#failSpool(err);
      },
    );
  }

  /** The temp file could not be written or read: what was kept is lost, so the answer is cut (nginx: 502). */
  #failSpool(err: unknown): void {
    if (this.#state === DONE) {
      this.#closeFile();
      return;
    }
    this.#o.log.error({ err, dir: this.#o.tempDir, url: this.#x.req.url }, 'cannot buffer the response in a temp file');
    this.#close();
    this.#next.error(new PhpgateError(ErrorCode.UpstreamClosed, `response temp file: ${String(err)}`, { cause: err }));
  }

  #close(): void {
    this.#state = DONE;
    this.#memory = [];
    this.#memoryBytes = 0;
    this.#toWrite = [];
    this.#toWriteBytes = 0;
    this.#fileEnd = this.#written;
    this.#closeFile();
  }

  /** Closes the temp file once no read or write is under way (their ends call this again). */
  #closeFile(): void {
    const file = this.#file;
    if (file === null || this.#reading || this.#writing) return;
    this.#file = null;
    file.close().catch((err: unknown) => this.#o.log.warn({ err }, 'closing a response temp file failed'));
  }
}

/** Writes every byte of `buf` at `pos` (a write may take fewer). */
async function writeAll(file: FileHandle, buf: Buffer, pos: number): Promise<void> {
  for (let off = 0; off < buf.length;) {
    const { bytesWritten } = await file.write(buf, off, buf.length - off, pos + off);
    if (bytesWritten === 0) throw new Error('temp file write wrote nothing');
    off += bytesWritten;
  }
}
