/** What the cache keeps of one answer, and the representations it is sent in. */

/** One way a cached answer is sent: its head (Content-Length included) and bytes. */
export interface Representation {
  readonly head: readonly string[];
  readonly body: Buffer;
  /** The ETag as sent in this representation (weak for compressed ones), or null. */
  readonly etag: string | null;
}

export interface Entry {
  readonly kind: 'entry';
  readonly status: number;
  readonly reason: string;
  /** The answer's Content-Type ('' when none): what compression decides by. */
  readonly contentType: string;
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
