/**
 * gzip and brotli for PHP's answers (compression.*), as nginx's gzip module does for proxied responses: chosen
 * from Accept-Encoding with q-values, only for compressible types and bodies of at least min_bytes, never over a
 * body PHP already encoded, with `Vary: Accept-Encoding`. Deciding is here; the exchange streams through the
 * encoder with backpressure (and flushes every chunk when PHP asked for no buffering).
 */
import zlib from 'node:zlib';
import type { CompressionConfig } from '../../config/types.js';
import { parseAcceptEncoding, weightOf } from '../http/accept-encoding.js';

export type Encoding = 'br' | 'gzip';

/** Types worth compressing: text, and the structured formats sent as application/* (nginx users list them in gzip_types). */
const COMPRESSIBLE =
  /^(?:text\/|application\/(?:json|javascript|x-javascript|ecmascript|xml|xhtml\+xml|rss\+xml|atom\+xml|ld\+json|manifest\+json|graphql-response\+json|problem\+json|vnd\.api\+json)|image\/svg\+xml|[a-z]+\/[a-z0-9.+-]*\+(?:json|xml)(?:\s*;|$))/i;

/** A few distinct Accept-Encoding values arrive over and over: their choice is remembered. */
const CHOICE_CACHE_MAX = 256;

export class Compression {
  readonly #cfg: CompressionConfig;
  readonly #choices = new Map<string, Encoding | null>();

  readonly #encodings: readonly Encoding[];

  constructor(cfg: CompressionConfig) {
    this.#cfg = cfg;
    this.#encodings = [...(cfg.brotli ? ['br' as const] : []), ...(cfg.gzip ? ['gzip' as const] : [])];
  }

  get enabled(): boolean {
    return this.#cfg.gzip || this.#cfg.brotli;
  }

  /**
   * The encoding for one answer, or null to send it as it is. `head`: PHP's Content-Type and Content-Length (a
   * streamed body of unknown length is compressed, as nginx does); `headers`: what will be sent.
   */
  choose(
    acceptEncoding: string | undefined,
    method: string | undefined,
    status: number,
    head: { readonly contentType: string; readonly contentLength: number | null },
    headers: readonly string[],
  ): Encoding | null {
    if (acceptEncoding === undefined || acceptEncoding === '' || method === 'HEAD') return null;
    return this.compressible(status, head, headers) ? this.negotiate(acceptEncoding) : null;
  }

  /** Whether this answer would be compressed for a client that accepts an encoding (the cache prepares those). */
  compressible(status: number, head: { readonly contentType: string; readonly contentLength: number | null }, headers: readonly string[]): boolean {
    if (status < 200 || status === 204 || status === 206 || status === 304) return false;
    if (head.contentLength !== null && head.contentLength < this.#cfg.min_bytes) return false;
    if (!COMPRESSIBLE.test(head.contentType)) return false;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!.toLowerCase();
      if (name === 'content-encoding') return false; // PHP encoded it itself (ob_gzhandler, zlib.output_compression)
      if (name === 'cache-control' && /(?:^|,)\s*no-transform\s*(?:,|$)/i.test(headers[i + 1]!)) return false;
    }
    return true;
  }

  /** The encodings turned on. */
  get encodings(): readonly Encoding[] {
    return this.#encodings;
  }

  /** A whole body compressed at once, on this thread: for pages, cheaper than a zlib stream's per-chunk round trips. */
  compressWhole(encoding: Encoding, body: Buffer): Buffer {
    return encoding === 'gzip'
      ? zlib.gzipSync(body, { level: this.#cfg.gzip_level })
      : zlib.brotliCompressSync(body, { params: this.#brotliParams(body.length) });
  }

  /** A whole body compressed off the event loop (zlib's thread pool), at the configured level. */
  compress(encoding: Encoding, body: Buffer, done: (err: Error | null, out: Buffer) => void): void {
    if (encoding === 'gzip') zlib.gzip(body, { level: this.#cfg.gzip_level }, done);
    else zlib.brotliCompress(body, { params: this.#brotliParams(body.length) }, done);
  }

  /** An encoder at the configured level; `sizeHint`: PHP's Content-Length, which lets brotli size its window. */
  encoder(encoding: Encoding, sizeHint: number | null): zlib.Gzip | zlib.BrotliCompress {
    if (encoding === 'gzip') return zlib.createGzip({ level: this.#cfg.gzip_level });
    return zlib.createBrotliCompress({ params: this.#brotliParams(sizeHint) });
  }

  #brotliParams(sizeHint: number | null): Record<number, number> {
    const params: Record<number, number> = {
      [zlib.constants.BROTLI_PARAM_QUALITY]: this.#cfg.brotli_level,
      [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT,
    };
    if (sizeHint !== null) params[zlib.constants.BROTLI_PARAM_SIZE_HINT] = sizeHint;
    return params;
  }

  /** The encoding this Accept-Encoding gets (null: identity). */
  negotiate(accept: string | undefined): Encoding | null {
    if (accept === undefined || accept === '') return null;
    const cached = this.#choices.get(accept);
    if (cached !== undefined) return cached;
    const accepted = parseAcceptEncoding(accept);
    const br = this.#cfg.brotli ? weightOf(accepted, 'br') : 0;
    const gzip = this.#cfg.gzip ? weightOf(accepted, 'gzip') : 0;
    // Brotli when the client likes it at least as much: smaller for the same CPU.
    const choice: Encoding | null = br > 0 && br >= gzip ? 'br' : gzip > 0 ? 'gzip' : null;
    if (this.#choices.size < CHOICE_CACHE_MAX) this.#choices.set(accept, choice);
    return choice;
  }
}

/**
 * The head of a compressed answer: no Content-Length (the encoder decides the length) nor Accept-Ranges, Content-Encoding, Vary
 * extended, and a strong ETag made weak (the bytes differ from the identity form's, as nginx does).
 */
export function compressedHeaders(headers: readonly string[], encoding: Encoding): string[] {
  const out: string[] = [];
  let vary = false;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    const value = headers[i + 1]!;
    const lower = name.toLowerCase();
    // The length is the encoder's; byte ranges of the identity form do not apply to the compressed one (nginx's
    // gzip clears Accept-Ranges too).
    if (lower === 'content-length' || lower === 'accept-ranges') continue;
    if (lower === 'vary') {
      vary = true;
      out.push(name, /(?:^|,)\s*(?:accept-encoding|\*)\s*(?:,|$)/i.test(value) ? value : `${value}, Accept-Encoding`);
    } else if (lower === 'etag' && value.startsWith('"')) {
      out.push(name, `W/${value}`);
    } else {
      out.push(name, value);
    }
  }
  if (!vary) out.push('Vary', 'Accept-Encoding');
  out.push('Content-Encoding', encoding);
  return out;
}
