/**
 * The security headers every response gets (headers.*): helmet decides them, once per route and scheme at
 * start, by running its middleware against a recorder; requests then only pick a ready list. Headers PHP sends
 * itself replace these (node's writeHead gives the head's own headers precedence over ones set before).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import helmet, { type HelmetOptions } from 'helmet';
import { compilePattern, type PathMatcher } from '../../config/pattern.js';
import type { HeadersConfig, SecurityHeaders as RouteHeaders } from '../../config/types.js';
import type { HeaderList } from '../http/response-head.js';

interface CompiledRoute {
  readonly matches: PathMatcher;
  readonly plain: HeaderList;
  readonly tls: HeaderList;
}

export class SecurityHeaders {
  readonly #routes: readonly CompiledRoute[];
  readonly #plain: HeaderList;
  readonly #tls: HeaderList;
  /** headers.strip_powered_by: PHP's X-Powered-By is dropped from its answers. */
  readonly stripPoweredBy: boolean;

  constructor(c: HeadersConfig) {
    const server = c.server === '' ? [] : ['Server', c.server];
    this.#plain = [...server, ...headersFor(c, false)];
    this.#tls = [...server, ...headersFor(c, true)];
    this.#routes = c.routes.map((r) => {
      const merged: RouteHeaders = { ...c, ...definedOnly(r), set: { ...c.set, ...r.set } };
      return { matches: compilePattern(r.pattern), plain: [...server, ...headersFor(merged, false)], tls: [...server, ...headersFor(merged, true)] };
    });
    this.stripPoweredBy = c.strip_powered_by;
  }

  /**
   * This path's headers, as a list the hottest answers (static files) put straight into their writeHead: set one by
   * one with setHeader they cost a fifth of a small file's throughput.
   */
  for(path: string, https: boolean): HeaderList {
    for (const r of this.#routes) if (r.matches(path)) return https ? r.tls : r.plain;
    return https ? this.#tls : this.#plain;
  }
}

/** A route's keys present in the file; absent ones (undefined) must not hide the top level's. */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * helmet's defaults minus what breaks ordinary PHP sites (see config/defaults.ts); an exact string in the
 * configuration (a CSP or HSTS value) is sent as written rather than parsed into helmet's options.
 */
function helmetOptions(h: RouteHeaders, tls: boolean): HelmetOptions {
  return {
    contentSecurityPolicy: h.csp === true ? { useDefaults: true } : false,
    strictTransportSecurity: tls && h.hsts === true ? { maxAge: 31_536_000, includeSubDomains: true } : false,
    xFrameOptions: h.frame_options === false ? false : { action: h.frame_options === 'DENY' ? 'deny' : 'sameorigin' },
    referrerPolicy: h.referrer_policy === false ? false : { policy: h.referrer_policy.split(',').map((p) => p.trim()) as [] },
    xContentTypeOptions: h.nosniff,
    crossOriginEmbedderPolicy: false,
    crossOriginOpenerPolicy: false,
    crossOriginResourcePolicy: false,
    xDnsPrefetchControl: false, // "off" slows every page's later requests for no security gain on a PHP site
    // Origin-Agent-Cluster disables document.domain, which older PHP apps' pages still set; the other three
    // address IE 8, Flash and a removed XSS filter. Each costs bytes and time on every answer (HTTP/2 above all).
    originAgentCluster: false,
    xDownloadOptions: false,
    xPermittedCrossDomainPolicies: false,
    xXssProtection: false,
    xPoweredBy: false, // node sends none; PHP's is dropped by the exchange (strip_powered_by)
  };
}

function headersFor(h: RouteHeaders, tls: boolean): string[] {
  const recorded = new HeaderRecorder();
  let failed: unknown = null;
  helmet(helmetOptions(h, tls))({ headers: {} } as IncomingMessage, recorded as unknown as ServerResponse, (err?: unknown) => (failed = err ?? null));
  if (failed !== null) throw failed instanceof Error ? failed : new Error(`helmet failed: ${JSON.stringify(failed)}`);
  if (typeof h.csp === 'string') recorded.setHeader('Content-Security-Policy', h.csp);
  if (tls && typeof h.hsts === 'string') recorded.setHeader('Strict-Transport-Security', h.hsts);
  for (const [name, value] of Object.entries(h.set)) recorded.setHeader(name, value);
  return recorded.list();
}

/** Stands in for a response while helmet's middleware runs: records what it sets, case-insensitively as node does. */
class HeaderRecorder {
  readonly #byLower = new Map<string, [name: string, value: string]>();

  setHeader(name: string, value: string | number | readonly string[]): void {
    this.#byLower.set(name.toLowerCase(), [name, Array.isArray(value) ? value.join(', ') : String(value)]);
  }

  removeHeader(name: string): void {
    this.#byLower.delete(name.toLowerCase());
  }

  list(): string[] {
    return [...this.#byLower.values()].flat();
  }
}
