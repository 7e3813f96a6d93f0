/**
 * routes: through the real gateway and php-cgi: nginx's location search (exact, longest prefix, ^~, regexes in order,
 * nested), rewrite scripts, try_files and index per route, static-only routes, PHP with and without PATH_INFO,
 * deny, allow/deny by address, return, add_header/expires, per-route cache bypass, internal routes, and the
 * Laravel recipe (only public/index.php runs).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { explainRouting } from '../config/explain.js';
import { loadConfig } from '../config/load.js';
import { request, startGateway, type RunningGateway, type SimpleResponse } from './support/gateway.js';

/** Every .php file prints which file ran and what PHP was told. */
const PROBE = `<?php header('Content-Type: application/json'); echo json_encode([
  'script' => substr(__FILE__, strlen(realpath($_SERVER['DOCUMENT_ROOT']))),
  'SCRIPT_NAME' => $_SERVER['SCRIPT_NAME'], 'PATH_INFO' => $_SERVER['PATH_INFO'] ?? null,
  'REQUEST_URI' => $_SERVER['REQUEST_URI'], 'QUERY_STRING' => $_SERVER['QUERY_STRING'], 'DOCUMENT_URI' => $_SERVER['DOCUMENT_URI'] ?? null,
]);`;

function site(files: readonly string[]): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-routes-'));
  for (const f of files) {
    const file = path.join(root, f);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, f.endsWith('.php') ? PROBE : `file ${f}\n`);
  }
  return fs.realpathSync(root);
}

interface Probe {
  script: string;
  SCRIPT_NAME: string;
  PATH_INFO: string | null;
  REQUEST_URI: string;
  QUERY_STRING: string;
  DOCUMENT_URI: string | null;
}

function probe(r: SimpleResponse): Probe {
  assert.equal(r.status, 200, `expected PHP to answer, got ${r.status}: ${r.text.slice(0, 200)}`);
  return JSON.parse(r.text) as Probe;
}

describe('routes: the location search', () => {
  let g: RunningGateway;
  let root: string;
  before(async () => {
    root = site([
      'index.php',
      'a.php',
      'img/x.png',
      'img/x.php',
      'exact',
      'pre/deep/f.txt',
      'pre/deep/g.php',
      'pre/f.txt',
      'nest/a.xml',
      'nest/b.txt',
      'other/a.xml',
    ]);
    g = await startGateway(
      `php: { docroot: ${JSON.stringify(root)}, worker_count: 2 }
routes:
  - match: /
    try_files: [$uri, $uri/, /index.php?$query_string]
  - match: = /exact
    return: '200 exact'
  - match: ^~ /img/
    add_header: [{ name: X-Route, value: img }]
  - match: /pre/
    add_header: [{ name: X-Route, value: pre }]
    routes:
      - match: ^~ /pre/deep/
        add_header: [{ name: X-Route, value: deep }]
  - match: /nest/
    routes:
      - match: '~ \\.xml$'
        deny: true
  - match: '~ \\.txt$'
    add_header: [{ name: X-Route, value: txt }]
  - match: '~ \\.php$'
    php: true
`,
    );
  });
  after(async () => {
    await g.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('an exact match wins over every prefix and regex', async () => {
    const r = await request(g.base, '/exact');
    assert.equal(r.status, 200);
    assert.equal(r.text, 'exact');
  });

  test('^~ as the longest prefix: no regex is tried (a .php under it is not run, and never sent as source)', async () => {
    const png = await request(g.base, '/img/x.png');
    assert.equal(png.headers['x-route'], 'img');
    assert.equal(png.text, 'file img/x.png\n');
    const php = await request(g.base, '/img/x.php');
    assert.notEqual(php.status, 200, 'nginx would send the source here; phpgate refuses it');
    assert.doesNotMatch(php.text, /<\?php/);
  });

  test('a plain prefix loses to a matching regex; a nested ^~ stops only its own level', async () => {
    assert.equal((await request(g.base, '/pre/f.txt')).headers['x-route'], 'txt', 'regex beats the /pre/ prefix');
    // /pre/deep/ is ^~ inside /pre/: its level has no regexes, and the top level's regexes still apply (nginx).
    assert.equal((await request(g.base, '/pre/deep/f.txt')).headers['x-route'], 'txt');
    assert.equal(probe(await request(g.base, '/pre/deep/g.php')).script, '/pre/deep/g.php');
  });

  test('a nested regex of the chosen prefix is tried first and applies only under it', async () => {
    assert.equal((await request(g.base, '/nest/a.xml')).status, 403);
    assert.equal((await request(g.base, '/other/a.xml')).status, 200, 'the nested deny is not global');
    assert.equal((await request(g.base, '/nest/b.txt')).headers['x-route'], 'txt');
  });

  test('try_files falls back to the front controller, whose route is chosen again', async () => {
    const p = probe(await request(g.base, '/some/pretty/url?x=1'));
    assert.equal(p.script, '/index.php');
    assert.equal(p.REQUEST_URI, '/some/pretty/url?x=1');
    assert.equal(p.QUERY_STRING, 'x=1');
    assert.equal(p.PATH_INFO, null, 'a route without split_path_info gives no PATH_INFO');
  });

  test('the index of / is an internal redirect to index.php', async () => {
    assert.equal(probe(await request(g.base, '/')).script, '/index.php');
  });

  test('a missing .php is 404 (php: true runs only what exists)', async () => {
    assert.equal((await request(g.base, '/missing.php')).status, 404);
  });
});

describe('routes: the Laravel recipe runs only public/index.php', () => {
  let g: RunningGateway;
  let root: string;
  before(async () => {
    root = site(['index.php', 'other.php', 'vendor/x.php', 'css/app.css', 'storage/secret.php']);
    g = await startGateway(
      `php: { docroot: ${JSON.stringify(root)}, worker_count: 2 }
routes:
  - match: /
    try_files: [$uri, $uri/, /index.php?$query_string]
  - match: = /favicon.ico
  - match: '~ ^/index\\.php(/|$)'
    php: { split_path_info: '^(.+\\.php)(/.*)$' }
  - match: '~ /\\.(?!well-known).*'
    deny: true
`,
    );
  });
  after(async () => {
    await g.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('pretty URLs and index.php/PATH_INFO run index.php', async () => {
    assert.equal(probe(await request(g.base, '/users/7?tab=a')).script, '/index.php');
    const p = probe(await request(g.base, '/index.php/users/7'));
    assert.equal(p.SCRIPT_NAME, '/index.php');
    assert.equal(p.PATH_INFO, '/users/7');
  });

  test('no other .php file is run or sent as source', async () => {
    for (const u of ['/other.php', '/vendor/x.php', '/storage/secret.php']) {
      const r = await request(g.base, u);
      assert.notEqual(r.status, 200, u);
      assert.doesNotMatch(r.text, /<\?php|"script"/, u);
    }
  });

  test('a path through another script reaches the front controller (try_files), as with nginx', async () => {
    assert.equal(probe(await request(g.base, '/other.php/x')).script, '/index.php');
  });

  test('assets are files', async () => {
    assert.equal((await request(g.base, '/css/app.css')).text, 'file css/app.css\n');
  });
});

describe('routes: rewrite scripts, return, access, headers, cache bypass, internal', () => {
  let g: RunningGateway;
  let root: string;
  before(async () => {
    root = site([
      'index.php',
      'wp-login.php',
      'feed/index.php',
      'static/a.css',
      'errors/404.html',
      'private/a.txt',
      'local/a.txt',
      'secret/a.txt',
      'errpage.php',
    ]);
    execFileSync('htpasswd', ['-B', '-b', '-c', path.join(root, 'users'), 'ann', 'open sesame']);
    g = await startGateway(
      `php: { docroot: ${JSON.stringify(root)}, worker_count: 2 }
static: { error_pages: { "404": /errors/404.html, "405": "= /errpage.php" } }
cache: { header: X-Cache }
rewrite:
  - set: $skip_cache 0
  - if: $request_method = POST
    then: [{ set: $skip_cache 1 }]
  - if: $query_string != ""
    then: [{ set: $skip_cache 1 }]
  - if: '$request_uri ~* "/wp-admin/|/feed/|wp-.*\\.php"'
    then: [{ set: $skip_cache 1 }]
  - if: '$http_cookie ~* "comment_author|wordpress_logged_in|woocommerce_items_in_cart"'
    then: [{ set: $skip_cache 1 }]
routes:
  - match: /
    try_files: [$uri, $uri/, /index.php?$args]
  - match: '~ \\.php$'
    php: true
    cache: { ttl_s: 60, bypass: [$skip_cache], no_store: [$skip_cache] }
  - match: /old/
    rewrite:
      - rewrite: '^/old/(\\w+)/(.*)$ /new/$2?from=$1 permanent'
  - match: /wiki/
    try_files: [$uri, '@wiki']
  - match: '@wiki'
    rewrite:
      - rewrite: '^/wiki/(.*)$ /index.php?id=$1 last'
  - match: /sneaky/
    rewrite:
      - rewrite: '^/sneaky/(.*)$ /.$1 last'
  - match: /go/
    rewrite:
      - rewrite: '^/go/(.*)$ /index.php?go=$1 last'
  - match: /static/
    expires: 1h
    add_header:
      - { name: X-Route, value: static }
      - { name: X-Always, value: 'yes $uri', always: true }
  - match: /errors/
    internal: true
  - match: /private/
    access: [{ allow: 10.0.0.0/8 }, { deny: all }]
  - match: /local/
    access: [{ allow: 127.0.0.1 }, { deny: all }]
  - match: /secret/
    auth_basic: { realm: Staff only, user_file: ${JSON.stringify(path.join(root, 'users'))} }
  - match: = /gone
    return: 410
  - match: = /moved
    return: 301 https://$host/new$is_args$args
`,
    );
  });
  after(async () => {
    await g.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('rewrite … permanent redirects with captures and keeps the arguments', async () => {
    const r = await request(g.base, '/old/blog/post?x=1');
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, '/new/post?from=blog&x=1');
  });

  test('rewrite … last chooses the route again: the PHP route runs index.php with the new arguments', async () => {
    const p = probe(await request(g.base, '/go/there?y=2'));
    assert.equal(p.script, '/index.php');
    assert.equal(p.QUERY_STRING, 'go=there&y=2');
    assert.equal(p.REQUEST_URI, '/go/there?y=2');
  });

  test("try_files' @name: the named route's rewrites run with the URI unchanged", async () => {
    const p = probe(await request(g.base, '/wiki/Main_Page?action=edit'));
    assert.equal(p.script, '/index.php');
    assert.equal(p.QUERY_STRING, 'id=Main_Page&action=edit');
    const direct = probe(await request(g.base, '/@wiki'));
    assert.equal(direct.QUERY_STRING, '', 'a named route is never reached by a path: / answers it, without its rewrite');
  });

  test('a URI a rewrite makes is held to the dotfile rule as a client path is', async () => {
    fs.writeFileSync(path.join(root, '.env'), 'SECRET=1\n');
    const r = await request(g.base, '/sneaky/env');
    assert.equal(r.status, 404);
    assert.doesNotMatch(r.text, /SECRET/);
  });

  test('return: a status, and a redirect with variables', async () => {
    assert.equal((await request(g.base, '/gone')).status, 410);
    const r = await request(g.base, '/moved?a=b', { headers: { host: 'example.test' } });
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, 'https://example.test/new?a=b');
  });

  test('expires and add_header on success; only `always` ones on errors', async () => {
    const ok = await request(g.base, '/static/a.css');
    assert.equal(ok.headers['cache-control'], 'max-age=3600');
    assert.ok(ok.headers.expires !== undefined);
    assert.equal(ok.headers['x-route'], 'static');
    assert.equal(ok.headers['x-always'], 'yes /static/a.css');
    const missing = await request(g.base, '/static/none.css');
    assert.equal(missing.status, 404);
    assert.equal(missing.headers['x-route'], undefined);
  });

  test('a header value made from the decoded URI never carries a line break (no response splitting)', async () => {
    fs.writeFileSync(path.join(root, 'static', 'a\nSet-Cookie: x=1.css'), 'evil\n');
    const r = await request(g.base, '/static/a%0ASet-Cookie:%20x=1.css');
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-always'], 'yes /static/a%0ASet-Cookie: x=1.css');
    assert.equal(r.headers['set-cookie'], undefined);
  });

  test('an internal route is 404 to clients but serves the error page', async () => {
    const direct = await request(g.base, '/errors/404.html');
    assert.equal(direct.status, 404);
    assert.equal(direct.text, 'file errors/404.html\n', 'the 404 is answered by the error page itself');
    const missing = await request(g.base, '/static/none.css');
    assert.equal(missing.text, 'file errors/404.html\n');
  });

  test('auth_basic with a bcrypt htpasswd file: 401 with the realm, then the file', async () => {
    const none = await request(g.base, '/secret/a.txt');
    assert.equal(none.status, 401);
    assert.equal(none.headers['www-authenticate'], 'Basic realm="Staff only"');
    const basic = (u: string, p: string): string => 'Basic ' + Buffer.from(`${u}:${p}`).toString('base64');
    assert.equal((await request(g.base, '/secret/a.txt', { headers: { authorization: basic('ann', 'wrong') } })).status, 401);
    for (let i = 0; i < 2; i++) {
      const ok = await request(g.base, '/secret/a.txt', { headers: { authorization: basic('ann', 'open sesame') } });
      assert.equal(ok.status, 200, `attempt ${i + 1}`);
      assert.equal(ok.text, 'file secret/a.txt\n');
    }
  });

  test('allow/deny by address: first match decides', async () => {
    assert.equal((await request(g.base, '/private/a.txt')).status, 403);
    assert.equal((await request(g.base, '/local/a.txt')).status, 200);
  });

  test('the WordPress skip_cache recipe: anonymous pages are cached, carts, logins, feeds, POSTs and queries never', async () => {
    const first = await request(g.base, '/shop/item');
    assert.equal(first.headers['x-cache'], 'MISS');
    assert.equal((await request(g.base, '/shop/item')).headers['x-cache'], 'HIT');
    const cart = await request(g.base, '/shop/item', { headers: { cookie: 'woocommerce_items_in_cart=1' } });
    assert.equal(cart.headers['x-cache'], 'BYPASS', "a visitor with a cart never gets another visitor's page");
    const logged = await request(g.base, '/shop/item', { headers: { cookie: 'wordpress_logged_in_abc=x' } });
    assert.equal(logged.headers['x-cache'], 'BYPASS');
    assert.equal((await request(g.base, '/shop/item?add-to-cart=5')).headers['x-cache'], 'BYPASS');
    assert.equal((await request(g.base, '/wp-login.php')).headers['x-cache'], 'BYPASS');
    assert.equal((await request(g.base, '/feed/')).headers['x-cache'], 'BYPASS');
    const post = await request(g.base, '/shop/item', {
      method: 'POST',
      body: 'a=1',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(post.headers['x-cache'], undefined, "a POST never meets a route's cache (nginx's fastcgi_cache_methods)");
    assert.equal(probe(post).script, '/index.php');
  });

  test('error_page "= URI": the page answers with its own status', async () => {
    const r = await request(g.base, '/static/a.css', { method: 'POST', body: 'x' });
    assert.equal(probe(r).script, '/errpage.php');
    assert.equal(probe(r).REQUEST_URI, '/static/a.css');
  });
});

describe('routes: the README examples load', () => {
  test('every YAML example of the Routes section is a valid configuration', () => {
    const readme = fs.readFileSync(path.join(import.meta.dirname, '..', 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf("### Routes: nginx's locations"), readme.indexOf('### The edge'));
    const examples = [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    assert.ok(examples.length >= 3, 'three worked examples');
    const root = site(['index.php']);
    try {
      for (const text of examples) {
        const c = loadConfig({ text: `${text.replace(/^php: .*$/m, '')}\nphp: { docroot: ${JSON.stringify(root)} }\n`, file: 'README.md', env: {} });
        assert.ok(c.routes.length > 0);
      }
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('routes: phpgate check --explain', () => {
  test('lists the routes in nginx search order, and what the global keys amount to without routes', () => {
    const root = site(['index.php']);
    try {
      const withRoutes = loadConfig({
        text: `php: { docroot: ${JSON.stringify(root)} }\nroutes:\n  - match: '~ \\.php$'\n    php: true\n  - match: /\n  - match: /assets/\n    expires: 1d\n  - match: = /x\n    return: 404\n`,
        file: 't.yaml',
        env: {},
      });
      const lines = explainRouting(withRoutes).split('\n');
      const order = lines.filter((l) => l.startsWith('  ')).map((l) => l.trim().split(/\s{2,}/)[0]);
      assert.deepEqual(order, ['= /x', '/assets/', '/', '~ \\.php$']);
      const without = explainRouting(
        loadConfig({ text: `php: { docroot: ${JSON.stringify(root)} }\nstatic: { deny: ['*.sql'] }\n`, file: 't.yaml', env: {} }),
      );
      assert.match(without, /no routes: the global keys route as these routes would/);
      assert.match(without, /\*\.sql/);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

describe("routes: PATH_INFO as nginx's fastcgi_split_path_info, try_files and fastcgi_param PATH_INFO give it", () => {
  let g: RunningGateway;
  let root: string;
  before(async () => {
    root = site(['index.php', 'app.php']);
    g = await startGateway(
      `php: { docroot: ${JSON.stringify(root)}, worker_count: 2 }
routes:
  - match: '~ ^/index\\.php(/|$)'
    rewrite: [{ set: $path_info $fastcgi_path_info }]
    try_files: [$fastcgi_script_name, =404]
    php: { split_path_info: '^(.+?\\.php)(/.*)$', path_info: $path_info }
  - match: '~ ^/app\\.php(/|$)'
    try_files: [$fastcgi_script_name, =404]
    php: { split_path_info: '^(.+?\\.php)(/.*)$' }
`,
    );
  });
  after(async () => {
    await g.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  test("Debian's fastcgi-php.conf: the path info is kept in a variable before try_files", async () => {
    const p = probe(await request(g.base, '/index.php/a/b'));
    assert.deepEqual([p.SCRIPT_NAME, p.PATH_INFO, p.DOCUMENT_URI], ['/index.php', '/a/b', '/index.php']);
  });

  test('without it, try_files empties $fastcgi_path_info (the nginx pitfall, kept)', async () => {
    const p = probe(await request(g.base, '/app.php/a/b'));
    assert.deepEqual([p.SCRIPT_NAME, p.PATH_INFO], ['/app.php', '']);
    assert.equal((await request(g.base, '/missing.php/a')).status, 404);
  });
});

describe('routes: a route with proxy: answers from its upstream, with the route headers and cache', () => {
  let g: RunningGateway;
  let root: string;
  let upstream: http.Server;
  let hits = 0;
  before(async () => {
    root = site(['index.php']);
    upstream = http.createServer((req, res) => {
      hits++;
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Cache-Control': 'max-age=60' });
      res.end(`upstream saw ${req.url}`);
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const port = (upstream.address() as AddressInfo).port;
    g = await startGateway(
      `php: { docroot: ${JSON.stringify(root)}, worker_count: 1 }
cache: { header: X-Cache }
routes:
  - match: /
  - match: ^~ /api/
    proxy: { targets: ["http://127.0.0.1:${port}"] }
    add_header: [{ name: X-Route, value: api }]
    cache: { ttl_s: 30 }
`,
    );
  });
  after(async () => {
    await g.stop();
    await new Promise((resolve) => upstream.close(resolve));
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('the path goes to the upstream as sent; the route adds its header and caches the answer', async () => {
    const first = await request(g.base, '/api/items?page=2');
    assert.equal(first.text, 'upstream saw /api/items?page=2');
    assert.equal(first.headers['x-route'], 'api');
    assert.equal(first.headers['x-cache'], 'MISS');
    const second = await request(g.base, '/api/items?page=2');
    assert.equal(second.headers['x-cache'], 'HIT');
    assert.equal(hits, 1);
    assert.equal((await request(g.base, '/index.php')).status, 404, 'the site root is static only here (no PHP route)');
  });
});

describe('routes: configuration errors name the place and what is allowed', () => {
  const issues = (text: string): string => {
    const root = site(['index.php']);
    try {
      loadConfig({ text: `php: { docroot: ${JSON.stringify(root)} }\n${text}`, file: 'gateway.yaml', env: {} });
      return '';
    } catch (err) {
      return (err as Error).message;
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  };

  test('a bad match, a bad rewrite, two content handlers, an unknown variable, a missing named route', () => {
    assert.match(issues('routes:\n  - match: nope\n'), /gateway\.yaml:3:12: routes\[0\]\.match must be a location as nginx writes it/);
    assert.match(
      issues("routes:\n  - match: /\n    rewrite: [{ rewrite: '^/a' }]\n"),
      /gateway\.yaml:4:\d+: routes\[0\]\.rewrite\[0\]\.rewrite must be "REGEX REPLACEMENT/,
    );
    assert.match(
      issues("routes:\n  - match: /\n    php: true\n    proxy: { targets: ['http://127.0.0.1:1'] }\n"),
      /routes\[0\] must have php or proxy, not both/,
    );
    assert.match(issues("routes:\n  - match: /\n    return: '200 $nosuch'\n"), /unknown variable "\$nosuch"/);
    assert.match(issues('routes:\n  - match: /\n    try_files: [$uri, "@gone"]\n'), /try_files names "@gone", but no route has match: "@gone"/);
    assert.equal(
      issues("routes:\n  - match: /\n    return: '301 https://$host$request_uri'\n    php: true\n"),
      '',
      'return answers before PHP, as nginx',
    );
    assert.match(
      issues('routes:\n  - match: /\n    add_header: { X-A: "a\\r\\nSet-Cookie: x" }\n'),
      /routes\[0\]\.add_header must map header names to one-line values/,
    );
    assert.match(
      issues('routes:\n  - match: /\n    add_header: [{ name: X-A, value: "a\\nb" }]\n'),
      /routes\[0\]\.add_header\[0\]\.value must be a header value without control characters/,
    );
    // Variables whose value the gateway would get wrong are refused rather than given ('' for a Basic user).
    assert.match(issues("routes:\n  - match: /\n    return: '200 $remote_user'\n"), /unknown variable "\$remote_user"/);
  });
});

describe('error_pages named with letters beyond ASCII', () => {
  test('the page is found and answers (it was dropped silently before); a page no request could name is refused', async () => {
    const root = site(['fehler/seite-ä.html']);
    const g = await startGateway(
      `php: { docroot: ${JSON.stringify(root)}, worker_count: 1 }\nstatic: { error_pages: { "404": "/fehler/seite-ä.html" } }\n`,
    );
    try {
      const r = await request(g.base, '/missing');
      assert.equal(r.status, 404);
      assert.equal(r.text, 'file fehler/seite-ä.html\n');
    } finally {
      await g.stop();
      fs.rmSync(root, { recursive: true, force: true });
    }
    const other = site(['x.html']);
    try {
      assert.throws(
        () =>
          loadConfig({
            text: `php: { docroot: ${JSON.stringify(other)} }\nstatic: { error_pages: { "404": "/bad%zz.html" } }\n`,
            file: 'g.yaml',
            env: {},
          }),
        /g\.yaml:2:\d+: static\.error_pages\.404 must be a URI starting with \//,
      );
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });
});
