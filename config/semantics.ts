/**
 * Rules that span keys, run on the built configuration (defaults and overrides applied): the docroot exists,
 * TLS files come in pairs, listeners do not collide, pool names are unique, and no pattern is dead.
 * A value already reported as malformed is skipped, so one mistake gives one message.
 */
import fs from 'node:fs';
import { findGroup, findUser, numericId } from './accounts.js';
import { compilePattern, hasWildcard, patternMatchesEverything, type PathMatcher } from './pattern.js';
import type { Loc, ReadContext } from './reader.js';
import { missingNamedRoutes, unknownVariables } from './routes.js';
import type { GatewayConfig, PoolConfig, RouteConfig, TlsConfig, UpstreamConfig } from './types.js';

/** The name of the implicit pool built from php.*; a named pool may not take it. */
export const DEFAULT_POOL_NAME = 'default';

export function checkConfig(cfg: GatewayConfig, cx: ReadContext): void {
  checkDocroot(cfg.php.docroot, cx);
  cfg.static.internal.forEach((l, i) => checkExisting(`static.internal[${i}].alias`, l.alias, 'directory', cx));
  checkTls(cfg.server.tls, cx);
  checkListeners(cfg, cx);
  checkPoolNames(cfg.pools, cx);
  checkAccounts(cfg, cx);
  checkReachable(poolPatterns(cfg.pools), cx);
  // static.cache_control and headers.routes are first-match-wins too; rate limits all apply, so overlap there is intended.
  checkReachable(
    cfg.static.cache_control.map((r, i) => ({ pattern: r.pattern, path: `static.cache_control[${i}].pattern` })),
    cx,
  );
  checkReachable(
    cfg.cache.rules.map((r, i) => ({ pattern: r.pattern, path: `cache.rules[${i}].pattern` })),
    cx,
  );
  checkReachable(
    cfg.headers.routes.map((r, i) => ({ pattern: r.pattern, path: `headers.routes[${i}].pattern` })),
    cx,
  );
  checkReachable(
    cfg.upstreams.map((u, i) => ({ pattern: u.pattern, path: `upstreams[${i}].pattern` })),
    cx,
  );
  checkStripPrefixes(cfg.upstreams, cx);
  checkProxyProtocol(cfg, cx);
  checkUrlLimit(cfg, cx);
  checkRoutes(cfg, cx);
}

/** Route pools exist, htpasswd files and roots exist, every variable is one nginx would know. */
function checkRoutes(cfg: GatewayConfig, cx: ReadContext): void {
  const pools = new Set([DEFAULT_POOL_NAME, ...cfg.pools.map((p) => p.name)]);
  const walk = (list: readonly RouteConfig[], at: string): void => {
    list.forEach((r, i) => {
      const here = `${at}[${i}]`;
      if (r.php?.pool != null && !pools.has(r.php.pool)) {
        cx.reportAt(`${here}.php`, `${here}.php.pool: no pool named "${r.php.pool}" (pools: ${[...pools].join(', ')})`);
      }
      if (r.auth_basic !== null) checkExisting(`${here}.auth_basic.user_file`, r.auth_basic.user_file, 'file', cx);
      if (r.root !== null) checkExisting(`${here}.root`, r.root, 'directory', cx);
      walk(r.routes, `${here}.routes`);
    });
  };
  walk(cfg.routes, 'routes');
  for (const message of missingNamedRoutes(cfg.routes)) cx.reportAt('routes', message);
  for (const message of unknownVariables(cfg.rewrite, cfg.routes)) cx.reportAt(cfg.routes.length > 0 ? 'routes' : 'rewrite', message);
}

/** node counts the request line against the header limit: a url_kb at or over header_kb could never answer 414. */
function checkUrlLimit({ server }: GatewayConfig, cx: ReadContext): void {
  if (server.limits.url_kb < server.limits.header_kb || anyRejected(cx, 'server.limits.url_kb', 'server.limits.header_kb')) return;
  cx.reportAt(
    'server.limits.url_kb',
    `server.limits.url_kb (${server.limits.url_kb}) must be below server.limits.header_kb (${server.limits.header_kb}): the request line counts against the header limit, so a longer URL would get 431, never 414`,
  );
}

/** "line 7" in the same file, otherwise the whole place ("env PHPGATE_PORT"). */
function ref(loc: Loc, cx: ReadContext): string {
  if (loc.line === 0) return loc.file;
  return loc.file === cx.file ? `line ${loc.line}` : `${loc.file}:${loc.line}`;
}

function anyRejected(cx: ReadContext, ...paths: string[]): boolean {
  return paths.some((p) => cx.wasRejected(p));
}

/** fs.statSync without the throw: undefined when absent, the error text when unreadable. */
function stat(file: string): fs.Stats | undefined | string {
  try {
    return fs.statSync(file, { throwIfNoEntry: false });
  } catch (err) {
    return err instanceof Error ? err.message : String(err); // EACCES and friends become the text
  }
}

function checkExisting(path: string, file: string, kind: 'directory' | 'file', cx: ReadContext): void {
  if (cx.wasRejected(path)) return;
  const st = stat(file);
  const ok = typeof st === 'object' && (kind === 'directory' ? st.isDirectory() : st.isFile());
  if (ok) return;
  const why = st === undefined ? 'does not exist' : typeof st === 'string' ? `cannot be read (${st})` : `is not a ${kind}`;
  cx.reportAt(path, `${path} must be an existing ${kind}; ${file} ${why}`);
}

function checkDocroot(docroot: string, cx: ReadContext): void {
  checkExisting('php.docroot', docroot, 'directory', cx);
}

function checkTls(tls: TlsConfig, cx: ReadContext): void {
  if (tls.cert === '' && tls.key === '') return;
  for (const [part, other] of [
    ['cert', 'key'],
    ['key', 'cert'],
  ] as const) {
    const path = `server.tls.${part}`;
    if (tls[part] !== '') checkExisting(path, tls[part], 'file', cx);
    else if (!cx.wasRejected(path)) {
      const otherPath = `server.tls.${other}`;
      cx.report(path, cx.locate(otherPath), `${path} is required when ${otherPath} is set`);
    }
  }
}

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '']);

function checkListeners({ server, admin }: GatewayConfig, cx: ReadContext): void {
  if (server.redirect_http_port > 0 && !anyRejected(cx, 'server.redirect_http_port', 'server.port')) {
    const path = 'server.redirect_http_port';
    if (server.tls.cert === '') {
      cx.reportAt(path, `${path} needs server.tls (it redirects plain HTTP to https); use 0 without TLS`);
    } else if (server.redirect_http_port === server.port) {
      cx.reportAt(path, `${path} must differ from server.port (${server.port})`);
    }
  }
  const sameHost = admin.host === server.host || WILDCARD_HOSTS.has(admin.host) || WILDCARD_HOSTS.has(server.host);
  if (admin.port > 0 && admin.port === server.port && sameHost && !anyRejected(cx, 'admin.port', 'server.port')) {
    const message = `admin.port must differ from server.port (${server.port}), or be 0 for no admin listener`;
    cx.reportAt('admin.port', message);
  }
}

/** A PROXY header is believed only from a trusted peer; with none configured it would be believed from no one. */
function checkProxyProtocol({ server }: GatewayConfig, cx: ReadContext): void {
  if (!server.proxy_protocol || server.trusted_proxies.length > 0 || cx.wasRejected('server.proxy_protocol')) return;
  cx.reportAt(
    'server.proxy_protocol',
    'server.proxy_protocol needs server.trusted_proxies: the load balancers whose PROXY header (the client address) is believed',
  );
}

function checkPoolNames(pools: readonly PoolConfig[], cx: ReadContext): void {
  // Case-insensitively: names become socket file names, and macOS file systems fold case.
  const firstByName = new Map<string, string>();
  pools.forEach((pool, i) => {
    const path = `pools[${i}].name`;
    const key = pool.name.toLowerCase();
    const first = firstByName.get(key);
    if (key === DEFAULT_POOL_NAME) {
      cx.reportAt(path, `${path} "${pool.name}" is reserved for the implicit pool built from php.*; pick another`);
    } else if (first !== undefined) {
      const at = ref(cx.locate(first), cx);
      cx.reportAt(path, `${path} "${pool.name}" is already the name of the pool at ${at}; pool names must be unique`);
    } else {
      firstByName.set(key, path);
    }
  });
}

/**
 * php.user / php.group and each pool's name an account that exists (a numeric id need not, but then the group
 * must be given: there is no primary group to take). A pool's value inherited from php.* is checked there once.
 */
function checkAccounts(cfg: GatewayConfig, cx: ReadContext): void {
  const places = [{ at: 'php', s: cfg.php }, ...cfg.pools.map((s, i) => ({ at: `pools[${i}]`, s }))];
  for (const { at, s } of places) {
    const own = (key: 'user' | 'group'): boolean => s[key] !== '' && (at === 'php' || s[key] !== cfg.php[key]) && !cx.wasRejected(`${at}.${key}`);
    if (own('user') && findUser(s.user) === null) {
      if (numericId(s.user) === null) cx.reportAt(`${at}.user`, `${at}.user: no user "${s.user}" in /etc/passwd`);
      else if (s.group === '')
        cx.reportAt(`${at}.user`, `${at}.user ${s.user} is not in /etc/passwd, so it has no primary group: set ${at}.group too`);
    }
    if (own('group') && numericId(s.group) === null && findGroup(s.group) === null) {
      cx.reportAt(`${at}.group`, `${at}.group: no group "${s.group}" in /etc/group`);
    }
  }
}

interface PlacedPattern {
  readonly pattern: string;
  readonly path: string;
}

function poolPatterns(pools: readonly PoolConfig[]): PlacedPattern[] {
  return pools.flatMap((pool, i) => pool.patterns.map((pattern, j) => ({ pattern, path: `pools[${i}].patterns[${j}]` })));
}

/**
 * In a first-match-wins list, a pattern after a catch-all, after its own duplicate, or a literal path that an
 * earlier pattern already matches, can never be chosen: almost always a misordering, so an error.
 */
function checkReachable(patterns: readonly PlacedPattern[], cx: ReadContext): void {
  const earlier: (PlacedPattern & { readonly matches: PathMatcher })[] = [];
  for (const p of patterns) {
    const blocker = earlier.find((e) => shadows(e, p.pattern));
    if (blocker !== undefined) {
      cx.reportAt(p.path, `${p.path} "${p.pattern}" can never match: ${reason(blocker, p.pattern, cx)}`);
    }
    earlier.push({ ...p, matches: compilePattern(p.pattern) });
  }
}

function shadows(e: { pattern: string; matches: PathMatcher }, pattern: string): boolean {
  if (patternMatchesEverything(e.pattern) || e.pattern === pattern) return true;
  return !hasWildcard(pattern) && e.matches(pattern); // a literal path is decidable; two globs are not compared
}

function reason(blocker: PlacedPattern, pattern: string, cx: ReadContext): string {
  const at = `${blocker.path}, ${ref(cx.locate(blocker.path), cx)}`;
  if (patternMatchesEverything(blocker.pattern)) {
    return `the earlier catch-all "${blocker.pattern}" (${at}) takes every path first`;
  }
  if (blocker.pattern === pattern) return `it already appears earlier (${at})`;
  return `the earlier "${blocker.pattern}" (${at}) already matches it`;
}

/**
 * A strip_prefix that none of its pattern's paths can start with (it applies at a segment boundary only: "/api"
 * strips "/api" and "/api/x", never "/apix") would forward every path unchanged: a typo, reported.
 */
function checkStripPrefixes(upstreams: readonly UpstreamConfig[], cx: ReadContext): void {
  upstreams.forEach((u, i) => {
    const path = `upstreams[${i}].strip_prefix`;
    if (u.strip_prefix === '' || anyRejected(cx, path, `upstreams[${i}].pattern`)) return;
    const prefix = u.strip_prefix.replace(/\/+$/, '');
    if (prefix === '') return; // "/": strips nothing
    const wild = u.pattern.search(/[*?]/);
    const literal = wild < 0 ? u.pattern : u.pattern.slice(0, wild);
    const applies =
      literal.length <= prefix.length
        ? wild >= 0
          ? prefix.startsWith(literal)
          : literal === prefix
        : literal.startsWith(prefix) && literal.charCodeAt(prefix.length) === 47; /* '/' */
    if (applies) return;
    cx.reportAt(
      path,
      `${path} "${u.strip_prefix}" can never apply: no path that upstreams[${i}].pattern "${u.pattern}" matches starts with "${prefix}" followed by "/" or its end`,
    );
  });
}
