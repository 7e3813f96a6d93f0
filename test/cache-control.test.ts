/**
 * parseCacheControl (gateway/filters/cache/policy.ts): the response directives the cache acts on
 * (RFC 9111 §5.2.2, RFC 5861), case by case. Each case lists only the fields it sets; the rest must stay at
 * "absent". Then what the parsed header means for storing (lifetime); the cache end to end is in
 * response-cache.test.ts.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CACHE_RULE_DEFAULTS } from '../config/defaults.js';
import { compileRule } from '../gateway/filters/cache/key.js';
import { lifetime, parseCacheControl } from '../gateway/filters/cache/policy.js';
import type { ResponseHead } from '../gateway/http/sink.js';

type Parsed = ReturnType<typeof parseCacheControl>;

const ABSENT: Parsed = {
  noStore: false,
  private: false,
  noCache: false,
  mustRevalidate: false,
  maxAge: null,
  sMaxage: null,
  staleWhileRevalidate: null,
  staleIfError: null,
};

/** RFC 9111 §1.2.2: a delta-seconds too large to represent is taken as 2^31. */
const DELTA_MAX = 2 ** 31;

interface Case {
  readonly name: string;
  readonly header: string;
  readonly want: Partial<Parsed>;
}

const cases: readonly Case[] = [
  { name: 'an empty header sets nothing', header: '', want: {} },
  { name: 'public alone sets nothing the cache acts on', header: 'public', want: {} },
  { name: 'unknown directives are ignored', header: 'immutable, foo=bar, x-y', want: {} },
  // the refusals
  { name: 'no-store', header: 'no-store', want: { noStore: true } },
  { name: 'private', header: 'private', want: { private: true } },
  { name: 'no-cache', header: 'no-cache', want: { noCache: true } },
  { name: 'private with a quoted field list is still private', header: 'private="Set-Cookie"', want: { private: true } },
  {
    name: 'no-cache with a quoted list holding a comma is still no-cache, and nothing more',
    header: 'no-cache="Set-Cookie, X-Foo", max-age=60',
    want: { noCache: true, maxAge: 60 },
  },
  { name: 'a directive name that only starts like no-cache is another directive', header: 'no-cachex, no-store-please', want: {} },
  {
    name: 'the classic PHP session header',
    header: 'no-store, no-cache, must-revalidate',
    want: { noStore: true, noCache: true, mustRevalidate: true },
  },
  { name: 'must-revalidate', header: 'must-revalidate', want: { mustRevalidate: true } },
  { name: 'proxy-revalidate counts as must-revalidate for a shared cache', header: 'proxy-revalidate', want: { mustRevalidate: true } },
  // case
  { name: 'directive names are case-insensitive', header: 'No-Store, PRIVATE, Max-Age=5', want: { noStore: true, private: true, maxAge: 5 } },
  { name: 'S-MAXAGE in capitals', header: 'S-MAXAGE=7', want: { sMaxage: 7 } },
  // numbers
  { name: 'max-age', header: 'max-age=60', want: { maxAge: 60 } },
  { name: 'max-age=0', header: 'max-age=0', want: { maxAge: 0 } },
  { name: 's-maxage and max-age side by side', header: 'max-age=60, s-maxage=600', want: { maxAge: 60, sMaxage: 600 } },
  { name: 'leading zeros are decimal', header: 'max-age=0060', want: { maxAge: 60 } },
  { name: 'a quoted number is accepted (RFC 9111 §5.2: recipients accept both forms)', header: 'max-age="60"', want: { maxAge: 60 } },
  { name: 'ten digits', header: 'max-age=2147483647', want: { maxAge: 2147483647 } },
  { name: 'a number too large to represent is 2^31 (RFC 9111 §1.2.2), not ignored', header: 'max-age=99999999999', want: { maxAge: DELTA_MAX } },
  { name: 'a 400-digit number is 2^31 too', header: `s-maxage=${'9'.repeat(400)}`, want: { sMaxage: DELTA_MAX } },
  // malformed numbers: stale (0), never "absent" (which would fall back to Expires or the rule's ttl)
  { name: 'a negative max-age is malformed: stale, not ignored', header: 'max-age=-1', want: { maxAge: 0 } },
  { name: 'a word for max-age is malformed: stale', header: 'max-age=abc', want: { maxAge: 0 } },
  { name: 'a fraction is malformed: stale', header: 'max-age=1.5', want: { maxAge: 0 } },
  { name: 'exponent notation is malformed: stale', header: 'max-age=1e3', want: { maxAge: 0 } },
  { name: 'a plus sign is malformed: stale', header: 'max-age=+60', want: { maxAge: 0 } },
  { name: 'an empty value is malformed: stale', header: 'max-age=', want: { maxAge: 0 } },
  { name: 'max-age without "=" is malformed: stale', header: 'max-age', want: { maxAge: 0 } },
  { name: 'a number followed by junk is malformed: stale', header: 'max-age=60abc', want: { maxAge: 0 } },
  {
    name: 'a malformed s-maxage makes the response stale even beside a good max-age',
    header: 's-maxage=x, max-age=60',
    want: { sMaxage: 0, maxAge: 60 },
  },
  { name: 'a malformed stale-while-revalidate allows no stale serving', header: 'stale-while-revalidate=soon', want: { staleWhileRevalidate: 0 } },
  // duplicates: RFC 9111 §4.2.1 — the first value, or stale; conflicting values make the response stale
  { name: 'a directive given twice with one value keeps it', header: 'max-age=60, max-age=60', want: { maxAge: 60 } },
  {
    name: 'max-age given twice with different values is stale, whichever comes first (0 then 3600)',
    header: 'max-age=0, max-age=3600',
    want: { maxAge: 0 },
  },
  {
    name: 'max-age given twice with different values is stale, whichever comes first (3600 then 0)',
    header: 'max-age=3600, max-age=0',
    want: { maxAge: 0 },
  },
  { name: 'two Cache-Control lines joined with a comma conflict the same way', header: 'public, max-age=600,max-age=60', want: { maxAge: 0 } },
  { name: 'a good max-age then a malformed one is stale', header: 'max-age=60, max-age=abc', want: { maxAge: 0 } },
  { name: 'no-store given twice is no-store', header: 'no-store, no-store', want: { noStore: true } },
  // commas and spaces
  { name: 'no space after commas', header: 'public,max-age=60,must-revalidate', want: { maxAge: 60, mustRevalidate: true } },
  { name: 'spaces and tabs around directives', header: ' \tmax-age=60 ,\t no-cache ', want: { maxAge: 60, noCache: true } },
  { name: 'empty list elements are skipped', header: ',,max-age=60,, ,', want: { maxAge: 60 } },
  { name: 'spaces around "=" are tolerated', header: 'max-age = 60', want: { maxAge: 60 } },
  { name: "a directive inside another one's quoted argument is not a directive", header: 'community="UCI, max-age=999", public', want: {} },
  { name: 'a quoted argument with an escaped quote and a comma', header: 'x="a\\", max-age=999", max-age=5', want: { maxAge: 5 } },
  // stale-* (RFC 5861)
  { name: 'stale-while-revalidate', header: 'max-age=60, stale-while-revalidate=30', want: { maxAge: 60, staleWhileRevalidate: 30 } },
  { name: 'stale-if-error', header: 'max-age=60, stale-if-error=86400', want: { maxAge: 60, staleIfError: 86400 } },
  { name: 'both stale directives', header: 'stale-while-revalidate=1, stale-if-error=2', want: { staleWhileRevalidate: 1, staleIfError: 2 } },
  { name: 'stale-while-revalidate=0 is zero, not absent', header: 'stale-while-revalidate=0', want: { staleWhileRevalidate: 0 } },
];

describe('parseCacheControl (RFC 9111 §5.2.2, RFC 5861)', () => {
  for (const c of cases) {
    test(c.name, () => {
      assert.deepEqual(parseCacheControl(c.header), { ...ABSENT, ...c.want }, `Cache-Control: ${c.header}`);
    });
  }
});

interface LifetimeCase {
  readonly name: string;
  readonly headers: readonly string[];
  /** Freshness in ms, or null: not stored. */
  readonly freshMs: number | null;
}

const RULE_TTL_MS = 300_000;
const IN_AN_HOUR = (): string => new Date(Date.now() + 3_600_000).toUTCString();

const lifetimes: readonly LifetimeCase[] = [
  { name: "PHP says nothing: the rule's ttl", headers: [], freshMs: RULE_TTL_MS },
  { name: 'max-age=60: one minute', headers: ['Cache-Control', 'max-age=60'], freshMs: 60_000 },
  { name: 's-maxage wins over max-age for a shared cache', headers: ['Cache-Control', 'max-age=60, s-maxage=120'], freshMs: 120_000 },
  { name: "max-age=abc alone is not stored, not kept for the rule's ttl", headers: ['Cache-Control', 'max-age=abc'], freshMs: null },
  {
    name: 'max-age=-1 beside a future Expires is not stored, Expires does not take over',
    headers: ['Cache-Control', 'max-age=-1', 'Expires', IN_AN_HOUR()],
    freshMs: null,
  },
  {
    name: 'max-age=0 then max-age=3600 on two lines is not stored, the later line does not win',
    headers: ['Cache-Control', 'max-age=0', 'Cache-Control', 'max-age=3600'],
    freshMs: null,
  },
  {
    name: "a max-age too large to represent is stored for 2^31 s, not for the rule's ttl",
    headers: ['Cache-Control', 'max-age=99999999999'],
    freshMs: DELTA_MAX * 1000,
  },
  { name: 'a max-age hidden in a quoted argument does not count', headers: ['Cache-Control', 'ext="x,max-age=5,y"'], freshMs: RULE_TTL_MS },
];

describe('what a Cache-Control header means for storing (lifetime)', () => {
  const rule = compileRule({ ...CACHE_RULE_DEFAULTS, pattern: '/*', ttl_s: RULE_TTL_MS / 1000 });
  const head = { accelExpires: null } as ResponseHead; // the only field lifetime() reads

  for (const c of lifetimes) {
    test(c.name, () => {
      const life = lifetime(rule, 200, head, c.headers);
      assert.equal(life === null ? null : life.freshMs, c.freshMs);
    });
  }
});
