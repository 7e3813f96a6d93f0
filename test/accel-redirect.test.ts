/**
 * X-Accel-Redirect through the real gateway and real php-cgi, as nginx does it: a PHP script checks who may have a
 * file and hands it back with `X-Accel-Redirect`; the gateway answers from an internal location (`static.internal`,
 * 404 when asked for directly) or any file or script of the site, with Range and conditional requests, the
 * script's own body never reaching the client, over HTTP/1.1 and HTTP/2.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { selfSigned } from './support/certs.js';
import { request, startGateway, type RunningGateway } from './support/gateway.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-accel-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const docroot = path.join(tmp, 'public');
const vault = path.join(tmp, 'vault');
fs.mkdirSync(docroot);
fs.mkdirSync(vault);
const REPORT = crypto.randomBytes(40_000);
const BIG = crypto.randomBytes(3 * 1024 * 1024); // past the hot-file cache: streamed from disk
fs.writeFileSync(path.join(vault, 'report.pdf'), REPORT);
fs.writeFileSync(path.join(vault, 'big.bin'), BIG);
fs.writeFileSync(path.join(docroot, 'public.txt'), 'a public file\n');
const PHP_BODY = 'THE SCRIPT BODY MUST NEVER REACH THE CLIENT';
// The download script: only ?user=ok may have the file; the redirect target comes from ?to.
fs.writeFileSync(
  path.join(docroot, 'download.php'),
  `<?php
if (($_GET['user'] ?? '') !== 'ok') { http_response_code(403); echo 'forbidden'; return; }
header('Content-Type: application/pdf');
header('Content-Disposition: attachment; filename="report.pdf"');
header('X-Accel-Redirect: ' . ($_GET['to'] ?? '/protected/report.pdf'));
header('X-Secret-Script-Header: nope');
echo '${PHP_BODY}';
`,
);
fs.writeFileSync(path.join(docroot, 'notes.txt'), 'a text file that compresses well\n'.repeat(200));
// Two ETags: HTTP/1.1 sends both, HTTP/2 refuses a repeated single-value field (node throws on the head).
fs.writeFileSync(path.join(docroot, 'two-etags.php'), `<?php header('ETag: "a"'); header('ETag: "b"', false); echo 'two etags';`);
fs.writeFileSync(
  path.join(docroot, 'target.php'),
  `<?php
header('Content-Type: application/json');
echo json_encode(['method' => $_SERVER['REQUEST_METHOD'], 'query' => $_SERVER['QUERY_STRING'], 'uri' => $_SERVER['REQUEST_URI'], 'script' => $_SERVER['SCRIPT_NAME']]);
`,
);
const certs = selfSigned(tmp, 'accel');

const YAML = `php:\n  worker_count: 2\nstatic:\n  internal:\n    - prefix: /protected/\n      alias: ${vault}\n`;

describe('X-Accel-Redirect from PHP (HTTP/1.1)', () => {
  let g: RunningGateway;
  before(async () => {
    g = await startGateway(YAML, { docroot });
  });
  after(() => g.stop());

  test("a protected file is served through an internal location: its bytes, PHP's carried headers, never PHP's body", async () => {
    const r = await request(g.base, '/download.php?user=ok');
    assert.equal(r.status, 200);
    assert.ok(r.body.equals(REPORT), "the file's bytes");
    assert.ok(!r.text.includes(PHP_BODY), "the script's own body is dropped");
    assert.equal(r.headers['content-type'], 'application/pdf', 'Content-Type carried from the script (nginx copies it)');
    assert.equal(r.headers['content-disposition'], 'attachment; filename="report.pdf"');
    assert.equal(r.headers['content-length'], String(REPORT.length));
    assert.equal(r.headers['x-accel-redirect'], undefined, 'the instruction is not passed on');
    assert.equal(r.headers['x-secret-script-header'], undefined, 'headers nginx does not carry stay behind');
    assert.match(String(r.headers['etag']), /^"[0-9a-f]+-[0-9a-f]+"$/, "the file's validators");
    assert.ok(r.headers['last-modified'] !== undefined);
    assert.equal(r.headers['x-content-type-options'], 'nosniff', 'security headers as on any answer');
  });

  test('the script still decides: refused requests get its own answer', async () => {
    const r = await request(g.base, '/download.php?user=no');
    assert.equal(r.status, 403);
    assert.equal(r.text, 'forbidden');
  });

  test("an internal location asked for directly is a 404, as nginx's `internal`", async () => {
    assert.equal((await request(g.base, '/protected/report.pdf')).status, 404);
    assert.equal((await request(g.base, '/protected/')).status, 404);
  });

  test('Range on the redirected file: 206 with the asked bytes', async () => {
    const r = await request(g.base, '/download.php?user=ok', { headers: { Range: 'bytes=100-199' } });
    assert.equal(r.status, 206);
    assert.equal(r.headers['content-range'], `bytes 100-199/${REPORT.length}`);
    assert.ok(r.body.equals(REPORT.subarray(100, 200)));
  });

  test('conditional requests on the redirected file: 304 for its ETag, 412 for another', async () => {
    const etag = String((await request(g.base, '/download.php?user=ok')).headers['etag']);
    const notModified = await request(g.base, '/download.php?user=ok', { headers: { 'If-None-Match': etag } });
    assert.equal(notModified.status, 304);
    assert.equal(notModified.body.length, 0);
    const failed = await request(g.base, '/download.php?user=ok', { headers: { 'If-Match': '"other"' } });
    assert.equal(failed.status, 412);
  });

  test('a large file is streamed whole', async () => {
    const r = await request(g.base, '/download.php?user=ok&to=/protected/big.bin');
    assert.equal(r.status, 200);
    assert.equal(r.body.length, BIG.length);
    assert.ok(r.body.equals(BIG));
  });

  test('a missing target is a 404, and so is an unsafe one (dot segments)', async () => {
    assert.equal((await request(g.base, '/download.php?user=ok&to=/protected/missing.pdf')).status, 404);
    const climbing = await request(g.base, `/download.php?user=ok&to=${encodeURIComponent('/protected/../public.txt')}`);
    assert.equal(climbing.status, 404);
    assert.ok(!climbing.text.includes(PHP_BODY));
    assert.equal((await request(g.base, `/download.php?user=ok&to=${encodeURIComponent('/protected/%2e%2e/public.txt')}`)).status, 404);
  });

  test("HEAD gets the file's head and no body", async () => {
    const r = await request(g.base, '/download.php?user=ok', { method: 'HEAD' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-length'], String(REPORT.length));
    assert.equal(r.body.length, 0);
  });

  test("a POST is answered as a GET of the target, as nginx's internal redirect does", async () => {
    const r = await request(g.base, '/download.php?user=ok', {
      method: 'POST',
      body: 'a=1',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(r.status, 200);
    assert.ok(r.body.equals(REPORT));
  });

  test('the target may be any file of the docroot', async () => {
    const r = await request(g.base, '/download.php?user=ok&to=/public.txt');
    assert.equal(r.status, 200);
    assert.equal(r.text, 'a public file\n');
    assert.equal(r.headers['content-type'], 'application/pdf', "the script's Content-Type still wins");
  });

  test("the target may be a script: it runs as a GET with the target's query, REQUEST_URI stays the client's", async () => {
    const r = await request(g.base, `/download.php?user=ok&to=${encodeURIComponent('/target.php?from=accel')}`, { method: 'POST', body: 'x' });
    assert.equal(r.status, 200);
    const seen = JSON.parse(r.text) as Record<string, string>;
    assert.equal(seen['method'], 'GET');
    assert.equal(seen['query'], 'from=accel');
    assert.equal(seen['script'], '/target.php');
    assert.equal(seen['uri'], `/download.php?user=ok&to=${encodeURIComponent('/target.php?from=accel')}`);
  });

  test('a target whose name the filesystem refuses (too long) is a 404, not a hung client', async () => {
    const r = await request(g.base, `/download.php?user=ok&to=/protected/${'n'.repeat(300)}.pdf`, { timeoutMs: 5_000 });
    assert.equal(r.status, 404);
    assert.ok(!r.text.includes(PHP_BODY));
  });

  test("a compressed target does not advertise byte ranges (they would be the identity form's)", async () => {
    const r = await request(g.base, '/download.php?user=ok&to=/notes.txt', { headers: { 'Accept-Encoding': 'gzip' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-encoding'], 'gzip');
    assert.equal(r.headers['accept-ranges'], undefined);
  });

  test("the script's worker is free at once: a pool of two serves ten downloads in a row", async () => {
    const all = await Promise.all(Array.from({ length: 10 }, () => request(g.base, '/download.php?user=ok&to=/protected/big.bin')));
    for (const r of all) assert.equal(r.body.length, BIG.length);
  });
});

describe('X-Accel-Redirect over HTTP/2', () => {
  let g: RunningGateway;
  before(async () => {
    g = await startGateway(`server:\n  tls:\n    cert: ${certs.cert}\n    key: ${certs.key}\n${YAML}`, { docroot });
  });
  after(() => g.stop());

  test('the protected file arrives over HTTP/2, ranges too', async () => {
    const session = http2.connect(`https://localhost:${g.port}`, { rejectUnauthorized: false });
    try {
      const get = (headers: http2.OutgoingHttpHeaders): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: Buffer }> =>
        new Promise((resolve, reject) => {
          const stream = session.request(headers);
          const chunks: Buffer[] = [];
          let head: http2.IncomingHttpHeaders = {};
          stream.on('response', (h) => (head = h));
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('end', () => resolve({ status: Number(head[':status']), headers: head, body: Buffer.concat(chunks) }));
          stream.on('error', reject);
        });
      const whole = await get({ ':path': '/download.php?user=ok' });
      assert.equal(whole.status, 200);
      assert.ok(whole.body.equals(REPORT));
      assert.equal(whole.headers['content-type'], 'application/pdf');
      const part = await get({ ':path': '/download.php?user=ok', range: 'bytes=0-9' });
      assert.equal(part.status, 206);
      assert.ok(part.body.equals(REPORT.subarray(0, 10)));
      const big = await get({ ':path': '/download.php?user=ok&to=/protected/big.bin' });
      assert.ok(big.body.equals(BIG));
      assert.equal((await get({ ':path': '/protected/report.pdf' })).status, 404);
    } finally {
      session.close();
    }
  });

  test('a head HTTP/2 cannot carry (a repeated single-value field) is a 502, not a reset stream', async () => {
    const session = http2.connect(`https://localhost:${g.port}`, { rejectUnauthorized: false });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const stream = session.request({ ':path': '/two-etags.php' });
        stream.on('response', (h) => resolve(Number(h[':status'])));
        stream.on('error', reject);
        stream.resume();
      });
      assert.equal(status, 502);
    } finally {
      session.close();
    }
  });
});
