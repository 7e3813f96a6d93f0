/**
 * nginx `location` blocks. Each is one of: a PHP location (fastcgi_pass: the default pool, or a named pool
 * whose patterns come from the location), a reverse proxy (proxy_pass → upstreams), a refusal (deny all /
 * return 403|404 → static.deny, or nothing when phpgate's dotfile rule covers it), or a plain location whose
 * directives are translated one by one with the location's patterns (expires → static.cache_control …).
 */
import path from 'node:path';
import { httpUrl, INVALID, poolName } from '../config/checks.js';
import { isBasenameGlob } from '../config/pattern.js';
import { DEFAULT_POOL_NAME } from '../config/semantics.js';
import type { PoolDraft } from './emit.js';
import type { Handler, ImportContext, PhpTarget, Scope } from './context.js';
import { headerInheritance } from './headers.js';
import { isRegex, LocationKind, locationGlobs, locationMatches, rank, readLocation, type Location } from './location.js';
import { proxyDirectives, upstreamBlock, type ProxySettings } from './proxy.js';
import type { Directive } from './parse.js';
import { regexToGlobs } from './regex-glob.js';
import { expiresToCacheControl } from './units.js';

/** A path that only a PHP location for every script (not a front-controller-only one) would run. */
export const OTHER_PHP_PATH = '/some/other-script.php';

/** A `location` block: a PHP location, a proxy, a refusal, or plain (its directives go to `handle`). */
export function handleLocation(cx: ImportContext, d: Directive, parent: Scope, handle: Handler): void {
  const loc = readLocation(d);
  if ('error' in loc) {
    cx.report.warn(d, `not translated: ${loc.error}`);
    return cx.report.doneTree(d);
  }
  if (loc.kind === LocationKind.Named) return; // reached by try_files (usedNamed), else reported by sweep (translate.ts)
  const children = d.children ?? [];
  const scope: Scope = { level: 'location', loc, d, php: null, chain: [children, ...parent.chain] };
  const status = refusalStatus(children);
  if (loc.kind === LocationKind.Exact && status === null) cx.exactPaths.push({ d, path: loc.match });
  if (status === null) headerInheritance(cx, scope);
  const pass = children.find((c) => c.name === 'fastcgi_pass');
  if (pass !== undefined) return phpLocation(cx, d, loc, pass, scope, handle);
  const proxy = children.find((c) => c.name === 'proxy_pass');
  if (proxy !== undefined) return proxyLocation(cx, d, loc, proxy, scope, handle);
  if (status !== null) return refusal(cx, d, loc, status);
  cacheHeaders(cx, children, scope);
  for (const c of children) handle(cx, c, scope);
  if (!cx.report.isHandled(d)) {
    if (children.length === 0) cx.report.note(d, "empty location: phpgate's routing (static files, php.try_files) applies");
    else cx.report.done(d);
  }
}

/** `deny all` or `return 403|404|410|444` without an allow list: a location that refuses every request. */
function refusalStatus(children: readonly Directive[]): number | null {
  const ret = children.find((c) => c.name === 'return' && c.args.length === 1 && /^(403|404|410|444)$/.test(c.args[0]!));
  if (ret !== undefined) return Number(ret.args[0]); // return runs (rewrite phase) before deny (access phase)
  const restricted = children.some((c) => c.name === 'allow' && c.args[0] !== 'all');
  if (!restricted && children.some((c) => c.name === 'deny' && c.args[0] === 'all')) return 403;
  return null;
}

function refusal(cx: ImportContext, d: Directive, loc: Location, status: number): void {
  cx.report.doneTree(d);
  if (isDotfileRule(loc)) {
    cx.refusals.push({ d, status });
    cx.report.note(d, 'dotfiles: phpgate refuses them itself (static.deny_status; /.well-known/ stays public), no rule needed');
    return;
  }
  const globs = locationGlobs(loc);
  if (!globs.ok) {
    cx.report.warn(d, `not translated: ${globs.reason}; phpgate serves these paths`);
    return;
  }
  const deny = globs.globs.map(asDenyGlob);
  cx.addDeny(deny);
  cx.refusals.push({ d, status });
  const approx = globs.approximations.length > 0 ? ` (approximately: ${globs.approximations.join('; ')})` : '';
  cx.report.note(d, `static.deny: ${deny.join(', ')}${approx}`);
}

function phpLocation(cx: ImportContext, d: Directive, loc: Location, pass: Directive, parent: Scope, handle: Handler): void {
  const target = pass.args[0] ?? '';
  const key = cx.fastcgiKey(target);
  const upstream = cx.upstreams.get(target);
  let php: PhpTarget;
  if (key === cx.mainKey) {
    const main = d === cx.mainPhp;
    php = { kind: 'default', main };
    if (!main) {
      cx.report.note(d, 'PHP on the default pool, as the main PHP location');
    } else if (locationMatches(loc, OTHER_PHP_PATH)) {
      cx.report.note(d, 'the PHP location: phpgate runs every existing .php file in the docroot (never sends PHP source)');
    } else {
      cx.frontController = { d, loc };
      cx.report.done(d);
    }
    cx.report.note(
      pass,
      main
        ? `the default pool: phpgate runs its own php-cgi workers (php.worker_count; size it like php-fpm's pm.max_children) in place of ${target}`
        : 'the default pool',
    );
  } else {
    const globs = locationGlobs(loc);
    if (!globs.ok) {
      cx.report.warn(d, `not translated: a second PHP upstream (${target}) for a location phpgate cannot route (${globs.reason})`);
      return cx.report.doneTree(d);
    }
    const pool = poolFor(cx, key, target);
    for (const pattern of globs.globs) cx.poolPatterns.push({ rank: rank(loc, cx.orderOf(d)), pattern, d, value: pool });
    php = { kind: 'pool', pool };
    const approx = globs.approximations.length > 0 ? ` (approximately: ${globs.approximations.join('; ')})` : '';
    cx.report.note(d, `pools[${pool.name}].patterns: ${globs.globs.join(', ')}${approx}`);
    cx.report.note(
      pass,
      `pool ${pool.name}: its own php-cgi workers (worker_count inherits php.worker_count; size it like that php-fpm pool's pm.max_children) in place of ${target}`,
    );
  }
  if (upstream !== undefined && !cx.report.isHandled(upstream.d)) {
    const addrs = upstream.servers.map((s) => s.args[0] ?? '').join(', ');
    cx.report.note(upstream.d, `php-fpm at ${addrs}: replaced by phpgate's ${php.kind === 'default' ? 'default pool' : `pool ${php.pool.name}`}`);
    cx.report.doneTree(upstream.d);
  }
  const scope: Scope = { ...parent, php };
  for (const c of d.children ?? []) {
    if (c === pass) continue;
    if (c.name === 'internal') {
      internal(cx, c, loc);
      continue;
    }
    handle(cx, c, scope);
  }
}

/** `internal` on the front controller's location: direct requests are refused, try_files still reaches it. */
function internal(cx: ImportContext, d: Directive, loc: Location): void {
  const globs = locationGlobs(loc);
  if (!globs.ok) return cx.report.warn(d, `not translated: ${globs.reason}`);
  cx.addDeny(globs.globs.map(asDenyGlob));
  cx.refusals.push({ d, status: 404 });
  cx.report.note(
    d,
    `static.deny: ${globs.globs.join(', ')} (refuses direct requests with 404; php.try_files still reaches the script, as nginx's internal)`,
  );
}

function poolFor(cx: ImportContext, key: string, target: string): PoolDraft {
  const existing = cx.pools.get(key);
  if (existing !== undefined) return existing;
  const base = (
    cx.upstreams.has(target) ? target : target.startsWith('unix:') ? path.basename(target).replace(/\.sock$/, '') : `pool-${target.split(':').at(-1)}`
  )
    .replace(/[^A-Za-z0-9_-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '');
  const stem = poolName.parse(base) === INVALID || base.toLowerCase() === DEFAULT_POOL_NAME ? 'pool' : base;
  const taken = new Set([...cx.pools.values()].map((p) => p.name));
  let name = stem;
  for (let i = 2; taken.has(name); i++) name = `${stem}-${i}`;
  const pool: PoolDraft = { name, patterns: [], env: {} };
  cx.pools.set(key, pool);
  cx.draft.pools.push(pool);
  return pool;
}

function proxyLocation(cx: ImportContext, d: Directive, loc: Location, pass: Directive, scope: Scope, handle: Handler): void {
  const url = pass.args[0] ?? '';
  const m = /^(https?):\/\/([^/]+)(\/.*)?$/.exec(url);
  if (m === null || url.includes('$')) {
    cx.report.warn(d, `not translated: upstreams[].targets take http(s)://host:port URLs, not "${url}"`);
    return cx.report.doneTree(d);
  }
  const [, scheme, hostPart, uri] = m as unknown as [string, string, string, string | undefined];
  const upstream = cx.upstreams.get(hostPart);
  const targets = upstream === undefined ? [`${scheme}://${hostPart}`] : upstream.servers.map((s) => `${scheme}://${s.args[0] ?? ''}`);
  // A unix socket would parse as host "unix": refused explicitly, upstreams speak TCP.
  const bad = targets.filter((t) => t.includes('unix:') || httpUrl.parse(t) === INVALID);
  if (bad.length > 0 || targets.length === 0) {
    cx.report.warn(d, `not translated: upstreams[].targets take http(s)://host:port URLs (${bad.join(', ') || 'no servers'})`);
    return cx.report.doneTree(d);
  }
  const globs = locationGlobs(loc);
  if (!globs.ok) {
    cx.report.warn(d, `not translated: ${globs.reason}`);
    return cx.report.doneTree(d);
  }
  let strip = '';
  const notes: string[] = [];
  if (uri !== undefined && uri !== loc.match) {
    const prefix = loc.kind === LocationKind.Prefix || loc.kind === LocationKind.PrefixNoRegex;
    if (prefix && uri === '/') strip = loc.match.replace(/\/$/, '');
    else notes.push(`nginx replaces ${loc.match} with ${uri}; phpgate can only strip a prefix, so paths reach the upstream unchanged`);
  }
  const websockets = (d.children ?? []).some((c) => c.name === 'proxy_set_header' && c.args[0]?.toLowerCase() === 'upgrade');
  const settings: ProxySettings = {};
  const rest = proxyDirectives(cx, d, pass, scope, settings);
  const approx = globs.approximations.length > 0 ? `; approximately: ${globs.approximations.join('; ')}` : '';
  const host = settings.host_header === 'target' ? ", host_header target (no proxy_set_header Host: nginx sends the target's)" : '';
  const summary = `upstreams: ${globs.globs.join(', ')} → ${targets.join(', ')}${websockets ? ', websockets' : ''}${strip === '' ? '' : `, strip_prefix ${strip}`}${host}${approx}`;
  if (notes.length > 0) cx.report.warn(d, `${summary}; ${notes.join('; ')}`);
  else cx.report.note(d, summary);
  cx.report.done(pass);
  if (upstream !== undefined) upstreamBlock(cx, upstream, settings);
  for (const pattern of globs.globs) cx.draft.upstreams.push({ pattern, targets, websockets, strip_prefix: strip, ...settings });
  for (const c of rest) handle(cx, c, scope);
  cx.report.done(d);
}

/** expires and add_header Cache-Control of a server or plain location block: one static.cache_control rule per pattern. */
export function cacheHeaders(cx: ImportContext, children: readonly Directive[], scope: Scope): void {
  const expires = children.filter((c) => c.name === 'expires').at(-1);
  const cc = children.filter((c) => c.name === 'add_header' && c.args[0]?.toLowerCase() === 'cache-control').at(-1);
  if (expires === undefined && cc === undefined) return;
  const parts: string[] = [];
  if (expires !== undefined) {
    const v = expiresToCacheControl(expires.args);
    if ('unsupported' in v) {
      cx.report.warn(expires, `not translated: ${v.unsupported}`);
    } else if ('off' in v) {
      cx.report.note(expires, "no Cache-Control, as phpgate's default");
    } else {
      parts.push(v.value);
    }
  }
  if (cc !== undefined && cc.args[1] !== undefined) parts.push(cc.args[1]);
  const involved = [expires, cc].filter((x): x is Directive => x !== undefined && !cx.report.isHandled(x));
  if (parts.length === 0) return;
  const globs = cx.patterns(scope);
  if (!globs.ok) {
    for (const x of involved) cx.report.warn(x, `not translated: this location has no phpgate pattern (${globs.reason})`);
    return;
  }
  // nginx sends expires' Cache-Control and add_header's as two headers; a client reads them as one list.
  const value = parts.join(', ');
  const at = scope.d ?? involved[0]!;
  for (const pattern of globs.globs) cx.cacheControl.push({ rank: rank(scope.loc, cx.orderOf(at)), pattern, d: at, value });
  const approx = globs.approximations.length > 0 ? ` (approximately: ${globs.approximations.join('; ')})` : '';
  for (const x of involved) cx.report.note(x, `static.cache_control: ${globs.globs.join(', ')} → "${value}"${approx}`);
}

/**
 * A location that refuses dotfiles (`~ /\.`, `~ /\.ht`, `~ (^|/)\.`, Laravel's `~ /\.(?!well-known).*`):
 * phpgate refuses every dotfile and dot-directory except /.well-known/ already.
 */
function isDotfileRule(loc: Location): boolean {
  if (!isRegex(loc) && loc.kind !== LocationKind.Prefix && loc.kind !== LocationKind.PrefixNoRegex) return false;
  const r = isRegex(loc) ? regexToGlobs(loc.match.replace(/\(\?!well-known\/?\)/, ''), false) : locationGlobs(loc);
  return r.ok && r.globs.every((g) => g.includes('/.'));
}

/**
 * A location glob as a static.deny entry. A deny entry without `/` matches the last path segment only, which is
 * the same as the URL glob for `*.sql`; anything else (`*foo*`) is prefixed with `*` and `/` to keep the URL meaning.
 */
function asDenyGlob(glob: string): string {
  if (!isBasenameGlob(glob) || /^\*[^*]*$/.test(glob)) return glob;
  return `*/${glob}`;
}
