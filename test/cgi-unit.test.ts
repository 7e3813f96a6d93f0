/**
 * Pure unit tests, no processes: the CGI response header parser (php/response.ts), the CGI environment builder
 * (php/cgi-env.ts) and request-target parsing (gateway/uri.ts).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, UpstreamError } from '../core/errors.js';
import { buildCgiParams, type CgiParams, type CgiRequest } from '../php/cgi-env.js';
import { CgiHeadParser, type CgiHead } from '../php/response.js';
import { parseTarget, type ParsedTarget } from '../gateway/http/uri.js';

// ---------------------------------------------------------------------------------------------------------------
// CgiHeadParser
// ---------------------------------------------------------------------------------------------------------------

const LIMIT = 64 * 1024;

/** Feeds the chunks in order; returns the head and every body byte (from the head's chunk and all later ones). */
function parseChunks(chunks: Buffer[], limit = LIMIT): { head: CgiHead; body: Buffer } {
  const p = new CgiHeadParser(limit);
  let head: CgiHead | null = null;
  const body: Buffer[] = [];
  for (const c of chunks) {
    if (head !== null) {
      body.push(c);
      continue;
    }
    const r = p.push(c);
    if (r !== null) {
      head = r.head;
      body.push(r.body);
    }
  }
  if (head === null) head = p.finish();
  return { head, body: Buffer.concat(body) };
}

function parseAll(text: string | Buffer, limit = LIMIT): { head: CgiHead; body: Buffer } {
  return parseChunks([typeof text === 'string' ? Buffer.from(text, 'latin1') : text], limit);
}

function isHeaderError(err: unknown): boolean {
  return err instanceof UpstreamError && err.code === ErrorCode.UpstreamHeaders;
}

/** Pairs from the alternating names/values list. */
function pairs(head: CgiHead): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < head.headers.length; i += 2) out.push([head.headers[i]!, head.headers[i + 1]!]);
  return out;
}

describe('CgiHeadParser', () => {
  const RESPONSE = Buffer.concat([
    Buffer.from('Status: 201 Created\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\nX-Accel-Buffering: no\r\nSet-Cookie: b=2\r\n\r\n', 'latin1'),
    Buffer.from([0x00, 0x0d, 0x0a, 0x0d, 0x0a, 0xff, 0x62, 0x6f, 0x64, 0x79]), // body with its own CRLFCRLF and binary
  ]);
  const EXPECTED_HEADERS: Array<[string, string]> = [
    ['Content-Type', 'text/plain'],
    ['Set-Cookie', 'a=1'],
    ['Set-Cookie', 'b=2'],
  ];

  test('a header block split across two chunks at every byte position parses the same', () => {
    const whole = parseAll(RESPONSE);
    assert.equal(whole.head.status, 201);
    assert.equal(whole.head.reason, 'Created');
    assert.deepEqual(pairs(whole.head), EXPECTED_HEADERS);
    assert.equal(whole.head.noBuffering, true);
    for (let i = 1; i < RESPONSE.length; i++) {
      const r = parseChunks([RESPONSE.subarray(0, i), RESPONSE.subarray(i)]);
      assert.equal(r.head.status, 201, `split at ${i}`);
      assert.equal(r.head.reason, 'Created', `split at ${i}`);
      assert.deepEqual(pairs(r.head), EXPECTED_HEADERS, `split at ${i}`);
      assert.ok(r.body.equals(whole.body), `split at ${i}: body ${JSON.stringify(r.body.toString('latin1'))}`);
    }
  });

  test('a header block fed one byte at a time parses the same', () => {
    const chunks = Array.from({ length: RESPONSE.length }, (_, i) => RESPONSE.subarray(i, i + 1));
    const r = parseChunks(chunks);
    assert.equal(r.head.status, 201);
    assert.deepEqual(pairs(r.head), EXPECTED_HEADERS);
    assert.ok(r.body.equals(parseAll(RESPONSE).body));
  });

  test('the push that completes the block returns null before it and the head after it, never twice', () => {
    const text = Buffer.from('A: 1\r\n\r\nxyz', 'latin1');
    for (let i = 1; i < text.length; i++) {
      const p = new CgiHeadParser(LIMIT);
      const first = p.push(text.subarray(0, i));
      if (i < 8) {
        assert.equal(first, null, `split at ${i}`);
        const second = p.push(text.subarray(i));
        assert.ok(second !== null, `split at ${i}`);
        assert.equal(second.body.toString(), 'xyz');
      } else {
        assert.ok(first !== null, `split at ${i}`);
        assert.equal(first.body.toString(), 'xyz'.slice(0, i - 8));
      }
    }
  });

  test('LF-only line endings', () => {
    const r = parseAll('Status: 404 Not Found\nContent-Type: text/html\nX-A: 1\n\nbody\n');
    assert.equal(r.head.status, 404);
    assert.equal(r.head.reason, 'Not Found');
    assert.deepEqual(pairs(r.head), [
      ['Content-Type', 'text/html'],
      ['X-A', '1'],
    ]);
    assert.equal(r.body.toString(), 'body\n');
  });

  test('LF-only line endings split at every byte position', () => {
    const text = Buffer.from('X-A: 1\nX-B: 2\n\nrest', 'latin1');
    for (let i = 1; i < text.length; i++) {
      const r = parseChunks([text.subarray(0, i), text.subarray(i)]);
      assert.deepEqual(
        pairs(r.head),
        [
          ['X-A', '1'],
          ['X-B', '2'],
        ],
        `split at ${i}`,
      );
      assert.equal(r.body.toString(), 'rest', `split at ${i}`);
    }
  });

  test('no Status: 200 with an empty reason', () => {
    const r = parseAll('Content-Type: text/html\r\n\r\nhi');
    assert.equal(r.head.status, 200);
    assert.equal(r.head.reason, '');
    assert.equal(r.head.noBuffering, false);
  });

  test('Location without a Status is a 302 (CGI redirect), Location kept', () => {
    const r = parseAll('Location: /elsewhere\r\n\r\n');
    assert.equal(r.head.status, 302);
    assert.equal(r.head.reason, '');
    assert.deepEqual(pairs(r.head), [['Location', '/elsewhere']]);
  });

  test('Location with an explicit Status keeps that status', () => {
    const r = parseAll('Status: 301 Moved Permanently\r\nLocation: /x\r\n\r\n');
    assert.equal(r.head.status, 301);
    assert.equal(r.head.reason, 'Moved Permanently');
    assert.deepEqual(pairs(r.head), [['Location', '/x']]);
    // The order of Status and Location does not matter.
    assert.equal(parseAll('Location: /x\r\nStatus: 307\r\n\r\n').head.status, 307);
  });

  test('Status: 201 with no reason gives reason ""', () => {
    const r = parseAll('Status: 201\r\n\r\n');
    assert.equal(r.head.status, 201);
    assert.equal(r.head.reason, '');
  });

  test('Status: 299 Custom reason phrase is kept, spaces inside it too', () => {
    assert.equal(parseAll('Status: 299 Custom\r\n\r\n').head.reason, 'Custom');
    assert.equal(parseAll('Status: 460 Very  Custom Reason\r\n\r\n').head.reason, 'Very  Custom Reason');
  });

  test('an invalid Status throws UpstreamError (UpstreamHeaders)', () => {
    for (const bad of ['abc', '20', '2000', '099', '', '20x OK', '-200', '100', '101 Switching Protocols', '103', '199', '200 a\x01b']) {
      assert.throws(() => parseAll(`Status: ${bad}\r\n\r\n`), isHeaderError, `Status: ${JSON.stringify(bad)}`);
    }
  });

  test('a malformed header line (no colon, or empty name) throws UpstreamError', () => {
    assert.throws(() => parseAll('Content-Type text/html\r\n\r\n'), isHeaderError);
    assert.throws(() => parseAll(': value\r\n\r\n'), isHeaderError);
  });

  test('a header node cannot send (invalid name, control byte in a value) throws UpstreamError', () => {
    assert.throws(() => parseAll('X Bad: v\r\n\r\n'), isHeaderError);
    assert.throws(() => parseAll('X(Bad): v\r\n\r\n'), isHeaderError);
    assert.throws(() => parseAll('X-Bad: a\x01b\r\n\r\n'), isHeaderError);
    assert.throws(() => parseAll('X-Bad: a\x7fb\r\n\r\n'), isHeaderError);
    // A tab and bytes ≥ 0x80 are fine in a value.
    assert.deepEqual(pairs(parseAll('X-Ok: a\tb\xe9\r\n\r\n').head), [['X-Ok', 'a\tb\xe9']]);
    // A hidden header is dropped before it is judged (nginx never passes it anyway).
    assert.deepEqual(parseAll('X-Accel-Redirect: /a b\x01\r\n\r\n').head.headers, []);
  });

  test('Content-Length: parsed, duplicates of one value collapsed, invalid or contradictory ones throw', () => {
    assert.equal(parseAll('X-A: 1\r\n\r\n').head.contentLength, null);
    const one = parseAll('Content-Length: 42\r\n\r\n').head;
    assert.equal(one.contentLength, 42);
    assert.deepEqual(pairs(one), [['Content-Length', '42']]);
    const twice = parseAll('Content-Length: 5\r\nX-A: 1\r\ncontent-length: 5\r\n\r\n').head;
    assert.equal(twice.contentLength, 5);
    assert.deepEqual(pairs(twice), [
      ['Content-Length', '5'],
      ['X-A', '1'],
    ]);
    assert.equal(parseAll('Content-Length: 0\r\n\r\n').head.contentLength, 0);
    for (const bad of ['abc', '-1', '1e3', '0x10', '', '5, 5', '1.0', '9999999999999999']) {
      assert.throws(() => parseAll(`Content-Length: ${bad}\r\n\r\n`), isHeaderError, `Content-Length: ${JSON.stringify(bad)}`);
    }
    assert.throws(() => parseAll('Content-Length: 3\r\nContent-Length: 5\r\n\r\n'), isHeaderError);
  });

  test('Status and X-Accel-* headers are removed, in any case', () => {
    const r = parseAll(
      'status: 200\r\nX-Accel-Redirect: /secret\r\nx-accel-expires: 10\r\nX-ACCEL-BUFFERING: yes\r\nX-Accel-Charset: utf-8\r\n' +
        'X-Accel-Limit-Rate: 1024\r\nX-Accelerated: stays\r\nContent-Type: text/plain\r\n\r\n',
    );
    assert.deepEqual(pairs(r.head), [
      ['X-Accelerated', 'stays'],
      ['Content-Type', 'text/plain'],
    ]);
    assert.equal(r.head.noBuffering, false);
  });

  test('X-Accel-Buffering: no sets noBuffering (any case) and is hidden', () => {
    const r = parseAll('X-Accel-Buffering: No\r\n\r\n');
    assert.equal(r.head.noBuffering, true);
    assert.deepEqual(r.head.headers, []);
  });

  test('repeated headers are kept apart and in order', () => {
    const r = parseAll('Set-Cookie: a=1\r\nX-Custom: one\r\nSet-Cookie: b=2\r\nX-Custom: two\r\nSet-Cookie: c=3\r\n\r\n');
    assert.deepEqual(pairs(r.head), [
      ['Set-Cookie', 'a=1'],
      ['X-Custom', 'one'],
      ['Set-Cookie', 'b=2'],
      ['X-Custom', 'two'],
      ['Set-Cookie', 'c=3'],
    ]);
  });

  test('header names keep their case, values are trimmed, colons inside values kept', () => {
    const r = parseAll('content-TYPE:   text/html; charset=UTF-8  \r\nX-Url: http://a:8080/b\r\n\r\n');
    assert.deepEqual(pairs(r.head), [
      ['content-TYPE', 'text/html; charset=UTF-8'],
      ['X-Url', 'http://a:8080/b'],
    ]);
  });

  test('an oversize header block throws, in one chunk or spread over many', () => {
    const limit = 1024;
    const huge = `X-Huge: ${'h'.repeat(2000)}\r\n\r\nbody`;
    assert.throws(() => parseAll(huge, limit), isHeaderError);
    // No terminator yet: it must not keep buffering forever.
    assert.throws(() => parseAll(`X-Huge: ${'h'.repeat(2000)}`, limit), isHeaderError);
    const p = new CgiHeadParser(limit);
    assert.throws(() => {
      for (let i = 0; i < 100; i++) assert.equal(p.push(Buffer.from('X-Line: 0123456789\r\n')), null);
    }, isHeaderError);
    // Under the limit is fine, even with a long body in the same chunk.
    const ok = parseAll(`X-Ok: ${'o'.repeat(500)}\r\n\r\n${'b'.repeat(5000)}`, limit);
    assert.equal(ok.head.headers[1], 'o'.repeat(500));
    assert.equal(ok.body.length, 5000);
  });

  test('body bytes after the blank line are returned exactly (binary, with CRLFs)', () => {
    const body = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0a, 0x0a, 0xff, 0x80]);
    const r = parseAll(Buffer.concat([Buffer.from('X-A: 1\r\n\r\n'), body]));
    assert.ok(r.body.equals(body));
    assert.deepEqual(pairs(r.head), [['X-A', '1']]);
    // Blank line at the very end of the chunk: empty body, nothing lost.
    const p = new CgiHeadParser(LIMIT);
    const done = p.push(Buffer.from('X-A: 1\r\n\r\n'));
    assert.ok(done !== null);
    assert.equal(done.body.length, 0);
  });

  test('non-ASCII header bytes pass through as latin1 (byte-preserving)', () => {
    const raw = Buffer.concat([Buffer.from('X-Name: '), Buffer.from('café', 'utf8'), Buffer.from('\r\n\r\n')]);
    const r = parseAll(raw);
    assert.ok(Buffer.from(r.head.headers[1]!, 'latin1').equals(Buffer.from('café', 'utf8')));
  });

  test('finish() before the blank line: what came is the header block', () => {
    const p = new CgiHeadParser(LIMIT);
    assert.equal(p.push(Buffer.from('Status: 204\r\nX-A: 1\r\n')), null);
    const head = p.finish();
    assert.equal(head.status, 204);
    assert.deepEqual(pairs(head), [['X-A', '1']]);
    const empty = new CgiHeadParser(LIMIT).finish();
    assert.equal(empty.status, 200);
    assert.deepEqual(empty.headers, []);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// buildCgiParams
// ---------------------------------------------------------------------------------------------------------------

function cgiRequest(over: Partial<CgiRequest> = {}): CgiRequest {
  return {
    method: 'GET',
    requestUri: '/index.php?a=1',
    queryString: 'a=1',
    scriptName: '/index.php',
    pathInfo: '',
    documentUri: '/index.php',
    documentRoot: '/srv/www',
    scriptFilename: '/srv/www/index.php',
    serverProtocol: 'HTTP/1.1',
    https: false,
    remoteAddr: '127.0.0.1',
    remotePort: 50000,
    serverAddr: '127.0.0.1',
    serverPort: 8080,
    serverName: 'example.test',
    contentType: '',
    contentLength: '',
    rawHeaders: ['Host', 'example.test'],
    host: null,
    ...over,
  };
}

function names(p: CgiParams): string[] {
  return p.map(([k]) => k);
}

/** A param as text (byte-valued params, for non-ASCII header bytes, are read as UTF-8). */
function param(p: CgiParams, name: string): string | undefined {
  const hits = p.filter(([k]) => k === name);
  assert.ok(hits.length <= 1, `${name} appears ${hits.length} times`);
  const v = hits[0]?.[1];
  return v === undefined || typeof v === 'string' ? v : v.toString('utf8');
}

describe('buildCgiParams', () => {
  test('params begin with nginx fastcgi_params order', () => {
    const p = buildCgiParams(cgiRequest(), 'phpgate/test');
    assert.deepEqual(names(p).slice(0, 10), [
      'QUERY_STRING',
      'REQUEST_METHOD',
      'CONTENT_TYPE',
      'CONTENT_LENGTH',
      'SCRIPT_NAME',
      'REQUEST_URI',
      'DOCUMENT_URI',
      'DOCUMENT_ROOT',
      'SERVER_PROTOCOL',
      'REQUEST_SCHEME',
    ]);
    assert.deepEqual(names(p).slice(10, 22), [
      'GATEWAY_INTERFACE',
      'SERVER_SOFTWARE',
      'REMOTE_ADDR',
      'REMOTE_PORT',
      'REMOTE_USER',
      'SERVER_ADDR',
      'SERVER_PORT',
      'SERVER_NAME',
      'REDIRECT_STATUS',
      'SCRIPT_FILENAME',
      'PATH_INFO',
      'HTTP_HOST',
    ]);
    assert.equal(param(p, 'QUERY_STRING'), 'a=1');
    assert.equal(param(p, 'CONTENT_TYPE'), '');
    assert.equal(param(p, 'CONTENT_LENGTH'), '');
    assert.equal(param(p, 'GATEWAY_INTERFACE'), 'CGI/1.1');
    assert.equal(param(p, 'SERVER_SOFTWARE'), 'phpgate/test');
    assert.equal(param(p, 'REDIRECT_STATUS'), '200');
    assert.equal(param(p, 'REMOTE_PORT'), '50000');
    assert.equal(param(p, 'SERVER_PORT'), '8080');
  });

  test('HTTPS=on and REQUEST_SCHEME=https only over TLS', () => {
    const plain = buildCgiParams(cgiRequest(), 'x');
    assert.equal(param(plain, 'REQUEST_SCHEME'), 'http');
    assert.ok(!names(plain).includes('HTTPS'), 'HTTPS absent (not "off") over plain HTTP');
    const tls = buildCgiParams(cgiRequest({ https: true }), 'x');
    assert.equal(param(tls, 'REQUEST_SCHEME'), 'https');
    assert.equal(param(tls, 'HTTPS'), 'on');
    assert.equal(names(tls).indexOf('HTTPS'), names(tls).indexOf('REQUEST_SCHEME') + 1);
  });

  test('the Proxy request header is never passed (httpoxy), in any case', () => {
    for (const name of ['Proxy', 'proxy', 'PROXY', 'pRoXy']) {
      const p = buildCgiParams(cgiRequest({ rawHeaders: ['Host', 'h', name, 'http://evil:8080', 'Proxy-Authorization', 'x'] }), 'x');
      assert.equal(param(p, 'HTTP_PROXY'), undefined, name);
      // Proxy-* headers are other headers and pass.
      assert.equal(param(p, 'HTTP_PROXY_AUTHORIZATION'), 'x');
    }
  });

  test('header names with underscores (or other invalid characters) are dropped', () => {
    const p = buildCgiParams(
      cgiRequest({ rawHeaders: ['Host', 'h', 'X_Forwarded_For', '6.6.6.6', 'X-Forwarded-For', '1.2.3.4', 'X.Dot', 'd', 'X-Ok', 'y'] }),
      'x',
    );
    assert.equal(param(p, 'HTTP_X_FORWARDED_FOR'), '1.2.3.4');
    assert.equal(param(p, 'HTTP_X_OK'), 'y');
    assert.ok(!names(p).some((n) => n.includes('.')));
  });

  test('headers become HTTP_* upper case with - turned into _', () => {
    const p = buildCgiParams(cgiRequest({ rawHeaders: ['Host', 'h', 'accept-LANGUAGE', 'de', 'User-Agent', 'ua'] }), 'x');
    assert.equal(param(p, 'HTTP_ACCEPT_LANGUAGE'), 'de');
    assert.equal(param(p, 'HTTP_USER_AGENT'), 'ua');
  });

  test('repeated headers are joined with ", " (case-insensitively), at the first one\'s place', () => {
    const p = buildCgiParams(cgiRequest({ rawHeaders: ['Host', 'h', 'X-Multi', 'a', 'Accept', '*/*', 'x-multi', 'b', 'X-MULTI', 'c'] }), 'x');
    assert.equal(param(p, 'HTTP_X_MULTI'), 'a, b, c');
    const headerNames = names(p).filter((n) => n.startsWith('HTTP_'));
    assert.deepEqual(headerNames, ['HTTP_HOST', 'HTTP_X_MULTI', 'HTTP_ACCEPT']);
  });

  test('cookies are joined with "; "', () => {
    const p = buildCgiParams(cgiRequest({ rawHeaders: ['Host', 'h', 'Cookie', 'a=1', 'cookie', 'b=2; c=3', 'Cookie', 'd=4'] }), 'x');
    assert.equal(param(p, 'HTTP_COOKIE'), 'a=1; b=2; c=3; d=4');
  });

  test('HTTP/2 pseudo headers are skipped; :authority becomes HTTP_HOST when there is no Host header', () => {
    const raw = [':method', 'GET', ':path', '/index.php', ':scheme', 'https', ':authority', 'h2.example:8443', 'accept', '*/*'];
    // As the front end hands it over (the authority field set for :authority without Host)…
    const viaField = buildCgiParams(cgiRequest({ serverProtocol: 'HTTP/2.0', https: true, rawHeaders: raw, host: 'h2.example:8443' }), 'x');
    // …and when only the raw pseudo header carries it.
    const viaRaw = buildCgiParams(cgiRequest({ serverProtocol: 'HTTP/2.0', https: true, rawHeaders: raw, host: null }), 'x');
    for (const p of [viaField, viaRaw]) {
      assert.ok(!names(p).some((n) => n.includes(':')), JSON.stringify(names(p)));
      assert.equal(param(p, 'HTTP_HOST'), 'h2.example:8443');
      assert.equal(param(p, 'HTTP_ACCEPT'), '*/*');
      assert.equal(param(p, 'SERVER_PROTOCOL'), 'HTTP/2.0');
    }
  });

  test('an HTTP/2 request with a Host header (and no authority given) keeps the Host', () => {
    const raw = [':authority', 'h2.example', ':path', '/', 'host', 'h2.example'];
    const p = buildCgiParams(cgiRequest({ rawHeaders: raw, host: null }), 'x');
    assert.equal(param(p, 'HTTP_HOST'), 'h2.example');
  });

  test('an absolute-form authority wins over the Host header', () => {
    const p = buildCgiParams(cgiRequest({ rawHeaders: ['Host', 'spoofed.example', 'Accept', '*/*'], host: 'real.example:8080' }), 'x');
    assert.equal(param(p, 'HTTP_HOST'), 'real.example:8080');
    assert.equal(param(p, 'HTTP_ACCEPT'), '*/*');
    const noHost = buildCgiParams(cgiRequest({ rawHeaders: ['Accept', '*/*'], host: 'real.example' }), 'x');
    assert.equal(param(noHost, 'HTTP_HOST'), 'real.example');
  });

  test('CONTENT_TYPE and CONTENT_LENGTH are passed when present (and not duplicated as HTTP_*… as nginx does)', () => {
    const p = buildCgiParams(
      cgiRequest({
        method: 'POST',
        contentType: 'application/json',
        contentLength: '12',
        rawHeaders: ['Host', 'h', 'Content-Type', 'application/json', 'Content-Length', '12'],
      }),
      'x',
    );
    assert.equal(param(p, 'CONTENT_TYPE'), 'application/json');
    assert.equal(param(p, 'CONTENT_LENGTH'), '12');
    assert.equal(param(p, 'REQUEST_METHOD'), 'POST');
  });

  test("the returned list is fresh per call (joining one request's headers never touches another's)", () => {
    const a = buildCgiParams(cgiRequest({ rawHeaders: ['X-A', '1', 'X-A', '2'] }), 'x');
    const b = buildCgiParams(cgiRequest({ rawHeaders: ['X-A', '3'] }), 'x');
    assert.equal(param(a, 'HTTP_X_A'), '1, 2');
    assert.equal(param(b, 'HTTP_X_A'), '3');
  });
});

// ---------------------------------------------------------------------------------------------------------------
// parseTarget
// ---------------------------------------------------------------------------------------------------------------

/** Raw UTF-8 bytes as node hands them over in req.url: one latin1 char per byte. */
function latin1(s: string): string {
  return Buffer.from(s, 'utf8').toString('latin1');
}

describe('parseTarget', () => {
  const table: Array<[target: string, expected: Pick<ParsedTarget, 'path' | 'query' | 'requestUri'> | null]> = [
    ['/', { path: '/', query: '', requestUri: '/' }],
    ['/index.php?a=1&b=2', { path: '/index.php', query: 'a=1&b=2', requestUri: '/index.php?a=1&b=2' }],
    ['/a//b', { path: '/a/b', query: '', requestUri: '/a//b' }],
    ['//a///b//', { path: '/a/b/', query: '', requestUri: '//a///b//' }],
    ['/a/./b', { path: '/a/b', query: '', requestUri: '/a/./b' }],
    ['/a/b/..', { path: '/a/', query: '', requestUri: '/a/b/..' }],
    ['/a/b/../c', { path: '/a/c', query: '', requestUri: '/a/b/../c' }],
    ['/a/.', { path: '/a/', query: '', requestUri: '/a/.' }],
    ['/a/..', { path: '/', query: '', requestUri: '/a/..' }],
    ['/..', null],
    ['/../x', null],
    ['/a/../../x', null],
    ['/%2e%2e/x', null],
    ['/%2E%2E/x', null],
    ['/a/%2e%2e/b', { path: '/b', query: '', requestUri: '/a/%2e%2e/b' }],
    ['/a%2fb', { path: '/a/b', query: '', requestUri: '/a%2fb' }],
    ['/a%2f%2fb', { path: '/a/b', query: '', requestUri: '/a%2f%2fb' }],
    ['/%00', null],
    ['/a%00.php', null],
    ['/\u0000', null],
    ['/%ff', null],
    ['/100%', null],
    ['/%zz', null],
    ['/a%2', null],
    ['/%C3', null],
    ['/caf%C3%A9', { path: '/café', query: '', requestUri: '/caf%C3%A9' }],
    ['/caf%c3%a9?x=%C3%A9', { path: '/café', query: 'x=%C3%A9', requestUri: '/caf%c3%a9?x=%C3%A9' }],
    [latin1('/café/ü.php'), { path: '/café/ü.php', query: '', requestUri: latin1('/café/ü.php') }],
    [latin1('/日本/x'), { path: '/日本/x', query: '', requestUri: latin1('/日本/x') }],
    ['/a%20b', { path: '/a b', query: '', requestUri: '/a%20b' }],
    ['/p?q=1#frag', { path: '/p', query: 'q=1', requestUri: '/p?q=1' }],
    ['/p#frag?notquery', { path: '/p', query: '', requestUri: '/p' }],
    ['/p?', { path: '/p', query: '', requestUri: '/p?' }],
    ['/p?a=/../../etc', { path: '/p', query: 'a=/../../etc', requestUri: '/p?a=/../../etc' }],
    ['http://example.com/x/y.php?z=1', { path: '/x/y.php', query: 'z=1', requestUri: '/x/y.php?z=1' }],
    ['HTTPS://Example.com:8443/a//b', { path: '/a/b', query: '', requestUri: '/a//b' }],
    ['http://example.com', { path: '/', query: '', requestUri: '/' }],
    ['http://example.com?x=1', { path: '/', query: 'x=1', requestUri: '/?x=1' }],
    ['http://example.com/../x', null],
    ['*', null],
    ['ftp://example.com/x', null],
    ['index.php', null],
  ];

  for (const [target, expected] of table) {
    test(`${JSON.stringify(target)} → ${expected === null ? 'invalid (400)' : JSON.stringify(expected.path)}`, () => {
      const r = parseTarget(target);
      if (expected === null) {
        assert.equal(r, null);
        return;
      }
      assert.ok(r !== null, 'parsed');
      assert.deepEqual({ path: r.path, query: r.query, requestUri: r.requestUri }, expected);
    });
  }

  test('absolute-form targets report their authority; origin-form ones none', () => {
    assert.equal(parseTarget('http://example.com:8080/x')?.authority, 'example.com:8080');
    assert.equal(parseTarget('http://[::1]:8080/x')?.authority, '[::1]:8080');
    assert.equal(parseTarget('/x')?.authority, null);
    assert.equal(parseTarget('/x?http://y')?.authority, null);
  });

  test('absolute-form targets with userinfo, an empty or a malformed host are invalid (400, as nginx)', () => {
    for (const t of ['https://user@example.com/x', 'http:///x.php', 'http://user:pw@evil:1/', 'http://ex ample/x', 'http://a:99999999/']) {
      assert.equal(parseTarget(t), null, t);
    }
  });
});
