/**
 * Differential test, the response side: what the client gets back from phpgate must be what it gets from
 * nginx + php-fpm (test/anchors/) for the same request over the same fixture docroot: status, body, and the
 * headers that matter. Routing answers (404, 403, 301), PHP's own statuses and headers, streamed and large
 * bodies, static files. The harness and its normalisations are in ./both.ts.
 *
 * Where the two legitimately differ in a detail (a reason phrase, an added header), the comparison
 * says so where it happens; the deliberate differences themselves are asserted in
 * differential-deliberate.test.ts.
 *
 * nginx + php-fpm missing: the tests are skipped locally, but fail when CI is set (CI installs them).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fixtureSiteDir } from '../fixtures/site.js';
import { headerNamesDiff, sha256, useStacks } from './both.js';
import type { SimpleResponse } from './both.js';

/** Every value of one response header, in order, as sent (node's `headers` joins or drops repeats). */
function rawValues(res: SimpleResponse, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < res.rawHeaders.length; i += 2) if (res.rawHeaders[i]!.toLowerCase() === name) out.push(res.rawHeaders[i + 1]!);
  return out;
}

/**
 * Static files: phpgate adds `X-Content-Type-Options: nosniff` (hardening; asserted in
 * differential-deliberate.test.ts), so that name is left out when comparing static answers' header names.
 */
const STATIC_EXTRA = ['x-content-type-options'];

/** The path of a Location, whether absolute (nginx's own redirects) or relative (PHP's, phpgate's). */
const pathOf = (loc: string | string[] | undefined): string => {
  const u = new URL(String(loc), 'http://placeholder');
  return u.pathname + u.search;
};

describe('differential: what the client gets, phpgate vs nginx + php-fpm over the fixture site', () => {
  const stacks = useStacks();
  const { both, ready } = stacks;

  // ---- PHP statuses ----------------------------------------------------------------------------------------

  it('status.php: CGI Status header with reason phrase', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/status.php?code=404&reason=Not%20Found' });
    assert.equal(a.status, 404);
    assert.equal(b.status, a.status);
    assert.equal(b.text, a.text);
  });

  it('status.php: 201 with a reason phrase: status, reason and body equal', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/status.php?code=201&reason=Created' });
    assert.equal(a.status, 201);
    assert.equal(a.statusMessage, 'Created');
    assert.equal(b.status, a.status);
    assert.equal(b.statusMessage, a.statusMessage);
    assert.equal(b.text, a.text);
    assert.equal(headerNamesDiff(a, b), '');
  });

  it('status.php: a custom reason phrase is passed on as PHP wrote it', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/status.php?code=404&reason=Gone%20Fishing' });
    assert.equal(a.statusMessage, 'Gone Fishing');
    assert.equal(b.status, a.status);
    assert.equal(b.statusMessage, a.statusMessage);
  });

  // `Status: N` without a reason phrase: nginx sends its status line with an empty reason ("HTTP/1.1 201 "),
  // node's http server always writes one (the standard phrase, or "unknown" for a code it does not know).
  // RFC 9112 §4: the reason phrase is optional and clients must ignore it, so these compare status codes (and
  // bodies), never the phrase.
  for (const code of [201, 404, 599]) {
    it(`status.php: Status: ${code} without a reason phrase: status codes and bodies equal`, async (t) => {
      if (!ready(t)) return;
      const [a, b] = await both({ target: `/status.php?code=${code}` });
      assert.equal(a.status, code);
      assert.equal(b.status, a.status);
      assert.equal(b.text, a.text);
      assert.equal(headerNamesDiff(a, b), '');
    });
  }

  it('status.php: 204 without a reason phrase: status only, no body on either side', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/status.php?code=204' });
    assert.equal(a.status, 204);
    assert.equal(b.status, a.status);
    assert.equal(a.body.length, 0);
    assert.equal(b.body.length, 0);
  });

  it('http_response_code.php?code=418: status code (PHP sends no reason phrase for it; node adds one, as above)', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/http_response_code.php?code=418' });
    assert.equal(a.status, 418);
    assert.equal(b.status, a.status);
    assert.equal(b.text, a.text);
    assert.equal(b.headers['content-type'], a.headers['content-type']);
  });

  // ---- redirects from PHP --------------------------------------------------------------------------------

  it('redirect.php: Location only (PHP picks 302)', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/redirect.php?to=/x' });
    assert.equal(a.status, 302);
    assert.equal(b.status, a.status);
    assert.equal(b.headers['location'], a.headers['location']);
  });

  // PHP's Location is passed through as PHP wrote it by both (nginx makes only its own redirects absolute).
  for (const [name, query, status, location] of [
    ['absolute URL', '?to=http://example.com/abs%3Fq%3D1', 302, 'http://example.com/abs?q=1'],
    ['relative path without a slash', '?to=relative/path', 302, 'relative/path'],
    ['code=301', '?to=/moved&code=301', 301, '/moved'],
    ['code=308', '?to=/moved&code=308', 308, '/moved'],
  ] as const) {
    it(`redirect.php: ${name} (${query})`, async (t) => {
      if (!ready(t)) return;
      const [a, b] = await both({ target: `/redirect.php${query}` });
      assert.equal(a.status, status);
      assert.equal(a.headers['location'], location);
      assert.equal(b.status, a.status);
      assert.equal(b.statusMessage, a.statusMessage);
      assert.equal(b.headers['location'], a.headers['location']);
      assert.equal(b.body.length, a.body.length);
    });
  }

  // ---- PHP's headers and bodies --------------------------------------------------------------------------

  it('about.php: body, Content-Type and header names equal', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/about.php' });
    assert.equal(a.status, 200);
    assert.equal(b.status, a.status);
    assert.equal(b.text, a.text);
    assert.equal(b.headers['content-type'], a.headers['content-type']);
    assert.equal(headerNamesDiff(a, b), '');
  });

  it('cookies.php: Set-Cookie values as a list', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/cookies.php' });
    assert.equal(a.status, 200);
    assert.equal(b.status, a.status);
    assert.equal(a.headers['set-cookie']?.length, 3);
    assert.deepEqual(b.headers['set-cookie'], a.headers['set-cookie']);
    assert.equal(b.text, a.text);
  });

  it('headers.php?redirect=0: a repeated response header stays repeated, X-Accel-* hidden', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/headers.php?redirect=0' });
    assert.equal(a.status, 200);
    assert.deepEqual(rawValues(a, 'x-custom'), ['one', 'two']);
    assert.deepEqual(rawValues(a, 'x-accel-expires'), []);
    assert.equal(b.status, a.status);
    assert.deepEqual(rawValues(b, 'x-custom'), rawValues(a, 'x-custom'));
    assert.equal(headerNamesDiff(a, b), '');
    assert.equal(b.text, a.text);
  });

  it('stream.php?ms=200: flushed output, bodies equal', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/stream.php?ms=200' });
    assert.equal(a.status, 200);
    assert.equal(a.text, 'first\nsecond\n');
    assert.equal(b.status, a.status);
    assert.equal(b.text, a.text);
    assert.equal(b.headers['content-type'], a.headers['content-type']);
  });

  it('exit.php: output before exit()', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/exit.php' });
    assert.equal(a.status, 200);
    assert.equal(b.status, a.status);
    assert.equal(b.text, a.text);
  });

  it('fatal.php: 500 with the output before the fatal error', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/fatal.php' });
    assert.equal(a.status, 500);
    assert.equal(a.text, 'before\n');
    assert.equal(b.status, a.status);
    assert.equal(b.text, a.text);
  });

  it('HEAD fatal.php: 500, no body, same header names', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ method: 'HEAD', target: '/fatal.php' });
    assert.equal(a.status, 500);
    assert.equal(b.status, a.status);
    assert.equal(b.body.length, 0);
    assert.equal(headerNamesDiff(a, b), '');
  });

  it('binary.php: 256 KiB of every byte value, bytes equal', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/binary.php' });
    assert.equal(a.status, 200);
    assert.equal(a.body.length, 256 * 1024);
    assert.equal(b.status, a.status);
    assert.ok(b.body.equals(a.body), `bodies differ: nginx+fpm ${a.body.length} bytes, phpgate ${b.body.length} bytes`);
  });

  it('big.php?mb=2: 2 MiB unflushed, sha256 equal', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/big.php?mb=2' });
    assert.equal(a.status, 200);
    assert.equal(a.body.length, 2 * 1024 * 1024);
    assert.equal(b.status, a.status);
    assert.equal(b.body.length, a.body.length);
    assert.equal(sha256(b.body), sha256(a.body));
  });

  // ---- routing answers -----------------------------------------------------------------------------------

  it('nothere.php: missing script is a 404', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/nothere.php' });
    assert.equal(a.status, 404);
    assert.equal(b.status, a.status);
  });

  it('missing script with PATH_INFO is a 404 (no front controller for the PHP location)', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/nothere.php/extra?x=1' });
    assert.equal(a.status, 404);
    assert.equal(b.status, a.status);
  });

  // A missing file outside the PHP location never 404s with this try_files: the front controller answers it
  // (`/index.php?$query_string`, 200 from index.php's dump), on both. Status and script only.
  it('missing static file: the front controller answers (GET /missing.css)', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/missing.css' });
    assert.equal(a.status, 200);
    assert.equal(b.status, a.status);
    const script = (r: SimpleResponse) => (JSON.parse(r.text) as { server: Record<string, string> }).server['SCRIPT_NAME'];
    assert.equal(script(a), '/index.php');
    assert.equal(script(b), script(a));
  });

  it('/admin: directory without slash redirects to /admin/', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/admin' });
    assert.equal(a.status, 301);
    assert.equal(b.status, a.status);
    // nginx writes an absolute Location with its own port (absolute_redirect, port_in_redirect); host and port
    // legitimately differ, so only the path is compared.
    assert.equal(pathOf(a.headers['location']), '/admin/');
    assert.equal(pathOf(b.headers['location']), pathOf(a.headers['location']));
  });

  it('/sub: directory without slash redirects to /sub/ (path compared), query kept', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/sub?x=1' });
    assert.equal(a.status, 301);
    assert.equal(b.status, a.status);
    // Absolute (nginx) vs relative (phpgate) Location: see differential-deliberate.test.ts. The path and query
    // are the same.
    assert.equal(pathOf(a.headers['location']), '/sub/?x=1');
    assert.equal(pathOf(b.headers['location']), pathOf(a.headers['location']));
  });

  it('/uploads/x.jpg/y.php: no script, no PATH_INFO trick: 404', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/uploads/x.jpg/y.php' });
    assert.equal(a.status, 404);
    assert.equal(b.status, a.status);
    assert.ok(!b.text.includes('EXECUTED'));
  });

  it('/uploads/: directory without index is 403', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/uploads/' });
    assert.equal(a.status, 403);
    assert.equal(b.status, a.status);
  });

  // ---- static files --------------------------------------------------------------------------------------

  it('static.txt: served as is', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/static.txt' });
    assert.equal(a.status, 200);
    assert.equal(b.status, a.status);
    assert.equal(b.text, a.text);
  });

  it('static.txt: validators and header names as nginx (ETag, Last-Modified, Accept-Ranges)', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/static.txt' });
    assert.equal(b.status, a.status);
    assert.equal(headerNamesDiff(a, b, STATIC_EXTRA), '');
    assert.equal(b.headers['etag'], a.headers['etag']);
    assert.equal(b.headers['last-modified'], a.headers['last-modified']);
    assert.equal(b.headers['accept-ranges'], a.headers['accept-ranges']);
    // Neither adds a charset: nginx's `charset` is off unless configured, and so is static.charset.
    assert.equal(b.headers['content-type'], a.headers['content-type']);
    assert.equal(a.headers['content-type'], 'text/plain');
  });

  it('HEAD static.txt: status and header names, no body', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ method: 'HEAD', target: '/static.txt' });
    assert.equal(a.status, 200);
    assert.equal(b.status, a.status);
    assert.equal(b.body.length, 0);
    assert.equal(headerNamesDiff(a, b, STATIC_EXTRA), '');
    assert.equal(b.headers['content-length'], a.headers['content-length']);
  });

  it('page.html: body and media type', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/page.html' });
    assert.equal(a.status, 200);
    assert.equal(b.status, a.status);
    assert.equal(b.text, a.text);
    assert.equal(b.headers['content-type'], a.headers['content-type']);
  });

  it('static.txt with If-None-Match of its ETag: 304 on both', async (t) => {
    if (!ready(t)) return;
    const st = fs.statSync(path.join(fixtureSiteDir, 'static.txt'));
    const etag = `"${Math.floor(st.mtimeMs / 1000).toString(16)}-${st.size.toString(16)}"`; // nginx's mtime-size
    const [a, b] = await both({ target: '/static.txt', headers: { 'If-None-Match': etag } });
    assert.equal(a.status, 304);
    assert.equal(b.status, a.status);
    assert.equal(b.body.length, 0);
    assert.equal(b.headers['etag'], a.headers['etag']);
  });

  it('static.txt with Range: bytes=0-4: 206 and the same bytes', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/static.txt', headers: { Range: 'bytes=0-4' } });
    assert.equal(a.status, 206);
    assert.equal(a.text, 'hello');
    assert.equal(b.status, a.status);
    assert.equal(b.text, a.text);
    assert.equal(b.headers['content-range'], a.headers['content-range']);
  });

  it('/uploads/x.jpg: served as a static file, never run (body is the PHP source on both)', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/uploads/x.jpg' });
    assert.equal(a.status, 200);
    assert.ok(a.text.includes('<?php'));
    assert.equal(b.status, a.status);
    assert.ok(b.text.includes('<?php'), `phpgate: ${b.text.slice(0, 200)}`);
    assert.ok(b.body.equals(a.body));
    assert.equal(b.headers['content-type'], a.headers['content-type']);
  });

  // nginx's static module answers 405 to methods other than GET/HEAD (POST included); phpgate too. phpgate's 405
  // also carries `Allow: GET, HEAD` (asserted in differential-deliberate.test.ts): status only here.
  it('POST to a static file: 405 on both (status only)', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({
      method: 'POST',
      target: '/static.txt',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'a=1',
    });
    assert.equal(a.status, 405);
    assert.equal(b.status, a.status);
  });

  it('DELETE on a static file: 405 on both (status only)', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ method: 'DELETE', target: '/page.html' });
    assert.equal(a.status, 405);
    assert.equal(b.status, a.status);
  });
});
