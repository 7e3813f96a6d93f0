/**
 * A route's `add_header` and `expires` (nginx's headers module), added to whatever answers the route: PHP, an
 * upstream, a file or a cached entry. Without `always`, only on nginx's list of statuses; `expires` replaces the
 * answer's own Expires and Cache-Control, as nginx's does.
 */
import { ForwardingSink, headerIndex, withHeaders, type ResponseHead, type ResponseSink, type Source } from '../http/sink.js';

/** Name/value pairs, rendered for this request by the route table. */
export interface RouteHeaders {
  /** On 200, 201, 204, 206, 301, 302, 303, 304, 307, 308 only. */
  readonly ok: readonly string[];
  readonly always: readonly string[];
  /** From `expires`: replace same-named headers, on the statuses of `ok`. */
  readonly replace: readonly string[];
}

const OK_STATUSES = new Set([200, 201, 204, 206, 301, 302, 303, 304, 307, 308]);

export function routeHeadersFor(status: number, h: RouteHeaders, headers: readonly string[]): string[] {
  const ok = OK_STATUSES.has(status);
  const out = [...headers];
  if (ok) {
    for (let i = 0; i < h.replace.length; i += 2) {
      for (let at = headerIndex(out, h.replace[i]!); at !== -1; at = headerIndex(out, h.replace[i]!)) out.splice(at, 2);
    }
    out.push(...h.replace, ...h.ok);
  }
  out.push(...h.always);
  return out;
}

export class RouteHeadersFilter extends ForwardingSink {
  readonly #h: RouteHeaders;

  constructor(next: ResponseSink, h: RouteHeaders) {
    super(next);
    this.#h = h;
  }

  override start(head: ResponseHead, source: Source): boolean {
    return this.next.start(withHeaders(head, routeHeadersFor(head.status, this.#h, head.headers)), source);
  }
}
