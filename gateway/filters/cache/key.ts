/**
 * Cache rules compiled at load: which paths a rule covers and the key an answer is stored under (nginx's
 * fastcgi_cache_key variables), plus the request values a Vary splits entries by.
 */
import type { IncomingMessage } from 'node:http';
import { parseCacheKey, type CacheKeyPart } from '../../../config/cache-key.js';
import { compilePattern, type PathMatcher } from '../../../config/pattern.js';
import type { CacheRule } from '../../../config/types.js';
import { cgiHost, cookieValue, headerValue, requestHost, requestPort } from '../../http/request.js';
import type { ParsedTarget } from '../../http/uri.js';

export type KeyFn = (req: IncomingMessage, target: ParsedTarget, https: boolean) => string;

export interface CompiledRule {
  /** Its metrics label: the pattern, or `route <location>` for a route's cache (both from the config, never a request). */
  readonly label: string;
  readonly match: PathMatcher;
  readonly ttlMs: number;
  readonly staleMs: number;
  readonly statuses: ReadonlySet<number>;
  readonly key: KeyFn;
}

export function compileRule(r: CacheRule, label: string = r.pattern): CompiledRule {
  return {
    label,
    match: compilePattern(r.pattern),
    ttlMs: r.ttl_s * 1000,
    staleMs: r.stale_s * 1000,
    statuses: new Set(r.statuses),
    key: compileKey(parseCacheKey(r.key)!),
  };
}

function compileKey(parts: readonly CacheKeyPart[]): KeyFn {
  const hasHost = parts.some((p) => p.kind === 'host');
  return (req, target, https) => {
    let key = '';
    for (const p of parts) key += keyPart(p, req, target, https);
    // What PHP sees as HTTP_HOST beyond $host (a port), or at all for a key without $host, splits the entry: PHP may
    // print it into the page, and a visitor who did not send it must not get that page.
    if (hasHost) {
      const port = requestPort(req, target);
      return port === '' ? key : `${key}\n:${port}`;
    }
    const seen = cgiHost(req, target, '');
    return seen === '' ? key : key + '\n' + seen;
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
      return req.method === 'HEAD' ? 'GET' : (req.method ?? '');
    case 'host':
      return requestHost(req, target);
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
export function varySuffix(names: readonly string[], req: IncomingMessage): string {
  let s = '';
  for (const n of names) s += '\n' + headerValue(req, n).trim();
  return s;
}
