/**
 * Every default, in one place. The values follow gateway.example.yaml except for the example's sample lists
 * (pools, rules, upstreams, cache_control, deny), which default to empty: nothing is routed, limited or cached
 * unless configured. Relative paths here are resolved against the config file's directory by loadConfig().
 */
import os from 'node:os';
import path from 'node:path';
import { deepFreeze } from './freeze.js';
import { DEFAULT_CACHE_KEY } from './cache-key.js';
import type { CacheRule, GatewayConfig, RateLimitRule, UpstreamConfig } from './types.js';

/** Per user, so two users on one host never share (or fight over) worker sockets. */
function defaultSocketDir(): string {
  const user = process.getuid?.() ?? os.userInfo().username;
  return path.join(os.tmpdir(), `phpgate-${user}`);
}

export const DEFAULTS: Readonly<Omit<GatewayConfig, 'source'>> = deepFreeze({
  server: {
    host: '0.0.0.0',
    port: 8080,
    server_name: '',
    max_body_mb: 64,
    processes: 1,
    tls: { cert: '', key: '' },
    redirect_http_port: 0,
    trusted_proxies: [],
    proxy_protocol: false,
    timeouts: {
      header_ms: 10_000,
      keepalive_ms: 75_000,
      body_ms: 60_000,
      send_ms: 60_000,
      min_send_rate: 1024,
      drain_ms: 30_000,
      lame_duck_ms: 3_000,
    },
    limits: { header_kb: 16, url_kb: 8, connections_per_ip: 0, h2_max_streams: 128, body_memory_mb: 32 },
  },
  admin: { host: '127.0.0.1', port: 9180, token: '', health_on_main: true },
  php: {
    binary: 'php-cgi',
    docroot: './public',
    index: ['index.php', 'index.html'],
    try_files: ['$uri', '$uri/', '/index.php?$query_string'],
    worker_count: 4,
    memory_limit_mb: 128,
    max_requests: 1000,
    timeout_ms: 30_000,
    queue_limit: 200,
    queue_timeout_ms: 30_000,
    ini: {},
    env: {},
    user: '',
    group: '',
    socket_dir: defaultSocketDir(),
    server_software: '',
    // nginx: 8 × 4/8 KiB in memory, then up to 1 GiB in a temp file. 256 KiB (the request body's memory limit)
    // keeps a typical page off the disk even for a slow client; only a client that keeps us waiting costs it.
    response_buffering: true,
    response_buffer_kb: 256,
    response_temp_dir: '',
    response_temp_max_mb: 1024,
  },
  pools: [],
  static: {
    cache_control: [],
    precompressed: true,
    // nginx's: no charset on static files unless configured (a header charset overrides a page's own <meta charset>).
    charset: '',
    charset_types: ['text/html', 'text/xml', 'text/plain', 'text/vnd.wap.wml', 'application/javascript', 'application/rss+xml'],
    deny: [],
    deny_status: 404,
    follow_symlinks: false,
    // 1 MB: files up to that size are sent from memory in one write, at nginx's sendfile speed (bench/RESULTS.md);
    // larger ones stream from disk.
    hot_cache_file_kb: 1024,
    hot_cache_mb: 64,
    error_pages: {},
    internal: [],
  },
  // What helmet sends by default, minus what breaks ordinary PHP sites: CSP, cross-origin isolation (COOP/CORP
  // break payment and login pop-ups and hot-linked images), Origin-Agent-Cluster (document.domain) and
  // `Referrer-Policy: no-referrer` (analytics, CSRF checks); helmet's legacy headers are left out too.
  headers: {
    hsts: true,
    csp: false,
    frame_options: 'SAMEORIGIN',
    referrer_policy: 'strict-origin-when-cross-origin',
    nosniff: true,
    set: {},
    server: 'phpgate',
    strip_powered_by: true,
    routes: [],
  },
  compression: { gzip: true, brotli: true, min_bytes: 1024, gzip_level: 5, brotli_level: 4 },
  rate_limit: { store: 'memory', headers: 'refused', rules: [] },
  // Kept from the example even though rules default to none: a session cookie must never get a cached page.
  cache: {
    max_mb: 64,
    max_entry_kb: 1024,
    header: 'X-Cache',
    lock_ms: 5000,
    rules: [],
    bypass_cookies: ['PHPSESSID', 'wordpress_logged_in_*'],
    purge_redis: '',
    purge_channel: '',
  },
  upstreams: [],
  rewrite: [],
  routes: [],
  logging: { level: 'info', file: '', access: true, slow_ms: 0, format: 'json', access_file: '', request_id_to_php: false },
});

/**
 * Keys an upstream entry may leave out (pattern and targets are required). nginx's own defaults are kept where they
 * serve: proxy_read_timeout 60 s, max_fails=1 fail_timeout=10s. Not its proxy_connect_timeout of 60 s: a target
 * that swallows connection attempts would hold every request for a minute; 5 s is what Envoy and Caddy use.
 * Host is the client's, as nearly every nginx site sets it (`proxy_set_header Host $host`).
 */
export const UPSTREAM_DEFAULTS: Readonly<Omit<UpstreamConfig, 'pattern' | 'targets'>> = deepFreeze({
  balance: 'round_robin',
  websockets: false,
  strip_prefix: '',
  host_header: 'client',
  connect_ms: 5_000,
  timeout_ms: 60_000,
  down_s: 10,
});

/** Keys a cache rule may leave out (pattern and ttl_s are required). */
export const CACHE_RULE_DEFAULTS: Readonly<Pick<CacheRule, 'statuses' | 'stale_s' | 'key'>> = deepFreeze({
  statuses: [200, 301, 302],
  stale_s: 60,
  key: DEFAULT_CACHE_KEY,
});

/** Keys a rate-limit rule may leave out. */
export const RATE_RULE_DEFAULTS: Readonly<Pick<RateLimitRule, 'block_s' | 'key'>> = deepFreeze({ block_s: 0, key: 'ip' });

type DeepPartial<T> = T extends readonly unknown[] ? T : T extends object ? { readonly [K in keyof T]?: DeepPartial<T[K]> } : T;

function isPlainObject(v: unknown): v is object {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Fills what `given` leaves out from `defaults`, mapping by mapping; lists and scalars are replaced whole. */
export function withDefaults<T extends object>(defaults: T, given: DeepPartial<NoInfer<T>> | undefined): T {
  if (given === undefined) return defaults;
  const out = new Map<string, unknown>(Object.entries(defaults));
  for (const [key, value] of Object.entries(given)) {
    const base = out.get(key);
    out.set(key, isPlainObject(base) && isPlainObject(value) ? withDefaults(base, value) : value);
  }
  // fromEntries defines own properties, so a user's env key "__proto__" stays data, not a prototype.
  return Object.fromEntries(out) as T;
}
