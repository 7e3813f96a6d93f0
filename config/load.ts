/**
 * loadConfig(): the one place configuration is read. YAML file (or text) → checked against the schema with
 * every problem located → env vars → CLI flags → defaults → paths resolved → cross-key rules → deep-frozen.
 * All problems are collected and thrown together as one ConfigError.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { INVALID } from './checks.js';
import { CACHE_RULE_DEFAULTS, DEFAULTS, RATE_RULE_DEFAULTS, UPSTREAM_DEFAULTS, withDefaults } from './defaults.js';
import { ConfigError, type ConfigIssue } from './errors.js';
import { deepFreeze } from './freeze.js';
import { applyEnv, applyFlags, type Overrides } from './overrides.js';
import { ReadContext } from './reader.js';
import { RENAMED, ROOT, type RawConfig, type RawPool } from './schema.js';
import { checkConfig } from './semantics.js';
import type { GatewayConfig, PhpConfig, PoolConfig, RouteConfig } from './types.js';

export type { Overrides } from './overrides.js';
export { ENV_VARS, type EnvVar } from './overrides.js';

export const EMBEDDED_SOURCE = '(embedded default)';
const INLINE_SOURCE = '(inline)';

export interface LoadOptions {
  /** Path of the YAML file; with `text`, only its display name (and the default baseDir). */
  file?: string;
  text?: string;
  env?: NodeJS.ProcessEnv;
  overrides?: Overrides;
  /** Relative paths in the file are resolved against this; default: the file's directory, else cwd. */
  baseDir?: string;
}

export function loadConfig({ file, text, env = process.env, overrides = {}, baseDir }: LoadOptions = {}): Readonly<GatewayConfig> {
  const source = file ?? (text === undefined ? EMBEDDED_SOURCE : INLINE_SOURCE);
  const { raw, cx } = readYaml(source, text ?? (file === undefined ? '' : readText(file)));
  applyEnv(raw, env, cx);
  applyFlags(raw, overrides, cx);
  const dir = baseDir ?? (file === undefined ? process.cwd() : path.dirname(path.resolve(file)));
  const config = build(raw, source, dir, env['PATH'] ?? '');
  checkConfig(config, cx);
  if (cx.issues.length > 0) throw new ConfigError(inReadingOrder(cx.issues));
  return deepFreeze(config);
}

/** File issues top to bottom (cross-key checks run last but belong where they point), then env, then flags. */
function inReadingOrder(issues: readonly ConfigIssue[]): ConfigIssue[] {
  const rank = (i: ConfigIssue): number => (i.line > 0 ? 0 : i.file.startsWith('env ') ? 2 : i.file.startsWith('--') ? 3 : 1);
  // Array.prototype.sort is stable, so issues at the same place keep the order they were found in.
  return [...issues].sort((a, b) => rank(a) - rank(b) || a.line - b.line || a.col - b.col);
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    // Rethrown as the configuration's error: a missing or unreadable file is the user's to fix, not a crash.
    const why = err instanceof Error ? err.message : String(err);
    throw new ConfigError([{ file, line: 0, col: 0, message: `cannot read the configuration file: ${why}` }]);
  }
}

function readYaml(source: string, text: string): { raw: RawConfig; cx: ReadContext } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const cx = new ReadContext(source, RENAMED, lines, doc);
  for (const e of [...doc.errors, ...doc.warnings]) cx.report('', cx.at(e.pos[0]), `invalid YAML: ${e.message}`);
  // A broken document's tree is guesswork; schema messages about it would only mislead.
  if (cx.issues.length > 0) throw new ConfigError(cx.issues);
  const raw = ROOT.read(cx.deref(doc.contents), { path: '', spath: '', loc: cx.at(0) }, cx);
  return { raw: raw === INVALID ? {} : raw, cx };
}

function build(raw: RawConfig, source: string, baseDir: string, searchPath: string): GatewayConfig {
  const fromBase = (p: string): string => (p === '' ? '' : path.resolve(baseDir, p));
  const server = withDefaults(DEFAULTS.server, raw.server);
  const php = withDefaults(DEFAULTS.php, raw.php);
  const logging = withDefaults(DEFAULTS.logging, raw.logging);
  const resolvedPhp = {
    ...php,
    binary: findOnPath(php.binary, searchPath, baseDir),
    docroot: fromBase(php.docroot),
    response_temp_dir: fromBase(php.response_temp_dir),
    // Unset: one directory per configuration file, so two instances on one host never share sockets or a pid file.
    socket_dir:
      raw.php?.socket_dir === undefined ? instanceSocketDir(source.startsWith('(') ? source : path.resolve(source)) : fromBase(php.socket_dir),
  };
  return {
    source,
    server: { ...server, tls: { cert: fromBase(server.tls.cert), key: fromBase(server.tls.key) } },
    admin: withDefaults(DEFAULTS.admin, raw.admin),
    php: resolvedPhp,
    pools: (raw.pools ?? []).map((pool) => inheritPool(pool, resolvedPhp)),
    static: (() => {
      const s = withDefaults(DEFAULTS.static, raw.static);
      return { ...s, internal: s.internal.map((l) => ({ prefix: l.prefix, alias: fromBase(l.alias) })) };
    })(),
    headers: withDefaults(DEFAULTS.headers, raw.headers),
    compression: withDefaults(DEFAULTS.compression, raw.compression),
    rate_limit: {
      store: raw.rate_limit?.store ?? DEFAULTS.rate_limit.store,
      headers: raw.rate_limit?.headers ?? DEFAULTS.rate_limit.headers,
      rules: (raw.rate_limit?.rules ?? []).map((r) => ({ ...RATE_RULE_DEFAULTS, ...r })),
    },
    cache: {
      ...withDefaults(DEFAULTS.cache, { ...raw.cache, rules: undefined }),
      rules: (raw.cache?.rules ?? []).map((r) => ({ ...CACHE_RULE_DEFAULTS, ...r })),
    },
    upstreams: (raw.upstreams ?? []).map((u) => ({ ...UPSTREAM_DEFAULTS, ...u })),
    rewrite: raw.rewrite ?? [],
    routes: resolveRoutes(raw.routes ?? [], fromBase),
    logging: { ...logging, file: fromBase(logging.file), access_file: fromBase(logging.access_file) },
  };
}

/**
 * php-cgi runs with a clean environment (no PATH), so its binary is looked up here, on the gateway's PATH.
 * Not found: left as given, and starting the pool reports it with the install hint.
 */
function findOnPath(binary: string, searchPath: string, baseDir: string): string {
  if (binary.includes('/')) return path.resolve(baseDir, binary);
  for (const dir of searchPath.split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, binary);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not in this directory (or not executable): keep looking
    }
  }
  return binary;
}

/** A named pool takes what it leaves out from php.*; ini and env are merged, the pool's entries winning. */
function inheritPool(pool: RawPool, php: PhpConfig): PoolConfig {
  return {
    name: pool.name,
    patterns: pool.patterns ?? [],
    worker_count: pool.worker_count ?? php.worker_count,
    memory_limit_mb: pool.memory_limit_mb ?? php.memory_limit_mb,
    max_requests: pool.max_requests ?? php.max_requests,
    timeout_ms: pool.timeout_ms ?? php.timeout_ms,
    queue_limit: pool.queue_limit ?? php.queue_limit,
    queue_timeout_ms: pool.queue_timeout_ms ?? php.queue_timeout_ms,
    ini: { ...php.ini, ...pool.ini },
    env: { ...php.env, ...pool.env },
    user: pool.user ?? php.user,
    group: pool.group ?? php.group,
  };
}

/** Route paths (root, alias, htpasswd files) are relative to the configuration file, as php.docroot. */
function resolveRoutes(list: readonly RouteConfig[], fromBase: (p: string) => string): RouteConfig[] {
  return list.map((r) => ({
    ...r,
    root: r.root === null ? null : fromBase(r.root),
    alias: r.alias === null ? null : fromBase(r.alias) + (r.alias.endsWith('/') ? '/' : ''),
    auth_basic: r.auth_basic === null ? null : { ...r.auth_basic, user_file: fromBase(r.auth_basic.user_file) },
    routes: resolveRoutes(r.routes, fromBase),
  }));
}

/** Root's runtime directory, where the default socket directories go (the systemd unit's RuntimeDirectory too). */
const RUN_DIR = '/run/phpgate';

/**
 * The default php.socket_dir of one configuration: a short hash of the file's absolute path, so two instances never
 * share one. Root: under /run/phpgate (a tmpfs on Debian), never on the filesystem where request bodies spool (the
 * OS temp dir, gateway/http/body.ts), so a client filling one cannot starve the other, and out of reach of tmp
 * cleaners. Anyone else: the temp dir, per user (the user's runtime dir is removed at logout and its variable
 * differs between a service and a shell, where `phpgate reload --config` must find the same directory).
 */
function instanceSocketDir(source: string): string {
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 10);
  const uid = process.getuid?.();
  if (uid === 0) return path.join(RUN_DIR, hash);
  return path.join(os.tmpdir(), `phpgate-${uid ?? os.userInfo().username}-${hash}`);
}
