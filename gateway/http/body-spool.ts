/**
 * Reading a request body whole, before PHP is asked (as nginx's fastcgi_request_buffering), without letting bodies
 * cost unbounded memory or CPU:
 *
 * - Every body is copied into one buffer of its own (at most MEMORY_LIMIT), never kept as the socket's chunks: a
 *   chunk is a slice of a larger read buffer, and thousands of 1-byte chunks would keep thousands of those alive.
 *   The copy is the only work per chunk.
 * - Those buffers come out of one budget for all requests (BodyMemory: server.limits.body_memory_mb). A body that
 *   fits its buffer stays in memory; a larger one, or any body once the budget is spent, goes to an unlinked temp
 *   file, written in batches of a buffer's size.
 * - Past the budget, a body still gets a buffer to gather what arrives in one go (a socket read's many chunks)
 *   into one write, but only until that write is done: it is freed at once, so a slow upload then holds nothing.
 * - While a file is opened or written, the request is paused: a client sending faster than the disk takes waits
 *   in its own socket buffers (TCP backpressure, HTTP/2 flow control), and nothing queues up in the gateway, so a
 *   client that leaves stops all work for it at once (at most the write under way finishes).
 */
import fs from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { ErrorCode, PhpgateError } from '../../core/errors.js';

/**
 * A body up to this stays in memory, budget permitting (a typical upload or form never touches the disk: nginx's
 * client_body_buffer_size is 16 KiB, but writing and reading back a file costs more than the memory this holds for
 * a request's short life, and the budget bounds them all together).
 */
export const MEMORY_LIMIT = 256 * 1024;
/** The batches a spooled body is written in. */
const BATCH = 64 * 1024;
/** The first buffer of a body whose length is unknown or over MEMORY_LIMIT: grown by doubling. */
const FIRST_BUFFER = 16 * 1024;
/** A buffer past the budget: only for one write. */
const TRANSIENT_BUFFER = 16 * 1024;
const READ_CHUNK = 64 * 1024;
/**
 * Each chunk of a body costs node a fixed amount of work (the parser's callback, the stream's push and 'data'), so a
 * body of 1-byte chunks costs about a microsecond per byte, and what the kernel has buffered for the connection
 * (megabytes) still runs through after the client left. A body whose chunks average under MIN_CHUNK_AVERAGE bytes
 * once CHUNKS_BEFORE_CHECK of them have arrived is refused (400) and its connection closed, which drops what is
 * still buffered. No real client streams a request body this way: each chunk costs it more in framing.
 */
const MIN_CHUNK_AVERAGE = 16;
const CHUNKS_BEFORE_CHECK = 16 * 1024;

/** The bytes of request-body buffers held by all requests together, against server.limits.body_memory_mb. */
export class BodyMemory {
  #limit: number;
  #used = 0;

  constructor(limitBytes: number) {
    this.#limit = limitBytes;
  }

  /** A reload's new limit: buffers taken already stay counted. */
  resize(limitBytes: number): this {
    this.#limit = limitBytes;
    return this;
  }

  get used(): number {
    return this.#used;
  }

  take(bytes: number): boolean {
    if (this.#used + bytes > this.#limit) return false;
    this.#used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.#used = Math.max(0, this.#used - bytes);
  }
}

export interface BodySink {
  /** Returns false when the sink is full: wait for drain() before writing more. */
  write(chunk: Buffer): boolean;
  drain(): Promise<void>;
}

export class RequestBody {
  readonly length: number;
  #memory: Buffer | null;
  readonly #file: FileHandle | null;
  #release: (() => void) | null;

  /** `release` gives a memory body's buffer back to the budget, once PHP has it. */
  constructor(length: number, memory: Buffer | null, file: FileHandle | null, release: (() => void) | null = null) {
    this.length = length;
    this.#memory = memory;
    this.#file = file;
    this.#release = release;
  }

  /** Streams the body into the sink with backpressure. */
  async pipeTo(sink: BodySink): Promise<void> {
    if (this.#file === null) {
      if (this.#memory !== null && this.length > 0 && !sink.write(this.#memory)) await sink.drain();
      return;
    }
    const file = this.#file;
    for (let pos = 0; pos < this.length;) {
      // A fresh buffer per chunk: the socket may still hold the previous one in its write queue.
      const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, this.length - pos));
      const { bytesRead } = await file.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      if (!sink.write(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead))) await sink.drain();
    }
  }

  async dispose(): Promise<void> {
    this.#memory = null;
    const release = this.#release;
    this.#release = null;
    release?.();
    await this.#file?.close();
  }
}

export const EMPTY_BODY = new RequestBody(0, null, null);

/**
 * Reads the whole body. Rejects with BodyTooLarge as soon as it passes `maxBytes` (the caller answers 413),
 * ClientTimeout when the client sends nothing for `idleMs` (nginx's client_body_timeout: 408), BodySpool when
 * the temp file cannot be written (500), or ClientAborted if the client goes away.
 */
export function readBody(req: IncomingMessage, maxBytes: number, idleMs: number, memory: BodyMemory, tmpDir = os.tmpdir()): Promise<RequestBody> {
  return new Promise((resolve, reject) => new BodyReader(req, maxBytes, idleMs, memory, tmpDir, resolve, reject).start());
}

class BodyReader {
  readonly #req: IncomingMessage;
  readonly #max: number;
  readonly #memory: BodyMemory;
  readonly #tmpDir: string;
  readonly #resolve: (body: RequestBody) => void;
  readonly #reject: (err: PhpgateError) => void;
  readonly #idle: NodeJS.Timeout;
  /** The first buffer's size: the declared length when it fits in memory. */
  readonly #first: number;
  #size = 0;
  #chunks = 0;
  #buf: Buffer | null = null;
  #fill = 0;
  /** Bytes of #buf taken from the budget; 0 for a transient buffer (past the budget). */
  #charged = 0;
  /** The body goes to a file (opened with the first write). */
  #spooling = false;
  #file: FileHandle | null = null;
  /** An open or write under way: reading is paused meanwhile. */
  #busy = false;
  /** Chunks that found no room, written after what is buffered. */
  #held: Buffer[] = [];
  #soon: NodeJS.Immediate | null = null;
  #ended = false;
  #failed = false;

  constructor(
    req: IncomingMessage,
    max: number,
    idleMs: number,
    memory: BodyMemory,
    tmpDir: string,
    resolve: (body: RequestBody) => void,
    reject: (err: PhpgateError) => void,
  ) {
    this.#req = req;
    this.#max = max;
    this.#memory = memory;
    this.#tmpDir = tmpDir;
    this.#resolve = resolve;
    this.#reject = reject;
    const declared = Number(req.headers['content-length'] ?? NaN);
    this.#first = declared > 0 && declared <= MEMORY_LIMIT ? declared : FIRST_BUFFER;
    this.#idle = setTimeout(() => this.#fail(new PhpgateError(ErrorCode.ClientTimeout, `client sent no body data for ${idleMs} ms`)), idleMs);
  }

  start(): void {
    const req = this.#req;
    req.on('data', this.#onData);
    req.once('end', () => {
      clearTimeout(this.#idle);
      this.#ended = true;
      this.#finish();
    });
    req.once('aborted', () => this.#fail(new PhpgateError(ErrorCode.ClientAborted, 'client closed the connection while sending the body')));
    req.once('error', (err: Error) => this.#fail(new PhpgateError(ErrorCode.ClientAborted, `request body: ${err.message}`, { cause: err })));
  }

  readonly #onData = (chunk: Buffer): void => {
    this.#idle.refresh();
    this.#size += chunk.length;
    if (this.#size > this.#max) {
      this.#fail(new PhpgateError(ErrorCode.BodyTooLarge, `request body over ${this.#max} bytes`));
      return;
    }
    if (++this.#chunks % CHUNKS_BEFORE_CHECK === 0 && this.#size < this.#chunks * MIN_CHUNK_AVERAGE) {
      const average = (this.#size / this.#chunks).toFixed(1);
      this.#fail(new PhpgateError(ErrorCode.BodyChunks, `request body in ${this.#chunks} chunks of ${average} bytes on average`));
      return;
    }
    if (this.#busy) {
      this.#held.push(chunk); // emitted before the pause took hold; rare
      return;
    }
    const buf = this.#buf;
    if (buf !== null && buf.length - this.#fill >= chunk.length) {
      chunk.copy(buf, this.#fill);
      this.#fill += chunk.length;
      if (this.#charged === 0) this.#flushSoon();
      return;
    }
    if (!this.#spooling && this.#grow(this.#fill + chunk.length)) {
      chunk.copy(this.#buf!, this.#fill);
      this.#fill += chunk.length;
      return;
    }
    this.#spooling = true;
    if (buf === null && this.#take(chunk.length)) {
      chunk.copy(this.#buf!, 0);
      this.#fill = chunk.length;
      if (this.#charged === 0) this.#flushSoon();
      return;
    }
    // No room: what is buffered goes to the file, then this chunk.
    this.#held.push(chunk);
    this.#flush();
  };

  /** In memory still: a buffer of at least `need` bytes from the budget; false when it must spool. */
  #grow(need: number): boolean {
    if (need > MEMORY_LIMIT) return false;
    const size = Math.min(MEMORY_LIMIT, Math.max(need, this.#first, 2 * (this.#buf?.length ?? 0)));
    if (!this.#memory.take(size - this.#charged)) return false;
    const grown = Buffer.allocUnsafe(size);
    this.#buf?.copy(grown, 0, 0, this.#fill);
    this.#buf = grown;
    this.#charged = size;
    return true;
  }

  /** Spooling without a buffer: one from the budget, or a transient one past it; false when `need` fits neither. */
  #take(need: number): boolean {
    const charged = this.#memory.take(BATCH);
    const size = charged ? BATCH : TRANSIENT_BUFFER;
    this.#buf = Buffer.allocUnsafe(size);
    this.#charged = charged ? size : 0;
    return need <= size;
  }

  /** A transient buffer is written once what arrived in one go (one socket read's chunks) is in it. */
  #flushSoon(): void {
    this.#soon ??= setImmediate(() => {
      this.#soon = null;
      this.#flush();
    });
  }

  #flush(): void {
    if (this.#busy || this.#failed) return;
    this.#busy = true;
    this.#req.pause();
    this.#write().then(
      () => {
        this.#busy = false;
        if (this.#failed) {
          this.#closeFile();
          return;
        }
        if (this.#ended) this.#finish();
        else this.#req.resume();
      },
      (err: unknown) => {
        this.#busy = false;
        this.#fail(new PhpgateError(ErrorCode.BodySpool, `cannot spool request body: ${String(err)}`, { cause: err }));
      },
    );
  }

  async #write(): Promise<void> {
    this.#file ??= await openSpool(this.#tmpDir);
    if (this.#fill > 0) {
      await writeAll(this.#file, this.#buf!, this.#fill);
      this.#fill = 0;
    }
    while (this.#held.length > 0 && !this.#failed) {
      const chunk = this.#held.shift()!;
      const buf = this.#buf;
      if (buf !== null && buf.length - this.#fill >= chunk.length) {
        chunk.copy(buf, this.#fill);
        this.#fill += chunk.length;
      } else {
        if (this.#fill > 0) await writeAll(this.#file, buf!, this.#fill);
        this.#fill = 0;
        await writeAll(this.#file, chunk, chunk.length); // larger than a buffer: no batching needed
      }
    }
    if (this.#charged === 0 && this.#fill === 0)
      this.#buf = null; // transient: freed as soon as it is written
    else if (this.#charged === 0) this.#flushSoon();
  }

  /** At the end of the body (and after any write under way): resolve, in memory or from the file. */
  #finish(): void {
    if (!this.#ended || this.#busy || this.#failed) return;
    if (!this.#spooling && this.#held.length === 0) {
      const buf = this.#buf;
      const charged = this.#charged;
      this.#buf = null;
      this.#charged = 0;
      const memory = this.#memory;
      const release = charged === 0 ? null : (): void => memory.give(charged);
      this.#resolve(new RequestBody(this.#size, buf?.subarray(0, this.#fill) ?? null, null, release));
      return;
    }
    if (this.#fill > 0 || this.#held.length > 0 || this.#file === null) {
      this.#spooling = true;
      this.#flush(); // comes back here once written
      return;
    }
    this.#dropBuffer();
    this.#resolve(new RequestBody(this.#size, null, this.#file));
  }

  #fail(err: PhpgateError): void {
    clearTimeout(this.#idle);
    if (this.#failed) return;
    this.#failed = true;
    if (this.#soon !== null) clearImmediate(this.#soon);
    this.#req.removeListener('data', this.#onData);
    this.#req.resume(); // drain what the client still sends so the socket can carry our error answer
    this.#held = [];
    this.#dropBuffer();
    // The handle must go (it holds an unlinked file's disk space): now, or when the write under way ends.
    if (!this.#busy) this.#closeFile();
    this.#reject(err);
  }

  #dropBuffer(): void {
    this.#memory.give(this.#charged);
    this.#charged = 0;
    this.#buf = null;
    this.#fill = 0;
  }

  #closeFile(): void {
    const file = this.#file;
    this.#file = null;
    file?.close().catch((e: unknown) => void e /* closing an unlinked file: nothing to keep */);
  }
}

async function writeAll(file: FileHandle, buf: Buffer, length: number): Promise<void> {
  for (let done = 0; done < length;) done += (await file.write(buf, done, length - done, null)).bytesWritten;
}

/** A temp file for a request body or a buffered response (`kind` names it while it exists), unlinked at once. */
export async function openSpool(tmpDir: string, kind: 'body' | 'response' = 'body'): Promise<FileHandle> {
  const name = path.join(tmpDir, `phpgate-${kind}-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  const fh = await fs.open(name, 'wx+', 0o600);
  // Unlinked at once: the open handle keeps the data, and a crash leaves no file behind.
  await fs.unlink(name);
  return fh;
}
