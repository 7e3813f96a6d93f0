/**
 * The fastcgi_cache family → cache.*. `fastcgi_cache ZONE` becomes one cache rule per pattern of its location (the
 * main PHP location's: every path), made of what nginx reads there, each directive inherited from the enclosing
 * blocks as nginx does, and reported once:
 *
 *   fastcgi_cache_valid [code … | any] time   → ttl_s (200's time) and statuses (a time alone: 200 301 302)
 *   fastcgi_cache_key                         → key (the variables config/cache-key.ts knows)
 *   fastcgi_cache_use_stale                   → stale_s (the zone's inactive=: nginx keeps serving a stale entry
 *                                               until it goes unrequested that long; absent: 0, nginx never does)
 *   fastcgi_cache_lock, _lock_timeout         → cache.lock_ms (one for every rule)
 *   $cookie_NAME in fastcgi_cache_bypass / fastcgi_no_cache → cache.bypass_cookies (one list for every rule)
 *
 * The zone (fastcgi_cache_path) gives cache.max_mb, `add_header NAME $upstream_cache_status` cache.header. The
 * rest of nginx's cache tuning (methods, min_uses, background_update, revalidate, ignore_headers) is reported where
 * it stands.
 */
import { CACHE_KEY_VARIABLES, DEFAULT_CACHE_KEY, parseCacheKey } from '../config/cache-key.js';
import { cacheableStatus, headerName, INVALID } from '../config/checks.js';
import { CACHE_RULE_DEFAULTS, DEFAULTS } from '../config/defaults.js';
import { isMainPhp, type CacheZone, type ImportContext, type Scope } from './context.js';
import type { CacheRuleValue } from './emit.js';
import { rank } from './location.js';
import type { Directive } from './parse.js';
import { MB, parseSize, parseTime } from './units.js';

/** nginx's defaults: fastcgi_cache_path inactive=10m, fastcgi_cache_lock_timeout 5s. */
const NGINX_INACTIVE_S = 600;
const NGINX_LOCK_TIMEOUT_MS = 5000;
/** The codes of a fastcgi_cache_valid that gives a time alone (and phpgate's default statuses). */
const NGINX_VALID_CODES: readonly number[] = [200, 301, 302];

/** fastcgi_cache_use_stale's failures of PHP: phpgate serves a stale entry for all of them alike. */
const PHP_FAILURES: readonly string[] = ['error', 'timeout', 'invalid_header', 'http_500', 'http_503'];

/** `$upstream_cache_status` or `${upstream_cache_status}`, alone or inside a value. */
const CACHE_STATUS_VARIABLE = /\$(upstream_cache_status\b|\{upstream_cache_status\})/;

/** `fastcgi_cache_path PATH … keys_zone=NAME:SIZE [inactive=TIME] [max_size=SIZE]`, read where it is defined. */
export function readCacheZone(d: Directive): { name: string; zone: CacheZone } | null {
  const param = (p: string): string | undefined => d.args.find((a) => a.startsWith(`${p}=`))?.slice(p.length + 1);
  const name = param('keys_zone')?.split(':')[0];
  if (name === undefined) return null;
  const max = param('max_size');
  const inactive = param('inactive');
  const inactiveMs = inactive === undefined ? NGINX_INACTIVE_S * 1000 : parseTime(inactive);
  return {
    name,
    zone: { d, maxBytes: max === undefined ? null : parseSize(max), inactiveS: inactiveMs === null ? null : Math.floor(inactiveMs / 1000) },
  };
}

/** `fastcgi_cache ZONE`: a cache rule for each pattern of the location, built from what nginx reads there. */
export function fastcgiCache(cx: ImportContext, d: Directive, scope: Scope): void {
  const name = d.args[0] ?? '';
  if (name === 'off') return cx.report.note(d, "no caching here, as phpgate's default");
  const zone = cx.cacheZones.get(name);
  if (zone === undefined) return cx.report.warn(d, `not translated: no fastcgi_cache_path with keys_zone=${name}`);
  const globs = cx.patterns(scope);
  if (!globs.ok) return cx.report.warn(d, `not translated: this location has no phpgate pattern (${globs.reason})`);
  const valid = cx.inherited('fastcgi_cache_valid', scope);
  const validity = cacheValid(cx, valid);
  if (validity === null) {
    for (const v of valid) if (!cx.report.isHandled(v)) cx.report.note(v, `no time for 200 responses: see ${d.file}:${d.line}`);
    return cx.report.warn(d, "not translated: no fastcgi_cache_valid for 200 responses; phpgate's cache rules need a ttl");
  }
  cx.firstCache ??= d;
  const key = cacheKey(cx, d, scope);
  const stale = staleSeconds(cx, d, scope, zone);
  cacheLock(cx, d, scope);
  bypassCookies(cx, scope);
  reportZone(cx, zone);

  const { ttl_s, statuses } = validity;
  const value: CacheRuleValue = {
    ttl_s,
    ...(sameList(statuses, CACHE_RULE_DEFAULTS.statuses) ? {} : { statuses }),
    ...(stale === CACHE_RULE_DEFAULTS.stale_s ? {} : { stale_s: stale }),
    ...(key === CACHE_RULE_DEFAULTS.key ? {} : { key }),
  };
  const at = scope.d ?? d;
  for (const pattern of globs.globs)
    cx.cacheRules.push({ rank: isMainPhp(scope) ? rank(null, 0) : rank(scope.loc, cx.orderOf(at)), pattern, d, value });
  const approx = globs.approximations.length > 0 ? ` (approximately: ${globs.approximations.join('; ')})` : '';
  cx.report.note(
    d,
    `cache.rules ${globs.globs.join(', ')}: ttl_s ${ttl_s}, statuses [${statuses.join(', ')}], stale_s ${stale}, key "${key}"${approx}`,
  );
}

function sameList(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

interface ValidLine {
  readonly d: Directive;
  /** As written; a time alone stands for 200 301 302. */
  readonly codes: readonly (number | 'any')[];
  readonly ttlS: number;
}

/**
 * fastcgi_cache_valid lines → one ttl and the statuses stored. nginx gives each status the time of the first line
 * naming it (or `any`); phpgate has one ttl per rule, so 200's is taken and the other lines' statuses join it (a
 * warning where their time differs). null: 200 is not stored.
 */
function cacheValid(cx: ImportContext, valid: readonly Directive[]): { ttl_s: number; statuses: number[] } | null {
  const lines: ValidLine[] = [];
  for (const v of valid) {
    const time = v.args.at(-1);
    const ms = time === undefined ? null : parseTime(time);
    const written = v.args.slice(0, -1);
    const codes = written.length === 0 ? NGINX_VALID_CODES : written.map((c) => (c === 'any' ? c : /^\d{3}$/.test(c) ? Number(c) : NaN));
    if (ms === null || codes.some((c) => Number.isNaN(c))) {
      if (!cx.report.isHandled(v)) cx.report.warn(v, 'not translated: expected fastcgi_cache_valid [code … | any] time');
      continue;
    }
    lines.push({ d: v, codes, ttlS: Math.floor(ms / 1000) });
  }
  const ttlOf = (status: number): number => lines.find((l) => l.codes.includes(status) || l.codes.includes('any'))?.ttlS ?? 0;
  const ttl = ttlOf(200);
  if (ttl === 0) return null;
  const named = new Set<number>();
  for (const l of lines) for (const c of l.codes) for (const s of c === 'any' ? NGINX_VALID_CODES : [c]) named.add(s);
  const statuses = [...named].filter((s) => cacheableStatus.parse(s) !== INVALID && ttlOf(s) > 0).sort((a, b) => a - b);

  for (const l of lines) {
    if (cx.report.isHandled(l.d)) continue;
    const codes = l.codes.filter((c): c is number => c !== 'any');
    const refused = codes.filter((c) => cacheableStatus.parse(c) === INVALID);
    const listed = codes.filter((c) => !refused.includes(c)).join(' ');
    const implied = l.d.args.length === 1 ? " (nginx's codes for a time alone)" : '';
    if (refused.length > 0) cx.report.warn(l.d, `not translated: ${refused.join(' ')} (statuses take ${cacheableStatus.expected})`);
    if (l.codes.includes('any')) {
      cx.report.warn(
        l.d,
        `any: nginx stores every status for ${l.ttlS} s; phpgate stores the statuses listed only (statuses [${statuses.join(', ')}], ttl_s ${ttl})`,
      );
    } else if (listed === '') {
      continue;
    } else if (l.ttlS === 0) {
      cx.report.note(l.d, `${listed} not stored (time 0), as nginx`);
    } else if (l.ttlS === ttl) {
      cx.report.note(l.d, `ttl_s ${ttl}, statuses ${listed}${implied}`);
    } else {
      cx.report.warn(
        l.d,
        `${listed} stored for ${l.ttlS} s under nginx; phpgate has one ttl per rule: statuses ${listed} with ttl_s ${ttl} (200's time)`,
      );
    }
  }
  return { ttl_s: ttl, statuses };
}

/** fastcgi_cache_key → the rule's key; `$query_string` is nginx's other name for `$args`. */
function cacheKey(cx: ImportContext, d: Directive, scope: Scope): string {
  const keyD = cx.inherited('fastcgi_cache_key', scope).at(-1);
  if (keyD === undefined) {
    cx.report.note(d, `no fastcgi_cache_key (nginx warns at start and keys every answer alike): key keeps phpgate's default ${DEFAULT_CACHE_KEY}`);
    return DEFAULT_CACHE_KEY;
  }
  const written = keyD.args[0] ?? '';
  const template = written.replace(/\$(\{query_string\}|query_string\b)/g, '$$args');
  const usable = keyD.args.length === 1 && template !== '' && parseCacheKey(template) !== null;
  if (cx.report.isHandled(keyD)) return usable ? template : DEFAULT_CACHE_KEY;
  if (!usable) {
    cx.report.warn(
      keyD,
      `not translated: phpgate's cache keys take text and ${CACHE_KEY_VARIABLES}; key keeps phpgate's default ${DEFAULT_CACHE_KEY}`,
    );
    return DEFAULT_CACHE_KEY;
  }
  const renamed = template === written ? '' : ' ($query_string is $args)';
  cx.report.note(keyD, template === DEFAULT_CACHE_KEY ? `key: phpgate's default ${DEFAULT_CACHE_KEY}` : `key: ${template}${renamed}`);
  return template;
}

/**
 * fastcgi_cache_use_stale → stale_s. nginx serves a stale entry with no time limit, until the zone's `inactive`
 * evicts it (counted from the last request); phpgate for stale_s past freshness, so inactive is the nearest bound.
 * phpgate serves stale while one request refreshes (updating) and instead of PHP's errors, timeouts and 5xx, all
 * alike. No use_stale: 0 (phpgate's default is 60 s, but nginx never serves a stale answer without it).
 */
function staleSeconds(cx: ImportContext, d: Directive, scope: Scope, zone: CacheZone): number {
  const use = cx.inherited('fastcgi_cache_use_stale', scope).at(-1);
  if (use === undefined) {
    cx.report.note(d, 'no fastcgi_cache_use_stale: stale_s 0 (nginx never serves a stale answer without it)');
    return 0;
  }
  const args = use.args;
  const inactive = zone.inactiveS ?? NGINX_INACTIVE_S;
  const updating = args.includes('updating');
  const failures = PHP_FAILURES.filter((a) => args.includes(a));
  const stale = args.includes('off') || (!updating && failures.length === 0) ? 0 : inactive;
  if (cx.report.isHandled(use)) return stale;
  const others = args.filter((a) => a !== 'updating' && a !== 'off' && !PHP_FAILURES.includes(a));
  if (others.length > 0) {
    const kept = stale === 0 ? '; stale_s 0' : '';
    cx.report.warn(
      use,
      `not translated: ${others.join(' ')} (phpgate serves a stale answer only while refreshing it and instead of PHP's errors, timeouts and 5xx)${kept}`,
    );
  }
  if (stale === 0) {
    if (args.includes('off')) cx.report.note(use, 'stale_s 0, as nginx (no stale answers)');
    else cx.report.done(use);
    return 0;
  }
  const differences: string[] = [
    `the zone's inactive: nginx serves a stale entry with no time limit until it goes unrequested for ${inactive} s, phpgate for stale_s past its freshness`,
  ];
  if (!updating) differences.push("phpgate also serves it while one request refreshes the entry (nginx's updating)");
  const missing = PHP_FAILURES.filter((a) => !failures.includes(a));
  if (missing.length > 0) differences.push(`phpgate also serves it on ${missing.join(' ')}: it treats PHP's errors, timeouts and 5xx alike`);
  cx.report.note(use, `stale_s ${stale}, ${differences.join('; ')}`);
  return stale;
}

/**
 * fastcgi_cache_lock → cache.lock_ms: off → 0, on → fastcgi_cache_lock_timeout (nginx's default 5 s). nginx's
 * default is off; phpgate's coalescing is kept then (one PHP run per missed key instead of one per request: it only
 * ever spares PHP), and said so. One lock_ms serves every rule: the first use decides.
 */
function cacheLock(cx: ImportContext, d: Directive, scope: Scope): void {
  const lock = cx.inherited('fastcgi_cache_lock', scope).at(-1);
  const timeout = cx.inherited('fastcgi_cache_lock_timeout', scope).at(-1);
  const on = lock?.args[0] === 'on';
  let ms: number = DEFAULTS.cache.lock_ms;
  if (lock !== undefined && lock.args[0] === 'off') ms = 0;
  else if (on) ms = (timeout === undefined ? NGINX_LOCK_TIMEOUT_MS : parseTime(timeout.args[0] ?? '')) ?? NGINX_LOCK_TIMEOUT_MS;
  const first = cx.cacheLock;
  if (first !== null && first.ms !== ms) {
    cx.report.warn(
      lock ?? d,
      `phpgate has one cache.lock_ms for every rule: ${first.ms} from ${first.d.file}:${first.d.line} is kept (here it would be ${ms})`,
    );
  } else if (first === null) {
    cx.cacheLock = { ms, d: lock ?? d };
    cx.draft.cache.lock_ms = ms;
  }
  if (lock === undefined && first === null) {
    cx.report.note(
      d,
      `no fastcgi_cache_lock: nginx sends every simultaneous miss to PHP; phpgate keeps cache.lock_ms ${ms} (misses of one key wait for the one request filling it, at most ${ms / 1000} s, then go to PHP uncached: it only spares PHP; lock_ms 0 is nginx's behaviour)`,
    );
  }
  if (lock !== undefined && !cx.report.isHandled(lock)) {
    if (lock.args[0] === 'off') cx.report.note(lock, 'cache.lock_ms: 0 (every simultaneous miss goes to PHP, as nginx)');
    else if (on)
      cx.report.note(
        lock,
        `cache.lock_ms: ${ms} (simultaneous misses of one key wait for the one request filling it, then go to PHP uncached, as nginx)`,
      );
    else cx.report.warn(lock, `not translated: expected on or off; cache.lock_ms keeps ${ms}`);
  }
  if (timeout !== undefined && !cx.report.isHandled(timeout)) {
    if (!on) cx.report.note(timeout, 'not used: fastcgi_cache_lock is off here');
    else if (parseTime(timeout.args[0] ?? '') === null) cx.report.warn(timeout, `not translated: not an nginx time; cache.lock_ms ${ms}`);
    else cx.report.note(timeout, `cache.lock_ms: ${ms}`);
  }
}

/**
 * $cookie_NAME in fastcgi_cache_bypass (do not answer from the cache) and fastcgi_no_cache (do not store) →
 * cache.bypass_cookies, which does both for every rule. phpgate's own names stay: they only cache less.
 */
function bypassCookies(cx: ImportContext, scope: Scope): void {
  for (const d of [...cx.inherited('fastcgi_cache_bypass', scope), ...cx.inherited('fastcgi_no_cache', scope)]) {
    if (cx.report.isHandled(d)) continue;
    const cookies: string[] = [];
    const others: string[] = [];
    let authorization = false;
    for (const arg of d.args) {
      const vars = [...arg.matchAll(/\$(?:\{(\w+)\}|(\w+))/g)];
      // Text beside the variables makes the value never empty: nginx would bypass every request.
      if (vars.length === 0 || arg.replace(/\$(\{\w+\}|\w+)/g, '') !== '') {
        others.push(arg);
        continue;
      }
      for (const m of vars) {
        const name = (m[1] ?? m[2]!).toLowerCase();
        if (name.startsWith('cookie_') && name.length > 'cookie_'.length) cookies.push((m[1] ?? m[2]!).slice('cookie_'.length));
        else if (name === 'http_authorization') authorization = true;
        else others.push(m[0]);
      }
    }
    const notes: string[] = [];
    if (cookies.length > 0) {
      const list = (cx.draft.cache.bypass_cookies ??= [...DEFAULTS.cache.bypass_cookies]);
      for (const c of cookies) if (!list.includes(c)) list.push(c);
      notes.push(
        `cache.bypass_cookies: ${cookies.join(', ')} (for every cache rule, neither answered from the cache nor stored; phpgate checks that the cookie is there, nginx that its value is neither empty nor "0"; phpgate's ${DEFAULTS.cache.bypass_cookies.join(', ')} stay)`,
      );
    }
    if (authorization) notes.push('phpgate never caches requests with Authorization');
    if (notes.length > 0) cx.report.note(d, notes.join('; '));
    if (others.length > 0) {
      cx.report.warn(
        d,
        `not translated: ${others.join(' ')} (phpgate skips the cache for the cookies in cache.bypass_cookies, $cookie_NAME, and for Authorization only)`,
      );
    }
    if (notes.length === 0 && others.length === 0) cx.report.warn(d, 'not translated: expected variables such as $cookie_NAME');
  }
}

function reportZone(cx: ImportContext, zone: CacheZone): void {
  if (cx.report.isHandled(zone.d)) return;
  if (zone.inactiveS === null) cx.report.warn(zone.d, `inactive is not an nginx time: stale_s counts nginx's default ${NGINX_INACTIVE_S} s`);
  if (zone.maxBytes !== null && zone.maxBytes > 0) {
    cx.draft.cache.max_mb = Math.round((zone.maxBytes / MB) * 1000) / 1000;
    cx.report.note(zone.d, `cache.max_mb: ${cx.draft.cache.max_mb} (phpgate caches in memory; the path and levels are not used)`);
  } else {
    cx.report.note(zone.d, "no max_size: cache.max_mb keeps phpgate's default (phpgate caches in memory; the path is not used)");
  }
}

/** An add_header whose value uses $upstream_cache_status: cache.header when it is the whole value. */
export function usesCacheStatus(d: Directive): boolean {
  return d.args.some((a) => CACHE_STATUS_VARIABLE.test(a));
}

/** `add_header NAME $upstream_cache_status [always]` → cache.header: NAME. */
export function cacheStatusHeader(cx: ImportContext, d: Directive): void {
  const [name = '', value = '', flag] = d.args;
  const whole =
    /^\$(upstream_cache_status|\{upstream_cache_status\})$/.test(value) && d.args.length <= 3 && (flag === undefined || flag === 'always');
  if (!whole) {
    return cx.report.warn(
      d,
      "not translated: phpgate's cache status header (cache.header) holds the status alone: add_header NAME $upstream_cache_status",
    );
  }
  if (headerName.parse(name) === INVALID) return cx.report.warn(d, `not translated: "${name}" is not ${headerName.expected}`);
  const earlier = cx.cacheHeader;
  if (earlier !== null) {
    if (earlier.args[0]?.toLowerCase() === name.toLowerCase()) return cx.report.note(d, `the same as ${earlier.file}:${earlier.line}`);
    return cx.report.warn(
      d,
      `not translated: phpgate sends one cache status header, cache.header ${earlier.args[0] ?? ''} from ${earlier.file}:${earlier.line}`,
    );
  }
  cx.cacheHeader = d;
  cx.draft.cache.header = name;
  cx.report.note(
    d,
    `cache.header: ${name} (HIT, MISS, STALE or BYPASS on answers a cache rule covers; nginx's EXPIRED shows as MISS, UPDATING as STALE)`,
  );
}

/** nginx's cache tuning other than the rule's keys: what phpgate does instead. */
export function cacheTuning(cx: ImportContext, d: Directive): void {
  const args = d.args;
  switch (d.name) {
    case 'fastcgi_cache_methods':
      if (args.every((m) => m.toUpperCase() === 'GET' || m.toUpperCase() === 'HEAD')) {
        return cx.report.note(d, "phpgate caches GET and answers HEAD from its entry, as nginx's default GET HEAD");
      }
      return cx.report.warn(d, 'not translated: phpgate caches GET (and HEAD) only, never requests with a body');
    case 'fastcgi_cache_min_uses':
      if (args[0] === '1') return cx.report.note(d, "phpgate stores an answer at its first miss, as nginx's default");
      return cx.report.warn(d, 'not translated: phpgate stores an answer at its first miss');
    case 'fastcgi_cache_background_update':
      if (args[0] === 'off') return cx.report.note(d, 'as phpgate: the request that finds an entry stale waits for PHP, the others get STALE');
      return cx.report.warn(d, "not translated: phpgate's request that finds an entry stale waits for PHP to refresh it (the others get STALE)");
    case 'fastcgi_cache_revalidate':
      if (args[0] === 'off') return cx.report.note(d, "phpgate refreshes an entry with a full request to PHP, as nginx's default");
      return cx.report.warn(d, 'not translated: phpgate refreshes an entry with a full request to PHP (no If-Modified-Since / If-None-Match to PHP)');
    default: {
      // fastcgi_ignore_headers: what PHP says about caching is always honoured by phpgate.
      const honoured = args.filter((h) => ['cache-control', 'expires', 'x-accel-expires', 'set-cookie', 'vary'].includes(h.toLowerCase()));
      const accel = args.filter((h) => !honoured.includes(h));
      if (accel.length > 0) cx.report.note(d, `${accel.join(' ')}: phpgate removes X-Accel-* headers without acting on them`);
      if (honoured.length > 0) {
        cx.report.warn(
          d,
          `not translated: ${honoured.join(' ')} (phpgate always honours PHP's Cache-Control, Expires, X-Accel-Expires and Vary, and never stores an answer with Set-Cookie: such answers are not cached)`,
        );
      }
    }
  }
}

/** After every directive: nginx sends no cache status header unless add_header … $upstream_cache_status says so. */
export function finishCache(cx: ImportContext): void {
  if (cx.firstCache === null || cx.cacheHeader !== null) return;
  cx.report.note(
    cx.firstCache,
    `no add_header … $upstream_cache_status: nginx sends no cache status header; phpgate sends ${DEFAULTS.cache.header}: HIT|MISS|STALE|BYPASS (cache.header; "" sends none)`,
  );
}
