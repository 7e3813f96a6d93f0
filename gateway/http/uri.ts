/**
 * Request-target parsing and path normalisation, as nginx does it (ngx_http_parse_complex_uri): percent-decode,
 * merge slashes, resolve `.` and `..`. A path that climbs above the root, a malformed percent-escape, a NUL byte
 * or bytes that are not UTF-8 make the request invalid (400): the filesystem is never asked about them.
 */

export interface ParsedTarget {
  /** Decoded, normalised path: always starts with '/', no '//' or dot segments. */
  readonly path: string;
  /** Raw query (after '?', without it), still encoded; '' when none. */
  readonly query: string;
  /** nginx's $request_uri: origin-form path + query as sent (absolute-form reduced to it). */
  readonly requestUri: string;
  /** Authority of an absolute-form target (`GET http://host/ HTTP/1.1`), else null. */
  readonly authority: string | null;
}

/** host[:port]: a DNS name or IPv4 address, or a bracketed IPv6 literal. */
const VALID_AUTHORITY = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

const utf8 = new TextDecoder('utf-8', { fatal: true });
// eslint-disable-next-line no-control-regex -- the ASCII range's lower bound, not a search for control characters
const NON_ASCII = /[^\x00-\x7f]/;
/** node hands the target over one latin1 character per byte; anything above U+00FF did not come off the wire. */
// eslint-disable-next-line no-control-regex -- the latin1 range's lower bound, not a search for control characters
const NOT_A_BYTE = /[^\x00-\xff]/;

/** Returns null when the target is invalid: the caller answers 400. */
export function parseTarget(target: string): ParsedTarget | null {
  let authority: string | null = null;
  let origin = target;
  if (target.charCodeAt(0) !== 47 /* '/' */) {
    const m = /^https?:\/\/([^/?#]*)(.*)$/i.exec(target);
    if (m === null) return null; // `*` and other forms have no meaning for a file-backed site
    // nginx answers 400 to an absolute-form target without a valid host (empty, userinfo, junk); so do we,
    // rather than let it replace the Host header as HTTP_HOST.
    if (!VALID_AUTHORITY.test(m[1]!)) return null;
    authority = m[1]!;
    origin = m[2] === '' ? '/' : m[2]!;
    if (origin.charCodeAt(0) !== 47) origin = '/' + origin;
  }
  const hash = origin.indexOf('#');
  if (hash !== -1) origin = origin.slice(0, hash);
  const q = origin.indexOf('?');
  const rawPath = q === -1 ? origin : origin.slice(0, q);
  const query = q === -1 ? '' : origin.slice(q + 1);
  const decoded = decodePath(rawPath);
  if (decoded === null) return null;
  const path = normalise(decoded);
  if (path === null) return null;
  return { path, query, requestUri: origin, authority };
}

function decodePath(raw: string): string | null {
  // Fast path: nothing to decode. Raw non-ASCII still needs the UTF-8 re-read below.
  if (raw.indexOf('%') === -1 && !NON_ASCII.test(raw)) return raw.indexOf('\0') === -1 ? raw : null;
  // Buffer.from(…, 'latin1') would keep only the low byte: `Ł` (U+0141) would read as `A`, `Į` (U+012E) as `.`.
  // Such a target (a config string, never a request from node's parsers) is refused rather than misread.
  if (NOT_A_BYTE.test(raw)) return null;
  const bytes = Buffer.from(raw, 'latin1');
  const out = Buffer.allocUnsafe(bytes.length);
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (c === 37 /* % */) {
      // nginx (ngx_http_parse_complex_uri) answers 400 to a '%' not followed by two hex digits: `/%zz`, `/a%2`.
      if (!isHex(bytes[i + 1]) || !isHex(bytes[i + 2])) return null;
      out[n++] = parseInt(String.fromCharCode(bytes[i + 1]!, bytes[i + 2]!), 16);
      i += 2;
    } else {
      out[n++] = c;
    }
  }
  let s: string;
  try {
    // Raw non-ASCII in the target arrives from node as latin1 code units; re-read everything as UTF-8.
    s = utf8.decode(out.subarray(0, n));
  } catch {
    return null; // not UTF-8: nginx would pass the bytes on, but no file of ours can be named by them
  }
  return s.indexOf('\0') === -1 ? s : null;
}

function isHex(c: number | undefined): boolean {
  return c !== undefined && ((c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102));
}

/** Merges slashes and resolves dot segments; null when `..` would climb above the root (nginx: 400). */
function normalise(p: string): string | null {
  if (p.indexOf('//') === -1 && p.indexOf('/.') === -1) return p;
  const out: string[] = [];
  const segments = p.split('/');
  for (let i = 1; i < segments.length; i++) {
    const seg = segments[i]!;
    if (seg === '' || seg === '.') {
      if (i === segments.length - 1) out.push(''); // keep a trailing slash
      continue;
    }
    if (seg === '..') {
      if (out.length === 0) return null;
      out.pop();
      if (i === segments.length - 1) out.push('');
      continue;
    }
    out.push(seg);
  }
  return '/' + out.join('/');
}

/**
 * A decoded path as a URI path again, for Location: non-ASCII as UTF-8 escapes, and the characters that would end
 * or break a path (`?`, `#`, `%`, spaces) escaped, as nginx (≥ 1.21.1) escapes its redirects.
 */
export function encodePath(p: string): string {
  return encodeURI(p).replace(/[?#]/g, (c) => (c === '?' ? '%3F' : '%23'));
}
