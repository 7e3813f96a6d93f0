/**
 * gzip and brotli of PHP's answers (compression.*) through the real gateway and real php-cgi: the negotiation
 * matrix with q-values, compressible types only, min_bytes, PHP's own encoding passed through, Vary and ETag,
 * HEAD and 304, streamed (flushed) answers staying flushed, HTTP/2, and the decision rules on their own.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';
import { Compression, compressedHeaders } from '../gateway/filters/compression.js';
import { parseAcceptEncoding } from '../gateway/http/accept-encoding.js';
import { request, startGateway, type RunningGateway } from './support/gateway.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-gzip-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const PAGE = `<?php header('ETag: "v1"'); echo str_repeat("<p>hello compression</p>\\n", 400);`;

function site(): string {
  const dir = path.join(tmp, 'site');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'page.php'), PAGE);
  fs.writeFileSync(path.join(dir, 'small.php'), '<?php echo "tiny";');
  // 300 KB in 10 KB flushes: past what is compressed whole, so the answer switches to a stream midway.
  fs.writeFileSync(path.join(dir, 'long.php'), '<?php for ($i = 0; $i < 30; $i++) { echo str_repeat("line $i of a long page\\n", 420); flush(); }');
  fs.writeFileSync(path.join(dir, 'sized.php'), '<?php $b = str_repeat("x", 500); header("Content-Length: " . strlen($b)); echo $b;');
  fs.writeFileSync(
    path.join(dir, 'json.php'),
    "<?php header('Content-Type: application/json'); echo json_encode(array_fill(0, 300, ['k' => 'value']));",
  );
  fs.writeFileSync(path.join(dir, 'png.php'), "<?php header('Content-Type: image/png'); echo str_repeat('p', 5000);");
  fs.writeFileSync(path.join(dir, 'own.php'), "<?php ob_start('ob_gzhandler'); echo str_repeat('already compressed by PHP ', 300);");
  fs.writeFileSync(path.join(dir, 'notransform.php'), "<?php header('Cache-Control: no-transform'); echo str_repeat('keep me as I am ', 300);");
  fs.writeFileSync(path.join(dir, 'vary.php'), "<?php header('Vary: Cookie'); echo str_repeat('varies ', 500);");
  fs.writeFileSync(path.join(dir, 'notmod.php'), '<?php http_response_code(304);');
  // Three events a second apart, each flushed by PHP: each must reach the client when PHP flushes it.
  fs.writeFileSync(
    path.join(dir, 'events.php'),
    `<?php
header('Content-Type: text/event-stream');
header('X-Accel-Buffering: no');
while (ob_get_level()) ob_end_flush();
for ($i = 1; $i <= 3; $i++) { echo "data: event $i " . str_repeat('.', 2000) . "\\n\\n"; flush(); usleep(400000); }
`,
  );
  return dir;
}

interface Raw {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** The bytes as sent (node's client never decodes). */
function raw(port: number, target: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Raw> {
  return new Promise((resolve, reject) => {
    http
      .request({ host: '127.0.0.1', port, path: target, method, headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      })
      .on('error', reject)
      .end();
  });
}

function decode(r: Raw): string {
  const enc = r.headers['content-encoding'];
  if (enc === 'gzip') return zlib.gunzipSync(r.body).toString();
  if (enc === 'br') return zlib.brotliDecompressSync(r.body).toString();
  return r.body.toString();
}

describe('compression of PHP answers', () => {
  let g: RunningGateway;
  let expected: string;
  before(async () => {
    g = await startGateway('php:\n  worker_count: 2\n', { docroot: site() });
    expected = (await request(g.base, '/page.php')).text;
    assert.equal(expected.length, 400 * 25);
  });
  after(() => g.stop());

  const matrix: Array<[accept: string, encoding: string | undefined]> = [
    ['gzip', 'gzip'],
    ['br', 'br'],
    ['gzip, deflate, br', 'br'],
    ['gzip, deflate, br, zstd', 'br'],
    ['br;q=0.5, gzip', 'gzip'],
    ['br;q=0, gzip;q=0.1', 'gzip'],
    ['gzip;q=0', undefined],
    ['deflate', undefined],
    ['identity', undefined],
    ['*', 'br'],
    ['*;q=0', undefined],
    ['x-gzip', 'gzip'],
    ['GZIP', 'gzip'],
    ['gzip;q=2', undefined],
  ];
  for (const [accept, encoding] of matrix) {
    test(`Accept-Encoding "${accept}" → ${encoding ?? 'identity'}, same page after decoding`, async () => {
      const r = await raw(g.port, '/page.php', { 'Accept-Encoding': accept });
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-encoding'], encoding);
      assert.equal(decode(r), expected);
      if (encoding !== undefined) {
        assert.ok(r.body.length < expected.length / 5, `${r.body.length} bytes`);
        assert.equal(r.headers['vary'], 'Accept-Encoding');
        assert.equal(r.headers['etag'], 'W/"v1"', 'a strong ETag becomes weak');
        assert.equal(r.headers['content-length'], undefined);
      }
    });
  }

  test('a body bigger than what is compressed whole arrives whole, in both encodings', async () => {
    const identity = (await raw(g.port, '/long.php')).body.toString();
    assert.ok(identity.length > 200_000, `${identity.length} bytes`);
    for (const enc of ['gzip', 'br']) {
      const r = await raw(g.port, '/long.php', { 'Accept-Encoding': enc });
      assert.equal(r.headers['content-encoding'], enc);
      assert.equal(decode(r), identity);
    }
  });

  test('no Accept-Encoding: identity, untouched', async () => {
    const r = await raw(g.port, '/page.php');
    assert.equal(r.headers['content-encoding'], undefined);
    assert.equal(r.headers['etag'], '"v1"');
    assert.equal(r.body.toString(), expected);
  });

  test('JSON is compressed; an image type is not', async () => {
    assert.equal((await raw(g.port, '/json.php', { 'Accept-Encoding': 'gzip' })).headers['content-encoding'], 'gzip');
    const png = await raw(g.port, '/png.php', { 'Accept-Encoding': 'gzip' });
    assert.equal(png.headers['content-encoding'], undefined);
    assert.equal(png.body.length, 5000);
  });

  test('below min_bytes (1024) by Content-Length stays as it is; a short streamed answer is compressed (its length is unknown)', async () => {
    const sized = await raw(g.port, '/sized.php', { 'Accept-Encoding': 'gzip' });
    assert.equal(sized.headers['content-encoding'], undefined);
    assert.equal(sized.headers['content-length'], '500');
    const small = await raw(g.port, '/small.php', { 'Accept-Encoding': 'gzip' });
    assert.equal(decode(small), 'tiny');
  });

  test('a body PHP compressed itself (ob_gzhandler) is never compressed twice', async () => {
    const r = await raw(g.port, '/own.php', { 'Accept-Encoding': 'gzip, br' });
    assert.equal(r.headers['content-encoding'], 'gzip');
    assert.equal(zlib.gunzipSync(r.body).toString(), 'already compressed by PHP '.repeat(300));
  });

  test('Cache-Control: no-transform is honoured', async () => {
    const r = await raw(g.port, '/notransform.php', { 'Accept-Encoding': 'gzip' });
    assert.equal(r.headers['content-encoding'], undefined);
  });

  test("PHP's own Vary is extended, not replaced", async () => {
    const r = await raw(g.port, '/vary.php', { 'Accept-Encoding': 'br' });
    assert.equal(r.headers['vary'], 'Cookie, Accept-Encoding');
    assert.equal(decode(r), 'varies '.repeat(500));
  });

  test('HEAD and 304 answers carry no encoding', async () => {
    const head = await raw(g.port, '/page.php', { 'Accept-Encoding': 'gzip' }, 'HEAD');
    assert.equal(head.headers['content-encoding'], undefined);
    const notModified = await raw(g.port, '/notmod.php', { 'Accept-Encoding': 'gzip' });
    assert.equal(notModified.status, 304);
    assert.equal(notModified.headers['content-encoding'], undefined);
  });

  test('server-sent events with X-Accel-Buffering: no stay flushed: each event arrives, decodable, before the next is written', async () => {
    const arrivals: number[] = [];
    const text = await new Promise<string>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: g.port, path: '/events.php', headers: { 'Accept-Encoding': 'gzip' }, agent: false }, (res) => {
          assert.equal(res.headers['content-encoding'], 'gzip');
          const gunzip = zlib.createGunzip();
          let out = '';
          gunzip.on('data', (c: Buffer) => {
            out += c.toString();
            arrivals.push(Date.now());
          });
          gunzip.on('end', () => resolve(out));
          gunzip.on('error', reject);
          res.pipe(gunzip);
        })
        .on('error', reject);
    });
    assert.equal((text.match(/data: event \d/g) ?? []).length, 3);
    // Flushed per event: the decoded text came in several pieces spread over the ~0.8 s PHP took.
    assert.ok(arrivals.length >= 3, `${arrivals.length} pieces`);
    assert.ok(arrivals[arrivals.length - 1]! - arrivals[0]! >= 500, `all within ${arrivals[arrivals.length - 1]! - arrivals[0]!} ms`);
  });
});

describe('compression under backpressure and over HTTP/2', () => {
  test('a large streamed answer to a slow reader arrives whole (PHP paused through the encoder, then resumed)', async () => {
    const dir = site();
    fs.writeFileSync(path.join(dir, 'big.php'), '<?php for ($i = 0; $i < 4000; $i++) { echo str_pad((string) $i, 1000, \'.\'), "\\n"; }');
    const g = await startGateway('php:\n  worker_count: 1\n', { docroot: dir });
    try {
      const text = await new Promise<string>((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port: g.port, path: '/big.php', headers: { 'Accept-Encoding': 'br' }, agent: false }, (res) => {
            assert.equal(res.headers['content-encoding'], 'br');
            res.pause();
            const decoder = zlib.createBrotliDecompress();
            let out = '';
            decoder.on('data', (c: Buffer) => (out += c.toString()));
            decoder.on('end', () => resolve(out));
            decoder.on('error', reject);
            // Start reading only after a while: the gateway must hold PHP back meanwhile, not fail or buffer without end.
            setTimeout(() => res.pipe(decoder), 300);
          })
          .on('error', reject);
      });
      const lines = text.split('\n').filter((l) => l !== '');
      assert.equal(lines.length, 4000);
      assert.ok(lines.every((l, i) => l.startsWith(`${i}.`)));
      assert.equal((await request(g.base, '/small.php')).text, 'tiny', 'the worker serves again');
    } finally {
      await g.stop();
    }
  });

  test('over HTTP/2 the answer is compressed the same way', async () => {
    const { selfSigned } = await import('./support/certs.js');
    const http2 = await import('node:http2');
    const c = selfSigned(tmp, 'gz');
    const g = await startGateway(`server:\n  tls: { cert: ${c.cert}, key: ${c.key} }\nphp:\n  worker_count: 1\n`, { docroot: site() });
    const session = http2.connect(`https://localhost:${g.port}`, { rejectUnauthorized: false });
    try {
      const { headers, body } = await new Promise<{ headers: Record<string, unknown>; body: Buffer }>((resolve, reject) => {
        const stream = session.request({ ':path': '/page.php', 'accept-encoding': 'gzip' });
        const chunks: Buffer[] = [];
        let head: Record<string, unknown> = {};
        stream.on('response', (h) => (head = h));
        stream.on('data', (d: Buffer) => chunks.push(d));
        stream.on('end', () => resolve({ headers: head, body: Buffer.concat(chunks) }));
        stream.on('error', reject);
      });
      assert.equal(headers['content-encoding'], 'gzip');
      assert.equal(zlib.gunzipSync(body).toString(), '<p>hello compression</p>\n'.repeat(400));
    } finally {
      session.close();
      await g.stop();
    }
  });
});

describe('compression levels', () => {
  test('gzip_level and brotli_level are the levels the bytes are compressed at', async () => {
    const g = await startGateway('compression:\n  gzip_level: 1\n  brotli_level: 9\nphp:\n  worker_count: 1\n', { docroot: site() });
    try {
      const expected = (await raw(g.port, '/page.php')).body.toString();
      const gz = await raw(g.port, '/page.php', { 'Accept-Encoding': 'gzip' });
      assert.equal(decode(gz), expected);
      // gzip's header carries the level class (RFC 1952 XFL): 4 = fastest, 2 = best; level 1 is "fastest".
      assert.equal(gz.body[8], 4, 'XFL says level 1');
      const br = await raw(g.port, '/page.php', { 'Accept-Encoding': 'br' });
      assert.equal(decode(br), expected);
      const q = (n: number): number =>
        zlib.brotliCompressSync(expected, {
          params: { [zlib.constants.BROTLI_PARAM_QUALITY]: n, [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT },
        }).length;
      assert.notEqual(q(9), q(4), 'the page tells the two qualities apart');
      assert.equal(br.body.length, q(9));
    } finally {
      await g.stop();
    }
  });
});

describe('compression turned off', () => {
  test('gzip: false and brotli: false send identity whatever the client accepts', async () => {
    const g = await startGateway('compression:\n  gzip: false\n  brotli: false\nphp:\n  worker_count: 1\n', { docroot: site() });
    try {
      const r = await raw(g.port, '/page.php', { 'Accept-Encoding': 'gzip, br' });
      assert.equal(r.headers['content-encoding'], undefined);
    } finally {
      await g.stop();
    }
  });

  test('brotli: false falls back to gzip for a client that prefers br', async () => {
    const g = await startGateway('compression:\n  brotli: false\nphp:\n  worker_count: 1\n', { docroot: site() });
    try {
      const r = await raw(g.port, '/page.php', { 'Accept-Encoding': 'br, gzip' });
      assert.equal(r.headers['content-encoding'], 'gzip');
    } finally {
      await g.stop();
    }
  });
});

describe('compression decisions', () => {
  const c = new Compression({ gzip: true, brotli: true, min_bytes: 1024, gzip_level: 5, brotli_level: 4 });
  const html = { contentType: 'text/html; charset=UTF-8', contentLength: null };
  const typed = (contentType: string): { contentType: string; contentLength: null } => ({ contentType, contentLength: null });

  test('q-values parse as RFC 9110 says; a malformed q refuses', () => {
    assert.deepEqual(
      [...parseAcceptEncoding('gzip;q=0.8, br ; q=1.0, *;q=0, x;q=abc')],
      [
        ['gzip', 0.8],
        ['br', 1],
        ['*', 0],
        ['x', 0],
      ],
    );
  });

  test('status, method and type rules', () => {
    assert.equal(c.choose('gzip', 'GET', 200, html, []), 'gzip');
    assert.equal(c.choose('gzip', 'GET', 206, html, []), null);
    assert.equal(c.choose('gzip', 'GET', 204, html, []), null);
    assert.equal(c.choose('gzip', 'HEAD', 200, html, []), null);
    assert.equal(c.choose('gzip', 'GET', 404, { ...html, contentLength: 5000 }, []), 'gzip');
    assert.equal(c.choose('gzip', 'GET', 200, typed('application/vnd.api+json'), []), 'gzip');
    assert.equal(c.choose('gzip', 'GET', 200, typed('application/octet-stream'), []), null);
    assert.equal(c.choose('gzip', 'GET', 200, typed(''), []), null, 'no type: unknown, left alone');
  });

  test('the compressed head drops Content-Length, weakens a strong ETag, keeps a weak one, and adds Vary once', () => {
    assert.deepEqual(compressedHeaders(['Content-Length', '9', 'ETag', '"a"', 'Vary', 'accept-encoding'], 'br'), [
      'ETag',
      'W/"a"',
      'Vary',
      'accept-encoding',
      'Content-Encoding',
      'br',
    ]);
    assert.deepEqual(compressedHeaders(['ETag', 'W/"a"'], 'gzip'), ['ETag', 'W/"a"', 'Vary', 'Accept-Encoding', 'Content-Encoding', 'gzip']);
  });
});
