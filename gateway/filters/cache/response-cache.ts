/**
 * The response cache for PHP, as nginx's fastcgi_cache is used for microcaching: per URL pattern, GET answers
 * PHP allows to be stored (Cache-Control, Expires, X-Accel-Expires, or the rule's ttl when PHP says nothing) are
 * kept in memory, bounded in bytes (lru-cache), and served without PHP while fresh.
 *
 * - Never for requests with Authorization or a session cookie (cache.bypass_cookies), nor answers with Set-Cookie.
 * - Simultaneous misses of one key wait for the one request that fills it (fastcgi_cache_lock), up to lock_ms.
 * - Past its freshness an entry is still served for stale_s while one request refreshes it, and instead of PHP's
 *   failure (fastcgi_cache_use_stale updating error timeout http_500 http_502 http_503 http_504).
 * - Vary is honoured: one entry per set of the request's values for the named headers.
 * - Compressed variants are made once per entry, off the event loop, so a HIT costs no compression.
 * - Answers bigger than max_entry_kb pass through without being held.
 *
 * Deciding and serving are here; the PHP exchange feeds a CacheFill with PHP's head and body as they stream.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LRUCache } from 'lru-cache';
import { parseCacheKey, type CacheKeyPart } from '../../../config/cache-key.js';
import { compilePattern, type PathMatcher } from '../../../config/pattern.js';
import type { CacheConfig, CacheRule } from '../../../config/types.js';
import type { CgiHead } from '../../../php/response.js';
import { compressedHeaders, type Compression } from '../compression.js';
import { matchesWeak, notAfter } from '../../http/conditional.js';
import type { Logger } from '../../http/log.js';
import { writeHeadOver, type HeaderList } from '../../http/response-head.js';
import type { CacheStatus } from '../../http/status.js';
import type { ParsedTarget } from '../../http/uri.js';

export type { CacheStatus };


/** One way a cached answer is sent: its head (Content-Length included) and bytes. */
interface Representation {
  readonly head: readonly string[];
  readonly body: Buffer;
  /** The ETag as sent in this representation (weak for compressed ones), or null. */
  readonly etag: string | null;
}

interface Entry {
  readonly kind: 'entry';
  readonly status: number;
  readonly reason: string;
  /** PHP's headers without Content-Length: the base of every representation. */
  readonly headers: readonly string[];
  /** Their lower-case names: a security header PHP also sent is not sent twice. */
  readonly names: ReadonlySet<string>;
  readonly identity: Representation;
  /** Made after storing, when the answer is compressible; null until then (or for good when it is not). */
  readonly variants: { br: Representation | null; gzip: Representation | null };
  readonly compressible: boolean;
  /** PHP's Last-Modified as a time (ms), for If-Modified-Since; null when none or unparsable. */
  readonly lastModifiedMs: number | null;
  /** Date.now() values. */
  readonly storedAt: number;
  readonly freshUntil: number;
  /** Served STALE while another request refreshes it, until then. */
  readonly updatingUntil: number;
  /** Served STALE instead of PHP's failure, until then. */
  readonly errorUntil: number;
  /** For purge. */
  readonly path: string;
  size: number;
}

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

type KeyFn = (req: IncomingMessage, target: ParsedTarget, https: boolean) => string;

export interface CompiledRule {
  readonly match: PathMatcher;
  readonly ttlMs: number;
  readonly staleMs: number;
  readonly statuses: ReadonlySet<number>;
  readonly key: KeyFn;
}

/** Freshness and stale windows of a storable answer (ms). */
interface Lifetime {
  readonly freshMs: number;
  readonly updatingMs: number;
  readonly errorMs: number;
}

const MiB = 1024 * 1024;
/** What an entry costs beyond its bytes (objects, header strings): counted so many small entries stay bounded. */
const ENTRY_OVERHEAD = 512;
/** Headers a 304 carries from the cached answer (RFC 9110 §15.4.5). */
const NOT_MODIFIED_HEADERS: ReadonlySet<string> = new Set(['etag', 'last-modified', 'cache-control', 'expires', 'vary', 'content-location']);

export interface ResponseCacheOptions {
  readonly config: CacheConfig;
  /** compression.*, or null when off: then no variants are made. */
  readonly compression: Compression | null;
  readonly log: Logger;
}

export class ResponseCache {
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

  /** null when there is nothing to cache (no rules, or max_mb 0): the stage is then absent. */
  static create(o: ResponseCacheOptions): ResponseCache | null {
    return o.config.rules.length === 0 || o.config.max_mb === 0 ? null : new ResponseCache(o);
  }

  private constructor(o: ResponseCacheOptions) {
    const c = o.config;
    this.#rules = c.rules.map(compileRule);
    this.#lru = new LRUCache<string, Stored>({ maxSize: Math.max(1, Math.floor(c.max_mb * MiB)), allowStale: false, updateAgeOnGet: false });
    this.#bypassCookies = c.bypass_cookies.map(compilePattern);
    this.#maxEntryBytes = c.max_entry_kb * 1024;
    this.lockMs = c.lock_ms;
    this.header = c.header;
    this.#compression = o.compression;
    this.#log = o.log;
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

  /** Sets the X-Cache header (when configured) on an answer still to be written. */
  mark(res: ServerResponse, status: CacheStatus): void {
    if (this.header !== '') res.setHeader(this.header, status);
  }

  /**
   * Sends a cached answer: the variant the client accepts, 304 to a matching conditional request, Age and X-Cache.
   * `edge`: security headers not yet set on the response (those PHP sent itself win).
   */
  serve(req: IncomingMessage, res: ServerResponse, entry: Entry, status: 'HIT' | 'STALE', edge: HeaderList): void {
    const encoding = entry.compressible ? this.#compression!.negotiate(req.headers['accept-encoding']) : null;
    const variant = encoding === null ? entry.identity : entry.variants[encoding];
    const head: string[] = [];
    for (let i = 0; i < edge.length; i += 2) if (!entry.names.has(edge[i]!.toLowerCase())) head.push(edge[i]!, edge[i + 1]!);
    const reason = req.httpVersionMajor === 1 ? entry.reason : '';
    const age = String(Math.max(0, Math.floor((Date.now() - entry.storedAt) / 1000)));
    if (variant !== null && notModified(req, variant.etag, entry.lastModifiedMs)) {
      for (let i = 0; i < variant.head.length; i += 2) {
        if (NOT_MODIFIED_HEADERS.has(variant.head[i]!.toLowerCase())) head.push(variant.head[i]!, variant.head[i + 1]!);
      }
      this.#finishHead(head, age, status);
      writeHeadOver(res, 304, '', head);
      res.end();
      return;
    }
    if (variant !== null) {
      for (let i = 0; i < variant.head.length; i++) head.push(variant.head[i]!);
      this.#finishHead(head, age, status);
      writeHeadOver(res, entry.status, reason, head);
      res.end(req.method === 'HEAD' ? undefined : variant.body);
      return;
    }
    // Its compressed variant is still being made (just stored): compressed on the way, as a MISS would be.
    const compressed = compressedHeaders(entry.headers, encoding!);
    for (let i = 0; i < compressed.length; i++) head.push(compressed[i]!);
    this.#finishHead(head, age, status);
    writeHeadOver(res, entry.status, reason, head);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const encoder = this.#compression!.encoder(encoding!, entry.identity.body.length);
    encoder.once('error', (err) => {
      this.#log.error({ err }, 'compressing a cached answer failed');
      res.destroy(err);
    });
    encoder.pipe(res);
    encoder.end(entry.identity.body);
  }

  #finishHead(head: string[], age: string, status: CacheStatus): void {
    head.push('Age', age);
    if (this.header !== '') head.push(this.header, status);
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

  /** How long PHP's answer may be stored and served stale, or null when it must not be stored. */
  lifetime(rule: CompiledRule, status: number, head: CgiHead, headers: readonly string[]): Lifetime | null {
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

  store(fill: CacheFill, req: IncomingMessage, status: number, reason: string, head: CgiHead,
    headers: readonly string[], body: Buffer, life: Lifetime): void {
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
      if (lower === 'vary') vary = vary.concat(headers[i + 1]!.split(',').map((v) => v.trim().toLowerCase()).filter((v) => v !== ''));
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
      headers: kept,
      names,
      identity: { head: [...kept, 'Content-Length', String(body.length)], body, etag },
      variants: { br: null, gzip: null },
      compressible: this.#compression !== null && this.#compression.compressible(status, { contentType: head.contentType, contentLength: body.length }, kept),
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
      this.#lru.set(fill.primary, { kind: 'vary', names, path: fill.path }, { size: ENTRY_OVERHEAD, ttl: Math.max(entry.updatingUntil, entry.errorUntil) - now });
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

/**
 * One request filling one cache entry, fed by the PHP exchange as PHP's answer streams to the client. Exactly one
 * ending: stored, not storable, or failed. Requests waiting on it resume then.
 */
export class CacheFill {
  readonly #cache: ResponseCache;
  readonly #rule: CompiledRule;
  readonly key: string;
  readonly primary: string;
  readonly path: string;
  /** The previous answer, which may stand in for PHP's failure; null when there is none (or it is too old). */
  readonly #stale: Entry | null;
  #req: IncomingMessage | null = null;
  #res: ServerResponse | null = null;
  #edge: HeaderList = [];
  #waiters: Array<() => void> = [];
  #settled = false;
  /** Body bytes so far, while the answer is being kept (null: not kept). */
  #chunks: Buffer[] | null = null;
  #size = 0;
  #life: Lifetime | null = null;
  #status = 0;
  #reason = '';
  #head: CgiHead | null = null;
  #headers: readonly string[] = [];
  /** The answer turned out not storable by policy: remember it so later misses skip the lock. */
  #pass = false;

  constructor(cache: ResponseCache, rule: CompiledRule, key: string, primary: string, path: string, stale: Entry | null) {
    this.#cache = cache;
    this.#rule = rule;
    this.key = key;
    this.primary = primary;
    this.path = path;
    this.#stale = stale;
  }

  /** The filling request's client: where a stale answer goes if PHP fails. */
  attach(req: IncomingMessage, res: ServerResponse, edge: HeaderList): void {
    this.#req = req;
    this.#res = res;
    this.#edge = edge;
  }

  /** Resumes `go` once this fill has ended, or after `ms` at the latest (then uncached, as fastcgi_cache_lock_timeout). */
  wait(ms: number, go: () => void): void {
    let called = false;
    const once = (): void => {
      if (called) return;
      called = true;
      clearTimeout(timer);
      go();
    };
    const timer = setTimeout(once, ms);
    this.#waiters.push(once);
  }

  /**
   * PHP's head. Returns true when the fill answered the client itself (a stale answer instead of PHP's 5xx): the
   * exchange then sends nothing of PHP's answer.
   */
  onHead(status: number, reason: string, head: CgiHead, headers: readonly string[]): boolean {
    if (this.#settled) return false;
    if (status >= 500 && this.#serveStale()) return true;
    const life = this.#cache.lifetime(this.#rule, status, head, headers);
    if (life === null) {
      // A 5xx is PHP failing now, not a property of the page: the next miss tries again at once.
      this.#pass = status < 500;
      return false;
    }
    if (head.contentLength !== null && head.contentLength > this.#cache.maxEntryBytes) {
      this.#pass = true;
      return false;
    }
    this.#life = life;
    this.#status = status;
    this.#reason = reason;
    this.#head = head;
    this.#headers = headers;
    this.#chunks = [];
    return false;
  }

  onBody(chunk: Buffer): void {
    if (this.#chunks === null) return;
    this.#size += chunk.length;
    if (this.#size > this.#cache.maxEntryBytes) {
      // Streamed past the limit: passed through, never held whole.
      this.#chunks = null;
      this.#pass = true;
      return;
    }
    this.#chunks.push(chunk);
  }

  /** PHP's answer ended; `complete` false when it was cut (short body, client gone, PHP died mid-answer). */
  onEnd(complete: boolean): void {
    if (this.#settled) return;
    if (complete && this.#chunks !== null) {
      // One copy: the chunks are slices of socket reads, which must not stay alive behind a small entry.
      const body = Buffer.concat(this.#chunks, this.#size);
      this.#cache.store(this, this.#req!, this.#status, this.#reason, this.#head!, this.#headers, body, this.#life!);
    } else if (complete && this.#pass) {
      this.#cache.markPass(this, this.#rule);
    }
    this.#settle();
  }

  /** PHP failed before its head (502, 503, 504): true when a stale answer went to the client instead. */
  onFailure(): boolean {
    if (this.#settled) return false;
    const served = this.#serveStale();
    this.#settle();
    return served;
  }

  #serveStale(): boolean {
    const stale = this.#stale;
    if (stale === null || Date.now() >= stale.errorUntil || this.#res === null || this.#res.headersSent) return false;
    this.#cache.serve(this.#req!, this.#res, stale, 'STALE', this.#edge);
    this.#settle();
    return true;
  }

  #settle(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#chunks = null;
    this.#cache.settled(this);
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}

function compileRule(r: CacheRule): CompiledRule {
  return {
    match: compilePattern(r.pattern),
    ttlMs: r.ttl_s * 1000,
    staleMs: r.stale_s * 1000,
    statuses: new Set(r.statuses),
    key: compileKey(parseCacheKey(r.key)!),
  };
}

function compileKey(parts: readonly CacheKeyPart[]): KeyFn {
  return (req, target, https) => {
    let key = '';
    for (const p of parts) key += keyPart(p, req, target, https);
    return key;
  };
}

function keyPart(p: CacheKeyPart, req: IncomingMessage, target: ParsedTarget, https: boolean): string {
  switch (p.kind) {
    case 'text':
      return p.text;
    case 'scheme':
      return https ? 'https' : 'http';
    // A HEAD is answered from the GET's entry.
    case 'method':
      return req.method === 'HEAD' ? 'GET' : req.method ?? '';
    case 'host':
      return hostOf(req, target);
    case 'request_uri':
      return target.requestUri;
    case 'uri':
      return target.path;
    case 'args':
      return target.query;
    case 'is_args':
      return target.query === '' ? '' : '?';
    case 'header':
      return headerValue(req, p.name);
    case 'cookie':
      return cookieValue(req.headers.cookie, p.name);
  }
}

/** nginx's $host: the request's host name, lower-case, without the port. */
function hostOf(req: IncomingMessage, target: ParsedTarget): string {
  const h = target.authority ?? req.headers.host ?? (req.headers[':authority'] as string | undefined) ?? '';
  const end = h.startsWith('[') ? h.indexOf(']') + 1 : h.lastIndexOf(':');
  return (end > 0 ? h.slice(0, end) : h).toLowerCase();
}

function headerValue(req: IncomingMessage, name: string): string {
  const v = req.headers[name];
  return v === undefined ? '' : Array.isArray(v) ? v.join(', ') : v;
}

/** `name` lower-case (as the key parser leaves it): nginx's $cookie_NAME matches the name in any letter case. */
function cookieValue(cookie: string | undefined, name: string): string {
  if (cookie === undefined) return '';
  for (const pair of cookie.split(';')) {
    const eq = pair.indexOf('=');
    if (eq !== -1 && pair.slice(0, eq).trim().toLowerCase() === name) return pair.slice(eq + 1).trim();
  }
  return '';
}

function varySuffix(names: readonly string[], req: IncomingMessage): string {
  let s = '';
  for (const n of names) s += '\n' + headerValue(req, n).trim();
  return s;
}

interface CacheControl {
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
  const cc: CacheControl = { noStore: false, private: false, noCache: false, mustRevalidate: false, maxAge: null, sMaxage: null, staleWhileRevalidate: null, staleIfError: null };
  if (value === '') return cc;
  for (const part of value.match(DIRECTIVES) ?? []) {
    const eq = part.indexOf('=');
    const name = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase();
    const arg = eq === -1 ? '' : part.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
    const n = /^\d+$/.test(arg) ? Math.min(Number(arg), DELTA_SECONDS_MAX) : 0;
    switch (name) {
      case 'no-store': cc.noStore = true; break;
      case 'private': cc.private = true; break;
      case 'no-cache': cc.noCache = true; break;
      case 'must-revalidate':
      case 'proxy-revalidate': cc.mustRevalidate = true; break;
      case 'max-age': cc.maxAge = once(cc.maxAge, n); break;
      case 's-maxage': cc.sMaxage = once(cc.sMaxage, n); break;
      case 'stale-while-revalidate': cc.staleWhileRevalidate = once(cc.staleWhileRevalidate, n); break;
      case 'stale-if-error': cc.staleIfError = once(cc.staleIfError, n); break;
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

/** RFC 9110 §13.2.2: If-None-Match (weak comparison) wins over If-Modified-Since. */
function notModified(req: IncomingMessage, etag: string | null, lastModifiedMs: number | null): boolean {
  const inm = req.headers['if-none-match'];
  if (inm !== undefined) return etag !== null && matchesWeak(inm, etag);
  return lastModifiedMs !== null && notAfter(req.headers['if-modified-since'], lastModifiedMs) === true;
}

function entrySize(e: Entry): number {
  let size = ENTRY_OVERHEAD + e.identity.body.length;
  for (const h of e.identity.head) size += h.length;
  if (e.variants.br !== null) size += e.variants.br.body.length + ENTRY_OVERHEAD;
  if (e.variants.gzip !== null) size += e.variants.gzip.body.length + ENTRY_OVERHEAD;
  return size;
}
