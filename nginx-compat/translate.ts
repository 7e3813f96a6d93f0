/**
 * An nginx site → gateway.yaml. `importNginx()` reads the file (includes expanded), picks the server block,
 * translates what phpgate has a key for, and reports every other directive with its file:line: a note when
 * phpgate already behaves so (or the directive is nginx tuning), a warning when something is not translated.
 *
 * This file runs the import: definitions first (upstream, limit_req_zone, fastcgi_cache_path, named locations,
 * maps and variables), the docroot and the main PHP location, then the server-level rewrite directives (the
 * top-level rewrite steps), every other server directive (directives.ts), the locations as routes (routes.ts),
 * then the passes that need the whole picture (maps, TLS, PROXY protocol, rule order, cache) and a sweep that
 * reports whatever is left. The directive → key table is in nginx-compat/README.md. The result is gateway.yaml and
 * nothing else: the runtime never learns nginx existed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { compilePattern, hasWildcard, patternMatchesEverything } from '../config/pattern.js';
import { finishCache, readCacheZone } from './cache.js';
import { ImportContext, type ImportOptions, type Ranked, type Scope } from './context.js';
import { handleDirective } from './directives.js';
import { serverConstants, withConstants } from './variables.js';
import { warnDotfiles } from './rewrite.js';
import { newDraft, renderYaml, toConfigObject, type RouteDraft } from './emit.js';
import { readConnZone, readRateZone } from './limits.js';
import { LocationKind, locationMatches, readLocation } from './location.js';
import { cacheHeaders, OTHER_PHP_PATH } from './location-blocks.js';
import { DEFERRED } from './notes.js';
import { NGINX_PREFIX, parseNginxFile, type Directive } from './parse.js';
import { accessDirectives } from './route-access.js';
import { buildRoutes } from './routes.js';
import { REWRITE_DIRECTIVES, rewriteSteps } from './rewrite.js';
import type { RewriteStep } from './emit.js';
import type { Report, Warning } from './report.js';
import { chooseServer, describeServerNames, parseListen, readServers, type Listen, type ServerBlock } from './servers.js';
import { translateTryFiles } from './try-files.js';

export type { ImportOptions } from './context.js';

export interface ImportResult {
  /** gateway.yaml: the report as comments, then the keys. */
  readonly yaml: string;
  /** The same keys as an object (what the YAML holds). */
  readonly config: Record<string, unknown>;
  /** Notes and warnings in configuration order. */
  readonly warnings: readonly Warning[];
}

export { NGINX_PREFIX } from './parse.js';

export function importNginx(file: string, opts: ImportOptions = {}): ImportResult {
  return translateNginx(parseNginxFile(file, opts.prefix), file, opts);
}

/** Translates an already parsed configuration; `file` names it in messages. */
export function translateNginx(tree: readonly Directive[], file: string, opts: ImportOptions = {}): ImportResult {
  const cx = new ImportContext(tree, opts);
  const server = run(cx, tree, file);
  const config = toConfigObject(cx.draft);
  const warnings = cx.report.list();
  return { yaml: renderYaml(config, warnings, { source: file, server }), config, warnings };
}

/** The whole import; returns how the imported server is named in the YAML header. */
function run(cx: ImportContext, tree: readonly Directive[], file: string): string {
  const httpBlock = tree.find((d) => d.name === 'http' && d.children !== null);
  // A site file (sites-available) is included inside http {}: its top level is http context.
  const main = httpBlock === undefined ? [] : tree;
  const http = httpBlock?.children ?? tree;
  if (httpBlock !== undefined) cx.report.done(httpBlock);

  const choice = chooseServer(readServers(http), file, cx.opts.server);
  const server = choice.chosen;
  const serverChildren = server.d.children ?? [];
  collectDefinitions(cx, http);
  collectNamed(cx, serverChildren);
  cx.constants = serverConstants(serverChildren);
  cx.draft = newDraft(docroot(cx, serverChildren, http, server.d));
  cx.serverChildren = serverChildren;
  const mainPhp = findMainPhp(cx, serverChildren);
  cx.mainKey = mainPhp?.key ?? null;
  cx.mainPhp = mainPhp?.d ?? null;
  cx.vars.collect(http, serverChildren);
  cx.globalLevels.add(serverChildren).add(http);

  const mainScope: Scope = { level: 'main', loc: null, d: null, php: null, chain: [main] };
  const httpScope: Scope = { level: 'http', loc: null, d: null, php: null, chain: [http] };
  const serverScope: Scope = { level: 'server', loc: null, d: server.d, php: null, chain: [serverChildren, http] };

  // listen first: real_ip_header proxy_protocol (http or server level) asks whether the listener has it.
  listen(cx, server);
  for (const d of main) if (d !== httpBlock) handleDirective(cx, d, mainScope);
  for (const d of http) if (d.name !== 'server') handleDirective(cx, d, httpScope);
  otherServers(cx, choice.others, server);
  if (choice.redirectFrom !== null) redirectServer(cx, choice.redirectFrom);
  cx.report.done(server.d);
  cacheHeaders(cx, serverChildren, serverScope);
  // Server-level rewrite directives run before a location is chosen: the top-level rewrite steps.
  const steps = rewriteSteps(
    cx,
    serverChildren.filter((d) => REWRITE_DIRECTIVES.has(d.name)),
  );
  for (const d of serverChildren) if (d.name !== 'location') handleDirective(cx, d, serverScope);
  if (![...serverChildren, ...http].some((d) => d.name === 'index')) {
    cx.report.note(server.d, "no index: nginx's default is index.html; php.index keeps phpgate's default [index.php, index.html]");
  }
  if (needsRoutes(serverScope)) {
    cx.draft.routes = buildRoutes(cx, server.d, serverScope, handleDirective);
    dotfileStatus(cx, server.d, cx.draft.routes);
  } else finishTryFiles(cx, server.d);
  cx.draft.rewrite = [...finishMaps(cx), ...steps];

  finishTls(cx, server);
  finishProxyProtocol(cx, serverScope);
  finishPhp(cx, server.d);
  finishRules(cx);
  finishCache(cx);
  sweep(cx, main.length > 0 ? main : http);
  return `server at ${server.d.file}:${server.d.line}${server.names.length > 0 ? `, ${server.names[0]}` : ''}`;
}

/**
 * phpgate refuses dotfiles before any route, with static.deny_status: the status the site's own dotfile location
 * gives (the first top-level regex route matching /.htaccess, as nginx would choose it) is the one to answer.
 */
function dotfileStatus(cx: ImportContext, server: Directive, routes: readonly RouteDraft[]): void {
  for (const r of routes) {
    const m = /^(~\*?)\s+(.*)$/.exec(r.match);
    if (m === null) continue;
    let re: RegExp;
    try {
      re = new RegExp(m[2]!, m[1] === '~*' ? 'i' : '');
    } catch {
      continue;
    }
    if (!re.test('/.htaccess')) continue;
    const ret = typeof r.return === 'number' ? r.return : typeof r.return === 'string' ? Number(r.return.split(' ')[0]) : NaN;
    // An internal location is not found by clients (404) before its deny is looked at.
    const status = r.internal === true ? 404 : r.deny === true ? 403 : typeof r.deny === 'number' ? r.deny : ret;
    if (status === 403 || status === 404) {
      cx.draft.static.deny_status = status;
      cx.report.note(server, `static.deny_status: ${status}, as the site's dotfile location (${r.match}) answers`);
      return;
    }
    break;
  }
  // No location refuses dotfiles: a location's rewrite that takes them is where phpgate differs.
  for (const d of cx.dotfileRewrites) warnDotfiles(cx, d);
}

function collectDefinitions(cx: ImportContext, http: readonly Directive[]): void {
  for (const d of http) {
    if (d.name === 'upstream' && d.children !== null && d.args[0] !== undefined) {
      cx.upstreams.set(d.args[0], { d, servers: d.children.filter((c) => c.name === 'server') });
    } else if (d.name === 'limit_req_zone') {
      const zone = readRateZone(cx, d);
      if (zone !== null) cx.rateZones.set(zone.name, zone.zone);
    } else if (d.name === 'limit_conn_zone') {
      const zone = readConnZone(cx, d);
      if (zone !== null) cx.connZones.set(zone.name, zone.zone);
    } else if (d.name === 'fastcgi_cache_path') {
      const zone = readCacheZone(d);
      if (zone !== null) cx.cacheZones.set(zone.name, zone.zone);
    }
  }
}

function collectNamed(cx: ImportContext, list: readonly Directive[]): void {
  for (const d of list) {
    if (d.name !== 'location' || d.children === null) continue;
    const loc = readLocation(d);
    if (!('error' in loc) && loc.kind === LocationKind.Named) cx.named.set(loc.match, d);
    collectNamed(cx, d.children);
  }
}

/** The upstream of the PHP location that runs every script (`\.php$`); other fastcgi_pass targets become pools. */
function findMainPhp(cx: ImportContext, list: readonly Directive[]): { key: string; d: Directive } | null {
  const found: { key: string; d: Directive; general: boolean }[] = [];
  const walk = (ds: readonly Directive[]): void => {
    for (const d of ds) {
      if (d.name !== 'location' || d.children === null) continue;
      const loc = readLocation(d);
      const pass = d.children.find((c) => c.name === 'fastcgi_pass');
      if (!('error' in loc) && loc.kind !== LocationKind.Named && pass?.args[0] !== undefined) {
        found.push({ key: cx.fastcgiKey(pass.args[0]), d, general: locationMatches(loc, OTHER_PHP_PATH) });
      }
      walk(d.children);
    }
  };
  walk(list);
  return found.find((f) => f.general) ?? found[0] ?? null;
}

function docroot(cx: ImportContext, server: readonly Directive[], http: readonly Directive[], serverD: Directive): string {
  const rootD = server.find((d) => d.name === 'root') ?? http.find((d) => d.name === 'root');
  cx.serverRoot = rootD === undefined ? null : (withConstants(rootD.args[0] ?? '', cx.constants) ?? rootD.args[0] ?? null);
  if (cx.opts.root !== undefined) {
    const docroot = path.resolve(cx.opts.root);
    if (rootD !== undefined) cx.report.note(rootD, `php.docroot: ${docroot} (given in place of nginx's root)`);
    return docroot;
  }
  if (rootD === undefined) {
    const fallback = path.join(NGINX_PREFIX, 'html');
    cx.report.warn(serverD, `no root: nginx serves ${fallback}, so php.docroot is ${fallback}`);
    return fallback;
  }
  const arg = withConstants(rootD.args[0] ?? '', cx.constants) ?? '$';
  if (arg.includes('$') || rootD.args.length !== 1) {
    const fallback = path.join(NGINX_PREFIX, 'html');
    cx.report.warn(rootD, `a root built from variables cannot be translated; php.docroot is ${fallback}: set it`);
    return fallback;
  }
  if (!path.isAbsolute(arg)) {
    const docroot = path.resolve(NGINX_PREFIX, arg);
    cx.report.warn(rootD, `relative root resolved against nginx's prefix ${NGINX_PREFIX}: php.docroot ${docroot}`);
    return docroot;
  }
  const docroot = path.normalize(arg).replace(/(.)\/$/, '$1');
  cx.report.note(rootD, `php.docroot: ${docroot}`);
  return docroot;
}

function otherServers(cx: ImportContext, others: readonly ServerBlock[], chosen: ServerBlock): void {
  for (const s of others) {
    const what = describeServerNames(s);
    // The same names served twice (plain and TLS, say): only one of them is imported. A catch-all is another site.
    const shared = s.names.some((n) => chosen.names.includes(n));
    if (shared && s.redirect === null) {
      cx.report.warn(s.d, `not imported: phpgate serves one port, and the imported server is ${chosen.d.file}:${chosen.d.line} — ${what}`);
    } else {
      cx.report.note(s.d, `another site, not imported (import it with --server NAME) — ${what}`);
    }
    cx.report.doneTree(s.d);
  }
}

function listen(cx: ImportContext, server: ServerBlock): void {
  const children = server.d.children ?? [];
  const listenDs = children.filter((c) => c.name === 'listen');
  if (listenDs.length === 0) {
    cx.draft.server.port = 80;
    cx.report.note(server.d, 'no listen: nginx listens on *:80, so server.port is 80');
    return;
  }
  const listens: Listen[] = [];
  for (const d of listenDs) {
    const l = parseListen(d);
    if ('error' in l) cx.report.warn(d, `not translated: ${l.error}`);
    else listens.push(l);
  }
  const primary = listens.find((l) => l.ssl) ?? listens[0];
  if (primary === undefined) return;
  cx.draft.server.port = primary.port;
  if (primary.host !== null) cx.draft.server.host = primary.host;
  for (const l of listens) {
    const extras = listenParams(cx, l, l === primary);
    if (l === primary) {
      const what = [
        `server.port ${l.port}`,
        l.host === null ? '' : `server.host ${l.host}`,
        l.ssl ? 'TLS (server.tls)' : '',
        l.http2 ? 'HTTP/2 by ALPN' : '',
      ]
        .filter((x) => x !== '')
        .join(', ');
      cx.report.note(l.d, [what, ...extras.notes].join('; '));
    } else if (l.port === primary.port) {
      cx.report.note(l.d, `same port on another address: phpgate listens on server.host (${primary.host ?? '0.0.0.0'}) only`);
    } else {
      cx.report.warn(
        l.d,
        `not translated: phpgate listens on one port (server.port ${primary.port})${!l.ssl && primary.ssl ? '; redirect_http_port would redirect this port to https instead of serving the site' : ''}`,
      );
    }
    for (const w of extras.warnings) cx.report.warn(l.d, w);
  }
}

/** A listen's parameters; `primary`: the listener phpgate takes (the others are reported as not served). */
function listenParams(cx: ImportContext, l: Listen, primary: boolean): { notes: string[]; warnings: string[] } {
  const notes: string[] = [];
  const warnings: string[] = [];
  for (const p of l.params) {
    if (p === 'ssl' || p === 'http2') continue;
    if (p === 'default_server' || p === 'default') notes.push('phpgate answers every Host (it serves one site)');
    else if (p === 'proxy_protocol') {
      if (!primary) continue;
      cx.draft.server.proxy_protocol = true;
      cx.proxyProtocol = l.d;
      notes.push('server.proxy_protocol: a PROXY v1/v2 header first on every connection');
    } else if (p === 'quic' || p === 'http3') warnings.push(`"${p}" is not supported by phpgate`);
    else notes.push(`"${p}": socket tuning, not needed`);
  }
  return { notes, warnings };
}

function redirectServer(cx: ImportContext, s: ServerBlock): void {
  const port = s.listens.find((l) => !l.ssl)?.port ?? 80;
  cx.draft.server.redirect_http_port = port;
  const target = s.redirect?.args[1] ?? '';
  const same = /^https:\/\/\$(host|server_name|http_host)\$request_uri$/.test(target);
  cx.report.note(
    s.d,
    `plain-HTTP server that redirects to https: server.redirect_http_port ${port}${same ? '' : ` (phpgate redirects to https on the request's own host, not ${target})`}`,
  );
  cx.report.doneTree(s.d);
}

/** A server with locations (or address rules, or auth_basic) is routed by `routes:`; one without by the global keys. */
function needsRoutes(serverScope: Scope): boolean {
  const [own = []] = serverScope.chain;
  const restricted = serverScope.chain.some((list) => accessDirectives(list).length > 0 || list.some((d) => d.name === 'auth_basic'));
  return restricted || own.some((d) => d.name === 'location' && d.children !== null);
}

/** A server without locations: its try_files (nginx applies it to every request) is php.try_files. */
function finishTryFiles(cx: ImportContext, serverD: Directive): void {
  const main = cx.serverTryFiles;
  if (main === null) {
    cx.draft.php.try_files = ['$uri', '$uri/', '=404'];
    cx.report.note(
      serverD,
      'no try_files: nginx serves files and directory indexes only, so php.try_files is [$uri, $uri/, =404] (no front controller)',
    );
    return;
  }
  const r = translateTryFiles(main.args, cx.named);
  if ('reason' in r || 'steps' in r) {
    cx.report.warn(
      main,
      `not translated (${'reason' in r ? r.reason : 'a named location'}); php.try_files keeps phpgate's default [$uri, $uri/, /index.php?$query_string]`,
    );
    return;
  }
  cx.draft.php.try_files = r.entries;
  cx.report.note(main, `php.try_files: [${r.entries.join(', ')}]`);
  if (r.named !== null) usedNamed(cx, r.named, main);
}

/** The maps the import translated (their steps go first in the top-level rewrite), and the ones it could not. */
function finishMaps(cx: ImportContext): RewriteStep[] {
  const out: RewriteStep[] = [];
  for (const { d, steps } of cx.vars.mapSteps()) {
    out.push(...steps);
    cx.report.note(
      d,
      `top-level rewrite steps: ${d.args[1] ?? ''} is set from ${d.args[0] ?? ''} before a route is chosen (the same value nginx's map gives)`,
    );
    cx.report.doneTree(d);
  }
  return out;
}

function usedNamed(cx: ImportContext, named: Directive, by: Directive): void {
  if (cx.report.isHandled(named)) return;
  cx.report.note(named, `reached by try_files at ${by.file}:${by.line}: translated into php.try_files`);
  cx.report.doneTree(named);
}

function finishTls(cx: ImportContext, server: ServerBlock): void {
  // nginx resolves a relative path against its configuration prefix; as with includes, the file's own directory
  // is tried first.
  const resolve = (d: Directive): string => {
    const arg = d.args[0]!;
    if (path.isAbsolute(arg)) return arg;
    const beside = path.resolve(path.dirname(d.file), arg);
    return fs.existsSync(beside) ? beside : path.join(cx.prefix, arg);
  };
  if (!server.ssl) {
    for (const d of [cx.cert, cx.key]) if (d !== null) cx.report.note(d, 'the imported server has no ssl listener: not used');
    return;
  }
  if (cx.cert === null || cx.key === null) {
    cx.report.warn(
      server.d,
      'an ssl listener without ssl_certificate and ssl_certificate_key: server.tls is not set, phpgate will serve plain HTTP on that port',
    );
    // redirect_http_port needs server.tls (config/ refuses it alone).
    delete cx.draft.server.redirect_http_port;
    return;
  }
  cx.draft.server.tls = { cert: resolve(cx.cert), key: resolve(cx.key) };
  cx.report.note(cx.cert, `server.tls.cert: ${cx.draft.server.tls.cert}`);
  cx.report.note(cx.key, `server.tls.key: ${cx.draft.server.tls.key}`);
}

/**
 * server.proxy_protocol needs server.trusted_proxies (config/ refuses it alone: a PROXY header is believed from
 * trusted peers only). And nginx uses the header's address only with real_ip_header proxy_protocol.
 */
function finishProxyProtocol(cx: ImportContext, serverScope: Scope): void {
  const d = cx.proxyProtocol;
  if (d === null) return;
  if (cx.draft.server.trusted_proxies.length === 0) {
    cx.report.warn(
      d,
      "server.proxy_protocol needs server.trusted_proxies (the load balancers' addresses), and there is no set_real_ip_from: gateway.yaml does not load until they are added",
    );
  }
  const realIp = cx.inherited('real_ip_header', serverScope).at(-1);
  if (realIp?.args[0]?.toLowerCase() !== 'proxy_protocol') {
    cx.report.note(
      d,
      'nginx takes the client address from the PROXY header only with real_ip_header proxy_protocol; phpgate always does, for connections from server.trusted_proxies',
    );
  }
}

function finishPhp(cx: ImportContext, serverD: Directive): void {
  if (cx.mainKey === null) {
    cx.report.warn(
      serverD,
      'no PHP location (fastcgi_pass): nginx sends .php files as they are; phpgate never sends PHP source (those requests are refused)',
    );
  }
}

/** First-match-wins lists in nginx's precedence, with rules that can never match dropped (and reported). */
function finishRules(cx: ImportContext): void {
  cx.draft.static.cache_control = ordered(cx.cacheControl, cx.report).map((r) => ({ pattern: r.pattern, value: r.value }));
}

/** Everything not handled yet gets a warning: nothing is dropped without a line in the report. */
function sweep(cx: ImportContext, list: readonly Directive[]): void {
  for (const d of list) {
    if (cx.report.isHandled(d)) {
      sweep(cx, d.children ?? []);
      continue;
    }
    if (d.name === 'location' && d.args[0]?.startsWith('@') === true) {
      cx.report.warn(
        d,
        'not translated: a named location no route can reach (only one a try_files falls back to, made of rewrite directives, is translated)',
      );
      cx.report.doneTree(d);
    } else if (d.name === 'map' && cx.vars.taintedMap(d) !== null) {
      cx.report.warn(d, `not translated: ${cx.vars.taintedMap(d) ?? ''}; where its variable is used, the import fails closed`);
      cx.report.doneTree(d);
    } else if (DEFERRED.has(d.name)) {
      cx.report.note(d, 'not used by the imported server');
      cx.report.doneTree(d);
    } else if (d.children !== null) {
      cx.report.warn(d, `not translated: the "${d.name}" block (nothing inside it is imported)`);
      cx.report.doneTree(d);
    } else {
      cx.report.warn(d, 'not translated: phpgate has no equivalent');
    }
  }
}

function compareRank(a: readonly [number, number], b: readonly [number, number]): number {
  return a[0] - b[0] || a[1] - b[1];
}

/** Sorted by rank; duplicates and patterns an earlier one always takes first (config/ refuses those) dropped. */
function ordered<T>(entries: readonly Ranked<T>[], report: Report): Ranked<T>[] {
  const sorted = [...entries].sort((a, b) => compareRank(a.rank, b.rank));
  const kept: Ranked<T>[] = [];
  for (const e of sorted) {
    const earlier = kept.find(
      (k) => patternMatchesEverything(k.pattern) || k.pattern === e.pattern || (!hasWildcard(e.pattern) && compilePattern(k.pattern)(e.pattern)),
    );
    if (earlier === undefined) {
      kept.push(e);
      continue;
    }
    if (earlier.pattern !== e.pattern || JSON.stringify(earlier.value) !== JSON.stringify(e.value)) {
      report.warn(
        e.d,
        `${e.pattern}: phpgate takes the first matching pattern, and ${earlier.pattern} (${earlier.d.file}:${earlier.d.line}) always comes first; dropped`,
      );
    }
  }
  return kept;
}
