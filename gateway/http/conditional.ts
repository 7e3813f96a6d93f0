/** Conditional requests (RFC 9110 §13.1): comparing a request's validators with a representation's. */

function etagList(header: string): string[] {
  return header
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
}

function opaque(tag: string): string {
  return tag.startsWith('W/') ? tag.slice(2) : tag;
}

/** If-Match: strong comparison; `*` matches any current representation. */
export function matchesStrong(header: string, etag: string): boolean {
  return etagList(header).some((t) => t === '*' || t === etag);
}

/** If-None-Match: weak comparison (W/ prefixes ignored on both sides). */
export function matchesWeak(header: string, etag: string): boolean {
  const tag = opaque(etag);
  return etagList(header).some((t) => t === '*' || opaque(t) === tag);
}

/**
 * For If-Modified-Since / If-Unmodified-Since: true when the representation (modified at `modifiedMs`) was not
 * modified after the given date, false when it was, null when there is no (valid) date.
 */
export function notAfter(date: string | undefined, modifiedMs: number): boolean | null {
  if (date === undefined) return null;
  const t = Date.parse(date);
  if (Number.isNaN(t)) return null;
  return modifiedMs <= t;
}
