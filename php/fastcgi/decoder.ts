/**
 * Incremental FastCGI record decoder: feed it socket chunks, it calls the sink once per complete record.
 * Survives any chunk boundary. Records that lie wholly inside one chunk are handed over as subarrays of
 * that chunk (zero copy); only a record spanning chunks is copied, into one buffer of its exact length.
 */

import { FastCgiProtocolError } from './errors.js';
import { END_REQUEST_BODY_LEN, HEADER_LEN, VERSION_1 } from './constants.js';

export interface RecordSink {
  /** `content` may be a view into the pushed chunk: copy it if it must outlive the chunk. */
  onRecord(type: number, requestId: number, content: Buffer): void;
}

/** Where in the current record the next byte belongs. Plain numbers: cheap compares on the hot path. */
const PHASE_HEADER = 0;
const PHASE_CONTENT = 1;
const PHASE_PADDING = 2;

const EMPTY = Buffer.alloc(0);

export class RecordDecoder {
  readonly #sink: RecordSink;
  /** Holds a header only while it is split across chunks. */
  readonly #headerBuf: Buffer;
  // Every field initialised at its declaration, in one order, so all instances share one hidden class.
  #headerFill = 0;
  #phase = PHASE_HEADER;
  #type = 0;
  #requestId = 0;
  #contentLength = 0;
  #paddingLength = 0;
  /** The current record's content: a view of a chunk, or a buffer being filled across chunks. */
  #content: Buffer = EMPTY;
  #contentFill = 0;
  #paddingLeft = 0;

  constructor(sink: RecordSink) {
    this.#sink = sink;
    this.#headerBuf = Buffer.alloc(HEADER_LEN);
  }

  /**
   * Bytes of a record received but not yet delivered (header, content and padding so far).
   * Non-zero when the peer closes means the stream was cut mid-record.
   */
  get buffered(): number {
    switch (this.#phase) {
      case PHASE_CONTENT:
        return HEADER_LEN + this.#contentFill;
      case PHASE_PADDING:
        return HEADER_LEN + this.#contentLength + this.#paddingLength - this.#paddingLeft;
      default:
        return this.#headerFill;
    }
  }

  /** Drops any partial record, e.g. before reusing the decoder on a fresh connection. */
  reset(): void {
    this.#headerFill = 0;
    this.#phase = PHASE_HEADER;
    this.#type = 0;
    this.#requestId = 0;
    this.#contentLength = 0;
    this.#paddingLength = 0;
    this.#content = EMPTY;
    this.#contentFill = 0;
    this.#paddingLeft = 0;
  }

  /**
   * Consumes a chunk, delivering every record it completes, in order. A loop, not recursion, so long
   * runs of small records cost no stack. The sink is called only at record boundaries (decoder state is
   * then clean, so the sink may call reset()); an exception from the sink propagates to the caller.
   */
  push(chunk: Buffer): void {
    const end = chunk.length;
    let pos = 0;
    while (pos < end) {
      if (this.#phase === PHASE_HEADER) {
        if (this.#headerFill === 0 && end - pos >= HEADER_LEN) {
          this.#readHeader(chunk, pos);
          pos += HEADER_LEN;
          const contentStart = pos;
          const contentEnd = contentStart + this.#contentLength;
          if (contentEnd + this.#paddingLength <= end) {
            // Fast path: the whole record is in this chunk; state is already at a clean boundary.
            pos = contentEnd + this.#paddingLength;
            this.#sink.onRecord(this.#type, this.#requestId, chunk.subarray(contentStart, contentEnd));
            continue;
          }
        } else {
          const n = Math.min(HEADER_LEN - this.#headerFill, end - pos);
          chunk.copy(this.#headerBuf, this.#headerFill, pos, pos + n);
          this.#headerFill += n;
          pos += n;
          if (this.#headerFill < HEADER_LEN) return;
          this.#headerFill = 0;
          this.#readHeader(this.#headerBuf, 0);
        }
        this.#contentFill = 0;
        this.#paddingLeft = this.#paddingLength;
        if (this.#contentLength > 0) {
          this.#phase = PHASE_CONTENT;
          continue;
        }
        this.#content = EMPTY;
        this.#phase = PHASE_PADDING;
        if (this.#paddingLeft === 0) this.#deliver();
        continue;
      }

      if (this.#phase === PHASE_CONTENT) {
        const avail = end - pos;
        if (this.#contentFill === 0 && avail >= this.#contentLength) {
          // Content starts at a chunk boundary and fits: keep a view, wait for the padding.
          this.#content = chunk.subarray(pos, pos + this.#contentLength);
          pos += this.#contentLength;
        } else {
          if (this.#contentFill === 0) this.#content = Buffer.allocUnsafe(this.#contentLength); // filled fully before use
          const n = Math.min(this.#contentLength - this.#contentFill, avail);
          chunk.copy(this.#content, this.#contentFill, pos, pos + n);
          this.#contentFill += n;
          pos += n;
          if (this.#contentFill < this.#contentLength) return;
        }
        this.#contentFill = this.#contentLength;
        this.#phase = PHASE_PADDING;
        if (this.#paddingLeft === 0) this.#deliver();
        continue;
      }

      // PHASE_PADDING: skip it; the bytes carry nothing.
      const n = Math.min(this.#paddingLeft, end - pos);
      this.#paddingLeft -= n;
      pos += n;
      if (this.#paddingLeft === 0) this.#deliver();
    }
  }

  #readHeader(buf: Buffer, off: number): void {
    const version = buf[off]!;
    if (version !== VERSION_1) {
      // The stream is unframed from here on; nothing after this byte can be trusted.
      this.reset();
      throw new FastCgiProtocolError(`unsupported FastCGI record version ${version} (expected ${VERSION_1})`);
    }
    this.#type = buf[off + 1]!;
    this.#requestId = buf.readUInt16BE(off + 2);
    this.#contentLength = buf.readUInt16BE(off + 4);
    this.#paddingLength = buf[off + 6]!;
  }

  /** Completes the current record: state back to a clean boundary first, then the sink. */
  #deliver(): void {
    const content = this.#content;
    this.#content = EMPTY;
    this.#contentFill = 0;
    this.#phase = PHASE_HEADER;
    this.#sink.onRecord(this.#type, this.#requestId, content);
  }
}

/** FCGI_EndRequestBody. appStatus is unsigned 32-bit big-endian (the CGI exit status). */
export function parseEndRequest(content: Buffer): { appStatus: number; protocolStatus: number } {
  if (content.length < END_REQUEST_BODY_LEN) {
    throw new FastCgiProtocolError(`END_REQUEST body is ${content.length} bytes, expected ${END_REQUEST_BODY_LEN}`);
  }
  return { appStatus: content.readUInt32BE(0), protocolStatus: content[4]! };
}
