/**
 * The fastcgi_cache family → a PHP route's `cache` and cache.*. The `fastcgi_cache ZONE` in effect for a PHP
 * location becomes its route's cache, made of what nginx reads there, each directive inherited from the enclosing
 * blocks as nginx does, and reported once:
 *
 *   fastcgi_cache_valid [code … | any] time   → ttl_s (200's time) and statuses (a time alone: 200 301 302)
 *   fastcgi_cache_key                         → key (the variables config/cache-key.ts knows)
 *   fastcgi_cache_use_stale                   → stale_s (the zone's inactive=: nginx keeps serving a stale entry
 *                                               until it goes unrequested that long; absent: 0, nginx never does)
 *   fastcgi_cache_lock, _lock_timeout         → cache.lock_ms (one for every rule)
 *   fastcgi_cache_bypass / fastcgi_no_cache   → bypass / no_store (nginx's values; a variable phpgate does not
 *                                               have leaves the route uncached)
 *
 * The zone (fastcgi_cache_path) gives cache.max_mb, `add_header NAME $upstream_cache_status` cache.header. The
 * rest of nginx's cache tuning (methods, min_uses, background_update, revalidate, ignore_headers) is reported where
 * it stands.
 */
import { CACHE_KEY_VARIABLES, DEFAULT_CACHE_KEY, parseCacheKey } from '../config/cache-key.js';
import { cacheableStatus, headerName, INVALID } from '../config/checks.js';
import { CACHE_RULE_DEFAULTS, DEFAULTS } from '../config/defaults.js';
import type { CacheZone, ImportContext, Scope } from './context.js';
import type { RouteCacheDraft } from './emit.js';
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

/**
 * The `fastcgi_cache ZONE` in effect for a PHP route (its own or inherited, as nginx inherits it) → the route's
 * cache, built from what nginx reads there; null: not cached (reported on the directive).
 */
export function routeCache(cx: ImportContext, d: Directive, scope: Scope): RouteCacheDraft | null {
  const name = d.args[0] ?? '';
  if (name === 'off') {
    cx.report.note(d, "no caching here, as phpgate's default");
    return null;
  }
  const zone = cx.cacheZones.get(name);
  if (zone === undefined) {
    cx.report.warn(d, `not translated: no fastcgi_cache_path with keys_zone=${name}`);
    return null;
  }
  const valid = cx.inherited('fastcgi_cache_valid', scope);
  const validity = cacheValid(cx, valid);
  if (validity === null) {
    for (const v of valid) if (!cx.report.isHandled(v)) cx.report.note(v, `no time for 200 responses: see ${d.file}:${d.line}`);
    cx.report.warn(d, "not translated: no fastcgi_cache_valid for 200 responses; phpgate's cache rules need a ttl");
    return null;
  }
  const bypass = bypassValues(cx, scope);
  if (bypass === null) {
    cx.report.warn(d, 'failing closed: not cached, because a fastcgi_cache_bypass or fastcgi_no_cache value cannot be evaluated (see there)');
    return null;
  }
  cx.firstCache ??= d;
  const key = cacheKey(cx, d, scope);
  const stale = staleSeconds(cx, d, scope, zone);
  cacheLock(cx, d, scope);
  reportZone(cx, zone);

  const { ttl_s, statuses } = validity;
  const value: RouteCacheDraft = {
    ttl_s,
    ...(sameList(statuses, CACHE_RULE_DEFAULTS.statuses) ? {} : { statuses }),
    ...(stale === CACHE_RULE_DEFAULTS.stale_s ? {} : { stale_s: stale }),
    ...(key === CACHE_RULE_DEFAULTS.key ? {} : { key }),
    ...(bypass.bypass.length > 0 ? { bypass: bypass.bypass } : {}),
    ...(bypass.no_store.length > 0 ? { no_store: bypass.no_store } : {}),
  };
  const extra = [
    bypass.bypass.length > 0 ? `bypass [${bypass.bypass.join(', ')}]` : '',
    bypass.no_store.length > 0 ? `no_store [${bypass.no_store.join(', ')}]` : '',
  ]
    .filter((x) => x !== '')
    .join(', ');
  cx.report.note(d, `cache: ttl_s ${ttl_s}, statuses [${statuses.join(', ')}], stale_s ${stale}, key "${key}"${extra === '' ? '' : `, ${extra}`}`);
  return value;
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
 * fastcgi_cache_bypass (do not answer from the cache) and fastcgi_no_cache (do not store) in effect → the route's
 * bypass and no_store, nginx's values as written: a request bypasses when one of them is neither empty nor "0".
 * null: a value uses a variable phpgate does not have, so the route is not cached at all (failing closed).
 */
function bypassValues(cx: ImportContext, scope: Scope): { bypass: string[]; no_store: string[] } | null {
  const out = { bypass: [] as string[], no_store: [] as string[] };
  let ok = true;
  for (const [name, key] of [
    ['fastcgi_cache_bypass', 'bypass'],
    ['fastcgi_no_cache', 'no_store'],
  ] as const) {
    for (const d of cx.inherited(name, scope)) {
      const unknown = cx.vars.unknown(d.args.join(' '));
      if (unknown.length > 0) {
        ok = false;
        if (!cx.report.isHandled(d)) {
          cx.report.warn(
            d,
            `not translated: ${unknown.map((v) => `$${v} is ${cx.vars.why(v)}`).join('; ')}; the routes it applies to are not cached`,
          );
        }
        continue;
      }
      for (const a of d.args) if (!out[key].includes(a)) out[key].push(a);
      if (!cx.report.isHandled(d)) {
        cx.report.note(
          d,
          `cache.${key}: ${d.args.join(', ')} (the request ${key === 'bypass' ? 'is not answered from the cache' : 'is not stored'} when one of them is neither empty nor "0")`,
        );
      }
    }
  }
  return ok ? out : null;
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
