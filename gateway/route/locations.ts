/**
 * `routes:` compiled once at load into nginx's location tree, and the search nginx does on it
 * (ngx_http_core_find_location): an exact match wins at once; else the longest prefix is remembered and its nested
 * routes searched; unless that prefix is `^~`, the regexes of each level are tried in order (the deepest level's
 * first), and the first that matches wins, with its own nested routes searched; else the prefix stands.
 *
 * What a route leaves out it inherits from its parent here (root/alias, index, access, auth_basic, add_header,
 * expires, the PHP pool), so a request reads one object and allocates nothing to find its route.
 */
import path from 'node:path';
import { parseTemplate } from '../../config/route-syntax.js';
import type { TemplatePart, RouteAccessRule, RouteCache, RouteConfig, RouteHeader, RoutePhp, UpstreamConfig } from '../../config/types.js';
import { compileSteps, type CompiledStep } from './rewrite.js';

export interface Location {
  readonly text: string;
  readonly internal: boolean;
  /** Exact and prefix routes know the path they matched: alias replaces it. */
  readonly prefix: string | null;
  /** `^~`. */
  readonly priority: boolean;
  readonly regex: RegExp | null;
  readonly root: string;
  /** alias and the prefix it replaces (null for a regex route: the alias names the file), or null: root + URI. */
  readonly alias: Alias | null;
  readonly index: readonly string[];
  /** The index list's last entry when it is an absolute URI: where a directory without an index file goes. */
  readonly indexFallback: readonly TemplatePart[] | null;
  /** try_files entries: a template (for `$uri/`, a directory), or the last entry's =CODE. */
  readonly tryFiles: readonly TryEntry[] | null;
  readonly php: (RoutePhp & { readonly split: RegExp | null }) | null;
  readonly proxy: Omit<UpstreamConfig, 'pattern'> | null;
  readonly rewrite: readonly CompiledStep[];
  readonly deny: number | null;
  readonly access: readonly RouteAccessRule[] | null;
  readonly authBasic: { readonly realm: string; readonly user_file: string } | null;
  readonly headers: readonly RouteHeader[] | null;
  readonly expires: number | 'max' | 'epoch' | 'off' | null;
  readonly cache: RouteCache | null;
  /** Nested routes. */
  readonly level: Level;
  /** The index of this route among all routes, depth first (a key for per-route state built at load). */
  readonly id: number;
}

export interface TryEntry {
  readonly template: readonly TemplatePart[];
  /** The last entry `@name`: the named route answers, with the URI unchanged. */
  readonly named: string | null;
  readonly dir: boolean;
  readonly status: number | null;
}

function compileTryFiles(entries: readonly string[] | null): TryEntry[] | null {
  if (entries === null) return null;
  return entries.map((e) => {
    if (/^=\d{3}$/.test(e)) return { template: [], named: null, dir: false, status: Number(e.slice(1)) };
    if (e.startsWith('@')) return { template: [], named: e.slice(1), dir: false, status: null };
    const dir = e.endsWith('/') && e.length > 1;
    return { template: parseTemplate(dir ? e.slice(0, -1) : e), named: null, dir, status: null };
  });
}

function indexFallbackOf(index: readonly string[]): TemplatePart[] | null {
  const last = index.at(-1);
  if (last === undefined || !last.startsWith('/')) return null;
  return parseTemplate(last);
}

export interface Level {
  /** `@name` routes (top level only). */
  readonly named: ReadonlyMap<string, Location>;
  readonly exact: ReadonlyMap<string, Location>;
  /** Longest first. */
  readonly prefixes: readonly (Location & { readonly prefix: string })[];
  readonly regexes: readonly Location[];
}

export interface Alias {
  readonly dir: string;
  readonly prefix: string | null;
}

export interface Inherited {
  readonly root: string;
  readonly alias: Alias | null;
  readonly index: readonly string[];
  readonly pool: string | null;
  readonly access: readonly RouteAccessRule[] | null;
  readonly authBasic: { readonly realm: string; readonly user_file: string } | null;
  readonly headers: readonly RouteHeader[] | null;
  readonly expires: number | 'max' | 'epoch' | 'off' | null;
}

export function compileLevel(routes: readonly RouteConfig[], from: Inherited, all: Location[]): Level {
  const exact = new Map<string, Location>();
  const named = new Map<string, Location>();
  const prefixes: (Location & { readonly prefix: string })[] = [];
  const regexes: Location[] = [];
  for (const r of routes) {
    const m = r.match;
    const id = all.length;
    // A placeholder keeps depth-first ids stable while the nested level is compiled.
    all.push(null as unknown as Location);
    const matched = m.kind === 'exact' || m.kind === 'prefix' ? m.path : null;
    const inherit: Inherited = {
      root: r.root ?? from.root,
      alias: r.alias !== null ? { dir: r.alias, prefix: matched } : r.root === null ? from.alias : null,
      index: r.index ?? from.index,
      pool: r.php?.pool ?? from.pool,
      access: r.access ?? from.access,
      authBasic: r.auth_basic ?? from.authBasic,
      headers: r.add_header ?? from.headers,
      expires: r.expires ?? from.expires,
    };
    const loc: Location = {
      text: r.text,
      internal: r.internal,
      prefix: matched,
      priority: m.kind === 'prefix' && m.priority,
      regex: m.kind === 'regex' ? new RegExp(m.source, m.caseInsensitive ? 'i' : '') : null,
      root: inherit.root,
      alias: inherit.alias,
      index: inherit.index.filter((n) => !n.startsWith('/')),
      indexFallback: indexFallbackOf(inherit.index),
      tryFiles: compileTryFiles(r.try_files),
      php: r.php === null ? null : { ...r.php, pool: inherit.pool, split: r.php.split_path_info === null ? null : new RegExp(r.php.split_path_info) },
      proxy: r.proxy,
      rewrite: compileSteps([...r.rewrite, ...(r.return === null ? [] : [{ kind: 'return' as const, ...r.return }])]),
      deny: r.deny,
      access: inherit.access,
      authBasic: inherit.authBasic,
      headers: inherit.headers,
      expires: inherit.expires,
      cache: r.cache,
      level: compileLevel(r.routes, inherit, all),
      id,
    };
    all[id] = loc;
    if (m.kind === 'exact') exact.set(m.path, loc);
    else if (m.kind === 'named') named.set(m.name, loc);
    else if (m.kind === 'prefix') prefixes.push(loc as Location & { readonly prefix: string });
    else regexes.push(loc);
  }
  // Equal lengths keep their order; nginx refuses duplicate locations, config/ does not, so the first wins.
  prefixes.sort((a, b) => b.prefix.length - a.prefix.length);
  return { named, exact, prefixes, regexes };
}

/** The search's outcome, as nginx's: OK (exact or regex), DONE (^~), AGAIN (a prefix), DECLINED (nothing here). */
const OK = 0;
const DONE = 1;
const AGAIN = 2;
const DECLINED = 3;

/** Where the search writes what it found: the route, and the regex match that chose it. */
export interface Found {
  location: Location | null;
  captures: RegExpExecArray | null;
}

export function findLocation(level: Level, uri: string, found: Found): void {
  find(level, uri, found);
}

function find(level: Level, uri: string, found: Found): number {
  const exact = level.exact.get(uri);
  if (exact !== undefined) {
    found.location = exact;
    return OK;
  }
  let rc = DECLINED;
  let noRegex = false;
  for (const p of level.prefixes) {
    if (!uri.startsWith(p.prefix)) continue;
    found.location = p;
    noRegex = p.priority;
    rc = find(p.level, uri, found);
    if (rc === DECLINED) rc = AGAIN;
    break;
  }
  if (rc === OK || rc === DONE) return rc;
  // `^~` skips this level's regexes only; a level above still tries its own (as nginx).
  if (noRegex) return rc;
  for (const r of level.regexes) {
    const m = r.regex!.exec(uri);
    if (m === null) continue;
    found.location = r;
    found.captures = m;
    find(r.level, uri, found);
    return OK;
  }
  return rc;
}

/** The file a URI names under a route: root + URI, or alias + what follows the matched prefix. */
export function fileFor(loc: Location, uri: string): string {
  const a = loc.alias;
  if (a === null) return path.join(loc.root, uri);
  if (a.prefix === null) return a.dir; // a regex location's alias names the file itself
  return uri.startsWith(a.prefix) ? path.join(a.dir, uri.slice(a.prefix.length)) : path.join(a.dir, uri);
}
