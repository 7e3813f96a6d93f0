/** The security headers joined to a producer's head, in one pass, once per stable head (see sink.ts `stable`). */
import type { HeaderList } from './response-head.js';
import type { ResponseHead } from './sink.js';

/** A stable head's merge with the security headers, kept with the head for the edge list it was made for. */
const merged = new WeakMap<ResponseHead, { readonly edge: HeaderList; readonly headers: string[] }>();

export function mergedOnce(head: ResponseHead, edge: HeaderList, strip: boolean): string[] {
  const kept = merged.get(head);
  if (kept !== undefined && kept.edge === edge) return kept.headers;
  const headers = withEdge(edge, head.headers, strip);
  merged.set(head, { edge, headers });
  return headers;
}

/** Lower-case names of each security-header list (a few lists per configuration, made at load). */
const lowerNames = new WeakMap<HeaderList, readonly string[]>();

function namesOf(edge: HeaderList): readonly string[] {
  let names = lowerNames.get(edge);
  if (names === undefined) {
    names = edge.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    lowerNames.set(edge, names);
  }
  return names;
}

/**
 * The security headers the producer did not send itself, then the producer's own, without X-Powered-By when
 * `strip` (expose_php's advertisement, dropped as helmet's hidePoweredBy does). One pass, each name lower-cased once.
 */
export function withEdge(edge: HeaderList, headers: readonly string[], strip: boolean): string[] {
  const names = namesOf(edge);
  // Which edge headers the producer sent itself: bits of a number for the usual handful, an array past 30.
  let sent = 0;
  const many = names.length > 30 ? new Array<boolean>(names.length).fill(false) : null;
  let powered = -1;
  for (let i = 0; i < headers.length; i += 2) {
    const lower = headers[i]!.toLowerCase();
    if (strip && lower === 'x-powered-by') powered = i;
    for (let e = 0; e < names.length; e++) {
      if (names[e] !== lower) continue;
      if (many === null) sent |= 1 << e;
      else many[e] = true;
    }
  }
  const out: string[] = [];
  for (let e = 0; e < names.length; e++) {
    if (many === null ? (sent & (1 << e)) === 0 : !many[e]) out.push(edge[2 * e]!, edge[2 * e + 1]!);
  }
  for (let i = 0; i < headers.length; i += 2) {
    if (powered !== -1 && headers[i]!.length === 12 && headers[i]!.toLowerCase() === 'x-powered-by') continue;
    out.push(headers[i]!, headers[i + 1]!);
  }
  return out;
}
