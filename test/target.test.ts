/**
 * parseTarget (gateway/http/uri.ts), case by case, beyond the basic table in cgi-unit.test.ts: dot segments
 * written plainly and percent-encoded, encoded slashes, double encoding, NUL, bytes that are not UTF-8, code units
 * that are not bytes, absolute-form targets and their authority, `//` merging, and what stays in the query.
 * null is "answer 400": the filesystem is never asked about such a path.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTarget } from '../gateway/http/uri.js';

/** Raw bytes as node hands them over in req.url: one latin1 character per byte. */
function raw(bytes: number[]): string {
  return Buffer.from(bytes).toString('latin1');
}

interface Want {
  readonly path: string;
  readonly query?: string;
  readonly requestUri?: string;
  readonly authority?: string | null;
}

interface Case {
  readonly name: string;
  readonly target: string;
  readonly want: Want | null;
}

const INVALID = null;

const cases: readonly Case[] = [
  // dot segments
  { name: 'a "." segment in the middle is dropped', target: '/a/./b', want: { path: '/a/b' } },
  { name: 'a trailing "." keeps the directory slash', target: '/a/b/.', want: { path: '/a/b/' } },
  { name: '"/./" alone is the root', target: '/./', want: { path: '/' } },
  { name: '"." then ".." resolve in order', target: '/a/./../b', want: { path: '/b' } },
  { name: 'a trailing ".." keeps the directory slash', target: '/a/b/..', want: { path: '/a/' } },
  { name: '".." at the root climbs out: 400', target: '/..', want: INVALID },
  { name: '".." climbing out after going down: 400', target: '/a/../../etc/passwd', want: INVALID },
  { name: '"..." is a name, not a dot segment', target: '/a/...', want: { path: '/a/...' } },
  { name: '"..b" is a name', target: '/a/..b', want: { path: '/a/..b' } },
  { name: '"b.." is a name', target: '/a/b..', want: { path: '/a/b..' } },
  // percent-encoded dots
  { name: '%2e alone is a "." segment', target: '/%2e/x', want: { path: '/x', requestUri: '/%2e/x' } },
  { name: '%2E in capitals too', target: '/a/%2E', want: { path: '/a/' } },
  { name: 'a mixed ".%2e" is a ".." segment', target: '/a/.%2e/b', want: { path: '/b' } },
  { name: 'a mixed "%2e." is a ".." segment', target: '/a/%2e./b', want: { path: '/b' } },
  { name: 'encoded ".." climbing out: 400', target: '/.%2e/etc/passwd', want: INVALID },
  { name: 'two encoded ".." from one level down: 400', target: '/a/%2e%2E/%2e%2e/x', want: INVALID },
  // %2f
  { name: 'an encoded slash is a slash once decoded', target: '/a%2Fb', want: { path: '/a/b', requestUri: '/a%2Fb' } },
  { name: 'encoded slashes around ".." resolve as segments', target: '/a%2fb%2f..%2fc', want: { path: '/a/c' } },
  { name: 'encoded slashes and ".." climbing out: 400', target: '/a%2F..%2F..%2Fetc%2Fpasswd', want: INVALID },
  { name: 'encoded slashes merge like plain ones', target: '/%2f%2fetc', want: { path: '/etc' } },
  { name: 'a lone encoded slash is the root', target: '/%2F', want: { path: '/' } },
  // double encoding: decoded once
  { name: '%25 is a percent sign', target: '/%25', want: { path: '/%' } },
  { name: 'double-encoded dots stay text (decoded once only)', target: '/%252e%252e/x', want: { path: '/%2e%2e/x' } },
  { name: 'double-encoded slash stays text', target: '/a%252fb', want: { path: '/a%2fb' } },
  // NUL
  { name: 'an encoded NUL: 400', target: '/a%00', want: INVALID },
  { name: 'a raw NUL (no escapes in the target): 400', target: '/a\0b', want: INVALID },
  { name: 'an encoded NUL after non-ASCII: 400', target: '/caf%C3%A9%00.php', want: INVALID },
  { name: 'a raw NUL after raw non-ASCII: 400', target: raw([0x2f, 0xc3, 0xa9, 0x00]), want: INVALID },
  { name: "an encoded NUL in the query is the script's business", target: '/p?x=%00', want: { path: '/p', query: 'x=%00' } },
  // not UTF-8
  { name: 'an overlong "." (%C0%AE) is not UTF-8: 400, never a dot segment', target: '/%C0%AE%C0%AE/x', want: INVALID },
  { name: 'an encoded UTF-16 surrogate is not UTF-8: 400', target: '/%ED%A0%80', want: INVALID },
  { name: 'a code point above U+10FFFF is not UTF-8: 400', target: '/%F4%90%80%80', want: INVALID },
  { name: 'a truncated sequence: 400', target: '/%E2%82', want: INVALID },
  { name: 'a raw latin1 byte (0xE9 alone) is not UTF-8: 400', target: raw([0x2f, 0xe9]), want: INVALID },
  { name: 'raw UTF-8 bytes are read as UTF-8', target: raw([0x2f, 0xc3, 0xa9]), want: { path: '/é' } },
  { name: 'a BOM inside the path is a character like any other', target: '/%EF%BB%BFx', want: { path: '/\uFEFFx' } },
  {
    name: 'a code unit above U+00FF is not a byte: 400, never truncated (Ł would become A)',
    target: '/\u0141.php',
    want: INVALID,
  },
  {
    name: 'code units above U+00FF that truncate to ".." are refused, not resolved',
    target: '/a/\u012e\u012e/x.php',
    want: INVALID,
  },
  // `//` merging
  { name: 'a target starting with "//" is a path, not an authority', target: '//example.com/x', want: { path: '/example.com/x', authority: null } },
  { name: '"//" alone is the root', target: '//', want: { path: '/' } },
  { name: 'three leading slashes merge', target: '///etc/passwd', want: { path: '/etc/passwd' } },
  { name: 'a trailing "//" keeps one slash', target: '/a//', want: { path: '/a/' } },
  { name: 'requestUri keeps the slashes as sent', target: '/a//b', want: { path: '/a/b', requestUri: '/a//b' } },
  // absolute-form (RFC 9112 §3.2.2)
  {
    name: 'absolute-form: the authority is taken and the path merged',
    target: 'http://example.com//a//b',
    want: { path: '/a/b', requestUri: '//a//b', authority: 'example.com' },
  },
  {
    name: 'absolute-form with a port and no path is the root',
    target: 'http://example.com:8080',
    want: { path: '/', requestUri: '/', authority: 'example.com:8080' },
  },
  { name: 'absolute-form with a fragment only is the root', target: 'http://example.com#f', want: { path: '/', authority: 'example.com' } },
  { name: 'absolute-form keeps the authority as written', target: 'http://EXAMPLE.com/x', want: { path: '/x', authority: 'EXAMPLE.com' } },
  { name: 'absolute-form https in capitals', target: 'HTTPS://example.com/x', want: { path: '/x', authority: 'example.com' } },
  { name: 'absolute-form with an IPv6 literal', target: 'http://[::1]/x', want: { path: '/x', authority: '[::1]' } },
  { name: 'absolute-form climbing out: 400', target: 'http://example.com/%2e%2e/x', want: INVALID },
  { name: 'absolute-form with userinfo: 400 (never a Host)', target: 'http://user@example.com/', want: INVALID },
  { name: 'absolute-form with an encoded slash in the authority: 400', target: 'http://example.com%2fevil/x', want: INVALID },
  { name: 'absolute-form with a backslash in the authority: 400', target: 'http://example.com\\@evil/x', want: INVALID },
  { name: 'absolute-form host starting with "-": 400', target: 'http://-bad.example/x', want: INVALID },
  { name: 'absolute-form with a port of six digits: 400', target: 'http://example.com:123456/x', want: INVALID },
  { name: 'a scheme other than http(s): 400', target: 'ws://example.com/x', want: INVALID },
  { name: 'asterisk-form (OPTIONS *): 400', target: '*', want: INVALID },
  { name: 'an empty target: 400', target: '', want: INVALID },
  // query and fragment
  { name: 'an encoded "?" belongs to the path', target: '/p%3Fx', want: { path: '/p?x', query: '' } },
  { name: 'an encoded "#" belongs to the path', target: '/p%23x', want: { path: '/p#x', query: '' } },
  { name: 'a second "?" belongs to the query', target: '/a?b?c', want: { path: '/a', query: 'b?c' } },
  { name: 'the query is not decoded or checked', target: '/p?a=%zz&b=%00', want: { path: '/p', query: 'a=%zz&b=%00' } },
  { name: 'dot segments in the query are left alone', target: '/p?f=../../etc', want: { path: '/p', query: 'f=../../etc' } },
  // backslashes: kept here, refused by the router
  { name: 'an encoded backslash is kept for the router to refuse', target: '/a%5c..%5cb', want: { path: '/a\\..\\b' } },
];

describe('parseTarget: dot segments, encodings, NUL, UTF-8, absolute-form', () => {
  for (const c of cases) {
    test(c.name, () => {
      const r = parseTarget(c.target);
      if (c.want === null) {
        assert.equal(r, null, `${JSON.stringify(c.target)} should be invalid, got ${JSON.stringify(r)}`);
        return;
      }
      assert.ok(r !== null, `${JSON.stringify(c.target)} should parse`);
      const got: Record<string, unknown> = { path: r.path };
      if (c.want.query !== undefined) got['query'] = r.query;
      if (c.want.requestUri !== undefined) got['requestUri'] = r.requestUri;
      if (c.want.authority !== undefined) got['authority'] = r.authority;
      assert.deepEqual(got, c.want);
    });
  }
});
