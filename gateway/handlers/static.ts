/**
 * Static files, served as nginx does: MIME types (content-type.ts), validators (ETag as nginx: mtime-size), conditional requests
 * (RFC 9110 §13), single byte ranges, precompressed siblings (gzip_static / brotli_static), Cache-Control per
 * path, and a hot-file cache of small files kept in memory with their headers.
 */
import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LRUCache } from 'lru-cache';
import { compilePattern, type PathMatcher } from '../../config/pattern.js';
import type { StaticConfig } from '../../config/types.js';
import type { DocrootGuard, FileInfoCache } from '../http/file-cache.js';
import { matchesStrong, matchesWeak, notAfter } from '../http/conditional.js';
import { qualityOf } from '../http/accept-encoding.js';
import type { Exchange } from '../http/exchange.js';
import { writeHeadList } from '../http/response-head.js';
import type { Logger } from '../../core/log.js';
import { ifRangeHolds, parseRange } from '../http/range.js';
import { headerIndex, NO_SOURCE, plainHead, stableHead, type ResponseHead, type ResponseSink } from '../http/sink.js';
import { ContentTypes } from './content-type.js';
import { FileStream } from './file-stream.js';

/** One way of sending a file: itself, or a precompressed sibling. */
interface Representation {
  readonly path: string;
  readonly stat: fs.Stats;
  readonly encoding: '' | 'br' | 'gzip';
}

/** What is remembered of a file between requests (and its bytes, when it is small). */
interface FileEntry {
  readonly mtimeMs: number;
  readonly size: number;
  readonly etag: string;
  readonly lastModified: string;
  /** Seconds-precision mtime, as Last-Modified carries it. */
  readonly mtimeS: number;
  readonly body: Buffer | null;
  /** The whole-file 200 head of a file kept in memory, made by its first plain GET and reused (null: not yet). */
  ok: OkHead | null;
}

/** A reusable 200 head, valid for the Cache-Control and Vary it was made with. */
interface OkHead {
  readonly cacheControl: string | null;
  readonly vary: boolean;
  readonly head: ResponseHead;
}

const PRECOMPRESSED = [
  { encoding: 'br', suffix: '.br' },
  { encoding: 'gzip', suffix: '.gz' },
] as const;

/** Bigger reads, fewer syscalls and writes per megabyte; still only this much held per slow client. */
const STREAM_CHUNK = 256 * 1024;

/** An entry without a body still costs its headers and key in memory. */
const ENTRY_OVERHEAD = 256;

export type StaticResult = 0 | 405;

export interface StaticFilesOptions {
  readonly config: StaticConfig;
  readonly files: FileInfoCache;
  readonly guard: DocrootGuard;
  readonly log: Logger;
}

export class StaticFiles {
  readonly #files: FileInfoCache;
  readonly #guard: DocrootGuard;
  readonly #log: Logger;
  readonly #precompressed: boolean;
  readonly #cacheControl: ReadonlyArray<{ readonly match: PathMatcher; readonly value: string }>;
  readonly #hotMax: number;
  readonly #entries: LRUCache<string, FileEntry>;
  readonly #contentTypes: ContentTypes;

  constructor(o: StaticFilesOptions) {
    this.#files = o.files;
    this.#guard = o.guard;
    this.#log = o.log;
    this.#precompressed = o.config.precompressed;
    this.#cacheControl = o.config.cache_control.map((r) => ({ match: compilePattern(r.pattern), value: r.value }));
    this.#hotMax = o.config.hot_cache_file_kb * 1024;
    this.#contentTypes = new ContentTypes(o.config);
    this.#entries = new LRUCache<string, FileEntry>({
      maxSize: Math.max(1, Math.floor(o.config.hot_cache_mb * 1024 * 1024)),
      sizeCalculation: (e) => ENTRY_OVERHEAD + (e.body === null ? 0 : e.body.length),
    });
  }

  /**
   * Answers a request for `file` (found by the router at `uriPath`) into `sink`. Returns 0 when answered, or the
   * error status the caller must answer (with its error page): 405 for methods other than GET and HEAD, as nginx.
   * `carried`: headers of an answer that redirected here (X-Accel-Redirect), which replace the file's own by name.
   */
  serve(
    x: Exchange,
    sink: ResponseSink,
    file: string,
    stat: fs.Stats,
    uriPath: string,
    carried: readonly string[] | null = null,
    method = x.req.method,
  ): StaticResult {
    const req = x.req;
    if (method !== 'GET' && method !== 'HEAD') return 405;
    const { rep, vary } = this.#choose(file, stat, req.headers['accept-encoding']);
    const entry = this.#entry(rep);
    if (entry.body !== null || method === 'HEAD') {
      this.#answer(x, sink, file, rep, entry, vary, uriPath, null, carried, method);
      return 0;
    }
    // Streamed from disk: open first and describe the file that was opened, so headers and bytes always come
    // from one version (a file renamed over this path within the stat cache's second would otherwise pair the
    // old ETag and length with the new bytes).
    fs.open(rep.path, 'r', (openErr, fd) => {
      if (openErr !== null) {
        this.#log.debug({ err: openErr, file: rep.path }, 'static file vanished before it could be opened');
        x.refuse(404);
        return;
      }
      fs.fstat(fd, (statErr, st) => {
        if (x.gone) {
          fs.close(fd, () => undefined); // the client left while we opened the file: nothing to send
          return;
        }
        if (statErr !== null) {
          fs.close(fd, () => undefined); // the answer is the error; a failed close changes nothing
          this.#log.warn({ err: statErr, file: rep.path }, 'static file could not be read');
          x.refuse(500);
          return;
        }
        const current = st.size === entry.size && st.mtimeMs === entry.mtimeMs ? entry : this.#describe(st, null);
        this.#answer(x, sink, file, rep, current, vary, uriPath, fd, carried, method);
      });
    });
    return 0;
  }

  /**
   * Validators, conditionals and ranges, then the bytes: from memory, or streamed from `fd` (which this closes
   * whatever the answer).
   */
  #answer(
    x: Exchange,
    sink: ResponseSink,
    file: string,
    rep: Representation,
    entry: FileEntry,
    vary: boolean,
    uriPath: string,
    fd: number | null,
    carried: readonly string[] | null,
    method: string | undefined,
  ): void {
    const req = x.req;
    const h = req.headers;
    const cacheControl = this.#cacheControlFor(uriPath);
    // The hot path: a plain GET of a file kept in memory takes the head made for its first one (no validators to
    // compare, no range): the same bytes, so the same head, as nginx's open_file_cache keeps it.
    if (entry.body !== null && carried === null && plainGet(h) && method === 'GET' && entry.size > 0) {
      const ok = entry.ok;
      if (ok !== null && ok.cacheControl === cacheControl && ok.vary === vary) {
        if (fd !== null) fs.close(fd, () => undefined);
        if (sink.start(ok.head, NO_SOURCE)) sink.end(entry.body);
        return;
      }
    }
    const headers: string[] = [];
    const contentType = this.#contentTypes.of(file);
    headers.push('Content-Type', contentType, 'Last-Modified', entry.lastModified, 'ETag', entry.etag);
    if (cacheControl !== null) headers.push('Cache-Control', cacheControl);
    if (vary) headers.push('Vary', 'Accept-Encoding');
    if (rep.encoding !== '') headers.push('Content-Encoding', rep.encoding);

    let status = 200;
    let start = 0;
    let end = entry.size - 1; // inclusive
    // RFC 9110 §13.2.2: If-Match, else If-Unmodified-Since; then If-None-Match, else If-Modified-Since.
    const ifMatch = h['if-match'];
    const ifNoneMatch = h['if-none-match'];
    if (ifMatch !== undefined ? !matchesStrong(ifMatch, entry.etag) : notAfter(h['if-unmodified-since'], entry.mtimeS * 1000) === false) {
      status = 412;
    } else if (ifNoneMatch !== undefined ? matchesWeak(ifNoneMatch, entry.etag) : notAfter(h['if-modified-since'], entry.mtimeS * 1000) === true) {
      status = 304;
    } else {
      headers.push('Accept-Ranges', 'bytes');
      const ifRange = h['if-range'];
      const range =
        h.range === undefined || !ifRangeHolds(typeof ifRange === 'string' ? ifRange : undefined, entry) ? null : parseRange(h.range, entry.size);
      if (range === 'unsatisfiable') {
        status = 416;
        headers.push('Content-Range', `bytes */${entry.size}`, 'Content-Length', '0');
      } else {
        if (range !== null) {
          status = 206;
          start = range.start;
          end = range.end;
          headers.push('Content-Range', `bytes ${start}-${end}/${entry.size}`);
        }
        headers.push('Content-Length', String(entry.size === 0 ? 0 : end - start + 1));
      }
    }
    const sendsBody = (status === 200 || status === 206) && method !== 'HEAD' && entry.size > 0;
    const length = status === 200 || status === 206 ? (entry.size === 0 ? 0 : end - start + 1) : status === 416 ? 0 : null;
    const head = plainHead(status, '', carried === null ? headers : withCarried(headers, carried), contentType, length);
    if (status === 200 && entry.body !== null && carried === null && plainGet(h)) entry.ok = { cacheControl, vary, head: stableHead(head) };
    if (!sendsBody) {
      if (fd !== null) fs.close(fd, () => undefined); // nothing to read from it; a failed close changes nothing
      if (sink.start(head, NO_SOURCE)) sink.end();
    } else if (entry.body !== null) {
      if (fd !== null) fs.close(fd, () => undefined);
      if (sink.start(head, NO_SOURCE)) sink.end(status === 200 ? entry.body : entry.body.subarray(start, end + 1));
    } else {
      new FileStream(x, sink, this.#log, rep.path, fd, start, end, STREAM_CHUNK).start(head);
    }
  }

  /**
   * An error page (nginx error_page): the file's bytes under the error's status, without validators or ranges,
   * which belong to the file and not to this answer.
   */
  sendPage(req: IncomingMessage, res: ServerResponse, file: string, stat: fs.Stats, status: number): void {
    const entry = this.#entry({ path: file, stat, encoding: '' });
    writeHeadList(res, status, ['Content-Type', this.#contentTypes.of(file), 'Content-Length', entry.size]);
    if (req.method === 'HEAD' || entry.size === 0) res.end();
    else if (entry.body !== null) res.end(entry.body);
    else {
      fs.createReadStream(file, { highWaterMark: STREAM_CHUNK })
        .on('error', (err) => {
          this.#log.warn({ err, file }, 'error page read failed mid-response');
          res.destroy();
        })
        .pipe(res);
    }
  }

  /** Picks the precompressed sibling the client accepts best (br before gzip on a tie), else the file itself. */
  #choose(file: string, stat: fs.Stats, acceptEncoding: string | undefined): { rep: Representation; vary: boolean } {
    let rep: Representation = { path: file, stat, encoding: '' };
    if (!this.#precompressed) return { rep, vary: false };
    let vary = false;
    let bestQ = 0;
    for (const { encoding, suffix } of PRECOMPRESSED) {
      const sibling = this.#files.stat(file + suffix);
      // The sibling is a file of its own: it must pass the same symlink rule the router applied to the original.
      if (sibling === null || !sibling.isFile() || !this.#guard.allows(file + suffix)) continue;
      // nginx's gzip_vary: the answer depends on Accept-Encoding as soon as a variant exists.
      vary = true;
      const q = acceptEncoding === undefined ? 0 : qualityOf(acceptEncoding, encoding);
      if (q > bestQ) {
        bestQ = q;
        rep = { path: file + suffix, stat: sibling, encoding };
      }
    }
    return { rep, vary };
  }

  #entry(rep: Representation): FileEntry {
    const st = rep.stat;
    const cached = this.#entries.get(rep.path);
    if (cached !== undefined && cached.mtimeMs === st.mtimeMs && cached.size === st.size) return cached;
    let body: Buffer | null = null;
    if (st.size <= this.#hotMax) {
      try {
        // Small and about to be sent anyway: one synchronous read (as nginx's blocking read), then memory.
        body = fs.readFileSync(rep.path);
      } catch (err) {
        this.#log.debug({ err, file: rep.path }, 'hot-file cache read failed; streaming instead');
      }
      // Changed between stat and read: don't pin bytes that disagree with the validators; stream this time.
      if (body !== null && body.length !== st.size) body = null;
    }
    const entry = this.#describe(st, body);
    this.#entries.set(rep.path, entry);
    return entry;
  }

  #describe(st: fs.Stats, body: Buffer | null): FileEntry {
    const mtimeS = Math.floor(st.mtimeMs / 1000);
    return {
      mtimeMs: st.mtimeMs,
      size: st.size,
      // nginx: hex seconds of mtime, hex size.
      etag: `"${mtimeS.toString(16)}-${st.size.toString(16)}"`,
      lastModified: new Date(mtimeS * 1000).toUTCString(),
      mtimeS,
      body,
      ok: null,
    };
  }

  #cacheControlFor(uriPath: string): string | null {
    for (const rule of this.#cacheControl) if (rule.match(uriPath)) return rule.value;
    return null;
  }
}

/** Headers of a redirecting answer (X-Accel-Redirect) replace the file's own of the same name, as nginx copies them. */
function withCarried(headers: string[], carried: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) if (headerIndex(carried, headers[i]!) === -1) out.push(headers[i]!, headers[i + 1]!);
  for (let i = 0; i < carried.length; i++) out.push(carried[i]!);
  return out;
}

/** A GET or HEAD without validators or a range: its answer depends on the file alone. */
function plainGet(h: IncomingMessage['headers']): boolean {
  return (
    h.range === undefined &&
    h['if-none-match'] === undefined &&
    h['if-modified-since'] === undefined &&
    h['if-match'] === undefined &&
    h['if-unmodified-since'] === undefined
  );
}
