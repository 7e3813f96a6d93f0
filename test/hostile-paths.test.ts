/**
 * Security regressions, through the real gateway and real php-cgi: every test is named for the attack it
 * stops. Targets are sent raw (node's client does not normalise paths); what the client refuses to send goes
 * over a plain socket.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ensureFixtureSite } from './fixtures/site.js';
import { dump, request, startGateway, type RunningGateway, type SimpleResponse } from './support/gateway.js';

/** Strings that must never appear in an answer: contents of files outside PHP's reach. */
const SECRETS = ['do-not-serve', 'SECRET=', 'Deny from all', 'repositoryformatversion', 'root:x:0:0', 'EXECUTED'];

function assertNoSecrets(text: string, what: string): void {
  for (const s of SECRETS) assert.ok(!text.includes(s), `${what}: the answer contains ${JSON.stringify(s)}`);
}

/** Sum of requests the pool's workers have served: moves only when PHP ran. */
function phpRequestsServed(gw: RunningGateway): number {
  let n = 0;
  for (const pool of gw.gateway.pools.values()) for (const w of pool.stats().workers) n += w.requests;
  return n;
}

/** One request written byte for byte on a plain socket; reads until the server closes (Connection: close). */
function rawGet(port: number, target: string, timeoutMs = 10_000): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => socket.destroy(new Error(`raw GET ${target} timed out`)), timeoutMs);
    const done = (err?: Error): void => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      if (m === null) reject(err ?? new Error(`no HTTP answer to ${target}: ${JSON.stringify(text.slice(0, 200))}`));
      else resolve({ status: Number(m[1]), text });
    };
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err) => done(err));
    socket.on('close', () => done());
    socket.on('connect', () => socket.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`, 'latin1'));
  });
}

describe('hostile paths', () => {
  let gw: RunningGateway;
  let docroot: string;

  before(async () => {
    docroot = ensureFixtureSite();
    gw = await startGateway('php:\n  worker_count: 2\n', { docroot });
  });

  after(async () => {
    await gw?.stop();
  });

  /** GET a raw target; asserts the status is one of `statuses` and no secret leaked. */
  async function expectRefused(target: string, statuses: readonly number[]): Promise<SimpleResponse> {
    const res = await request(gw.base, target);
    assert.ok(statuses.includes(res.status), `${target}: expected ${statuses.join(' or ')}, got ${res.status}`);
    assertNoSecrets(res.text, target);
    return res;
  }

  describe('secret dotfiles', () => {
    test('fixture sanity: the secrets the next tests look for are really on disk', () => {
      assert.match(readFileSync(path.join(docroot, '.env'), 'utf8'), /do-not-serve/);
      assert.match(readFileSync(path.join(docroot, '.git', 'config'), 'utf8'), /do-not-serve/);
      assert.match(readFileSync(path.join(docroot, '.htaccess'), 'utf8'), /do-not-serve/);
    });

    for (const target of ['/.env', '/.git/config', '/.htaccess', '/.git/', '/.git']) {
      test(`${target} (leaking an app secret or repository) → 404`, async () => {
        await expectRefused(target, [404]);
      });
    }

    test('an encoded dotfile /%2eenv is decoded first and still → 404', async () => {
      await expectRefused('/%2eenv', [404]);
      await expectRefused('/%2Egit%2Fconfig', [404]);
    });

    test('dot segments that land on a dotfile /sub/../.env → 404', async () => {
      await expectRefused('/sub/../.env', [404]);
      await expectRefused('/sub/%2e%2e/.git/config', [404]);
    });

    test('HEAD /.env → 404 without a body', async () => {
      const res = await request(gw.base, '/.env', { method: 'HEAD' });
      assert.equal(res.status, 404);
      assert.equal(res.body.length, 0);
    });

    test('/.well-known/ is not blocked by the dotfile rule (no such dir: the front controller answers)', async () => {
      for (const target of ['/.well-known/', '/.well-known/acme-challenge/token123', '/.well-known']) {
        const d = dump(await request(gw.base, target));
        assert.equal(d.server['SCRIPT_NAME'], '/index.php', target);
        assert.equal(d.server['REQUEST_URI'], target);
      }
    });

    test('a dotfile below /.well-known/ (/.well-known/.htaccess) is still denied → 404', async () => {
      await expectRefused('/.well-known/.htaccess', [404]);
      await expectRefused('/.well-known/acme-challenge/.env', [404]);
    });

    test('a look-alike /.well-knownx/ gets no exemption → 404', async () => {
      await expectRefused('/.well-knownx/', [404]);
    });
  });

  describe('path traversal above the docroot', () => {
    for (const target of [
      '/../etc/passwd',
      '/%2e%2e/%2e%2e/etc/passwd',
      '/a/%2e%2e/%2e%2e/x',
      '/%2e%2e%2fetc%2fpasswd',
      '/..',
      '/dump.php/../../etc/passwd',
      '/%2E%2E/etc/passwd',
      '/sub/..%2f..%2f..%2fetc/passwd',
    ]) {
      test(`${target} (climbing above the root) → 400, never file contents`, async () => {
        await expectRefused(target, [400]);
      });
    }

    test('backslash traversal /..\\..\\etc\\passwd → 404 or 400, never file contents', async () => {
      const target = '/..\\..\\etc\\passwd';
      let status: number;
      let text: string;
      try {
        const res = await request(gw.base, target);
        status = res.status;
        text = res.text;
      } catch {
        ({ status, text } = await rawGet(gw.port, target));
      }
      assert.ok(status === 404 || status === 400, `got ${status}`);
      assertNoSecrets(text, target);
    });

    test('encoded backslash traversal /..%5c..%5cetc%5cpasswd → 404 or 400', async () => {
      await expectRefused('/..%5c..%5cetc%5cpasswd', [400, 404]);
      await expectRefused('/%5c..%5c.env', [400, 404]);
    });
  });

  describe('malformed targets', () => {
    test('NUL byte truncation /dump.php%00.jpg → 400', async () => {
      await expectRefused('/dump.php%00.jpg', [400]);
      await expectRefused('/dump.php/%00', [400]);
    });

    test('malformed percent-escapes /%zz and /a%2 → 400 (as nginx)', async () => {
      await expectRefused('/%zz', [400]);
      await expectRefused('/a%2', [400]);
      await expectRefused('/dump%.php', [400]);
    });

    test("a malformed escape in the query is PHP's business, not the router's", async () => {
      const d = dump(await request(gw.base, '/dump.php?x=%zz'));
      assert.equal(d.server['QUERY_STRING'], 'x=%zz');
    });
  });

  describe('upload-then-execute', () => {
    test('fixture sanity: uploads/x.jpg really holds PHP code', () => {
      assert.match(readFileSync(path.join(docroot, 'uploads', 'x.jpg'), 'utf8'), /<\?php echo "EXECUTED"/);
    });

    test('/uploads/x.jpg is served as a static file: the literal <?php, never EXECUTED', async () => {
      const res = await request(gw.base, '/uploads/x.jpg');
      assert.equal(res.status, 200);
      assert.ok(res.text.includes('<?php'), 'the file is sent as it is');
      assert.ok(!res.text.replace('<?php echo "EXECUTED"; ?>', '').includes('EXECUTED'), 'the code did not run');
      assert.equal(res.text, readFileSync(path.join(docroot, 'uploads', 'x.jpg'), 'utf8'));
      assert.match(String(res.headers['content-type']), /^image\/jpeg/);
    });

    for (const target of [
      '/uploads/x.jpg/y.php',
      '/uploads/x.jpg/.php',
      '/uploads/x.jpg/index.php',
      '/uploads/x.jpg/y.php/extra',
      '/uploads/x.jpg%2fy.php',
    ]) {
      test(`cgi.fix_pathinfo trick ${target} → 404, PHP never runs`, async () => {
        const before = phpRequestsServed(gw);
        await expectRefused(target, [404]);
        assert.equal(phpRequestsServed(gw), before, 'PHP ran');
      });
    }

    test('NUL-byte extension trick /uploads/x.jpg%00.php → 400', async () => {
      const before = phpRequestsServed(gw);
      await expectRefused('/uploads/x.jpg%00.php', [400]);
      assert.equal(phpRequestsServed(gw), before, 'PHP ran');
    });

    test('/uploads/x.jpg/ (trailing slash) never runs x.jpg: the front controller answers', async () => {
      const d = dump(await request(gw.base, '/uploads/x.jpg/'));
      assert.equal(d.server['SCRIPT_NAME'], '/index.php');
    });
  });

  describe('PHP source disclosure', () => {
    test('/_dump.inc.php runs rather than being shown (no <?php in the body)', async () => {
      const before = phpRequestsServed(gw);
      const res = await request(gw.base, '/_dump.inc.php');
      assert.equal(res.status, 200);
      assert.ok(!res.text.includes('<?php'), 'PHP source was sent');
      assert.ok(!res.text.includes('fixture_dump'), 'PHP source was sent');
      assert.equal(phpRequestsServed(gw), before + 1, 'PHP ran the script');
    });

    test('/dump.php is never sent as text, whatever the encoding of its name', async () => {
      for (const target of ['/dump.php', '/dump%2Ephp', '/%64ump.php', '/sub/../dump.php']) {
        const res = await request(gw.base, target);
        assert.equal(res.status, 200, target);
        assert.ok(!res.text.includes('<?php'), `${target}: PHP source was sent`);
        assert.equal(dump(res).server['SCRIPT_NAME'], '/dump.php', target);
      }
    });
  });

  describe('directories and methods', () => {
    test('a directory without an index (/uploads/) → 403, no listing', async () => {
      const res = await expectRefused('/uploads/', [403]);
      assert.ok(!res.text.includes('photo.txt'), 'a listing was sent');
      assert.ok(!res.text.includes('x.jpg'), 'a listing was sent');
    });

    test('POST to a static file → 405', async () => {
      const res = await request(gw.base, '/static.txt', { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: 'x' });
      assert.equal(res.status, 405);
      assert.match(String(res.headers['allow']), /GET/);
    });

    test('POST to the uploaded x.jpg → 405, never PHP', async () => {
      const before = phpRequestsServed(gw);
      const res = await request(gw.base, '/uploads/x.jpg', { method: 'POST', body: 'x' });
      assert.equal(res.status, 405);
      assertNoSecrets(res.text, 'POST /uploads/x.jpg');
      assert.equal(phpRequestsServed(gw), before, 'PHP ran');
    });
  });
});
