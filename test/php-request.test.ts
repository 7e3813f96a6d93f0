/**
 * What PHP receives, through the real gateway and real php-cgi: the CGI environment (nginx's fastcgi_params
 * semantics, ARCHITECTURE.md "The CGI environment PHP must see"), query strings, PATH_INFO, the front
 * controller, request bodies of every shape, headers and cookies.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { iniDefine } from '../php/master.js';
import { ensureFixtureSite } from './fixtures/site.js';
import { dump, request, startGateway, type RunningGateway, type SimpleResponse } from './support/gateway.js';

const LEAK_KEY = 'PHPGATE_LEAK_CHECK';
const LEAK_VALUE = `leak-${process.pid}-${Date.now()}`;

/** nginx's default fastcgi_params (minus HTTPS, absent over plain HTTP) plus SCRIPT_FILENAME and PATH_INFO. */
const NGINX_KEYS = [
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
] as const;
/** What PHP itself adds to $_SERVER in FastCGI mode. */
const PHP_OWN_KEYS = ['PHP_SELF', 'REQUEST_TIME', 'REQUEST_TIME_FLOAT', 'FCGI_ROLE', 'argv', 'argc'];
/** The two variables the gateway gives the php-cgi master to make it pre-fork (php/master.ts): never the site's. */
const MASTER_KEYS = ['PHP_FCGI_CHILDREN', 'PHP_FCGI_MAX_REQUESTS'];

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const inputOf = (d: { input: string }): Buffer => Buffer.from(d.input, 'base64');

/** Sum of requests the pool's workers have served: moves only when PHP ran. */
function phpRequestsServed(gw: RunningGateway): number {
  let n = 0;
  for (const pool of gw.gateway.pools.values()) for (const w of pool.stats().workers) n += w.requests;
  return n;
}

interface RawResponse {
  status: number;
  head: string;
  raw: Buffer;
}

/**
 * Writes bytes on a plain socket (for what node's client would not send) and reads until the server closes.
 * A reset after the answer arrived is fine: the server may close while we still send.
 */
function rawExchange(port: number, parts: Array<string | Buffer>, timeoutMs = 10_000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => socket.destroy(new Error('raw exchange timed out')), timeoutMs);
    const finish = (err?: Error): void => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks);
      const text = raw.toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      if (m === null) {
        reject(err ?? new Error(`no HTTP answer: ${JSON.stringify(text.slice(0, 200))}`));
        return;
      }
      const end = text.indexOf('\r\n\r\n');
      resolve({ status: Number(m[1]), head: end === -1 ? text : text.slice(0, end), raw });
    };
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err) => finish(err));
    socket.on('close', () => finish());
    socket.on('connect', () => {
      for (const p of parts) socket.write(p);
    });
  });
}

/**
 * Raw header arrays make node's client skip its automatic Host header (it only adds one to a headers object),
 * and an HTTP/1.1 request without Host is a 400 before the gateway sees it.
 */
function withHost(gw: RunningGateway, headers: Array<[string, string]>): Array<[string, string]> {
  return [['Host', `127.0.0.1:${gw.port}`], ...headers];
}

/** Builds a multipart/form-data body. */
function multipart(boundary: string, parts: Array<{ name: string; value: Buffer | string; filename?: string; type?: string }>): Buffer {
  const out: Buffer[] = [];
  for (const p of parts) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"`;
    if (p.filename !== undefined) head += `; filename="${p.filename}"`;
    head += '\r\n';
    if (p.type !== undefined) head += `Content-Type: ${p.type}\r\n`;
    out.push(Buffer.from(head + '\r\n'), Buffer.isBuffer(p.value) ? p.value : Buffer.from(p.value), Buffer.from('\r\n'));
  }
  out.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(out);
}

describe('PHP request environment through the gateway', () => {
  let gw: RunningGateway;
  let docroot: string;

  before(async () => {
    docroot = ensureFixtureSite();
    // Set before the gateway (and its php-cgi masters) start: a leak would carry it into $_SERVER.
    process.env[LEAK_KEY] = LEAK_VALUE;
    gw = await startGateway('php:\n  worker_count: 2\n  env:\n    APP_ENV: testing\n', { docroot });
  });

  after(async () => {
    await gw?.stop();
    delete process.env[LEAK_KEY];
  });

  describe('query strings', () => {
    test('$_GET is parsed and QUERY_STRING / REQUEST_URI stay raw (still encoded)', async () => {
      const target = '/dump.php?q=a%20b&e=%C3%A9&amp=%26&plus=1+2';
      const d = dump(await request(gw.base, target));
      assert.equal(d.server['QUERY_STRING'], 'q=a%20b&e=%C3%A9&amp=%26&plus=1+2');
      assert.equal(d.server['REQUEST_URI'], target);
      assert.deepEqual(d.get, { q: 'a b', e: 'é', amp: '&', plus: '1 2' });
    });

    test('repeated array keys a[]=1&a[]=2 arrive as a PHP list', async () => {
      const d = dump(await request(gw.base, '/dump.php?a[]=1&a[]=2&b%5B%5D=x&b%5B%5D=y'));
      assert.deepEqual(d.get, { a: ['1', '2'], b: ['x', 'y'] });
      assert.equal(d.server['QUERY_STRING'], 'a[]=1&a[]=2&b%5B%5D=x&b%5B%5D=y');
    });

    test('an encoded script path runs the decoded script; REQUEST_URI keeps the encoding', async () => {
      const d = dump(await request(gw.base, '/du%6Dp.php?x=%2F'));
      assert.equal(d.server['SCRIPT_NAME'], '/dump.php');
      assert.equal(d.server['REQUEST_URI'], '/du%6Dp.php?x=%2F');
      assert.equal(d.server['QUERY_STRING'], 'x=%2F');
      assert.deepEqual(d.get, { x: '/' });
    });

    test('no query: QUERY_STRING is empty and REQUEST_URI is the path alone', async () => {
      const d = dump(await request(gw.base, '/dump.php'));
      assert.equal(d.server['QUERY_STRING'], '');
      assert.equal(d.server['REQUEST_URI'], '/dump.php');
      assert.deepEqual(d.get, []);
    });
  });

  describe('PATH_INFO', () => {
    test('/info.php/extra/path splits into SCRIPT_NAME and PATH_INFO', async () => {
      const d = dump(await request(gw.base, '/info.php/extra/path?k=v'));
      assert.equal(d.server['SCRIPT_NAME'], '/info.php');
      assert.equal(d.server['PATH_INFO'], '/extra/path');
      assert.equal(d.server['DOCUMENT_URI'], '/info.php');
      assert.equal(d.server['SCRIPT_FILENAME'], path.join(docroot, 'info.php'));
      assert.equal(d.server['REQUEST_URI'], '/info.php/extra/path?k=v');
      assert.equal(d.server['QUERY_STRING'], 'k=v');
    });

    test('an encoded slash /info.php%2Fx is decoded before the split (PATH_INFO /x)', async () => {
      const d = dump(await request(gw.base, '/info.php%2Fx'));
      assert.equal(d.server['SCRIPT_NAME'], '/info.php');
      assert.equal(d.server['PATH_INFO'], '/x');
      assert.equal(d.server['REQUEST_URI'], '/info.php%2Fx');
    });

    test('PATH_INFO is decoded (%20 → space) while REQUEST_URI is not', async () => {
      const d = dump(await request(gw.base, '/info.php/a%20b/c'));
      assert.equal(d.server['PATH_INFO'], '/a b/c');
      assert.equal(d.server['REQUEST_URI'], '/info.php/a%20b/c');
    });

    test('percent-encoded UTF-8 in PATH_INFO arrives decoded as UTF-8', async () => {
      const d = dump(await request(gw.base, '/info.php/caf%C3%A9/%E6%97%A5%E6%9C%AC'));
      assert.equal(d.server['PATH_INFO'], '/café/日本');
      assert.equal(d.server['REQUEST_URI'], '/info.php/caf%C3%A9/%E6%97%A5%E6%9C%AC');
    });

    test('PATH_INFO is present and empty when the URL has none', async () => {
      const d = dump(await request(gw.base, '/info.php'));
      assert.equal(d.server['PATH_INFO'], '');
    });
  });

  describe('front controller and directory index', () => {
    test('/pretty/url?x=1 falls back to /index.php with the original REQUEST_URI and query', async () => {
      const d = dump(await request(gw.base, '/pretty/url?x=1'));
      assert.equal(d.server['SCRIPT_NAME'], '/index.php');
      assert.equal(d.server['SCRIPT_FILENAME'], path.join(docroot, 'index.php'));
      assert.equal(d.server['DOCUMENT_URI'], '/index.php');
      assert.equal(d.server['REQUEST_URI'], '/pretty/url?x=1');
      assert.equal(d.server['QUERY_STRING'], 'x=1');
      assert.equal(d.server['PATH_INFO'], '');
      assert.deepEqual(d.get, { x: '1' });
    });

    test('an encoded pretty URL keeps its encoding in REQUEST_URI', async () => {
      const d = dump(await request(gw.base, '/blog/caf%C3%A9%20au%20lait'));
      assert.equal(d.server['SCRIPT_NAME'], '/index.php');
      assert.equal(d.server['REQUEST_URI'], '/blog/caf%C3%A9%20au%20lait');
    });

    test('/ runs index.php', async () => {
      const d = dump(await request(gw.base, '/'));
      assert.equal(d.server['SCRIPT_NAME'], '/index.php');
      assert.equal(d.server['REQUEST_URI'], '/');
    });

    test('/sub/ runs the directory index /sub/index.php with REQUEST_URI /sub/', async () => {
      const d = dump(await request(gw.base, '/sub/?s=1'));
      assert.equal(d.server['SCRIPT_NAME'], '/sub/index.php');
      assert.equal(d.server['SCRIPT_FILENAME'], path.join(docroot, 'sub', 'index.php'));
      assert.equal(d.server['REQUEST_URI'], '/sub/?s=1');
      assert.equal(d.server['QUERY_STRING'], 's=1');
    });

    test('/admin (a directory without its slash) is redirected 301 to /admin/', async () => {
      const res = await request(gw.base, '/admin');
      assert.equal(res.status, 301);
      // Relative, unlike nginx's absolute one: right behind a load balancer, and no client Host echoed back.
      assert.equal(res.headers.location, '/admin/');
    });

    test('/admin?x=1 redirects to /admin/?x=1, keeping the query', async () => {
      const res = await request(gw.base, '/admin?x=1');
      assert.equal(res.status, 301);
      assert.ok((res.headers.location ?? '').endsWith('/admin/?x=1'), `Location: ${res.headers.location}`);
    });

    test('/admin/ runs the admin directory index', async () => {
      const res = await request(gw.base, '/admin/');
      assert.equal(res.status, 200);
      assert.equal(res.text, 'admin index');
    });
  });

  describe('the nginx fastcgi_params set', () => {
    test('every nginx key is present with nginx values on a plain-HTTP GET', async () => {
      const d = dump(await request(gw.base, '/dump.php?z=9'));
      const s = d.server;
      for (const k of NGINX_KEYS) assert.ok(k in s, `missing ${k}`);
      assert.equal(s['QUERY_STRING'], 'z=9');
      assert.equal(s['REQUEST_METHOD'], 'GET');
      assert.equal(s['CONTENT_TYPE'], '');
      assert.equal(s['CONTENT_LENGTH'], '');
      assert.equal(s['SCRIPT_NAME'], '/dump.php');
      assert.equal(s['REQUEST_URI'], '/dump.php?z=9');
      assert.equal(s['DOCUMENT_URI'], '/dump.php');
      assert.equal(s['DOCUMENT_ROOT'], docroot);
      assert.equal(s['SERVER_PROTOCOL'], 'HTTP/1.1');
      assert.equal(s['REQUEST_SCHEME'], 'http');
      assert.ok(!('HTTPS' in s), 'no HTTPS key over plain HTTP');
      assert.equal(s['GATEWAY_INTERFACE'], 'CGI/1.1');
      // True about phpgate, and WordPress's own test for a rewriting server (vars.php: $is_nginx =
      // str_contains($_SERVER['SERVER_SOFTWARE'], 'nginx'), which got_url_rewrite() reads) holds: pretty permalinks.
      assert.match(s['SERVER_SOFTWARE'] ?? '', /^phpgate\/\d+\.\d+\.\d+ \(nginx-compatible\)$/);
      assert.ok((s['SERVER_SOFTWARE'] ?? '').includes('nginx'));
      assert.equal(s['REMOTE_USER'], '', 'Debian fastcgi_params: REMOTE_USER is always there, empty without credentials');
      assert.equal(s['REMOTE_ADDR'], '127.0.0.1');
      assert.match(s['REMOTE_PORT'] ?? '', /^\d+$/);
      assert.notEqual(s['REMOTE_PORT'], '0');
      assert.equal(s['SERVER_ADDR'], '127.0.0.1');
      assert.equal(s['SERVER_PORT'], String(gw.port));
      assert.equal(typeof s['SERVER_NAME'], 'string');
      assert.equal(s['REDIRECT_STATUS'], '200');
      assert.equal(s['SCRIPT_FILENAME'], path.join(docroot, 'dump.php'));
      assert.equal(s['PATH_INFO'], '');
      assert.equal(s['HTTP_HOST'], `127.0.0.1:${gw.port}`);
    });

    test("nothing but nginx keys, HTTP_* headers, PHP's own keys and php.env reach $_SERVER", async () => {
      const d = dump(await request(gw.base, '/dump.php'));
      const allowed = new Set<string>([...NGINX_KEYS, ...PHP_OWN_KEYS, 'APP_ENV']);
      const extra = Object.keys(d.server).filter((k) => !allowed.has(k) && !k.startsWith('HTTP_'));
      assert.deepEqual(extra, []);
    });

    test('CONTENT_LENGTH is "0" for an explicit empty body', async () => {
      const d = dump(await request(gw.base, '/dump.php', { method: 'POST', body: '' }));
      assert.equal(d.server['CONTENT_LENGTH'], '0');
      assert.equal(d.input_len, 0);
    });
  });

  describe('clean environment', () => {
    test('the gateway process environment never appears in $_SERVER', async () => {
      const d = dump(await request(gw.base, '/dump.php'));
      assert.ok(!(LEAK_KEY in d.server), `${LEAK_KEY} leaked into $_SERVER`);
      assert.ok(!JSON.stringify(d.server).includes(LEAK_VALUE), 'the leak marker value is in $_SERVER');
      const expected = new Set<string>([...NGINX_KEYS, ...PHP_OWN_KEYS, 'APP_ENV']);
      const leaked = Object.keys(process.env).filter((k) => !expected.has(k) && !k.startsWith('HTTP_') && k in d.server);
      assert.deepEqual(leaked, [], 'gateway environment variables leaked into $_SERVER');
    });

    test("the php-cgi master's own variables reach neither $_SERVER, $_ENV nor getenv() (php-fpm's clear_env)", async () => {
      // Several requests: every child, whatever it served before, and the second request of a child too.
      for (let i = 0; i < 6; i++) {
        const d = dump(await request(gw.base, '/dump.php'));
        for (const k of MASTER_KEYS) {
          assert.ok(!(k in d.server), `${k} in $_SERVER`);
          assert.ok(Array.isArray(d.env) || !(k in d.env), `${k} in getenv()`);
        }
      }
      const env = await request(gw.base, '/env.php');
      assert.equal(env.status, 200);
      assert.deepEqual(JSON.parse(env.text), { children: false, max: false, env: [], app: 'testing' });
    });

    test('php.env values from the config do appear', async () => {
      const d = dump(await request(gw.base, '/dump.php'));
      assert.equal(d.server['APP_ENV'], 'testing');
    });
  });

  describe('request bodies', () => {
    test('urlencoded POST fills $_POST', async () => {
      const body = 'name=J%C3%BCrgen&list[]=a&list[]=b&empty=';
      const d = dump(
        await request(gw.base, '/dump.php', {
          method: 'POST',
          headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
          body,
        }),
      );
      assert.deepEqual(d.post, { name: 'Jürgen', list: ['a', 'b'], empty: '' });
      assert.equal(d.server['CONTENT_TYPE'], 'application/x-www-form-urlencoded');
      assert.equal(d.server['CONTENT_LENGTH'], String(Buffer.byteLength(body)));
      assert.equal(d.server['REQUEST_METHOD'], 'POST');
    });

    test('JSON POST arrives byte for byte on php://input', async () => {
      const body = Buffer.from(JSON.stringify({ a: 1, s: 'ünï\u0000code', nested: { x: [1, 2, 3] } }));
      const d = dump(await request(gw.base, '/dump.php', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body }));
      assert.deepEqual(inputOf(d), body);
      assert.equal(d.input_len, body.length);
      assert.equal(d.server['CONTENT_TYPE'], 'application/json');
      assert.equal(d.server['CONTENT_LENGTH'], String(body.length));
      assert.deepEqual(d.post, []);
    });

    test('multipart with several binary files and fields fills $_FILES and $_POST', async () => {
      const boundary = '----phpgate' + randomBytes(8).toString('hex');
      const a = randomBytes(100_000);
      const b = randomBytes(1);
      const c = Buffer.concat([Buffer.from('\r\n--' + boundary.slice(0, 5)), randomBytes(70_000), Buffer.from([0, 0, 13, 10])]);
      const body = multipart(boundary, [
        { name: 'title', value: 'Grüße' },
        { name: 'doc', value: a, filename: 'a.bin', type: 'application/octet-stream' },
        { name: 'tags[]', value: 'x' },
        { name: 'many[]', value: b, filename: 'b.bin', type: 'application/octet-stream' },
        { name: 'many[]', value: c, filename: 'c.jpg', type: 'image/jpeg' },
        { name: 'tags[]', value: 'y' },
      ]);
      const d = dump(
        await request(gw.base, '/dump.php', {
          method: 'POST',
          headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` },
          body,
        }),
      );
      assert.deepEqual(d.post, { title: 'Grüße', tags: ['x', 'y'] });
      assert.equal(d.server['CONTENT_LENGTH'], String(body.length));
      const files = d.files;
      assert.deepEqual(files['doc'], { name: 'a.bin', type: 'application/octet-stream', size: a.length, error: 0, sha256: sha256(a) });
      assert.deepEqual(files['many'], [
        { name: 'b.bin', type: 'application/octet-stream', size: 1, error: 0, sha256: sha256(b) },
        { name: 'c.jpg', type: 'image/jpeg', size: c.length, error: 0, sha256: sha256(c) },
      ]);
    });

    test('a chunked body (no Content-Length) reaches PHP whole, CONTENT_LENGTH = its total', async () => {
      const parts = [Buffer.from('first,'), randomBytes(10_000), Buffer.from(',middle,'), randomBytes(300_000), Buffer.from(',last')];
      const whole = Buffer.concat(parts);
      const d = dump(
        await request(gw.base, '/dump.php', {
          method: 'POST',
          headers: { 'Content-Type': 'application/octet-stream' },
          body: parts,
          chunked: true,
        }),
      );
      assert.equal(d.server['CONTENT_LENGTH'], String(whole.length));
      assert.equal(d.input_len, whole.length);
      assert.equal(sha256(inputOf(d)), sha256(whole));
      assert.equal(d.server['HTTP_TRANSFER_ENCODING'], 'chunked');
    });

    test('a 5 MB body (spooled to disk) reaches php://input intact', async () => {
      const body = randomBytes(5 * 1024 * 1024);
      const d = dump(
        await request(gw.base, '/dump.php', {
          method: 'POST',
          headers: { 'Content-Type': 'application/octet-stream' },
          body,
          timeoutMs: 60_000,
        }),
      );
      assert.equal(d.input_len, body.length);
      assert.equal(d.server['CONTENT_LENGTH'], String(body.length));
      assert.equal(sha256(inputOf(d)), sha256(body));
    });
  });

  describe('request body spooling failure', () => {
    test('a body that cannot be spooled to disk (tmp dir missing) → 500 at once, not a hung client', async () => {
      // Bodies over 256 KiB are spooled to os.tmpdir(), which reads TMPDIR on every call.
      const saved = process.env['TMPDIR'];
      process.env['TMPDIR'] = path.join(docroot, 'no-such-dir-for-spooling');
      let res: RawResponse;
      try {
        // A raw socket: the gateway may answer (and close) before the whole body is written.
        res = await rawExchange(gw.port, [
          `POST /dump.php HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: 600000\r\n\r\n`,
          randomBytes(600_000),
        ]);
      } finally {
        if (saved === undefined) delete process.env['TMPDIR'];
        else process.env['TMPDIR'] = saved;
      }
      assert.equal(res.status, 500);
      // The gateway is fine afterwards.
      const d = dump(await request(gw.base, '/dump.php', { method: 'POST', body: randomBytes(300_000) }));
      assert.equal(d.input_len, 300_000);
    });
  });

  describe('headers and cookies', () => {
    test('Cookie: a=1; b=2 fills $_COOKIE', async () => {
      const d = dump(await request(gw.base, '/dump.php', { headers: { Cookie: 'a=1; b=2' } }));
      assert.deepEqual(d.cookie, { a: '1', b: '2' });
      assert.equal(d.server['HTTP_COOKIE'], 'a=1; b=2');
    });

    test('a custom header X-Custom-Thing becomes HTTP_X_CUSTOM_THING', async () => {
      const d = dump(await request(gw.base, '/dump.php', { headers: { 'X-Custom-Thing': 'v' } }));
      assert.equal(d.server['HTTP_X_CUSTOM_THING'], 'v');
    });

    test('a header name with an underscore (X_Under) is not passed (it could spoof X-Under)', async () => {
      const d = dump(
        await request(gw.base, '/dump.php', {
          headers: withHost(gw, [
            ['X_Under', '1'],
            ['X_Forwarded_For', '6.6.6.6'],
          ]),
        }),
      );
      assert.ok(!('HTTP_X_UNDER' in d.server));
      assert.ok(!('HTTP_X_FORWARDED_FOR' in d.server));
    });

    test('httpoxy: a Proxy header never becomes HTTP_PROXY', async () => {
      const d = dump(
        await request(gw.base, '/dump.php', {
          headers: withHost(gw, [
            ['Proxy', 'http://evil'],
            ['proxy', 'http://evil2'],
          ]),
        }),
      );
      assert.ok(!('HTTP_PROXY' in d.server), 'HTTP_PROXY must never be set');
      assert.ok(!JSON.stringify(d.server).includes('evil'));
    });

    test('repeated custom headers are joined with ", "', async () => {
      const d = dump(
        await request(gw.base, '/dump.php', {
          headers: withHost(gw, [
            ['X-Rep', '1'],
            ['X-Rep', '2'],
            ['x-rep', '3'],
          ]),
        }),
      );
      assert.equal(d.server['HTTP_X_REP'], '1, 2, 3');
    });

    test('a non-ASCII (UTF-8) header value reaches PHP byte for byte, not re-encoded', async () => {
      // node hands header values over as latin1 strings; nginx passes the bytes through untouched.
      const res = await rawExchange(gw.port, [
        Buffer.concat([
          Buffer.from(`GET /dump.php HTTP/1.0\r\nHost: 127.0.0.1:${gw.port}\r\nX-Name: `),
          Buffer.from('café ü', 'utf8'),
          Buffer.from('\r\nCookie: who=', 'latin1'),
          Buffer.from('zoë', 'utf8'),
          Buffer.from('\r\n\r\n'),
        ]),
      ]);
      assert.equal(res.status, 200);
      const d = JSON.parse(res.raw.subarray(res.raw.indexOf('\r\n\r\n') + 4).toString('utf8')) as {
        server: Record<string, string>;
        cookie: Record<string, string>;
      };
      assert.equal(d.server['HTTP_X_NAME'], 'café ü');
      assert.equal(d.cookie['who'], 'zoë');
    });

    test('two Cookie headers are joined with "; "', async () => {
      const d = dump(
        await request(gw.base, '/dump.php', {
          headers: withHost(gw, [
            ['Cookie', 'a=1'],
            ['Cookie', 'b=2'],
          ]),
        }),
      );
      assert.equal(d.server['HTTP_COOKIE'], 'a=1; b=2');
      assert.deepEqual(d.cookie, { a: '1', b: '2' });
    });
  });

  describe('request line forms and methods', () => {
    test('absolute-form target: REQUEST_URI is origin-form and HTTP_HOST is the target authority', async () => {
      const d = dump(await request(gw.base, 'http://example.com/dump.php?q=1'));
      assert.equal(d.server['REQUEST_URI'], '/dump.php?q=1');
      assert.equal(d.server['HTTP_HOST'], 'example.com');
      assert.equal(d.server['SCRIPT_NAME'], '/dump.php');
      assert.equal(d.server['QUERY_STRING'], 'q=1');
    });

    test('HEAD reaches PHP and answers 200 without a body', async () => {
      const res = await request(gw.base, '/dump.php', { method: 'HEAD' });
      assert.equal(res.status, 200);
      assert.equal(res.body.length, 0);
      assert.match(String(res.headers['content-type']), /application\/json/);
    });

    for (const method of ['PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      test(`${method} reaches PHP with REQUEST_METHOD ${method}`, async () => {
        const withBody = method === 'PUT' || method === 'PATCH';
        const body = withBody ? Buffer.from(`{"m":"${method}"}`) : undefined;
        const d = dump(
          await request(gw.base, '/dump.php?m=1', {
            method,
            ...(withBody ? { headers: { 'Content-Type': 'application/json' }, body } : {}),
          }),
        );
        assert.equal(d.server['REQUEST_METHOD'], method);
        if (body !== undefined) {
          assert.deepEqual(inputOf(d), body);
          assert.equal(d.server['CONTENT_LENGTH'], String(body.length));
        }
      });
    }

    test('a PUT to a pretty URL reaches the front controller', async () => {
      const d = dump(await request(gw.base, '/api/items/7', { method: 'PUT', headers: { 'Content-Type': 'text/plain' }, body: 'hello' }));
      assert.equal(d.server['SCRIPT_NAME'], '/index.php');
      assert.equal(d.server['REQUEST_METHOD'], 'PUT');
      assert.equal(d.server['REQUEST_URI'], '/api/items/7');
      assert.equal(inputOf(d).toString(), 'hello');
    });
  });
});

describe("php.server_software, REMOTE_USER, and a site's own auto_prepend_file", () => {
  let gw: RunningGateway;
  let tmp: string;
  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-prepend-'));
    fs.writeFileSync(path.join(tmp, "site's prepend.php"), "<?php $_SERVER['PREPENDED'] = 'yes';\n");
    const prepend = JSON.stringify(path.join(tmp, "site's prepend.php"));
    gw = await startGateway(`php:\n  worker_count: 1\n  server_software: "Acme/2.0"\n  ini:\n    auto_prepend_file: ${prepend}\n`, {
      docroot: ensureFixtureSite(),
    });
  });
  after(async () => {
    await gw.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test("the site's auto_prepend_file still runs, after the gateway's own (the master's variables stay out)", async () => {
    const s = dump(await request(gw.base, '/dump.php')).server;
    assert.equal(s['PREPENDED'], 'yes');
    assert.ok(!('PHP_FCGI_CHILDREN' in s));
  });

  test('php.server_software is what PHP sees as SERVER_SOFTWARE, as written', async () => {
    assert.equal(dump(await request(gw.base, '/dump.php')).server['SERVER_SOFTWARE'], 'Acme/2.0');
  });

  test("REMOTE_USER is an Authorization: Basic header's user name (nginx's $remote_user); PHP_AUTH_USER as PHP makes it", async () => {
    const basic = (s: string): string => `Basic ${Buffer.from(s).toString('base64')}`;
    const ann = dump(await request(gw.base, '/dump.php', { headers: { authorization: basic('ann:pw:with:colons') } })).server;
    assert.equal(ann['REMOTE_USER'], 'ann');
    assert.equal(ann['PHP_AUTH_USER'], 'ann');
    for (const bad of [basic('no colon'), 'Basic !!!', 'Bearer abc', basic(':pw')]) {
      assert.equal(dump(await request(gw.base, '/dump.php', { headers: { authorization: bad } })).server['REMOTE_USER'], '', bad);
    }
  });
});

describe('php.ini values reach PHP byte for byte', () => {
  const savePath = 'tcp://127.0.0.1:6379?prefix=PHPSESS_&auth=a;b "c" $HOME ${HOME} x=y ';
  let gw: RunningGateway;
  before(async () => {
    const ini = {
      'session.save_path': savePath,
      error_reporting: 'E_ALL & ~E_NOTICE',
      display_errors: 'Off',
      'arg_separator.output': '&amp;',
      user_agent: "it's a \\ test = $x",
    };
    gw = await startGateway(`php:\n  worker_count: 1\n  ini: ${JSON.stringify(ini)}\n`, { docroot: ensureFixtureSite() });
  });
  after(() => gw.stop());

  test('=, ;, quotes, $ and ${…}, spaces: as written; an expression and a boolean keep their ini meaning', async () => {
    const r = await request(gw.base, '/ini.php');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(JSON.parse(r.text), {
      save_path: savePath,
      error_reporting: 32759, // E_ALL & ~E_NOTICE, evaluated as php.ini does
      display_errors: '',
      arg_separator: '&amp;',
      user_agent: "it's a \\ test = $x",
    });
  });

  test('iniDefine quotes only what the ini syntax would cut', () => {
    assert.equal(iniDefine('memory_limit', '256M'), 'memory_limit=256M');
    assert.equal(iniDefine('error_reporting', 'E_ALL & ~E_NOTICE'), 'error_reporting=E_ALL & ~E_NOTICE');
    assert.equal(iniDefine('a', 'x=y'), "a='x=y'");
    assert.equal(iniDefine('a', "it's"), 'a="it\'s"');
    assert.equal(iniDefine('a', 'a&b'), "a='a&b'", 'lower-case words are not constants: literal');
    assert.equal(iniDefine('display_errors', 'Off'), 'display_errors=Off');
  });
});

describe('request body limits (server.max_body_mb: 1, server.timeouts.body_ms: 400)', () => {
  let gw: RunningGateway;
  const LIMIT = 1024 * 1024;

  before(async () => {
    gw = await startGateway('server:\n  max_body_mb: 1\n  timeouts:\n    body_ms: 400\nphp:\n  worker_count: 1\n', { docroot: ensureFixtureSite() });
  });

  after(async () => {
    await gw?.stop();
  });

  const post = (body: Buffer): Promise<SimpleResponse> =>
    request(gw.base, '/dump.php', { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body });

  test('a body of exactly max_body_mb is accepted', async () => {
    const body = randomBytes(LIMIT);
    const before = phpRequestsServed(gw);
    const d = dump(await post(body));
    assert.equal(d.input_len, LIMIT);
    assert.equal(sha256(inputOf(d)), sha256(body));
    assert.equal(phpRequestsServed(gw), before + 1);
  });

  test('a declared Content-Length over max_body_mb gets 413 before any body byte is read, PHP never runs', async () => {
    const before = phpRequestsServed(gw);
    // Only the head is sent: the answer must come without the gateway waiting for the body.
    const res = await rawExchange(gw.port, [
      `POST /dump.php HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: ${LIMIT + 1}\r\n\r\n`,
    ]);
    assert.equal(res.status, 413);
    assert.match(res.head, /\r\nconnection: close/i);
    assert.equal(phpRequestsServed(gw), before);
  });

  test('a full oversize body sent with Content-Length gets 413', async () => {
    const before = phpRequestsServed(gw);
    const res = await rawExchange(gw.port, [
      `POST /dump.php HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${2 * LIMIT}\r\n\r\n`,
      randomBytes(2 * LIMIT),
    ]);
    assert.equal(res.status, 413);
    assert.equal(phpRequestsServed(gw), before);
  });

  test('a chunked body growing over max_body_mb gets 413, PHP never runs', async () => {
    const before = phpRequestsServed(gw);
    // Chunked framing written by hand on a raw socket: the gateway answers (and closes) as soon as the total
    // passes the limit, possibly before everything is written.
    const chunk = (b: Buffer): Buffer => Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]);
    const res = await rawExchange(gw.port, [
      'POST /dump.php HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n',
      chunk(randomBytes(400_000)),
      chunk(randomBytes(400_000)),
      chunk(randomBytes(400_000)),
      '0\r\n\r\n',
    ]);
    assert.equal(res.status, 413);
    assert.equal(phpRequestsServed(gw), before);
  });

  test('a body that stalls longer than body_ms gets 408 and PHP never runs (slow-upload guard)', async () => {
    const before = phpRequestsServed(gw);
    const t0 = Date.now();
    // Announces 100 bytes, sends 10, then goes quiet while keeping the connection open.
    const res = await rawExchange(gw.port, ['POST /dump.php HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n', '0123456789']);
    assert.equal(res.status, 408);
    assert.ok(Date.now() - t0 < 3000, 'answered soon after body_ms');
    assert.equal(phpRequestsServed(gw), before);
  });

  test('the gateway still serves PHP after refusing oversize bodies', async () => {
    const d = dump(await post(Buffer.from('small')));
    assert.equal(inputOf(d).toString(), 'small');
  });
});
