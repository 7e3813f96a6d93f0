import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { ConfigError, DEFAULTS, ENV_VARS, compileDenyPattern, compilePattern, loadConfig, patternMatchesEverything } from '../config/index.js';
import type { ConfigIssue, GatewayConfig, LoadOptions } from '../config/index.js';

/** The team's shared gateway.example.yaml (the configuration contract), verbatim: it must load as written. */
const EXAMPLE_YAML = `# phpgate — the configuration contract. Key names follow bakpiaRun's so its users can bring their config.
# Every key has a default; a file with only \`php: { docroot: ./public }\` is valid.

server:
  host: "0.0.0.0"          # PHPGATE_HOST, --host
  port: 8080               # PHPGATE_PORT, --port
  max_body_mb: 64          # larger request bodies get 413 before PHP runs
  processes: 1             # gateway processes; "auto" = one per core
  tls:                     # when set, server.port speaks TLS with HTTP/2 (ALPN) and HTTP/1.1
    cert: ""               # PEM certificate chain
    key: ""                # PEM private key
  redirect_http_port: 0    # when > 0 (with tls), a plain listener that 301s to https
  trusted_proxies: []      # CIDRs whose X-Forwarded-For / X-Forwarded-Proto are believed
  timeouts:
    header_ms: 10000       # slowloris guard
    keepalive_ms: 75000
    body_ms: 60000
  limits:
    header_kb: 16          # 431 past this
    url_kb: 8              # 414 past this

admin:                     # health, readiness, metrics, status dashboard
  host: "127.0.0.1"
  port: 9180               # /healthz /readyz /metrics /status (HTML) /status.json
  token: ""                # when set, required as Bearer token on /metrics and /status*

php:
  binary: "php-cgi"        # found on PATH; a clear error at start if missing
  docroot: "./public"      # PHPGATE_DOCROOT, --docroot
  index: ["index.php", "index.html"]
  try_files: ["$uri", "$uri/", "/index.php?$query_string"]   # nginx front-controller recipe (the default)
  worker_count: 4          # PHPGATE_WORKERS, --workers: the default pool
  memory_limit_mb: 128     # recycle a worker whose private memory (not shared opcache/APCu) passes this
  max_requests: 1000       # recycle a worker after this many requests
  timeout_ms: 30000        # kill the worker and answer 504 past this
  queue_limit: 200         # waiting requests per pool; past this 503 + Retry-After
  queue_timeout_ms: 30000  # waited longer than this: 503
  ini:                     # passed as -d to php-cgi
    memory_limit: "256M"
  env:                     # the only environment php-cgi gets beyond the CGI variables
    APP_ENV: "production"
  socket_dir: "/tmp/phpgate"

# Pools: first matching pattern wins; requests matching none go to the default pool built from php.*
# (which is not started when the pools already cover every path).
pools:
  - name: "heavy"
    worker_count: 2
    memory_limit_mb: 512
    max_requests: 100
    timeout_ms: 300000
    queue_limit: 50
    patterns: ["/heavy-*", "/api/export/*", "/api/report/*", "/admin/bulk-*"]
  - name: "fast"
    worker_count: 4
    memory_limit_mb: 128
    max_requests: 5000
    timeout_ms: 30000
    patterns: ["/*"]

static:
  cache_control:           # first matching pattern wins
    - pattern: "/assets/*"
      value: "public, max-age=31536000, immutable"
  precompressed: true      # serve file.br / file.gz when accepted
  deny: ["/vendor/*", "*.sql", "*.bak", "/composer.*"]   # dotfiles are always denied

headers:                   # helmet options; per-route overrides allowed
  hsts: true               # only sent over TLS
  csp: false

compression:
  gzip: true
  brotli: true
  min_bytes: 1024

rate_limit:
  store: "memory"          # or "redis://127.0.0.1:6379"
  rules:
    - pattern: "/*"
      points: 100          # requests
      duration_s: 1        # per this many seconds, per client address
    - pattern: "/wp-login.php"
      points: 5
      duration_s: 60

cache:                     # response cache for PHP (microcaching)
  max_mb: 64
  rules:
    - pattern: "/blog/*"
      ttl_s: 1
  bypass_cookies: ["PHPSESSID", "wordpress_logged_in_*"]

upstreams:                 # HTTP upstream routes (reverse proxy)
  - pattern: "/api/node/*"
    targets: ["http://127.0.0.1:3000"]
    websockets: true
    strip_prefix: "/api/node"

logging:
  level: "info"            # pino level
  file: ""                 # empty: stdout
`;

let dir: string; // the directory of "gateway.yaml", with public/ inside
let publicDir: string;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-config-test-'));
  publicDir = path.join(dir, 'public');
  fs.mkdirSync(publicDir);
});

after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Loads `text` as if it were <dir>/gateway.yaml, displayed as "gateway.yaml", with no env unless given. */
function load(text: string, opts: LoadOptions = {}): Readonly<GatewayConfig> {
  return loadConfig({ file: 'gateway.yaml', text, baseDir: dir, env: {}, ...opts });
}

function issuesOf(text: string, opts: LoadOptions = {}): readonly ConfigIssue[] {
  try {
    load(text, opts);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  return assert.fail('expected a ConfigError');
}

/** The error's lines as the user sees them. */
function report(text: string, opts: LoadOptions = {}): string[] {
  try {
    load(text, opts);
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split('\n');
    throw err;
  }
  return assert.fail('expected a ConfigError');
}

function oneLine(text: string, opts: LoadOptions = {}): string {
  const lines = report(text, opts);
  assert.equal(lines.length, 1, `expected one issue, got:\n${lines.join('\n')}`);
  return lines[0] ?? '';
}

describe('loadConfig: valid files', () => {
  test('the example gateway.yaml loads, with every value it states', () => {
    const file = path.join(dir, 'example.yaml');
    fs.writeFileSync(file, EXAMPLE_YAML.replace('docroot: "./public"', `docroot: ${JSON.stringify(publicDir)}`));
    const cfg = loadConfig({ file, env: {} });
    assert.equal(cfg.source, file);
    assert.equal(cfg.server.port, 8080);
    assert.equal(cfg.server.timeouts.keepalive_ms, 75000);
    assert.equal(cfg.admin.port, 9180);
    assert.equal(cfg.php.docroot, publicDir);
    assert.equal(cfg.php.socket_dir, '/tmp/phpgate');
    assert.deepEqual(cfg.php.ini, { memory_limit: '256M' });
    assert.deepEqual(cfg.php.env, { APP_ENV: 'production' });
    assert.deepEqual(
      cfg.pools.map((p) => [p.name, p.worker_count, p.patterns.length]),
      [
        ['heavy', 2, 4],
        ['fast', 4, 1],
      ],
    );
    assert.deepEqual(cfg.static.deny, ['/vendor/*', '*.sql', '*.bak', '/composer.*']);
    assert.deepEqual(cfg.static.cache_control, [{ pattern: '/assets/*', value: 'public, max-age=31536000, immutable' }]);
    assert.equal(cfg.rate_limit.rules.length, 2);
    assert.deepEqual(cfg.cache.rules, [
      { pattern: '/blog/*', ttl_s: 1, statuses: [200, 301, 302], stale_s: 60, key: '$scheme$request_method$host$request_uri' },
    ]);
    assert.equal(cfg.cache.header, 'X-Cache');
    assert.deepEqual(cfg.upstreams, [
      {
        pattern: '/api/node/*',
        targets: ['http://127.0.0.1:3000'],
        balance: 'round_robin',
        websockets: true,
        strip_prefix: '/api/node',
        host_header: 'client',
        connect_ms: 5000,
        timeout_ms: 60000,
        down_s: 10,
      },
    ]);
    assert.equal(cfg.logging.level, 'info');
    assert.equal(cfg.logging.format, 'json');
    assert.equal(cfg.logging.access_file, '');
    assert.equal(cfg.logging.request_id_to_php, false);
    // nginx fastcgi_buffering on, with a larger memory share; min_send_rate judged over send_ms of waiting.
    assert.equal(cfg.php.response_buffering, true);
    assert.equal(cfg.php.response_buffer_kb, 256);
    assert.equal(cfg.php.response_temp_dir, '');
    assert.equal(cfg.php.response_temp_max_mb, 1024);
    assert.equal(cfg.server.timeouts.min_send_rate, 1024);
  });

  test('an empty file yields every default', () => {
    const cfg = load('');
    assert.equal(cfg.source, 'gateway.yaml');
    assert.deepEqual(cfg.server, DEFAULTS.server);
    assert.deepEqual(cfg.admin, { host: '127.0.0.1', port: 9180, token: '', health_on_main: true });
    assert.deepEqual(cfg.php, { ...DEFAULTS.php, docroot: publicDir, socket_dir: cfg.php.socket_dir });
    // The socket dir is per configuration file: under /run/phpgate as root, else a private temp dir named after the user and the file.
    if (process.getuid?.() === 0) assert.match(cfg.php.socket_dir, /^\/run\/phpgate\/[0-9a-f]{10}$/);
    else {
      assert.match(path.basename(cfg.php.socket_dir), /^phpgate-\w+-[0-9a-f]{10}$/);
      assert.equal(path.dirname(cfg.php.socket_dir), os.tmpdir());
    }
    assert.notEqual(loadConfig({ file: 'other.yaml', text: '', baseDir: dir, env: {} }).php.socket_dir, cfg.php.socket_dir);
    assert.deepEqual(cfg.php.ini, {});
    assert.deepEqual(cfg.php.env, {});
    assert.deepEqual(cfg.pools, []);
    assert.deepEqual(cfg.static, {
      cache_control: [],
      precompressed: true,
      charset: '',
      charset_types: ['text/html', 'text/xml', 'text/plain', 'text/vnd.wap.wml', 'application/javascript', 'application/rss+xml'],
      deny: [],
      deny_status: 404,
      follow_symlinks: false,
      hot_cache_file_kb: 1024,
      hot_cache_mb: 64,
      error_pages: {},
      internal: [],
    });
    assert.deepEqual(cfg.rate_limit.rules, []);
    assert.deepEqual(cfg.cache.rules, []);
    assert.deepEqual(cfg.upstreams, []);
    assert.equal(cfg.logging.level, 'info');
  });

  test('the default socket_dir is under /run/phpgate as root, else a per-user directory under the OS temp dir', () => {
    const socketDir = load('').php.socket_dir;
    assert.equal(path.dirname(socketDir), process.getuid?.() === 0 ? '/run/phpgate' : os.tmpdir());
    if (process.getuid?.() !== 0) assert.match(path.basename(socketDir), /^phpgate-./);
  });

  test('a comment-only file and a file with only php.docroot are valid', () => {
    assert.equal(load('# nothing yet\n').php.docroot, publicDir);
    assert.equal(load('php: { docroot: ./public }').php.docroot, publicDir);
  });

  test('with neither file nor text the source is "(embedded default)"', () => {
    assert.equal(loadConfig({ env: {}, baseDir: dir }).source, '(embedded default)');
  });

  test('relative paths resolve against the config file directory', () => {
    fs.mkdirSync(path.join(dir, 'site', 'web'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'site', 'gateway.yaml'), 'php:\n  docroot: web\n  socket_dir: run\n');
    const cfg = loadConfig({ file: path.join(dir, 'site', 'gateway.yaml'), env: {} });
    assert.equal(cfg.php.docroot, path.join(dir, 'site', 'web'));
    assert.equal(cfg.php.socket_dir, path.join(dir, 'site', 'run'));
  });

  test('TLS cert and key resolve against the config file directory', () => {
    fs.writeFileSync(path.join(dir, 'cert.pem'), 'x');
    fs.writeFileSync(path.join(dir, 'key.pem'), 'x');
    const cfg = load('server:\n  tls: { cert: cert.pem, key: ./key.pem }\n');
    assert.deepEqual(cfg.server.tls, { cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') });
  });

  test('ini and env scalars become strings; booleans become "1"/"0"', () => {
    const cfg = load('php:\n  ini: { display_errors: false, opcache.enable: true, precision: 14 }\n  env: { DEBUG: true }\n');
    assert.deepEqual(cfg.php.ini, { display_errors: '0', 'opcache.enable': '1', precision: '14' });
    assert.deepEqual(cfg.php.env, { DEBUG: '1' });
  });

  test('the result is deeply frozen', () => {
    const cfg = load('pools:\n  - name: a\n    patterns: ["/a/*"]\n    env: { X: "1" }\n');
    assert.ok(Object.isFrozen(cfg));
    assert.ok(Object.isFrozen(cfg.server.timeouts));
    assert.ok(Object.isFrozen(cfg.pools));
    assert.ok(Object.isFrozen(cfg.pools[0]?.patterns));
    assert.ok(Object.isFrozen(cfg.pools[0]?.env));
    assert.throws(() => {
      (cfg.server as { port: number }).port = 1;
    }, TypeError);
  });
});

describe('loadConfig: pools', () => {
  test('a named pool inherits unset settings from php.* and merges ini/env, the pool winning', () => {
    const cfg = load(
      [
        'php:',
        '  worker_count: 6',
        '  queue_limit: 10',
        '  ini: { memory_limit: 256M, max_execution_time: 30 }',
        '  env: { APP_ENV: production, SHARED: "yes" }',
        'pools:',
        '  - name: heavy',
        '    patterns: ["/export/*"]',
        '    worker_count: 2',
        '    ini: { memory_limit: 1G }',
        '    env: { APP_ENV: batch }',
      ].join('\n'),
    );
    const heavy = cfg.pools[0];
    assert.ok(heavy);
    assert.equal(heavy.worker_count, 2);
    assert.equal(heavy.queue_limit, 10);
    assert.equal(heavy.memory_limit_mb, DEFAULTS.php.memory_limit_mb);
    assert.deepEqual(heavy.ini, { memory_limit: '1G', max_execution_time: '30' });
    assert.deepEqual(heavy.env, { APP_ENV: 'batch', SHARED: 'yes' });
  });

  test('a second pool with the same name is reported at its name, citing the first pool line', () => {
    const text = 'pools:\n  - name: heavy\n    patterns: ["/a"]\n  - name: heavy\n    patterns: ["/b"]\n';
    assert.equal(oneLine(text), 'gateway.yaml:4:11: pools[1].name "heavy" is already the name of the pool at line 2; pool names must be unique');
  });

  test('the pool name "default" is reserved for the implicit php.* pool', () => {
    const [issue] = issuesOf('pools:\n  - name: default\n    patterns: ["/a"]\n');
    assert.deepEqual([issue?.line, issue?.col], [2, 11]);
    assert.match(issue?.message ?? '', /"default" is reserved/);
  });

  test('a pool without a name is reported as missing the key; one without patterns is for routes that name it', () => {
    assert.equal(oneLine('pools:\n  - patterns: ["/a"]\n'), 'gateway.yaml:2:5: pools[0] is missing required key "name"');
    assert.deepEqual(load('pools:\n  - name: a\n').pools[0]?.patterns, []);
  });
});

describe('loadConfig: patterns that can never match', () => {
  test('a pool pattern without a leading slash is rejected at the pattern', () => {
    const line = oneLine('pools:\n  - name: a\n    patterns: ["/a", "api/*"]\n');
    assert.match(line, /^gateway\.yaml:3:22: pools\[0\]\.patterns\[1\] must be a URL pattern starting with \/ or \*/);
    assert.match(line, /got "api\/\*"$/);
  });

  test('a pool pattern after an earlier catch-all "/*" is rejected, naming the catch-all line', () => {
    const text = ['pools:', '  - name: fast', '    patterns: ["/*"]', '  - name: heavy', '    patterns: ["/export/*"]'].join('\n');
    assert.equal(
      oneLine(text),
      'gateway.yaml:5:16: pools[1].patterns[0] "/export/*" can never match: ' +
        'the earlier catch-all "/*" (pools[0].patterns[0], line 3) takes every path first',
    );
  });

  test('a catch-all earlier in the same pool also shadows', () => {
    const [issue] = issuesOf('pools:\n  - name: a\n    patterns: ["*", "/x"]\n');
    assert.match(issue?.message ?? '', /pools\[0\]\.patterns\[1\] "\/x" can never match: the earlier catch-all "\*"/);
  });

  test('a pattern repeated from an earlier pool is rejected', () => {
    const text = 'pools:\n  - name: a\n    patterns: ["/api/*"]\n  - name: b\n    patterns: ["/api/*"]\n';
    assert.match(
      oneLine(text),
      /^gateway\.yaml:5:16: .*"\/api\/\*" can never match: it already appears earlier \(pools\[0\]\.patterns\[0\], line 3\)/,
    );
  });

  test('a literal path already matched by an earlier pattern is rejected', () => {
    const text = 'pools:\n  - name: a\n    patterns: ["/api/*"]\n  - name: b\n    patterns: ["/api/users"]\n';
    assert.match(oneLine(text), /"\/api\/users" can never match: the earlier "\/api\/\*"/);
  });

  test('static.cache_control is first-match-wins, so shadowed rules are rejected too', () => {
    const text = 'static:\n  cache_control:\n    - { pattern: "/*", value: no-store }\n    - { pattern: "/assets/*", value: immutable }\n';
    assert.match(oneLine(text), /^gateway\.yaml:4:18: static\.cache_control\[1\]\.pattern .* catch-all "\/\*"/);
  });

  test('static.charset: a name as written, "off" or "" for none; charset_types replace nginx\'s list', () => {
    const cfg = load('static:\n  charset: ISO-8859-1\n  charset_types: [text/css, "*", application/vnd.api+json]\n');
    assert.equal(cfg.static.charset, 'ISO-8859-1');
    assert.deepEqual(cfg.static.charset_types, ['text/css', '*', 'application/vnd.api+json']);
    assert.equal(load('static: { charset: "off" }').static.charset, '');
    assert.equal(load('static: { charset: "" }').static.charset, '');
  });

  test('static.charset and charset_types: what would break the header is refused at its file:line:col', () => {
    assert.equal(
      oneLine('static:\n  charset: "utf-8; x=y"\n'),
      'gateway.yaml:2:12: static.charset must be "" (off) or a charset name such as "utf-8" or "iso-8859-1" ' +
        '(letters, digits, ".", "_", ":", "+", "-"), got "utf-8; x=y"',
    );
    assert.equal(oneLine('static:\n  charset: true\n').split(' must be ')[0], 'gateway.yaml:2:12: static.charset');
    assert.equal(
      oneLine('static:\n  charset: utf-8\n  charset_types:\n    - text/html\n    - "text/plain; charset=x"\n'),
      'gateway.yaml:5:7: static.charset_types[1] must be a media type without parameters such as "text/css", or "*" for every type, ' +
        'got "text/plain; charset=x"',
    );
    assert.match(oneLine('static: { charset_types: [html] }'), /^gateway\.yaml:1:27: static\.charset_types\[0\] must be a media type/);
  });

  test('static.deny accepts file-name globs but rejects a relative path', () => {
    assert.deepEqual(load('static: { deny: ["*.sql", "composer.json", "/vendor/*"] }').static.deny, ['*.sql', 'composer.json', '/vendor/*']);
    assert.match(oneLine('static: { deny: ["vendor/*"] }'), /static\.deny\[0\] must be .*file-name glob without \//);
  });
});

describe('loadConfig: reported problems', () => {
  test('an unknown key is reported at its file:line:col with the allowed keys', () => {
    assert.equal(
      oneLine('server:\n  port: 8080\n  colour: red\n'),
      'gateway.yaml:3:3: unknown key "server.colour"; allowed in server: host, port, server_name, max_body_mb, processes, tls, ' +
        'redirect_http_port, trusted_proxies, proxy_protocol, timeouts, limits',
    );
  });

  test('an unknown top-level section lists the sections', () => {
    assert.match(
      oneLine('sever:\n  port: 80\n'),
      /^gateway\.yaml:1:1: unknown key "sever" \(did you mean "server"\?\); allowed at the top level: server, admin, php,/,
    );
  });

  test('a key within two edits of an allowed one gets a "did you mean"', () => {
    assert.match(oneLine('php:\n  wokrer_count: 4\n'), /^gateway\.yaml:2:3: unknown key "php\.wokrer_count" \(did you mean "worker_count"\?\)/);
  });

  test('a renamed key names its new name', () => {
    assert.equal(oneLine('php:\n  workers: 4\n'), 'gateway.yaml:2:3: php.workers: `workers` was renamed to `worker_count`');
    assert.equal(oneLine('pools:\n  - name: a\n    pattern: "/a"\n'), 'gateway.yaml:3:5: pools[0].pattern: `pattern` was renamed to `patterns`');
  });

  test('a wrong type is reported at the value with what is allowed', () => {
    assert.equal(
      oneLine('php:\n  docroot: ./public\n  worker_count: four\n'),
      'gateway.yaml:3:17: php.worker_count must be an integer from 1 to 256, got "four"',
    );
  });

  test('an empty value is reported at its key', () => {
    assert.equal(oneLine('server:\n  port:\n'), 'gateway.yaml:2:3: server.port must be an integer from 1 to 65535, got an empty value');
  });

  test('a section that is not a mapping is reported', () => {
    assert.equal(oneLine('server: 8080\n'), 'gateway.yaml:1:9: server must be a mapping, got 8080');
  });

  const rejected: [name: string, yaml: string, key: string][] = [
    ['port 0', 'server: { port: 0 }', 'server.port'],
    ['port 65536', 'server: { port: 65536 }', 'server.port'],
    ['port as a quoted string', 'server: { port: "8080" }', 'server.port'],
    ['processes 0', 'server: { processes: 0 }', 'server.processes'],
    ['max_body_mb 0', 'server: { max_body_mb: 0 }', 'server.max_body_mb'],
    ['a zero timeout', 'server: { timeouts: { header_ms: 0 } }', 'server.timeouts.header_ms'],
    ['a trusted proxy that is not an address', 'server: { trusted_proxies: ["office"] }', 'server.trusted_proxies[0]'],
    ['an IPv4 CIDR longer than 32 bits', 'server: { trusted_proxies: ["10.0.0.0/33"] }', 'server.trusted_proxies[0]'],
    ['worker_count 257', 'php: { worker_count: 257 }', 'php.worker_count'],
    ['memory_limit_mb below 16', 'php: { memory_limit_mb: 8 }', 'php.memory_limit_mb'],
    ['negative max_requests', 'php: { max_requests: -1 }', 'php.max_requests'],
    ['negative queue_limit', 'php: { queue_limit: -1 }', 'php.queue_limit'],
    ['an index entry with a slash', 'php: { index: ["app/index.php"] }', 'php.index[0]'],
    ['an empty index', 'php: { index: [] }', 'php.index'],
    ['=CODE before the last try_files entry', 'php: { try_files: ["=404", "$uri"] }', 'php.try_files[0]'],
    ['a try_files entry that is not a URI', 'php: { try_files: ["$uri", "index.php"] }', 'php.try_files[1]'],
    ['an env name with a dash', 'php: { env: { APP-ENV: x } }', 'php.env key'],
    ['an ini value that is a list', 'php: { ini: { memory_limit: [1] } }', 'php.ini.memory_limit'],
    ['an ini value no ini quoting keeps literal', `php: { ini: { user_agent: "it's \\"q\\"" } }`, 'php.ini.user_agent'],
    ['an unknown log level', 'logging: { level: verbose }', 'logging.level'],
    ['an unknown log format', 'logging: { format: logfmt }', 'logging.format'],
    ['request_id_to_php that is not a boolean', 'logging: { request_id_to_php: sometimes }', 'logging.request_id_to_php'],
    ['an upstream target that is not http(s)', 'upstreams: [{ pattern: "/x/*", targets: ["ftp://h"] }]', 'upstreams[0].targets[0]'],
    ['an upstream target with a query', 'upstreams: [{ pattern: "/x/*", targets: ["http://h:3000/?a=1"] }]', 'upstreams[0].targets[0]'],
    ['an upstream target with credentials', 'upstreams: [{ pattern: "/x/*", targets: ["http://user:pw@h:3000"] }]', 'upstreams[0].targets[0]'],
    ['an unknown upstream balance', 'upstreams: [{ pattern: "/x/*", targets: ["http://h"], balance: ip_hash }]', 'upstreams[0].balance'],
    ['an unknown upstream host_header', 'upstreams: [{ pattern: "/x/*", targets: ["http://h"], host_header: "$host" }]', 'upstreams[0].host_header'],
    ['a zero upstream connect_ms', 'upstreams: [{ pattern: "/x/*", targets: ["http://h"], connect_ms: 0 }]', 'upstreams[0].connect_ms'],
    ['a negative upstream down_s', 'upstreams: [{ pattern: "/x/*", targets: ["http://h"], down_s: -1 }]', 'upstreams[0].down_s'],
    ['a rate-limit store that is neither memory nor redis', 'rate_limit: { store: mysql }', 'rate_limit.store'],
    [
      'a rate-limit key that is neither ip nor header:NAME',
      'rate_limit: { rules: [{ pattern: "/*", points: 1, duration_s: 1, key: cookie }] }',
      'rate_limit.rules[0].key',
    ],
    ['a header value with a line break', 'headers: { set: { X-A: "a\\r\\nSet-Cookie: x" } }', 'headers.set.X-A'],
    ['a CSP written as a multi-line block', 'headers: { csp: "default-src \'self\';\\nimg-src *" }', 'headers.csp'],
    ['a frame option that is not SAMEORIGIN or DENY', 'headers: { frame_options: ALLOWALL }', 'headers.frame_options'],
    ['an unknown referrer policy', 'headers: { referrer_policy: sometimes }', 'headers.referrer_policy'],
    ['a header route pattern not starting with /', 'headers: { routes: [{ pattern: "admin", csp: true }] }', 'headers.routes[0].pattern'],
    ['h2_max_streams of 0', 'server: { limits: { h2_max_streams: 0 } }', 'server.limits.h2_max_streams'],
    ['body_memory_mb of 0', 'server: { limits: { body_memory_mb: 0 } }', 'server.limits.body_memory_mb'],
    ['a negative min_send_rate', 'server: { timeouts: { min_send_rate: -1 } }', 'server.timeouts.min_send_rate'],
    ['response_buffering that is not a boolean', 'php: { response_buffering: "off" }', 'php.response_buffering'],
    ['a fractional response_buffer_kb', 'php: { response_buffer_kb: 1.5 }', 'php.response_buffer_kb'],
    ['a negative response_temp_max_mb', 'php: { response_temp_max_mb: -1 }', 'php.response_temp_max_mb'],
  ];
  for (const [name, yaml, key] of rejected) {
    test(`rejects ${name}`, () => {
      const issues = issuesOf(yaml);
      assert.equal(issues.length, 1, issues.map((i) => i.message).join('\n'));
      assert.ok(issues[0]?.message.startsWith(`${key} must be `), issues[0]?.message);
      assert.equal(issues[0]?.line, 1);
    });
  }

  const accepted: [name: string, yaml: string][] = [
    ['admin.port 0 (admin off)', 'admin: { port: 0 }'],
    ['processes "auto"', 'server: { processes: auto }'],
    ['max_requests 0 (never recycle)', 'php: { max_requests: 0 }'],
    ['IPv6 and IPv4 proxies with and without prefix', 'server: { trusted_proxies: ["10.0.0.0/8", "::1", "fd00::/8", "1.2.3.4"] }'],
    ['try_files ending in =404', 'php: { try_files: ["$uri", "=404"] }'],
    ['a redis rate-limit store', 'rate_limit: { store: "redis://127.0.0.1:6379" }'],
    ['csp as a policy string', `headers: { csp: "default-src 'self'" }`],
    [
      'header routes, extra headers and a hidden Server header',
      `headers: { server: "", set: { X-Robots-Tag: noindex }, routes: [{ pattern: "/admin/*", frame_options: DENY, csp: "default-src 'self'" }] }`,
    ],
    [
      'a rate-limit rule keyed by a header, with a block time',
      'rate_limit: { rules: [{ pattern: "/api/*", points: 5, duration_s: 1, block_s: 30, key: "header:X-Api-Key" }] }',
    ],
    [
      'PROXY protocol with per-address connection limits',
      'server: { proxy_protocol: true, trusted_proxies: ["10.0.0.0/8"], limits: { connections_per_ip: 50 } }',
    ],
    [
      'an upstream with every key',
      'upstreams: [{ pattern: "/api/*", targets: ["http://10.0.0.1:3000", "https://api.internal/v2"], balance: least_conn, websockets: true, strip_prefix: /api/, host_header: target, connect_ms: 1000, timeout_ms: 120000, down_s: 0 }]',
    ],
    ['strip_prefix equal to a pattern without its star', 'upstreams: [{ pattern: "/api/node*", targets: ["http://h"], strip_prefix: /api/node }]'],
  ];
  for (const [name, yaml] of accepted) {
    test(`accepts ${name}`, () => {
      assert.doesNotThrow(() => load(yaml));
    });
  }

  test('an upstream entry leaving keys out gets nginx-like defaults', () => {
    const [u] = load('upstreams: [{ pattern: "/api/*", targets: ["http://127.0.0.1:3000"] }]').upstreams;
    assert.deepEqual(u, {
      pattern: '/api/*',
      targets: ['http://127.0.0.1:3000'],
      balance: 'round_robin',
      websockets: false,
      strip_prefix: '',
      host_header: 'client',
      connect_ms: 5000,
      timeout_ms: 60000,
      down_s: 10,
    });
  });

  test('an upstream pattern after a catch-all upstream can never match (first match wins)', () => {
    assert.match(
      oneLine('upstreams:\n  - { pattern: "/*", targets: ["http://a"] }\n  - { pattern: "/api/*", targets: ["http://b"] }\n'),
      /^gateway\.yaml:3:16: upstreams\[1\]\.pattern "\/api\/\*" can never match: the earlier catch-all "\/\*" \(upstreams\[0\]\.pattern, line 2\)/,
    );
  });

  test('a strip_prefix that no path of its pattern starts with is refused, at the strip_prefix', () => {
    assert.equal(
      oneLine('upstreams:\n  - pattern: "/api/node/*"\n    targets: ["http://a"]\n    strip_prefix: /node\n'),
      'gateway.yaml:4:19: upstreams[0].strip_prefix "/node" can never apply: no path that upstreams[0].pattern "/api/node/*" matches starts with "/node" followed by "/" or its end',
    );
    assert.match(oneLine('upstreams: [{ pattern: "/apix/*", targets: ["http://a"], strip_prefix: /api }]'), /strip_prefix "\/api" can never apply/);
  });

  test('PROXY protocol without trusted proxies is refused: anyone could claim any address', () => {
    assert.match(oneLine('server:\n  proxy_protocol: true\n'), /^gateway\.yaml:2:19: server\.proxy_protocol needs server\.trusted_proxies/);
  });

  test('url_kb at or over header_kb is refused: the request line counts against the header limit', () => {
    assert.match(
      oneLine('server:\n  limits:\n    url_kb: 16\n'),
      /^gateway\.yaml:3:13: server\.limits\.url_kb \(16\) must be below server\.limits\.header_kb \(16\)/,
    );
  });

  test('a header route after a catch-all can never match', () => {
    assert.match(
      oneLine('headers:\n  routes:\n    - pattern: "/*"\n    - pattern: "/admin/*"\n'),
      /headers\.routes\[1\]\.pattern "\/admin\/\*" can never match/,
    );
  });

  test('a missing docroot is reported at the docroot value', () => {
    assert.equal(
      oneLine('php:\n  docroot: ./nowhere\n'),
      `gateway.yaml:2:12: php.docroot must be an existing directory; ${path.join(dir, 'nowhere')} does not exist`,
    );
  });

  test('a docroot that is a file is rejected', () => {
    fs.writeFileSync(path.join(dir, 'index.php'), '<?php');
    assert.match(oneLine('php: { docroot: index.php }'), /^gateway\.yaml:1:17: php\.docroot .* is not a directory$/);
  });

  test('a TLS cert without a key is rejected', () => {
    fs.writeFileSync(path.join(dir, 'only-cert.pem'), 'x');
    assert.equal(oneLine('server:\n  tls: { cert: only-cert.pem }\n'), 'gateway.yaml:2:16: server.tls.key is required when server.tls.cert is set');
  });

  test('admin.port equal to server.port is rejected', () => {
    assert.match(oneLine('server: { port: 9000 }\nadmin: { port: 9000 }\n'), /^gateway\.yaml:2:16: admin\.port must differ from server\.port/);
  });

  test('every problem in a file comes out in one ConfigError, in file order', () => {
    const text = [
      'server:',
      '  port: 99999', // 2
      '  colour: red', // 3
      'php:',
      '  docroot: ./nowhere', // 5
      '  workers: 4', // 6
      'pools:',
      '  - name: a',
      '    patterns: ["/*"]',
      '  - name: a', // 10
      '    patterns: ["/b"]', // 11
      'logging: { level: loud }', // 12
    ].join('\n');
    assert.deepEqual(
      issuesOf(text).map((i) => i.line),
      [2, 3, 5, 6, 10, 11, 12],
    );
  });

  test('a YAML syntax error is reported at its line:col', () => {
    const [issue, ...rest] = issuesOf('server:\n  port: 8080\n  host: [unclosed\nphp: {}\n');
    assert.equal(rest.length, 0);
    assert.equal(issue?.file, 'gateway.yaml');
    assert.ok((issue?.line ?? 0) >= 3, `line ${issue?.line}`);
    assert.ok((issue?.col ?? 0) >= 1);
    assert.match(issue?.message ?? '', /^invalid YAML: /);
  });

  test('a duplicated YAML key is reported at the second occurrence', () => {
    assert.equal(oneLine('server:\n  port: 1\n  port: 2\n'), 'gateway.yaml:3:3: invalid YAML: Map keys must be unique');
  });

  test('a document that is not a mapping is rejected', () => {
    assert.equal(oneLine('- server\n'), 'gateway.yaml:1:1: the configuration must be a mapping, got a list');
  });

  test('an unreadable file is a ConfigError naming the file', () => {
    const file = path.join(dir, 'absent.yaml');
    assert.throws(
      () => loadConfig({ file, env: {} }),
      (err: unknown) => err instanceof ConfigError && err.message.startsWith(`${file}: cannot read the configuration file`),
    );
  });
});

describe('loadConfig: environment and flags', () => {
  test('env vars override the file', () => {
    const cfg = load('server: { port: 8080, host: 127.0.0.1 }\nphp: { worker_count: 4 }\nlogging: { level: info }\n', {
      env: {
        PHPGATE_PORT: '9000',
        PHPGATE_HOST: '0.0.0.0',
        PHPGATE_WORKERS: '8',
        PHPGATE_LOG_LEVEL: 'debug',
        PHPGATE_ADMIN_PORT: '0',
        PHPGATE_MAX_BODY_MB: '1.5',
        PHPGATE_PHP_BINARY: '/usr/bin/php-cgi8.3',
      },
    });
    assert.equal(cfg.server.port, 9000);
    assert.equal(cfg.server.host, '0.0.0.0');
    assert.equal(cfg.php.worker_count, 8);
    assert.equal(cfg.logging.level, 'debug');
    assert.equal(cfg.admin.port, 0);
    assert.equal(cfg.server.max_body_mb, 1.5);
    assert.equal(cfg.php.binary, '/usr/bin/php-cgi8.3');
  });

  test('pools without their own worker_count inherit the env-overridden php.worker_count', () => {
    const cfg = load('pools: [{ name: a, patterns: ["/a"] }]', { env: { PHPGATE_WORKERS: '7' } });
    assert.equal(cfg.pools[0]?.worker_count, 7);
  });

  test('PHPGATE_DOCROOT and PHPGATE_SOCKET_DIR resolve against the current directory, not the file', () => {
    const other = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-config-docroot-'));
    try {
      const cfg = load('php: { docroot: ./public }', {
        env: { PHPGATE_DOCROOT: path.relative(process.cwd(), other), PHPGATE_SOCKET_DIR: 'run' },
      });
      assert.equal(cfg.php.docroot, other);
      assert.equal(cfg.php.socket_dir, path.resolve('run'));
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });

  test('an empty env var is ignored', () => {
    assert.equal(load('server: { port: 8081 }', { env: { PHPGATE_PORT: '' } }).server.port, 8081);
  });

  test('CLI flags override env vars and the file', () => {
    const other = path.join(dir, 'flag-root');
    fs.mkdirSync(other, { recursive: true });
    const cfg = load('server: { port: 8080 }\nphp: { worker_count: 2 }', {
      env: { PHPGATE_PORT: '9000', PHPGATE_WORKERS: '8', PHPGATE_HOST: '10.0.0.1' },
      overrides: { port: 9100, workers: 3, host: '127.0.0.1', docroot: other },
    });
    assert.equal(cfg.server.port, 9100);
    assert.equal(cfg.php.worker_count, 3);
    assert.equal(cfg.server.host, '127.0.0.1');
    assert.equal(cfg.php.docroot, other);
  });

  test('a bad env value is reported as "env NAME" without a line', () => {
    assert.deepEqual(issuesOf('', { env: { PHPGATE_PORT: 'eighty' } }), [
      { file: 'env PHPGATE_PORT', line: 0, col: 0, message: 'server.port must be an integer from 1 to 65535, got "eighty"' },
    ]);
    assert.deepEqual(report('', { env: { PHPGATE_LOG_LEVEL: 'loud' } }), [
      'env PHPGATE_LOG_LEVEL: logging.level must be one of "fatal", "error", "warn", "info", "debug", "trace", "silent", got "loud"',
    ]);
  });

  test('a bad flag value is reported as "--flag", after the file and env issues', () => {
    assert.deepEqual(report('server: { port: 0 }', { env: { PHPGATE_WORKERS: '0' }, overrides: { port: 70000 } }), [
      'gateway.yaml:1:17: server.port must be an integer from 1 to 65535, got 0',
      'env PHPGATE_WORKERS: php.worker_count must be an integer from 1 to 256, got "0"',
      '--port: server.port must be an integer from 1 to 65535, got 70000',
    ]);
  });

  test('a missing docroot set by env is reported against the env var', () => {
    assert.deepEqual(
      issuesOf('', { env: { PHPGATE_DOCROOT: path.join(dir, 'nope') } }).map((i) => i.file),
      ['env PHPGATE_DOCROOT'],
    );
  });

  test('ENV_VARS lists every override with the key it sets', () => {
    assert.deepEqual(
      ENV_VARS.map((v) => [v.name, v.key]),
      [
        ['PHPGATE_HOST', 'server.host'],
        ['PHPGATE_PORT', 'server.port'],
        ['PHPGATE_MAX_BODY_MB', 'server.max_body_mb'],
        ['PHPGATE_ADMIN_PORT', 'admin.port'],
        ['PHPGATE_PHP_BINARY', 'php.binary'],
        ['PHPGATE_DOCROOT', 'php.docroot'],
        ['PHPGATE_SOCKET_DIR', 'php.socket_dir'],
        ['PHPGATE_WORKERS', 'php.worker_count'],
        ['PHPGATE_PHP_USER', 'php.user'],
        ['PHPGATE_LOG_LEVEL', 'logging.level'],
      ],
    );
    for (const v of ENV_VARS) assert.ok(v.description.length > 0, v.name);
  });
});

describe('compilePattern', () => {
  const cases: [pattern: string, path: string, matches: boolean][] = [
    ['/heavy-*', '/heavy-export', true],
    ['/heavy-*', '/heavy-', true],
    ['/heavy-*', '/x/heavy-', false],
    ['/api/export/*', '/api/export/a/b', true],
    ['/api/export/*', '/api/export', false],
    ['/file?.txt', '/file1.txt', true],
    ['/file?.txt', '/file12.txt', false],
    ['/a?c', '/a/c', false],
    ['/wp-login.php', '/wp-login.php', true],
    ['/wp-login.php', '/wp-loginXphp', false],
    ['/wp-login.php', '/wp-login.php/x', false],
    ['/a*b*c', '/a-b-c', true],
    ['/a*b*c', '/ab/c/bc', true],
    ['/a*b*c', '/acb', false],
    ['/(x)+[y]', '/(x)+[y]', true],
    ['/(x)+[y]*', '/(x)+[y]/z', true],
    ['*', '/anything/at/all', true],
    ['/*', '/', true],
    ['*.php', '/dir/index.php', true],
    ['*.php', '/dir/index.php.bak', false],
  ];
  for (const [pattern, p, matches] of cases) {
    test(`"${pattern}" ${matches ? 'matches' : 'does not match'} "${p}"`, () => {
      assert.equal(compilePattern(pattern)(p), matches);
    });
  }

  test('a pattern with many * does not backtrack catastrophically on a long hostile path', () => {
    const hostile = '/' + 'a'.repeat(50_000);
    const start = performance.now();
    assert.equal(compilePattern('/a*a*a*a*a*b')(hostile), false);
    const ms = performance.now() - start;
    assert.ok(ms < 200, `took ${ms} ms`);
  });

  test('patternMatchesEverything recognises only the catch-alls', () => {
    assert.deepEqual(
      ['*', '/*', '**', '/a/*', '*.php', '/'].map((p) => patternMatchesEverything(p)),
      [true, true, true, false, false, false],
    );
  });
});

describe('compileDenyPattern', () => {
  const cases: [pattern: string, path: string, denied: boolean][] = [
    ['*.sql', '/dump.sql', true],
    ['*.sql', '/backups/2024/dump.sql', true],
    ['*.sql', '/dump.sql/view', false],
    ['composer.json', '/composer.json', true],
    ['composer.json', '/lib/composer.json', true],
    ['composer.json', '/lib/my-composer.json', false],
    ['/composer.*', '/composer.lock', true],
    ['/composer.*', '/lib/composer.lock', false],
    ['/vendor/*', '/vendor/autoload.php', true],
    ['/vendor/*', '/app/vendor/x', false],
  ];
  for (const [pattern, p, denied] of cases) {
    test(`deny "${pattern}" ${denied ? 'blocks' : 'allows'} "${p}"`, () => {
      assert.equal(compileDenyPattern(pattern)(p), denied);
    });
  }
});

describe('php.binary lookup', () => {
  test('a bare name is resolved on the gateway PATH, since php-cgi itself runs without one', () => {
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin, { recursive: true });
    fs.writeFileSync(path.join(bin, 'my-php-cgi'), '#!/bin/sh\n', { mode: 0o755 });
    const c = load('php:\n  binary: my-php-cgi\n  docroot: ./public\n', { env: { PATH: `/nonexistent${path.delimiter}${bin}` } });
    assert.equal(c.php.binary, path.join(bin, 'my-php-cgi'));
  });

  test('a name not on PATH is kept as given, for the start-up error to name it', () => {
    const c = load('php:\n  binary: no-such-php-cgi\n  docroot: ./public\n', { env: { PATH: '/nonexistent' } });
    assert.equal(c.php.binary, 'no-such-php-cgi');
  });

  test('a relative path is resolved against the config file directory', () => {
    const c = load('php:\n  binary: ./bin/my-php-cgi\n  docroot: ./public\n');
    assert.equal(c.php.binary, path.join(dir, 'bin', 'my-php-cgi'));
  });
});
