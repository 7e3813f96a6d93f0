/**
 * The router (gateway/route/router.ts) on its own, against a docroot built in a temp dir: which route a decoded
 * path and its query get — index files, try_files fallbacks, the PHP location and its PATH_INFO split, dotfiles and
 * /.well-known, deny globs, directories redirected to their slash, `.php` only when the script exists, PHP source
 * under other extensions, symlinks out of the docroot. Each table row is one fact; the same site through a live
 * gateway is in static.test.ts and php-request.test.ts.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../config/index.js';
import { DocrootGuard, FileInfoCache } from '../gateway/http/file-cache.js';
import { Router, RouteKind, type Route } from '../gateway/route/router.js';

const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-router-')));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const docroot = path.join(tmp, 'public');
const outside = path.join(tmp, 'outside');

function write(root: string, rel: string, data = 'x'): void {
  const file = path.join(root, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, data);
}

for (const rel of [
  'index.php',
  'app.css',
  'notes.php.txt',
  'blog/post.php',
  'admin/tool.php',
  'clean.php',
  'uploads/x.jpg',
  'dir/index.html',
  'dir/sub/file.txt',
  'phpdir/index.php',
  'both/index.php',
  'both/index.html',
  'with space/index.html',
  'café/menu.html',
  'dir.php/index.html',
  'x.PHP',
  'x.phtml',
  'x.php5',
  'x.phar',
  'x.phps',
  '.env',
  '.git/config',
  'dir/.hidden',
  'sub/.well-known/x',
  '.well-known/security.txt',
  '.well-known/acme-challenge/token',
  '.well-known/.htaccess',
  '.well-knownx/a',
  'vendor/autoload.php',
  'vendor/readme.txt',
  'vendorx/readme.txt',
  'dump.sql',
  'dir/backup.sql',
  'composer.json',
  'dir/composer.json',
])
  write(docroot, rel);
for (const rel of ['secret.txt', 'index.html', 'evil.php']) write(outside, rel);
fs.symlinkSync('app.css', path.join(docroot, 'in-link.txt'));
fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(docroot, 'out-link.txt'));
fs.symlinkSync(path.join(outside, 'evil.php'), path.join(docroot, 'out-script.php'));
fs.symlinkSync(outside, path.join(docroot, 'out-dir'), 'dir');
fs.symlinkSync(path.join(docroot, 'nowhere.txt'), path.join(docroot, 'dangling.txt'));

const SITE_YAML = `
php:
  docroot: ./public
pools:
  - name: admin
    patterns: ["/admin/*"]
static:
  deny: ["/vendor/*", "*.sql", "composer.json"]
`;

/** A Router built as server.ts builds it, from gateway.yaml text (plus `extra` keys under php: / static:). */
function routerFor(yaml: string): Router {
  const c = loadConfig({ text: yaml, file: 'router-test.yaml', baseDir: tmp, env: {} });
  const files = new FileInfoCache();
  return new Router({
    php: c.php,
    pools: c.pools,
    static: c.static,
    defaultPool: 'www',
    files,
    guard: new DocrootGuard(files, c.php.docroot, c.static.follow_symlinks),
  });
}

/** What a row expects: the route's kind and the fields that matter for it. */
type Want =
  | { readonly php: string; readonly pathInfo?: string; readonly query?: string; readonly pool?: string }
  | { readonly file: string }
  | { readonly redirect: string }
  | { readonly status: number };

interface Case {
  readonly name: string;
  readonly path: string;
  readonly query?: string;
  readonly want: Want;
}

/** The route reduced to what a row states, so a failure shows the route's own shape. */
function observed(route: Route, want: Want): unknown {
  switch (route.kind) {
    case RouteKind.Php: {
      const out: Record<string, string> = { php: route.scriptName };
      if ('php' in want) {
        if (want.pathInfo !== undefined) out['pathInfo'] = route.pathInfo ?? '(none)';
        if (want.query !== undefined) out['query'] = route.queryString;
        if (want.pool !== undefined) out['pool'] = route.pool;
      }
      // SCRIPT_FILENAME is always the docroot joined with SCRIPT_NAME.
      assert.equal(route.scriptFilename, path.join(docroot, route.scriptName));
      return out;
    }
    case RouteKind.Static:
      return { file: path.relative(docroot, route.file) };
    case RouteKind.Redirect:
      assert.equal(route.status, 301);
      return { redirect: route.location };
    case RouteKind.Error:
      return { status: route.status };
  }
}

function runTable(cases: readonly Case[], router: () => Router): void {
  for (const c of cases) {
    test(c.name, () => {
      const route = router().resolve(c.path, c.query ?? '');
      assert.deepEqual(observed(route, c.want), c.want, `${c.path}${c.query === undefined ? '' : '?' + c.query} → ${JSON.stringify(route)}`);
    });
  }
}

const NOT_FOUND = { status: 404 } as const;
/** static.deny_status (404 by default): denied paths, dotfiles, PHP source, symlinks out of the docroot. */
const DENIED = { status: 404 } as const;

const cases: readonly Case[] = [
  // index files
  { name: 'the site root runs index.php', path: '/', want: { php: '/index.php', pathInfo: '' } },
  { name: 'a directory with index.html serves it', path: '/dir/', want: { file: 'dir/index.html' } },
  { name: 'a directory with index.php runs it', path: '/phpdir/', want: { php: '/phpdir/index.php' } },
  { name: 'index.php is tried before index.html (the index list order)', path: '/both/', want: { php: '/both/index.php' } },
  { name: 'a directory index keeps the query for PHP', path: '/phpdir/', query: 'p=2', want: { php: '/phpdir/index.php', query: 'p=2' } },
  { name: 'a directory without an index file is 403, never a listing', path: '/dir/sub/', want: { status: 403 } },
  // directories without their slash
  { name: 'a directory without its slash is redirected to it (301)', path: '/dir', want: { redirect: '/dir/' } },
  { name: 'the redirect keeps the query', path: '/dir', query: 'a=1&b=2', want: { redirect: '/dir/?a=1&b=2' } },
  { name: 'the redirect percent-encodes a space', path: '/with space', want: { redirect: '/with%20space/' } },
  { name: 'the redirect percent-encodes non-ASCII as UTF-8', path: '/café', want: { redirect: '/caf%C3%A9/' } },
  { name: '/.well-known without its slash is redirected like any directory', path: '/.well-known', want: { redirect: '/.well-known/' } },
  // static files
  { name: 'a file is served as it is', path: '/app.css', want: { file: 'app.css' } },
  { name: 'a file named with a non-ASCII letter', path: '/café/menu.html', want: { file: 'café/menu.html' } },
  { name: '.php in the middle of a file name is not PHP', path: '/notes.php.txt', want: { file: 'notes.php.txt' } },
  { name: 'an upload is served, not run', path: '/uploads/x.jpg', want: { file: 'uploads/x.jpg' } },
  // try_files fallbacks: $uri $uri/ /index.php?$query_string
  {
    name: 'a missing path falls back to the front controller with the query',
    path: '/missing',
    query: 'a=1&b=2',
    want: { php: '/index.php', query: 'a=1&b=2', pathInfo: '' },
  },
  { name: 'a deep missing path falls back too', path: '/blog/2024/05/hello', want: { php: '/index.php' } },
  { name: 'a missing file in an existing directory falls back too', path: '/dir/missing.html', want: { php: '/index.php' } },
  { name: 'a path through a file (ENOTDIR) falls back too', path: '/app.css/more', want: { php: '/index.php' } },
  { name: 'a dangling symlink is nothing: the front controller', path: '/dangling.txt', want: { php: '/index.php' } },
  { name: 'a prefix deny glob does not catch a longer sibling name', path: '/vendorx/readme.txt', want: { file: 'vendorx/readme.txt' } },
  // .php only when the script exists
  { name: 'an existing script runs', path: '/blog/post.php', want: { php: '/blog/post.php', pathInfo: '' } },
  { name: 'a missing script is 404, not the front controller', path: '/missing.php', want: NOT_FOUND },
  { name: 'a missing script with PATH_INFO is 404', path: '/missing.php/x', want: NOT_FOUND },
  { name: 'an upload with a .php tail is 404: x.jpg is never handed to PHP', path: '/uploads/x.jpg/y.php', want: NOT_FOUND },
  { name: 'a directory named like a script is 404, not its index', path: '/dir.php', want: NOT_FOUND },
  { name: 'a directory named like a script, with its slash, is 404', path: '/dir.php/', want: NOT_FOUND },
  { name: 'a bare /.php is a dotfile: denied', path: '/.php', want: DENIED },
  // PATH_INFO: fastcgi_split_path_info ^(.+?\.php)(/.*)$
  { name: 'PATH_INFO is what follows the script', path: '/blog/post.php/extra/path', want: { php: '/blog/post.php', pathInfo: '/extra/path' } },
  { name: 'PATH_INFO of a lone slash', path: '/index.php/', want: { php: '/index.php', pathInfo: '/' } },
  { name: 'the shortest .php prefix is the script', path: '/blog/post.php/a.php/b', want: { php: '/blog/post.php', pathInfo: '/a.php/b' } },
  {
    name: 'the query goes with a PATH_INFO route',
    path: '/index.php/api/users',
    query: 'id=7',
    want: { php: '/index.php', pathInfo: '/api/users', query: 'id=7' },
  },
  { name: 'a newline in PATH_INFO (CVE-2019-11043) never reaches PHP', path: '/index.php/x\ny', want: NOT_FOUND },
  // dotfiles and /.well-known
  { name: '.env is denied', path: '/.env', want: DENIED },
  { name: 'a file in .git is denied', path: '/.git/config', want: DENIED },
  { name: 'a dotfile in a subdirectory is denied', path: '/dir/.hidden', want: DENIED },
  { name: 'a missing dotfile is denied, not sent to the front controller', path: '/.missing', want: DENIED },
  { name: '/.well-known/security.txt is served', path: '/.well-known/security.txt', want: { file: '.well-known/security.txt' } },
  { name: 'an ACME challenge is served', path: '/.well-known/acme-challenge/token', want: { file: '.well-known/acme-challenge/token' } },
  { name: 'a dotfile below /.well-known is still denied', path: '/.well-known/.htaccess', want: DENIED },
  { name: 'a name that only starts like .well-known is a dotfile', path: '/.well-knownx/a', want: DENIED },
  { name: 'only the top-level .well-known is public', path: '/sub/.well-known/x', want: DENIED },
  { name: 'a backslash is refused (..\\ tricks for Windows-born PHP code)', path: '/a\\..\\index.php', want: DENIED },
  // static.deny globs, for static files and PHP alike
  { name: 'a prefix glob denies a file under it', path: '/vendor/readme.txt', want: DENIED },
  { name: 'a prefix glob denies a PHP script under it', path: '/vendor/autoload.php', want: DENIED },
  { name: 'a prefix glob denies a missing path under it too', path: '/vendor/missing', want: DENIED },
  { name: 'a basename glob denies at the top', path: '/dump.sql', want: DENIED },
  { name: 'a basename glob denies in any directory', path: '/dir/backup.sql', want: DENIED },
  { name: 'a literal basename denies at the top', path: '/composer.json', want: DENIED },
  { name: 'a literal basename denies in any directory', path: '/dir/composer.json', want: DENIED },
  // PHP source under other extensions: never sent as text
  { name: 'x.PHP (upper case) is PHP source: denied', path: '/x.PHP', want: DENIED },
  { name: 'x.phtml is PHP source: denied', path: '/x.phtml', want: DENIED },
  { name: 'x.php5 is PHP source: denied', path: '/x.php5', want: DENIED },
  { name: 'x.phar is PHP source: denied', path: '/x.phar', want: DENIED },
  { name: 'x.phps is PHP source: denied', path: '/x.phps', want: DENIED },
  // symlinks (static.follow_symlinks: false)
  { name: 'a symlink inside the docroot to a file inside is served', path: '/in-link.txt', want: { file: 'in-link.txt' } },
  { name: 'a symlink to a file outside the docroot is denied', path: '/out-link.txt', want: DENIED },
  { name: 'a file under a directory symlink out of the docroot is denied', path: '/out-dir/secret.txt', want: DENIED },
  { name: 'the index of a directory symlink out of the docroot is denied', path: '/out-dir/', want: DENIED },
  { name: 'a PHP script reached through a directory symlink out of the docroot is denied, not run', path: '/out-dir/evil.php', want: DENIED },
  { name: 'a PHP script that is a symlink out of the docroot is denied, not run', path: '/out-script.php', want: DENIED },
  // pools: the URL asked for picks the pool, also when the front controller serves it
  { name: 'a path matching no pool pattern goes to the default pool', path: '/blog/post.php', want: { php: '/blog/post.php', pool: 'www' } },
  { name: 'a script under a pool pattern runs in that pool', path: '/admin/tool.php', want: { php: '/admin/tool.php', pool: 'admin' } },
  {
    name: 'a fallback to the front controller runs in the pool of the URL asked for',
    path: '/admin/reports',
    want: { php: '/index.php', pool: 'admin' },
  },
];

describe('router: the nginx front-controller recipe', () => {
  const router = routerFor(SITE_YAML);
  runTable(cases, () => router);

  test('a static route is remembered and the same answer comes back while the file is unchanged', () => {
    const first = router.resolve('/app.css', '');
    assert.equal(router.resolve('/app.css', ''), first);
  });
});

describe('router: try_files $uri $uri.php $uri/ =404 (clean URLs)', () => {
  const router = routerFor(`${SITE_YAML.replace('php:\n', 'php:\n  try_files: ["$uri", "$uri.php", "$uri/", "=404"]\n')}`);
  runTable(
    [
      { name: '$uri.php runs the script rather than sending its source', path: '/clean', want: { php: '/clean.php', pathInfo: '' } },
      { name: 'the query goes with the clean URL', path: '/clean', query: 'x=1', want: { php: '/clean.php', query: 'x=1' } },
      { name: 'a file still wins over $uri.php', path: '/app.css', want: { file: 'app.css' } },
      { name: 'a directory without its slash is still redirected', path: '/dir', want: { redirect: '/dir/' } },
      { name: 'nothing matches: the final =404', path: '/missing', want: NOT_FOUND },
      { name: 'a clean URL of a script under a denied prefix is denied', path: '/vendor/autoload', want: DENIED },
    ],
    () => router,
  );
});

describe('router: a fallback that falls back to itself', () => {
  const router = routerFor(SITE_YAML.replace('php:\n', 'php:\n  try_files: ["$uri", "/nowhere"]\n'));
  runTable(
    [
      { name: 'an internal redirect cycle ends in 500, as nginx after 10 redirects', path: '/missing', want: { status: 500 } },
      { name: 'an existing file is still served', path: '/app.css', want: { file: 'app.css' } },
    ],
    () => router,
  );
});

describe('router: static.follow_symlinks: true and deny_status: 403', () => {
  const router = routerFor(`${SITE_YAML}  follow_symlinks: true\n  deny_status: 403\n`);
  runTable(
    [
      { name: 'a symlink out of the docroot is served', path: '/out-link.txt', want: { file: 'out-link.txt' } },
      { name: 'a PHP script through a directory symlink out of the docroot runs', path: '/out-dir/evil.php', want: { php: '/out-dir/evil.php' } },
      { name: 'dotfiles answer the configured deny status', path: '/.env', want: { status: 403 } },
      { name: 'deny globs answer the configured deny status', path: '/dump.sql', want: { status: 403 } },
      { name: 'a missing script is still 404, not the deny status', path: '/missing.php', want: NOT_FOUND },
    ],
    () => router,
  );
});
