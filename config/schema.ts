/**
 * The shape of gateway.yaml: every key, its rule, which keys are required, and which names were retired.
 * Defaults live in defaults.ts; cross-key rules (pools, docroot, TLS pairs) in semantics.ts.
 */
import * as C from './checks.js';
import { list, obj, scalar, stringMap, type ReadType } from './reader.js';
import { routes, serverRewrite } from './routes.js';

/** Retired key (schema path) → its new name, so old configs fail with the fix instead of "unknown key". */
export const RENAMED: Readonly<Record<string, string>> = {
  'php.workers': 'php.worker_count',
  'php.document_root': 'php.docroot',
  'server.listen': 'server.port',
  'pools[].pattern': 'pools[].patterns',
};

const ms = scalar(C.positiveMs);
const flag = scalar(C.bool);
const pattern = scalar(C.urlPattern);

/** What php.* sets for the default pool and each named pool may override. */
const poolSettings = {
  worker_count: scalar(C.workerCount),
  memory_limit_mb: scalar(C.memoryLimitMb),
  max_requests: scalar(C.int(0)), // 0 = never recycle
  timeout_ms: ms,
  queue_limit: scalar(C.int(0)),
  queue_timeout_ms: ms,
  ini: stringMap(C.iniKey, C.iniValue),
  env: stringMap(C.envKey, C.scalarAsString),
  user: scalar(C.account),
  group: scalar(C.account),
};

const server = obj({
  host: scalar(C.nonEmptyString),
  port: scalar(C.port),
  server_name: scalar(C.string),
  max_body_mb: scalar(C.maxBodyMb),
  processes: scalar(C.processes),
  tls: obj({ cert: scalar(C.string), key: scalar(C.string) }),
  redirect_http_port: scalar(C.portOrOff),
  trusted_proxies: list(scalar(C.addressOrCidr)),
  proxy_protocol: flag,
  timeouts: obj({
    header_ms: ms,
    keepalive_ms: ms,
    body_ms: ms,
    send_ms: ms,
    min_send_rate: scalar(C.int(0)),
    drain_ms: ms,
    lame_duck_ms: scalar(C.int(0)),
  }),
  limits: obj({
    header_kb: scalar(C.int(1)),
    url_kb: scalar(C.int(1)),
    connections_per_ip: scalar(C.int(0)),
    h2_max_streams: scalar(C.int(1, 65535)),
    body_memory_mb: scalar(C.int(1)),
  }),
});

const admin = obj({ host: scalar(C.nonEmptyString), port: scalar(C.portOrOff), token: scalar(C.string), health_on_main: flag });

const php = obj({
  binary: scalar(C.nonEmptyString),
  docroot: scalar(C.nonEmptyString),
  index: list(scalar(C.fileName), { nonEmpty: true }),
  try_files: list(scalar(C.tryFilesUri), { nonEmpty: true, last: scalar(C.tryFilesLast) }),
  ...poolSettings,
  socket_dir: scalar(C.nonEmptyString),
  server_software: scalar(C.headerValue),
  response_buffering: flag,
  response_buffer_kb: scalar(C.int(0)),
  response_temp_dir: scalar(C.string),
  response_temp_max_mb: scalar(C.int(0)),
});

// A pool without patterns is reached only by routes that name it (routes[].php.pool).
const pool = obj({ name: scalar(C.poolName), patterns: list(pattern), ...poolSettings }, ['name']);

const staticFiles = obj({
  cache_control: list(obj({ pattern, value: scalar(C.nonEmptyString) }, ['pattern', 'value'])),
  precompressed: flag,
  charset: scalar(C.charset),
  charset_types: list(scalar(C.mediaType)),
  deny: list(scalar(C.denyPattern)),
  deny_status: scalar(C.denyStatus),
  follow_symlinks: flag,
  hot_cache_file_kb: scalar(C.int(0, 1024)),
  hot_cache_mb: scalar(C.numberAtLeast(0)),
  error_pages: stringMap(C.errorPageStatus, C.errorPage),
  internal: list(obj({ prefix: scalar(C.internalPrefix), alias: scalar(C.nonEmptyString) }, ['prefix', 'alias'])),
});

const rateLimit = obj({
  store: scalar(C.rateLimitStore),
  headers: scalar(C.oneOf(['refused', 'always'] as const)),
  rules: list(
    obj(
      {
        pattern,
        points: scalar(C.int(1)),
        duration_s: scalar(C.numberAbove(0)),
        block_s: scalar(C.numberAtLeast(0)),
        key: scalar(C.rateLimitKey),
      },
      ['pattern', 'points', 'duration_s'],
    ),
  ),
});

const securityHeaders = {
  hsts: scalar(C.boolOrHeaderValue),
  csp: scalar(C.boolOrHeaderValue),
  frame_options: scalar(C.frameOptions),
  referrer_policy: scalar(C.referrerPolicy),
  nosniff: flag,
  set: stringMap(C.headerName, C.headerValue),
};

const cache = obj({
  max_mb: scalar(C.numberAtLeast(0)),
  max_entry_kb: scalar(C.int(1)),
  header: scalar(C.headerNameOrEmpty),
  lock_ms: scalar(C.int(0)),
  rules: list(
    obj(
      {
        pattern,
        ttl_s: scalar(C.numberAbove(0)),
        statuses: list(scalar(C.cacheableStatus), { nonEmpty: true }),
        stale_s: scalar(C.numberAtLeast(0)),
        key: scalar(C.cacheKey),
      },
      ['pattern', 'ttl_s'],
    ),
  ),
  bypass_cookies: list(scalar(C.nonEmptyString)),
  purge_redis: scalar(C.purgeRedis),
  purge_channel: scalar(C.purgeChannel),
});

const upstream = obj(
  {
    pattern,
    targets: list(scalar(C.httpUrl), { nonEmpty: true }),
    balance: scalar(C.upstreamBalance),
    websockets: flag,
    strip_prefix: scalar(C.stripPrefix),
    host_header: scalar(C.upstreamHostHeader),
    connect_ms: ms,
    timeout_ms: ms,
    down_s: scalar(C.numberAtLeast(0)),
  },
  ['pattern', 'targets'],
);

export const ROOT = obj({
  server,
  admin,
  php,
  pools: list(pool),
  static: staticFiles,
  headers: obj({
    ...securityHeaders,
    server: scalar(C.headerValue),
    strip_powered_by: flag,
    routes: list(obj({ pattern, ...securityHeaders }, ['pattern'])),
  }),
  compression: obj({ gzip: flag, brotli: flag, min_bytes: scalar(C.int(0)), gzip_level: scalar(C.int(1, 9)), brotli_level: scalar(C.int(0, 11)) }),
  rate_limit: rateLimit,
  cache,
  upstreams: list(upstream),
  rewrite: serverRewrite,
  routes,
  logging: obj({
    level: scalar(C.logLevel),
    file: scalar(C.string),
    access: flag,
    slow_ms: scalar(C.int(0)),
    format: scalar(C.logFormat),
    access_file: scalar(C.string),
    request_id_to_php: flag,
  }),
});

/** What the file said: only keys present and valid. */
export type RawConfig = ReadType<typeof ROOT>;
export type RawPool = NonNullable<RawConfig['pools']>[number];
