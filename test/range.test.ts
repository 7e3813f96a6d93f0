/**
 * parseRange (gateway/http/range.ts), case by case: RFC 9110 §14.1 (range units, int-range, suffix-range,
 * satisfiable or not) and §14.2 (a server may ignore a Range it does not like, and answers the whole file). The
 * end-to-end answers (206, 416, Content-Range) are in static.test.ts.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRange } from '../gateway/http/range.js';

type Expected = { start: number; end: number } | null | 'unsatisfiable';

interface Case {
  readonly name: string;
  readonly header: string;
  readonly size: number;
  readonly want: Expected;
}

const IGNORED = null;
const UNSATISFIABLE = 'unsatisfiable';

const cases: readonly Case[] = [
  // int-range: first-pos "-" [ last-pos ]
  { name: 'first byte only', header: 'bytes=0-0', size: 10, want: { start: 0, end: 0 } },
  { name: 'a middle slice, both ends inclusive', header: 'bytes=2-5', size: 10, want: { start: 2, end: 5 } },
  { name: 'the whole file spelled as a range', header: 'bytes=0-9', size: 10, want: { start: 0, end: 9 } },
  { name: 'last-pos past the end is clamped to the last byte', header: 'bytes=5-100', size: 10, want: { start: 5, end: 9 } },
  {
    name: 'last-pos far past the end (more digits than a safe integer) is clamped',
    header: 'bytes=0-99999999999999999999999',
    size: 10,
    want: { start: 0, end: 9 },
  },
  { name: 'leading zeros are decimal, not octal', header: 'bytes=007-010', size: 20, want: { start: 7, end: 10 } },
  // open range: first-pos "-"
  { name: 'open range from the middle to the end', header: 'bytes=5-', size: 10, want: { start: 5, end: 9 } },
  { name: 'open range from 0 is the whole file as a 206', header: 'bytes=0-', size: 10, want: { start: 0, end: 9 } },
  { name: 'open range starting at the last byte', header: 'bytes=9-', size: 10, want: { start: 9, end: 9 } },
  // suffix-range: "-" suffix-length
  { name: 'suffix range: the last N bytes', header: 'bytes=-3', size: 10, want: { start: 7, end: 9 } },
  { name: 'suffix longer than the file is the whole file (§14.1.3)', header: 'bytes=-100', size: 10, want: { start: 0, end: 9 } },
  { name: 'suffix exactly the file length', header: 'bytes=-10', size: 10, want: { start: 0, end: 9 } },
  { name: 'suffix of zero bytes is unsatisfiable (§14.1.1)', header: 'bytes=-0', size: 10, want: UNSATISFIABLE },
  // past the end: first-pos ≥ length
  { name: 'first-pos at the length is unsatisfiable', header: 'bytes=10-', size: 10, want: UNSATISFIABLE },
  { name: 'first-pos past the length is unsatisfiable', header: 'bytes=50-60', size: 10, want: UNSATISFIABLE },
  {
    name: 'first-pos past the length with more digits than a safe integer is unsatisfiable',
    header: 'bytes=99999999999999999999-',
    size: 10,
    want: UNSATISFIABLE,
  },
  // zero-length files (§14.1.1: only a suffix-range with a non-zero length is satisfiable)
  { name: 'zero-length file: an open range from 0 is unsatisfiable', header: 'bytes=0-', size: 0, want: UNSATISFIABLE },
  { name: 'zero-length file: bytes=0-0 is unsatisfiable', header: 'bytes=0-0', size: 0, want: UNSATISFIABLE },
  { name: 'zero-length file: a zero suffix is unsatisfiable', header: 'bytes=-0', size: 0, want: UNSATISFIABLE },
  {
    name: 'zero-length file: a non-zero suffix is satisfiable, and answered whole (200), not 416',
    header: 'bytes=-5',
    size: 0,
    want: IGNORED,
  },
  // several ranges: answered with the whole file, which §14.2 allows
  { name: 'two ranges are ignored', header: 'bytes=0-1,3-4', size: 10, want: IGNORED },
  { name: 'two ranges with spaces after the comma are ignored', header: 'bytes=0-1, 3-4', size: 10, want: IGNORED },
  { name: 'a range and a suffix are ignored', header: 'bytes=0-1,-2', size: 10, want: IGNORED },
  { name: 'one range with a trailing comma is ignored, not half-read', header: 'bytes=0-1,', size: 10, want: IGNORED },
  { name: 'several ranges are ignored even when each one is past the end', header: 'bytes=20-30,40-50', size: 10, want: IGNORED },
  // bad syntax: ignored (nginx answers 416; §14.2 lets us send the whole file)
  { name: 'last-pos before first-pos is an invalid range-spec, ignored (§14.1.1)', header: 'bytes=5-2', size: 10, want: IGNORED },
  { name: 'no positions at all', header: 'bytes=-', size: 10, want: IGNORED },
  { name: 'an empty range set', header: 'bytes=', size: 10, want: IGNORED },
  { name: 'letters instead of digits', header: 'bytes=abc', size: 10, want: IGNORED },
  { name: 'a plus sign is not a digit', header: 'bytes=+1-2', size: 10, want: IGNORED },
  { name: 'a negative first-pos is not a suffix', header: 'bytes=-1-2', size: 10, want: IGNORED },
  { name: 'a decimal point is not a digit', header: 'bytes=1.5-2', size: 10, want: IGNORED },
  { name: 'exponent notation is not a digit run', header: 'bytes=1e2-', size: 1000, want: IGNORED },
  { name: 'hex is not a digit run', header: 'bytes=0x10-', size: 1000, want: IGNORED },
  { name: 'a missing "=" is not a ranges-specifier', header: 'bytes 0-1', size: 10, want: IGNORED },
  { name: 'a missing unit is not a ranges-specifier', header: '0-1', size: 10, want: IGNORED },
  // other units: an origin server MUST ignore a unit it does not understand (§14.2)
  { name: 'items= is another unit, ignored', header: 'items=0-1', size: 10, want: IGNORED },
  { name: 'a unit that only starts with bytes is another unit', header: 'bytesx=0-1', size: 10, want: IGNORED },
  { name: 'the unit is compared case-insensitively (§14.1)', header: 'BYTES=0-1', size: 10, want: { start: 0, end: 1 } },
  { name: 'the unit in mixed case', header: 'Bytes=-2', size: 10, want: { start: 8, end: 9 } },
  // whitespace: tolerated around the unit, "=", "-" (nginx skips spaces around the positions too)
  { name: 'spaces around the positions', header: 'bytes= 2 - 5 ', size: 10, want: { start: 2, end: 5 } },
  { name: 'spaces around "="', header: 'bytes = 2-5', size: 10, want: { start: 2, end: 5 } },
  { name: 'leading whitespace before the unit', header: '  bytes=2-5', size: 10, want: { start: 2, end: 5 } },
  { name: 'a tab before the positions', header: 'bytes=\t2-5', size: 10, want: { start: 2, end: 5 } },
];

describe('parseRange (RFC 9110 §14)', () => {
  for (const c of cases) {
    test(c.name, () => {
      assert.deepEqual(parseRange(c.header, c.size), c.want, `Range: ${c.header} on ${c.size} bytes`);
    });
  }
});
