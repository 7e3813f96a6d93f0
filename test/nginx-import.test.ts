/**
 * `phpgate import-nginx`: nginx's grammar (tokens, includes), the translation of real-world site configs
 * (WordPress, Laravel, Symfony, Drupal, a TLS site with a redirect server, the edge, a microcaching shop) into gateway.yaml keys and a report
 * with file:line for every directive not translated, the YAML loading with loadConfig, the imported configs
 * serving a small app through the real gateway, and the command line.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, parseDocument } from 'yaml';
import { ConfigError } from '../config/errors.js';
import { ErrorCode, PhpgateError } from '../core/errors.js';
import { loadConfig } from '../config/load.js';
import {
  importNginx,
  NginxImportError,
  NginxSyntaxError,
  parseNginx,
  parseNginxFile,
  tokenize,
  TokenKind,
  type Directive,
  type Warning,
} from '../nginx-compat/index.js';
import { regexToGlobs } from '../nginx-compat/regex-glob.js';
import { headerAssignment } from '../nginx-compat/headers.js';
import { rateKey } from '../nginx-compat/limits.js';
import { expiresToCacheControl, parseSize, parseTime } from '../nginx-compat/units.js';
import { request, startGateway } from './support/gateway.js';

/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-call,
   @typescript-eslint/no-unsafe-return -- the imported YAML is read by path (cfg.routes[0].cache.ttl_s) and the assertions check it */
const root = fileURLToPath(new URL('..', import.meta.url));
const fixtures = path.join(root, 'test/fixtures/nginx');
const fixture = (name: string): string => path.join(fixtures, name);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-nginx-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function write(rel: string, text: string): string {
  const file = path.join(tmp, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return file;
}

/** The 1-based line of the `nth` line of a fixture holding `text`: tests name lines by content, not number. */
function lineOf(file: string, text: string, nth = 1): number {
  let seen = 0;
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  for (const [i, l] of lines.entries()) {
    if (l.includes(text) && ++seen === nth) return i + 1;
  }
  throw new Error(`${file} has no line ${nth} with ${text}`);
}

function warningsAt(ws: readonly Warning[], file: string, line: number, kind: Warning['kind'] = 'warning'): Warning[] {
  return ws.filter((w) => w.file === file && w.line === line && w.kind === kind);
}

function assertWarned(ws: readonly Warning[], file: string, text: string, directive: string, nth = 1): void {
  const line = lineOf(file, text, nth);
  const found = warningsAt(ws, file, line).filter((w) => w.directive.startsWith(directive));
  assert.ok(
    found.length > 0,
    `a warning for ${directive} at ${path.basename(file)}:${line}; got ${JSON.stringify(ws.filter((w) => w.line === line))}`,
  );
}

/** The notes on the `nth` line holding `text`, joined: what the report says about a translated directive. */
function notesAt(ws: readonly Warning[], file: string, text: string, nth = 1): string {
  return warningsAt(ws, file, lineOf(file, text, nth), 'note')
    .map((w) => w.message)
    .join(' | ');
}

function syntaxError(fn: () => unknown): NginxSyntaxError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof NginxSyntaxError, `an NginxSyntaxError, got ${String(err)}`);
    assert.ok(err instanceof PhpgateError);
    assert.equal(err.code, ErrorCode.ConfigInvalid);
    return err;
  }
  assert.fail('expected an NginxSyntaxError');
}

/** A small PHP app: the front controller answers "app" (or its pid, or an env var), plus files to refuse. */
function makeDocroot(name: string): string {
  const dir = path.join(tmp, name);
  const files: Record<string, string> = {
    'index.php':
      "<?php\nif (isset($_GET['pid'])) { echo getmypid(); return; }\nif (isset($_GET['env'])) { echo getenv($_GET['env']); return; }\necho 'app';\n",
    'other.php': "<?php echo 'other script';\n",
    'style.css': 'body { color: teal }\n',
    '.htaccess': 'Deny from all\n',
    '.env': 'APP_KEY=secret\n',
    'dump.sql': 'DROP TABLE users;\n',
    'sites/default/private/secret.txt': 'private file\n',
    'x.y/evil.php': "<?php echo 'evil';\n",
  };
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  }
  return dir;
}

/** The imported YAML with one worker per pool: the same configuration, bounded for a test run. */
function oneWorkerPerPool(yamlText: string): string {
  const doc = parseDocument(yamlText);
  doc.setIn(['php', 'worker_count'], 1);
  const pools = doc.getIn(['pools']) as { items?: unknown[] } | undefined;
  for (let i = 0; i < (pools?.items?.length ?? 0); i++) doc.setIn(['pools', i, 'worker_count'], 1);
  return doc.toString();
}

/** An inline site, imported with a real docroot so its YAML can be loaded. */
function site(name: string, text: string): { file: string; yaml: string; cfg: Record<string, any>; warnings: readonly Warning[] } {
  const file = write(`edge/${name}.conf`, text);
  const r = importNginx(file, { root: makeDocroot(`edge-${name}`) });
  return { file, yaml: r.yaml, cfg: parseYaml(r.yaml) as Record<string, any>, warnings: r.warnings };
}

const load = (yaml: string): ReturnType<typeof loadConfig> => loadConfig({ text: yaml, file: 'edge.yaml', env: {} });

// ---------------------------------------------------------------------------------------------------------

describe('nginx tokenizer', () => {
  test('words, quoted strings, punctuation and line numbers', () => {
    const toks = tokenize('server {\n  listen 80;\n  add_header X-A "a b" always;\n}\n', 'a.conf');
    assert.deepEqual(
      toks.map((t) => [t.kind, t.text, t.line]),
      [
        [TokenKind.Word, 'server', 1],
        [TokenKind.BlockStart, '{', 1],
        [TokenKind.Word, 'listen', 2],
        [TokenKind.Word, '80', 2],
        [TokenKind.End, ';', 2],
        [TokenKind.Word, 'add_header', 3],
        [TokenKind.Word, 'X-A', 3],
        [TokenKind.Word, 'a b', 3],
        [TokenKind.Word, 'always', 3],
        [TokenKind.End, ';', 3],
        [TokenKind.BlockEnd, '}', 4],
      ],
    );
    assert.ok(toks.every((t) => t.file === 'a.conf'));
    assert.equal(toks.find((t) => t.text === 'a b')?.quoted, true);
  });

  test('backslash escapes: \\" \\\' \\\\ lose the backslash, \\n is a newline, regex escapes are kept', () => {
    const toks = tokenize(`a "say \\"hi\\"" 'it\\'s' "back\\\\slash" "x\\ny" ~ \\.php$;`, 'e.conf');
    assert.deepEqual(
      toks.filter((t) => t.kind === TokenKind.Word).map((t) => t.text),
      ['a', 'say "hi"', "it's", 'back\\slash', 'x\ny', '~', '\\.php$'],
    );
  });

  test('a backslash keeps ";" and "{" inside a word, and stays in the text (as nginx)', () => {
    const toks = tokenize('set $a x\\;y\\{z;', 'e.conf');
    assert.deepEqual(
      toks.map((t) => t.text),
      ['set', '$a', 'x\\;y\\{z', ';'],
    );
  });

  test('# comments run to the end of the line, only at the start of a token', () => {
    const toks = tokenize('# heading\nlisten 80; # trailing ; { }\nreturn 200 a#b;\n', 'c.conf');
    assert.deepEqual(
      toks.map((t) => [t.text, t.line]),
      [
        ['listen', 2],
        ['80', 2],
        [';', 2],
        ['return', 3],
        ['200', 3],
        ['a#b', 3],
        [';', 3],
      ],
    );
  });

  test('$var and ${var} stay as text; a `}` inside a word does not close a block', () => {
    const toks = tokenize('root /srv/${host}/www$uri;', 'v.conf');
    assert.deepEqual(
      toks.map((t) => t.text),
      ['root', '/srv/${host}/www$uri', ';'],
    );
  });

  test('a quoted string spanning lines keeps its start line; the next token has the right line', () => {
    const toks = tokenize('add_header X "a\nb";\nlisten 80;', 'm.conf');
    assert.equal(toks.find((t) => t.text === 'a\nb')?.line, 1);
    assert.equal(toks.find((t) => t.text === 'listen')?.line, 3);
  });

  test('an unterminated quote is an NginxSyntaxError at the line where the quote opened', () => {
    const err = syntaxError(() => tokenize('listen 80;\nadd_header X "never closed;\n\n', 'q.conf'));
    assert.match(err.message, /^q\.conf:2: unterminated double-quoted string/);
    assert.equal(err.file, 'q.conf');
    assert.equal(err.line, 2);
  });

  test('an if condition: a ")" may follow a quoted string and starts the next word', () => {
    const toks = tokenize("if ($host = 'a.example') { return 404; }", 'i.conf');
    assert.deepEqual(
      toks.map((t) => t.text),
      ['if', '($host', '=', 'a.example', ')', '{', 'return', '404', ';', '}'],
    );
  });

  test('a quoted string glued to the next word is refused', () => {
    assert.match(syntaxError(() => tokenize('a "b"c;', 'g.conf')).message, /^g\.conf:1: unexpected "c" after a quoted string/);
  });
});

describe('nginx parser', () => {
  test('directives become a tree of { name, args, children, file, line }', () => {
    const tree = parseNginx('events {}\nhttp {\n  server {\n    listen 8080;\n    location / { try_files $uri =404; }\n  }\n}\n', 't.conf');
    assert.equal(tree.length, 2);
    const server = tree[1]!.children![0]!;
    assert.equal(server.name, 'server');
    assert.equal(server.line, 3);
    assert.deepEqual(server.children![0], { name: 'listen', args: ['8080'], children: null, file: 't.conf', line: 4 });
    const loc = server.children![1]!;
    assert.deepEqual([loc.name, loc.args, loc.line], ['location', ['/'], 5]);
    assert.deepEqual(loc.children![0]!.args, ['$uri', '=404']);
    assert.deepEqual(tree[0]!.children, []);
  });

  test('unbalanced braces and a directive without ";" at the end of the file are errors with file:line', () => {
    assert.match(syntaxError(() => parseNginx('server {\n  listen 80;\n}\n}\n', 'b.conf')).message, /^b\.conf:4: unexpected "}"/);
    assert.match(
      syntaxError(() => parseNginx('http {\n  server {\n    listen 80;\n  }\n', 'b.conf')).message,
      /^b\.conf:1: unexpected end of file, expecting "}"/,
    );
    assert.match(
      syntaxError(() => parseNginx('server {\n  listen 80;\n}\nworker_processes 2\n', 'b.conf')).message,
      /^b\.conf:4: unexpected end of file, expecting ";"/,
    );
    assert.match(
      syntaxError(() => parseNginx('server {\n  listen 80\n}\n', 'b.conf')).message,
      /^b\.conf:3: unexpected "}" \("listen" is missing its ";"\)/,
    );
    assert.match(syntaxError(() => parseNginx('listen 80;\n;\n', 'b.conf')).message, /^b\.conf:2: unexpected ";"/);
  });

  test('include: relative to the including file, globs sorted, included lines keep their own file and line', () => {
    const main = write('inc/site.conf', 'server {\n  include parts/*.conf;\n  include extra.conf;\n  include nothing/*.conf;\n}\n');
    write('inc/parts/b.conf', '# b\nlocation /b { return 404; }\n');
    write('inc/parts/a.conf', 'location /a {\n  return 404;\n}\n');
    write('inc/parts/.hidden.conf', 'location /hidden { }\n');
    write('inc/extra.conf', '\n\nclient_max_body_size 1m;\n');
    const tree = parseNginxFile(main);
    const children = tree[0]!.children!;
    assert.deepEqual(
      children.map((d) => [d.name, d.args[0], path.relative(tmp, d.file), d.line]),
      [
        ['location', '/a', 'inc/parts/a.conf', 1],
        ['location', '/b', 'inc/parts/b.conf', 2],
        ['client_max_body_size', '1m', 'inc/extra.conf', 3],
      ],
    );
    assert.equal(children[0]!.children![0]!.line, 2);
  });

  test('a missing include without a glob is an error at the include; stock nginx includes stay unexpanded', () => {
    const main = write('inc2/site.conf', 'server {\n  include fastcgi_params;\n  include snippets/fastcgi-php.conf;\n  include missing.conf;\n}\n');
    const err = syntaxError(() => parseNginxFile(main));
    assert.equal(err.file, main);
    assert.equal(err.line, 4);
    assert.match(err.message, /include "missing\.conf": no such file/);
    const ok = parseNginxFile(write('inc2/ok.conf', 'server {\n  include fastcgi_params;\n}\n'));
    assert.deepEqual(
      ok[0]!.children!.map((d: Directive) => [d.name, d.args]),
      [['include', ['fastcgi_params']]],
    );
  });

  test('an include cycle is an error, not a hang', () => {
    const a = write('cyc/a.conf', 'include b.conf;\n');
    write('cyc/b.conf', 'include a.conf;\n');
    assert.match(syntaxError(() => parseNginxFile(a)).message, /include cycle/);
  });
});

describe('nginx values and location regexes', () => {
  test('times, sizes and expires', () => {
    assert.equal(parseTime('30s'), 30_000);
    assert.equal(parseTime('5m'), 300_000);
    assert.equal(parseTime('1h30m'), 5_400_000);
    assert.equal(parseTime('250ms'), 250);
    assert.equal(parseTime('60'), 60_000);
    assert.equal(parseTime('5x'), null);
    assert.equal(parseSize('64m'), 64 * 1024 * 1024);
    assert.equal(parseSize('512K'), 512 * 1024);
    assert.equal(parseSize('1g'), 1024 ** 3);
    assert.equal(parseSize('10q'), null);
    assert.deepEqual(expiresToCacheControl(['max']), { value: 'public, max-age=31536000' });
    assert.deepEqual(expiresToCacheControl(['30d']), { value: 'max-age=2592000' });
    assert.deepEqual(expiresToCacheControl(['-1']), { value: 'no-cache' });
    assert.deepEqual(expiresToCacheControl(['off']), { off: true });
  });

  test('simple regexes become globs; others are refused with the reason', () => {
    const globs = (re: string): readonly string[] => {
      const r = regexToGlobs(re, false);
      assert.ok(r.ok, re);
      return r.globs;
    };
    assert.deepEqual(globs('\\.(sql|bak)$'), ['*.sql', '*.bak']);
    assert.deepEqual(globs('^/admin/bulk-'), ['/admin/bulk-*']);
    assert.deepEqual(globs('^/index\\.php(/|$)'), ['/index.php/*', '/index.php']);
    assert.deepEqual(globs('\\.(tpl(\\.php)?|sw[op])$'), ['*.tpl', '*.tpl.php', '*.swo', '*.swp']);
    assert.deepEqual(globs('(^|/)\\.'), ['*/.*']);
    const refused = regexToGlobs('^/(\\d+)/', false);
    assert.ok(!refused.ok && /\\d/.test(refused.reason));
    assert.equal(regexToGlobs('/\\.(?!well-known)', false).ok, false);
    const ci = regexToGlobs('\\.css$', true);
    assert.ok(ci.ok && ci.approximations.some((a) => a.includes('case-insensitively')));
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('import: WordPress (nginx.org recipe)', () => {
  const file = fixture('wordpress.conf');
  const result = importNginx(file);
  const cfg = parseYaml(result.yaml) as Record<string, any>;

  test('docroot, index, the listen port; every location a route, in configuration order', () => {
    assert.equal(cfg.php.docroot, '/var/www/wordpress');
    assert.deepEqual(cfg.php.index, ['index.php']);
    assert.equal(cfg.php.try_files, undefined, 'the routes carry try_files');
    assert.equal(cfg.server.port, 80);
    assert.equal(cfg.server.server_name, 'domain.tld');
    assert.equal(cfg.pools, undefined, 'upstream php is the default pool');
    // Regexes in JavaScript's spelling of PCRE's meaning: `$` also matches before a final newline (`\n?$`).
    assert.deepEqual(cfg.routes, [
      { match: '= /favicon.ico' },
      { match: '= /robots.txt' },
      { match: '/', try_files: ['$uri', '$uri/', '/index.php?$args'] },
      { match: '~ \\.php\\n?$', php: true },
      { match: '~* \\.(js|css|png|jpg|jpeg|gif|ico)\\n?$', expires: 'max' },
      { match: '~ /\\.ht', deny: true },
    ]);
  });

  test("no flattened keys: no static.deny or cache_control beside the routes; deny_status follows the site's dotfile location", () => {
    // phpgate refuses dotfiles before any route: with the status /\.ht's deny all gives, not its default 404.
    assert.deepEqual(cfg.static, { deny_status: 403 });
    assert.match(notesAt(result.warnings, file, 'server {'), /static\.deny_status: 403, as the site's dotfile location \(~ \/\\\.ht\) answers/);
    assert.match(notesAt(result.warnings, file, 'deny all;'), /^deny: true \(403\)$/);
  });

  test('warnings name their lines: log_not_found, per-location access_log, fastcgi_intercept_errors on', () => {
    assertWarned(result.warnings, file, 'log_not_found off;', 'log_not_found off', 1);
    assertWarned(result.warnings, file, 'log_not_found off;', 'log_not_found off', 3);
    assertWarned(result.warnings, file, 'access_log off;', 'access_log off');
    assertWarned(result.warnings, file, 'fastcgi_intercept_errors on;', 'fastcgi_intercept_errors');
    assert.ok(result.yaml.includes(`# ${file}:${lineOf(file, 'log_not_found off;')}: log_not_found off — `), 'the report heads the YAML');
  });

  test('the standard FastCGI boilerplate gives no warning', () => {
    for (const text of ['include fastcgi_params;', 'fastcgi_param  SCRIPT_FILENAME', 'fastcgi_pass php;', 'try_files $uri $uri/']) {
      assert.deepEqual(warningsAt(result.warnings, file, lineOf(file, text)), [], text);
    }
  });
});

describe('import: Laravel (deployment docs)', () => {
  const file = fixture('laravel.conf');
  const result = importNginx(file);
  const cfg = parseYaml(result.yaml) as Record<string, any>;

  test('keys: docroot, error page, expose_php for fastcgi_hide_header X-Powered-By, listen 80', () => {
    assert.equal(cfg.php.docroot, '/srv/example.com/public');
    assert.deepEqual(cfg.php.index, ['index.php']);
    assert.deepEqual(cfg.static.error_pages, { '404': '/index.php' });
    assert.deepEqual(cfg.php.ini, { expose_php: '0' });
    assert.equal(cfg.server.port, 80);
    assert.equal(cfg.static.deny, undefined);
  });

  test('the front-controller-only PHP location is exact now: only /index.php runs; the (?!well-known) lookahead is kept', () => {
    assert.deepEqual(cfg.routes, [
      { match: '/', try_files: ['$uri', '$uri/', '/index.php?$query_string'] },
      { match: '= /favicon.ico' },
      { match: '= /robots.txt' },
      { match: '~ ^/index\\.php(/|(?=\\n?$))', php: true },
      { match: '~ /\\.(?!well-known)[^\\n]*', deny: true },
    ]);
    assert.deepEqual(warningsAt(result.warnings, file, lineOf(file, 'location ~ ^/index\\.php(/|$)')), []);
  });

  test('charset utf-8 (server level) is static.charset; per-location logging is warned about', () => {
    assert.equal(cfg.static.charset, 'utf-8');
    assert.equal(cfg.static.charset_types, undefined, "nginx's default charset_types are phpgate's");
    assert.match(notesAt(result.warnings, file, 'charset utf-8;'), /^static\.charset: utf-8 \(added to static files of static\.charset_types/);
    assert.deepEqual(warningsAt(result.warnings, file, lineOf(file, 'charset utf-8;')), []);
    assertWarned(result.warnings, file, 'location = /favicon.ico', 'log_not_found off');
  });

  test("the security add_headers are phpgate's defaults already: notes saying nginx sends them on 2xx/3xx only", () => {
    assert.equal(cfg.headers, undefined);
    for (const [text, key] of [
      ['X-Frame-Options', 'headers.frame_options: "SAMEORIGIN"'],
      ['X-Content-Type-Options', 'headers.nosniff: true'],
    ] as const) {
      const note = notesAt(result.warnings, file, text);
      assert.ok(note.includes(key) && note.includes("phpgate's default already"), note);
      assert.match(note, /without "always" nginx adds it to 2xx and 3xx responses only, phpgate to every response/);
    }
  });
});

describe('import: Symfony (web server docs)', () => {
  const file = fixture('symfony.conf');
  const result = importNginx(file);
  const cfg = parseYaml(result.yaml) as Record<string, any>;

  test('$is_args$args becomes ?$args; env from constant fastcgi_params; the front controller internal, other scripts 404', () => {
    assert.deepEqual(cfg.routes, [
      { match: '/', try_files: ['$uri', '/index.php?$args'] },
      // No fastcgi_param PATH_INFO (stock fastcgi_params has none): nginx splits but passes no PATH_INFO.
      { match: '~ ^/index\\.php(/|(?=\\n?$))', php: { split_path_info: '^([^\\n]+\\.php)(/[^\\n]*)\\n?$', path_info: false }, internal: true },
      { match: '~ \\.php\\n?$', return: 404 },
    ]);
    assert.deepEqual(cfg.php.env, { APP_ENV: 'prod', DATABASE_URL: 'mysql://db_user:db_pass@127.0.0.1:3306/db_name' });
    assert.equal(cfg.static, undefined);
    assert.equal(cfg.server.port, 80, 'no listen: *:80');
  });

  test('the greedy fastcgi_split_path_info is kept as it is (a note); $realpath_root a note; no warnings', () => {
    assert.match(
      notesAt(result.warnings, file, 'fastcgi_split_path_info'),
      /^php\.split_path_info \^\(\[\^\\n\]\+\\\.php\)\(\/\[\^\\n\]\*\)\\n\?\$ \(nginx splits with this regex exactly\)$/,
    );
    const line = lineOf(file, 'fastcgi_param DOCUMENT_ROOT $realpath_root');
    assert.equal(warningsAt(result.warnings, file, line, 'note').length, 1);
    assert.deepEqual(
      result.warnings.filter((w) => w.kind === 'warning'),
      [],
    );
  });
});

describe('import: Drupal (several locations, a second pool, snippets by glob)', () => {
  const file = fixture('drupal.conf');
  const denySnippet = fixture('snippets/drupal-deny.conf');
  const result = importNginx(file);
  const cfg = parseYaml(result.yaml) as Record<string, any>;

  test('the /admin/reports/ upstream becomes a pool its route names, with the fixed front controller and its timeout', () => {
    assert.deepEqual(cfg.pools, [{ name: 'php_heavy', timeout_ms: 300_000 }]);
    assert.equal(cfg.php.timeout_ms, 60_000);
    assert.equal(cfg.server.port, 8081);
    assert.equal(cfg.server.max_body_mb, 32);
    const heavy = (cfg.routes as Record<string, any>[]).find((r) => r.match === '^~ /admin/reports/');
    assert.deepEqual(heavy, { match: '^~ /admin/reports/', php: { pool: 'php_heavy', script: '/index.php' } });
  });

  test('every location a route in configuration order, the included snippets in place; refusals keep their status', () => {
    assert.deepEqual(
      cfg.routes.map((r: Record<string, any>) => r.match),
      [
        '= /favicon.ico',
        '= /robots.txt',
        '~* \\.(txt|log)\\n?$',
        '~ \\.[^\\n]*/[^\\n]*\\.php\\n?$',
        '~ ^/sites/[^\\n]*/private/',
        '~ ^/sites/[^/]+/files/[^\\n]*\\.php\\n?$',
        '~ (^|/)\\.',
        '/',
        '@rewrite',
        '~ /vendor/[^\\n]*\\.php\\n?$',
        '^~ /admin/reports/',
        // `.` between ASCII characters matches one byte in nginx: an ASCII character only.
        '~ \\.php\\n?$|^/update[^\\n\\x80-\\uffff]php',
        '~* \\.(js|css|png|jpg|jpeg|gif|ico|svg)\\n?$',
        '~ ^/sites/[^\\n]*/files/styles/',
        '~ ^(/[\\-a-z]+)?/system/files/',
      ],
    );
    const at = (match: string): Record<string, any> => cfg.routes.find((r: Record<string, any>) => r.match === match);
    assert.deepEqual(at('~* \\.(txt|log)\\n?$').access, [{ allow: '192.168.0.0/16' }, { deny: 'all' }]);
    assert.equal(at('~ \\.[^\\n]*/[^\\n]*\\.php\\n?$').return, 403);
    assert.deepEqual(
      at('~ /vendor/[^\\n]*\\.php\\n?$'),
      { match: '~ /vendor/[^\\n]*\\.php\\n?$', return: 404 },
      'return answers before deny all is reached',
    );
    // The location's own try_files (the CVE-2019-11043 check) and its fastcgi_param PATH_INFO, as nginx runs them.
    const php = at('~ \\.php\\n?$|^/update[^\\n\\x80-\\uffff]php');
    assert.deepEqual(php.php, { split_path_info: '^([^\\n]+?\\.php)(|/[^\\n]*)\\n?$', path_info: '$fastcgi_path_info' });
    assert.deepEqual(php.try_files, ['$fastcgi_script_name', '=404']);
    assert.deepEqual(cfg.static, { deny_status: 403 }, "dotfiles refused with the status of the site's (^|/)\\. location");
    assert.deepEqual(warningsAt(result.warnings, denySnippet, lineOf(denySnippet, 'location ~ \\..*/.*\\.php$')), []);
  });

  test('expires 30d on its route; try_files @rewrite resolved through the named location', () => {
    const assets = (cfg.routes as Record<string, any>[]).find((r) => (r.match as string).startsWith('~* \\.(js'));
    assert.deepEqual(assets, { match: '~* \\.(js|css|png|jpg|jpeg|gif|ico|svg)\\n?$', try_files: ['$uri', '/index.php?$args'], expires: '30d' });
    // `rewrite ^ /index.php` only sends to the front controller: try_files names that URI (the arguments kept, as
    // nginx's rewrite keeps them); the named location is still a route of its own.
    for (const nth of [1, 2]) assert.equal(notesAt(result.warnings, file, 'try_files $uri @rewrite', nth), 'try_files: [$uri, /index.php?$args]');
    assert.deepEqual(
      (cfg.routes as Record<string, any>[]).find((r) => r.match === '@rewrite'),
      { match: '@rewrite', rewrite: [{ rewrite: '^ /index.php' }] },
    );
  });

  test('warnings: per-location logging only (the address rules, the 404 refusal, and a rewrite dotfiles never reach: (^|/)\\. refuses them first)', () => {
    assert.deepEqual(warningsAt(result.warnings, file, lineOf(file, 'location ~* \\.(txt|log)$')), []);
    assertWarned(result.warnings, file, 'log_not_found off;', 'log_not_found', 3);
    assert.deepEqual(warningsAt(result.warnings, file, lineOf(file, 'rewrite ^ /index.php;')), []);
    assert.deepEqual(
      [...new Set(result.warnings.filter((w) => w.kind === 'warning').map((w) => w.directive.split(' ')[0]))],
      ['log_not_found', 'access_log'],
    );
  });
});

describe('import: TLS site with a redirect server', () => {
  const file = fixture('tls-redirect.conf');
  const result = importNginx(file);
  const cfg = parseYaml(result.yaml) as Record<string, any>;

  test('the ssl server is chosen; the port-80 redirect server becomes redirect_http_port', () => {
    assert.equal(cfg.server.port, 443);
    assert.equal(cfg.server.redirect_http_port, 80);
    assert.deepEqual(cfg.server.tls, {
      cert: '/etc/letsencrypt/live/example.com/fullchain.pem',
      key: '/etc/letsencrypt/live/example.com/privkey.pem',
    });
    assert.equal(cfg.server.server_name, 'example.com');
  });

  test('limits, compression, trusted proxies, body size', () => {
    assert.deepEqual(cfg.rate_limit.rules, [
      { pattern: '/*', points: 10, duration_s: 1, block_s: 0, key: 'ip' },
      { pattern: '/login.php', points: 5, duration_s: 60, block_s: 0, key: 'ip' },
    ]);
    assert.equal(cfg.server.max_body_mb, 20);
    assert.deepEqual(cfg.server.trusted_proxies, ['10.0.0.0/8']);
    // gzip on, gzip_static on: phpgate's defaults already; the level is carried over.
    assert.deepEqual(cfg.compression, { gzip_level: 6 });
    assert.equal(cfg.static.precompressed, undefined);
  });

  test('the proxy location becomes a proxy route with strip_prefix, websockets and proxy_read_timeout', () => {
    assert.equal(cfg.upstreams, undefined);
    assert.deepEqual(cfg.routes[3], {
      match: '/api/node/',
      proxy: { targets: ['http://127.0.0.1:3000'], websockets: true, strip_prefix: '/api/node', timeout_ms: 3_600_000 },
    });
    assert.equal(notesAt(result.warnings, file, 'proxy_read_timeout'), 'proxy.timeout_ms: 3600000');
    assert.match(notesAt(result.warnings, file, 'proxy_set_header Host'), /host_header: client/);
  });

  test('fastcgi_cache in \\.php$ only: its route is cached, = /login.php (no fastcgi_cache) is not; refusals and assets as routes', () => {
    // Only 200 is named (statuses [200]); use_stale updating error timeout → stale_s from inactive=60m.
    assert.deepEqual(cfg.cache, { max_mb: 256 });
    assert.deepEqual(cfg.routes, [
      { match: '/', try_files: ['$uri', '$uri/', '/index.php?$query_string'] },
      { match: '= /login.php', php: true },
      { match: '~ \\.php\\n?$', php: true, cache: { ttl_s: 1, statuses: [200], stale_s: 3600 } },
      cfg.routes[3],
      { match: '/assets/', expires: '30d', add_header: [{ name: 'Cache-Control', value: 'immutable' }] },
      { match: '~ \\.(sql|bak)\\n?$', deny: true },
      { match: '/vendor/', deny: true },
    ]);
    assert.equal(cfg.php.timeout_ms, 120_000);
    assert.deepEqual(cfg.php.env, { APP_ENV: 'production' });
    assert.deepEqual(cfg.static.error_pages, { '404': '/404.html', '500': '/50x.html', '502': '/50x.html', '503': '/50x.html', '504': '/50x.html' });
  });

  test("add_header Cache-Control in /assets/ drops the server's HSTS under nginx: the note says phpgate still sends it", () => {
    assert.match(
      notesAt(result.warnings, file, 'location /assets/'),
      /nginx sends none of the enclosing add_headers here .*phpgate still sends Strict-Transport-Security/,
    );
  });

  test("no warnings: proxy_read_timeout and the cache's use_stale are translated, its missing key, lock and status header noted", () => {
    assert.equal(result.warnings.filter((w) => w.kind === 'warning').length, 0, JSON.stringify(result.warnings.filter((w) => w.kind === 'warning')));
    assert.match(
      notesAt(result.warnings, file, 'fastcgi_cache_use_stale'),
      /^stale_s 3600, the zone's inactive: .*phpgate also serves it on invalid_header http_500 http_503/,
    );
    const cache = notesAt(result.warnings, file, 'fastcgi_cache APP');
    assert.match(cache, /no fastcgi_cache_key .*key keeps phpgate's default \$scheme\$request_method\$host\$request_uri/);
    assert.match(cache, /no fastcgi_cache_lock: nginx sends every simultaneous miss to PHP; phpgate keeps cache\.lock_ms 5000/);
    assert.match(cache, /no add_header … \$upstream_cache_status: nginx sends no cache status header; phpgate sends X-Cache/);
    assert.equal(cfg.cache.lock_ms, undefined, "phpgate's coalescing kept");
    assert.equal(cfg.cache.header, undefined);
  });
});

describe('import: a microcaching shop (the fastcgi_cache family)', () => {
  const file = fixture('microcache.conf');
  const result = importNginx(file);
  const cfg = parseYaml(result.yaml) as Record<string, any>;
  const rule = (): Record<string, any> => cfg.routes[1].cache;

  test("fastcgi_cache in the PHP location → that route's cache, its zone's max_size → cache.max_mb", () => {
    assert.deepEqual(
      cfg.routes.map((r: Record<string, any>) => r.match),
      ['/', '~ \\.php\\n?$'],
    );
    assert.equal(cfg.cache.rules, undefined);
    assert.equal(cfg.cache.max_mb, 512);
    assert.match(notesAt(result.warnings, file, 'fastcgi_cache SHOP'), /^cache: ttl_s 5, statuses \[200, 301, 302, 404\], stale_s 300, key "/);
  });

  test("fastcgi_cache_valid codes → statuses with 200's ttl; 404 with another time is a warning naming both", () => {
    assert.equal(rule().ttl_s, 5);
    assert.deepEqual(rule().statuses, [200, 301, 302, 404]);
    assert.match(notesAt(result.warnings, file, 'fastcgi_cache_valid 200 301 302 5s'), /ttl_s 5, statuses 200 301 302/);
    const ws = warningsAt(result.warnings, file, lineOf(file, 'fastcgi_cache_valid 404 1m'));
    assert.match(ws[0]?.message ?? '', /404 stored for 60 s under nginx; phpgate has one ttl per rule: statuses 404 with ttl_s 5/);
  });

  test("fastcgi_cache_key at http level with $cookie_currency → the rule's key", () => {
    assert.equal(rule().key, '$scheme$request_method$host$request_uri$cookie_currency');
    assert.match(notesAt(result.warnings, file, 'fastcgi_cache_key'), /^key: \$scheme\$request_method\$host\$request_uri\$cookie_currency$/);
  });

  test('fastcgi_cache_lock on with fastcgi_cache_lock_timeout 2s → cache.lock_ms 2000', () => {
    assert.equal(cfg.cache.lock_ms, 2000);
    assert.match(notesAt(result.warnings, file, 'fastcgi_cache_lock on'), /cache\.lock_ms: 2000/);
    assert.match(notesAt(result.warnings, file, 'fastcgi_cache_lock_timeout 2s'), /cache\.lock_ms: 2000/);
    assert.doesNotMatch(notesAt(result.warnings, file, 'fastcgi_cache SHOP'), /no fastcgi_cache_lock/);
  });

  test('fastcgi_cache_use_stale updating error timeout http_500 http_503 → stale_s 300 from inactive=5m; the note names the differences', () => {
    assert.equal(rule().stale_s, 300);
    const note = notesAt(result.warnings, file, 'fastcgi_cache_use_stale');
    assert.match(note, /nginx serves a stale entry with no time limit until it goes unrequested for 300 s/);
    assert.match(note, /phpgate also serves it on invalid_header: it treats PHP's errors, timeouts and 5xx alike/);
    assert.doesNotMatch(note, /updating/, 'updating is listed: nothing to say about it');
  });

  test("fastcgi_cache_bypass and fastcgi_no_cache → the route's bypass and no_store as nginx writes them; the map behind $skip_cache → top-level steps", () => {
    const values = ['$cookie_woocommerce_items_in_cart', '$cookie_woocommerce_cart_hash', '$http_authorization', '$skip_cache'];
    assert.deepEqual(rule().bypass, values);
    assert.deepEqual(rule().no_store, values);
    assert.equal(cfg.cache.bypass_cookies, undefined, "phpgate's own list is untouched");
    assert.deepEqual(cfg.rewrite, [{ set: '$skip_cache 0' }, { if: '$http_cookie ~ wordpress_logged_in', then: [{ set: '$skip_cache 1' }] }]);
    assert.match(notesAt(result.warnings, file, 'map $http_cookie'), /top-level rewrite steps: \$skip_cache is set from \$http_cookie/);
    for (const text of ['fastcgi_cache_bypass', 'fastcgi_no_cache']) {
      assert.match(notesAt(result.warnings, file, text), /when one of them is neither empty nor "0"/, text);
      assert.deepEqual(warningsAt(result.warnings, file, lineOf(file, text)), [], text);
    }
  });

  test('add_header X-Cache-Status $upstream_cache_status → cache.header', () => {
    assert.equal(cfg.cache.header, 'X-Cache-Status');
    assert.match(notesAt(result.warnings, file, 'X-Cache-Status'), /^cache\.header: X-Cache-Status \(HIT, MISS, STALE or BYPASS/);
    assert.equal(cfg.headers, undefined, 'not a headers.set entry');
  });

  test('cache tuning: methods GET HEAD is a note; background_update on and ignore_headers are warnings', () => {
    assert.match(notesAt(result.warnings, file, 'fastcgi_cache_methods'), /phpgate caches GET and answers HEAD from its entry/);
    assert.match(warningsAt(result.warnings, file, lineOf(file, 'fastcgi_cache_background_update'))[0]?.message ?? '', /waits for PHP to refresh it/);
    assert.match(
      warningsAt(result.warnings, file, lineOf(file, 'fastcgi_ignore_headers'))[0]?.message ?? '',
      /^not translated: Cache-Control Expires Set-Cookie \(phpgate always honours/,
    );
  });

  test('three warnings, all reviewed above', () => {
    const warned = result.warnings.filter((w) => w.kind === 'warning').map((w) => w.directive.split(' ')[0]);
    assert.deepEqual(warned, ['fastcgi_cache_valid', 'fastcgi_cache_background_update', 'fastcgi_ignore_headers']);
  });
});

describe('import: fastcgi_cache directives phpgate cannot take as written', () => {
  /** A server whose PHP location caches in zone Z, with `extra` lines there and `http` lines above the server. */
  function cached(name: string, extra: readonly string[], http: readonly string[] = []): ReturnType<typeof site> {
    return site(
      `cache-${name}`,
      [
        'fastcgi_cache_path /var/cache/nginx/z keys_zone=Z:10m;',
        ...http,
        'server {',
        '  root /srv/c;',
        '  location ~ \\.php$ {',
        '    fastcgi_pass unix:/run/php.sock;',
        '    include fastcgi.conf;',
        '    fastcgi_cache Z;',
        ...extra.map((l) => `    ${l}`),
        '  }',
        '}',
        '',
      ].join('\n'),
    );
  }

  test("a time alone stands for 200 301 302 (phpgate's default statuses, not written)", () => {
    const s = cached('time-alone', ['fastcgi_cache_valid 10s;']);
    assert.deepEqual(s.cfg.routes[0].cache, { ttl_s: 10, stale_s: 0 });
    assert.match(notesAt(s.warnings, s.file, 'fastcgi_cache_valid'), /ttl_s 10, statuses 200 301 302 \(nginx's codes for a time alone\)/);
    load(s.yaml);
  });

  test("fastcgi_cache_valid any: a warning; the statuses stay those nginx names for a time alone, with 200's ttl", () => {
    const s = cached('any', ['fastcgi_cache_valid 200 2s;', 'fastcgi_cache_valid 404 2s;', 'fastcgi_cache_valid any 1m;']);
    assert.equal(s.cfg.routes[0].cache.ttl_s, 2);
    assert.deepEqual(s.cfg.routes[0].cache.statuses, [200, 301, 302, 404]);
    assert.match(
      warningsAt(s.warnings, s.file, lineOf(s.file, 'any 1m'))[0]?.message ?? '',
      /^any: nginx stores every status for 60 s; phpgate stores the statuses listed only \(statuses \[200, 301, 302, 404\], ttl_s 2\)/,
    );
    assert.match(notesAt(s.warnings, s.file, '404 2s'), /ttl_s 2, statuses 404/);
    load(s.yaml);
  });

  test('a status nginx never stores (time 0) is left out; a 1xx code is a warning', () => {
    const s = cached('zero', ['fastcgi_cache_valid 200 5s;', 'fastcgi_cache_valid 404 0;', 'fastcgi_cache_valid 101 5s;']);
    assert.deepEqual(s.cfg.routes[0].cache.statuses, [200]);
    assert.match(notesAt(s.warnings, s.file, '404 0'), /404 not stored \(time 0\), as nginx/);
    assert.match(
      warningsAt(s.warnings, s.file, lineOf(s.file, '101 5s'))[0]?.message ?? '',
      /not translated: 101 \(statuses take an integer from 200 to 599\)/,
    );
    load(s.yaml);
  });

  test('no time for 200: no rule, a warning on fastcgi_cache', () => {
    const s = cached('no-200', ['fastcgi_cache_valid 404 1m;']);
    assert.equal(s.cfg.cache, undefined);
    assert.equal(s.cfg.routes[0].cache, undefined);
    assertWarned(s.warnings, s.file, 'fastcgi_cache Z', 'fastcgi_cache Z');
    assert.match(notesAt(s.warnings, s.file, 'fastcgi_cache_valid 404'), /no time for 200 responses/);
  });

  test('fastcgi_cache_key with variables phpgate does not have: a warning, the default key kept; $query_string becomes $args', () => {
    const bad = cached('key-bad', ['fastcgi_cache_valid 200 1s;', 'fastcgi_cache_key "$scheme$host$request_uri$is_mobile";']);
    assert.equal(bad.cfg.routes[0].cache.key, undefined, "phpgate's default");
    assert.match(
      warningsAt(bad.warnings, bad.file, lineOf(bad.file, 'fastcgi_cache_key'))[0]?.message ?? '',
      /not translated: phpgate's cache keys take text and \$scheme, .*; key keeps phpgate's default/,
    );
    const qs = cached('key-qs', ['fastcgi_cache_valid 200 1s;', 'fastcgi_cache_key $host$uri$is_args$query_string$http_accept_language;']);
    assert.equal(qs.cfg.routes[0].cache.key, '$host$uri$is_args$args$http_accept_language');
    assert.match(notesAt(qs.warnings, qs.file, 'fastcgi_cache_key'), /\(\$query_string is \$args\)/);
    load(qs.yaml);
  });

  test('fastcgi_cache_lock off → lock_ms 0; the timeout is then not used', () => {
    const s = cached('lock-off', ['fastcgi_cache_valid 200 1s;', 'fastcgi_cache_lock off;', 'fastcgi_cache_lock_timeout 3s;']);
    assert.equal(s.cfg.cache.lock_ms, 0);
    assert.match(notesAt(s.warnings, s.file, 'fastcgi_cache_lock off'), /cache\.lock_ms: 0/);
    assert.match(notesAt(s.warnings, s.file, 'fastcgi_cache_lock_timeout'), /not used: fastcgi_cache_lock is off here/);
    load(s.yaml);
  });

  test("fastcgi_cache_lock on without a timeout → nginx's 5 s, phpgate's default lock_ms (not written)", () => {
    const s = cached('lock-on', ['fastcgi_cache_valid 200 1s;', 'fastcgi_cache_lock on;']);
    assert.equal(s.cfg.cache?.lock_ms, undefined);
    assert.match(notesAt(s.warnings, s.file, 'fastcgi_cache_lock on'), /cache\.lock_ms: 5000/);
  });

  test('two cached locations with different locks: phpgate has one lock_ms, the first is kept and the other warned', () => {
    const s = site(
      'cache-two-locks',
      [
        'fastcgi_cache_path /var/cache/nginx/z keys_zone=Z:10m;',
        'server {',
        '  root /srv/c;',
        '  fastcgi_cache_valid 200 1s;',
        '  include fastcgi.conf;',
        '  location ~ \\.php$ { fastcgi_pass unix:/run/php.sock; fastcgi_cache Z; fastcgi_cache_lock off; }',
        '  location /feed/ { fastcgi_pass unix:/run/php.sock; fastcgi_cache Z; fastcgi_cache_lock on; }',
        '}',
        '',
      ].join('\n'),
    );
    assert.equal(s.cfg.cache.lock_ms, 0);
    assert.deepEqual(
      s.cfg.routes.map((r: Record<string, any>) => [r.match, r.cache?.ttl_s]),
      [
        ['~ \\.php\\n?$', 1],
        ['/feed/', 1],
        ['/', undefined],
      ],
    );
    assert.match(
      warningsAt(s.warnings, s.file, lineOf(s.file, 'fastcgi_cache_lock on'))[0]?.message ?? '',
      /one cache\.lock_ms for every rule: 0 from .*:6 is kept \(here it would be 5000\)/,
    );
    load(s.yaml);
  });

  test('no fastcgi_cache_use_stale → stale_s 0 (nginx never serves stale), noted; "off" too', () => {
    const none = cached('stale-none', ['fastcgi_cache_valid 200 1s;']);
    assert.equal(none.cfg.routes[0].cache.stale_s, 0);
    assert.match(
      notesAt(none.warnings, none.file, 'fastcgi_cache Z'),
      /no fastcgi_cache_use_stale: stale_s 0 \(nginx never serves a stale answer without it\)/,
    );
    load(none.yaml);
    const off = cached('stale-off', ['fastcgi_cache_valid 200 1s;', 'fastcgi_cache_use_stale off;']);
    assert.equal(off.cfg.routes[0].cache.stale_s, 0);
    assert.match(notesAt(off.warnings, off.file, 'fastcgi_cache_use_stale'), /stale_s 0, as nginx/);
  });

  test("use_stale updating alone: nginx's default inactive (10m) → stale_s 600; the note says phpgate also serves it on PHP's failures", () => {
    const s = cached('stale-updating', ['fastcgi_cache_valid 200 1s;', 'fastcgi_cache_use_stale updating;']);
    assert.equal(s.cfg.routes[0].cache.stale_s, 600);
    assert.match(notesAt(s.warnings, s.file, 'fastcgi_cache_use_stale'), /phpgate also serves it on error timeout invalid_header http_500 http_503/);
  });

  test('use_stale error alone: the note says phpgate also serves it while refreshing (updating)', () => {
    const s = cached('stale-error', ['fastcgi_cache_valid 200 1s;', 'fastcgi_cache_use_stale error;'], []);
    assert.equal(s.cfg.routes[0].cache.stale_s, 600);
    assert.match(
      notesAt(s.warnings, s.file, 'fastcgi_cache_use_stale'),
      /phpgate also serves it while one request refreshes the entry \(nginx's updating\)/,
    );
  });

  test('use_stale http_404 / http_429: a warning; alone they give stale_s 0', () => {
    const s = cached('stale-404', ['fastcgi_cache_valid 200 1s;', 'fastcgi_cache_use_stale http_404 http_429;']);
    assert.equal(s.cfg.routes[0].cache.stale_s, 0);
    assert.match(
      warningsAt(s.warnings, s.file, lineOf(s.file, 'fastcgi_cache_use_stale'))[0]?.message ?? '',
      /not translated: http_404 http_429 .*; stale_s 0$/,
    );
  });

  test('fastcgi_cache_bypass values are kept as nginx writes them (literal text too); one phpgate cannot evaluate leaves the route uncached', () => {
    const s = cached('bypass', ['fastcgi_cache_valid 200 1s;', 'fastcgi_cache_bypass $arg_nocache 1 ${cookie_preview};']);
    assert.deepEqual(s.cfg.routes[0].cache.bypass, ['$arg_nocache', '1', '${cookie_preview}']);
    assert.equal(s.cfg.cache?.bypass_cookies, undefined);
    load(s.yaml);
    const u = cached('bypass-unknown', ['fastcgi_cache_valid 200 1s;', 'fastcgi_no_cache $cookie_x $mobile_theme;']);
    assert.equal(u.cfg.routes[0].cache, undefined);
    assert.match(
      warningsAt(u.warnings, u.file, lineOf(u.file, 'fastcgi_no_cache'))[0]?.message ?? '',
      /\$mobile_theme is not a variable phpgate has/,
    );
    assert.match(warningsAt(u.warnings, u.file, lineOf(u.file, 'fastcgi_cache Z'))[0]?.message ?? '', /^failing closed: not cached/);
  });

  test('a fastcgi_cache_bypass no fastcgi_cache reads is reported as not used', () => {
    const s = site('cache-unused', 'server {\n  root /srv/u;\n  fastcgi_cache_bypass $cookie_x;\n}\n');
    assert.match(notesAt(s.warnings, s.file, 'fastcgi_cache_bypass'), /not used by the imported server/);
    assert.equal(s.cfg.cache, undefined);
  });

  test('$upstream_cache_status inside a longer value, or a second cache status header: warnings; the first header is kept', () => {
    const s = cached('status-header', ['fastcgi_cache_valid 200 1s;'], []);
    const t = site(
      'cache-status-header',
      [
        'server {',
        '  root /srv/h;',
        '  add_header X-Cache "$upstream_cache_status from edge";',
        '  add_header X-Cache-Status $upstream_cache_status always;',
        '  add_header X-Cached $upstream_cache_status;',
        '  add_header x-cache-status $upstream_cache_status;',
        '}',
        '',
      ].join('\n'),
    );
    assert.equal(s.cfg.cache?.header, undefined);
    assert.equal(t.cfg.cache.header, 'X-Cache-Status');
    assert.match(warningsAt(t.warnings, t.file, lineOf(t.file, 'from edge'))[0]?.message ?? '', /holds the status alone/);
    assert.match(
      warningsAt(t.warnings, t.file, lineOf(t.file, 'X-Cached'))[0]?.message ?? '',
      /one cache status header, cache\.header X-Cache-Status from .*:4/,
    );
    assert.match(notesAt(t.warnings, t.file, 'x-cache-status'), /the same as .*:4/);
    load(t.yaml);
  });

  test('cache tuning phpgate does not have: min_uses 3, methods POST, revalidate on are warnings; their nginx defaults notes', () => {
    const s = site(
      'cache-tuning',
      [
        'server {',
        '  root /srv/t;',
        '  fastcgi_cache_min_uses 3;',
        '  fastcgi_cache_methods GET POST;',
        '  fastcgi_cache_revalidate on;',
        '  fastcgi_cache_lock_age 5s;',
        '  location /a/ { fastcgi_cache_min_uses 1; fastcgi_cache_revalidate off; fastcgi_cache_background_update off; fastcgi_ignore_headers X-Accel-Redirect; }',
        '}',
        '',
      ].join('\n'),
    );
    for (const text of ['min_uses 3', 'GET POST', 'revalidate on'])
      assert.equal(warningsAt(s.warnings, s.file, lineOf(s.file, text)).length, 1, text);
    const a = warningsAt(s.warnings, s.file, lineOf(s.file, 'location /a/'), 'note').map((w) => w.directive.split(' ')[0]);
    assert.deepEqual(a, ['fastcgi_cache_min_uses', 'fastcgi_cache_revalidate', 'fastcgi_cache_background_update', 'fastcgi_ignore_headers']);
    assert.match(notesAt(s.warnings, s.file, 'fastcgi_cache_lock_age'), /wait for it up to cache\.lock_ms/);
  });
});

describe('import: an upstream block behind proxy_pass', () => {
  const file = write(
    'proxy/site.conf',
    `upstream api {
    least_conn;
    server 10.0.0.5:3000 max_fails=2 fail_timeout=30s;
    server 10.0.0.6:3000 fail_timeout=30s weight=3;
    keepalive 32;
    ip_hash;
}
upstream solo {
    server 10.0.0.9:8080 max_fails=0;
}
server {
    listen 80;
    root /var/www/html;
    proxy_set_header Host $host;
    location /api/ {
        proxy_pass http://api/;
        proxy_connect_timeout 2s;
        proxy_set_header X-Custom yes;
        proxy_buffering off;
    }
    location /solo/ {
        proxy_pass http://solo;
        proxy_set_header Host $proxy_host;
    }
    location /bare/ {
        proxy_pass http://127.0.0.1:9000;
    }
}
`,
  );
  const result = importNginx(file);
  const cfg = parseYaml(result.yaml) as Record<string, any>;

  test("least_conn, fail_timeout and proxy_connect_timeout carry over; Host follows nginx's proxy_set_header inheritance", () => {
    // /api/ sets headers of its own, so it inherits none of the server's: nginx sends the target's host there.
    // /bare/ sets none and inherits the server's `Host $host`.
    assert.equal(cfg.upstreams, undefined);
    assert.deepEqual(cfg.routes, [
      {
        match: '/api/',
        proxy: {
          targets: ['http://10.0.0.5:3000', 'http://10.0.0.6:3000'],
          strip_prefix: '/api',
          connect_ms: 2000,
          host_header: 'target',
          balance: 'least_conn',
          down_s: 30,
        },
      },
      { match: '/solo/', proxy: { targets: ['http://10.0.0.9:8080'], host_header: 'target', down_s: 0 } },
      { match: '/bare/', proxy: { targets: ['http://127.0.0.1:9000'] } },
      { match: '/' },
    ]);
    assert.doesNotThrow(() => loadConfig({ text: result.yaml, file: 'proxy.yaml', env: {}, baseDir: tmp, overrides: { docroot: tmp } }));
  });

  test('what an upstream block says that phpgate does not do is a warning on its line', () => {
    assertWarned(result.warnings, file, 'max_fails=2', 'server');
    assertWarned(result.warnings, file, 'weight=3', 'server');
    assertWarned(result.warnings, file, 'ip_hash', 'ip_hash');
    assertWarned(result.warnings, file, 'X-Custom', 'proxy_set_header');
    assert.match(notesAt(result.warnings, file, 'keepalive 32'), /keeps connections to targets alive/);
    assert.match(notesAt(result.warnings, file, 'least_conn'), /balance: least_conn/);
    assert.match(notesAt(result.warnings, file, 'proxy_buffering'), /streams/);
    assert.match(notesAt(result.warnings, file, 'proxy_set_header Host $host'), /host_header: client/);
  });
});

describe('import: the edge (security headers, PROXY protocol, limits)', () => {
  const file = fixture('edge.conf');
  const result = importNginx(file);
  const cfg = parseYaml(result.yaml) as Record<string, any>;

  test('the recipe imports without a warning', () => {
    assert.deepEqual(
      result.warnings.filter((w) => w.kind === 'warning'),
      [],
    );
  });

  test('server-level add_headers become headers.*: HSTS as written, CSP, X-Frame-Options DENY, Referrer-Policy, others in set', () => {
    assert.deepEqual(cfg.headers.hsts, 'max-age=63072000; includeSubDomains; preload');
    assert.equal(cfg.headers.csp, "default-src 'self'");
    assert.equal(cfg.headers.frame_options, 'DENY');
    assert.equal(cfg.headers.referrer_policy, 'no-referrer');
    assert.equal(cfg.headers.nosniff, undefined, "nosniff is phpgate's default");
    assert.deepEqual(cfg.headers.set, { 'Permissions-Policy': 'camera=(), microphone=()' });
    assert.match(
      notesAt(result.warnings, file, 'Strict-Transport-Security'),
      /headers\.hsts: "max-age=63072000; includeSubDomains; preload" \(phpgate sends it over TLS only\)/,
    );
    // `always`: nginx sends them on every response too, nothing to say about it.
    assert.doesNotMatch(notesAt(result.warnings, file, 'add_header X-Frame-Options DENY'), /always/);
  });

  test("add_header in a location becomes its route's add_header, with nginx's always flag", () => {
    assert.equal(cfg.headers.routes, undefined);
    assert.deepEqual(cfg.routes[1].add_header, [{ name: 'X-Robots-Tag', value: 'noindex' }]);
    assert.deepEqual(cfg.routes[2], {
      match: '/embed/',
      add_header: [
        { name: 'X-Frame-Options', value: 'SAMEORIGIN', always: true },
        { name: 'Content-Security-Policy', value: 'frame-ancestors https://partner.example', always: true },
      ],
    });
    assert.match(notesAt(result.warnings, file, 'X-Robots-Tag'), /^add_header X-Robots-Tag: "noindex" \(2xx and 3xx answers, as nginx\)$/);
  });

  test("a location with add_header inherits none of the server's under nginx: the note names what phpgate still sends there", () => {
    const embed = notesAt(result.warnings, file, 'location /embed/');
    assert.match(embed, /nginx sends none of the enclosing add_headers here/);
    assert.match(embed, /phpgate still sends X-Content-Type-Options, Referrer-Policy, Strict-Transport-Security, Permissions-Policy \(/);
    const api = notesAt(result.warnings, file, 'location /api/');
    assert.match(
      api,
      /phpgate still sends X-Frame-Options, X-Content-Type-Options, Referrer-Policy, Strict-Transport-Security, Content-Security-Policy, Permissions-Policy \(the server's headers are global\)/,
    );
    assert.equal(warningsAt(result.warnings, file, lineOf(file, 'location / {'), 'note').length, 0, 'no add_header of its own: nothing to say');
  });

  test('listen … proxy_protocol → server.proxy_protocol with set_real_ip_from as trusted_proxies; real_ip_header proxy_protocol is a note', () => {
    assert.equal(cfg.server.proxy_protocol, true);
    assert.deepEqual(cfg.server.trusted_proxies, ['10.0.0.0/8']);
    assert.match(
      notesAt(result.warnings, file, 'listen 8080 proxy_protocol'),
      /server\.proxy_protocol: a PROXY v1\/v2 header first on every connection/,
    );
    assert.match(
      notesAt(result.warnings, file, 'real_ip_header proxy_protocol'),
      /from the PROXY header of connections from server\.trusted_proxies/,
    );
  });

  test('limit_conn on a $binary_remote_addr zone → connections_per_ip; http2_max_concurrent_streams → h2_max_streams; timeouts and header buffers', () => {
    assert.deepEqual(cfg.server.limits, { header_kb: 64, url_kb: 16, connections_per_ip: 20, h2_max_streams: 64 });
    assert.deepEqual(cfg.server.timeouts, { header_ms: 15_000, keepalive_ms: 20_000, body_ms: 30_000, send_ms: 45_000 });
    assert.match(notesAt(result.warnings, file, 'limit_conn addr 20'), /connections_per_ip: 20 \(phpgate counts open connections/);
    assert.match(
      notesAt(result.warnings, file, 'large_client_header_buffers'),
      /header_kb 64 \(all buffers: phpgate bounds the whole head, nginx each line\), server\.limits\.url_kb 16/,
    );
  });

  test('limit_req zones: $binary_remote_addr counts per address, $http_x_api_key per X-Api-Key header; limit_req_status 429 is a note', () => {
    assert.deepEqual(cfg.rate_limit.rules, [
      { pattern: '/*', points: 20, duration_s: 1, block_s: 0, key: 'ip' },
      { pattern: '/api/*', points: 100, duration_s: 60, block_s: 0, key: 'header:X-Api-Key' },
    ]);
    assert.match(notesAt(result.warnings, file, 'zone=perkey:10m'), /key header:X-Api-Key \(nginx does not count requests without the header\)/);
    assert.match(notesAt(result.warnings, file, 'limit_req zone=perip'), /burst\/nodelay are not modelled/);
    assert.doesNotMatch(notesAt(result.warnings, file, 'limit_req zone=perip'), /503/, 'limit_req_status 429 is set');
    assert.match(notesAt(result.warnings, file, 'limit_req_status 429'), /429 too/);
  });

  test("server_tokens off and fastcgi_hide_header X-Powered-By: phpgate's header defaults, noted", () => {
    assert.equal(cfg.headers.server, undefined, '"phpgate" without a version, the default');
    assert.match(notesAt(result.warnings, file, 'server_tokens off'), /Server: phpgate/);
    assert.match(notesAt(result.warnings, file, 'fastcgi_hide_header X-Powered-By'), /headers\.strip_powered_by: true/);
  });

  test('the imported YAML loads: every new key passes the config loader', () => {
    const docroot = makeDocroot('load-edge-keys');
    const loaded = loadConfig({ text: importNginx(file, { root: docroot }).yaml, file: 'edge.yaml', env: {} });
    assert.equal(loaded.server.proxy_protocol, true);
    assert.equal(loaded.server.limits.connections_per_ip, 20);
    assert.equal(loaded.rate_limit.rules[1]?.key, 'header:X-Api-Key');
  });
});

describe('import: edge directives phpgate cannot take as written', () => {
  test('headerAssignment: each security header to its key, others to set, the rest refused with the reason', () => {
    assert.deepEqual(headerAssignment('x-frame-options', 'sameorigin'), { key: 'frame_options', value: 'SAMEORIGIN' });
    assert.deepEqual(headerAssignment('Referrer-Policy', 'Strict-Origin'), { key: 'referrer_policy', value: 'strict-origin' });
    assert.deepEqual(headerAssignment('X-Content-Type-Options', 'nosniff'), { key: 'nosniff', value: true });
    assert.deepEqual(headerAssignment('Strict-Transport-Security', 'max-age=300'), { key: 'hsts', value: 'max-age=300' });
    assert.deepEqual(headerAssignment('X-XSS-Protection', '1; mode=block'), { key: 'set', name: 'X-XSS-Protection', value: '1; mode=block' });
    assert.match((headerAssignment('X-Request-Id', '$request_id') as { unsupported: string }).unsupported, /nginx variables/);
    assert.match((headerAssignment('X-Frame-Options', 'ALLOW-FROM https://a.example') as { unsupported: string }).unsupported, /SAMEORIGIN or DENY/);
    assert.match((headerAssignment('Server', 'shop') as { unsupported: string }).unsupported, /headers\.server/);
  });

  test('add_header with nginx variables, an ALLOW-FROM frame option, an unknown Referrer-Policy, Server: warnings, nothing written', () => {
    const s = site(
      'bad-headers',
      [
        'server {',
        '  root /srv/h;',
        '  add_header X-Request-Id $request_id always;',
        '  add_header X-Frame-Options "ALLOW-FROM https://a.example";',
        '  add_header Referrer-Policy sometimes;',
        '  add_header X-Content-Type-Options sniff-away;',
        '  add_header Server shop;',
        '  add_header X-Odd a b;',
        '  add_header X-Empty "";',
        '  location /x/ { add_header X-Tag "$host"; }',
        '}',
        '',
      ].join('\n'),
    );
    for (const [text, why] of [
      ['X-Request-Id', /not translated: the value holds nginx variables/],
      ['X-Frame-Options', /not translated: headers\.frame_options takes SAMEORIGIN or DENY/],
      ['Referrer-Policy', /not translated: headers\.referrer_policy takes false or a Referrer-Policy/],
      ['X-Content-Type-Options', /not translated: X-Content-Type-Options has one value, nosniff/],
      ['add_header Server', /not translated: phpgate writes Server itself \(headers\.server\)/],
      ['X-Odd', /not translated: expected add_header NAME VALUE \[always\]/],
    ] as const) {
      const ws = warningsAt(s.warnings, s.file, lineOf(s.file, text));
      assert.ok(
        ws.some((w) => why.test(w.message)),
        `${text}: ${JSON.stringify(ws)}`,
      );
    }
    assert.match(notesAt(s.warnings, s.file, 'X-Empty'), /nginx sends no header with an empty value/);
    assert.equal(s.cfg.headers, undefined);
    // In a location, a value with variables phpgate has is kept: the route evaluates it.
    assert.deepEqual(s.cfg.routes[0], { match: '/x/', add_header: [{ name: 'X-Tag', value: '$host' }] });
    load(s.yaml);
  });

  test('two add_headers for one header: the first is kept, a different second is a warning, the same value a note', () => {
    const s = site(
      'twice',
      'server {\n  root /srv/t;\n  add_header X-Frame-Options DENY always;\n  add_header X-Team a always;\n  add_header x-team b always;\n  add_header X-Frame-Options deny always;\n}\n',
    );
    assert.equal(s.cfg.headers.frame_options, 'DENY');
    assert.deepEqual(s.cfg.headers.set, { 'X-Team': 'a' });
    assertWarned(s.warnings, s.file, 'x-team b', 'add_header x-team');
    assert.match(warningsAt(s.warnings, s.file, lineOf(s.file, 'x-team b'))[0]!.message, /already gave x-team another value, and phpgate sends one/);
    assert.match(notesAt(s.warnings, s.file, 'X-Frame-Options deny'), /the same as .*twice\.conf:3/);
    load(s.yaml);
  });

  test("add_header in the PHP location is its route's; the server's stay global (noted there); http-level ones lose to the server's", () => {
    const s = site(
      'php-headers',
      [
        'http {',
        '  add_header X-From-Http yes always;',
        '  server {',
        '    root /srv/p;',
        '    add_header X-Frame-Options DENY always;',
        '    location ~ \\.php$ {',
        '      add_header X-Php yes always;',
        '      fastcgi_pass unix:/run/php.sock;',
        '    }',
        '  }',
        '}',
        '',
      ].join('\n'),
    );
    assert.deepEqual(s.cfg.headers, { frame_options: 'DENY' });
    assert.deepEqual(s.cfg.routes[0].add_header, [{ name: 'X-Php', value: 'yes', always: true }]);
    assert.match(notesAt(s.warnings, s.file, 'X-Php'), /^add_header X-Php: "yes" \(always\)$/);
    assert.match(notesAt(s.warnings, s.file, 'location ~'), /phpgate still sends X-Frame-Options \(the server's headers are global\)/);
    assert.match(notesAt(s.warnings, s.file, 'X-From-Http'), /not used: the server has add_header of its own/);
    load(s.yaml);
  });

  test('expires alone does not cut add_header inheritance (only add_header does): no note on that location', () => {
    const s = site('expires-only', 'server {\n  root /srv/e;\n  add_header X-Frame-Options DENY always;\n  location /img/ { expires 7d; }\n}\n');
    assert.equal(notesAt(s.warnings, s.file, 'location /img/').includes('enclosing'), false);
    assert.deepEqual(s.cfg.routes[0], { match: '/img/', expires: '7d' });
    assert.equal(s.cfg.static, undefined);
  });

  test('a regex location with \\d is a route like any other; more_clear_headers Server → headers.server ""', () => {
    const s = site(
      'clear',
      'server {\n  root /srv/c;\n  more_clear_headers Server X-Powered-By X-Runtime;\n  location ~ ^/(\\d+)/ { add_header X-Num yes; }\n}\n',
    );
    assert.deepEqual(s.cfg.headers, { server: '' });
    assert.match(notesAt(s.warnings, s.file, 'more_clear_headers'), /headers\.server: "" \(no Server header\); headers\.strip_powered_by: true/);
    assertWarned(s.warnings, s.file, 'more_clear_headers', 'more_clear_headers');
    assert.deepEqual(s.cfg.routes[0], { match: '~ ^/(\\d+)/', add_header: [{ name: 'X-Num', value: 'yes' }] });
    load(s.yaml);
  });

  test('listen … proxy_protocol without set_real_ip_from: a warning, and the YAML does not load until trusted_proxies are added', () => {
    const s = site('pp-alone', 'server {\n  listen 8443 proxy_protocol;\n  root /srv/pp;\n}\n');
    assert.equal(s.cfg.server.proxy_protocol, true);
    assert.match(
      warningsAt(s.warnings, s.file, 2)[0]?.message ?? '',
      /server\.proxy_protocol needs server\.trusted_proxies .* there is no set_real_ip_from/,
    );
    assert.match(
      notesAt(s.warnings, s.file, 'listen 8443'),
      /nginx takes the client address from the PROXY header only with real_ip_header proxy_protocol/,
    );
    assert.throws(() => load(s.yaml), /server\.proxy_protocol needs server\.trusted_proxies/);
    const doc = parseDocument(s.yaml);
    doc.setIn(['server', 'trusted_proxies'], ['10.1.2.3']);
    assert.equal(load(doc.toString()).server.proxy_protocol, true);
  });

  test('real_ip_header proxy_protocol without a proxy_protocol listener is a warning', () => {
    const s = site('pp-missing', 'server {\n  listen 80;\n  root /srv/pm;\n  set_real_ip_from 10.0.0.0/8;\n  real_ip_header proxy_protocol;\n}\n');
    assertWarned(s.warnings, s.file, 'real_ip_header', 'real_ip_header proxy_protocol');
    assert.equal(s.cfg.server.proxy_protocol, undefined);
  });

  test("limit_conn: in a location, on a zone not keyed by address, or without a zone → warnings; http-level limit_conn loses to the server's", () => {
    const s = site(
      'conn',
      [
        'http {',
        '  limit_conn_zone $binary_remote_addr zone=addr:10m;',
        '  limit_conn_zone $server_name zone=total:10m;',
        '  limit_conn addr 50;',
        '  server {',
        '    root /srv/lc;',
        '    limit_conn addr 10;',
        '    limit_conn total 1000;',
        '    limit_conn nosuch 5;',
        '    limit_conn_status 429;',
        '    location /dl/ { limit_conn addr 2; }',
        '  }',
        '}',
        '',
      ].join('\n'),
    );
    assert.deepEqual(s.cfg.server.limits, { connections_per_ip: 10 });
    assert.match(notesAt(s.warnings, s.file, 'limit_conn addr 50'), /not used: the server has limit_conn of its own/);
    assert.match(
      warningsAt(s.warnings, s.file, lineOf(s.file, 'limit_conn total'))[0]?.message ?? '',
      /per \$server_name; phpgate counts them per client address only/,
    );
    assertWarned(s.warnings, s.file, 'limit_conn nosuch', 'limit_conn nosuch');
    assertWarned(s.warnings, s.file, 'limit_conn_status', 'limit_conn_status');
    assert.match(
      warningsAt(s.warnings, s.file, lineOf(s.file, 'limit_conn addr 2'))[0]?.message ?? '',
      /server-wide \(server\.limits\.connections_per_ip\)/,
    );
    load(s.yaml);
  });

  test('limit_req_zone keys: $http_NAME → header:NAME, ${remote_addr} → ip, anything else → a warning and ip', () => {
    assert.equal(rateKey('$binary_remote_addr'), 'ip');
    assert.equal(rateKey('${remote_addr}'), 'ip');
    assert.equal(rateKey('$http_x_api_key'), 'header:X-Api-Key');
    assert.equal(rateKey('$http_authorization'), 'header:Authorization');
    assert.equal(rateKey('$server_name'), null);
    assert.equal(rateKey('$binary_remote_addr$uri'), null);
    const s = site(
      'keys',
      [
        'limit_req_zone $server_name zone=site:1m rate=100r/s;',
        'limit_req_zone $http_x_tenant_id zone=tenant:1m rate=30r/m;',
        'server {',
        '  root /srv/k;',
        '  limit_req zone=site;',
        '  limit_req_status 503;',
        '  location /t/ { limit_req zone=tenant; }',
        '}',
        '',
      ].join('\n'),
    );
    assert.deepEqual(s.cfg.rate_limit.rules, [
      { pattern: '/*', points: 100, duration_s: 1, block_s: 0, key: 'ip' },
      { pattern: '/t/*', points: 30, duration_s: 60, block_s: 0, key: 'header:X-Tenant-Id' },
    ]);
    assert.match(
      warningsAt(s.warnings, s.file, 1)[0]?.message ?? '',
      /nginx counts per \$server_name, phpgate only per client address or per request header \(\$http_NAME\): key ip/,
    );
    assert.match(warningsAt(s.warnings, s.file, lineOf(s.file, 'limit_req_status 503'))[0]?.message ?? '', /refuses rate-limited requests with 429/);
    load(s.yaml);
  });

  test('without limit_req_status the limit_req note says nginx answers 503 where phpgate answers 429', () => {
    const s = site('status', 'limit_req_zone $binary_remote_addr zone=ip:1m rate=5r/s;\nserver {\n  root /srv/s;\n  limit_req zone=ip;\n}\n');
    assert.match(notesAt(s.warnings, s.file, 'limit_req zone=ip'), /refused with 429, where nginx answers 503 without limit_req_status/);
  });

  test('http2_max_concurrent_streams out of range, or in a location: warnings, nothing written', () => {
    const s = site('h2', 'server {\n  root /srv/h2;\n  http2_max_concurrent_streams 0;\n  location /x/ { http2_max_concurrent_streams 8; }\n}\n');
    assert.equal(s.cfg.server.limits, undefined);
    assert.match(warningsAt(s.warnings, s.file, 3)[0]?.message ?? '', /h2_max_streams takes an integer from 1 to 65535/);
    assertWarned(s.warnings, s.file, 'http2_max_concurrent_streams 8', 'http2_max_concurrent_streams');
  });
});

describe('import: charset, charset_types, default_type', () => {
  test("http-level charset is overridden by the server's; charset_types as written; the YAML loads", () => {
    const s = site(
      'charset',
      [
        'http {',
        '  default_type application/octet-stream;',
        '  charset koi8-r;',
        '  server {',
        '    root /srv/c;',
        '    charset iso-8859-1;',
        '    charset_types text/css application/xml;',
        '    location /legacy/ { charset iso-8859-1; }',
        '    location /utf/ { charset utf-8; charset_types text/plain; }',
        '    location /var/ { charset $cs; }',
        '  }',
        '}',
        '',
      ].join('\n'),
    );
    assert.equal(s.cfg.static.charset, 'iso-8859-1');
    assert.deepEqual(s.cfg.static.charset_types, ['text/css', 'application/xml']);
    assert.match(notesAt(s.warnings, s.file, 'charset koi8-r;'), /static\.charset: koi8-r/);
    assert.match(notesAt(s.warnings, s.file, 'charset_types text/css'), /^static\.charset_types: text\/css, application\/xml \(text\/html always\)$/);
    assert.match(notesAt(s.warnings, s.file, 'default_type'), /application\/octet-stream for the rest, as here/);
    assert.match(notesAt(s.warnings, s.file, 'location /legacy/'), /the server's static\.charset already/);
    const utf = warningsAt(s.warnings, s.file, lineOf(s.file, 'location /utf/')).map((w) => w.message);
    assert.ok(
      utf.some((m) => /not translated: phpgate's static\.charset is server-wide/.test(m)),
      JSON.stringify(utf),
    );
    assert.ok(
      utf.some((m) => /not translated: phpgate's static\.charset_types are server-wide/.test(m)),
      JSON.stringify(utf),
    );
    assertWarned(s.warnings, s.file, 'location /var/', 'charset $cs');
    assert.equal(load(s.yaml).static.charset, 'iso-8859-1');
  });

  test('charset off is the default (nothing written); a default_type other than octet-stream is warned about', () => {
    const s = site('charset-off', ['server {', '  root /srv/c;', '  charset off;', '  default_type text/plain;', '}', ''].join('\n'));
    assert.equal(s.cfg.static?.charset, undefined);
    assert.match(notesAt(s.warnings, s.file, 'charset off;'), /static\.charset: "" \(no charset on static files, the default\)/);
    assertWarned(s.warnings, s.file, 'default_type text/plain;', 'default_type');
  });

  test('charset_types with a parameter or without a slash is refused with a warning', () => {
    const s = site('charset-bad', ['server {', '  root /srv/c;', '  charset utf-8;', '  charset_types "text/html; q=1" plain;', '}', ''].join('\n'));
    assert.equal(s.cfg.static.charset, 'utf-8');
    assert.equal(s.cfg.static.charset_types, undefined);
    assertWarned(s.warnings, s.file, 'charset_types', 'charset_types');
  });
});

describe('import: server selection and the report', () => {
  const two = write(
    'sel/two.conf',
    'server {\n  listen 80;\n  server_name a.example;\n  root /srv/a;\n}\nserver {\n  listen 80;\n  server_name b.example *.b.example;\n  root /srv/b;\n}\n',
  );

  test('several servers and none chosen: an error listing them', () => {
    assert.throws(
      () => importNginx(two),
      (err: unknown) => {
        assert.ok(err instanceof NginxImportError);
        assert.match(err.message, /2 server blocks; choose one with --server NAME/);
        assert.match(err.message, /two\.conf:1: server_name a\.example \(listen 80\)/);
        assert.match(err.message, /two\.conf:6: server_name b\.example \*\.b\.example/);
        return true;
      },
    );
  });

  test('--server picks by server_name (wildcards too); the other server is a note', () => {
    const r = importNginx(two, { server: 'www.b.example' });
    assert.equal((parseYaml(r.yaml) as Record<string, any>).php.docroot, '/srv/b');
    assert.match(warningsAt(r.warnings, two, 1, 'note')[0]?.message ?? '', /not imported/);
    assert.throws(() => importNginx(two, { server: 'c.example' }), /no server block answers "c\.example"/);
  });

  test('every directive not translated gets a warning with its line, at every level', () => {
    const f = write(
      'sel/unknown.conf',
      'worker_processes 2;\nfrobnicate on;\nhttp {\n  mystery_http 1;\n  geo $x { default 0; }\n  server {\n    root /srv/u;\n    mystery_server 2;\n    location /x {\n      mystery_location 3;\n    }\n  }\n}\n',
    );
    const r = importNginx(f);
    for (const [line, directive] of [
      [2, 'frobnicate'],
      [4, 'mystery_http'],
      [5, 'geo'],
      [8, 'mystery_server'],
      [10, 'mystery_location'],
    ] as const) {
      assert.ok(
        warningsAt(r.warnings, f, line).some((w) => w.directive.startsWith(directive)),
        `${directive} at line ${line}`,
      );
    }
    assert.equal((parseYaml(r.yaml) as Record<string, any>).server.processes, 2);
  });

  test('a malformed site file is an NginxSyntaxError with file:line', () => {
    const bad = write('sel/bad.conf', 'server {\n  listen 80;\n  root "/srv/x;\n}\n');
    const err = syntaxError(() => importNginx(bad));
    assert.equal(err.message.startsWith(`${bad}:3: unterminated`), true, err.message);
  });
});

// ---------------------------------------------------------------------------------------------------------

describe('imported YAML loads with loadConfig', () => {
  for (const name of ['wordpress', 'laravel', 'symfony', 'drupal', 'edge', 'microcache']) {
    test(`${name}.conf`, () => {
      const docroot = makeDocroot(`load-${name}`);
      const { yaml } = importNginx(fixture(`${name}.conf`), { root: docroot });
      const cfg = loadConfig({ text: yaml, file: `${name}.yaml`, env: {} });
      assert.equal(cfg.php.docroot, docroot);
    });
  }

  test('tls-redirect.conf: refused while the certificate files are missing, loads once they exist', () => {
    const docroot = makeDocroot('load-tls');
    const { yaml } = importNginx(fixture('tls-redirect.conf'), { root: docroot });
    assert.throws(
      () => loadConfig({ text: yaml, file: 'tls.yaml', env: {} }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(
          err.message,
          /server\.tls\.cert must be an existing file; \/etc\/letsencrypt\/live\/example\.com\/fullchain\.pem does not exist/,
        );
        return true;
      },
    );
    const doc = parseDocument(yaml);
    doc.setIn(['server', 'tls', 'cert'], write('tls/fullchain.pem', 'cert'));
    doc.setIn(['server', 'tls', 'key'], write('tls/privkey.pem', 'key'));
    const cfg = loadConfig({ text: doc.toString(), file: 'tls.yaml', env: {} });
    assert.equal(cfg.server.redirect_http_port, 80);
    assert.deepEqual(
      cfg.rate_limit.rules.map((r) => r.pattern),
      ['/*', '/login.php'],
    );
    assert.equal(cfg.headers.hsts, 'max-age=31536000');
  });
});

describe('imported configs serve the app through the real gateway', () => {
  async function serve(name: string, check: (base: string, docroot: string) => Promise<void>): Promise<void> {
    const docroot = makeDocroot(`serve-${name}`);
    const { yaml } = importNginx(fixture(`${name}.conf`), { root: docroot });
    const g = await startGateway(oneWorkerPerPool(yaml), { docroot });
    try {
      await check(g.base, docroot);
      if (name === 'drupal') {
        const heavy = Number((await request(g.base, '/admin/reports/status?pid=1')).text);
        const plain = Number((await request(g.base, '/node/1?pid=1')).text);
        assert.ok(
          g.gateway.pools
            .get('php_heavy')!
            .stats()
            .workers.some((w) => w.pid === heavy),
          '/admin/reports/* ran on the php_heavy pool',
        );
        assert.ok(
          g.gateway.pools
            .get('default')!
            .stats()
            .workers.some((w) => w.pid === plain),
          'other URLs on the default pool',
        );
      }
    } finally {
      await g.stop();
    }
  }

  async function expect(base: string, target: string, status: number, body?: string | RegExp): Promise<Awaited<ReturnType<typeof request>>> {
    const res = await request(base, target);
    assert.equal(res.status, status, `${target}: ${res.text.slice(0, 200)}`);
    if (typeof body === 'string') assert.equal(res.text, body, target);
    else if (body !== undefined) assert.match(res.text, body, target);
    return res;
  }

  test('WordPress: front controller, static file with Cache-Control, .htaccess refused', () =>
    serve('wordpress', async (base) => {
      await expect(base, '/', 200, 'app');
      await expect(base, '/2024/01/hello-world/', 200, 'app');
      const css = await expect(base, '/style.css', 200, /teal/);
      // expires max on the route, as nginx sends it (ten years; static.cache_control's is one year, public).
      assert.equal(css.headers['cache-control'], 'max-age=315360000');
      assert.equal(css.headers.expires, 'Thu, 31 Dec 2037 23:55:55 GMT');
      await expect(base, '/.htaccess', 403);
    }));

  test('Laravel: front controller, no X-Powered-By, .env refused', () =>
    serve('laravel', async (base) => {
      const home = await expect(base, '/', 200, 'app');
      assert.equal(home.headers['x-powered-by'], undefined, 'expose_php=0');
      await expect(base, '/users/42', 200, 'app');
      await expect(base, '/style.css', 200, /teal/);
      await expect(base, '/.env', 403);
    }));

  test('Symfony: only the front controller runs; /index.php and other scripts answer 404; env reaches PHP', () =>
    serve('symfony', async (base) => {
      await expect(base, '/', 200, 'app');
      await expect(base, '/blog/post?env=APP_ENV', 200, 'prod');
      await expect(base, '/index.php', 404);
      await expect(base, '/other.php', 404);
      await expect(base, '/style.css', 200, /teal/);
    }));

  test('Drupal: front controller, private files and scripts under dotted directories refused, heavy pool', () =>
    serve('drupal', async (base) => {
      await expect(base, '/', 200, 'app');
      const css = await expect(base, '/style.css', 200, /teal/);
      assert.equal(css.headers['cache-control'], 'max-age=2592000');
      await expect(base, '/sites/default/private/secret.txt', 403);
      await expect(base, '/x.y/evil.php', 403);
      await expect(base, '/.env', 403);
    }));
  test('microcache: a second GET is a HIT under X-Cache-Status; a cart cookie bypasses the cache', () =>
    serve('microcache', async (base) => {
      const first = await expect(base, '/2024/hello/', 200, 'app');
      assert.equal(first.headers['x-cache-status'], 'MISS');
      const second = await expect(base, '/2024/hello/', 200, 'app');
      assert.equal(second.headers['x-cache-status'], 'HIT');
      assert.equal(second.headers['x-cache'], undefined, "cache.header replaces phpgate's X-Cache");
      const cart = await request(base, '/2024/hello/', { headers: { cookie: 'woocommerce_items_in_cart=1' } });
      assert.equal(cart.headers['x-cache-status'], 'BYPASS');
    }));
});

describe('phpgate import-nginx (command line)', () => {
  const cli = [process.execPath, '--import', import.meta.resolve('tsx'), path.join(root, 'gateway/cli.ts')];
  const run = (args: string[]): { status: number | null; stdout: string; stderr: string } => {
    const r = spawnSync(cli[0]!, [...cli.slice(1), ...args], { cwd: root, encoding: 'utf8', timeout: 30_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  let out = '';
  before(() => {
    out = path.join(tmp, 'cli/gateway.yaml');
    fs.mkdirSync(path.dirname(out), { recursive: true });
  });

  test('-o writes the YAML, the report goes to stderr, exit 0', () => {
    const file = fixture('wordpress.conf');
    const docroot = makeDocroot('cli-wp');
    const r = run(['import-nginx', file, '-o', out, '--docroot', docroot]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.ok(r.stderr.includes(`warning: ${file}:${lineOf(file, 'log_not_found off;')}: log_not_found off — `), r.stderr);
    assert.match(r.stderr, /6 warning\(s\) to review/);
    assert.equal(loadConfig({ file: out, env: {} }).php.docroot, docroot);
  });

  test('without -o the YAML goes to stdout; --server chooses among several servers', () => {
    const r = run(['import-nginx', path.join(tmp, 'sel/two.conf'), '--server', 'a.example']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal((parseYaml(r.stdout) as Record<string, any>).php.docroot, '/srv/a');
  });

  test('a malformed file exits 2 with file:line; several servers without --server exit 2', () => {
    const bad = write('cli/bad.conf', 'server {\n  listen 80\n');
    const r = run(['import-nginx', bad, '-o', path.join(tmp, 'cli/never.yaml')]);
    assert.equal(r.status, 2);
    assert.ok(r.stderr.startsWith(`${bad}:2: unexpected end of file`), r.stderr);
    assert.equal(fs.existsSync(path.join(tmp, 'cli/never.yaml')), false);
    const several = run(['import-nginx', path.join(tmp, 'sel/two.conf')]);
    assert.equal(several.status, 2);
    assert.match(several.stderr, /--server NAME/);
  });

  test('--help lists import-nginx', () => {
    assert.match(run(['--help']).stdout, /import-nginx FILE/);
  });
});
