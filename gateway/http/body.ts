/**
 * Request bodies are read completely before PHP is asked, as nginx does by default (fastcgi_request_buffering
 * on): a slow upload then holds a socket, not a PHP worker. Small bodies stay in memory; larger ones go to an
 * unlinked temp file, so nothing is held whole in memory and nothing is left behind if the process dies.
 * The total becomes CONTENT_LENGTH, also for chunked requests (as nginx sends it).
 */
import fs from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2Stream } from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import { ErrorCode, PhpgateError } from '../../core/errors.js';

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

/** Bodies up to this stay in memory (nginx's client_body_buffer_size is 8–16 KiB; PHP forms fit in this). */
export const MEMORY_LIMIT = 256 * 1024;
const READ_CHUNK = 64 * 1024;

export interface BodySink {
  /** Returns false when the sink is full: wait for drain() before writing more. */
  write(chunk: Buffer): boolean;
  drain(): Promise<void>;
}

export class RequestBody {
  readonly length: number;
  readonly #memory: Buffer[] | null;
  readonly #file: FileHandle | null;

  constructor(length: number, memory: Buffer[] | null, file: FileHandle | null) {
    this.length = length;
    this.#memory = memory;
    this.#file = file;
  }

  /** Streams the body into the sink with backpressure. */
  async pipeTo(sink: BodySink): Promise<void> {
    if (this.#memory !== null) {
      for (const chunk of this.#memory) if (!sink.write(chunk)) await sink.drain();
      return;
    }
    const file = this.#file!;
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
    await this.#file?.close();
  }
}

export const EMPTY_BODY = new RequestBody(0, [], null);

/**
 * Reads the whole body. Rejects with BodyTooLarge as soon as it passes `maxBytes` (the caller answers 413),
 * ClientTimeout when the client sends nothing for `idleMs` (nginx's client_body_timeout: 408), BodySpool when
 * the temp file cannot be written (500), or ClientAborted if the client goes away.
 */
export function readBody(req: IncomingMessage, maxBytes: number, idleMs: number, tmpDir: string = os.tmpdir()): Promise<RequestBody> {
  return new Promise((resolve, reject) => {
    let memory: Buffer[] | null = [];
    let size = 0;
    let file: FileHandle | null = null;
    let writing: Promise<unknown> = Promise.resolve();
    let failed = false;

    const idle = setTimeout(() => {
      fail(new PhpgateError(ErrorCode.ClientTimeout, `client sent no body data for ${idleMs} ms`));
    }, idleMs);

    const fail = (err: PhpgateError): void => {
      clearTimeout(idle);
      if (failed) return;
      failed = true;
      req.removeListener('data', onData);
      req.resume(); // drain what the client still sends so the socket can carry our error answer
      // Whether the last write worked or not, the handle must go: it holds an unlinked file's disk space.
      const close = (): Promise<void> => (file === null ? Promise.resolve() : file.close());
      void writing.then(close, close).catch((e: unknown) => void e /* closing an unlinked file: nothing to keep */);
      reject(err);
    };

    const onData = (chunk: Buffer): void => {
      idle.refresh();
      size += chunk.length;
      if (size > maxBytes) {
        fail(new PhpgateError(ErrorCode.BodyTooLarge, `request body over ${maxBytes} bytes`));
        return;
      }
      if (memory !== null) {
        memory.push(chunk);
        if (size <= MEMORY_LIMIT) return;
        const pending = memory;
        memory = null;
        req.pause();
        writing = openSpool(tmpDir).then(async (fh) => {
          file = fh;
          await fh.writeFile(Buffer.concat(pending)); // writeFile loops until every byte is written
          if (!failed) req.resume();
        });
        writing.catch((err: unknown) => fail(new PhpgateError(ErrorCode.BodySpool, `cannot spool request body: ${String(err)}`, { cause: err })));
        return;
      }
      req.pause();
      writing = writing.then(async () => {
        await file!.writeFile(chunk);
        if (!failed) req.resume();
      });
      writing.catch((err: unknown) => fail(new PhpgateError(ErrorCode.BodySpool, `cannot spool request body: ${String(err)}`, { cause: err })));
    };

    req.on('data', onData);
    req.once('end', () => {
      clearTimeout(idle);
      if (failed) return;
      void writing.then(
        () => resolve(new RequestBody(size, memory, file)),
        () => undefined,
      ); // a failed write is reported by writing.catch above
    });
    req.once('aborted', () => fail(new PhpgateError(ErrorCode.ClientAborted, 'client closed the connection while sending the body')));
    req.once('error', (err) => fail(new PhpgateError(ErrorCode.ClientAborted, `request body: ${err.message}`, { cause: err })));
  });
}

/** A temp file for a request body or a buffered response (`kind` names it while it exists), unlinked at once. */
export async function openSpool(tmpDir: string, kind: 'body' | 'response' = 'body'): Promise<FileHandle> {
  const name = path.join(tmpDir, `phpgate-${kind}-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  const fh = await fs.open(name, 'wx+', 0o600);
  // Unlinked at once: the open handle keeps the data, and a crash leaves no file behind.
  await fs.unlink(name);
  return fh;
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
