/**
 * Static files through the real gateway (real php-cgi pools behind it), over a docroot built in a temp dir:
 * MIME types, validators and conditional requests (RFC 9110 §13), byte ranges (§14), Cache-Control rules,
 * precompressed siblings, hot-file cache freshness, refusals (dotfiles, traversal, symlinks, PHP source, deny
 * rules), directories, methods, error pages, and memory use with large files and slow readers.
 *
 * The docroot has NO top-level index.php: a missing path falls through try_files to /index.php, which does not
 * exist either, so it answers 404 from the gateway itself (and gets the configured error page).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { request, startGateway, type RunningGateway, type SimpleResponse } from './support/gateway.js';

// ---------------------------------------------------------------------------------------------------------
// The site
// ---------------------------------------------------------------------------------------------------------

/** Secrets that must never appear in an answer. */
const OUTSIDE_SECRET = 'OUTSIDE-DOCROOT-SECRET-5d1c';
const PARENT_SECRET = 'PARENT-DIR-SECRET-91ab';
const DOT_SECRET = 'DOTFILE-SECRET-77e0';
const PHP_SOURCE_SECRET = 'PHP-SOURCE-SECRET-c3f2';
const DENIED_SECRET = 'DENIED-SECRET-0b4e';

/** hello.txt: known size and mtime, so the ETag and Last-Modified are known in advance. */
const HELLO = 'hello, validators\n';
const HELLO_MTIME_S = 1_700_000_000;
const HELLO_ETAG = `"${HELLO_MTIME_S.toString(16)}-${Buffer.byteLength(HELLO).toString(16)}"`; // "6553f100-12"
const HELLO_LAST_MODIFIED = new Date(HELLO_MTIME_S * 1000).toUTCString(); // Tue, 14 Nov 2023 22:13:20 GMT
const DAY_MS = 86_400_000;

/** Range fixtures: one under the hot-file cache limit (64 KB in MAIN_YAML), one well over it. */
const SMALL = crypto.randomBytes(1000);
const SMALL_MTIME_S = 1_700_000_100;
const BIG = crypto.randomBytes(200 * 1024);
const BIG_MTIME_S = 1_700_000_200;

/** Precompressed siblings: real gzip and brotli bytes of app.css. */
const APP_CSS = Buffer.from(`/* app.css */\n${'body { margin: 0; padding: 0; color: #333; }\n'.repeat(60)}`);
const APP_CSS_GZ = zlib.gzipSync(APP_CSS);
const APP_CSS_BR = zlib.brotliCompressSync(APP_CSS);

/** Files over the hot-file limit replaced atomically (rename), as deploys do: by a longer and a shorter one. */
const SWAP_OLD = crypto.randomBytes(200 * 1024);
const SWAP_LONGER = crypto.randomBytes(300 * 1024);
const SWAP_SHORTER = crypto.randomBytes(100 * 1024);

const PNG_1x1 = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');

const HUGE_SIZE = 1024 ** 3; // sparse: no disk blocks
const FIFTY_MB = 50 * 1024 * 1024; // sparse too
const MB = 1024 * 1024;

const ERROR_404_HTML = '<!doctype html><title>Custom 404</title><p>CUSTOM-404-PAGE: nothing here</p>\n';
const ERROR_405_HTML = '<!doctype html><title>Custom 405</title><p>CUSTOM-405-PAGE</p>\n';

interface Site {
  /** Temp dir holding the docroot and a secret next to it. */
  readonly root: string;
  readonly docroot: string;
  /** Another temp dir, outside the docroot, with a secret file that symlinks in the docroot point to. */
  readonly outside: string;
}

function write(docroot: string, rel: string, data: string | Buffer): string {
  const file = path.join(docroot, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, data);
  return file;
}

function sparse(file: string, size: number): void {
  const fd = fs.openSync(file, 'w');
  try {
    fs.ftruncateSync(fd, size);
  } finally {
    fs.closeSync(fd);
  }
}

function buildSite(): Site {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-static-'));
  const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-static-outside-'));
  const docroot = path.join(root, 'www');
  fs.mkdirSync(docroot);
  // Targets of the traversal corpus: files one level above the docroot.
  fs.writeFileSync(path.join(root, 'x'), `${PARENT_SECRET}\n`);
  fs.writeFileSync(path.join(root, 'secret.txt'), `${PARENT_SECRET}\n`);
  fs.writeFileSync(path.join(outside, 'secret.txt'), `${OUTSIDE_SECRET}\n`);

  // MIME types
  write(docroot, 'style.css', 'body { color: red; }\n');
  write(docroot, 'app.js', 'console.log("app");\n');
  write(docroot, 'data.json', '{"ok":true}\n');
  write(docroot, 'icon.svg', '<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>\n');
  write(docroot, 'pixel.png', PNG_1x1);
  write(docroot, 'font.woff2', Buffer.from('wOF2\x00\x01\x00\x00fake-font', 'latin1'));
  write(docroot, 'blob.xyz123', 'unknown extension\n');
  write(docroot, 'README', 'no extension\n');

  // Validators
  const hello = write(docroot, 'hello.txt', HELLO);
  fs.utimesSync(hello, HELLO_MTIME_S, HELLO_MTIME_S);

  // Ranges
  fs.utimesSync(write(docroot, 'small.bin', SMALL), SMALL_MTIME_S, SMALL_MTIME_S);
  fs.utimesSync(write(docroot, 'big.bin', BIG), BIG_MTIME_S, BIG_MTIME_S);

  // Cache-Control
  write(docroot, 'assets/app.js', 'console.log("asset");\n');
  write(docroot, 'plain.css', 'p { margin: 0; }\n');

  // Precompressed siblings
  write(docroot, 'pre/app.css', APP_CSS);
  write(docroot, 'pre/app.css.gz', APP_CSS_GZ);
  write(docroot, 'pre/app.css.br', APP_CSS_BR);
  // A precompressed "sibling" that is a symlink out of the docroot.
  write(docroot, 'leak/page.css', 'p { color: blue; }\n');
  fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(docroot, 'leak/page.css.gz'));
  fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(docroot, 'leak/page.css.br'));

  // Freshness
  write(docroot, 'fresh-size.txt', 'first version\n');
  write(docroot, 'fresh-mtime.txt', 'AAAAAAAA\n');
  write(docroot, 'doomed.txt', 'about to be deleted\n');
  write(docroot, 'swap-longer.bin', SWAP_OLD);
  write(docroot, 'swap-shorter.bin', SWAP_OLD);
  write(docroot, 'empty.txt', '');

  // Dotfiles
  write(docroot, '.env', `APP_KEY=${DOT_SECRET}\n`);
  write(docroot, '.git/config', `[core]\n# ${DOT_SECRET}\n`);
  write(docroot, '.htaccess', `Deny from all # ${DOT_SECRET}\n`);
  write(docroot, 'sub/.hidden', `${DOT_SECRET}\n`);
  write(docroot, 'sub/visible.txt', 'visible\n');
  write(docroot, '.well-known/security.txt', 'Contact: mailto:security@example.test\n');

  // Symlinks
  write(docroot, 'real.txt', 'real file inside the docroot\n');
  fs.symlinkSync('real.txt', path.join(docroot, 'in-link.txt'));
  fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(docroot, 'out-link.txt'));
  fs.symlinkSync(outside, path.join(docroot, 'out-dir'), 'dir');

  // PHP source under other extensions
  for (const name of ['x.PHP', 'x.phtml', 'x.php5', 'x.phar', 'x.phps', 'x.Php7']) {
    write(docroot, name, `<?php echo 'ran'; /* ${PHP_SOURCE_SECRET} */ ?>\n`);
  }

  // Deny rules
  write(docroot, 'vendor/autoload.php', `<?php echo 'AUTOLOAD-RAN'; /* ${DENIED_SECRET} */\n`);
  write(docroot, 'vendor/lib/a.js', `// ${DENIED_SECRET}\n`);
  write(docroot, 'backup/dump.sql', `-- ${DENIED_SECRET}\n`);
  write(docroot, 'composer.json', `{"secret":"${DENIED_SECRET}"}\n`);
  write(docroot, 'lib/composer.json', `{"secret":"${DENIED_SECRET}"}\n`);
  write(docroot, 'lib/my-composer.json', '{"name":"mine"}\n');

  // Directories
  write(docroot, 'emptydir/file.txt', 'a file in a directory without an index\n');
  write(docroot, 'withindex/index.html', '<p>WITHINDEX-INDEX-HTML</p>\n');
  for (const dir of ['my dir', 'café', '日本', '100%']) write(docroot, `${dir}/index.html`, `<p>index of ${dir}</p>\n`);

  // Names that need percent-encoding in a URL
  for (const name of ['with space.txt', '100%.txt', 'café.txt', 'a+b.txt']) write(docroot, `names/${name}`, `${name}\n`);

  // Error pages
  write(docroot, 'errors/404.html', ERROR_404_HTML);
  write(docroot, 'errors/405.html', ERROR_405_HTML);
  write(
    docroot,
    'errors/oops.php',
    `<?php
header('Content-Type: application/json');
echo json_encode(['page' => 'oops', 'uri' => $_SERVER['REQUEST_URI'], 'method' => $_SERVER['REQUEST_METHOD']]);
`,
  );

  // Large files (sparse)
  sparse(path.join(docroot, 'huge.bin'), HUGE_SIZE);
  sparse(path.join(docroot, 'fifty.bin'), FIFTY_MB);

  return { root, docroot, outside };
}

// ---------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Calls `probe` every `intervalMs` until it returns true or `deadlineMs` passed since the call; returns the ms
 * it took, or null when the deadline passed.
 */
async function pollUntil(deadlineMs: number, probe: () => boolean | Promise<boolean>, intervalMs = 50): Promise<number | null> {
  const start = Date.now();
  for (;;) {
    if (await probe()) return Date.now() - start;
    if (Date.now() - start > deadlineMs) return null;
    await sleep(intervalMs);
  }
}

function assertNoSecret(res: SimpleResponse, secrets: readonly string[], what: string): void {
  for (const s of secrets) assert.ok(!res.text.includes(s), `${what}: the answer contains ${s}: ${res.text.slice(0, 200)}`);
}

function assertEmptyBody(res: SimpleResponse, what: string): void {
  assert.equal(res.body.length, 0, `${what}: expected no body, got ${res.body.length} bytes`);
}

const ALL_SECRETS = [OUTSIDE_SECRET, PARENT_SECRET, DOT_SECRET, PHP_SOURCE_SECRET, DENIED_SECRET];

/** Paths of the descriptors this process holds open on `file` (Linux /proc; [] elsewhere). */
function openDescriptorsOn(file: string): string[] {
  const dir = '/proc/self/fd';
  if (!fs.existsSync(dir)) return [];
  const real = fs.realpathSync(file);
  const out: string[] = [];
  for (const fd of fs.readdirSync(dir)) {
    try {
      if (fs.readlinkSync(path.join(dir, fd)) === real) out.push(fd);
    } catch {
      // closed between readdir and readlink
    }
  }
  return out;
}

const MAIN_YAML = `php:
  worker_count: 1
static:
  cache_control:
    - pattern: "/assets/*"
      value: "public, max-age=31536000, immutable"
  deny: ["/vendor/*", "*.sql", "composer.json"]
  # Small on purpose, so the 200 KB fixtures exercise the streamed path.
  hot_cache_file_kb: 64
`;

const DENIED_PATHS = ['/vendor/autoload.php', '/vendor/lib/a.js', '/backup/dump.sql', '/composer.json', '/lib/composer.json'];
const DOTFILE_PATHS = ['/.env', '/.git/config', '/.htaccess', '/sub/.hidden'];
const PHP_SOURCE_PATHS = ['/x.PHP', '/x.phtml', '/x.php5', '/x.phar', '/x.phps', '/x.Php7'];

// ---------------------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------------------

describe('static files', () => {
  let site: Site;
  let gw: RunningGateway;
  const get = (target: string, headers?: http.OutgoingHttpHeaders, method = 'GET'): Promise<SimpleResponse> =>
    request(gw.base, target, { method, ...(headers === undefined ? {} : { headers }) });

  before(async () => {
    site = buildSite();
    gw = await startGateway(MAIN_YAML, { docroot: site.docroot });
  });

  after(async () => {
    await gw?.stop();
    if (site !== undefined) {
      fs.rmSync(site.root, { recursive: true, force: true });
      fs.rmSync(site.outside, { recursive: true, force: true });
    }
  });

  describe('MIME types', () => {
    // nginx's (Debian's /etc/nginx/mime.types), without a charset: static.charset is off by default, as nginx's.
    const cases: Array<[string, string]> = [
      ['/style.css', 'text/css'],
      ['/app.js', 'application/javascript'],
      ['/data.json', 'application/json'],
      ['/icon.svg', 'image/svg+xml'],
      ['/pixel.png', 'image/png'],
      ['/font.woff2', 'font/woff2'],
      ['/blob.xyz123', 'application/octet-stream'],
      ['/README', 'application/octet-stream'],
    ];
    for (const [target, type] of cases) {
      test(`${target} is sent as ${type} with nosniff`, async () => {
        const res = await get(target);
        assert.equal(res.status, 200);
        assert.equal(res.headers['content-type'], type);
        assert.equal(res.headers['x-content-type-options'], 'nosniff');
      });
    }

    test('no type carries a charset by default (png, and the text types)', async () => {
      for (const target of ['/style.css', '/app.js', '/data.json', '/hello.txt', '/withindex/index.html']) {
        const ct = (await get(target)).headers['content-type'];
        assert.ok(ct !== undefined && !/charset/i.test(ct), `${target}: ${ct}`);
      }
      const res = await get('/pixel.png');
      assert.ok(!/charset/i.test(res.headers['content-type'] ?? ''), String(res.headers['content-type']));
      assert.deepEqual(res.body, PNG_1x1);
    });

    test('every kind of static answer (200, HEAD, 206, 304, 412, 416) carries X-Content-Type-Options: nosniff', async () => {
      const answers: Array<[number, Promise<SimpleResponse>]> = [
        [200, get('/hello.txt')],
        [200, get('/hello.txt', {}, 'HEAD')],
        [206, get('/hello.txt', { Range: 'bytes=0-1' })],
        [304, get('/hello.txt', { 'If-None-Match': HELLO_ETAG })],
        [412, get('/hello.txt', { 'If-Match': '"nope"' })],
        [416, get('/hello.txt', { Range: 'bytes=999-' })],
      ];
      for (const [status, pending] of answers) {
        const res = await pending;
        assert.equal(res.status, status);
        assert.equal(res.headers['x-content-type-options'], 'nosniff', `status ${status}`);
      }
    });
  });

  describe('validators and conditional requests', () => {
    test('ETag is "<hex mtime seconds>-<hex size>" (nginx) and Last-Modified is the mtime', async () => {
      const res = await get('/hello.txt');
      assert.equal(res.status, 200);
      assert.equal(res.text, HELLO);
      assert.equal(res.headers.etag, HELLO_ETAG);
      assert.equal(res.headers.etag, '"6553f100-12"');
      assert.equal(res.headers['last-modified'], HELLO_LAST_MODIFIED);
      assert.equal(res.headers['content-length'], String(Buffer.byteLength(HELLO)));
      assert.equal(res.headers['accept-ranges'], 'bytes');
    });

    for (const [label, value] of [
      ['the exact ETag', HELLO_ETAG],
      ['a list containing the ETag', `"aaaa-1", ${HELLO_ETAG}, "bbbb-2"`],
      ['*', '*'],
      ['the weak form W/ of the ETag (weak comparison)', `W/${HELLO_ETAG}`],
    ] as const) {
      test(`If-None-Match with ${label} → 304 with no body and the validators`, async () => {
        const res = await get('/hello.txt', { 'If-None-Match': value });
        assert.equal(res.status, 304);
        assertEmptyBody(res, 'INM 304');
        // RFC 9110 §15.4.5: a 304 carries the ETag a 200 would have had.
        assert.equal(res.headers.etag, HELLO_ETAG);
      });
    }

    test('If-None-Match with other ETags → 200 with the file', async () => {
      const res = await get('/hello.txt', { 'If-None-Match': '"aaaa-1", W/"bbbb-2"' });
      assert.equal(res.status, 200);
      assert.equal(res.text, HELLO);
    });

    test('If-None-Match on HEAD → 304', async () => {
      const res = await get('/hello.txt', { 'If-None-Match': HELLO_ETAG }, 'HEAD');
      assert.equal(res.status, 304);
    });

    test('If-Modified-Since equal to Last-Modified → 304 with no body', async () => {
      const res = await get('/hello.txt', { 'If-Modified-Since': HELLO_LAST_MODIFIED });
      assert.equal(res.status, 304);
      assertEmptyBody(res, 'IMS equal');
    });

    test('If-Modified-Since later than Last-Modified → 304', async () => {
      const res = await get('/hello.txt', { 'If-Modified-Since': new Date(HELLO_MTIME_S * 1000 + DAY_MS).toUTCString() });
      assert.equal(res.status, 304);
      assertEmptyBody(res, 'IMS later');
    });

    test('If-Modified-Since earlier than Last-Modified → 200 with the file', async () => {
      const res = await get('/hello.txt', { 'If-Modified-Since': new Date(HELLO_MTIME_S * 1000 - DAY_MS).toUTCString() });
      assert.equal(res.status, 200);
      assert.equal(res.text, HELLO);
    });

    test('If-Modified-Since that is not a date is ignored → 200', async () => {
      const res = await get('/hello.txt', { 'If-Modified-Since': 'yesterday-ish' });
      assert.equal(res.status, 200);
      assert.equal(res.text, HELLO);
    });

    test('If-None-Match takes precedence over If-Modified-Since (non-matching ETag + later date → 200)', async () => {
      const res = await get('/hello.txt', {
        'If-None-Match': '"other-1"',
        'If-Modified-Since': new Date(HELLO_MTIME_S * 1000 + DAY_MS).toUTCString(),
      });
      assert.equal(res.status, 200);
      assert.equal(res.text, HELLO);
    });

    test('If-None-Match takes precedence over If-Modified-Since (matching ETag + earlier date → 304)', async () => {
      const res = await get('/hello.txt', {
        'If-None-Match': HELLO_ETAG,
        'If-Modified-Since': new Date(HELLO_MTIME_S * 1000 - DAY_MS).toUTCString(),
      });
      assert.equal(res.status, 304);
    });

    test('If-Match with another ETag → 412 with no body', async () => {
      const res = await get('/hello.txt', { 'If-Match': '"aaaa-1"' });
      assert.equal(res.status, 412);
      assertEmptyBody(res, 'If-Match 412');
    });

    test('If-Match with the current ETag (or *) → 200', async () => {
      for (const value of [HELLO_ETAG, `"aaaa-1", ${HELLO_ETAG}`, '*']) {
        const res = await get('/hello.txt', { 'If-Match': value });
        assert.equal(res.status, 200, value);
        assert.equal(res.text, HELLO);
      }
    });

    test('If-Match uses strong comparison: W/ of the current ETag → 412', async () => {
      const res = await get('/hello.txt', { 'If-Match': `W/${HELLO_ETAG}` });
      assert.equal(res.status, 412);
    });

    test('If-Unmodified-Since earlier than the mtime → 412; equal or later → 200', async () => {
      const earlier = await get('/hello.txt', { 'If-Unmodified-Since': new Date(HELLO_MTIME_S * 1000 - DAY_MS).toUTCString() });
      assert.equal(earlier.status, 412);
      const equal = await get('/hello.txt', { 'If-Unmodified-Since': HELLO_LAST_MODIFIED });
      assert.equal(equal.status, 200);
      const later = await get('/hello.txt', { 'If-Unmodified-Since': new Date(HELLO_MTIME_S * 1000 + DAY_MS).toUTCString() });
      assert.equal(later.status, 200);
    });

    test('If-Match takes precedence over If-Unmodified-Since (matching ETag + earlier date → 200)', async () => {
      const res = await get('/hello.txt', { 'If-Match': HELLO_ETAG, 'If-Unmodified-Since': new Date(HELLO_MTIME_S * 1000 - DAY_MS).toUTCString() });
      assert.equal(res.status, 200);
    });

    test('an empty file → 200 with Content-Length: 0; a range from a position on it → 416 bytes */0', async () => {
      const res = await get('/empty.txt');
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-length'], '0');
      assertEmptyBody(res, 'empty file');
      const range = await get('/empty.txt', { Range: 'bytes=0-' });
      assert.equal(range.status, 416);
      assert.equal(range.headers['content-range'], 'bytes */0');
    });

    test('an empty file with a non-zero suffix range (satisfiable, RFC 9110 §14.1.1) → 200 whole, not 416', async () => {
      const res = await get('/empty.txt', { Range: 'bytes=-5' });
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-length'], '0');
      assert.equal(res.headers['content-range'], undefined);
      assertEmptyBody(res, 'empty file, suffix range');
    });

    test('HEAD → the headers with Content-Length and validators, no body', async () => {
      const res = await get('/hello.txt', {}, 'HEAD');
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-length'], String(Buffer.byteLength(HELLO)));
      assert.equal(res.headers['content-type'], 'text/plain');
      assert.equal(res.headers.etag, HELLO_ETAG);
      assert.equal(res.headers['last-modified'], HELLO_LAST_MODIFIED);
      assertEmptyBody(res, 'HEAD');
    });
  });

  describe('byte ranges', () => {
    const files = [
      { what: 'a small file (hot-file cache)', target: '/small.bin', data: SMALL, mtimeS: SMALL_MTIME_S },
      { what: 'a 200 KB file (over the 64 KB hot-file limit, streamed)', target: '/big.bin', data: BIG, mtimeS: BIG_MTIME_S },
    ];
    for (const { what, target, data, mtimeS } of files) {
      const size = data.length;
      const etag = `"${mtimeS.toString(16)}-${size.toString(16)}"`;
      const lastModified = new Date(mtimeS * 1000).toUTCString();

      describe(what, () => {
        test('the whole file without Range → 200, Accept-Ranges: bytes, exact bytes', async () => {
          const res = await get(target);
          assert.equal(res.status, 200);
          assert.equal(res.headers['accept-ranges'], 'bytes');
          assert.equal(res.headers.etag, etag);
          assert.ok(res.body.equals(data));
        });

        test('bytes=0-9 → 206 with Content-Range bytes 0-9/SIZE and the first 10 bytes', async () => {
          const res = await get(target, { Range: 'bytes=0-9' });
          assert.equal(res.status, 206);
          assert.equal(res.headers['content-range'], `bytes 0-9/${size}`);
          assert.equal(res.headers['content-length'], '10');
          assert.ok(res.body.equals(data.subarray(0, 10)));
        });

        test('open-ended bytes=100- → 206 from offset 100 to the end', async () => {
          const res = await get(target, { Range: 'bytes=100-' });
          assert.equal(res.status, 206);
          assert.equal(res.headers['content-range'], `bytes 100-${size - 1}/${size}`);
          assert.equal(res.headers['content-length'], String(size - 100));
          assert.ok(res.body.equals(data.subarray(100)));
        });

        test('suffix bytes=-10 → 206 with the last 10 bytes', async () => {
          const res = await get(target, { Range: 'bytes=-10' });
          assert.equal(res.status, 206);
          assert.equal(res.headers['content-range'], `bytes ${size - 10}-${size - 1}/${size}`);
          assert.ok(res.body.equals(data.subarray(size - 10)));
        });

        test('an end past the size is clamped to the last byte', async () => {
          const res = await get(target, { Range: `bytes=${size - 5}-${size + 10_000}` });
          assert.equal(res.status, 206);
          assert.equal(res.headers['content-range'], `bytes ${size - 5}-${size - 1}/${size}`);
          assert.ok(res.body.equals(data.subarray(size - 5)));
        });

        test('a range starting at SIZE → 416 with Content-Range bytes */SIZE', async () => {
          const res = await get(target, { Range: `bytes=${size}-` });
          assert.equal(res.status, 416);
          assert.equal(res.headers['content-range'], `bytes */${size}`);
          assertNoSecret(res, [data.subarray(0, 16).toString('latin1')], '416 body');
        });

        test('bytes=-0 (empty suffix) → 416', async () => {
          const res = await get(target, { Range: 'bytes=-0' });
          assert.equal(res.status, 416);
          assert.equal(res.headers['content-range'], `bytes */${size}`);
        });

        for (const bad of ['bytes=abc', 'items=0-1', 'bytes=5-2', 'bytes=', 'bytes=-']) {
          test(`invalid Range ${JSON.stringify(bad)} is ignored → 200 with the whole file`, async () => {
            const res = await get(target, { Range: bad });
            assert.equal(res.status, 200);
            assert.equal(res.headers['content-range'], undefined);
            assert.ok(res.body.equals(data));
          });
        }

        test('several ranges (bytes=0-1,4-5) → 200 with the whole file (documented choice, RFC 9110 §14.2 allows it)', async () => {
          const res = await get(target, { Range: 'bytes=0-1,4-5' });
          assert.equal(res.status, 200);
          assert.equal(res.headers['content-range'], undefined);
          assert.ok(res.body.equals(data));
        });

        test('If-Range with the current ETag → 206', async () => {
          const res = await get(target, { Range: 'bytes=0-9', 'If-Range': etag });
          assert.equal(res.status, 206);
          assert.ok(res.body.equals(data.subarray(0, 10)));
        });

        test('If-Range with an old ETag → 200 with the whole file', async () => {
          const res = await get(target, { Range: 'bytes=0-9', 'If-Range': `"${(mtimeS - 1).toString(16)}-${size.toString(16)}"` });
          assert.equal(res.status, 200);
          assert.ok(res.body.equals(data));
        });

        test('If-Range with the weak form of the ETag → 200 (If-Range needs a strong match)', async () => {
          const res = await get(target, { Range: 'bytes=0-9', 'If-Range': `W/${etag}` });
          assert.equal(res.status, 200);
          assert.ok(res.body.equals(data));
        });

        test('If-Range with the Last-Modified date → 206', async () => {
          const res = await get(target, { Range: 'bytes=0-9', 'If-Range': lastModified });
          assert.equal(res.status, 206);
          assert.ok(res.body.equals(data.subarray(0, 10)));
        });

        test('If-Range with another date → 200 with the whole file', async () => {
          const res = await get(target, { Range: 'bytes=0-9', 'If-Range': new Date(mtimeS * 1000 + DAY_MS).toUTCString() });
          assert.equal(res.status, 200);
          assert.ok(res.body.equals(data));
        });

        test('a Range with a matching If-None-Match → 304 (conditionals before ranges)', async () => {
          const res = await get(target, { Range: 'bytes=0-9', 'If-None-Match': etag });
          assert.equal(res.status, 304);
          assertEmptyBody(res, 'range + INM');
        });

        test('HEAD with a Range → 206 headers, no body', async () => {
          const res = await get(target, { Range: 'bytes=0-9' }, 'HEAD');
          assert.equal(res.status, 206);
          assert.equal(res.headers['content-length'], '10');
          assertEmptyBody(res, 'HEAD range');
        });
      });
    }
  });

  describe('file names', () => {
    for (const [name, target] of [
      ['with space.txt', '/names/with%20space.txt'],
      ['100%.txt', '/names/100%25.txt'],
      ['café.txt', '/names/caf%C3%A9.txt'],
      ['a+b.txt', '/names/a+b.txt'],
    ] as const) {
      test(`a percent-encoded request ${target} serves the file ${JSON.stringify(name)}`, async () => {
        const res = await get(target);
        assert.equal(res.status, 200);
        assert.equal(res.text, `${name}\n`);
      });
    }

    test('a file asked for with a trailing slash (/hello.txt/) → 404', async () => {
      assert.equal((await get('/hello.txt/')).status, 404);
    });

    test('a query string does not change the file: /hello.txt?v=1 serves it', async () => {
      const res = await get('/hello.txt?v=1');
      assert.equal(res.status, 200);
      assert.equal(res.text, HELLO);
    });
  });

  describe('Cache-Control per pattern', () => {
    test('a path under /assets/ gets the configured Cache-Control', async () => {
      const res = await get('/assets/app.js');
      assert.equal(res.status, 200);
      assert.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable');
    });

    test('a query string (cache busting) does not change the match: /assets/app.js?v=123 gets it too', async () => {
      const res = await get('/assets/app.js?v=123');
      assert.equal(res.status, 200);
      assert.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable');
    });

    test('a 304 under /assets/ keeps the Cache-Control (RFC 9110 §15.4.5)', async () => {
      const first = await get('/assets/app.js');
      const res = await get('/assets/app.js', { 'If-None-Match': String(first.headers.etag) });
      assert.equal(res.status, 304);
      assert.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable');
    });

    test('the gateway does not log static.cache_control or static.deny as "not applied" (they are)', () => {
      const wrong = gw.logs().filter((l) => /static\.(cache_control|deny)\b.*not applied/.test(String(l.msg ?? '')));
      assert.deepEqual(
        wrong.map((l) => l.msg),
        [],
      );
    });

    test('paths outside the pattern get no Cache-Control (nginx default: none)', async () => {
      for (const target of ['/plain.css', '/app.js', '/hello.txt']) {
        const res = await get(target);
        assert.equal(res.status, 200, target);
        assert.equal(res.headers['cache-control'], undefined, target);
      }
    });
  });

  describe('precompressed siblings', () => {
    function assertVariant(res: SimpleResponse, encoding: 'br' | 'gzip' | null): void {
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-type'], 'text/css', "the original file's type, not the sibling's");
      assert.equal(res.headers.vary, 'Accept-Encoding');
      const expected = encoding === 'br' ? APP_CSS_BR : encoding === 'gzip' ? APP_CSS_GZ : APP_CSS;
      assert.equal(res.headers['content-encoding'], encoding ?? undefined);
      assert.equal(res.headers['content-length'], String(expected.length));
      assert.ok(res.body.equals(expected), `body should be the ${encoding ?? 'plain'} bytes`);
    }

    test('Accept-Encoding: br, gzip → the .br sibling, Content-Encoding: br, Vary, text/css', async () => {
      const res = await get('/pre/app.css', { 'Accept-Encoding': 'br, gzip' });
      assertVariant(res, 'br');
      assert.ok(zlib.brotliDecompressSync(res.body).equals(APP_CSS));
    });

    test('Accept-Encoding: gzip → the .gz sibling', async () => {
      const res = await get('/pre/app.css', { 'Accept-Encoding': 'gzip' });
      assertVariant(res, 'gzip');
      assert.ok(zlib.gunzipSync(res.body).equals(APP_CSS));
    });

    test('q-values: br;q=0.1, gzip;q=0.9 → gzip', async () => {
      assertVariant(await get('/pre/app.css', { 'Accept-Encoding': 'br;q=0.1, gzip;q=0.9' }), 'gzip');
    });

    test('q-values: br;q=0, gzip → gzip (q=0 means not acceptable)', async () => {
      assertVariant(await get('/pre/app.css', { 'Accept-Encoding': 'br;q=0, gzip' }), 'gzip');
    });

    test('q-values: *;q=0.5 → br (the preferred sibling on a tie)', async () => {
      assertVariant(await get('/pre/app.css', { 'Accept-Encoding': '*;q=0.5' }), 'br');
    });

    test('q-values: gzip;q=0, br;q=0 → the plain file', async () => {
      assertVariant(await get('/pre/app.css', { 'Accept-Encoding': 'gzip;q=0, br;q=0' }), null);
    });

    test('Accept-Encoding: identity → the plain file, still Vary: Accept-Encoding', async () => {
      assertVariant(await get('/pre/app.css', { 'Accept-Encoding': 'identity' }), null);
    });

    test('no Accept-Encoding → the plain file, still Vary: Accept-Encoding', async () => {
      assertVariant(await get('/pre/app.css'), null);
    });

    test('a file without siblings has no Vary and no Content-Encoding', async () => {
      const res = await get('/plain.css', { 'Accept-Encoding': 'br, gzip' });
      assert.equal(res.status, 200);
      assert.equal(res.headers.vary, undefined);
      assert.equal(res.headers['content-encoding'], undefined);
      assert.equal(res.text, 'p { margin: 0; }\n');
    });

    test('a precompressed sibling that is a symlink OUT of the docroot is never sent (follow_symlinks: false)', async () => {
      // /leak/page.css is a real file inside the docroot; page.css.gz and page.css.br point to a secret outside.
      for (const ae of ['gzip', 'br', 'br, gzip']) {
        const res = await get('/leak/page.css', { 'Accept-Encoding': ae });
        assertNoSecret(res, [OUTSIDE_SECRET], `/leak/page.css with Accept-Encoding: ${ae}`);
        assert.equal(res.headers['content-encoding'], undefined, `Accept-Encoding: ${ae}`);
        assert.equal(res.status, 200);
        assert.equal(res.text, 'p { color: blue; }\n');
      }
    });

    describe('with static.precompressed: false', () => {
      let off: RunningGateway;
      before(async () => {
        off = await startGateway('php:\n  worker_count: 1\nstatic:\n  precompressed: false\n', { docroot: site.docroot });
      });
      after(async () => {
        await off?.stop();
      });

      for (const ae of ['gzip', 'br, gzip', '*']) {
        test(`Accept-Encoding: ${ae} → never a sibling, the plain file`, async () => {
          const res = await request(off.base, '/pre/app.css', { headers: { 'Accept-Encoding': ae } });
          assert.equal(res.status, 200);
          assert.equal(res.headers['content-encoding'], undefined);
          assert.ok(res.body.equals(APP_CSS));
        });
      }
    });
  });

  describe('hot-file cache freshness (open_file_cache_valid ≤ 1 s)', () => {
    // As nginx's open_file_cache_valid: within 1 s of a change the OLD file may still be served (a complete,
    // consistent old answer, never a mix); after ~1 s the new one must be. We poll for up to 2 s.
    test('a small file rewritten with different content and size is served fresh within ~1 s', async (t) => {
      const file = path.join(site.docroot, 'fresh-size.txt');
      const before1 = await get('/fresh-size.txt');
      const before2 = await get('/fresh-size.txt'); // now certainly in the hot-file cache
      assert.equal(before1.text, 'first version\n');
      assert.equal(before2.text, 'first version\n');
      const next = 'second version, which is longer\n';
      fs.writeFileSync(file, next);
      const immediate = await get('/fresh-size.txt');
      assert.equal(immediate.status, 200);
      assert.ok([before1.text, next].includes(immediate.text), `never a mix of versions: ${JSON.stringify(immediate.text)}`);
      assert.equal(immediate.headers['content-length'], String(immediate.body.length));
      const took = await pollUntil(2000, async () => (await get('/fresh-size.txt')).text === next);
      assert.notEqual(took, null, 'the rewritten file was still served old after 2 s');
      t.diagnostic(`new content after ${took} ms`);
      const fresh = await get('/fresh-size.txt');
      assert.equal(fresh.headers['content-length'], String(Buffer.byteLength(next)));
      assert.notEqual(fresh.headers.etag, before1.headers.etag);
    });

    test('a small file rewritten with the same size but a new mtime is served fresh within ~1 s', async (t) => {
      const file = path.join(site.docroot, 'fresh-mtime.txt');
      fs.utimesSync(file, 1_600_000_000, 1_600_000_000);
      // Until the stat cache sees the mtime just set (at once unless the file was stat'ed in the last second).
      const seen = await pollUntil(2000, async () => (await get('/fresh-mtime.txt')).headers.etag === `"${(1_600_000_000).toString(16)}-9"`);
      assert.notEqual(seen, null, 'the mtime just set was not seen within 2 s');
      const old = await get('/fresh-mtime.txt');
      assert.equal(old.text, 'AAAAAAAA\n');
      await get('/fresh-mtime.txt');
      fs.writeFileSync(file, 'BBBBBBBB\n');
      fs.utimesSync(file, 1_600_000_100, 1_600_000_100);
      const took = await pollUntil(2000, async () => (await get('/fresh-mtime.txt')).text === 'BBBBBBBB\n');
      assert.notEqual(took, null, 'the rewritten file was still served old after 2 s');
      t.diagnostic(`new content after ${took} ms`);
      const fresh = await get('/fresh-mtime.txt');
      assert.equal(fresh.headers.etag, `"${(1_600_000_100).toString(16)}-9"`);
    });

    // A file over the hot-file limit is streamed: whatever the stat cache still says for a second, the answer
    // must be one version, whole (nginx without open_file_cache opens and fstats each time; with it, it keeps
    // the old descriptor and so the old file): never new bytes under the old ETag and Content-Length.
    for (const [what, file, next] of [
      ['a longer one', 'swap-longer.bin', SWAP_LONGER],
      ['a shorter one', 'swap-shorter.bin', SWAP_SHORTER],
    ] as const) {
      test(`a 200 KB file atomically replaced (rename) by ${what} is served as one whole version, even within 1 s`, async () => {
        const target = `/${file}`;
        const old = await get(target);
        assert.ok(old.body.equals(SWAP_OLD));
        const tmp = path.join(site.docroot, `${file}.tmp`);
        fs.writeFileSync(tmp, next);
        fs.renameSync(tmp, path.join(site.docroot, file));
        let res: SimpleResponse;
        try {
          res = await request(gw.base, target, { timeoutMs: 3000 });
        } catch (err) {
          assert.fail(`GET ${target} right after the replacement did not complete: ${(err as Error).message}`);
        }
        const which = res.body.equals(SWAP_OLD) ? 'old' : res.body.equals(next) ? 'new' : 'a mix';
        assert.notEqual(
          which,
          'a mix',
          `got ${res.body.length} bytes under Content-Length ${res.headers['content-length']} and ETag ${res.headers.etag} ` +
            `(old: ${SWAP_OLD.length} bytes ETag ${old.headers.etag}; new: ${next.length} bytes): ` +
            `first bytes are the ${res.body.subarray(0, 64).equals(next.subarray(0, 64)) ? 'new' : 'old'} file's`,
        );
        assert.equal(res.headers['content-length'], String(res.body.length));
        const took = await pollUntil(2000, async () => (await request(gw.base, target, { timeoutMs: 3000 })).body.equals(next));
        assert.notEqual(took, null, 'the replaced file was still not served after 2 s');
      });
    }

    test('a deleted file answers 404 within ~1.1 s', async (t) => {
      const file = path.join(site.docroot, 'doomed.txt');
      assert.equal((await get('/doomed.txt')).status, 200);
      assert.equal((await get('/doomed.txt')).status, 200);
      fs.unlinkSync(file);
      // 1 s validity + one poll interval; 200 ms of slack for a busy machine.
      const took = await pollUntil(1300, async () => (await get('/doomed.txt')).status === 404);
      assert.notEqual(took, null, 'the deleted file was still served after 1.3 s');
      t.diagnostic(`404 after ${took} ms`);
    });

    test('a file created after a 404 is served within ~1 s', async (t) => {
      assert.equal((await get('/newborn.txt')).status, 404);
      write(site.docroot, 'newborn.txt', 'born\n');
      const took = await pollUntil(2000, async () => (await get('/newborn.txt')).text === 'born\n');
      assert.notEqual(took, null, 'the new file was still 404 after 2 s');
      t.diagnostic(`served after ${took} ms`);
    });
  });

  describe('refusals', () => {
    for (const target of DOTFILE_PATHS) {
      test(`dotfile ${target} → 404 without its contents`, async () => {
        const res = await get(target);
        assert.equal(res.status, 404);
        assertNoSecret(res, [DOT_SECRET], target);
      });
    }

    for (const target of ['/%2eenv', '/%2Eenv', '//.env', '/./.env', '/sub/%2ehidden', '/.well-known/../.env', '/.well-known/../.git/config']) {
      test(`encoded or dotted spelling of a dotfile ${target} → 404 without its contents`, async () => {
        const res = await get(target);
        assert.equal(res.status, 404);
        assertNoSecret(res, [DOT_SECRET], target);
      });
    }

    test('/.git/ and /.git (a dot-directory) → 404', async () => {
      for (const target of ['/.git/', '/.git']) assert.equal((await get(target)).status, 404, target);
    });

    test('/.well-known/security.txt is served (the one public dot-directory)', async () => {
      const res = await get('/.well-known/security.txt');
      assert.equal(res.status, 200);
      assert.equal(res.text, 'Contact: mailto:security@example.test\n');
    });

    const traversal = [
      '/../x',
      '/..',
      '/%2e%2e/x',
      '/%2E%2E/x',
      '/a/%2e%2e/%2e%2e/x',
      '/%2e%2e%2fx',
      '/..%2fx',
      '/..%5cx',
      '/%2e%2e%5cx',
      '/..\\x',
      '/a\\..\\..\\x',
      '/sub/..\\..\\secret.txt',
      '/x%00',
      '/real.txt%00.png',
      '/%00/../x',
      '/./../secret.txt',
      '/sub/../../secret.txt',
      '/%252e%252e/x',
      '/..%c0%afx',
    ];
    for (const target of traversal) {
      test(`traversal ${target} → 400 or 404, never a file outside the docroot`, async () => {
        const res = await get(target);
        assert.ok([400, 404].includes(res.status), `${target}: got ${res.status}`);
        assertNoSecret(res, ALL_SECRETS, target);
      });
    }

    test('a symlink inside the docroot pointing inside it is served', async () => {
      const res = await get('/in-link.txt');
      assert.equal(res.status, 200);
      assert.equal(res.text, 'real file inside the docroot\n');
    });

    test('a symlink inside the docroot pointing OUTSIDE it → 404 without the secret', async () => {
      const res = await get('/out-link.txt');
      assert.equal(res.status, 404);
      assertNoSecret(res, [OUTSIDE_SECRET], '/out-link.txt');
    });

    test('a file under a directory symlink pointing outside the docroot → 404 without the secret', async () => {
      const res = await get('/out-dir/secret.txt');
      assert.equal(res.status, 404);
      assertNoSecret(res, [OUTSIDE_SECRET], '/out-dir/secret.txt');
    });

    for (const target of PHP_SOURCE_PATHS) {
      test(`PHP source ${target} is never sent as a file → 404 without the source`, async () => {
        const res = await get(target);
        assert.equal(res.status, 404);
        assertNoSecret(res, [PHP_SOURCE_SECRET, '<?php'], target);
      });
    }

    for (const target of DENIED_PATHS) {
      test(`static.deny refuses ${target} → 404 (deny_status default) without running or sending it`, async () => {
        const res = await get(target);
        assert.equal(res.status, 404);
        assertNoSecret(res, [DENIED_SECRET, 'AUTOLOAD-RAN'], target);
      });
    }

    for (const target of [
      '//vendor/lib/a.js',
      '/vendor%2Flib%2Fa.js',
      '/./vendor/lib/a.js',
      '/lib/../vendor/lib/a.js',
      '/backup/%64ump.sql',
      '/lib//composer.json',
    ]) {
      test(`a respelled denied path ${target} → 404 without its contents`, async () => {
        const res = await get(target);
        assert.equal(res.status, 404);
        assertNoSecret(res, [DENIED_SECRET], target);
      });
    }

    test('a basename deny glob matches the whole last segment only: /lib/my-composer.json is served', async () => {
      const res = await get('/lib/my-composer.json');
      assert.equal(res.status, 200);
      assert.equal(res.text, '{"name":"mine"}\n');
    });

    describe('with static.follow_symlinks: true', () => {
      let follow: RunningGateway;
      before(async () => {
        follow = await startGateway('php:\n  worker_count: 1\nstatic:\n  follow_symlinks: true\n', { docroot: site.docroot });
      });
      after(async () => {
        await follow?.stop();
      });

      test('a symlink pointing outside the docroot is served', async () => {
        const res = await request(follow.base, '/out-link.txt');
        assert.equal(res.status, 200);
        assert.equal(res.text, `${OUTSIDE_SECRET}\n`);
      });

      test('a file under a directory symlink pointing outside is served', async () => {
        const res = await request(follow.base, '/out-dir/secret.txt');
        assert.equal(res.status, 200);
        assert.equal(res.text, `${OUTSIDE_SECRET}\n`);
      });

      test('follow_symlinks does not open traversal: /../x is still refused', async () => {
        const res = await request(follow.base, '/../x');
        assert.ok([400, 404].includes(res.status));
        assertNoSecret(res, [PARENT_SECRET], '/../x');
      });
    });

    describe('with static.deny_status: 403', () => {
      let g403: RunningGateway;
      before(async () => {
        g403 = await startGateway('php:\n  worker_count: 1\nstatic:\n  deny: ["/vendor/*", "*.sql", "composer.json"]\n  deny_status: 403\n', {
          docroot: site.docroot,
        });
      });
      after(async () => {
        await g403?.stop();
      });

      for (const target of [...DENIED_PATHS, ...DOTFILE_PATHS]) {
        test(`${target} → 403 without its contents`, async () => {
          const res = await request(g403.base, target);
          assert.equal(res.status, 403);
          assertNoSecret(res, ALL_SECRETS, target);
        });
      }

      test('PHP source (/x.phtml) → 403 as well', async () => {
        const res = await request(g403.base, '/x.phtml');
        assert.equal(res.status, 403);
        assertNoSecret(res, [PHP_SOURCE_SECRET], '/x.phtml');
      });

      test('a path that merely does not exist is still 404', async () => {
        assert.equal((await request(g403.base, '/no-such-file.txt')).status, 404);
      });

      test('/lib/my-composer.json is still served', async () => {
        assert.equal((await request(g403.base, '/lib/my-composer.json')).status, 200);
      });
    });
  });

  describe('directories', () => {
    test('a directory without an index → 403 (no listing)', async () => {
      const res = await get('/emptydir/');
      assert.equal(res.status, 403);
      assert.ok(!res.text.includes('file.txt'), 'no directory listing');
    });

    test('a directory with index.html → the index is served', async () => {
      const res = await get('/withindex/');
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-type'], 'text/html');
      assert.equal(res.text, '<p>WITHINDEX-INDEX-HTML</p>\n');
    });

    // RFC 9110 §10.2.2: Location is a URI-reference, so the decoded path must be escaped again (nginx escapes it
    // with NGX_ESCAPE_URI since 1.21.1). A raw non-Latin-1 name cannot even be put in a node header.
    for (const [dir, sent, location] of [
      ['my dir', '/my%20dir', '/my%20dir/'],
      ['café', '/caf%C3%A9', '/caf%C3%A9/'],
      ['100%', '/100%25', '/100%25/'],
      ['日本', '/%E6%97%A5%E6%9C%AC', '/%E6%97%A5%E6%9C%AC/'],
    ] as const) {
      test(`the redirect of directory ${JSON.stringify(dir)} (${sent}) → 301 with an escaped Location ${location}`, async () => {
        // The gateway runs in this process: an exception thrown while answering surfaces here.
        const thrown: Error[] = [];
        const onUncaught = (err: Error): void => {
          thrown.push(err);
        };
        process.on('uncaughtException', onUncaught);
        let res: SimpleResponse;
        try {
          res = await request(gw.base, sent, { timeoutMs: 3000 });
        } catch (err) {
          assert.fail(
            `GET ${sent} got no answer (${(err as Error).message}); the gateway threw: ${thrown.map((e) => e.message).join('; ') || 'nothing'}`,
          );
        } finally {
          process.off('uncaughtException', onUncaught);
        }
        assert.equal(res.status, 301);
        assert.equal(res.headers.location, location);
        const followed = await get(location);
        assert.equal(followed.status, 200);
        assert.equal(followed.text, `<p>index of ${dir}</p>\n`);
      });
    }

    test('/dir without the trailing slash → 301 to /dir/ (query kept)', async () => {
      const res = await get('/withindex');
      assert.equal(res.status, 301);
      assert.equal(res.headers.location, '/withindex/');
      const q = await get('/emptydir?a=1');
      assert.equal(q.status, 301);
      assert.equal(q.headers.location, '/emptydir/?a=1');
    });
  });

  describe('methods', () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      test(`${method} on a static file → 405 with Allow: GET, HEAD and not the file`, async () => {
        const res = await request(gw.base, '/hello.txt', { method, body: 'x=1' });
        assert.equal(res.status, 405);
        assert.equal(res.headers.allow, 'GET, HEAD');
        assert.ok(!res.text.includes(HELLO.trim()));
      });
    }
  });

  describe('error pages', () => {
    test('without error_pages: the built-in short page for 404 and 403', async () => {
      const notFound = await get('/no-such-file.txt');
      assert.equal(notFound.status, 404);
      assert.equal(notFound.headers['content-type'], 'text/html');
      assert.match(notFound.text, /<title>404 Not Found<\/title>/);
      const forbidden = await get('/emptydir/');
      assert.equal(forbidden.status, 403);
      assert.match(forbidden.text, /<title>403 Forbidden<\/title>/);
    });

    describe('with error_pages (404: static HTML, 403: a PHP script, 405: static HTML)', () => {
      let ep: RunningGateway;
      before(async () => {
        ep = await startGateway(
          'php:\n  worker_count: 1\nstatic:\n  error_pages:\n    404: /errors/404.html\n    403: /errors/oops.php\n    405: /errors/405.html\n',
          { docroot: site.docroot },
        );
      });
      after(async () => {
        await ep?.stop();
      });

      test("a missing file → 404 with the HTML page's content", async () => {
        const res = await request(ep.base, '/no-such-file.txt');
        assert.equal(res.status, 404);
        assert.equal(res.text, ERROR_404_HTML);
        assert.equal(res.headers['content-type'], 'text/html');
      });

      test("a missing .php script → 404 with the HTML page's content", async () => {
        const res = await request(ep.base, '/no-such-script.php');
        assert.equal(res.status, 404);
        assert.equal(res.text, ERROR_404_HTML);
      });

      test('a refused dotfile → 404 with the page, not the secret', async () => {
        const res = await request(ep.base, '/.env');
        assert.equal(res.status, 404);
        assert.equal(res.text, ERROR_404_HTML);
        assertNoSecret(res, [DOT_SECRET], '/.env');
      });

      test('a 403 (directory without index) runs the PHP page: status stays 403, REQUEST_URI is the original', async () => {
        const res = await request(ep.base, '/emptydir/?q=1');
        assert.equal(res.status, 403);
        const seen = JSON.parse(res.text) as { page: string; uri: string; method: string };
        assert.deepEqual(seen, { page: 'oops', uri: '/emptydir/?q=1', method: 'GET' });
      });

      test('a POST answered 403 runs the PHP page as GET with the original REQUEST_URI', async () => {
        const res = await request(ep.base, '/emptydir/?from=post', {
          method: 'POST',
          body: 'a=1&b=2',
          headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        });
        assert.equal(res.status, 403);
        const seen = JSON.parse(res.text) as { page: string; uri: string; method: string };
        assert.deepEqual(seen, { page: 'oops', uri: '/emptydir/?from=post', method: 'GET' });
      });

      test('a 405 on a static file → the 405 page, still with Allow: GET, HEAD', async () => {
        const res = await request(ep.base, '/hello.txt', { method: 'POST', body: 'x=1' });
        assert.equal(res.status, 405);
        assert.equal(res.headers.allow, 'GET, HEAD');
        assert.equal(res.text, ERROR_405_HTML);
      });

      test('a static file is still served normally', async () => {
        const res = await request(ep.base, '/hello.txt');
        assert.equal(res.status, 200);
        assert.equal(res.text, HELLO);
      });
    });
  });

  describe('large files', () => {
    test('a 1 GB file to a reader that stops for 2 s keeps memory flat (backpressure), and the file is closed after', async (t) => {
      const huge = path.join(site.docroot, 'huge.bin');
      const m0 = process.memoryUsage();
      const result = await new Promise<{ got: number; m1: NodeJS.MemoryUsage; m2: NodeJS.MemoryUsage; length: string | undefined }>(
        (resolve, reject) => {
          const req = http.get({ host: '127.0.0.1', port: gw.port, path: '/huge.bin', agent: false });
          const guard = setTimeout(() => req.destroy(new Error('1 GB slow-reader test timed out')), 20_000);
          req.on('error', (err) => {
            clearTimeout(guard);
            reject(err);
          });
          req.on('response', (res) => {
            let got = 0;
            let paused = false;
            res.on('error', () => {
              // destroyed by us below
            });
            res.on('data', (c: Buffer) => {
              got += c.length;
              if (paused || got < MB) return;
              paused = true;
              res.pause(); // stops reading the socket: the kernel buffers fill, then the gateway must wait
              const m1 = process.memoryUsage();
              setTimeout(() => {
                const m2 = process.memoryUsage();
                clearTimeout(guard);
                const length = res.headers['content-length'];
                req.destroy();
                resolve({ got, m1, m2, length });
              }, 2000);
            });
          });
        },
      );
      assert.equal(result.length, String(HUGE_SIZE));
      const rss = result.m2.rss - result.m1.rss;
      const ab = result.m2.arrayBuffers - result.m1.arrayBuffers;
      t.diagnostic(
        `read ${result.got} bytes before pausing; growth during the pause: rss ${(rss / MB).toFixed(1)} MB, arrayBuffers ${(ab / MB).toFixed(1)} MB`,
      );
      assert.ok(rss < 64 * MB, `rss grew by ${(rss / MB).toFixed(1)} MB while the reader was paused`);
      assert.ok(ab < 64 * MB, `arrayBuffers grew by ${(ab / MB).toFixed(1)} MB while the reader was paused`);
      // And from before the request: the first MB did not pull the file in either.
      assert.ok(result.m2.rss - m0.rss < 64 * MB, `rss grew by ${((result.m2.rss - m0.rss) / MB).toFixed(1)} MB over the whole request`);
      assert.ok(result.m2.arrayBuffers - m0.arrayBuffers < 64 * MB, 'arrayBuffers over the whole request');
      // The aborted response must not keep the file open.
      const closed = await pollUntil(2000, () => openDescriptorsOn(huge).length === 0);
      assert.notEqual(closed, null, `huge.bin still open after the client went away: fds ${openDescriptorsOn(huge).join(',')}`);
    });

    test('HEAD of the 1 GB file → Content-Length 1073741824, no body', async () => {
      const res = await get('/huge.bin', {}, 'HEAD');
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-length'], String(HUGE_SIZE));
      assertEmptyBody(res, 'HEAD huge');
    });

    test('a range at the end of the 1 GB file → 206 with the right Content-Range and bytes', async () => {
      const res = await get('/huge.bin', { Range: `bytes=${HUGE_SIZE - 24}-` });
      assert.equal(res.status, 206);
      assert.equal(res.headers['content-range'], `bytes ${HUGE_SIZE - 24}-${HUGE_SIZE - 1}/${HUGE_SIZE}`);
      assert.ok(res.body.equals(Buffer.alloc(24)));
    });

    test('a full read of a 50 MB file returns exactly 50 MB (Content-Length and bytes counted)', async () => {
      const { length, count, nonZero } = await new Promise<{ length: string | undefined; count: number; nonZero: boolean }>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port: gw.port, path: '/fifty.bin', agent: false });
        const guard = setTimeout(() => req.destroy(new Error('50 MB read timed out')), 30_000);
        req.on('error', (err) => {
          clearTimeout(guard);
          reject(err);
        });
        req.on('response', (res) => {
          let count = 0;
          let nonZero = false;
          res.on('data', (c: Buffer) => {
            count += c.length;
            if (!nonZero && c.some((b) => b !== 0)) nonZero = true;
          });
          res.on('error', reject);
          res.on('end', () => {
            clearTimeout(guard);
            resolve({ length: res.headers['content-length'], count, nonZero });
          });
        });
      });
      assert.equal(length, String(FIFTY_MB));
      assert.equal(count, FIFTY_MB);
      assert.equal(nonZero, false, 'a sparse file reads as zeros');
    });
  });
});

describe("a hot file's head, made once and sent again", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-hothead-'));
  fs.mkdirSync(path.join(dir, 'admin'));
  fs.writeFileSync(path.join(dir, 'admin', 'index.html'), '<p>admin</p>\n'.repeat(20));
  let g: RunningGateway;
  before(async () => {
    g = await startGateway(
      'php:\n  worker_count: 1\n  index: [index.html]\nstatic:\n  cache_control: [{ pattern: "/admin/index.html", value: "no-store" }]\nheaders:\n  routes: [{ pattern: "/admin/index.html", frame_options: DENY }]\n',
      { docroot: dir },
    );
  });
  after(async () => {
    await g.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('plain GETs get the same head every time; validators, HEAD and another path to the same file get their own', async () => {
    const without = (r: SimpleResponse): Record<string, unknown> => ({ ...r.headers, date: undefined });
    const first = await request(g.base, '/admin/');
    assert.equal(first.status, 200);
    const second = await request(g.base, '/admin/');
    assert.deepEqual(without(second), without(first));
    assert.equal(second.headers['x-frame-options'], 'SAMEORIGIN', 'security headers on the reused head');
    assert.equal(second.headers['cache-control'], undefined);
    assert.equal(second.text, first.text);
    const notModified = await request(g.base, '/admin/', { headers: { 'If-None-Match': String(first.headers['etag']) } });
    assert.equal(notModified.status, 304);
    const head = await request(g.base, '/admin/', { method: 'HEAD' });
    assert.equal(head.headers['content-length'], first.headers['content-length']);
    assert.equal(head.body.length, 0);
    // The same file under its own name: that path's Cache-Control and security headers, then the first path's again.
    const named = await request(g.base, '/admin/index.html');
    assert.equal(named.headers['cache-control'], 'no-store');
    assert.equal(named.headers['x-frame-options'], 'DENY');
    const again = await request(g.base, '/admin/');
    assert.equal(again.headers['cache-control'], undefined);
    assert.equal(again.headers['x-frame-options'], 'SAMEORIGIN');
  });
});
