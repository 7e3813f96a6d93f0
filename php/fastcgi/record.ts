/**
 * FastCGI 1.0 record encoders and the name-value pair codec. Pure: bytes in, bytes out.
 * Stream encoders return lists of buffers for socket.writev/cork so payloads are never copied.
 */

import { ErrorCode, PhpgateError } from '../../core/errors.js';
import { FastCgiProtocolError } from './errors.js';
import {
  BEGIN_REQUEST_BODY_LEN,
  END_REQUEST_BODY_LEN,
  HEADER_LEN,
  MAX_ALIGNED_CONTENT_LEN,
  NV_LONG_LEN_FLAG,
  NV_LONG_LEN_SIZE,
  NV_MAX_LEN,
  NV_SHORT_LEN_LIMIT,
  NV_SHORT_LEN_SIZE,
  RECORD_ALIGN,
  RecordType,
  VERSION_1,
} from './constants.js';

/** One zeroed buffer, and a view of it per possible padding length, shared by every record we emit. */
const ZERO_PADDING = Buffer.alloc(RECORD_ALIGN);
const PADDING_VIEWS: readonly Buffer[] = Array.from({ length: RECORD_ALIGN }, (_, n) => ZERO_PADDING.subarray(0, n));

/** Padding that brings a record's content up to the next RECORD_ALIGN boundary (the header is already aligned). */
function paddingFor(contentLength: number): number {
  return (RECORD_ALIGN - (contentLength % RECORD_ALIGN)) % RECORD_ALIGN;
}

/**
 * FCGI_Header. The writeUInt* calls range-check every field, so nothing is silently truncated.
 * Exported for the codec's tests: they pin the layout at field limits no stream encoder reaches.
 */
export function encodeHeader(type: RecordType, requestId: number, contentLength: number, paddingLength: number): Buffer {
  const h = Buffer.allocUnsafe(HEADER_LEN);
  writeHeader(h, type, requestId, contentLength, paddingLength);
  return h;
}

function writeHeader(buf: Buffer, type: number, requestId: number, contentLength: number, paddingLength: number, at = 0): void {
  buf.writeUInt8(VERSION_1, at);
  buf.writeUInt8(type, at + 1);
  buf.writeUInt16BE(requestId, at + 2);
  buf.writeUInt16BE(contentLength, at + 4);
  buf.writeUInt8(paddingLength, at + 6);
  buf.writeUInt8(0, at + 7); // reserved
}

/** FCGI_BEGIN_REQUEST: header and FCGI_BeginRequestBody in one 16-byte buffer. */
function encodeBeginRequest(requestId: number, role: number, flags: number): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_LEN + BEGIN_REQUEST_BODY_LEN);
  writeBeginRequest(buf, requestId, role, flags);
  return buf;
}

/** FCGI_BEGIN_REQUEST at the start of `buf`; returns the position after it. */
function writeBeginRequest(buf: Buffer, requestId: number, role: number, flags: number): number {
  writeHeader(buf, RecordType.BeginRequest, requestId, BEGIN_REQUEST_BODY_LEN, 0);
  buf.writeUInt16BE(role, HEADER_LEN);
  buf.writeUInt8(flags, HEADER_LEN + 2);
  buf.fill(0, HEADER_LEN + 3, HEADER_LEN + BEGIN_REQUEST_BODY_LEN); // reserved
  return HEADER_LEN + BEGIN_REQUEST_BODY_LEN;
}

/** FCGI_END_REQUEST: what an application sends. The gateway never does: exported for the tests' FastCGI peers. */
export function encodeEndRequest(requestId: number, appStatus: number, protocolStatus: number): Buffer {
  const buf = Buffer.alloc(HEADER_LEN + END_REQUEST_BODY_LEN); // zeroed: covers the 3 reserved bytes
  writeHeader(buf, RecordType.EndRequest, requestId, END_REQUEST_BODY_LEN, 0);
  buf.writeUInt32BE(appStatus, HEADER_LEN);
  buf.writeUInt8(protocolStatus, HEADER_LEN + 4);
  return buf;
}

/**
 * Splits a stream payload (STDIN, STDOUT, PARAMS, ...) into records: [header, content, padding?]...
 * Content parts are subarrays of `data` (no copy). Records carry at most MAX_ALIGNED_CONTENT_LEN so only
 * the last one may need padding. Empty `data` gives the single empty record that ends a stream.
 */
export function encodeStreamRecords(type: RecordType, requestId: number, data: Buffer): Buffer[] {
  if (data.length === 0) return [encodeHeader(type, requestId, 0, 0)];
  const parts: Buffer[] = [];
  for (let off = 0; off < data.length; off += MAX_ALIGNED_CONTENT_LEN) {
    const content = data.subarray(off, off + MAX_ALIGNED_CONTENT_LEN);
    const padding = paddingFor(content.length);
    parts.push(encodeHeader(type, requestId, content.length, padding), content);
    if (padding > 0) parts.push(PADDING_VIEWS[padding]!);
  }
  return parts;
}

/**
 * The pairs as PARAMS records, each holding whole pairs, then the empty one that ends the stream. The spec treats
 * PARAMS as one byte stream, but php-cgi decodes each record on its own and drops the connection at a pair cut in
 * two; a single pair over a record cannot be sent at all (ParamTooLarge, thrown before anything is written).
 */
function paramsRecords(requestId: number, nv: MeasuredPairs): Buffer[] {
  const parts: Buffer[] = [];
  const { items, lengths } = nv;
  for (let from = 0; from < items.length;) {
    let to = from;
    let size = 0;
    for (; to < items.length; to += 2) {
      const pair = pairSize(lengths[to]!, lengths[to + 1]!);
      if (size + pair > MAX_ALIGNED_CONTENT_LEN) break;
      size += pair;
    }
    if (to === from) {
      const name = typeof items[from] === 'string' ? (items[from] as string) : '?';
      const bytes = pairSize(lengths[from]!, lengths[from + 1]!);
      throw new PhpgateError(
        ErrorCode.ParamTooLarge,
        `CGI param ${name} is ${bytes} bytes: over the ${MAX_ALIGNED_CONTENT_LEN} a FastCGI record holds`,
      );
    }
    const padding = paddingFor(size);
    const record = Buffer.allocUnsafe(HEADER_LEN + size + padding);
    writeHeader(record, RecordType.Params, requestId, size, padding, 0);
    record.fill(0, writePairs(record, HEADER_LEN, nv, from, to));
    parts.push(record);
    from = to;
  }
  parts.push(encodeHeader(RecordType.Params, requestId, 0, 0));
  return parts;
}

function pairSize(nameLen: number, valueLen: number): number {
  return lengthSize(nameLen) + lengthSize(valueLen) + nameLen + valueLen;
}

/**
 * A request's opening in one buffer: BEGIN_REQUEST, the PARAMS stream and its end, and with `endStdin` the empty
 * STDIN record too (a request without a body). One buffer is one socket write: the per-request path to PHP skips
 * the stream machinery a write per record would cost.
 */
export function encodeRequestStart(
  requestId: number,
  role: number,
  flags: number,
  pairs: Iterable<readonly [string, ParamValue]>,
  endStdin: boolean,
): Buffer {
  const nv = measurePairs(pairs);
  if (nv.total > MAX_ALIGNED_CONTENT_LEN) {
    // Params over one record (huge cookies): rare enough for a record per few pairs and a copy.
    const parts = [encodeBeginRequest(requestId, role, flags), ...paramsRecords(requestId, nv)];
    if (endStdin) parts.push(encodeHeader(RecordType.Stdin, requestId, 0, 0));
    return Buffer.concat(parts);
  }
  const padding = paddingFor(nv.total);
  const paramsRecord = nv.total === 0 ? 0 : HEADER_LEN + nv.total + padding;
  const buf = Buffer.allocUnsafe(HEADER_LEN + BEGIN_REQUEST_BODY_LEN + paramsRecord + HEADER_LEN + (endStdin ? HEADER_LEN : 0));
  let pos = writeBeginRequest(buf, requestId, role, flags);
  if (nv.total > 0) {
    writeHeader(buf, RecordType.Params, requestId, nv.total, padding, pos);
    pos = writePairs(buf, pos + HEADER_LEN, nv);
    buf.fill(0, pos, pos + padding);
    pos += padding;
  }
  writeHeader(buf, RecordType.Params, requestId, 0, 0, pos);
  if (endStdin) writeHeader(buf, RecordType.Stdin, requestId, 0, 0, pos + HEADER_LEN);
  return buf;
}

function lengthSize(byteLength: number): number {
  if (byteLength > NV_MAX_LEN) {
    throw new FastCgiProtocolError(`name-value length ${byteLength} exceeds the 31-bit FastCGI limit`);
  }
  return byteLength < NV_SHORT_LEN_LIMIT ? NV_SHORT_LEN_SIZE : NV_LONG_LEN_SIZE;
}

function writeLength(buf: Buffer, pos: number, byteLength: number): number {
  if (byteLength < NV_SHORT_LEN_LIMIT) {
    buf[pos] = byteLength;
    return pos + NV_SHORT_LEN_SIZE;
  }
  buf.writeUInt32BE((byteLength | NV_LONG_LEN_FLAG) >>> 0, pos);
  return pos + NV_LONG_LEN_SIZE;
}

/**
 * A param's value: text (written as UTF-8), or bytes written as they are (a request header that is not UTF-8
 * must reach PHP byte for byte, as nginx passes it).
 */
export type ParamValue = string | Buffer;

/** Pairs flattened (name, value, name, value…) with the UTF-8 byte length of each, and the encoded size. */
interface MeasuredPairs {
  readonly items: ParamValue[];
  readonly lengths: number[];
  readonly total: number;
}

/** Below this many characters, text is counted and copied in JavaScript: cheaper than a call into C++ per string. */
const SHORT_TEXT = 64;

/** UTF-8 byte length; short ASCII text (nearly every CGI name and value) without leaving JavaScript. */
function byteLengthOf(v: ParamValue): number {
  if (typeof v !== 'string') return v.length;
  if (v.length > SHORT_TEXT) return Buffer.byteLength(v, 'utf8');
  for (let i = 0; i < v.length; i++) if (v.charCodeAt(i) > 0x7f) return Buffer.byteLength(v, 'utf8');
  return v.length;
}

function measurePairs(pairs: Iterable<readonly [string, ParamValue]>): MeasuredPairs {
  // Materialised once: `pairs` may be a one-shot iterator, and the sizes are needed before the first byte is written.
  const items: ParamValue[] = [];
  const lengths: number[] = [];
  let total = 0;
  for (const [name, value] of pairs) {
    const nameLen = byteLengthOf(name);
    const valueLen = byteLengthOf(value);
    total += pairSize(nameLen, valueLen);
    items.push(name, value);
    lengths.push(nameLen, valueLen);
  }
  return { items, lengths, total };
}

/** Writes the measured pairs (items `from` to `to`) from `pos`; returns the position after them. */
function writePairs(buf: Buffer, pos: number, nv: MeasuredPairs, from = 0, to = nv.items.length): number {
  const { items, lengths } = nv;
  for (let i = from; i < to; i++) {
    if (i % 2 === 0) {
      pos = writeLength(buf, pos, lengths[i]!);
      pos = writeLength(buf, pos, lengths[i + 1]!);
    }
    const v = items[i]!;
    const len = lengths[i]!;
    if (typeof v !== 'string') pos += v.copy(buf, pos);
    else if (len === v.length && len <= SHORT_TEXT) {
      for (let j = 0; j < len; j++) buf[pos + j] = v.charCodeAt(j);
      pos += len;
    } else pos += buf.write(v, pos, len, 'utf8');
  }
  return pos;
}

/**
 * Name-value pairs back from a PARAMS stream's bytes: the application's side, which the gateway never needs.
 * Exported for the tests: their FastCGI peers read requests with it, and it checks what encodeRequestStart writes.
 * Throws FastCgiProtocolError when a length or body runs past the end.
 */
export function decodeNameValuePairs(buf: Buffer): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let pos = 0;
  while (pos < buf.length) {
    const nameLen = readLength(buf, pos);
    pos += lengthFieldSize(buf[pos]!);
    const valueLen = readLength(buf, pos);
    pos += lengthFieldSize(buf[pos]!);
    const nameEnd = pos + nameLen;
    const valueEnd = nameEnd + valueLen;
    if (valueEnd > buf.length) {
      throw new FastCgiProtocolError(`name-value pair at byte ${pos} is truncated: needs ${nameLen + valueLen} bytes, ${buf.length - pos} left`);
    }
    out.push([buf.toString('utf8', pos, nameEnd), buf.toString('utf8', nameEnd, valueEnd)]);
    pos = valueEnd;
  }
  return out;
}

/** The high bit of a length's first byte says whether it is the 1- or 4-byte form. */
function lengthFieldSize(firstByte: number): number {
  return firstByte < NV_SHORT_LEN_LIMIT ? NV_SHORT_LEN_SIZE : NV_LONG_LEN_SIZE;
}

/** Reads the 1- or 4-byte length at `pos`, checking it is all there. */
function readLength(buf: Buffer, pos: number): number {
  if (pos >= buf.length) throw new FastCgiProtocolError(`name-value length missing at byte ${pos}`);
  const first = buf[pos]!;
  if (first < NV_SHORT_LEN_LIMIT) return first;
  if (pos + NV_LONG_LEN_SIZE > buf.length) throw new FastCgiProtocolError(`name-value length truncated at byte ${pos}`);
  return buf.readUInt32BE(pos) & NV_MAX_LEN;
}
