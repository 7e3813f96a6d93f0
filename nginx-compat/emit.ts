/**
 * The translated configuration: a draft filled by translate.ts, reduced to the keys that differ from phpgate's
 * defaults (plus php.docroot, always written), and written as gateway.yaml with the report as comments on top.
 */
import { Document } from 'yaml';
import { DEFAULTS } from '../config/defaults.js';
import type { CacheControlRule, CacheRule, HeaderRoute, RateLimitRule, UpstreamConfig } from '../config/types.js';
import { formatWarning, WarningKind, type Warning } from './report.js';

/** An upstreams[] entry: what the nginx file says; the rest keeps phpgate's defaults (UPSTREAM_DEFAULTS). */
export type UpstreamDraft = Pick<UpstreamConfig, 'pattern' | 'targets'> & {
  -readonly [K in Exclude<keyof UpstreamConfig, 'pattern' | 'targets'>]?: UpstreamConfig[K];
};

export interface PoolDraft {
  name: string;
  /** Without routes: the URL patterns the pool runs; with routes, routes name the pool (php.pool) and this stays empty. */
  patterns: string[];
  timeout_ms?: number;
  env: Record<string, string>;
}

/** The headers.* keys add_header can set, at the top level or in one route; each optional until one says. */
export interface HeaderKeysDraft {
  /** Always the exact value: nginx's is never phpgate's built-in one. */
  hsts?: string;
  csp?: string;
  frame_options?: 'SAMEORIGIN' | 'DENY';
  referrer_policy?: string;
  /** Only `nosniff` exists, so only true can be said. */
  nosniff?: true;
  set: Record<string, string>;
}

/** A cache rule: statuses, stale_s and key only where they differ from CACHE_RULE_DEFAULTS. */
export type CacheRuleDraft = Pick<CacheRule, 'pattern' | 'ttl_s'> & Partial<Pick<CacheRule, 'statuses' | 'stale_s' | 'key'>>;
export type CacheRuleValue = Omit<CacheRuleDraft, 'pattern'>;

/** One step of a rewrite script (docs/ROUTES.md): nginx's rewrite module, in order. */
export type RewriteStep = { rewrite: string } | { set: string } | { if: string; then: RewriteStep[] } | { return: string } | { break: true };

export type AccessRule = { allow: string } | { deny: string };

export interface AddHeaderDraft {
  name: string;
  value: string;
  always?: true;
}

/** A route's cache: the rule's keys where they differ from CACHE_RULE_DEFAULTS, and nginx's bypass values. */
export type RouteCacheDraft = CacheRuleValue & { bypass?: string[]; no_store?: string[] };

/** proxy: an upstreams[] entry without pattern, only the keys that differ from the defaults. */
export type ProxyDraft = Omit<UpstreamDraft, 'pattern' | 'websockets' | 'strip_prefix'> & { websockets?: true; strip_prefix?: string };

export type PhpRouteDraft = true | { script?: string; split_path_info?: string; path_info?: string | false; pool?: string };

/** One nginx location as a route (docs/ROUTES.md); keys in the order they are written. */
export interface RouteDraft {
  match: string;
  internal?: true;
  deny?: true | number;
  access?: AccessRule[];
  auth_basic?: { realm: string; user_file: string };
  rewrite?: RewriteStep[];
  return?: number | string;
  root?: string;
  alias?: string;
  index?: string[];
  try_files?: string[];
  php?: PhpRouteDraft;
  proxy?: ProxyDraft;
  add_header?: AddHeaderDraft[];
  expires?: string;
  cache?: RouteCacheDraft;
  routes?: RouteDraft[];
}

/** gateway.yaml's keys, each optional until the nginx file says something about it. */
export interface Draft {
  server: {
    host?: string;
    port?: number;
    server_name?: string;
    max_body_mb?: number;
    processes?: number | 'auto';
    tls?: { cert: string; key: string };
    redirect_http_port?: number;
    trusted_proxies: string[];
    proxy_protocol?: true;
    timeouts: { header_ms?: number; keepalive_ms?: number; body_ms?: number; send_ms?: number };
    limits: { header_kb?: number; url_kb?: number; connections_per_ip?: number; h2_max_streams?: number };
  };
  php: {
    docroot: string;
    index?: string[];
    try_files?: string[];
    timeout_ms?: number;
    ini: Record<string, string>;
    env: Record<string, string>;
  };
  pools: PoolDraft[];
  static: {
    cache_control: CacheControlRule[];
    precompressed?: boolean;
    charset?: string;
    charset_types?: string[];
    deny: string[];
    deny_status?: 403 | 404;
    follow_symlinks?: boolean;
    error_pages: Record<string, string>;
  };
  headers: HeaderKeysDraft & { server?: string; routes: HeaderRoute[] };
  compression: { gzip?: boolean; brotli?: boolean; min_bytes?: number; gzip_level?: number; brotli_level?: number };
  rate_limit: { rules: RateLimitRule[] };
  cache: { max_mb?: number; header?: string; lock_ms?: number; rules: CacheRuleDraft[]; bypass_cookies?: string[] };
  upstreams: UpstreamDraft[];
  logging: { access?: boolean };
  /** Server-level rewrite directives (and translated maps), run before a route is chosen. */
  rewrite: RewriteStep[];
  /** null: the server has no locations, and the global keys route as before. */
  routes: RouteDraft[] | null;
}

export function newDraft(docroot: string): Draft {
  return {
    server: { trusted_proxies: [], timeouts: {}, limits: {} },
    php: { docroot, ini: {}, env: {} },
    pools: [],
    static: { cache_control: [], deny: [], error_pages: {} },
    headers: { set: {}, routes: [] },
    compression: {},
    rate_limit: { rules: [] },
    cache: { rules: [] },
    upstreams: [],
    logging: {},
    rewrite: [],
    routes: null,
  };
}

/** The draft as gateway.yaml's object: only keys that differ from DEFAULTS, and php.docroot. */
export function toConfigObject(draft: Draft): Record<string, unknown> {
  const pools = draft.pools.map((p) => ({
    name: p.name,
    ...(p.patterns.length === 0 ? {} : { patterns: p.patterns }),
    ...(p.timeout_ms === undefined ? {} : { timeout_ms: p.timeout_ms }),
    ...(Object.keys(p.env).length === 0 ? {} : { env: p.env }),
  }));
  const { rewrite, routes, ...keys } = draft;
  const pruned = prune({ ...keys, pools }, DEFAULTS) as Record<string, unknown> | undefined;
  const out = pruned ?? {};
  const php = (out['php'] ?? {}) as Record<string, unknown>;
  // docroot first in php, whatever else is there.
  out['php'] = orderKeys({ ...php, docroot: draft.php.docroot }, Object.keys(DEFAULTS.php));
  const ordered = orderKeys(out, Object.keys(DEFAULTS));
  // Last, as an nginx server block ends with its locations: the server-level rewrites, then the routes.
  // Copies: routes share what they inherit (the server's access list), a caller may change one of them.
  if (rewrite.length > 0) ordered['rewrite'] = structuredClone(rewrite);
  if (routes !== null) ordered['routes'] = routes.map(orderRoute);
  return ordered;
}

/** A route's keys in RouteDraft's order (match first, nested routes last), whatever order they were set in. */
const ROUTE_KEYS: readonly (keyof RouteDraft)[] = [
  'match',
  'internal',
  'deny',
  'access',
  'auth_basic',
  'rewrite',
  'return',
  'root',
  'alias',
  'index',
  'try_files',
  'php',
  'proxy',
  'add_header',
  'expires',
  'cache',
  'routes',
];

function orderRoute(route: RouteDraft): Record<string, unknown> {
  const copy = structuredClone(route);
  const out: Record<string, unknown> = {};
  for (const k of ROUTE_KEYS) if (copy[k] !== undefined) out[k] = k === 'routes' ? route.routes!.map(orderRoute) : copy[k];
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Removes undefined values, empty mappings and values equal to the default; lists are compared whole. */
function prune(value: unknown, defaults: unknown): unknown {
  if (value === undefined) return undefined;
  if (isPlainObject(value)) {
    const base = isPlainObject(defaults) ? defaults : {};
    const out: Record<string, unknown> = {};
    // In gateway.example.yaml's order (DEFAULTS follows it), then any free-form keys.
    for (const [k, v] of Object.entries(orderKeys(value, Object.keys(base)))) {
      const p = prune(v, base[k]);
      if (p !== undefined) out[k] = p;
    }
    // A free-form map (env, ini, error_pages) that is empty equals its empty default.
    return Object.keys(out).length === 0 ? undefined : out;
  }
  return JSON.stringify(value) === JSON.stringify(defaults) ? undefined : value;
}

function orderKeys(obj: Record<string, unknown>, order: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of order) if (k in obj) out[k] = obj[k];
  for (const k of Object.keys(obj)) if (!(k in out)) out[k] = obj[k];
  return out;
}

export interface YamlHeader {
  readonly source: string;
  readonly server: string;
}

/** gateway.yaml text: the report as comments, then the keys. */
export function renderYaml(config: Record<string, unknown>, warnings: readonly Warning[], header: YamlHeader): string {
  const lines = [
    `# gateway.yaml imported from ${header.source} by \`phpgate import-nginx\` (${header.server}).`,
    "# Only keys that differ from phpgate's defaults are written; see gateway.example.yaml for the rest.",
  ];
  const warned = warnings.filter((w) => w.kind === WarningKind.Warning);
  const noted = warnings.filter((w) => w.kind === WarningKind.Note);
  lines.push('#');
  lines.push(`# Warnings (${warned.length}): not translated, or translated with a different behaviour; review each.`);
  for (const w of warned) lines.push(`# ${formatWarning(w)}`);
  lines.push('#');
  lines.push(`# Notes (${noted.length}): translated, or already what phpgate does.`);
  for (const w of noted) lines.push(`# ${formatWarning(w)}`);
  // Routes share what they inherit (the server's access list): written out each time, not as YAML aliases.
  const doc = new Document(config, { aliasDuplicateObjects: false });
  return `${lines.join('\n')}\n\n${doc.toString({ lineWidth: 0 })}`;
}
