/**
 * Differential test, static files' Content-Type: the reference nginx (test/anchors/, with Debian's nginx.conf
 * `default_type application/octet-stream`) and phpgate over one docroot of a file per extension. Without `charset`
 * both send the bare type nginx's mime.types gives; nginx's `charset` / `charset_types` in a location and
 * phpgate's static.charset / static.charset_types (one gateway per setting) add the same `; charset=X` to the same
 * files. Extensions nginx's table lacks are the deliberate difference: nginx's default_type, phpgate's registered
 * type.
 *
 * nginx + php-fpm missing: the tests are skipped locally, but fail when CI is set (CI installs them).
 */
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { request, startGateway, type RunningGateway, type SimpleResponse } from '../support/gateway.js';
import { nginxFpmMissing, startNginxFpm, type NginxFpm } from '../support/nginx-fpm.js';
import { nginxMimeTypes } from '../support/nginx-mime.js';

/** Each setting: nginx's location for it (the same files under that prefix) and phpgate's static keys. */
const SETTINGS = {
  plain: { nginx: null, phpgate: '' },
  utf8: { nginx: 'location /utf8/ { charset utf-8; gzip_static on; }', phpgate: '  charset: utf-8\n' },
  listed: {
    nginx: 'location /listed/ { charset ISO-8859-1; charset_types text/css text/plain; }',
    phpgate: '  charset: ISO-8859-1\n  charset_types: [text/css, text/plain]\n',
  },
  every: { nginx: 'location /every/ { charset utf-8; charset_types *; }', phpgate: '  charset: utf-8\n  charset_types: ["*"]\n' },
} as const;
type Setting = keyof typeof SETTINGS;

/** The extensions compared under each charset setting: every type of nginx's default charset_types, and others. */
const FEW = ['html', 'htm', 'txt', 'css', 'js', 'json', 'xml', 'rss', 'wml', 'svg', 'png', 'ico', 'pdf'];
/** Known to mime-types, not to nginx's mime.types: nginx sends default_type. */
const BEYOND_NGINX: ReadonlyArray<[string, string]> = [
  ['mjs', 'text/javascript'],
  ['md', 'text/markdown'],
  ['csv', 'text/csv'],
  ['webmanifest', 'application/manifest+json'],
];
const PAGE = Buffer.from(`<!doctype html><p>precompressed</p>\n${'<p>filler</p>\n'.repeat(40)}`);

describe('differential: static Content-Type, phpgate vs nginx', () => {
  const nginxTypes = nginxMimeTypes() ?? new Map<string, string>();
  let docroot: string | undefined;
  let ref: NginxFpm | undefined;
  const gws = new Map<Setting, RunningGateway>();
  let unavailable: string | undefined;

  before(async () => {
    unavailable = nginxFpmMissing('the differential tests');
    if (unavailable !== undefined) return;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-ctype-diff-'));
    docroot = dir;
    for (const prefix of ['', ...Object.keys(SETTINGS).filter((s) => s !== 'plain')]) {
      const sub = path.join(dir, prefix);
      fs.mkdirSync(sub, { recursive: true });
      for (const ext of [...nginxTypes.keys(), ...BEYOND_NGINX.map(([e]) => e)]) fs.writeFileSync(path.join(sub, `f.${ext}`), 'x\n');
      fs.writeFileSync(path.join(sub, 'README'), 'x\n');
      fs.writeFileSync(path.join(sub, 'page.html'), PAGE);
      fs.writeFileSync(path.join(sub, 'page.html.gz'), zlib.gzipSync(PAGE));
    }
    ref = await startNginxFpm(dir, {
      workers: 1,
      httpDirectives: ['default_type application/octet-stream;'],
      serverDirectives: Object.values(SETTINGS).flatMap((s) => (s.nginx === null ? [] : [s.nginx])),
    });
    const started = await Promise.allSettled(
      Object.entries(SETTINGS).map(async ([name, s]) => {
        const yaml = `php:\n  worker_count: 1\n${s.phpgate === '' ? '' : `static:\n${s.phpgate}`}`;
        gws.set(name as Setting, await startGateway(yaml, { docroot: dir }));
      }),
    );
    const failed = started.find((r) => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  });

  after(async () => {
    await Promise.all([ref?.stop(), ...[...gws.values()].map((g) => g.stop())]);
    if (docroot !== undefined) fs.rmSync(docroot, { recursive: true, force: true });
  });

  function ready(t: TestContext): boolean {
    if (unavailable === undefined) return true;
    t.skip(`nginx + php-fpm unavailable: ${unavailable}`);
    return false;
  }

  /** The same request to nginx and to the gateway of `setting`; the path is under the setting's prefix. */
  async function both(setting: Setting, file: string, headers: Record<string, string> = {}): Promise<[SimpleResponse, SimpleResponse]> {
    const target = setting === 'plain' ? `/${file}` : `/${setting}/${file}`;
    const opts = { headers: { Host: 'localhost', ...headers }, timeoutMs: 15_000 };
    return Promise.all([request(`http://127.0.0.1:${ref!.port}`, target, opts), request(gws.get(setting)!.base, target, opts)]);
  }

  /** "f.ext: nginx X | phpgate Y" for every file whose Content-Type differs. */
  async function differences(setting: Setting, files: readonly string[]): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < files.length; i += 16) {
      const batch = files.slice(i, i + 16);
      const answers = await Promise.all(batch.map((f) => both(setting, f)));
      answers.forEach(([a, b], j) => {
        assert.equal(a.status, 200, `nginx: ${batch[j]}`);
        assert.equal(b.status, 200, `phpgate: ${batch[j]}`);
        if (a.headers['content-type'] !== b.headers['content-type']) {
          out.push(`${batch[j]}: nginx ${a.headers['content-type']} | phpgate ${b.headers['content-type']}`);
        }
      });
    }
    return out;
  }

  it("without charset: every extension of nginx's mime.types, and none, get the same Content-Type (no charset)", async (t) => {
    if (!ready(t)) return;
    assert.ok(nginxTypes.size > 50, `nginx's mime.types read: ${nginxTypes.size} extensions`);
    assert.deepEqual(await differences('plain', [...[...nginxTypes.keys()].map((e) => `f.${e}`), 'README', 'page.html']), []);
    const [a, b] = await both('plain', 'f.html');
    assert.equal(a.headers['content-type'], 'text/html');
    assert.equal(b.headers['content-type'], 'text/html');
  });

  for (const setting of ['utf8', 'listed', 'every'] as const) {
    it(`${SETTINGS[setting].nginx}: the same charset on the same types`, async (t) => {
      if (!ready(t)) return;
      assert.deepEqual(await differences(setting, [...FEW.map((e) => `f.${e}`), 'README']), []);
    });
  }

  it('charset utf-8 on a precompressed sibling: the same on both (gzip_static / static.precompressed)', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both('utf8', 'page.html', { 'Accept-Encoding': 'gzip' });
    assert.equal(a.headers['content-encoding'], 'gzip');
    assert.equal(b.headers['content-encoding'], 'gzip');
    assert.equal(a.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(b.headers['content-type'], a.headers['content-type']);
  });

  it("deliberate: an extension nginx's table lacks gets its registered type, where nginx sends default_type", async (t) => {
    if (!ready(t)) return;
    for (const [ext, type] of BEYOND_NGINX) {
      const [a, b] = await both('plain', `f.${ext}`);
      assert.equal(a.headers['content-type'], 'application/octet-stream', `nginx: .${ext}`);
      assert.equal(b.headers['content-type'], type, `phpgate: .${ext}`);
    }
  });
});
