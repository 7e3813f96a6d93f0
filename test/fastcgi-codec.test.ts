import { test, describe } from 'node:test';
import assert from 'node:assert/strict';

import { ErrorCode, PhpgateError } from '../core/errors.js';
import { FastCgiProtocolError } from '../php/fastcgi/errors.js';
import { BEGIN_REQUEST_BODY_LEN, Flags, HEADER_LEN, MAX_CONTENT_LEN, ProtocolStatus, RecordType, Role } from '../php/fastcgi/constants.js';
import type { RecordSink } from '../php/fastcgi/decoder.js';
import { RecordDecoder, parseEndRequest } from '../php/fastcgi/decoder.js';
import {
  decodeNameValuePairs,
  encodeEndRequest,
  encodeHeader,
  encodeRequestStart,
  encodeStreamRecords,
  type ParamValue,
} from '../php/fastcgi/record.js';

interface Rec {
  type: number;
  requestId: number;
  content: Buffer;
}

/** Sink that keeps copies, so assertions do not depend on the lifetime of pushed chunks. */
class CollectingSink implements RecordSink {
  readonly records: Rec[] = [];
  onRecord(type: number, requestId: number, content: Buffer): void {
    this.records.push({ type, requestId, content: Buffer.from(content) });
  }
}

/** mulberry32: small seeded PRNG so random-boundary failures are reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function patterned(length: number, seed: number): Buffer {
  const rand = prng(seed);
  const buf = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) buf[i] = Math.floor(rand() * 256);
  return buf;
}

function decodeChunks(chunks: Iterable<Buffer>): Rec[] {
  const sink = new CollectingSink();
  const decoder = new RecordDecoder(sink);
  for (const c of chunks) decoder.push(c);
  assert.equal(decoder.buffered, 0, 'no partial record left over');
  return sink.records;
}

function* oneByteAtATime(wire: Buffer): Generator<Buffer> {
  for (let i = 0; i < wire.length; i++) yield wire.subarray(i, i + 1);
}

function* randomChunks(wire: Buffer, rand: () => number, maxChunk: number): Generator<Buffer> {
  let pos = 0;
  while (pos < wire.length) {
    const n = 1 + Math.floor(rand() * maxChunk);
    yield wire.subarray(pos, pos + n);
    pos += n;
  }
}

/** Joins stdout records of one request back into the payload. */
function joinContent(records: readonly Rec[], type: number): Buffer {
  return Buffer.concat(records.filter((r) => r.type === type).map((r) => r.content));
}

const BEGIN_REQUEST_LEN = HEADER_LEN + BEGIN_REQUEST_BODY_LEN;
const EMPTY = Buffer.alloc(0);

/** BEGIN_REQUEST as a request's opening starts: encodeRequestStart's first record. */
function beginRequest(requestId: number, role: number, flags: number): Buffer {
  return encodeRequestStart(requestId, role, flags, [], false).subarray(0, BEGIN_REQUEST_LEN);
}

/** The PARAMS stream of a request's opening (what follows its BEGIN_REQUEST), ended by the empty PARAMS record. */
function paramsStream(requestId: number, pairs: Iterable<readonly [string, ParamValue]>): Buffer {
  return encodeRequestStart(requestId, Role.Responder, Flags.KeepConn, pairs, false).subarray(BEGIN_REQUEST_LEN);
}

/** The name-value bytes of `pairs` as they go to PHP: the content of that PARAMS stream. */
function pairsBytes(pairs: Iterable<readonly [string, ParamValue]>): Buffer {
  return joinContent(decodeChunks([paramsStream(1, pairs)]), RecordType.Params);
}

/**
 * A request's opening put together from the general stream encoder, record by record: what encodeRequestStart's
 * single buffer must equal.
 */
function openingFromStreamRecords(
  requestId: number,
  role: number,
  flags: number,
  pairs: ReadonlyArray<readonly [string, ParamValue]>,
  endStdin: boolean,
): Buffer {
  const nv = pairsBytes(pairs);
  return Buffer.concat([
    beginRequest(requestId, role, flags),
    ...(nv.length > 0 ? encodeStreamRecords(RecordType.Params, requestId, nv) : []),
    ...encodeStreamRecords(RecordType.Params, requestId, EMPTY),
    ...(endStdin ? encodeStreamRecords(RecordType.Stdin, requestId, EMPTY) : []),
  ]);
}

/**
 * A realistic conversation on one connection, as the application would see it and answer it:
 * begin, params, stdin, then stdout of awkward sizes, stderr, end. Returns the wire bytes and the
 * records the decoder must produce from them.
 */
function conversation(): { wire: Buffer; expected: Rec[] } {
  const parts: Buffer[] = [];
  const expected: Rec[] = [];
  const add = (bufs: Buffer[], recs: Rec[]): void => {
    parts.push(...bufs);
    expected.push(...recs);
  };
  const streamRecs = (type: number, requestId: number, data: Buffer): Rec[] => {
    const recs: Rec[] = [];
    for (let off = 0; off < data.length; off += 65528) recs.push({ type, requestId, content: data.subarray(off, off + 65528) });
    if (data.length === 0) recs.push({ type, requestId, content: Buffer.alloc(0) });
    return recs;
  };

  const begin = beginRequest(7, Role.Responder, Flags.KeepConn);
  add([begin], [{ type: RecordType.BeginRequest, requestId: 7, content: begin.subarray(HEADER_LEN) }]);
  // SCRIPT_FILENAME=/srv/index.php and QUERY_STRING=a=é as name-value pairs (lengths in bytes: é is two).
  const params = Buffer.concat([
    Buffer.from([15, 14]),
    Buffer.from('SCRIPT_FILENAME/srv/index.php'),
    Buffer.from([12, 4]),
    Buffer.from('QUERY_STRINGa=é'),
  ]);
  add(encodeStreamRecords(RecordType.Params, 7, params), streamRecs(RecordType.Params, 7, params));
  add(encodeStreamRecords(RecordType.Params, 7, Buffer.alloc(0)), streamRecs(RecordType.Params, 7, Buffer.alloc(0)));
  for (const [i, len] of [0, 1, 7, 8, 9, 15, 16, 1000, 65528, 65529, 70_001].entries()) {
    const data = patterned(len, i + 1);
    const type = i % 3 === 2 ? RecordType.Stderr : RecordType.Stdout;
    add(encodeStreamRecords(type, 7, data), streamRecs(type, 7, data));
  }
  const end = encodeEndRequest(7, 0, ProtocolStatus.RequestComplete);
  add([end], [{ type: RecordType.EndRequest, requestId: 7, content: end.subarray(HEADER_LEN) }]);
  return { wire: Buffer.concat(parts), expected };
}

describe('fixed-layout records: exact bytes', () => {
  const headerCases: Array<{ name: string; args: [RecordType, number, number, number]; bytes: number[] }> = [
    { name: 'stdout, id 1, 5 bytes + 3 padding', args: [RecordType.Stdout, 1, 5, 3], bytes: [1, 6, 0, 1, 0, 5, 3, 0] },
    { name: 'params, big-endian id and length', args: [RecordType.Params, 0x1234, 0xabcd, 0], bytes: [1, 4, 0x12, 0x34, 0xab, 0xcd, 0, 0] },
    { name: 'stdin, maximal content length', args: [RecordType.Stdin, 0xffff, MAX_CONTENT_LEN, 255], bytes: [1, 5, 0xff, 0xff, 0xff, 0xff, 0xff, 0] },
    { name: 'empty terminator', args: [RecordType.Stdin, 1, 0, 0], bytes: [1, 5, 0, 1, 0, 0, 0, 0] },
    { name: 'ABORT_REQUEST is a bare header', args: [RecordType.AbortRequest, 9, 0, 0], bytes: [1, 2, 0, 9, 0, 0, 0, 0] },
  ];
  for (const c of headerCases) {
    test(`encodeHeader: ${c.name}`, () => {
      assert.deepEqual([...encodeHeader(...c.args)], c.bytes);
    });
  }

  test('encodeHeader rejects a content length that does not fit 16 bits', () => {
    assert.throws(() => encodeHeader(RecordType.Stdout, 1, MAX_CONTENT_LEN + 1, 0), RangeError);
  });

  test('BEGIN_REQUEST: responder with keep-conn', () => {
    assert.deepEqual([...beginRequest(1, Role.Responder, Flags.KeepConn)], [1, 1, 0, 1, 0, 8, 0, 0, /* body */ 0, 1, 1, 0, 0, 0, 0, 0]);
  });

  test('BEGIN_REQUEST: filter role, no flags, id 258', () => {
    assert.deepEqual([...beginRequest(258, Role.Filter, 0)], [1, 1, 1, 2, 0, 8, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0]);
  });

  test('encodeEndRequest: app status is 32-bit big-endian, then protocol status', () => {
    assert.deepEqual([...encodeEndRequest(3, 0x01020304, ProtocolStatus.Overloaded)], [1, 3, 0, 3, 0, 8, 0, 0, 1, 2, 3, 4, 2, 0, 0, 0]);
  });
});

describe('encodeStreamRecords', () => {
  test('empty data yields exactly one empty record (the stream terminator)', () => {
    const parts = encodeStreamRecords(RecordType.Stdin, 4, Buffer.alloc(0));
    assert.equal(parts.length, 1);
    assert.deepEqual([...parts[0]!], [1, 5, 0, 4, 0, 0, 0, 0]);
    const recs = decodeChunks(parts);
    assert.deepEqual(recs, [{ type: RecordType.Stdin, requestId: 4, content: Buffer.alloc(0) }]);
  });

  const paddingCases = [1, 5, 7, 8, 9, 13, 16, 100, 65527, 65528, 65529, 65535, 65536];
  for (const len of paddingCases) {
    test(`${len} bytes: records 8-byte aligned, content ≤ ${MAX_CONTENT_LEN}, padding zeroed`, () => {
      const data = patterned(len, len);
      const wire = Buffer.concat(encodeStreamRecords(RecordType.Stdout, 1, data));
      let pos = 0;
      while (pos < wire.length) {
        const contentLen = wire.readUInt16BE(pos + 4);
        const padLen = wire[pos + 6]!;
        assert.ok(contentLen <= MAX_CONTENT_LEN);
        assert.equal((HEADER_LEN + contentLen + padLen) % 8, 0, 'record length is a multiple of 8');
        const pad = wire.subarray(pos + HEADER_LEN + contentLen, pos + HEADER_LEN + contentLen + padLen);
        assert.ok(
          pad.every((b) => b === 0),
          'padding is zero bytes',
        );
        pos += HEADER_LEN + contentLen + padLen;
      }
      assert.equal(pos, wire.length);
      assert.deepEqual(joinContent(decodeChunks([wire]), RecordType.Stdout), data);
    });
  }

  test('content parts are views of the input (no copy) and padding comes from one shared buffer', () => {
    const data = patterned(200 * 1024 + 3, 42);
    const parts = encodeStreamRecords(RecordType.Stdout, 1, data);
    const contents = parts.filter((p) => p.buffer === data.buffer);
    assert.equal(contents.length, 4, '200 KiB + 3 bytes → 4 records');
    assert.equal(contents[0]!.byteOffset, data.byteOffset);
    const padA = parts.at(-1)!;
    const padB = encodeStreamRecords(RecordType.Stdout, 2, Buffer.alloc(3)).at(-1)!;
    assert.equal(padA.length, 5);
    assert.equal(padB.length, 5);
    assert.equal(padA.buffer, padB.buffer, 'padding shares one backing buffer across calls');
  });

  test('200 KiB payload splits into several records of ≤ 65535 bytes and reassembles exactly', () => {
    const data = patterned(200 * 1024, 7);
    const records = decodeChunks(encodeStreamRecords(RecordType.Stdout, 3, data));
    assert.ok(records.length >= 4);
    for (const r of records) {
      assert.equal(r.type, RecordType.Stdout);
      assert.equal(r.requestId, 3);
      assert.ok(r.content.length <= MAX_CONTENT_LEN);
    }
    assert.deepEqual(joinContent(records, RecordType.Stdout), data);
  });
});

describe('RecordDecoder', () => {
  test('stdout records round-trip through the decoder in one chunk', () => {
    const { wire, expected } = conversation();
    assert.deepEqual(decodeChunks([wire]), expected);
  });

  test('feeding the stream one byte at a time yields identical records', () => {
    const { wire, expected } = conversation();
    assert.deepEqual(decodeChunks(oneByteAtATime(wire)), expected);
  });

  test('random chunk boundaries (seeded, 300 iterations) yield identical records', () => {
    const { wire, expected } = conversation();
    const rand = prng(0xfc61);
    for (let i = 0; i < 300; i++) {
      // Vary the typical chunk size so splits land in headers, content and padding alike.
      const maxChunk = [3, 17, 100, 4096, 70_000][i % 5]!;
      assert.deepEqual(decodeChunks(randomChunks(wire, rand, maxChunk)), expected, `iteration ${i}`);
    }
  });

  test('a record wholly inside a chunk is delivered as a view of that chunk (zero copy)', () => {
    const data = Buffer.from('hello, world');
    const wire = Buffer.concat(encodeStreamRecords(RecordType.Stdout, 1, data));
    const seen: Buffer[] = [];
    new RecordDecoder({ onRecord: (_t, _id, content) => seen.push(content) }).push(wire);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.buffer, wire.buffer);
    assert.deepEqual(seen[0], data);
  });

  test('padding split across chunks is skipped and the record delivered once it ends', () => {
    const wire = Buffer.concat(encodeStreamRecords(RecordType.Stdout, 1, Buffer.from('abc'))); // 8 + 3 + 5
    const sink = new CollectingSink();
    const decoder = new RecordDecoder(sink);
    decoder.push(wire.subarray(0, 13)); // header, content, 2 of 5 padding bytes
    assert.equal(sink.records.length, 0);
    assert.equal(decoder.buffered, 13);
    decoder.push(wire.subarray(13));
    assert.equal(decoder.buffered, 0);
    assert.deepEqual(sink.records, [{ type: RecordType.Stdout, requestId: 1, content: Buffer.from('abc') }]);
  });

  test('buffered counts the bytes of a partial record and reset() drops them', () => {
    const wire = Buffer.concat(encodeStreamRecords(RecordType.Stdout, 1, Buffer.alloc(100)));
    const sink = new CollectingSink();
    const decoder = new RecordDecoder(sink);
    for (const cut of [3, 8, 50, 108, 110]) {
      decoder.reset();
      decoder.push(wire.subarray(0, cut));
      assert.equal(decoder.buffered, cut, `after ${cut} bytes`);
    }
    decoder.reset();
    assert.equal(decoder.buffered, 0);
    decoder.push(wire);
    assert.equal(sink.records.length, 1);
    assert.equal(sink.records[0]!.content.length, 100);
  });

  for (const version of [0, 2, 0x48 /* 'H', as from an HTTP server */]) {
    test(`record version ${version} throws FastCgiProtocolError`, () => {
      const bad = encodeHeader(RecordType.Stdout, 1, 0, 0);
      bad[0] = version;
      const whole = new RecordDecoder(new CollectingSink());
      assert.throws(() => whole.push(bad), FastCgiProtocolError);
      const split = new RecordDecoder(new CollectingSink());
      assert.throws(() => {
        for (const b of oneByteAtATime(bad)) split.push(b);
      }, FastCgiProtocolError);
    });
  }

  test('an exception from the sink propagates out of push', () => {
    const wire = encodeEndRequest(1, 0, 0);
    const decoder = new RecordDecoder({
      onRecord: () => {
        throw new Error('sink failed');
      },
    });
    assert.throws(() => decoder.push(wire), /sink failed/);
  });

  test('unknown record types are passed through for the caller to judge', () => {
    const wire = Buffer.concat(encodeStreamRecords(200 as RecordType, 5, Buffer.from('x')));
    assert.deepEqual(decodeChunks([wire]), [{ type: 200, requestId: 5, content: Buffer.from('x') }]);
  });
});

describe('parseEndRequest', () => {
  const cases = [
    { name: 'success', appStatus: 0, protocolStatus: ProtocolStatus.RequestComplete },
    { name: 'exit status 255', appStatus: 255, protocolStatus: ProtocolStatus.RequestComplete },
    { name: 'app status above 2^31 stays unsigned', appStatus: 0xfffffffe, protocolStatus: ProtocolStatus.RequestComplete },
    { name: 'overloaded', appStatus: 0, protocolStatus: ProtocolStatus.Overloaded },
    { name: 'unknown role', appStatus: 0, protocolStatus: ProtocolStatus.UnknownRole },
    { name: 'cannot multiplex', appStatus: 0, protocolStatus: ProtocolStatus.CantMpxConn },
  ];
  for (const c of cases) {
    test(`END_REQUEST ${c.name} decodes back`, () => {
      const [rec] = decodeChunks([encodeEndRequest(2, c.appStatus, c.protocolStatus)]);
      assert.equal(rec!.type, RecordType.EndRequest);
      assert.equal(rec!.requestId, 2);
      assert.deepEqual(parseEndRequest(rec!.content), { appStatus: c.appStatus, protocolStatus: c.protocolStatus });
    });
  }

  test('a short END_REQUEST body throws FastCgiProtocolError', () => {
    assert.throws(() => parseEndRequest(Buffer.alloc(7)), FastCgiProtocolError);
  });
});

describe('name-value pairs', () => {
  test('short lengths use one byte: exact bytes', () => {
    assert.deepEqual([...pairsBytes([['a', 'bc']])], [1, 2, 0x61, 0x62, 0x63]);
  });

  test('127-byte value uses a 1-byte length, 128-byte value a 4-byte length with the high bit set', () => {
    const v127 = pairsBytes([['N', 'x'.repeat(127)]]);
    assert.deepEqual([...v127.subarray(0, 3)], [1, 127, 0x4e]);
    assert.equal(v127.length, 2 + 1 + 127);
    const v128 = pairsBytes([['N', 'x'.repeat(128)]]);
    assert.deepEqual([...v128.subarray(0, 6)], [1, 0x80, 0, 0, 0x80, 0x4e]);
    assert.equal(v128.length, 1 + 4 + 1 + 128);
  });

  test('128-byte name uses a 4-byte length too', () => {
    const buf = pairsBytes([['n'.repeat(128), '']]);
    assert.deepEqual([...buf.subarray(0, 5)], [0x80, 0, 0, 0x80, 0]);
  });

  test('lengths count UTF-8 bytes, not characters', () => {
    // 'é' = 2 bytes, '日本' = 6 bytes, '😀' = 4 bytes (2 UTF-16 units).
    assert.deepEqual([...pairsBytes([['é', '日本']]).subarray(0, 2)], [2, 6]);
    assert.deepEqual([...pairsBytes([['😀', '']]).subarray(0, 2)], [4, 0]);
    const value = 'é'.repeat(64); // 64 characters, 128 bytes → long form
    assert.deepEqual([...pairsBytes([['V', value]]).subarray(0, 5)], [1, 0x80, 0, 0, 0x80]);
  });

  const roundTripCases: Array<{ name: string; pairs: Array<[string, string]> }> = [
    { name: 'no pairs', pairs: [] },
    { name: 'empty name and value', pairs: [['', '']] },
    {
      name: 'typical CGI params',
      pairs: [
        ['SCRIPT_FILENAME', '/srv/www/index.php'],
        ['REQUEST_METHOD', 'GET'],
        ['QUERY_STRING', ''],
      ],
    },
    {
      name: '127 vs 128 byte values',
      pairs: [
        ['A', 'a'.repeat(127)],
        ['B', 'b'.repeat(128)],
      ],
    },
    {
      name: 'three 30 KB values (over one record)',
      pairs: [
        ['HTTP_COOKIE', 'c'.repeat(30_000)],
        ['HTTP_X_A', 'a'.repeat(30_000)],
        ['HTTP_X_B', 'b'.repeat(30_000)],
        ['AFTER', 'x'],
      ],
    },
    {
      name: 'non-ASCII names and values',
      pairs: [
        ['é', 'café'],
        ['日本', '語'],
        ['HTTP_X_EMOJI', '😀🎉'],
        ['😀', 'ü'.repeat(100)],
      ],
    },
  ];
  for (const c of roundTripCases) {
    test(`round trip: ${c.name}`, () => {
      assert.deepEqual(decodeNameValuePairs(pairsBytes(c.pairs)), c.pairs);
    });
    test(`round trip via the PARAMS stream → decoder (random chunks) → decodeNameValuePairs: ${c.name}`, () => {
      const wire = paramsStream(11, c.pairs);
      const rand = prng(c.pairs.length + 1);
      for (let i = 0; i < 20; i++) {
        const records = decodeChunks(randomChunks(wire, rand, 1 + (i % 4) * 5000));
        assert.ok(records.every((r) => r.type === RecordType.Params && r.requestId === 11));
        assert.equal(records.at(-1)!.content.length, 0, 'ends with the empty PARAMS record');
        assert.equal(records.filter((r) => r.content.length === 0).length, 1, 'exactly one terminator');
        assert.deepEqual(decodeNameValuePairs(joinContent(records, RecordType.Params)), c.pairs);
      }
    });
  }

  test('large params are split across PARAMS records at pair boundaries: php-cgi decodes each record on its own', () => {
    const pairs: Array<[string, string]> = [...'abcde'].map((c) => [`HTTP_X_${c.toUpperCase()}`, c.repeat(30_000)] as [string, string]);
    pairs.push(['SMALL', 'ok']);
    const records = decodeChunks([paramsStream(1, pairs)]);
    assert.equal(records.length, 4, '150 KB of 30 KB pairs → two pairs per record, 3 data records + terminator');
    const perRecord: Array<[string, string]> = [];
    for (const r of records) {
      assert.ok(r.content.length <= MAX_CONTENT_LEN);
      perRecord.push(...decodeNameValuePairs(r.content));
    }
    assert.deepEqual(perRecord, pairs);
  });

  test('one pair over a record cannot be sent: refused (ParamTooLarge) before a byte is written', () => {
    assert.throws(
      () => encodeRequestStart(1, Role.Responder, Flags.KeepConn, [['HTTP_COOKIE', 'c'.repeat(70_000)]], true),
      (err: unknown) => err instanceof PhpgateError && err.code === ErrorCode.ParamTooLarge && /HTTP_COOKIE is 70016 bytes/.test(err.message),
    );
  });

  for (const c of roundTripCases) {
    for (const endStdin of [true, false]) {
      test(`encodeRequestStart is BEGIN_REQUEST + PARAMS records${endStdin ? ' + the empty STDIN' : ''} in one buffer: ${c.name}`, () => {
        const start = encodeRequestStart(9, Role.Responder, Flags.KeepConn, c.pairs, endStdin);
        if (pairsBytes(c.pairs).length <= MAX_CONTENT_LEN) {
          assert.ok(start.equals(openingFromStreamRecords(9, Role.Responder, Flags.KeepConn, c.pairs, endStdin)));
          return;
        }
        // Over one record the pairs are cut at pair boundaries (see below), not where the general encoder cuts.
        const records = decodeChunks([start]);
        assert.equal(records[0]!.type, RecordType.BeginRequest);
        assert.deepEqual(records.at(-1)!.type, endStdin ? RecordType.Stdin : RecordType.Params);
        const params = records.filter((r) => r.type === RecordType.Params && r.content.length > 0);
        assert.ok(params.length > 1);
        assert.deepEqual(
          params.flatMap((r) => decodeNameValuePairs(r.content)),
          c.pairs,
        );
      });
    }
  }

  test('encodeRequestStart: no pairs, a Buffer value, and text longer than the short-text cut-off', () => {
    for (const pairs of [
      [],
      [
        ['HTTP_X', Buffer.from([0xff, 0x00, 0xe9])],
        ['LONG', 'é'.repeat(40) + 'x'.repeat(70)],
        ['ASCII', 'y'.repeat(65)],
      ],
    ] as Array<Array<[string, string | Buffer]>>) {
      const start = encodeRequestStart(2, Role.Responder, 0, pairs, true);
      assert.ok(start.equals(openingFromStreamRecords(2, Role.Responder, 0, pairs, true)), `pairs: ${pairs.length}`);
    }
  });

  test('encodeRequestStart reads a one-shot iterator once, also past one record', () => {
    function* gen(): Generator<readonly [string, string]> {
      yield ['BIG', 'z'.repeat(40_000)];
      yield ['BIG2', 'y'.repeat(40_000)];
      yield ['B', '2'];
    }
    const records = decodeChunks([encodeRequestStart(1, Role.Responder, Flags.KeepConn, gen(), true)]);
    assert.deepEqual(
      records.map((r) => r.type),
      [RecordType.BeginRequest, RecordType.Params, RecordType.Params, RecordType.Params, RecordType.Stdin],
    );
    assert.deepEqual(decodeNameValuePairs(joinContent(records, RecordType.Params)), [
      ['BIG', 'z'.repeat(40_000)],
      ['BIG2', 'y'.repeat(40_000)],
      ['B', '2'],
    ]);
  });

  test('no pairs is just the empty PARAMS record', () => {
    assert.deepEqual([...paramsStream(3, [])], [1, 4, 0, 3, 0, 0, 0, 0]);
  });

  test('the pairs encoder reads a one-shot iterator', () => {
    function* gen(): Generator<readonly [string, string]> {
      yield ['A', '1'];
      yield ['B', '2'];
    }
    assert.deepEqual(decodeNameValuePairs(pairsBytes(gen())), [
      ['A', '1'],
      ['B', '2'],
    ]);
  });

  const full = pairsBytes([['NAME', 'v'.repeat(200)]]);
  const truncations: Array<{ name: string; bytes: Buffer }> = [
    { name: 'value length missing', bytes: Buffer.from([4]) },
    { name: 'long name length cut after 2 of 4 bytes', bytes: Buffer.from([0x80, 0]) },
    { name: 'long value length cut after 3 of 4 bytes', bytes: full.subarray(0, 4) },
    { name: 'name cut short', bytes: full.subarray(0, 7) },
    { name: 'value cut short by one byte', bytes: full.subarray(0, full.length - 1) },
    { name: 'second pair truncated', bytes: Buffer.concat([pairsBytes([['A', 'b']]), Buffer.from([1, 1, 0x41])]) },
  ];
  for (const t of truncations) {
    test(`truncated input throws FastCgiProtocolError: ${t.name}`, () => {
      assert.throws(() => decodeNameValuePairs(t.bytes), FastCgiProtocolError);
    });
  }
});

describe('byte-valued params', () => {
  test('a Buffer value is written as its bytes, not re-encoded (a non-UTF-8 header reaches PHP as sent)', () => {
    const encoded = pairsBytes([['HTTP_X', Buffer.from([0x63, 0x61, 0x66, 0xe9])]]);
    assert.deepEqual([...encoded], [6, 4, ...Buffer.from('HTTP_X'), 0x63, 0x61, 0x66, 0xe9]);
  });
});
