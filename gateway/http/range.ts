/** Byte ranges of a representation (RFC 9110 §14): the Range header and If-Range. */

/** If-Range: the range applies only if the client's copy is current (strong ETag, or the exact date). */
export function ifRangeHolds(ifRange: string | undefined, entry: { readonly etag: string; readonly mtimeS: number }): boolean {
  if (ifRange === undefined) return true;
  const v = ifRange.trim();
  if (v.startsWith('"') || v.startsWith('W/')) return v === entry.etag;
  const t = Date.parse(v);
  return !Number.isNaN(t) && t === entry.mtimeS * 1000;
}

/**
 * One `bytes=` range → inclusive start/end; null to ignore the header (other units, bad syntax, several
 * ranges: answered with the whole file, which RFC 9110 §14.2 allows); 'unsatisfiable' for 416.
 */
export function parseRange(header: string, size: number): { start: number; end: number } | null | 'unsatisfiable' {
  const m = /^\s*bytes\s*=\s*([^,]*)$/i.exec(header);
  if (m === null) return null;
  const spec = /^(\d*)\s*-\s*(\d*)$/.exec(m[1]!.trim());
  if (spec === null) return null;
  const [, first, last] = spec;
  if (first === '' && last === '') return null;
  if (first === '') {
    const n = Number(last);
    if (n === 0) return 'unsatisfiable';
    // §14.1.1: on an empty file a non-zero suffix is satisfiable, but no 206 can describe zero bytes: send it whole.
    if (size === 0) return null;
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (last !== '' && Number(last) < start) return null; // invalid range-spec: ignored
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}
