/**
 * Static files' Content-Type through the real gateway: nginx's types (every extension of the local nginx's
 * mime.types, when nginx is installed), no charset by default, and static.charset / static.charset_types as nginx's
 * charset / charset_types: on the charset_types only, text/html always, "*" on every type; the same on HEAD, ranges,
 * the memoized hot-file head, streamed files, precompressed siblings and error pages.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { request, startGateway, type RunningGateway, type SimpleResponse } from './support/gateway.js';
import { nginxMimeTypes } from './support/nginx-mime.js';

const NGINX = nginxMimeTypes();

/** Extensions nginx's table lacks (nginx sends its default_type), with what phpgate sends: their registered type. */
const BEYOND_NGINX: ReadonlyArray<[string, string]> = [
  ['/f.mjs', 'text/javascript'],
  ['/f.md', 'text/markdown'],
  ['/f.csv', 'text/csv'],
  ['/f.webmanifest', 'application/manifest+json'],
  ['/f.xyz123', 'application/octet-stream'],
  ['/README', 'application/octet-stream'],
];

/** The types of nginx's default charset_types, by a file of each, and files whose types are not among them. */
const CHARSET_DEFAULT_TYPES: ReadonlyArray<[string, string]> = [
  ['/f.html', 'text/html'],
  ['/f.txt', 'text/plain'],
  ['/f.xml', 'text/xml'],
  ['/f.js', 'application/javascript'],
  ['/f.rss', 'application/rss+xml'],
  ['/f.wml', 'text/vnd.wap.wml'],
];
const OTHER_TYPES: ReadonlyArray<[string, string]> = [
  ['/f.css', 'text/css'],
  ['/f.json', 'application/json'],
  ['/f.svg', 'image/svg+xml'],
  ['/f.png', 'image/png'],
  ['/f.mjs', 'text/javascript'],
];

const PAGE = Buffer.from(`<!doctype html><meta charset="iso-8859-1"><p>caf\xe9</p>\n${'<p>filler</p>\n'.repeat(40)}`, 'latin1');
const NOT_FOUND = '<!doctype html><p>custom 404</p>\n';
/** Over the hot-file limit of these gateways (1 KiB): streamed from disk. */
const BIG = Buffer.alloc(8 * 1024, 'streamed text\n');

let docroot: string;

function buildSite(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-ctype-'));
  const write = (rel: string, data: string | Buffer): void => fs.writeFileSync(path.join(dir, rel), data);
  for (const ext of NGINX?.keys() ?? []) write(`f.${ext}`, 'x\n');
  for (const [target] of [...BEYOND_NGINX, ...CHARSET_DEFAULT_TYPES, ...OTHER_TYPES]) write(target.slice(1), 'x\n');
  write('UPPER.HTML', '<p>upper</p>\n');
  write('page.html', PAGE);
  write('page.html.gz', zlib.gzipSync(PAGE));
  write('big.txt', BIG);
  write('404.html', NOT_FOUND);
  return dir;
}

const gateways: Record<'plain' | 'utf8' | 'listed' | 'every', RunningGateway | undefined> = {
  plain: undefined,
  utf8: undefined,
  listed: undefined,
  every: undefined,
};

function gw(name: keyof typeof gateways): RunningGateway {
  const g = gateways[name];
  if (g === undefined) throw new Error(`gateway ${name} did not start`);
  return g;
}

const BASE_YAML = 'php:\n  worker_count: 1\nstatic:\n  hot_cache_file_kb: 1\n  error_pages:\n    404: /404.html\n';

before(async () => {
  docroot = buildSite();
  const start = (extra: string): Promise<RunningGateway> => startGateway(BASE_YAML + extra, { docroot });
  [gateways.plain, gateways.utf8, gateways.listed, gateways.every] = await Promise.all([
    start(''),
    start('  charset: utf-8\n'),
    start('  charset: ISO-8859-1\n  charset_types: [text/css, TEXT/PLAIN]\n'),
    start('  charset: utf-8\n  charset_types: ["*"]\n'),
  ]);
});

after(async () => {
  await Promise.all(Object.values(gateways).flatMap((g) => (g === undefined ? [] : [g.stop()])));
  if (docroot !== undefined) fs.rmSync(docroot, { recursive: true, force: true });
});

const contentType = (res: SimpleResponse): string | undefined => res.headers['content-type'];

/** GETs every target (a few at a time) and returns the answers in order. */
async function getAll(base: string, targets: readonly string[]): Promise<SimpleResponse[]> {
  const out: SimpleResponse[] = [];
  for (let i = 0; i < targets.length; i += 16) out.push(...(await Promise.all(targets.slice(i, i + 16).map((t) => request(base, t)))));
  return out;
}

describe("static Content-Type by default: nginx's, no charset", () => {
  test("every extension of nginx's mime.types is sent with nginx's type", async (t) => {
    if (NGINX === null) return t.skip('nginx is not installed (no /etc/nginx/mime.types)');
    const exts = [...NGINX.keys()];
    const answers = await getAll(
      gw('plain').base,
      exts.map((e) => `/f.${e}`),
    );
    const wrong = exts.flatMap((ext, i) => {
      const res = answers[i]!;
      return res.status === 200 && contentType(res) === NGINX.get(ext) ? [] : [`.${ext}: ${res.status} ${contentType(res)}, nginx ${NGINX.get(ext)}`];
    });
    assert.deepEqual(wrong, []);
  });

  test('extensions nginx lacks get their registered type; unknown or none: application/octet-stream; any case', async () => {
    for (const [target, type] of [...BEYOND_NGINX, ['/UPPER.HTML', 'text/html']] as const) {
      const res = await request(gw('plain').base, target);
      assert.equal(res.status, 200, target);
      assert.equal(contentType(res), type, target);
    }
  });

  test('no charset on html, txt, css, js, xml: GET twice (the memoized head), HEAD, a range, streamed, precompressed, error page', async () => {
    const base = gw('plain').base;
    for (const [target, type] of [...CHARSET_DEFAULT_TYPES, ...OTHER_TYPES]) {
      for (const method of ['GET', 'GET', 'HEAD']) assert.equal(contentType(await request(base, target, { method })), type, `${method} ${target}`);
    }
    assert.equal(contentType(await request(base, '/f.html', { headers: { Range: 'bytes=0-0' } })), 'text/html');
    assert.equal(contentType(await request(base, '/big.txt')), 'text/plain');
    const gz = await request(base, '/page.html', { headers: { 'Accept-Encoding': 'gzip' } });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(contentType(gz), 'text/html');
    const missing = await request(base, '/missing.txt');
    assert.equal(missing.status, 404);
    assert.equal(missing.text, NOT_FOUND);
    assert.equal(contentType(missing), 'text/html');
  });

  test('a legacy ISO-8859-1 page reaches the client byte for byte, its own <meta charset> undisputed', async () => {
    const res = await request(gw('plain').base, '/page.html');
    assert.deepEqual(res.body, PAGE);
    assert.equal(contentType(res), 'text/html');
  });
});

describe('static.charset: utf-8 (nginx charset utf-8) with the default charset_types', () => {
  test("the charset on nginx's default charset_types only", async () => {
    const base = gw('utf8').base;
    for (const [target, type] of CHARSET_DEFAULT_TYPES) {
      for (const method of ['GET', 'GET', 'HEAD']) {
        assert.equal(contentType(await request(base, target, { method })), `${type}; charset=utf-8`, `${method} ${target}`);
      }
    }
    for (const [target, type] of OTHER_TYPES) assert.equal(contentType(await request(base, target)), type, target);
  });

  test('on a range, a streamed file, a precompressed sibling and the error page too', async () => {
    const base = gw('utf8').base;
    const range = await request(base, '/f.txt', { headers: { Range: 'bytes=0-0' } });
    assert.equal(range.status, 206);
    assert.equal(contentType(range), 'text/plain; charset=utf-8');
    const big = await request(base, '/big.txt');
    assert.deepEqual(big.body, BIG);
    assert.equal(contentType(big), 'text/plain; charset=utf-8');
    // nginx's charset filter runs before gzip_static's Content-Encoding is looked at: the sibling gets it as well.
    const gz = await request(base, '/page.html', { headers: { 'Accept-Encoding': 'gzip' } });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(contentType(gz), 'text/html; charset=utf-8');
    const missing = await request(base, '/missing.txt');
    assert.equal(missing.status, 404);
    assert.equal(contentType(missing), 'text/html; charset=utf-8');
  });
});

describe('static.charset_types', () => {
  test('[text/css, TEXT/PLAIN]: those (any case) and text/html, which nginx always includes; nothing else', async () => {
    const base = gw('listed').base;
    const expect: ReadonlyArray<[string, string]> = [
      ['/f.css', 'text/css; charset=ISO-8859-1'],
      ['/f.txt', 'text/plain; charset=ISO-8859-1'],
      ['/f.html', 'text/html; charset=ISO-8859-1'],
      ['/f.js', 'application/javascript'],
      ['/f.xml', 'text/xml'],
      ['/f.png', 'image/png'],
    ];
    for (const [target, type] of expect) assert.equal(contentType(await request(base, target)), type, target);
  });

  test('"*": every type, binary and unknown ones included (as nginx)', async () => {
    const base = gw('every').base;
    for (const [target, type] of [
      ['/f.png', 'image/png'],
      ['/f.css', 'text/css'],
      ['/f.xyz123', 'application/octet-stream'],
    ] as const) {
      assert.equal(contentType(await request(base, target)), `${type}; charset=utf-8`, target);
    }
  });
});
