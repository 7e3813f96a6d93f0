/**
 * One request filling one cache entry: a filter in front of that request's client, keeping a copy of the answer
 * (PHP's or an upstream's) as it streams through, and standing in for the producer's failure with the previous
 * answer (stale-if-error). Exactly one ending: stored, not storable, or failed. Requests waiting on it resume then.
 */
import type { IncomingMessage } from 'node:http';
import type { PhpgateError } from '../../../core/errors.js';
import { headerIndex, withHeaders, type ClientCloseListener, type ResponseHead, type ResponseSink, type Source } from '../../http/sink.js';
import type { Entry } from './entry.js';
import type { CompiledRule } from './key.js';
import { lifetime, type Lifetime } from './policy.js';
import { serveEntry, type EntryServing } from './serve.js';

/** What a fill needs of the cache it fills. */
export interface FillHost extends EntryServing {
  readonly maxEntryBytes: number;
  /** Keeps `head` and `body` under the fill's key, fresh for `life`. */
  store(fill: CacheFill, req: IncomingMessage, head: ResponseHead, body: Buffer, life: Lifetime): void;
  /** The answer was not storable by policy: later misses of its key skip the lock for a while. */
  markPass(fill: CacheFill, rule: CompiledRule): void;
  /** The fill ended, whichever way. */
  settled(fill: CacheFill): void;
}

export class CacheFill implements ResponseSink, ClientCloseListener {
  readonly #cache: FillHost;
  readonly #rule: CompiledRule;
  readonly key: string;
  readonly primary: string;
  readonly path: string;
  /** The previous answer, which may stand in for the producer's failure; null when there is none (or it is too old). */
  readonly #stale: Entry | null;
  #req: IncomingMessage | null = null;
  #next: ResponseSink | null = null;
  #waiters: Array<() => void> = [];
  #settled = false;
  /** Body bytes so far, while the answer is being kept (null: not kept). */
  #chunks: Buffer[] | null = null;
  #size = 0;
  #life: Lifetime | null = null;
  #head: ResponseHead | null = null;
  /** The answer turned out not storable by policy: remember it so later misses skip the lock. */
  #pass = false;

  constructor(cache: FillHost, rule: CompiledRule, key: string, primary: string, path: string, stale: Entry | null) {
    this.#cache = cache;
    this.#rule = rule;
    this.key = key;
    this.primary = primary;
    this.path = path;
    this.#stale = stale;
  }

  /** The filling request and the sink its answer goes on to (where a stale answer goes if the producer fails). */
  attach(req: IncomingMessage, next: ResponseSink): void {
    this.#req = req;
    this.#next = next;
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

  start(head: ResponseHead, source: Source): boolean {
    const next = this.#next!;
    if (this.#settled) return next.start(head, source);
    // A stale answer goes out instead of the producer's failure (stale-if-error): the rest of it is dropped.
    if (head.status >= 500 && this.#serveStale()) return false;
    this.#keep(head);
    const marked =
      this.#cache.header === '' || headerIndex(head.headers, this.#cache.header) !== -1
        ? head
        : withHeaders(head, [...head.headers, this.#cache.header, 'MISS']);
    if (next.start(marked, source)) return true;
    this.#settle();
    return false;
  }

  data(chunk: Buffer): boolean {
    this.#onBody(chunk);
    return this.#next!.data(chunk);
  }

  flush(): boolean {
    return this.#next!.flush();
  }

  end(last?: Buffer): void {
    if (last !== undefined) this.#onBody(last);
    if (!this.#settled) {
      if (this.#chunks !== null) {
        // One copy: the chunks are slices of socket reads, which must not stay alive behind a small entry.
        const body = Buffer.concat(this.#chunks, this.#size);
        const head = this.#head!;
        this.#cache.store(this, this.#req!, head, body, this.#life!);
      } else if (this.#pass) {
        this.#cache.markPass(this, this.#rule);
      }
      this.#settle();
    }
    this.#next!.end(last);
  }

  error(err: PhpgateError): void {
    // Failed before its head (502, 503, 504): the previous answer stands in when it may.
    if (this.#head === null && this.#serveStale()) return;
    this.#settle();
    this.#next!.error(err);
  }

  clientClosed(): void {
    this.#settle();
  }

  /** Nothing will be produced for this fill (a bug on the way to the producer): later misses must not wait for it. */
  abandon(): void {
    this.#settle();
  }

  /** Decides from the head whether the answer is kept. */
  #keep(head: ResponseHead): void {
    this.#head = head;
    // An internal redirect's instruction, not an answer: what it redirects to is not stored under this key.
    if (head.accelRedirect !== null) return;
    const life = lifetime(this.#rule, head.status, head, head.headers);
    if (life === null) {
      // A 5xx is the producer failing now, not a property of the page: the next miss tries again at once.
      this.#pass = head.status < 500;
      return;
    }
    if (head.contentLength !== null && head.contentLength > this.#cache.maxEntryBytes) {
      this.#pass = true;
      return;
    }
    this.#life = life;
    this.#chunks = [];
  }

  #onBody(chunk: Buffer): void {
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

  #serveStale(): boolean {
    const stale = this.#stale;
    if (this.#settled || stale === null || Date.now() >= stale.errorUntil) return false;
    this.#settle();
    serveEntry(this.#cache, this.#req!, stale, 'STALE', this.#next!);
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
