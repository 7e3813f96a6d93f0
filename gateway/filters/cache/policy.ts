/**
 * What may be stored, and for how long (RFC 9111, RFC 5861, nginx's X-Accel-Expires): read from the answer's own
 * headers, or the rule's ttl when it says nothing.
 */
import type { ResponseHead } from '../../http/sink.js';
import type { CompiledRule } from './key.js';

/** Freshness and stale windows of a storable answer (ms). */
export interface Lifetime {
  readonly freshMs: number;
  readonly updatingMs: number;
  readonly errorMs: number;
}

/** How long an answer may be stored and served stale, or null when it must not be stored. */
export function lifetime(rule: CompiledRule, status: number, head: ResponseHead, headers: readonly string[]): Lifetime | null {
  if (!rule.statuses.has(status)) return null;
  let cacheControl = '';
  let expires: string | null = null;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!.toLowerCase();
    if (name === 'set-cookie') return null;
    if (name === 'cache-control') cacheControl += (cacheControl === '' ? '' : ',') + headers[i + 1]!;
    else if (name === 'expires') expires = headers[i + 1]!;
    else if (name === 'vary' && /(?:^|,)\s*\*\s*(?:,|$)/.test(headers[i + 1]!)) return null;
  }
  const cc = parseCacheControl(cacheControl);
  if (cc.noStore || cc.private || cc.noCache) return null;
  let freshMs: number;
  const accel = head.accelExpires === null ? null : accelExpiresMs(head.accelExpires);
  if (accel !== null) freshMs = accel;
  else if (cc.sMaxage !== null) freshMs = cc.sMaxage * 1000;
  else if (cc.maxAge !== null) freshMs = cc.maxAge * 1000;
  // An invalid Expires means "already expired" (RFC 9111 §5.3).
  else if (expires !== null) freshMs = (Date.parse(expires) || 0) - Date.now();
  else freshMs = rule.ttlMs;
  if (!(freshMs > 0)) return null;
  // must-revalidate / proxy-revalidate: never served past freshness (RFC 9111 §5.2.2.2, §5.2.2.8).
  if (cc.mustRevalidate) return { freshMs, updatingMs: 0, errorMs: 0 };
  return {
    freshMs,
    updatingMs: cc.staleWhileRevalidate === null ? rule.staleMs : cc.staleWhileRevalidate * 1000,
    errorMs: cc.staleIfError === null ? rule.staleMs : cc.staleIfError * 1000,
  };
}

export interface CacheControl {
  noStore: boolean;
  private: boolean;
  noCache: boolean;
  mustRevalidate: boolean;
  maxAge: number | null;
  sMaxage: number | null;
  staleWhileRevalidate: number | null;
  staleIfError: number | null;
}

/**
 * Directives split on commas outside quoted strings: a quoted argument may hold commas (`no-cache="a, b"`), and
 * what it holds is not a directive.
 */
const DIRECTIVES = /(?:[^,"]|"(?:[^"\\]|\\.)*"?)+/g;

/** RFC 9111 §1.2.2: a delta-seconds too large to represent is taken as 2^31. */
const DELTA_SECONDS_MAX = 2 ** 31;

/**
 * The response directives the cache acts on (RFC 9111 §5.2.2, RFC 5861). A malformed number (`max-age=-1`,
 * `max-age=abc`) and a directive repeated with another value make that directive 0, stale: RFC 9111 §4.2.1
 * encourages treating invalid freshness as stale and allows it for duplicates (nginx refuses to cache a malformed
 * one); ignoring it would fall back to Expires or the rule's ttl and store what PHP never allowed.
 */
export function parseCacheControl(value: string): CacheControl {
  const cc: CacheControl = {
    noStore: false,
    private: false,
    noCache: false,
    mustRevalidate: false,
    maxAge: null,
    sMaxage: null,
    staleWhileRevalidate: null,
    staleIfError: null,
  };
  if (value === '') return cc;
  for (const part of value.match(DIRECTIVES) ?? []) {
    const eq = part.indexOf('=');
    const name = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase();
    const arg =
      eq === -1
        ? ''
        : part
            .slice(eq + 1)
            .trim()
            .replace(/^"(.*)"$/, '$1');
    const n = /^\d+$/.test(arg) ? Math.min(Number(arg), DELTA_SECONDS_MAX) : 0;
    switch (name) {
      case 'no-store':
        cc.noStore = true;
        break;
      case 'private':
        cc.private = true;
        break;
      case 'no-cache':
        cc.noCache = true;
        break;
      case 'must-revalidate':
      case 'proxy-revalidate':
        cc.mustRevalidate = true;
        break;
      case 'max-age':
        cc.maxAge = once(cc.maxAge, n);
        break;
      case 's-maxage':
        cc.sMaxage = once(cc.sMaxage, n);
        break;
      case 'stale-while-revalidate':
        cc.staleWhileRevalidate = once(cc.staleWhileRevalidate, n);
        break;
      case 'stale-if-error':
        cc.staleIfError = once(cc.staleIfError, n);
        break;
    }
  }
  return cc;
}

/** A delta-seconds directive seen again: the same value stands, another one makes it stale (0). */
function once(previous: number | null, n: number): number {
  return previous === null || previous === n ? n : 0;
}

/** nginx's X-Accel-Expires: seconds from now, or `@` and a unix time; 0 disables caching. null: unusable. */
function accelExpiresMs(value: string): number | null {
  if (/^\d{1,10}$/.test(value)) return Number(value) * 1000;
  if (/^@\d{1,12}$/.test(value)) return Number(value.slice(1)) * 1000 - Date.now();
  return null;
}
