/**
 * Differential test, the request side: PHP must see the same request behind phpgate as behind nginx + php-fpm
 * (the reference stack in test/anchors/, Debian's /etc/nginx/fastcgi_params). Every case is sent identically to
 * both (same method, raw target, headers, body, and an explicit `Host: localhost`) over the same fixture docroot,
 * and the fixture dump (_dump.inc.php: $_SERVER, $_GET, $_POST, $_FILES with sha256, $_COOKIE, php://input) is
 * compared. The harness and its normalisations are in ./both.ts; what the client gets back is compared in
 * differential-response.test.ts, and the deliberate differences are asserted in differential-deliberate.test.ts.
 *
 * nginx + php-fpm missing: the tests are skipped locally, but fail when CI is set (CI installs them).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import { compareDumpCase, hex, parseDigest, recordDiff, sha256, useStacks } from './both.js';
import type { Digest, Dump, DumpCase } from './both.js';

// ---------------------------------------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------------------------------------

const BOUNDARY = '----phpgateDifferentialBoundary7MA4YWxkTrZu0gW';
const FILE_A = Buffer.from('first file\nwith two lines\n');
const FILE_B = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7 + 3) % 256)); // binary, every byte value
const FILE_C = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 131 + (i >> 9)) % 256)); // binary, bigger
const UNICODE_FILENAME = 'résumé 日本.txt';

type Part = { name: string; value: string } | { name: string; filename: string; type: string; content: Buffer };

function multipart(parts: readonly Part[]): Buffer {
  const out: Buffer[] = [];
  for (const p of parts) {
    if ('value' in p) {
      out.push(Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="${p.name}"\r\n\r\n${p.value}\r\n`));
    } else {
      out.push(
        Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="${p.name}"; filename="${p.filename}"\r\nContent-Type: ${p.type}\r\n\r\n`),
      );
      out.push(p.content, Buffer.from('\r\n'));
    }
  }
  out.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  return Buffer.concat(out);
}

function multipartBody(): Buffer {
  return multipart([
    { name: 'title', value: 'hello world' },
    { name: 'tags[]', value: 'x' },
    { name: 'tags[]', value: 'y' },
    { name: 'doc', filename: 'notes.txt', type: 'text/plain', content: FILE_A },
    { name: 'blob', filename: 'data.bin', type: 'application/octet-stream', content: FILE_B },
  ]);
}

/** Several files: an empty file field (a form's untouched <input type=file>), a unicode name, arrays, binary. */
function multipartSeveralFiles(): Buffer {
  return multipart([
    { name: 'note', value: 'Grüße, 日本' },
    { name: 'meta[a][b]', value: 'nested' },
    { name: 'empty', filename: '', type: 'application/octet-stream', content: Buffer.alloc(0) },
    { name: 'uni', filename: UNICODE_FILENAME, type: 'text/plain; charset=utf-8', content: Buffer.from('ünïcödé content\n') },
    { name: 'many[]', filename: 'a.txt', type: 'text/plain', content: FILE_A },
    { name: 'many[]', filename: 'c.bin', type: 'application/octet-stream', content: FILE_C },
    { name: 'after', value: 'last field' },
  ]);
}

const ONE_MB = Buffer.alloc(1024 * 1024, 0);
for (let i = 0; i < ONE_MB.length; i++) ONE_MB[i] = (i * 31 + (i >> 8)) % 256;

/** Past phpgate's in-memory limit (256 KiB), so it is spooled to a temp file, as nginx's client_body_buffer_size. */
const CHUNKED_PARTS = Array.from({ length: 5 }, (_, k) => Buffer.alloc(64 * 1024 + k * 1000, 97 + k));

const FIVE_MB = Buffer.alloc(5 * 1024 * 1024);
for (let i = 0; i < FIVE_MB.length; i++) FIVE_MB[i] = (i * 13 + (i >> 11)) % 256;

// ---------------------------------------------------------------------------------------------------------
// Cases: each is one request to each stack, compared with compareDumpCase
// ---------------------------------------------------------------------------------------------------------

const post = (d: Dump) => d.post;
const files = (d: Dump) => d.files as Record<string, Record<string, unknown>>;

const DUMP_CASES: DumpCase[] = [
  // ---- methods ----
  { name: 'plain GET /dump.php', target: '/dump.php' },
  {
    name: 'PUT with body',
    method: 'PUT',
    target: '/dump.php?id=7',
    headers: { 'Content-Type': 'text/plain' },
    body: 'put body\nline two\n',
  },
  {
    name: 'PATCH with a JSON body',
    method: 'PATCH',
    target: '/dump.php?id=7',
    headers: { 'Content-Type': 'application/merge-patch+json' },
    body: JSON.stringify({ title: 'new', tags: null }),
    check: (d) => assert.equal(d.server['REQUEST_METHOD'], 'PATCH'),
  },
  {
    name: 'DELETE without a body',
    method: 'DELETE',
    target: '/dump.php?id=7',
    check: (d) => assert.equal(d.server['REQUEST_METHOD'], 'DELETE'),
  },
  {
    name: 'DELETE with a body',
    method: 'DELETE',
    target: '/dump.php',
    headers: { 'Content-Type': 'application/json' },
    body: '{"ids":[1,2,3]}',
    check: (d) => assert.equal(d.input_len, 15),
  },
  {
    name: 'OPTIONS',
    method: 'OPTIONS',
    target: '/dump.php',
    headers: { Origin: 'http://example.test', 'Access-Control-Request-Method': 'PUT' },
    check: (d) => assert.equal(d.server['REQUEST_METHOD'], 'OPTIONS'),
  },
  { name: 'HEAD /dump.php', method: 'HEAD', target: '/dump.php', headOnly: true },
  { name: 'HEAD /about.php', method: 'HEAD', target: '/about.php', headOnly: true },

  // ---- query strings ----
  {
    name: 'query string with encoding and arrays',
    target: '/dump.php?a=1&b=%20x&c[]=1&c[]=2',
    check: (d) => assert.deepEqual(d.get, { a: '1', b: ' x', c: ['1', '2'] }),
  },
  {
    name: 'query string: unicode, percent-encoded',
    target: '/dump.php?q=%E6%97%A5%E6%9C%AC',
    check: (d) => assert.deepEqual(d.get, { q: '日本' }),
  },
  {
    name: 'query string: + and %20 both decode to a space, QUERY_STRING stays raw',
    target: '/dump.php?plus=a+b&pct=a%20b&lit=a%2Bb',
    check: (d) => {
      assert.deepEqual(d.get, { plus: 'a b', pct: 'a b', lit: 'a+b' });
      assert.equal(d.server['QUERY_STRING'], 'plus=a+b&pct=a%20b&lit=a%2Bb');
    },
  },
  {
    name: 'query string: a[]=1&a[]=2',
    target: '/dump.php?a[]=1&a[]=2',
    check: (d) => assert.deepEqual(d.get, { a: ['1', '2'] }),
  },
  {
    name: 'query string: percent-encoded brackets and nested a[b][c]=1',
    target: '/dump.php?a%5Bb%5D%5Bc%5D=1&x[y][]=2',
    check: (d) => assert.deepEqual(d.get, { a: { b: { c: '1' } }, x: { y: ['2'] } }),
  },
  {
    name: 'query string: empty values and a name without value',
    target: '/dump.php?empty=&flag&other=1&&=novalue',
    check: (d) => assert.deepEqual(d.get, { empty: '', flag: '', other: '1' }),
  },
  {
    name: 'query string: reserved characters encoded (%26 %3D %23 %3F)',
    target: '/dump.php?k%26=v%3Dw&h=%23frag%3F',
    check: (d) => assert.deepEqual(d.get, { 'k&': 'v=w', h: '#frag?' }),
  },
  {
    name: 'query string: just "?"',
    target: '/dump.php?',
    check: (d) => assert.equal(d.server['REQUEST_URI'], '/dump.php?'),
  },

  // ---- the path: PATH_INFO, normalisation ----
  {
    name: 'PATH_INFO after the script',
    target: '/info.php/extra/path?q=1',
    check: (d) => assert.equal(d.server['PATH_INFO'], '/extra/path'),
  },
  {
    name: 'PATH_INFO /a/b',
    target: '/info.php/a/b',
    check: (d) => {
      assert.equal(d.server['PATH_INFO'], '/a/b');
      assert.equal(d.server['SCRIPT_NAME'], '/info.php');
    },
  },
  {
    name: 'PATH_INFO of just "/"',
    target: '/info.php/',
    check: (d) => assert.equal(d.server['PATH_INFO'], '/'),
  },
  {
    name: "PATH_INFO percent-encoded (decoded, as nginx's $uri)",
    target: '/info.php/%C3%A9/x%20y',
    check: (d) => {
      assert.equal(d.server['PATH_INFO'], '/é/x y');
      assert.equal(d.server['REQUEST_URI'], '/info.php/%C3%A9/x%20y');
    },
  },
  {
    name: 'PATH_INFO in a subdirectory script',
    target: '/sub/index.php/deep/er?z=1',
    check: (d) => assert.equal(d.server['PATH_INFO'], '/deep/er'),
  },
  {
    name: 'script name percent-encoded',
    target: '/dum%70.php?x=1',
    check: (d) => {
      assert.equal(d.server['SCRIPT_NAME'], '/dump.php');
      assert.equal(d.server['REQUEST_URI'], '/dum%70.php?x=1');
    },
  },
  {
    name: 'merged slashes and dot segments',
    target: '//sub/..//./dump.php?x=1',
    check: (d) => assert.equal(d.server['SCRIPT_NAME'], '/dump.php'),
  },
  {
    // nginx's $host is the target's authority, and Debian's fastcgi_params pass HTTP_HOST as $host.
    name: 'absolute-form target: its authority is the host, REQUEST_URI is the origin form',
    target: 'http://other.test/dump.php?x=1',
    check: (d) => {
      assert.equal(d.server['HTTP_HOST'], 'other.test');
      assert.equal(d.server['REQUEST_URI'], '/dump.php?x=1');
    },
  },

  // ---- front controller (try_files $uri $uri/ /index.php?$query_string) ----
  {
    name: 'front controller fallback',
    target: '/pretty/url?x=1',
    check: (d) => assert.equal(d.server['SCRIPT_NAME'], '/index.php'),
  },
  {
    name: 'front controller: deep path',
    target: '/api/v2/users/42/posts/7/comments',
    check: (d) => {
      assert.equal(d.server['SCRIPT_NAME'], '/index.php');
      assert.equal(d.server['REQUEST_URI'], '/api/v2/users/42/posts/7/comments');
    },
  },
  {
    name: 'front controller: dots in the path',
    target: '/a.b/c',
    check: (d) => assert.equal(d.server['SCRIPT_NAME'], '/index.php'),
  },
  {
    name: 'front controller: a missing file with an extension',
    target: '/assets/app.min.js?v=3',
    check: (d) => assert.equal(d.server['SCRIPT_NAME'], '/index.php'),
  },
  {
    name: 'front controller: trailing slash',
    target: '/blog/post-1/',
    check: (d) => assert.equal(d.server['SCRIPT_NAME'], '/index.php'),
  },
  {
    name: 'front controller: the query string is kept',
    target: '/search?q=a+b&page=2&tags[]=x',
    check: (d) => {
      assert.equal(d.server['QUERY_STRING'], 'q=a+b&page=2&tags[]=x');
      assert.deepEqual(d.get, { q: 'a b', page: '2', tags: ['x'] });
    },
  },
  {
    name: 'front controller: percent-encoded unicode path',
    target: '/caf%C3%A9/%E6%97%A5?x=%C3%A9',
    check: (d) => assert.equal(d.server['REQUEST_URI'], '/caf%C3%A9/%E6%97%A5?x=%C3%A9'),
  },
  {
    name: 'front controller: an encoded "?" in the path is part of the path',
    target: '/dump.php%3Fx=1',
    check: (d) => assert.equal(d.server['SCRIPT_NAME'], '/index.php'),
  },
  {
    name: 'front controller: POST with a body',
    method: 'POST',
    target: '/api/items?draft=1',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: 'title=Hello&body=World',
    check: (d) => assert.deepEqual(d.post, { title: 'Hello', body: 'World' }),
  },

  // ---- directory index ----
  { name: 'root index.php', target: '/', check: (d) => assert.equal(d.server['SCRIPT_NAME'], '/index.php') },
  { name: 'directory index /sub/', target: '/sub/', check: (d) => assert.equal(d.server['SCRIPT_NAME'], '/sub/index.php') },
  {
    name: 'directory index /sub/ with a query',
    target: '/sub/?page=2',
    check: (d) => assert.deepEqual(d.get, { page: '2' }),
  },

  // ---- request bodies ----
  {
    name: 'urlencoded POST',
    method: 'POST',
    target: '/dump.php?from=query',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: 'name=J%C3%B6rg&list[]=1&list[]=2&empty=&plus=a+b',
    check: (d) => assert.equal(d.post['plus'], 'a b'),
  },
  {
    name: 'urlencoded POST: nested arrays and unicode',
    method: 'POST',
    target: '/dump.php',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: 'user[name]=%E6%97%A5%E6%9C%AC&user[roles][]=a&user[roles][]=b&m[x][y][z]=deep&flag',
    check: (d) => assert.deepEqual(d.post, { user: { name: '日本', roles: ['a', 'b'] }, m: { x: { y: { z: 'deep' } } }, flag: '' }),
  },
  {
    name: 'urlencoded POST with Content-Type charset',
    method: 'POST',
    target: '/dump.php',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded; charset=UTF-8' },
    body: 'a=%C3%A9&b=2',
    check: (d) => {
      assert.deepEqual(d.post, { a: 'é', b: '2' });
      assert.equal(d.server['CONTENT_TYPE'], 'application/x-www-form-urlencoded; charset=UTF-8');
    },
  },
  {
    name: 'JSON POST',
    method: 'POST',
    target: '/dump.php',
    headers: { 'Content-Type': 'application/json; charset=utf-8' },
    body: JSON.stringify({ a: 1, b: ['x', 'y'], c: { d: null } }),
  },
  {
    name: 'POST with a text/plain body (not parsed into $_POST)',
    method: 'POST',
    target: '/dump.php',
    headers: { 'Content-Type': 'text/plain; charset=iso-8859-1' },
    body: Buffer.from('a=1&b=caf\xe9', 'latin1'),
    check: (d) => assert.deepEqual(d.post, []),
  },
  {
    name: 'multipart with two files and fields',
    method: 'POST',
    target: '/dump.php',
    headers: { 'Content-Type': `multipart/form-data; boundary=${BOUNDARY}` },
    body: multipartBody(),
    check: (d) => {
      const f = d.files as Record<string, { sha256: string; size: number }>;
      assert.equal(f['blob']?.sha256, sha256(FILE_B));
      assert.equal(f['doc']?.size, FILE_A.length);
    },
  },
  {
    name: 'multipart: empty file field, unicode file name, file arrays, binary, text fields',
    method: 'POST',
    target: '/dump.php',
    headers: { 'Content-Type': `multipart/form-data; boundary="${BOUNDARY}"` },
    body: multipartSeveralFiles(),
    check: (d) => {
      assert.equal(files(d)['empty']?.['error'], 4, 'an empty file field is UPLOAD_ERR_NO_FILE');
      assert.equal(files(d)['uni']?.['name'], UNICODE_FILENAME);
      assert.deepEqual(post(d)['meta'], { a: { b: 'nested' } });
      assert.equal(post(d)['after'], 'last field');
      const many = files(d)['many'] as unknown as Array<{ sha256: string }>;
      assert.equal(many[1]?.sha256, sha256(FILE_C));
    },
  },
  {
    name: 'chunked POST body (no Content-Length, several writes)',
    method: 'POST',
    target: '/dump.php',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: [Buffer.from('alpha=1&be'), Buffer.from('ta=2&gam'), Buffer.from('ma=3')],
    chunked: true,
    check: (d) => assert.deepEqual(d.post, { alpha: '1', beta: '2', gamma: '3' }),
  },
  {
    name: 'chunked multipart upload',
    method: 'POST',
    target: '/dump.php',
    headers: { 'Content-Type': `multipart/form-data; boundary=${BOUNDARY}` },
    body: (() => {
      const b = multipartBody();
      return [b.subarray(0, 100), b.subarray(100, 2000), b.subarray(2000)];
    })(),
    chunked: true,
    check: (d) => assert.equal(files(d)['blob']?.['sha256'], sha256(FILE_B)),
  },
  {
    name: 'empty POST with Content-Length: 0',
    method: 'POST',
    target: '/dump.php',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: '',
    check: (d) => {
      assert.equal(d.server['CONTENT_LENGTH'], '0');
      assert.equal(d.input_len, 0);
    },
  },
  {
    name: 'empty chunked POST (just the last chunk)',
    method: 'POST',
    target: '/dump.php',
    headers: { 'Content-Type': 'application/octet-stream', 'Transfer-Encoding': 'chunked' },
    body: [],
    chunked: true,
    check: (d) => assert.equal(d.input_len, 0),
  },
  {
    name: '1 MB POST',
    method: 'POST',
    target: '/dump.php',
    headers: { 'Content-Type': 'application/octet-stream' },
    body: ONE_MB,
    check: (d) => assert.equal(d.input_len, ONE_MB.length),
  },

  // ---- cookies ----
  {
    name: 'cookies',
    target: '/dump.php',
    headers: { Cookie: 'a=1; b=2' },
    check: (d) => assert.deepEqual(d.cookie, { a: '1', b: '2' }),
  },
  {
    name: 'cookies with encoded values',
    target: '/dump.php',
    headers: { Cookie: 'sid=abc%3D%3D; name=J%C3%B6rg; sp=a%20b; plus=a+b; arr[x]=1; arr[y]=2; empty=' },
    check: (d) => assert.deepEqual(d.cookie, { sid: 'abc==', name: 'Jörg', sp: 'a b', plus: 'a+b', arr: { x: '1', y: '2' }, empty: '' }),
  },
  {
    name: 'cookies without spaces after ";" and a duplicate name',
    target: '/dump.php',
    headers: { Cookie: 'a=1;b=2;a=3' },
    check: (d) => assert.equal(d.server['HTTP_COOKIE'], 'a=1;b=2;a=3'),
  },

  // ---- request headers ----
  {
    name: 'custom headers',
    target: '/dump.php',
    headers: { 'X-Custom-Thing': 'some value, with comma', 'Accept-Language': 'de-DE,de;q=0.9,en;q=0.5', 'User-Agent': 'differential-test/1.0' },
    check: (d) => assert.equal(d.server['HTTP_X_CUSTOM_THING'], 'some value, with comma'),
  },
  {
    name: 'several distinct headers, odd case and digits in names',
    target: '/dump.php',
    headers: {
      'X-Request-ID': 'req-123',
      'x-forwarded-for': '203.0.113.7, 198.51.100.1',
      'X-Forwarded-Proto': 'https',
      Authorization: 'Bearer abc.def.ghi',
      Referer: 'http://localhost/from?x=1',
      'If-None-Match': '"abc"',
      'X-Api-Version2': '2',
      DNT: '1',
      'X-Spaces': '  padded value  ',
    },
    check: (d) => {
      assert.equal(d.server['HTTP_AUTHORIZATION'], 'Bearer abc.def.ghi');
      assert.equal(d.server['HTTP_X_API_VERSION2'], '2');
    },
  },
  {
    name: 'header with an empty value',
    target: '/dump.php',
    headers: { 'X-Empty': '' },
  },
  {
    name: 'UTF-8 bytes in a header value',
    target: '/dump.php',
    // node writes header strings as latin1: one char per byte, so this sends the UTF-8 bytes of "café 日本".
    headers: { 'X-Name': Buffer.from('café 日本').toString('latin1') },
    check: (d) => assert.equal(d.server['HTTP_X_NAME'], 'café 日本'),
  },
  {
    name: "REMOTE_USER: an Authorization: Basic header's user name, whatever checked it (Debian's $remote_user)",
    target: '/dump.php',
    headers: { Authorization: `Basic ${Buffer.from('ann:open sesame').toString('base64')}` },
    check: (d) => assert.equal(d.server['REMOTE_USER'], 'ann'),
  },
  {
    name: 'REMOTE_USER: empty for a Basic header without a colon, and for another scheme',
    target: '/dump.php',
    headers: [
      ['Authorization', `Basic ${Buffer.from('nocolon').toString('base64')}`],
      ['X-Other', 'Bearer abc'],
    ],
    check: (d) => assert.equal(d.server['REMOTE_USER'], ''),
  },
  {
    name: 'REMOTE_USER: a user name in UTF-8 bytes reaches PHP as sent',
    target: '/dump.php',
    headers: { Authorization: `Basic ${Buffer.from('zoë:pw').toString('base64')}` },
    check: (d) => assert.equal(d.server['REMOTE_USER'], 'zoë'),
  },
  {
    name: 'Proxy header is never passed (httpoxy)',
    target: '/dump.php',
    headers: { Proxy: 'http://evil' },
    check: (d) => assert.equal(d.server['HTTP_PROXY'], undefined, 'nginx+fpm passed HTTP_PROXY'),
  },
  {
    name: 'header with an underscore is dropped',
    target: '/dump.php',
    headers: { X_Under: 'nope', 'X-Kept': 'yes' },
    check: (d) => {
      assert.equal(d.server['HTTP_X_UNDER'], undefined, 'nginx+fpm passed HTTP_X_UNDER');
      assert.equal(d.server['HTTP_X_KEPT'], 'yes');
    },
  },
  {
    name: 'Content-Type on a GET without a body',
    target: '/dump.php',
    headers: { 'Content-Type': 'text/html; charset=utf-8' },
    check: (d) => assert.equal(d.server['CONTENT_TYPE'], 'text/html; charset=utf-8'),
  },
];

// ---------------------------------------------------------------------------------------------------------

describe('differential: what PHP sees, phpgate vs nginx + php-fpm over the fixture site', () => {
  const stacks = useStacks();

  for (const c of DUMP_CASES) {
    it(`dump: ${c.name} (${c.method ?? 'GET'} ${c.target})`, async (t) => {
      if (!stacks.ready(t)) return;
      const [a, b] = await stacks.both(c);
      const problems = compareDumpCase(c, a, b);
      assert.ok(problems.length === 0, `${c.method ?? 'GET'} ${c.target} differs:\n${problems.join('\n')}`);
    });
  }

  // ---- digest.php: bodies too big to echo, bytes that are not UTF-8 ---------------------------------------

  const compareDigests = (da: Digest, db: Digest): string[] => {
    const problems = recordDiff(da.headers_hex, db.headers_hex).map((l) => `headers (hex)${l}`);
    for (const k of ['method', 'input_sha256', 'input_len', 'post_count', 'files_count'] as const) {
      if (!isDeepStrictEqual(da[k], db[k])) problems.push(`${k}: nginx+fpm ${da[k]} | phpgate ${db[k]}`);
    }
    return problems;
  };

  it('digest: 5 MB POST body, compared by sha256 (POST /digest.php)', async (t) => {
    if (!stacks.ready(t)) return;
    const [a, b] = await stacks.both({
      method: 'POST',
      target: '/digest.php',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: FIVE_MB,
    });
    const da = parseDigest(a, 'nginx+fpm');
    const db = parseDigest(b, 'phpgate');
    assert.equal(da.input_len, FIVE_MB.length);
    assert.equal(da.input_sha256, sha256(FIVE_MB));
    const problems = compareDigests(da, db);
    assert.ok(problems.length === 0, `POST /digest.php (5 MB) differs:\n${problems.join('\n')}`);
  });

  it('digest: chunked 330 KB POST body (spooled), compared by sha256 (POST /digest.php)', async (t) => {
    if (!stacks.ready(t)) return;
    const [a, b] = await stacks.both({
      method: 'POST',
      target: '/digest.php',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: CHUNKED_PARTS,
      chunked: true,
    });
    const da = parseDigest(a, 'nginx+fpm');
    const db = parseDigest(b, 'phpgate');
    assert.equal(da.input_sha256, sha256(Buffer.concat(CHUNKED_PARTS)));
    const problems = compareDigests(da, db);
    assert.ok(problems.length === 0, `POST /digest.php (chunked) differs:\n${problems.join('\n')}`);
  });

  it('digest: UTF-8 header bytes reach PHP as sent (GET /digest.php)', async (t) => {
    if (!stacks.ready(t)) return;
    const value = Buffer.from('Grüße – 日本 🙂');
    const [a, b] = await stacks.both({ target: '/digest.php', headers: { 'X-Utf8': value.toString('latin1') } });
    const da = parseDigest(a, 'nginx+fpm');
    const db = parseDigest(b, 'phpgate');
    assert.equal(da.headers_hex['HTTP_X_UTF8'], value.toString('hex'));
    const problems = compareDigests(da, db);
    assert.ok(problems.length === 0, `GET /digest.php with X-Utf8 differs:\n${problems.join('\n')}`);
  });

  it('digest: latin1 (not UTF-8) header bytes reach PHP as sent (GET /digest.php)', async (t) => {
    if (!stacks.ready(t)) return;
    // "café" in ISO-8859-1: 63 61 66 e9. Not valid UTF-8 (RFC 9110 obs-text: opaque bytes); nginx passes the
    // bytes on untouched. phpgate (php/cgi-env.ts headerValue) re-encodes them as UTF-8 (63 61 66 c3 a9): PHP
    // would see bytes the client never sent. Not a documented difference: this case fails until that is fixed.
    const [a, b] = await stacks.both({ target: '/digest.php', headers: { 'X-Latin1': 'caf\xe9' } });
    const da = parseDigest(a, 'nginx+fpm');
    const db = parseDigest(b, 'phpgate');
    assert.equal(da.headers_hex['HTTP_X_LATIN1'], hex('caf\xe9', 'latin1'));
    const problems = compareDigests(da, db);
    assert.ok(problems.length === 0, `GET /digest.php with X-Latin1: caf\\xe9 differs:\n${problems.join('\n')}`);
  });
});
