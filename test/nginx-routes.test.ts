/**
 * `phpgate import-nginx`: locations → `routes:` (docs/ROUTES.md). Each case is a small nginx site whose meaning the
 * old flattened keys lost (precedence, nesting, conditions, addresses, passwords), imported and checked as the
 * emitted object, with what fails closed and what the report says about it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { importNginx, type ImportOptions, type Warning } from '../nginx-compat/index.js';
import { toJsRegex, widenRegex } from '../nginx-compat/regex.js';
import { loadConfig } from '../config/load.js';

/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-member-access
   -- the imported config is read by path (cfg.routes[0].php) and the assertions check it */
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-routes-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

let n = 0;
interface Imported {
  readonly file: string;
  readonly cfg: Record<string, any>;
  readonly warnings: readonly Warning[];
  readonly yaml: string;
}

/** Imports `text` as a site file; `lines` joins an array with newlines. */
function imp(text: string | readonly string[], opts: ImportOptions = {}): Imported {
  const file = path.join(tmp, `site-${++n}.conf`);
  fs.writeFileSync(file, typeof text === 'string' ? text : `${text.join('\n')}\n`);
  const r = importNginx(file, opts);
  return { file, cfg: r.config as Record<string, any>, warnings: r.warnings, yaml: r.yaml };
}

function routesOf(s: Imported): Record<string, any>[] {
  return s.cfg.routes as Record<string, any>[];
}

/** What the report says at the first line holding `text` (notes and warnings, or one kind). */
function said(s: Imported, text: string, kind?: Warning['kind']): string[] {
  const lines = fs.readFileSync(s.file, 'utf8').split('\n');
  const line = lines.findIndex((l) => l.includes(text)) + 1;
  assert.ok(line > 0, `no line with ${text}`);
  return s.warnings.filter((w) => w.line === line && (kind === undefined || w.kind === kind)).map((w) => w.message);
}

const warned = (s: Imported, text: string): string => said(s, text, 'warning').join(' | ');
const noted = (s: Imported, text: string): string => said(s, text, 'note').join(' | ');

/** Loads the YAML (with a docroot that exists): what the importer writes, config/ takes. */
function loads(s: Imported): void {
  loadConfig({ text: s.yaml, file: 'routes.yaml', env: {}, overrides: { docroot: tmp } });
}

const PHP = ['fastcgi_pass unix:/run/php/php-fpm.sock;', 'include fastcgi.conf;'];

describe('routes: precedence and nesting as in nginx', () => {
  test('an allow-list of PHP entry points, then \\.php$ denied: only the listed scripts run (no global deny)', () => {
    const s = imp([
      'server {',
      '  root /srv/wp;',
      '  location = /index.php { ' + PHP.join(' ') + ' }',
      '  location = /wp-login.php { ' + PHP.join(' ') + ' }',
      '  location ~ \\.php$ { deny all; }',
      '  location / { try_files $uri $uri/ /index.php?$args; }',
      '}',
    ]);
    assert.deepEqual(s.cfg.routes, [
      { match: '= /index.php', php: true },
      { match: '= /wp-login.php', php: true },
      // PCRE's `$` also matches before a final newline: `\n?$` in JavaScript.
      { match: '~ \\.php\\n?$', deny: true },
      { match: '/', try_files: ['$uri', '$uri/', '/index.php?$args'] },
    ]);
    assert.equal(s.cfg.static, undefined, 'no static.deny: the exact routes win as in nginx');
    assert.deepEqual(
      s.warnings.filter((w) => w.kind === 'warning'),
      [],
    );
    loads(s);
  });

  test('a nested deny stays nested; nginx hands deny all and internal down to nested locations, so the routes say it', () => {
    const s = imp([
      'server {',
      '  root /srv/app;',
      '  location /admin/ {',
      '    location ~ \\.log$ { deny all; }',
      '  }',
      '  location /private/ {',
      '    deny all;',
      '    location ~ \\.pdf$ { expires 1d; }',
      '    location /private/open/ { allow all; }',
      '  }',
      '  location /internal/ {',
      '    internal;',
      '    location ~ \\.txt$ { }',
      '  }',
      '}',
    ]);
    const [admin, priv, internal] = s.cfg.routes as Record<string, any>[];
    assert.deepEqual(admin, { match: '/admin/', routes: [{ match: '~ \\.log\\n?$', deny: true }] });
    assert.deepEqual(priv, {
      match: '/private/',
      deny: true,
      routes: [{ match: '~ \\.pdf\\n?$', deny: true, expires: '1d' }, { match: '/private/open/' }],
    });
    assert.deepEqual(internal, { match: '/internal/', internal: true, routes: [{ match: '~ \\.txt\\n?$', internal: true }] });
    assert.equal(s.cfg.static, undefined);
    assert.deepEqual(routesOf(s).at(-1), { match: '/' }, 'no location /: route / for the paths no location takes');
  });

  test('^~ keeps its meaning (the longest ^~ prefix stops the regex search)', () => {
    const s = imp(['server {', '  root /srv/s;', '  location ^~ /static/ { expires 7d; }', '  location ~* \\.(png|jpe?g)$ { expires 1h; }', '}']);
    assert.deepEqual(routesOf(s).slice(0, 2), [
      { match: '^~ /static/', expires: '7d' },
      { match: '~* \\.(png|jpe?g)\\n?$', expires: '1h' },
    ]);
  });

  test('lookbehinds and other JavaScript-compatible regexes are kept as they are (the old globs dropped them)', () => {
    const s = imp(['server {', '  root /srv/l;', '  location ~ (?<!/ok)/secret\\d+\\.txt$ { return 404; }', '}']);
    assert.deepEqual(s.cfg.routes[0], { match: '~ (?<!/ok)/secret\\d+\\.txt\\n?$', return: 404 });
    assert.equal(warned(s, 'location ~'), '');
  });
});

describe('routes: regexes JavaScript cannot take exactly fail closed', () => {
  test('PCRE spellings with the same meaning are rewritten, and say so: (?P<name>…), \\A, \\z', () => {
    const s = imp(['server {', '  root /srv/p;', '  location ~ \\A/(?P<slug>[a-z]+)\\.html\\z { expires 1h; }', '}']);
    assert.deepEqual(s.cfg.routes[0], { match: '~ ^/(?<slug>[a-z]+)\\.html$', expires: '1h' });
    assert.match(noted(s, 'location ~'), /the same regex in JavaScript's spelling/);
  });

  test('a restricting location: a route refusing a widened regex (atomic group → plain group); a granting one: dropped', () => {
    // \d* before an atomic group starting with an optional part: PCRE2 10.42 makes \d* possessive, JavaScript cannot.
    const s = imp([
      'server {',
      '  root /srv/w;',
      '  location ~ ^/x\\d*(?>\\d?y)z { allow 10.0.0.0/8; deny all; }',
      '  location ~ ^/serve\\d*(?>\\d?y)z { root /srv/other; }',
      '  location ~ ^/gone(*UTF)/ { return 410; }',
      '  location ~ ^/atomic(?>yy|y)z { allow 10.0.0.0/8; deny all; }',
      '}',
    ]);
    assert.deepEqual(routesOf(s).slice(0, 3), [
      { match: '~ ^/x\\d*(?:\\d?y)z', deny: true },
      { match: '~ ^/gone', deny: 410 },
      // An atomic group JavaScript can take exactly (a lookahead holding a group, then its backreference) is kept.
      { match: '~ ^/atomic(?=(yy|y))\\1z', access: [{ allow: '10.0.0.0/8' }, { deny: 'all' }] },
    ]);
    assert.match(
      warned(s, '(?>\\d?y)z { allow'),
      /^failing closed .*this location restricts, so its route refuses \(403\) its regex as ~ \^\/x\\d\*\(\?:\\d\?y\)z/,
    );
    assert.equal(warned(s, 'location ~ ^/atomic'), '');
    assert.match(warned(s, 'location ~ ^/serve'), /dropped, its requests go to the routes nginx would choose without it/);
    assert.match(warned(s, 'gone'), /refuses \(410\) its regex widened to ~ \^\/gone,/);
  });

  test('a nested location under a restricting parent restricts too: an inexpressible one refuses rather than falling elsewhere', () => {
    const s = imp([
      'server {',
      '  root /srv/n;',
      '  location /admin/ {',
      '    auth_basic "Admin";',
      '    auth_basic_user_file /etc/nginx/.htpasswd;',
      '    location ~ \\.php\\d*(?>\\d?x)$ { ' + PHP.join(' ') + ' }',
      '  }',
      '  location ~ \\.php$ { ' + PHP.join(' ') + ' }',
      '}',
    ]);
    assert.deepEqual(s.cfg.routes[0], {
      match: '/admin/',
      auth_basic: { realm: 'Admin', user_file: '/etc/nginx/.htpasswd' },
      routes: [{ match: '~ \\.php\\d*(?:\\d?x)\\n?$', deny: true }],
    });
  });

  test('toJsRegex and widenRegex: exact where the meaning is the same, supersets otherwise', () => {
    assert.deepEqual(toJsRegex('^/a b$', false), { source: '^/a\\x20b\\n?$', caseless: false, notes: [] });
    assert.ok('reason' in toJsRegex('\\d*(?>\\d?a)', false));
    // An atomic group that adds a JavaScript group before a PCRE one: $1… would name other groups.
    assert.match((toJsRegex('(?>yy|y)(z)', false) as { reason: string }).reason, /numbers capture groups differently/);
    assert.deepEqual(widenRegex('\\Qa.b\\E$', false).regex.source, 'a\\.b\\n?$');
    assert.equal(widenRegex('\\Qa.b\\E$', false).exact, true);
    assert.equal(widenRegex('(?i)^/admin', false).regex.caseless, true);
    assert.equal(widenRegex('(?i)^/admin', false).exact, true);
    assert.equal(widenRegex('^/a(?i)b', false).exact, false);
    assert.equal(widenRegex('[[:alpha:]]+\\.txt', false).regex.source, '[A-Za-z]+\\.txt');
    assert.equal(widenRegex('a++b', false).exact, false);
    assert.equal(widenRegex('a++b', false).regex.source, 'a+b');
    // Nothing left to rewrite into JavaScript: the fixed start, the fixed end, else everything.
    assert.equal(widenRegex('^/api/(?R)', false).regex.source, '^/api/');
    assert.equal(widenRegex('(?R)x\\.bak$', false).regex.source, 'x\\.bak\\n?$');
    assert.equal(widenRegex('(?R)', false).regex.source, '^');
  });
});

describe('routes: PHP', () => {
  test('Laravel: front controller only, no PATH_INFO without a split; Debian snippet: split and the script check', () => {
    const s = imp([
      'server {',
      '  root /srv/laravel/public;',
      '  location / { try_files $uri $uri/ /index.php?$query_string; }',
      '  location ~ ^/index\\.php(/|$) {',
      '    fastcgi_pass unix:/run/php/php8.3-fpm.sock;',
      '    fastcgi_param SCRIPT_FILENAME $realpath_root$fastcgi_script_name;',
      '    include fastcgi_params;',
      '  }',
      '  location ~ ^/legacy/.+\\.php(/|$) {',
      '    include snippets/fastcgi-php.conf;',
      '    fastcgi_pass unix:/run/php/php8.3-fpm.sock;',
      '  }',
      '  location ~ \\.php$ { return 404; }',
      '}',
    ]);
    assert.deepEqual(routesOf(s).slice(1), [
      { match: '~ ^/index\\.php(/|(?=\\n?$))', php: true },
      // fastcgi-php.conf as nginx runs it: set $path_info (rewrite phase), then try_files makes a found script the
      // URI (emptying $fastcgi_path_info), and PATH_INFO is the $path_info set before.
      {
        match: '~ ^/legacy/[^\\n]+\\.php(/|(?=\\n?$))',
        rewrite: [{ set: '$path_info $fastcgi_path_info' }],
        try_files: ['$fastcgi_script_name', '=404'],
        php: { split_path_info: '^([^\\n]+?\\.php)(/[^\\n]*)\\n?$', path_info: '$path_info' },
      },
      { match: '~ \\.php\\n?$', return: 404 },
    ]);
    assert.match(noted(s, 'snippets/fastcgi-php.conf'), /Debian's PHP snippet: php\.split_path_info/);
    loads(s);
  });

  test('a fixed front controller (SCRIPT_FILENAME $document_root/index.php or an absolute path under the root), a second pool', () => {
    const s = imp([
      'upstream heavy { server unix:/run/php/heavy.sock; }',
      'server {',
      '  root /srv/d/web;',
      '  location ~ \\.php$ { ' + PHP.join(' ') + ' }',
      '  location /api/ { fastcgi_pass heavy; include fastcgi_params; fastcgi_param SCRIPT_FILENAME /srv/d/web/api.php; }',
      '  location /odd/ { fastcgi_pass unix:/run/php/php-fpm.sock; fastcgi_param SCRIPT_FILENAME /elsewhere/x.php; }',
      '}',
    ]);
    assert.deepEqual(s.cfg.pools, [{ name: 'heavy' }]);
    assert.deepEqual(routesOf(s).slice(0, 3), [
      { match: '~ \\.php\\n?$', php: true },
      { match: '/api/', php: { pool: 'heavy', script: '/api.php' } },
      { match: '/odd/', return: 404 },
    ]);
    assert.match(warned(s, 'location /odd/'), /failing closed: the route answers 404.*SCRIPT_FILENAME \/elsewhere\/x\.php/);
  });

  test('try_files $uri =404 in a PHP location with a split: kept as nginx runs it, and no PATH_INFO reaches PHP (no fastcgi_param says so)', () => {
    const s = imp([
      'server {',
      '  root /srv/t;',
      '  location ~ \\.php(/|$) { fastcgi_split_path_info ^(.+\\.php)(/.+)$; try_files $uri =404; ' + PHP.join(' ') + ' }',
      '}',
    ]);
    // A path with PATH_INFO is no file: 404 by try_files; a script found is the URI, which the split leaves whole.
    assert.deepEqual(s.cfg.routes[0], {
      match: '~ \\.php(/|(?=\\n?$))',
      try_files: ['$uri', '=404'],
      php: { split_path_info: '^([^\\n]+\\.php)(/[^\\n]+)\\n?$', path_info: false },
    });
    assert.match(noted(s, 'try_files $uri =404'), /\| try_files: \[\$uri, =404\] \|/);
    loads(s);
  });

  test("fastcgi_param HTTP_HOST pins a header nginx passes; phpgate passes the request's own: a warning with the consequence", () => {
    const s = imp(['server {', '  root /srv/h;', '  location ~ \\.php$ {', ...PHP, '    fastcgi_param HTTP_HOST www.example.com;', '  }', '}']);
    assert.match(
      warned(s, 'HTTP_HOST'),
      /PHP sees the request's own Host header in HTTP_HOST, not "www\.example\.com" .*uses the Host the client sent/,
    );
    assert.equal(s.cfg.php.env, undefined);
  });
});

describe('routes: rewrite steps, variables and the cache', () => {
  test('the WordPress skip_cache recipe: server-level set/if → top-level rewrite steps; the bypass reads $skip_cache', () => {
    const s = imp([
      'fastcgi_cache_path /var/cache/wp keys_zone=WP:10m inactive=60m;',
      'server {',
      '  root /srv/wp;',
      '  set $skip_cache 0;',
      '  if ($request_method = POST) { set $skip_cache 1; }',
      '  if ($query_string != "") { set $skip_cache 1; }',
      '  if ($request_uri ~* "/wp-admin/|/xmlrpc.php|wp-.*.php|/feed/|index.php|sitemap(_index)?.xml") { set $skip_cache 1; }',
      '  if ($http_cookie ~* "comment_author|wordpress_[a-f0-9]+|wp-postpass|wordpress_no_cache|wordpress_logged_in") { set $skip_cache 1; }',
      '  location / { try_files $uri $uri/ /index.php?$args; }',
      '  location ~ \\.php$ {',
      ...PHP,
      '    fastcgi_cache WP;',
      '    fastcgi_cache_valid 200 60m;',
      '    fastcgi_cache_bypass $skip_cache;',
      '    fastcgi_no_cache $skip_cache;',
      '  }',
      '}',
    ]);
    assert.deepEqual(s.cfg.rewrite, [
      { set: '$skip_cache 0' },
      { if: '$request_method = POST', then: [{ set: '$skip_cache 1' }] },
      { if: '$query_string != ""', then: [{ set: '$skip_cache 1' }] },
      // Raw request values are matched byte for byte: `.` is any byte but a newline.
      {
        if: '$request_uri ~* /wp-admin/|/xmlrpc[^\\n]php|wp-[^\\n]*[^\\n]php|/feed/|index[^\\n]php|sitemap(_index)?[^\\n]xml',
        then: [{ set: '$skip_cache 1' }],
      },
      {
        if: '$http_cookie ~* comment_author|wordpress_[0-9a-f]+|wp-postpass|wordpress_no_cache|wordpress_logged_in',
        then: [{ set: '$skip_cache 1' }],
      },
    ]);
    assert.deepEqual(s.cfg.routes[1], {
      match: '~ \\.php\\n?$',
      php: true,
      cache: { ttl_s: 3600, statuses: [200], stale_s: 0, bypass: ['$skip_cache'], no_store: ['$skip_cache'] },
    });
    assert.deepEqual(
      s.warnings.filter((w) => w.kind === 'warning'),
      [],
    );
    loads(s);
  });

  test('a cache bypass on a variable phpgate cannot evaluate: that route is not cached (failing closed)', () => {
    const s = imp([
      'fastcgi_cache_path /var/cache/x keys_zone=X:10m;',
      'server {',
      '  root /srv/x;',
      '  set $nocache $request_id;',
      '  location ~ \\.php$ { ' + PHP.join(' ') + ' fastcgi_cache X; fastcgi_cache_valid 200 1m; fastcgi_cache_bypass $nocache; }',
      '}',
    ]);
    assert.equal(s.cfg.routes[0].cache, undefined);
    assert.match(warned(s, 'set $nocache'), /\$nocache is set from \$request_id/);
    assert.match(warned(s, 'location ~'), /failing closed: not cached/);
  });

  test('a map over a request header with constant values → top-level steps with its precedence (exact, regexes in order, default)', () => {
    const s = imp([
      'map $http_user_agent $mobile {',
      '  default 0;',
      '  ~*android 1;',
      '  ~*iphone|ipad 2;',
      '  "Exact Agent" 3;',
      '  ~*bad.bot 4;',
      '}',
      'map $uri $unused_dynamic { default a; /x b; }',
      'server {',
      '  root /srv/m;',
      '  location / { add_header X-Mobile $mobile; add_header X-Dyn $unused_dynamic; }',
      '}',
    ]);
    assert.deepEqual(s.cfg.rewrite, [
      { set: '$mobile 0' },
      // A header is matched byte for byte: `.` is any byte but a newline.
      { if: '$http_user_agent ~* bad[^\\n]bot', then: [{ set: '$mobile 4' }] },
      { if: '$http_user_agent ~* iphone|ipad', then: [{ set: '$mobile 2' }] },
      { if: '$http_user_agent ~* android', then: [{ set: '$mobile 1' }] },
      { if: '$http_user_agent ~* ^Exact\\x20Agent$', then: [{ set: '$mobile 3' }] },
    ]);
    assert.deepEqual(s.cfg.routes[0].add_header, [{ name: 'X-Mobile', value: '$mobile' }]);
    assert.match(warned(s, 'X-Dyn'), /\$unused_dynamic is map at .*: \$uri can change during the request/);
  });

  test("rewrite, return and if in a location → the route's steps; a rewrite regex JavaScript cannot take refuses what it would rewrite", () => {
    const s = imp([
      'server {',
      '  root /srv/r;',
      '  location /old/ {',
      '    rewrite ^/old/(.*)$ /new/$1 permanent;',
      '    if ($arg_debug) { return 403; }',
      '    rewrite ^/old/\\d*(?>\\d?x)(.*)$ /y/$1 last;',
      '  }',
      '  location = /health { return 200 "ok"; }',
      '  location /go { return https://example.com$request_uri; }',
      '}',
    ]);
    assert.deepEqual(routesOf(s).slice(0, 3), [
      {
        match: '/old/',
        rewrite: [
          { rewrite: '^/old/([^\\n]*)\\n?$ /new/$1 permanent' },
          { if: '$arg_debug', then: [{ return: '403' }] },
          // \d* before an atomic group starting with an optional part: PCRE2 10.42's quirk, which JavaScript cannot follow.
          { if: '$uri ~ ^/old/\\d*(?:\\d?x)([^\\n]*)\\n?$', then: [{ return: '403' }] },
        ],
      },
      { match: '= /health', return: '200 ok' },
      { match: '/go', return: '302 https://example.com$request_uri' },
    ]);
    assert.match(warned(s, '(?>\\d?x)'), /failing closed, the requests it would rewrite are refused with 403/);
  });

  test('an if whose condition cannot be evaluated: a refusal applies to every request (or a widened match); other bodies are dropped', () => {
    const s = imp([
      'server {',
      '  root /srv/i;',
      '  if ($bad_bot) { return 403; }',
      '  if ($http_user_agent ~* "crawler.\\d*(?>\\d?bot)") { return 403; }',
      '  if ($geo_country = FR) { rewrite ^ /fr/ last; }',
      '  location / { }',
      '}',
    ]);
    // Widened for the header's bytes: its `.` is any byte but a newline, as in nginx (in a path, between ASCII
    // characters, `.` can only be an ASCII one — narrower, which a refusal must not be).
    assert.deepEqual(s.cfg.rewrite, [{ return: '403' }, { if: '$http_user_agent ~* crawler[^\\n]\\d*(?:\\d?bot)', then: [{ return: '403' }] }]);
    assert.match(warned(s, '$bad_bot'), /failing closed: \$bad_bot is not a variable phpgate has; what it does applies to every request here/);
    assert.match(warned(s, '$geo_country'), /not translated: .*nothing inside it is imported/);
  });

  test('add_header with variables: known ones kept for the route to evaluate, unknown ones dropped with a warning', () => {
    const s = imp([
      'server {',
      '  root /srv/v;',
      '  set $tier gold;',
      '  location / { add_header X-Tier $tier always; add_header X-Req $request_id; add_header X-Uri "$scheme://$host$request_uri"; }',
      '}',
    ]);
    assert.deepEqual(s.cfg.routes[0].add_header, [
      { name: 'X-Tier', value: '$tier', always: true },
      { name: 'X-Uri', value: '$scheme://$host$request_uri' },
    ]);
    assert.match(warned(s, 'X-Req'), /\$request_id is not a variable phpgate has/);
  });

  test('try_files … @named: the named location is a named route, reached with the URI unchanged (rewrite, return, proxy alike)', () => {
    const s = imp([
      'server {',
      '  root /srv/d;',
      '  location / { try_files $uri $uri/ @drupal; }',
      '  location /img/ { try_files $uri @img; }',
      '  location /app/ { try_files $uri @node; }',
      '  location @drupal { rewrite ^/(.*)$ /index.php?q=$1 last; }',
      '  location @img { return 404; }',
      '  location @node { proxy_pass http://127.0.0.1:3000; }',
      '}',
    ]);
    assert.deepEqual(s.cfg.routes, [
      { match: '/', try_files: ['$uri', '$uri/', '@drupal'] },
      { match: '/img/', try_files: ['$uri', '@img'] },
      { match: '/app/', try_files: ['$uri', '@node'] },
      { match: '@drupal', rewrite: [{ rewrite: '^/([^\\n]*)\\n?$ /index.php?q=$1 last' }] },
      { match: '@img', return: 404 },
      // proxy_pass without a URI passes the request's own; Host is the target's (nginx's $proxy_host).
      { match: '@node', proxy: { targets: ['http://127.0.0.1:3000'], host_header: 'target' } },
    ]);
    for (const text of ['location /img/', 'location /app/', 'location @img', 'location @node']) assert.equal(warned(s, text), '', text);
    // The one warning: dotfiles reach @drupal's rewrite under nginx, phpgate refuses them before any route.
    assert.match(warned(s, 'location @drupal'), /^differs for dotfiles/);
    loads(s);
  });
});

describe('routes: addresses, passwords, methods', () => {
  test("allow/deny lists → access in order; a bare deny all → deny; the server's list on every top-level route; allow all undoes an inherited list", () => {
    const s = imp([
      'server {',
      '  root /srv/a;',
      '  allow 10.0.0.0/8;',
      '  deny all;',
      '  location /public/ { allow all; }',
      '  location /stats/ {',
      '    allow 192.168.1.0/24;',
      '    allow ::1;',
      '    deny all;',
      '    allow 1.2.3.4;',
      '    location /stats/open/ { allow all; }',
      '  }',
      '  location /nobody/ { deny all; }',
      '}',
    ]);
    assert.deepEqual(s.cfg.routes, [
      { match: '/public/' },
      {
        match: '/stats/',
        access: [{ allow: '192.168.1.0/24' }, { allow: '::1' }, { deny: 'all' }],
        routes: [{ match: '/stats/open/', access: [{ allow: 'all' }] }],
      },
      { match: '/nobody/', deny: true },
      { match: '/', access: [{ allow: '10.0.0.0/8' }, { deny: 'all' }] },
    ]);
    assert.match(noted(s, 'allow 10.0.0.0/8'), /on every route \(nginx's locations inherit it\)/);
    assert.doesNotMatch(s.yaml, /[&*]a\d/, 'each route written out, no YAML aliases');
  });

  test('an unconditional return answers before the address rules: the route returns, its nested routes keep the rules', () => {
    const s = imp(['server {', '  root /srv/r;', '  location /x/ {', '    deny all;', '    return 404;', '    location /x/y/ { }', '  }', '}']);
    assert.deepEqual(s.cfg.routes[0], { match: '/x/', return: 404, routes: [{ match: '/x/y/', deny: true }] });
    assert.match(noted(s, 'deny all'), /never reached here, return answers first/);
  });

  test("auth_basic: the user file resolved against the prefix; the server's on every top-level route; off where nginx turns it off", () => {
    const prefix = path.join(tmp, 'prefix');
    const s = imp(
      [
        'server {',
        '  root /srv/b;',
        '  auth_basic "Staff";',
        '  auth_basic_user_file conf.d/htpasswd;',
        '  location /open/ { auth_basic off; }',
        '  location /ops/ {',
        '    auth_basic "Ops";',
        '    location /ops/pub/ { auth_basic off; }',
        '  }',
        '  location /tmpl/ { auth_basic_user_file /etc/$host.htpasswd; }',
        '}',
      ],
      { prefix },
    );
    const file = path.join(prefix, 'conf.d/htpasswd');
    assert.deepEqual(s.cfg.routes, [
      { match: '/open/' },
      {
        match: '/ops/',
        auth_basic: { realm: 'Ops', user_file: file },
        routes: [{ match: '/ops/pub/' }],
      },
      { match: '/tmpl/', deny: true },
      { match: '/', auth_basic: { realm: 'Staff', user_file: file } },
    ]);
    assert.match(said(s, 'location /ops/pub/').join(' | '), /failing closed: the enclosing location's auth_basic still applies here/);
    assert.match(said(s, '/tmpl/').join(' | '), /failing closed: auth_basic_user_file \/etc\/\$host\.htpasswd cannot be read at import/);
  });

  test('auth_basic without a user file asks for nothing under nginx: no auth_basic; satisfy any is a warning (both are required)', () => {
    const s = imp([
      'server {',
      '  root /srv/c;',
      '  location /a/ { auth_basic "x"; }',
      '  location /b/ { satisfy any; allow 10.0.0.1; deny all; }',
      '}',
    ]);
    assert.deepEqual(routesOf(s).slice(0, 2), [{ match: '/a/' }, { match: '/b/', access: [{ allow: '10.0.0.1' }, { deny: 'all' }] }]);
    assert.match(warned(s, 'satisfy any'), /failing closed: phpgate requires the address rules and auth_basic both/);
  });

  test("limit_except: a method check among the route's steps; a body other than deny all refuses the other methods for everyone", () => {
    const s = imp([
      'server {',
      '  root /srv/l;',
      '  location /ro/ { limit_except GET { deny all; } }',
      '  location /lan/ { limit_except GET POST { allow 10.0.0.0/8; deny all; } }',
      '}',
    ]);
    assert.deepEqual(routesOf(s).slice(0, 2), [
      { match: '/ro/', rewrite: [{ if: '$request_method !~ ^(GET|HEAD)$', then: [{ return: '403' }] }] },
      { match: '/lan/', rewrite: [{ if: '$request_method !~ ^(GET|HEAD|POST)$', then: [{ return: '403' }] }] },
    ]);
    assert.match(warned(s, 'limit_except GET POST'), /failing closed: phpgate refuses methods other than GET, HEAD, POST for every client/);
  });
});

describe('routes: files', () => {
  test("location-level index and root; an alias ending with the location's path is a root; variables in root answer 404", () => {
    const s = imp([
      'server {',
      '  root /srv/site;',
      '  index index.php;',
      '  location /docs/ { index README.html index.htm; }',
      '  location /assets/ { alias /srv/static/assets/; }',
      '  location /media/ { alias /data/files/; }',
      '  location /other/ { root /srv/other; }',
      '  location /sites/ { root /srv/$host; }',
      '}',
    ]);
    assert.deepEqual(routesOf(s).slice(0, 5), [
      { match: '/docs/', index: ['README.html', 'index.htm'] },
      { match: '/assets/', root: '/srv/static' },
      { match: '/media/', alias: '/data/files/' },
      { match: '/other/', root: '/srv/other' },
      { match: '/sites/', return: 404 },
    ]);
    assert.deepEqual(s.cfg.php.index, ['index.php']);
  });

  test("roots and a fixed script inside the server's root move with --docroot (ImportOptions.root)", () => {
    const s = imp(
      [
        'server {',
        '  root /srv/site;',
        '  location /app/ { root /srv/site/public; }',
        '  location /api/ { fastcgi_pass unix:/run/php.sock; fastcgi_param SCRIPT_FILENAME /srv/site/api.php; }',
        '}',
      ],
      { root: '/opt/relocated' },
    );
    assert.deepEqual(routesOf(s).slice(0, 2), [
      { match: '/app/', root: '/opt/relocated/public' },
      { match: '/api/', php: { script: '/api.php' } },
    ]);
  });

  test('a server without location / gets route / with its try_files (nginx applies it when no location matches)', () => {
    const s = imp(['server {', '  root /srv/x;', '  try_files $uri /index.php?$args;', '  location ~ \\.php$ { ' + PHP.join(' ') + ' }', '}']);
    assert.deepEqual(s.cfg.routes, [
      { match: '~ \\.php\\n?$', php: true },
      { match: '/', try_files: ['$uri', '/index.php?$args'] },
    ]);
    assert.equal(s.cfg.php.try_files, undefined);
  });

  test('a server without locations keeps the global keys (php.try_files), no routes', () => {
    const s = imp(['server {', '  root /srv/plain;', '  try_files $uri /index.php?$query_string;', '}']);
    assert.equal(s.cfg.routes, undefined);
    assert.deepEqual(s.cfg.php.try_files, ['$uri', '/index.php?$query_string']);
  });
});

describe('includes: relative to the including file, then the prefix', () => {
  test('ImportOptions.prefix is where a relative include not beside the file is found', () => {
    const prefix = path.join(tmp, 'etc-nginx');
    fs.mkdirSync(path.join(prefix, 'snippets'), { recursive: true });
    fs.writeFileSync(path.join(prefix, 'snippets/deny.conf'), 'location ~ \\.bak$ { deny all; }\n');
    const s = imp(['server {', '  root /srv/i;', '  include snippets/deny.conf;', '}'], { prefix });
    assert.deepEqual(s.cfg.routes[0], { match: '~ \\.bak\\n?$', deny: true });
    assert.throws(() => imp(['server {', '  include snippets/deny.conf;', '}'], { prefix: path.join(tmp, 'none') }), /no such file/);
  });
});
