/**
 * A request through `routes:` (docs/ROUTES.md), in nginx's phases: the server's rewrite script, the route search
 * (locations.ts), the route's rewrite script (`last` searches again), access (deny, allow/deny, auth_basic: the
 * pipeline's guards), try_files, then the content: a return, an upstream, PHP, or a file (a directory's index is an
 * internal redirect, as nginx's index module). Internal redirects are bounded as nginx's (10, then 500).
 */
import type fs from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { GatewayConfig, RouteConfig, TemplatePart } from '../../config/types.js';
import type { ClientInfo } from '../http/client-address.js';
import { DocrootGuard, type FileInfoCache } from '../http/file-cache.js';
import { encodePath, type ParsedTarget } from '../http/uri.js';
import { compileLevel, fileFor, findLocation, type Found, type Level, type Location } from './locations.js';
import { compileSteps, runSteps, type CompiledStep, type RewriteOutcome } from './rewrite.js';
import { PHP_SOURCE, RouteKind, type ErrorRoute, type PhpRoute, type Route, type Router } from './router.js';
import { isTrue, RequestVars, type RouteState } from './vars.js';

/** A route's answer that is not a file or a script. */
export type RoutedAnswer =
  | { readonly kind: 'text'; readonly status: number; readonly body: string }
  | { readonly kind: 'redirect'; readonly status: number; readonly location: string }
  | { readonly kind: 'proxy'; readonly at: Location }
  | { readonly kind: 'auth'; readonly challenge: string }
  /** auth_basic is verifying a password off the event loop: resolve again once it is known. */
  | { readonly kind: 'wait'; readonly wait: Promise<unknown> };

/** What the route that answered adds, rendered for this request. */
export interface RouteExtras {
  /** add_header and expires, as name/value pairs (see filters/route-headers.ts), or null. */
  readonly headers: { readonly ok: readonly string[]; readonly always: readonly string[]; readonly replace: readonly string[] } | null;
  /** The route's cache: whether this request bypasses it, and whether its answer may be stored. */
  readonly cacheBypass: boolean;
  readonly cacheNoStore: boolean;
}

/** `at`: the route that answered (its headers, expires and cache apply), when one did. */
export type Decision = (Route | RoutedAnswer) & { readonly at?: Location | null; readonly extras?: RouteExtras | null };

/** null: allowed; a status (a 401 with its WWW-Authenticate challenge); or a verification to wait for. */
export type AccessVerdict = null | { readonly status: number; readonly challenge?: string } | { readonly wait: Promise<unknown> };

/** What may refuse a request in a route's access phase (nginx's deny/allow and auth_basic). */
export interface AccessGuards {
  check(location: Location, req: IncomingMessage, client: ClientInfo): AccessVerdict;
}

export interface RouteTableOptions {
  readonly config: GatewayConfig;
  readonly files: FileInfoCache;
  /** The symlink rule for a route's root (one guard per distinct root). */
  readonly guardFor: (root: string) => DocrootGuard;
  /** The pool of a script path when its route names none (pool patterns, then the default pool). */
  readonly poolFor: (uriPath: string) => string;
  /** A path refused before any route is chosen (dotfiles, backslashes, static.deny), or null. */
  readonly refused: (uriPath: string) => ErrorRoute | null;
  readonly isPhpSource: (file: string) => boolean;
  readonly deniedStatus: number;
}

const MAX_INTERNAL_REDIRECTS = 10;
const CYCLE: ErrorRoute = { kind: RouteKind.Error, status: 500, why: 'rewrite or internal redirection cycle' };

export class RouteTable {
  readonly #o: RouteTableOptions;
  readonly #top: Level;
  readonly #server: readonly CompiledStep[];
  /** No route matched: nginx's server-level configuration (the server's root and index, static files). */
  readonly #fallback: Location;
  readonly all: readonly Location[];

  constructor(o: RouteTableOptions) {
    this.#o = o;
    const c = o.config;
    const all: Location[] = [];
    const inherit = { root: c.php.docroot, alias: null, index: c.php.index, pool: null, access: null, authBasic: null, headers: null, expires: null };
    this.#top = compileLevel(c.routes, inherit, all);
    this.#server = compileSteps(c.rewrite);
    this.#fallback = compileLevel([{ ...EMPTY_ROUTE }], inherit, []).prefixes[0]!;
    this.all = all;
  }

  /**
   * The answer for `uri`/`args` (a client's request, or an internal redirect when `internal`). Allocates the
   * request's variables and state only; the routes themselves were compiled at load.
   */
  resolve(req: IncomingMessage, target: ParsedTarget, client: ClientInfo, guards: AccessGuards, internal = false): Decision {
    const refused = this.#o.refused(target.path);
    if (refused !== null) return refused;
    /** The route being answered ($request_filename maps the URI under it): one closure per request, not per route. */
    let current = this.#fallback;
    const state: RouteState = {
      uri: target.path,
      args: target.query,
      captures: null,
      root: this.#o.config.php.docroot,
      fileOf: (u) => fileFor(current, u),
      split: null,
    };
    /** Set by try_files' `@name`: the route to answer next, without a search. */
    let named: Location | null = null;
    const vars = new RequestVars(req, target, client, this.#o.config.server.server_name, state);
    const found: Found = { location: null, captures: null };
    let isInternal = internal;
    let serverPhase = true;
    for (let redirects = 0; redirects <= MAX_INTERNAL_REDIRECTS; redirects++) {
      if (serverPhase) {
        current = this.#fallback;
        state.root = this.#fallback.root;
        const out = runSteps(this.#server, vars, this.#stat);
        if (out.kind === 'redirect' || out.kind === 'return') return this.#answer(out, null);
        serverPhase = false;
      }
      // A rewritten or redirected URI is held to the same rules as the client's (a rewrite to /.env serves nothing).
      if (redirects > 0) {
        const again = this.#o.refused(state.uri);
        if (again !== null) return again;
      }
      found.location = null;
      found.captures = null;
      // try_files' `@name`: that route, with no search (nginx's named location); config/ checked it exists.
      if (named !== null) found.location = named;
      else findLocation(this.#top, state.uri, found);
      named = null;
      const loc = found.location ?? this.#fallback;
      if (found.captures !== null) state.captures = found.captures;
      state.root = loc.root;
      current = loc;
      state.split = loc.php?.split ?? null;
      if (loc.internal && !isInternal) return { kind: RouteKind.Error, status: 404, why: 'internal route' };
      const before = state.uri;
      const out = runSteps(loc.rewrite, vars, this.#stat);
      if (out.kind === 'redirect' || out.kind === 'return') return this.#answer(out, loc);
      // `last`, or a URI changed without a flag: the route is chosen again (nginx's post-rewrite phase).
      if (out.kind === 'last' || (out.kind === 'next' && state.uri !== before)) {
        isInternal = true;
        continue;
      }
      if (loc.deny !== null) return { kind: RouteKind.Error, status: loc.deny, why: 'denied by route', at: loc };
      const verdict = guards.check(loc, req, client);
      if (verdict !== null) {
        if ('wait' in verdict) return { kind: 'wait', wait: verdict.wait };
        if (verdict.challenge !== undefined) return { kind: 'auth', challenge: verdict.challenge, at: loc };
        return { kind: RouteKind.Error, status: verdict.status, why: 'access' };
      }
      const next = this.#content(loc, state, vars, target);
      if (next !== null && 'level' in next) {
        named = next;
        isInternal = true;
        continue;
      }
      if (next !== null && (loc.headers !== null || loc.expires !== null || loc.cache !== null)) return { ...next, extras: extrasOf(loc, vars) };
      if (next === null) {
        // An internal redirect (try_files' last URI, a directory's index): the server's rewrites run again.
        isInternal = true;
        serverPhase = true;
        continue;
      }
      return next;
    }
    return CYCLE;
  }

  #stat = (file: string): fs.Stats | null => this.#o.files.stat(file);

  #answer(out: RewriteOutcome & { kind: 'redirect' | 'return' }, loc: Location | null): Decision {
    if (out.kind === 'redirect') return { kind: 'redirect', status: out.status, location: headerSafe(out.location), at: loc };
    if (out.text === null) return { kind: RouteKind.Error, status: out.status, why: 'return', at: loc };
    return { kind: 'text', status: out.status, body: out.text, at: loc };
  }

  /** try_files, then the route's content; null: an internal redirect was made (state holds the new URI); a route: `@name`. */
  #content(loc: Location, state: RouteState, vars: RequestVars, target: ParsedTarget): Decision | Location | null {
    if (loc.tryFiles !== null) {
      const tried = this.#tryFiles(loc, state, vars);
      if (tried !== 'found') return tried;
    }
    if (loc.proxy !== null) return { kind: 'proxy', at: loc };
    if (loc.php !== null) return this.#php(loc, state, vars, target);
    return this.#static(loc, state, vars);
  }

  /** nginx's try_files: 'found' (the URI now names what was found), a decision, null (internal redirect), or a named route. */
  #tryFiles(loc: Location, state: RouteState, vars: RequestVars): 'found' | Decision | Location | null {
    const entries = loc.tryFiles!;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      if (i === entries.length - 1) {
        if (entry.status !== null) return { kind: RouteKind.Error, status: entry.status, why: 'try_files', at: loc };
        if (entry.named !== null) return this.#top.named.get(entry.named)!;
        const uri = vars.render(entry.template);
        const q = uri.indexOf('?');
        state.uri = q === -1 ? uri : uri.slice(0, q);
        if (q !== -1) state.args = uri.slice(q + 1);
        return null;
      }
      const dir = entry.dir;
      const candidate = vars.render(entry.template);
      const st = this.#o.files.stat(fileFor(loc, candidate));
      if (st === null || (dir ? !st.isDirectory() : !st.isFile())) continue;
      // A directory entry ($uri/) is tested without its slash, and the URI becomes that: a directory asked for
      // without its slash then gets nginx's 301 to it.
      state.uri = candidate;
      return 'found';
    }
    return { kind: RouteKind.Error, status: 404, why: 'try_files', at: loc };
  }

  #php(loc: Location, state: RouteState, vars: RequestVars, target: ParsedTarget): Decision {
    const php = loc.php!;
    // nginx: SCRIPT_FILENAME $document_root$fastcgi_script_name, SCRIPT_NAME $fastcgi_script_name, both from the URI
    // as it is now (after try_files); a fixed script replaces both.
    const m = php.split === null ? null : php.split.exec(state.uri);
    let scriptName = php.script ?? m?.[1] ?? state.uri;
    const pathInfo =
      php.path_info === false ? null : php.path_info !== null ? vars.render(php.path_info) : php.split === null ? null : (m?.[2] ?? '');
    // fastcgi_index: a directory's script.
    if (scriptName.endsWith('/')) scriptName += 'index.php';
    const file = fileFor(loc, scriptName);
    const st = this.#o.files.stat(file);
    if (st === null || !st.isFile()) return { kind: RouteKind.Error, status: 404, why: 'no such script', at: loc };
    // php-fpm's security.limit_extensions: only .php files run, whatever a route sends to PHP.
    if (!file.endsWith('.php')) return { kind: RouteKind.Error, status: 403, why: 'not a .php script', at: loc };
    if (!this.#o.guardFor(loc.root).allows(file)) return { kind: RouteKind.Error, status: this.#o.deniedStatus, why: 'denied', at: loc };
    const route: PhpRoute & { documentUri: string; at: Location } = {
      kind: RouteKind.Php,
      pool: php.pool ?? this.#o.poolFor(target.path),
      scriptName,
      pathInfo,
      scriptFilename: file,
      queryString: state.args,
      documentUri: state.uri,
      at: loc,
    };
    return route;
  }

  /** nginx's static and index modules. */
  #static(loc: Location, state: RouteState, vars: RequestVars): Decision | null {
    const uri = state.uri;
    const file = fileFor(loc, uri);
    const st = this.#o.files.stat(file);
    if (uri.endsWith('/')) {
      for (const name of loc.index) {
        const s = this.#o.files.stat(fileFor(loc, uri + name));
        if (s === null || !s.isFile()) continue;
        state.uri = uri + name;
        return null;
      }
      const dir = st !== null && st.isDirectory();
      if (dir && loc.indexFallback !== null) {
        // nginx's index with an absolute last entry: an internal redirect to it (its `?` starts the arguments).
        const to = vars.render(loc.indexFallback);
        const q = to.indexOf('?');
        state.uri = q === -1 ? to : to.slice(0, q);
        if (q !== -1) state.args = to.slice(q + 1);
        return null;
      }
      return { kind: RouteKind.Error, status: dir ? 403 : 404, why: dir ? 'directory index forbidden' : 'not found', at: loc };
    }
    if (st === null) return { kind: RouteKind.Error, status: 404, why: 'not found', at: loc };
    if (st.isDirectory()) {
      const q = state.args === '' ? '' : '?' + state.args;
      return { kind: 'redirect', status: 301, location: encodePath(uri) + '/' + q };
    }
    if (!st.isFile()) return { kind: RouteKind.Error, status: 404, why: 'not found', at: loc };
    if (this.#o.isPhpSource(file) || !this.#o.guardFor(loc.root).allows(file)) {
      return { kind: RouteKind.Error, status: this.#o.deniedStatus, why: 'denied', at: loc };
    }
    return { kind: RouteKind.Static, file, stat: st, at: loc };
  }
}

/**
 * A value built from request variables, fit for a header: $uri is decoded, so a %0A in the request would otherwise
 * split the head (control characters are percent-encoded; nginx would send them raw).
 */
function headerSafe(value: string): string {
  return value.replace(CONTROL, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0').toUpperCase()}`);
}

// eslint-disable-next-line no-control-regex -- control characters are exactly what headerSafe escapes
const CONTROL = /[\u0000-\u001f\u007f]/g;

function extrasOf(loc: Location, vars: RequestVars): RouteExtras {
  const ok: string[] = [];
  const always: string[] = [];
  for (const h of loc.headers ?? []) (h.always ? always : ok).push(h.name, headerSafe(vars.render(h.value)));
  const replace = expiresHeaders(loc.expires);
  const c = loc.cache;
  const anyTrue = (list: readonly (readonly TemplatePart[])[]): boolean => list.some((t) => isTrue(vars.render(t)));
  return {
    headers: ok.length + always.length + replace.length === 0 ? null : { ok, always, replace },
    cacheBypass: c !== null && anyTrue(c.bypass),
    cacheNoStore: c !== null && anyTrue(c.no_store),
  };
}

/** nginx's `expires`: Expires and Cache-Control. */
function expiresHeaders(e: Location['expires']): string[] {
  if (e === null || e === 'off') return [];
  if (e === 'max') return ['Expires', 'Thu, 31 Dec 2037 23:55:55 GMT', 'Cache-Control', 'max-age=315360000'];
  if (e === 'epoch') return ['Expires', 'Thu, 01 Jan 1970 00:00:01 GMT', 'Cache-Control', 'no-cache'];
  const when = new Date(Date.now() + e * 1000).toUTCString();
  return ['Expires', when, 'Cache-Control', e <= 0 ? 'no-cache' : `max-age=${e}`];
}

const EMPTY_ROUTE = {
  text: '(server)',
  match: { kind: 'prefix', path: '/', priority: false },
  routes: [],
  root: null,
  alias: null,
  index: null,
  try_files: null,
  php: null,
  proxy: null,
  return: null,
  rewrite: [],
  deny: null,
  access: null,
  auth_basic: null,
  add_header: null,
  expires: null,
  cache: null,
  internal: false,
} as const;

/** A decision as the router's routes, for internal requests (error pages, X-Accel-Redirect): files and scripts only. */
export function asRoute(d: Decision): Route {
  switch (d.kind) {
    case RouteKind.Static:
    case RouteKind.Php:
    case RouteKind.Error:
    case RouteKind.Redirect:
      return d;
    case 'redirect':
      return { kind: RouteKind.Redirect, status: d.status, location: d.location };
    case 'text':
      return { kind: RouteKind.Error, status: d.status, why: 'return' };
    case 'auth':
      return { kind: RouteKind.Error, status: 401, why: 'auth_basic' };
    case 'proxy':
      return { kind: RouteKind.Error, status: 502, why: 'an upstream is not reached by internal redirects' };
    case 'wait':
      return { kind: RouteKind.Error, status: 401, why: 'auth_basic' };
  }
}

/** The route table of a configuration, or null when it has no routes: (the router's global keys decide). */
export function routeTableFor(c: GatewayConfig, router: Router, files: FileInfoCache): RouteTable | null {
  if (c.routes.length === 0 && c.rewrite.length === 0) return null;
  const guards = new Map<string, DocrootGuard>();
  return new RouteTable({
    config: c,
    files,
    guardFor: (root) => {
      let g = guards.get(root);
      if (g === undefined) guards.set(root, (g = new DocrootGuard(files, root, c.static.follow_symlinks)));
      return g;
    },
    poolFor: (p) => router.poolFor(p),
    refused: (p) => router.refused(p),
    isPhpSource: (f) => PHP_SOURCE.test(f),
    deniedStatus: router.deniedStatus,
  });
}

/** Whether some route caches (the response cache must exist then, even without cache.rules). */
export function hasRouteCache(routes: readonly RouteConfig[]): boolean {
  return routes.some((r) => r.cache !== null || hasRouteCache(r.routes));
}
