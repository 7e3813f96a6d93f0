/**
 * The typed, validated, defaulted configuration. Key names follow gateway.example.yaml (and bakpiaRun's).
 * Everything here is produced by loadConfig() and frozen; no module reads YAML or process.env itself.
 */

export interface TimeoutsConfig {
  readonly header_ms: number;
  readonly keepalive_ms: number;
  readonly body_ms: number;
  /** Longest wait for a client to take more of a response (nginx send_timeout); then it is cut off. */
  readonly send_ms: number;
  /** Slowest a client may take a response (bytes/s) over ~send_ms of waiting for it; 0: off (README: Slow clients). */
  readonly min_send_rate: number;
  /** On SIGTERM/SIGINT, how long in-flight requests may take to finish before they are cut. */
  readonly drain_ms: number;
  /** On SIGTERM, how long the port keeps serving while /readyz answers 503, for the load balancer to notice (0: none). */
  readonly lame_duck_ms: number;
}

export interface LimitsConfig {
  readonly header_kb: number;
  readonly url_kb: number;
  /** Open connections one client address may hold at once (nginx limit_conn); 0: no limit. Trusted proxies are exempt. */
  readonly connections_per_ip: number;
  /** Concurrent streams one HTTP/2 connection may open (nginx http2_max_concurrent_streams). */
  readonly h2_max_streams: number;
  /** Request-body bytes all requests together may hold in memory; past it, bodies go to temp files at once. */
  readonly body_memory_mb: number;
}

export interface TlsConfig {
  readonly cert: string; // absolute path or "" when TLS is off
  readonly key: string;
}

export interface ServerConfig {
  readonly host: string;
  readonly port: number;
  /** nginx's server_name (its first name): what PHP sees as SERVER_NAME; "" as nginx without one. */
  readonly server_name: string;
  readonly max_body_mb: number;
  readonly processes: number | 'auto';
  readonly tls: TlsConfig;
  readonly redirect_http_port: number;
  readonly trusted_proxies: readonly string[];
  /** The main listener expects a PROXY protocol v1/v2 header first on every connection (L4 load balancers). */
  readonly proxy_protocol: boolean;
  readonly timeouts: TimeoutsConfig;
  readonly limits: LimitsConfig;
}

export interface AdminConfig {
  readonly host: string;
  /** 0: no admin listener. */
  readonly port: number;
  readonly token: string;
  /** /healthz and /readyz also answered on the main port (never routed to PHP). */
  readonly health_on_main: boolean;
}

/** What every pool has; the default pool takes these from php.*, named pools override them. */
export interface PoolSettings {
  readonly worker_count: number;
  readonly memory_limit_mb: number;
  readonly max_requests: number;
  readonly timeout_ms: number;
  readonly queue_limit: number;
  readonly queue_timeout_ms: number;
  readonly ini: Readonly<Record<string, string>>;
  readonly env: Readonly<Record<string, string>>;
  /**
   * Who php-cgi runs as (php-fpm's pool `user`), a name or a numeric id; "" (unset): www-data when the gateway
   * runs as root, else the gateway's own user. Only root can run PHP as another user.
   */
  readonly user: string;
  /** Its group; "" (unset): the user's primary group. */
  readonly group: string;
}

export interface PhpConfig extends PoolSettings {
  readonly binary: string;
  readonly docroot: string; // absolute, exists, a directory
  readonly index: readonly string[];
  readonly try_files: readonly string[];
  readonly socket_dir: string; // absolute
  /**
   * What PHP sees as SERVER_SOFTWARE; "" is phpgate's own, `phpgate/VERSION (nginx-compatible)`: apps that decide
   * from it whether the server rewrites URLs (WordPress's pretty permalinks) look for "nginx" in it.
   */
  readonly server_software: string;
  /** nginx's fastcgi_buffering (a slow client never holds a worker), its memory (KiB), temp dir ("": the OS's) and max file (MiB). */
  readonly response_buffering: boolean;
  readonly response_buffer_kb: number;
  readonly response_temp_dir: string;
  readonly response_temp_max_mb: number;
}

export interface PoolConfig extends PoolSettings {
  readonly name: string;
  readonly patterns: readonly string[];
}

export interface CacheControlRule {
  readonly pattern: string;
  readonly value: string;
}

export interface StaticConfig {
  readonly cache_control: readonly CacheControlRule[];
  readonly precompressed: boolean;
  /** nginx `charset`: `; charset=NAME` added to static files of the charset_types ("": none, nginx's default). */
  readonly charset: string;
  /** nginx `charset_types`: the media types static.charset applies to; text/html always, "*" every type. */
  readonly charset_types: readonly string[];
  /** Globs refused for every request (static or PHP); a glob without '/' matches the last path segment. */
  readonly deny: readonly string[];
  /** What refused paths (deny, dotfiles, PHP source) answer: 404 hides that they exist, 403 says so. */
  readonly deny_status: 403 | 404;
  /** Serve symlinks that point outside the docroot (nginx disable_symlinks off). */
  readonly follow_symlinks: boolean;
  /** Files up to this size are kept in memory with their headers (0: no hot-file cache). */
  readonly hot_cache_file_kb: number;
  /** Bound on the hot-file cache's total bytes. */
  readonly hot_cache_mb: number;
  /** nginx error_page: status → URI of a static page or PHP script answering the gateway's own errors. */
  readonly error_pages: Readonly<Record<string, string>>;
  /** nginx `location PREFIX { internal; alias DIR; }`: files reachable only by X-Accel-Redirect (404 when asked for directly). */
  readonly internal: readonly InternalLocation[];
}

export interface InternalLocation {
  /** A path prefix starting and ending with "/". */
  readonly prefix: string;
  /** The directory the rest of the path is looked up in (absolute once loaded). */
  readonly alias: string;
}

/** Security headers one route gets; `false` leaves a header out. */
export interface SecurityHeaders {
  /** true: helmet's default (max-age one year, includeSubDomains); a string is the exact value. Only over TLS. */
  readonly hsts: boolean | string;
  /** true: helmet's default policy; a string is the exact policy. Off by default: it breaks most PHP apps. */
  readonly csp: boolean | string;
  readonly frame_options: 'SAMEORIGIN' | 'DENY' | false;
  readonly referrer_policy: string | false;
  readonly nosniff: boolean;
  /** Extra response headers, as nginx `add_header … always`. */
  readonly set: Readonly<Record<string, string>>;
}

export interface HeaderRoute extends Partial<SecurityHeaders> {
  readonly pattern: string;
}

export interface HeadersConfig extends SecurityHeaders {
  /** The Server header's value; "" sends none. */
  readonly server: string;
  /** Drop X-Powered-By from PHP's answers (expose_php). */
  readonly strip_powered_by: boolean;
  /** First matching pattern wins; what a route leaves out comes from the top level. */
  readonly routes: readonly HeaderRoute[];
}

export interface CompressionConfig {
  readonly gzip: boolean;
  readonly brotli: boolean;
  readonly min_bytes: number;
  /** zlib level 1–9 (nginx gzip_comp_level; nginx's default is 1, ours 5: smaller pages for little more CPU). */
  readonly gzip_level: number;
  /** Brotli quality 0–11 (ngx_brotli's brotli_comp_level; 11 is for assets compressed once, far too slow per request). */
  readonly brotli_level: number;
}

/** Whom a rate-limit rule counts: the client address (after trusted proxies), or a request header's value. */
export type RateLimitKey = 'ip' | `header:${string}`;

export interface RateLimitRule {
  readonly pattern: string;
  readonly points: number;
  readonly duration_s: number;
  /** Once over the limit, refused for this long (0: until the duration's window ends). */
  readonly block_s: number;
  readonly key: RateLimitKey;
}

export interface RateLimitConfig {
  readonly store: string;
  /**
   * Which answers carry RateLimit-Limit/-Remaining/-Reset: only 429s ("refused", the default: they cost about a tenth
   * of a small static file's throughput), or every answer on a limited path ("always", for APIs whose clients pace
   * themselves by them).
   */
  readonly headers: 'refused' | 'always';
  readonly rules: readonly RateLimitRule[];
}

export interface CacheRule {
  readonly pattern: string;
  /** Freshness when PHP says nothing (no Cache-Control max-age/s-maxage, Expires or X-Accel-Expires): fastcgi_cache_valid. */
  readonly ttl_s: number;
  /** Statuses stored (fastcgi_cache_valid's codes; nginx's default 200 301 302). */
  readonly statuses: readonly number[];
  /**
   * How long past its freshness an entry may still be served: while one request refreshes it, and instead of
   * PHP's failure (fastcgi_cache_use_stale updating error timeout http_500 http_503). 0: never stale.
   * PHP's own `stale-while-revalidate=` / `stale-if-error=` override it per answer.
   */
  readonly stale_s: number;
  /** The key template (fastcgi_cache_key), see config/cache-key.ts. */
  readonly key: string;
}

export interface CacheConfig {
  readonly max_mb: number;
  /** Bigger answers pass through uncached, never held whole in memory. */
  readonly max_entry_kb: number;
  /** The header telling HIT, MISS, STALE or BYPASS ("" sends none): nginx users add $upstream_cache_status. */
  readonly header: string;
  /** How long simultaneous misses wait for the one request filling the entry (fastcgi_cache_lock_timeout); 0: no coalescing. */
  readonly lock_ms: number;
  readonly rules: readonly CacheRule[];
  /** Requests carrying one of these cookies (globs: "wordpress_logged_in_*") never get or fill a cached answer. */
  readonly bypass_cookies: readonly string[];
  /**
   * Where purges go to reach every instance: a redis:// URL, "" for rate_limit.store's Redis when it is one, or
   * "off" (this instance's processes only).
   */
  readonly purge_redis: string;
  /** The Redis Pub/Sub channel purges travel on; "" derives one from the URL's database number (see shared-purge.ts). */
  readonly purge_channel: string;
}

/** How an upstream picks a target: in turn, or the one with the fewest requests in flight (nginx least_conn). */
export const UpstreamBalances = ['round_robin', 'least_conn'] as const;
export type UpstreamBalance = (typeof UpstreamBalances)[number];

/** The Host an upstream gets: the client's (nginx `proxy_set_header Host $http_host`) or the target's own ($proxy_host). */
export const UpstreamHostHeaders = ['client', 'target'] as const;
export type UpstreamHostHeader = (typeof UpstreamHostHeaders)[number];

/** An HTTP upstream route (nginx `location … { proxy_pass …; }` with an `upstream {}` block). */
export interface UpstreamConfig {
  readonly pattern: string;
  /** http(s)://host[:port][/path]; a path is put in front of the forwarded one. */
  readonly targets: readonly string[];
  readonly balance: UpstreamBalance;
  /** HTTP/1.1 `Upgrade: websocket` requests are tunnelled to the target. */
  readonly websockets: boolean;
  /** Removed from the front of the path before it is forwarded ("" keeps the request target as sent). */
  readonly strip_prefix: string;
  readonly host_header: UpstreamHostHeader;
  /** Longest wait for a TCP connection to a target (nginx proxy_connect_timeout). */
  readonly connect_ms: number;
  /** Longest silence from a target while it owes an answer (nginx proxy_read_timeout): then 504. */
  readonly timeout_ms: number;
  /** A target that refused or failed a connection is skipped for this long (nginx max_fails=1 fail_timeout); 0: never. */
  readonly down_s: number;
}

export const LogLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LogLevels)[number];

/** json: pino lines; combined: access lines in nginx's combined format, the rest as nginx's error log; pretty: a terminal's. */
export const LogFormats = ['json', 'combined', 'pretty'] as const;
export type LogFormat = (typeof LogFormats)[number];

export interface LoggingConfig {
  readonly level: LogLevel;
  readonly file: string;
  /** One JSON line per request (at info level), as nginx's access_log. */
  readonly access: boolean;
  /** Requests slower than this are logged at warn with pool, worker and script (0: off), as php-fpm's slowlog. */
  readonly slow_ms: number;
  readonly format: LogFormat;
  /** Access lines go to this file instead of `file` (nginx's access_log beside error_log); '' : with the rest. */
  readonly access_file: string;
  /** PHP always gets HTTP_X_REQUEST_ID = the access log's request id (nginx: `fastcgi_param HTTP_X_REQUEST_ID $request_id`). */
  readonly request_id_to_php: boolean;
}

export interface GatewayConfig {
  /** Where the configuration came from: a file path, or "(embedded default)". */
  readonly source: string;
  readonly server: ServerConfig;
  readonly admin: AdminConfig;
  readonly php: PhpConfig;
  readonly pools: readonly PoolConfig[];
  readonly static: StaticConfig;
  readonly headers: HeadersConfig;
  readonly compression: CompressionConfig;
  readonly rate_limit: RateLimitConfig;
  readonly cache: CacheConfig;
  readonly upstreams: readonly UpstreamConfig[];
  /** nginx's server-level rewrite module directives, run before a route is chosen. */
  readonly rewrite: readonly RewriteStep[];
  /** nginx's locations (docs/ROUTES.md); empty: the global keys route as before. */
  readonly routes: readonly RouteConfig[];
  readonly logging: LoggingConfig;
}

/** Text with nginx variables: literal parts and variable names (lower case, without `$`). */
export type TemplatePart = { readonly text: string } | { readonly variable: string };

/** A route's `match:`, as nginx's location modifiers. */
export type RouteMatch =
  | { readonly kind: 'exact'; readonly path: string }
  /** `@name`: reached only by try_files' last entry or error_page, never by a path (top level only, as nginx). */
  | { readonly kind: 'named'; readonly name: string }
  | {
      readonly kind: 'prefix';
      readonly path: string;
      /** `^~`: no regex route is tried when this is the longest prefix. */ readonly priority: boolean;
    }
  | { readonly kind: 'regex'; readonly source: string; readonly caseInsensitive: boolean };

export type RewriteFlag = 'last' | 'break' | 'redirect' | 'permanent';

export type RouteCondition =
  | { readonly kind: 'value'; readonly left: readonly TemplatePart[] }
  | { readonly kind: 'compare'; readonly left: readonly TemplatePart[]; readonly negate: boolean; readonly right: readonly TemplatePart[] }
  | {
      readonly kind: 'regex';
      readonly left: readonly TemplatePart[];
      readonly negate: boolean;
      readonly source: string;
      readonly caseInsensitive: boolean;
    }
  | { readonly kind: 'file'; readonly test: '-f' | '-d' | '-e' | '-x'; readonly negate: boolean; readonly path: readonly TemplatePart[] };

/** One step of a rewrite script (nginx's rewrite module directives, in order). */
export type RewriteStep =
  | { readonly kind: 'rewrite'; readonly source: string; readonly replacement: readonly TemplatePart[]; readonly flag: RewriteFlag | null }
  | { readonly kind: 'set'; readonly name: string; readonly value: readonly TemplatePart[] }
  | { readonly kind: 'if'; readonly condition: RouteCondition; readonly then: readonly RewriteStep[] }
  | { readonly kind: 'return'; readonly status: number; readonly text: readonly TemplatePart[] | null }
  | { readonly kind: 'break' };

export interface RouteAccessRule {
  readonly allow: boolean;
  /** "all", an address or a CIDR. */
  readonly who: string;
}

export interface RouteHeader {
  readonly name: string;
  readonly value: readonly TemplatePart[];
  /** nginx `always`: on every status, not only 200, 201, 204, 206, 301, 302, 303, 304, 307, 308. */
  readonly always: boolean;
}

export interface RoutePhp {
  /** A fixed script (a front controller such as /index.php), or null: the request's own path. */
  readonly script: string | null;
  /** fastcgi_split_path_info: two groups giving $fastcgi_script_name and $fastcgi_path_info, or null. */
  readonly split_path_info: string | null;
  /**
   * `fastcgi_param PATH_INFO VALUE`, evaluated when PHP is called (after try_files); false: no PATH_INFO (nginx
   * without that param); null: $fastcgi_path_info with a split, none without one.
   */
  readonly path_info: readonly TemplatePart[] | null | false;
  /** The pool, or null: pool patterns, then the default pool. */
  readonly pool: string | null;
}

export interface RouteCache {
  readonly ttl_s: number;
  readonly statuses: readonly number[];
  readonly stale_s: number;
  readonly key: string;
  /** nginx fastcgi_cache_bypass: the request neither gets nor fills a cached answer when one is non-empty and not "0". */
  readonly bypass: readonly (readonly TemplatePart[])[];
  /** nginx fastcgi_no_cache: the answer is not stored when one is non-empty and not "0". */
  readonly no_store: readonly (readonly TemplatePart[])[];
}

/** One `routes:` entry (nginx's location), loaded; what it leaves out is inherited from its parent at compile time. */
export interface RouteConfig {
  /** The `match:` text as written (for messages). */
  readonly text: string;
  readonly match: RouteMatch;
  readonly routes: readonly RouteConfig[];
  readonly root: string | null;
  readonly alias: string | null;
  readonly index: readonly string[] | null;
  readonly try_files: readonly string[] | null;
  readonly php: RoutePhp | null;
  readonly proxy: Omit<UpstreamConfig, 'pattern'> | null;
  readonly return: { readonly status: number; readonly text: readonly TemplatePart[] | null } | null;
  readonly rewrite: readonly RewriteStep[];
  /** A status every request gets (nginx `deny all`: 403), or null. */
  readonly deny: number | null;
  readonly access: readonly RouteAccessRule[] | null;
  readonly auth_basic: { readonly realm: string; readonly user_file: string } | null;
  readonly add_header: readonly RouteHeader[] | null;
  readonly expires: number | 'max' | 'epoch' | 'off' | null;
  readonly cache: RouteCache | null;
  readonly internal: boolean;
}
