/**
 * The server's locations → gateway.yaml `routes:` (docs/ROUTES.md): every location a route, in configuration
 * order, nested as in nginx, its directives as the route's actions. Routes are chosen as nginx chooses locations,
 * so a translated route answers exactly what its location answers — or, where that cannot be expressed, fails
 * closed:
 *
 * - a regex JavaScript cannot take exactly (pcre.ts): a location that restricts (deny, allow lists, auth_basic,
 *   internal, return 4xx, limit_except — its own, an enclosing location's or a nested one's) becomes a route
 *   refusing a widened regex (regex.ts: every path it matched, perhaps more); a location that only serves is
 *   dropped, and its requests go to the routes nginx would have chosen without it;
 * - content the route cannot produce as nginx does (a root or alias built from variables or captures, a
 *   SCRIPT_FILENAME outside the root, a proxy_pass to something other than http(s)://host:port): the route
 *   answers 404;
 * - what nginx inherits into nested locations and routes do not (deny, internal, a PHP route's cache) is written
 *   on each nested route; the server's allow/deny and auth_basic on each top-level route.
 *
 * The server's own settings stay global keys (translate.ts, directives.ts); a server without `location /` gets a
 * route `/` for the requests no location takes (nginx answers them with the server's settings).
 */
import path from 'node:path';
import { withConstants } from './variables.js';
import { fileName, headerName, headerValue, INVALID } from '../config/checks.js';
import type { Handler, ImportContext, Scope } from './context.js';
import { cacheStatusHeader, routeCache, usesCacheStatus } from './cache.js';
import type { AddHeaderDraft, RewriteStep, RouteDraft } from './emit.js';
import { headerInheritance } from './headers.js';
import { isRegex, LocationKind, readLocation, type Location } from './location.js';
import { GATEWAY_OWN_HEADERS } from './notes.js';
import { NGINX_PREFIX, type Directive } from './parse.js';
import { accessDirectives, describeAccess, limitExceptSteps, readAccess, readAuth, type Access, type Auth } from './route-access.js';
import { DEBIAN_SNIPPET, phpAction, proxyAction } from './route-php.js';
import { indexFallback } from './directives.js';
import { DEFAULTS } from '../config/defaults.js';
import { toJsRegex, widenRegex } from './regex.js';
import { REWRITE_DIRECTIVES, rewriteSteps } from './rewrite.js';
import { routeTryFiles } from './try-files.js';

/** What a block hands down to its nested locations. */
interface Parent {
  readonly scope: Scope;
  /** null: the server (its routes are the top-level ones). */
  readonly loc: Location | null;
  readonly access: Access;
  /** The access in effect is already on the parent route (the runtime hands it down). */
  readonly accessOnRoute: boolean;
  readonly auth: Auth;
  readonly authOnRoute: boolean;
  readonly internal: boolean;
  /** The document root in effect (absolute); null: php.docroot. */
  readonly root: string | null;
  /** An alias nested routes would inherit, which routes cannot hand down. */
  readonly alias: string | null;
  /** An enclosing location restricts: a nested location that cannot be expressed must refuse. */
  readonly restricts: boolean;
}

/** The routes of the imported server. */
export function buildRoutes(cx: ImportContext, serverD: Directive, serverScope: Scope, handle: Handler): RouteDraft[] {
  const chain = serverScope.chain;
  const accessList = chain.map(accessDirectives).find((l) => l.length > 0) ?? [];
  const access = readAccess(cx, accessList, true);
  if (accessList.length > 0) cx.report.note(accessList[0]!, `${describeAccess(access)} — on every route (nginx's locations inherit it)`);
  for (const d of accessList.slice(1)) cx.report.done(d);
  const { auth, ds: authDs } = readAuth(cx, chain);
  for (const d of authDs) if (!cx.report.isHandled(d)) cx.report.note(d, `${describeAuth(auth)} — on every route (nginx's locations inherit it)`);
  const server: Parent = {
    scope: serverScope,
    loc: null,
    access,
    accessOnRoute: false,
    auth,
    authOnRoute: false,
    internal: false,
    root: null,
    alias: null,
    restricts: false,
  };

  const routes: RouteDraft[] = [];
  const children = serverScope.chain[0] ?? [];
  for (const d of children) {
    if (d.name !== 'location' || d.children === null) continue;
    const r = buildRoute(cx, d, server, handle);
    if (r !== null) routes.push(r);
  }
  const catchAll = children.some((d) => {
    const loc = d.name === 'location' ? readLocation(d) : null;
    return loc !== null && !('error' in loc) && (loc.kind === LocationKind.Prefix || loc.kind === LocationKind.PrefixNoRegex) && loc.match === '/';
  });
  const serverTry = children.filter((c) => c.name === 'try_files').at(-1);
  if (catchAll) {
    if (serverTry !== undefined)
      cx.report.note(
        serverTry,
        'never used: nginx applies a server-level try_files only when no location matches, and location / matches every path',
      );
  } else {
    const route: RouteDraft = { match: '/' };
    inherit(route, server, { kind: 'none' }, undefined);
    const steps = serverTry === undefined ? [] : tryFiles(cx, serverTry, route);
    if (steps.length > 0) route.rewrite = steps;
    routes.push(route);
    cx.report.note(serverD, "no location /: nginx answers paths no location takes with the server's own settings, as route / does");
  }
  // A server-level index ending in an absolute URI (Nextcloud's /index.php$request_uri): php.index takes file names
  // only, so every top-level route without its own index carries the whole list.
  const serverIndex = chain.map((list) => list.filter((c) => c.name === 'index').at(-1)).find((d) => d !== undefined);
  const fallback = serverIndex === undefined ? null : indexFallback(cx, serverIndex);
  if (fallback !== null) for (const r of routes) r.index ??= [...(cx.draft.php.index ?? DEFAULTS.php.index), fallback];
  return routes;
}

function buildRoute(cx: ImportContext, d: Directive, parent: Parent, handle: Handler): RouteDraft | null {
  const loc = readLocation(d);
  if ('error' in loc) {
    cx.report.warn(d, `not translated: ${loc.error}`);
    cx.report.doneTree(d);
    return null;
  }
  // A named location inside another is refused by nginx; at the server level it becomes a named route (`@name`).
  if (loc.kind === LocationKind.Named && parent.loc !== null) return null;
  const children = d.children ?? [];
  const restricts = parent.restricts || ownRestricts(children) || subtreeRestricts(children);
  const match = matchOf(cx, d, loc, restricts);
  if (match === null) return null;
  if ('deny' in match) return match;

  let scope: Scope = { level: 'location', loc, d, php: null, chain: [children, ...parent.scope.chain] };
  const route: RouteDraft = { match: match.match };
  // Why the route cannot serve what nginx serves (the first reason), or null.
  const content: { failed: string | null } = { failed: null };
  const fail = (why: string): void => {
    content.failed ??= why;
  };

  // Where files come from: the php route's fixed script is found under it.
  let root = parent.root;
  let alias = parent.alias;
  const rootD = children.filter((c) => c.name === 'root').at(-1);
  const aliasD = children.filter((c) => c.name === 'alias').at(-1);
  if (rootD !== undefined) {
    const r = rootOf(cx, rootD);
    if ('failed' in r) fail(r.failed);
    else {
      root = r.root;
      alias = null;
      // Under an alias parent the root is written even when it is php.docroot: routes do not hand an alias down.
      if (r.root !== (parent.root ?? cx.draft.php.docroot) || parent.alias !== null) route.root = r.root;
    }
  }
  if (aliasD !== undefined) {
    const a = aliasOf(cx, aliasD, loc);
    if ('failed' in a) fail(a.failed);
    else if ('root' in a) {
      root = cx.relocate(a.root);
      alias = null;
      if (root !== (parent.root ?? cx.draft.php.docroot) || parent.alias !== null) route.root = root;
    } else {
      route.alias = a.alias;
      alias = a.alias;
    }
  }
  if (rootD === undefined && aliasD === undefined && parent.alias !== null) {
    fail(`the alias ${parent.alias} of the enclosing location, which a nested route cannot take`);
  }

  const pass = children.find((c) => c.name === 'fastcgi_pass');
  const proxyPass = children.find((c) => c.name === 'proxy_pass');
  let phpTry: Directive | null = null;
  const early: RewriteStep[] = [];
  if (pass !== undefined) {
    const a = phpAction(cx, d, loc, pass, scope, root);
    route.php = a.php;
    scope = { ...scope, php: a.target };
    phpTry = a.tryFiles;
    if (a.snippet) {
      // The snippet's `set $path_info $fastcgi_path_info` runs in the rewrite phase, its try_files after it.
      early.push({ set: '$path_info $fastcgi_path_info' });
      if (a.tryFiles === null) route.try_files = ['$fastcgi_script_name', '=404'];
    }
    if (a.failed !== null) fail(a.failed);
  } else if (proxyPass !== undefined) {
    const p = proxyAction(cx, d, loc, proxyPass, scope);
    if ('failed' in p) fail(p.failed);
    else route.proxy = p.proxy;
  }

  const rewrites: Directive[] = [];
  const headers: Directive[] = [];
  const late: RewriteStep[] = [];
  const nested: Directive[] = [];
  let internal = parent.internal;
  for (const c of children) {
    if (cx.report.isHandled(c) || c === rootD || c === aliasD || c === pass || c === proxyPass) continue;
    if (REWRITE_DIRECTIVES.has(c.name)) rewrites.push(c);
    else if (c.name === 'location') nested.push(c);
    else if (c.name === 'add_header') headers.push(c);
    else if (c.name === 'root' || c.name === 'alias') cx.report.note(c, 'overridden by the later one in this location');
    else if (c.name === 'index') index(cx, c, route);
    else if (c.name === 'try_files') {
      if (pass === undefined || c === phpTry) late.push(...tryFiles(cx, c, route));
    } else if (c.name === 'expires') expires(cx, c, route);
    else if (c.name === 'internal') {
      internal = true;
      cx.report.note(c, 'internal: only internal redirects reach it (try_files, error pages, X-Accel-Redirect, rewrite … last)');
    } else if (c.name === 'limit_except') late.push(...limitExceptSteps(cx, c));
    else if (c.name === 'satisfy') {
      if (c.args[0] === 'any') cx.report.warn(c, 'failing closed: phpgate requires the address rules and auth_basic both (satisfy all)');
      else cx.report.note(c, 'phpgate requires the address rules and auth_basic both, as satisfy all');
    } else if (c.name === 'include' && (c.args[0] ?? '').endsWith(DEBIAN_SNIPPET) && pass === undefined) {
      cx.report.warn(c, 'not translated: a FastCGI snippet outside a PHP location');
    } else if (
      c.name === 'allow' ||
      c.name === 'deny' ||
      c.name === 'auth_basic' ||
      c.name === 'auth_basic_user_file' ||
      c.name === 'fastcgi_cache'
    ) {
      continue; // below, with the location's others
    } else handle(cx, c, scope);
  }

  const steps = [...early, ...rewriteSteps(cx, rewrites), ...late];
  const only = steps.length === 1 ? steps[0] : undefined;
  if (only !== undefined && 'return' in only) route.return = /^\d+$/.test(only.return) ? Number(only.return) : only.return;
  else if (steps.length > 0) route.rewrite = steps;

  // An unconditional return answers in nginx's rewrite phase, before the access phase: this route's address
  // rules and auth_basic are never reached (its nested routes still get them).
  const returnsFirst = route.return !== undefined;
  const ownAccess = accessDirectives(children);
  const access = readAccess(cx, ownAccess, true);
  if (ownAccess.length > 0) {
    cx.report.note(ownAccess[0]!, `${describeAccess(access)}${returnsFirst ? ' — never reached here, return answers first' : ''}`);
    for (const a of ownAccess.slice(1)) cx.report.done(a);
  }
  let next = inherit(route, { ...parent, internal }, access, ownAuth(cx, scope, parent));
  if (returnsFirst) {
    delete route.deny;
    delete route.access;
    delete route.auth_basic;
    next = { ...next, accessOnRoute: false, authOnRoute: false };
  }

  if (headers.length > 0 || children.some((c) => c.name === 'add_header')) addHeaders(cx, headers, route, parent.loc !== null);
  headerInheritance(cx, scope);
  if (route.php !== undefined) {
    const cacheD = cx.inherited('fastcgi_cache', scope).at(-1);
    const cache = cacheD === undefined ? null : routeCache(cx, cacheD, scope);
    if (cache !== null) route.cache = cache;
  }
  for (const c of children) if (c.name === 'fastcgi_cache' && !cx.report.isHandled(c)) cx.report.note(c, 'not used: no PHP runs here (fastcgi_pass)');

  const failed = content.failed;
  if (failed !== null) {
    for (const k of ['php', 'proxy', 'try_files', 'root', 'alias', 'index', 'cache'] as const) delete route[k];
    if (route.rewrite !== undefined) route.rewrite.push({ return: '404' });
    else route.return ??= 404;
    cx.report.warn(d, `failing closed: the route answers 404, because phpgate cannot serve what nginx serves here (${failed})`);
  }
  cx.report.done(d);

  const child: Parent = { ...next, loc, root, alias: failed === null ? alias : null, restricts: parent.restricts || ownRestricts(children) };
  const routes = nested.map((n) => buildRoute(cx, n, child, handle)).filter((r): r is RouteDraft => r !== null);
  if (routes.length > 0) route.routes = routes;
  return route;
}

/** The route's `match:`, a refusing route for an inexpressible regex that restricts, or null (dropped). */
function matchOf(cx: ImportContext, d: Directive, loc: Location, restricts: boolean): { match: string } | RouteDraft | null {
  if (loc.kind === LocationKind.Named) return { match: `@${loc.match}` };
  if (!isRegex(loc)) {
    if (!loc.match.startsWith('/')) {
      cx.report.note(d, 'never matches: request paths start with "/" (nothing inside it is imported)');
      cx.report.doneTree(d);
      return null;
    }
    const modifier = loc.kind === LocationKind.Exact ? '= ' : loc.kind === LocationKind.PrefixNoRegex ? '^~ ' : '';
    return { match: `${modifier}${loc.match}` };
  }
  const caseless = loc.kind === LocationKind.RegexCaseless;
  let js = toJsRegex(loc.match, caseless);
  // Groups nothing reads ($1… in the location) decide nothing but what they capture: taken as (?:…), a pattern
  // whose captures JavaScript could not reproduce exactly still matches exactly (nginx's `[^/]\.php(/|$)`).
  const bare = 'reason' in js && !usesCaptures(d) ? withoutCaptures(loc.match) : null;
  if (bare !== null) {
    const again = toJsRegex(bare, caseless);
    if (!('reason' in again)) js = again;
  }
  const spell = (source: string, ci: boolean): string => `${ci ? '~*' : '~'} ${source}`;
  if (!('reason' in js)) {
    // Said whenever the route's text differs from the location's, so the report maps one onto the other.
    if (js.notes.length > 0) cx.report.note(d, `route ${spell(js.source, js.caseless)} (${js.notes.join('; ')})`);
    else if (js.source !== loc.match || js.caseless !== caseless)
      cx.report.note(d, `route ${spell(js.source, js.caseless)} (the same regex in JavaScript's spelling)`);
    return { match: spell(js.source, js.caseless) };
  }
  const wide = widenRegex(loc.match, caseless);
  if (wide.exact) {
    cx.report.note(d, `route ${spell(wide.regex.source, wide.regex.caseless)} (the same regex in JavaScript's spelling)`);
    return { match: spell(wide.regex.source, wide.regex.caseless) };
  }
  cx.report.doneTree(d);
  if (!restricts) {
    cx.report.warn(d, `not translated (${js.reason}): dropped, its requests go to the routes nginx would choose without it`);
    return null;
  }
  const status = refusalStatus(d.children ?? []);
  cx.report.warn(
    d,
    `failing closed (${js.reason}): this location restricts, so its route refuses (${status}) its regex ${wide.how}, which matches at least its paths`,
  );
  return { match: spell(wide.regex.source, wide.regex.caseless), deny: status === 403 ? true : status };
}

/** Whether a location (its directives and nested ones) reads regex captures: $1…$9 or a named group. */
function usesCaptures(d: Directive): boolean {
  const named = [...d.args.join(' ').matchAll(/\(\?P?<([A-Za-z_]\w*)>/g)].map((m) => m[1]!);
  const reads = (list: readonly Directive[]): boolean =>
    list.some(
      (c) =>
        c.args.some((a) => /\$\{?[0-9]/.test(a) || named.some((n) => a.includes(`$${n}`) || a.includes(`\${${n}}`))) ||
        (c.name !== 'location' && c.children !== null && reads(c.children)) ||
        (c.name === 'location' && c.children !== null && reads(c.children)),
    );
  return reads(d.children ?? []);
}

/** The pattern with its plain groups made non-capturing, or null when it refers to a group (a backreference). */
function withoutCaptures(pcre: string): string | null {
  if (/\\(?:[1-9]|g|k)|\(\?P=/.test(pcre)) return null;
  let out = '';
  let inClass = false;
  for (let i = 0; i < pcre.length; i++) {
    const c = pcre[i]!;
    if (c === '\\') {
      out += c + (pcre[i + 1] ?? '');
      i++;
    } else if (inClass) {
      if (c === ']') inClass = false;
      out += c;
    } else if (c === '[') {
      inClass = true;
      if (pcre[i + 1] === ']' || (pcre[i + 1] === '^' && pcre[i + 2] === ']')) {
        // a `]` first in a class is a literal
        const lit = pcre[i + 1] === '^' ? '^]' : ']';
        out += c + lit;
        i += lit.length;
      } else out += c;
    } else if (c === '(' && pcre[i + 1] !== '?' && pcre[i + 1] !== '*') out += '(?:';
    else out += c;
  }
  return out;
}

/** Whether a block refuses some requests itself. */
function ownRestricts(children: readonly Directive[]): boolean {
  return children.some(
    (c) => c.name === 'deny' || (c.name === 'auth_basic' && c.args[0] !== 'off') || c.name === 'internal' || c.name === 'limit_except' || refuses(c),
  );
}

function refuses(c: Directive): boolean {
  if (c.name === 'return') return Number(c.args[0]) >= 400;
  return c.name === 'if' && (c.children ?? []).some(refuses);
}

function subtreeRestricts(children: readonly Directive[]): boolean {
  return children.some((c) => c.name === 'location' && (ownRestricts(c.children ?? []) || subtreeRestricts(c.children ?? [])));
}

/** The status a refusing location answers with: its return 4xx, 404 for internal, else 403. */
function refusalStatus(children: readonly Directive[]): number {
  const ret = children.find((c) => c.name === 'return' && Number(c.args[0]) >= 400);
  if (ret !== undefined) return Number(ret.args[0]);
  return children.some((c) => c.name === 'internal') ? 404 : 403;
}

/** The location's own auth_basic / auth_basic_user_file, with what nginx then has in effect; null: none of its own. */
function ownAuth(cx: ImportContext, scope: Scope, parent: Parent): Auth | undefined {
  const own = (scope.chain[0] ?? []).filter((c) => c.name === 'auth_basic' || c.name === 'auth_basic_user_file');
  if (own.length === 0) return undefined;
  const { auth } = readAuth(cx, scope.chain);
  const parentOn = parent.auth !== null && 'realm' in parent.auth && parent.authOnRoute && parent.loc !== null;
  if (auth !== null && 'off' in auth && parentOn) {
    // The enclosing route's auth_basic is handed down by the runtime, and a route cannot turn it off.
    for (const x of own)
      cx.report.warn(x, "failing closed: the enclosing location's auth_basic still applies here (a nested route cannot turn it off)");
    return undefined;
  }
  for (const x of own) cx.report.note(x, describeAuth(auth));
  return auth;
}

/**
 * What nginx hands down from the enclosing block, written where routes would not hand it down themselves: the
 * server's access and auth_basic on top-level routes, deny and internal on every route. `ownAuthIn`: the
 * location's own auth_basic in effect (undefined: none of its own). Returns what the route hands down.
 */
function inherit(route: RouteDraft, parent: Parent, own: Access, ownAuthIn: Auth | undefined): Parent {
  let access = parent.access;
  let accessOnRoute = parent.accessOnRoute;
  if (own.kind !== 'none') {
    if (own.kind === 'allow-all' && access.kind === 'list' && accessOnRoute) route.access = [{ allow: 'all' }];
    access = own.kind === 'allow-all' ? { kind: 'none' } : own;
    accessOnRoute = false;
  }
  if (access.kind === 'deny') route.deny = true;
  else if (access.kind === 'list' && !accessOnRoute) route.access = access.rules;
  accessOnRoute = access.kind === 'list';

  let auth = parent.auth;
  let authOnRoute = parent.authOnRoute;
  if (ownAuthIn !== undefined) {
    auth = ownAuthIn;
    authOnRoute = false;
  }
  if (auth !== null && 'failed' in auth) route.deny = true;
  else if (auth !== null && 'realm' in auth && !authOnRoute) route.auth_basic = { realm: auth.realm, user_file: auth.user_file };
  authOnRoute = auth !== null && 'realm' in auth;

  if (parent.internal) route.internal = true;
  return { ...parent, access, accessOnRoute, auth, authOnRoute };
}

function describeAuth(auth: Auth): string {
  if (auth === null) return 'no auth_basic: nginx asks for a password only with both auth_basic and auth_basic_user_file';
  if ('off' in auth) return 'auth_basic off: no password asked';
  if ('failed' in auth) return `failing closed: ${auth.failed} cannot be read at import, so the route refuses (403)`;
  return `auth_basic: realm "${auth.realm}", user_file ${auth.user_file}`;
}

/** `root`: absolute (a relative one is under nginx's prefix); moved with php.docroot when it lies inside the server's root. */
function rootOf(cx: ImportContext, d: Directive): { root: string } | { failed: string } {
  const arg = withConstants(d.args[0] ?? '', cx.constants) ?? d.args[0] ?? '';
  if (arg.includes('$') || d.args.length !== 1) {
    cx.report.warn(d, 'not translated: a root built from variables');
    return { failed: `root ${arg}` };
  }
  let abs = path.normalize(path.isAbsolute(arg) ? arg : path.resolve(NGINX_PREFIX, arg)).replace(/(.)\/$/, '$1');
  if (!path.isAbsolute(arg)) cx.report.warn(d, `relative root resolved against nginx's prefix ${NGINX_PREFIX}: ${abs}`);
  abs = cx.relocate(abs);
  if (path.isAbsolute(arg)) cx.report.note(d, abs === cx.draft.php.docroot ? 'root: php.docroot' : `root: ${abs}`);
  return { root: abs };
}

/**
 * `alias`: in a prefix location. One that ends with the location's own path is a root (`location /static/ { alias
 * /srv/www/static/; }` is `root /srv/www`), which nested routes inherit; any other stays an alias.
 */
function aliasOf(cx: ImportContext, d: Directive, loc: Location): { root: string } | { alias: string } | { failed: string } {
  const arg = withConstants(d.args[0] ?? '', cx.constants) ?? d.args[0] ?? '';
  if (arg.includes('$') || d.args.length !== 1 || !path.isAbsolute(arg) || isRegex(loc) || loc.kind === LocationKind.Exact) {
    cx.report.warn(d, 'not translated: routes take an alias in a prefix location, as an absolute path without variables or captures');
    return { failed: `alias ${arg}` };
  }
  if (arg.endsWith(loc.match) && loc.match.startsWith('/')) {
    const root = arg.slice(0, arg.length - loc.match.length) || '/';
    cx.report.note(d, `root: ${root} (the same files: the alias ends with the location's path)`);
    return { root };
  }
  cx.report.note(d, `alias: ${arg}`);
  return { alias: arg };
}

function index(cx: ImportContext, d: Directive, route: RouteDraft): void {
  const fallback = indexFallback(cx, d);
  const names = d.args.filter((n) => fileName.parse(n) !== INVALID && !n.includes('$'));
  if (fallback !== null) names.push(fallback);
  const dropped = d.args.filter((n) => !names.includes(n));
  if (d.args.length === 0) cx.report.warn(d, 'not translated: index without file names');
  if (names.length > 0) {
    route.index = names;
    cx.report.note(d, `index: ${names.join(', ')}`);
  }
  if (dropped.length > 0) {
    cx.report.warn(
      d,
      `not translated: ${dropped.join(' ')} (index takes file names, no "/" or variables): a directory without the others answers 403/404`,
    );
  }
}

/** try_files → the route's try_files, or rewrite steps for a named location (returned, to run after the others). */
function tryFiles(cx: ImportContext, d: Directive, route: RouteDraft): RewriteStep[] {
  const r = routeTryFiles(cx, d);
  const namedNote = (named: Directive, how: string): void => {
    if (!cx.report.isHandled(named)) cx.report.note(named, `reached by try_files at ${d.file}:${d.line}: ${how}`);
    cx.report.doneTree(named);
  };
  if ('reason' in r) {
    route.try_files = [...d.args.slice(0, -1).filter((a) => a === '$uri' || a === '$uri/'), '=404'];
    if (route.try_files.length < 2) route.try_files.unshift('$uri');
    cx.report.warn(d, `not translated (${r.reason}): failing closed, try_files: [${route.try_files.join(', ')}]`);
    return [];
  }
  if ('steps' in r) {
    cx.report.note(d, "the files are served as they are; for the others the named location's steps run (rewrite: if … $request_filename)");
    namedNote(r.named, 'its steps run when the file is missing');
    return r.steps;
  }
  route.try_files = r.entries;
  cx.report.note(d, `try_files: [${r.entries.join(', ')}]`);
  // Kept as `@name`, the named location is a route of its own (buildRoute translates it).
  if (r.named !== null && r.entries.at(-1)?.startsWith('@') !== true) namedNote(r.named, `translated into the URI ${r.entries.at(-1) ?? ''}`);
  return [];
}

/** nginx's expires: 30d, 1h, max, epoch, off; a negative time is epoch (Cache-Control: no-cache either way). */
function expires(cx: ImportContext, d: Directive, route: RouteDraft): void {
  const arg = d.args[0] ?? '';
  if (d.args.length !== 1 || !/^(max|epoch|off|-?\d+[smhdwMy]?(\d+[smhdwMy])*)$/.test(arg)) {
    cx.report.warn(d, 'not translated: routes take expires TIME, max, epoch or off (no "modified", no @time)');
    return;
  }
  route.expires = arg.startsWith('-') ? 'epoch' : arg;
  cx.report.note(d, `expires: ${route.expires}${arg.startsWith('-') ? ' (a negative time: Cache-Control no-cache, as epoch)' : ''}`);
}

/**
 * The location's add_header list → the route's add_header, values with variables kept (phpgate evaluates them).
 * nginx replaces the enclosing block's list as a whole; for a nested route an empty list says so.
 */
function addHeaders(cx: ImportContext, ds: readonly Directive[], route: RouteDraft, nestedRoute: boolean): void {
  const list: AddHeaderDraft[] = [];
  for (const d of ds) {
    const [name = '', value = '', flag] = d.args;
    if (usesCacheStatus(d)) {
      cacheStatusHeader(cx, d);
      continue;
    }
    if (d.args.length < 2 || d.args.length > 3 || (flag !== undefined && flag !== 'always')) {
      cx.report.warn(d, 'not translated: expected add_header NAME VALUE [always]');
      continue;
    }
    if (value === '') {
      cx.report.note(d, 'nginx sends no header with an empty value');
      continue;
    }
    const unknown = cx.vars.unknown(value);
    const bad =
      headerName.parse(name) === INVALID
        ? `"${name}" is not ${headerName.expected}`
        : headerValue.parse(value) === INVALID
          ? `headers take ${headerValue.expected}`
          : GATEWAY_OWN_HEADERS.has(name.toLowerCase())
            ? `phpgate writes ${name} itself`
            : unknown.length > 0
              ? unknown.map((v) => `$${v} is ${cx.vars.why(v)}`).join('; ')
              : null;
    if (bad !== null) {
      cx.report.warn(d, `not translated: ${bad}`);
      continue;
    }
    list.push({ name, value, ...(flag === 'always' ? { always: true as const } : {}) });
    cx.report.note(d, `add_header ${name}: ${JSON.stringify(value)}${flag === 'always' ? ' (always)' : ' (2xx and 3xx answers, as nginx)'}`);
  }
  if (list.length > 0 || nestedRoute) route.add_header = list;
}
