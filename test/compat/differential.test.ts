/**
 * Differential test: PHP must see the same request behind phpgate as behind nginx + php-fpm (the reference
 * stack in test/anchors/, Debian's /etc/nginx/fastcgi_params). Every case is sent identically to both (same
 * method, raw target, headers, body, and an explicit `Host: localhost`) over the same fixture docroot, and the
 * fixture dump (_dump.inc.php: $_SERVER, $_GET, $_POST, $_FILES with sha256, $_COOKIE, php://input) is compared.
 *
 * nginx + php-fpm missing: the tests are skipped locally, but fail when CI is set (CI installs them).
 */
import { after, before, describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type http from 'node:http';
import { isDeepStrictEqual } from 'node:util';
import { ensureFixtureSite } from '../fixtures/site.js';
import { nginxFpmAvailable, startNginxFpm } from '../support/nginx-fpm.js';
import type { NginxFpm } from '../support/nginx-fpm.js';
import { request, startGateway } from '../support/gateway.js';
import type { Dump, RunningGateway, SimpleResponse } from '../support/gateway.js';

const WORKERS = 4;

// ---------------------------------------------------------------------------------------------------------
// Normalisation
// ---------------------------------------------------------------------------------------------------------

/**
 * $_SERVER keys that legitimately differ between the two stacks, dropped before comparing.
 */
const SERVER_KEYS_DROPPED = new Set([
  'SERVER_SOFTWARE', // "nginx/1.22.1" vs phpgate's own name
  'SERVER_PORT', // two listeners on two different free ports
  'REMOTE_PORT', // the client's ephemeral port, different per connection
  'REQUEST_TIME', // wall clock
  'REQUEST_TIME_FLOAT', // wall clock
  // php-cgi copies its own process environment into $_SERVER; phpgate starts the master with these (they are
  // how php-cgi is told to fork N children that never exit). php-fpm's clear_env leaves no environment at all.
  'PHP_FCGI_CHILDREN',
  'PHP_FCGI_MAX_REQUESTS',
]);

function normaliseServer(server: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(server)) {
    if (SERVER_KEYS_DROPPED.has(k)) continue;
    // Debian's /etc/nginx/fastcgi_params adds `REMOTE_USER $remote_user` (empty without auth_basic); upstream
    // nginx's fastcgi_params has exactly the 19 params of ARCHITECTURE.md and no REMOTE_USER. Only the empty
    // value is dropped: a non-empty REMOTE_USER is a real difference.
    if (k === 'REMOTE_USER' && v === '') continue;
    // The Host header is the same on both sides; a port (if any) would be each listener's own.
    if (k === 'HTTP_HOST' && typeof v === 'string') {
      out[k] = v.replace(/:\d+$/, '');
      continue;
    }
    out[k] = v;
  }
  return out;
}

/** Readable differences between two flat records: keys only on one side, and differing values. */
function recordDiff(ref: Record<string, unknown>, gw: Record<string, unknown>): string[] {
  const lines: string[] = [];
  const keys = [...new Set([...Object.keys(ref), ...Object.keys(gw)])].sort();
  for (const k of keys) {
    const inRef = Object.hasOwn(ref, k);
    const inGw = Object.hasOwn(gw, k);
    if (inRef && !inGw) lines.push(`  only nginx+fpm: ${k} = ${JSON.stringify(ref[k])}`);
    else if (!inRef && inGw) lines.push(`  only phpgate:   ${k} = ${JSON.stringify(gw[k])}`);
    else if (!isDeepStrictEqual(ref[k], gw[k])) lines.push(`  differs:        ${k}: nginx+fpm ${JSON.stringify(ref[k])} | phpgate ${JSON.stringify(gw[k])}`);
  }
  return lines;
}

/** Response headers that are each server's own business (framing, connection, identity, clock). */
const RESPONSE_HEADERS_DROPPED = new Set(['server', 'date', 'connection', 'keep-alive', 'transfer-encoding', 'content-length']);
// X-Powered-By is kept on purpose: it comes from PHP (expose_php) and must be the same on both sides.

/**
 * Lower-cased: header names are case-insensitive (RFC 9110), and the spelling legitimately differs: nginx
 * re-spells PHP's `Content-type` as `Content-Type`, phpgate passes PHP's spelling through.
 */
function headerNames(res: SimpleResponse): string[] {
  const names = new Set<string>();
  for (let i = 0; i < res.rawHeaders.length; i += 2) {
    const name = res.rawHeaders[i]!.toLowerCase();
    if (!RESPONSE_HEADERS_DROPPED.has(name)) names.add(name);
  }
  return [...names].sort();
}

// ---------------------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------------------

interface Req {
  method?: string;
  target: string;
  /** Besides `Host: localhost`, which every request carries. */
  headers?: Record<string, string>;
  body?: Buffer | string | Buffer[];
  /** No Content-Length: node sends Transfer-Encoding: chunked, one chunk per body part. */
  chunked?: boolean;
}

interface DumpCase extends Req {
  name: string;
  /** HEAD: no body to parse; compare status and header names only. */
  headOnly?: boolean;
  /** Extra checks on the nginx+fpm dump (it is the reference), to be sure the case tests what it claims. */
  check?: (d: Dump) => void;
}

const BOUNDARY = '----phpgateDifferentialBoundary7MA4YWxkTrZu0gW';
const FILE_A = Buffer.from('first file\nwith two lines\n');
const FILE_B = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7 + 3) % 256)); // binary, every byte value

function multipartBody(): Buffer {
  const parts: Buffer[] = [];
  const field = (name: string, value: string) =>
    parts.push(Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  const file = (name: string, filename: string, type: string, content: Buffer) => {
    parts.push(Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"; filename="${filename}"\r\nContent-Type: ${type}\r\n\r\n`));
    parts.push(content, Buffer.from('\r\n'));
  };
  field('title', 'hello world');
  field('tags[]', 'x');
  field('tags[]', 'y');
  file('doc', 'notes.txt', 'text/plain', FILE_A);
  file('blob', 'data.bin', 'application/octet-stream', FILE_B);
  parts.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  return Buffer.concat(parts);
}

const ONE_MB = Buffer.alloc(1024 * 1024, 0);
for (let i = 0; i < ONE_MB.length; i++) ONE_MB[i] = (i * 31 + (i >> 8)) % 256;

const DUMP_CASES: DumpCase[] = [
  { name: 'plain GET /dump.php', target: '/dump.php' },
  {
    name: 'query string with encoding and arrays',
    target: '/dump.php?a=1&b=%20x&c[]=1&c[]=2',
    check: (d) => assert.deepEqual(d.get, { a: '1', b: ' x', c: ['1', '2'] }),
  },
  {
    name: 'PATH_INFO after the script',
    target: '/info.php/extra/path?q=1',
    check: (d) => assert.equal(d.server['PATH_INFO'], '/extra/path'),
  },
  {
    name: 'front controller fallback',
    target: '/pretty/url?x=1',
    check: (d) => assert.equal(d.server['SCRIPT_NAME'], '/index.php'),
  },
  { name: 'root index.php', target: '/', check: (d) => assert.equal(d.server['SCRIPT_NAME'], '/index.php') },
  { name: 'directory index /sub/', target: '/sub/', check: (d) => assert.equal(d.server['SCRIPT_NAME'], '/sub/index.php') },
  {
    name: 'urlencoded POST',
    method: 'POST',
    target: '/dump.php?from=query',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: 'name=J%C3%B6rg&list[]=1&list[]=2&empty=&plus=a+b',
    check: (d) => assert.equal((d.post as Record<string, unknown>)['plus'], 'a b'),
  },
  {
    name: 'JSON POST',
    method: 'POST',
    target: '/dump.php',
    headers: { 'Content-Type': 'application/json; charset=utf-8' },
    body: JSON.stringify({ a: 1, b: ['x', 'y'], c: { d: null } }),
  },
  {
    name: 'multipart with two files and fields',
    method: 'POST',
    target: '/dump.php',
    headers: { 'Content-Type': `multipart/form-data; boundary=${BOUNDARY}` },
    body: multipartBody(),
    check: (d) => {
      const files = d.files as Record<string, { sha256: string; size: number }>;
      assert.equal(files['blob']?.sha256, createHash('sha256').update(FILE_B).digest('hex'));
      assert.equal(files['doc']?.size, FILE_A.length);
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
    name: '1 MB POST',
    method: 'POST',
    target: '/dump.php',
    headers: { 'Content-Type': 'application/octet-stream' },
    body: ONE_MB,
    check: (d) => assert.equal(d.input_len, ONE_MB.length),
  },
  {
    name: 'cookies',
    target: '/dump.php',
    headers: { Cookie: 'a=1; b=2' },
    check: (d) => assert.deepEqual(d.cookie, { a: '1', b: '2' }),
  },
  {
    name: 'custom headers',
    target: '/dump.php',
    headers: { 'X-Custom-Thing': 'some value, with comma', 'Accept-Language': 'de-DE,de;q=0.9,en;q=0.5', 'User-Agent': 'differential-test/1.0' },
    check: (d) => assert.equal(d.server['HTTP_X_CUSTOM_THING'], 'some value, with comma'),
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
    headers: { X_Under: 'nope' },
    check: (d) => assert.equal(d.server['HTTP_X_UNDER'], undefined, 'nginx+fpm passed HTTP_X_UNDER'),
  },
  {
    name: 'PUT with body',
    method: 'PUT',
    target: '/dump.php?id=7',
    headers: { 'Content-Type': 'text/plain' },
    body: 'put body\nline two\n',
  },
  { name: 'HEAD /dump.php', method: 'HEAD', target: '/dump.php', headOnly: true },
];

// ---------------------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------------------

let ref: NginxFpm | undefined;
let gw: RunningGateway | undefined;
let unavailable: string | undefined;

function send(base: string, r: Req): Promise<SimpleResponse> {
  const headers: http.OutgoingHttpHeaders = { Host: 'localhost', ...r.headers };
  const opts: Parameters<typeof request>[2] = { method: r.method ?? 'GET', headers };
  if (r.body !== undefined) opts.body = r.body;
  if (r.chunked) opts.chunked = true;
  return request(base, r.target, opts);
}

/** The same request to both stacks; returns [nginx+fpm, phpgate]. */
async function both(r: Req): Promise<[SimpleResponse, SimpleResponse]> {
  const label = (who: string) => (err: unknown): never => {
    throw new Error(`${who}: ${r.method ?? 'GET'} ${r.target}: ${err instanceof Error ? err.message : String(err)}`);
  };
  return Promise.all([send(`http://127.0.0.1:${ref!.port}`, r).catch(label('nginx+fpm')), send(gw!.base, r).catch(label('phpgate'))]);
}

/** Skips (locally) or fails (CI) when nginx + php-fpm are not installed. */
function ready(t: TestContext): boolean {
  if (unavailable === undefined) return true;
  t.skip(`nginx + php-fpm unavailable: ${unavailable}`);
  return false;
}

function parse(res: SimpleResponse, who: string): Dump {
  assert.equal(res.status, 200, `${who}: expected a dump, got ${res.status}: ${res.text.slice(0, 500)}`);
  try {
    return JSON.parse(res.text) as Dump;
  } catch {
    throw new Error(`${who}: response is not a JSON dump: ${res.text.slice(0, 500)}`);
  }
}

function short(v: unknown): string {
  const s = JSON.stringify(v);
  return s.length > 300 ? `${s.slice(0, 300)}... (${s.length} chars, sha256 ${createHash('sha256').update(s).digest('hex').slice(0, 16)})` : s;
}

/** Every difference of one dump case, so a failing case reports all of them at once. */
function compareDumpCase(c: DumpCase, a: SimpleResponse, b: SimpleResponse): string[] {
  const problems: string[] = [];
  if (a.status !== b.status) problems.push(`status: nginx+fpm ${a.status} | phpgate ${b.status}`);
  const namesA = headerNames(a);
  const namesB = headerNames(b);
  if (!isDeepStrictEqual(namesA, namesB)) {
    problems.push(
      `response header names: only nginx+fpm [${namesA.filter((n) => !namesB.includes(n)).join(', ')}], ` +
        `only phpgate [${namesB.filter((n) => !namesA.includes(n)).join(', ')}]`,
    );
  }
  if (c.headOnly) {
    if (b.body.length !== 0) problems.push(`HEAD: phpgate sent a body of ${b.body.length} bytes`);
    return problems;
  }
  const da = parse(a, 'nginx+fpm');
  const db = parse(b, 'phpgate');
  c.check?.(da);
  const serverDiff = recordDiff(normaliseServer(da.server), normaliseServer(db.server));
  if (serverDiff.length > 0) problems.push(`$_SERVER:\n${serverDiff.join('\n')}`);
  for (const key of ['get', 'post', 'cookie', 'files', 'input', 'input_len'] as const) {
    if (!isDeepStrictEqual(da[key], db[key])) problems.push(`${key}: nginx+fpm ${short(da[key])} | phpgate ${short(db[key])}`);
  }
  return problems;
}

describe('differential: phpgate vs nginx + php-fpm over the fixture site', () => {
  before(async () => {
    const avail = nginxFpmAvailable();
    if (!avail.ok) {
      if (process.env['CI']) {
        throw new Error(`nginx + php-fpm are required for the differential tests in CI, but: ${avail.reason} (apt-get install -y nginx php-fpm)`);
      }
      unavailable = avail.reason;
      return;
    }
    const docroot = ensureFixtureSite();
    ref = await startNginxFpm(docroot, { workers: WORKERS });
    try {
      gw = await startGateway(`php:\n  worker_count: ${WORKERS}\n`, { docroot });
    } catch (err) {
      await ref.stop();
      ref = undefined;
      throw err;
    }
  });

  after(async () => {
    await Promise.all([gw?.stop(), ref?.stop()]);
  });

  for (const c of DUMP_CASES) {
    it(`dump: ${c.name} (${c.method ?? 'GET'} ${c.target})`, async (t) => {
      if (!ready(t)) return;
      const [a, b] = await both(c);
      const problems = compareDumpCase(c, a, b);
      assert.ok(problems.length === 0, `${c.method ?? 'GET'} ${c.target} differs:\n${problems.join('\n')}`);
    });
  }

  // ---- non-dump comparisons: status and body (and the headers that matter) ------------------------------

  it('status.php: CGI Status header with reason phrase', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/status.php?code=404&reason=Not%20Found' });
    assert.equal(a.status, 404);
    assert.equal(b.status, a.status);
    assert.equal(b.text, a.text);
  });

  it('redirect.php: Location only (PHP picks 302)', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/redirect.php?to=/x' });
    assert.equal(a.status, 302);
    assert.equal(b.status, a.status);
    assert.equal(b.headers['location'], a.headers['location']);
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

  it('static.txt: served as is', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/static.txt' });
    assert.equal(a.status, 200);
    assert.equal(b.status, a.status);
    assert.equal(b.text, a.text);
  });

  it('nothere.php: missing script is a 404', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/nothere.php' });
    assert.equal(a.status, 404);
    assert.equal(b.status, a.status);
  });

  it('/admin: directory without slash redirects to /admin/', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/admin' });
    assert.equal(a.status, 301);
    assert.equal(b.status, a.status);
    // nginx writes an absolute Location with its own port (absolute_redirect, port_in_redirect); host and port
    // legitimately differ, so only the path is compared.
    const pathOf = (loc: string | undefined) => new URL(String(loc), 'http://placeholder').pathname;
    assert.equal(pathOf(a.headers['location']), '/admin/');
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

  it('binary.php: 256 KiB of every byte value, bytes equal', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/binary.php' });
    assert.equal(a.status, 200);
    assert.equal(a.body.length, 256 * 1024);
    assert.equal(b.status, a.status);
    assert.ok(b.body.equals(a.body), `bodies differ: nginx+fpm ${a.body.length} bytes, phpgate ${b.body.length} bytes`);
  });
});
