/**
 * The response cache, as nginx's fastcgi_cache/proxy_cache are used for microcaching: per URL pattern, GET answers
 * that may be stored (Cache-Control, Expires, X-Accel-Expires, or the rule's ttl when the answer says nothing) are
 * kept in memory, bounded in bytes (lru-cache), and served without PHP or the upstream while fresh.
 *
 * - Never for requests with Authorization or a session cookie (cache.bypass_cookies), nor answers with Set-Cookie.
 * - Simultaneous misses of one key wait for the one request that fills it (fastcgi_cache_lock), up to lock_ms.
 * - Past its freshness an entry is still served for stale_s while one request refreshes it, and instead of the
 *   producer's failure (fastcgi_cache_use_stale updating error timeout http_500 http_502 http_503 http_504).
 * - Vary is honoured: one entry per set of the request's values for the named headers.
 * - Compressed variants are made once per entry, off the event loop, so a HIT costs no compression.
 * - Answers bigger than max_entry_kb pass through without being held.
 *
 * This file decides and stores (lookup, store, purge); fill.ts is the filter that feeds an entry as an answer
 * streams to its client, serve.ts sends an entry, policy.ts and key.ts say what may be stored and under which key.
 */
import type { IncomingMessage } from 'node:http';
import { LRUCache } from 'lru-cache';
import { compilePattern, type PathMatcher } from '../../../config/pattern.js';
import type { CacheConfig, RouteCache } from '../../../config/types.js';
import type { Logger } from '../../../core/log.js';
import type { ResponseHead } from '../../http/sink.js';
import type { ParsedTarget } from '../../http/uri.js';
import { compressedHeaders, type Compression, type Encoding } from '../compression.js';
import { CacheFill, type FillHost } from './fill.js';
import { compileRule, varySuffix, type CompiledRule } from './key.js';
import type { Entry } from './entry.js';
import type { Lifetime } from './policy.js';

/** PHP's answer for this key was not storable (Set-Cookie, no-store, too big…): misses skip the lock for a while. */
interface Pass {
  readonly kind: 'pass';
  readonly path: string;
}

/** PHP's answers for this key vary by these request headers: entries live under the key plus their values. */
interface VaryIndex {
  readonly kind: 'vary';
  readonly names: readonly string[];
  readonly path: string;
}

type Stored = Entry | Pass | VaryIndex;

export type CacheLookup =
  | { readonly kind: 'bypass' }
  /** Go to PHP without storing (HEAD miss, a pass marker, a fill already under way and no waiting). */
  | { readonly kind: 'pass' }
  | { readonly kind: 'hit' | 'stale'; readonly entry: Entry }
  /** This request runs PHP and fills the entry. */
  | { readonly kind: 'miss'; readonly fill: CacheFill }
  /** Another request is filling it: wait for that one (fastcgi_cache_lock). */
  | { readonly kind: 'wait'; readonly fill: CacheFill };

const BYPASS: CacheLookup = { kind: 'bypass' };
const PASS: CacheLookup = { kind: 'pass' };

const MiB = 1024 * 1024;
/** What an entry costs beyond its bytes (objects, header strings): counted so many small entries stay bounded. */
const ENTRY_OVERHEAD = 512;

export interface ResponseCacheOptions {
  readonly config: CacheConfig;
  /** compression.*, or null when off: then no variants are made. */
  readonly compression: Compression | null;
  readonly log: Logger;
}

export class ResponseCache implements FillHost {
  readonly #rules: readonly CompiledRule[];
  readonly #lru: LRUCache<string, Stored>;
  readonly #fills = new Map<string, CacheFill>();
  readonly #bypassCookies: readonly PathMatcher[];
  readonly #maxEntryBytes: number;
  /** The X-Cache header's name, or '' for none. */
  readonly header: string;
  /** How long a miss waits for another request's fill (cache.lock_ms). */
  readonly lockMs: number;
  readonly #compression: Compression | null;
  readonly #log: Logger;

  /** null when there is nothing to cache (no rules and no route caches, or max_mb 0): the stage is then absent. */
  static create(o: ResponseCacheOptions & { readonly routeCaches?: boolean }): ResponseCache | null {
    return (o.config.rules.length === 0 && o.routeCaches !== true) || o.config.max_mb === 0 ? null : new ResponseCache(o);
  }

  private constructor(o: ResponseCacheOptions) {
    const c = o.config;
    this.#rules = c.rules.map((r) => compileRule(r));
    this.#lru = new LRUCache<string, Stored>({ maxSize: Math.max(1, Math.floor(c.max_mb * MiB)), allowStale: false, updateAgeOnGet: false });
    this.#bypassCookies = c.bypass_cookies.map(compilePattern);
    this.#maxEntryBytes = c.max_entry_kb * 1024;
    this.lockMs = c.lock_ms;
    this.header = c.header;
    this.#compression = o.compression;
    this.#log = o.log;
  }

  /** The encoding this Accept-Encoding gets, as the stored variants are made (null: identity). */
  negotiate(accept: string | undefined): Encoding | null {
    return this.#compression === null ? null : this.#compression.negotiate(accept);
  }

  readonly #ofRoutes = new WeakMap<RouteCache, CompiledRule>();

  /** A route's `cache:` as a rule, compiled once (routes live as long as their configuration); `where`: the route's text. */
  ruleOfRoute(c: RouteCache, where: string): CompiledRule {
    let rule = this.#ofRoutes.get(c);
    if (rule === undefined) this.#ofRoutes.set(c, (rule = compileRule({ pattern: '*', ...c }, `route ${where}`)));
    return rule;
  }

  /** cache.rules' labels, in order. */
  get labels(): readonly string[] {
    return this.#rules.map((r) => r.label);
  }

  /** The rule for this path, or null: the cache stays out of the request altogether (no X-Cache header). */
  ruleFor(path: string): CompiledRule | null {
    for (const r of this.#rules) if (r.match(path)) return r;
    return null;
  }

  /**
   * What to do with a request a rule covers. `mayWait` false: a request that already waited for a fill goes
   * to PHP rather than wait again.
   */
  lookup(rule: CompiledRule, req: IncomingMessage, target: ParsedTarget, https: boolean, hasBody: boolean, mayWait: boolean): CacheLookup {
    const method = req.method;
    if ((method !== 'GET' && method !== 'HEAD') || hasBody || this.#bypassed(req)) return BYPASS;
    const primary = rule.key(req, target, https);
    let key = primary;
    let stored = this.#lru.get(primary);
    if (stored !== undefined && stored.kind === 'vary') {
      key = primary + varySuffix(stored.names, req);
      stored = this.#lru.get(key);
    }
    if (stored !== undefined && stored.kind === 'pass') return PASS;
    const entry = stored !== undefined && stored.kind === 'entry' ? stored : undefined;
    const now = Date.now();
    if (entry !== undefined && now < entry.freshUntil) return { kind: 'hit', entry };
    const filling = this.#fills.get(key);
    if (filling !== undefined) {
      if (entry !== undefined && now < entry.updatingUntil) return { kind: 'stale', entry };
      return mayWait && this.lockMs > 0 ? { kind: 'wait', fill: filling } : PASS;
    }
    // A HEAD has no body to store: it goes to PHP as it is (a GET fills the entry HEADs are then served from).
    if (method === 'HEAD') return PASS;
    const fill = new CacheFill(this, rule, key, primary, target.path, entry !== undefined && now < entry.errorUntil ? entry : null);
    this.#fills.set(key, fill);
    return { kind: 'miss', fill };
  }

  /**
   * Drops the entries whose path matches `pattern` (a URL pattern: "/blog/*", "/", "*" for all); returns how
   * many answers were dropped. Fills under way are not stopped: they store what PHP answers now.
   */
  purge(pattern: string): number {
    const match = compilePattern(pattern);
    const doomed: string[] = [];
    let answers = 0;
    for (const [key, stored] of this.#lru.entries()) {
      if (!match(stored.path)) continue;
      doomed.push(key);
      if (stored.kind === 'entry') answers++;
    }
    for (const key of doomed) this.#lru.delete(key);
    return answers;
  }

  /** Entries and bytes held (for status). */
  get stats(): { entries: number; bytes: number } {
    return { entries: this.#lru.size, bytes: this.#lru.calculatedSize };
  }

  // ── used by CacheFill ──

  get maxEntryBytes(): number {
    return this.#maxEntryBytes;
  }

  store(fill: CacheFill, req: IncomingMessage, head: ResponseHead, body: Buffer, life: Lifetime): void {
    const { status, reason, headers } = head;
    const kept: string[] = [];
    const names = new Set<string>();
    let vary: string[] = [];
    let encoded = false;
    let lastModified: string | null = null;
    let etag: string | null = null;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      const lower = name.toLowerCase();
      // Age is the cache's to send (a PHP one would go out twice).
      if (lower === 'content-length' || lower === 'age') continue;
      if (lower === 'vary')
        vary = vary.concat(
          headers[i + 1]!.split(',')
            .map((v) => v.trim().toLowerCase())
            .filter((v) => v !== ''),
        );
      else if (lower === 'content-encoding') encoded = true;
      else if (lower === 'last-modified') lastModified = headers[i + 1]!;
      else if (lower === 'etag') etag = headers[i + 1]!;
      kept.push(name, headers[i + 1]!);
      names.add(lower);
    }
    // The gateway negotiates encodings itself: Accept-Encoding splits entries only when PHP encoded the body.
    if (!encoded) vary = vary.filter((v) => v !== 'accept-encoding');
    const now = Date.now();
    const entry: Entry = {
      kind: 'entry',
      status,
      reason,
      contentType: head.contentType,
      headers: kept,
      names,
      identity: { head: [...kept, 'Content-Length', String(body.length)], body, etag },
      variants: { br: null, gzip: null },
      compressible:
        this.#compression !== null && this.#compression.compressible(status, { contentType: head.contentType, contentLength: body.length }, kept),
      lastModifiedMs: lastModified === null || Number.isNaN(Date.parse(lastModified)) ? null : Date.parse(lastModified),
      storedAt: now,
      freshUntil: now + life.freshMs,
      updatingUntil: now + life.freshMs + life.updatingMs,
      errorUntil: now + life.freshMs + life.errorMs,
      path: fill.path,
      size: 0,
    };
    let key = fill.key;
    if (vary.length > 0) {
      const names = [...new Set(vary)].sort();
      this.#lru.set(
        fill.primary,
        { kind: 'vary', names, path: fill.path },
        { size: ENTRY_OVERHEAD, ttl: Math.max(entry.updatingUntil, entry.errorUntil) - now },
      );
      key = fill.primary + varySuffix(names, req);
    }
    this.#put(key, entry);
    if (entry.compressible) this.#makeVariants(key, entry);
  }

  /** Remembers for the rule's ttl that this key's answers are not storable: its misses then skip the lock. */
  markPass(fill: CacheFill, rule: CompiledRule): void {
    this.#lru.set(fill.key, { kind: 'pass', path: fill.path }, { size: ENTRY_OVERHEAD, ttl: rule.ttlMs });
  }

  settled(fill: CacheFill): void {
    if (this.#fills.get(fill.key) === fill) this.#fills.delete(fill.key);
  }

  #put(key: string, entry: Entry): void {
    entry.size = entrySize(entry);
    const ttl = Math.max(1, Math.max(entry.updatingUntil, entry.errorUntil) - Date.now());
    this.#lru.set(key, entry, { size: entry.size, ttl });
  }

  #makeVariants(key: string, entry: Entry): void {
    const compression = this.#compression!;
    for (const encoding of compression.encodings) {
      compression.compress(encoding, entry.identity.body, (err, out) => {
        if (err !== null) {
          this.#log.error({ err, path: entry.path }, 'compressing a cached answer failed; it is compressed per request instead');
          return;
        }
        if (this.#lru.peek(key) !== entry) return; // replaced, purged or evicted meanwhile
        const head = compressedHeaders(entry.headers, encoding);
        const etagAt = head.findIndex((v, i) => i % 2 === 0 && v.toLowerCase() === 'etag');
        head.push('Content-Length', String(out.length));
        entry.variants[encoding] = { head, body: out, etag: etagAt === -1 ? null : head[etagAt + 1]! };
        entry.size = entrySize(entry);
        this.#lru.set(key, entry, { size: entry.size, noUpdateTTL: true });
      });
    }
  }

  #bypassed(req: IncomingMessage): boolean {
    if (req.headers.authorization !== undefined) return true;
    const cookie = req.headers.cookie;
    if (cookie === undefined || this.#bypassCookies.length === 0) return false;
    for (const pair of cookie.split(';')) {
      const eq = pair.indexOf('=');
      const name = (eq === -1 ? pair : pair.slice(0, eq)).trim();
      if (name !== '' && this.#bypassCookies.some((m) => m(name))) return true;
    }
    return false;
  }
}

function entrySize(e: Entry): number {
  let size = ENTRY_OVERHEAD + e.identity.body.length;
  for (const h of e.identity.head) size += h.length;
  if (e.variants.br !== null) size += e.variants.br.body.length + ENTRY_OVERHEAD;
  if (e.variants.gzip !== null) size += e.variants.gzip.body.length + ENTRY_OVERHEAD;
  return size;
}
