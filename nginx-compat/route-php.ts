/**
 * A location's content handler as a route action: `fastcgi_pass` → `php` (the pool, a fixed script from
 * SCRIPT_FILENAME, `fastcgi_split_path_info` → split_path_info), `proxy_pass` → `proxy` (an upstreams[] entry
 * without pattern; proxy.ts reads its proxy_* directives and upstream block).
 *
 * When the script or the target cannot be expressed, the caller makes the route answer 404 rather than run or
 * fetch something else (`failed`).
 */
import path from 'node:path';
import { httpUrl, INVALID, poolName } from '../config/checks.js';
import { DEFAULT_POOL_NAME } from '../config/semantics.js';
import type { ImportContext, PhpTarget, Scope } from './context.js';
import type { PhpRouteDraft, PoolDraft, ProxyDraft } from './emit.js';
import { isStandardSplit } from './fastcgi.js';
import { LocationKind, type Location } from './location.js';
import { isStockInclude, stockName, type Directive } from './parse.js';
import { proxyDirectives, upstreamBlock, type ProxySettings } from './proxy.js';
import { toJsRegex } from './regex.js';

/** Debian's snippets/fastcgi-php.conf: this split, and `try_files $fastcgi_script_name =404`. */
export const DEBIAN_SNIPPET = 'snippets/fastcgi-php.conf';
const DEBIAN_SPLIT = '^(.+?\\.php)(/.*)$';
/** Stock includes that hold fastcgi_param lines (so a location with one inherits no fastcgi_param). */
const PARAM_INCLUDES = new Set(['fastcgi_params', 'fastcgi.conf', DEBIAN_SNIPPET]);
/** Stock includes whose parameters set SCRIPT_FILENAME $document_root$fastcgi_script_name. */
const SCRIPT_FILENAME_INCLUDES = new Set(['fastcgi.conf', DEBIAN_SNIPPET]);
// `$document_root/$fastcgi_script_name` names the same file (a doubled slash is one to the file system).
const STANDARD_SCRIPT_FILENAMES = new Set([
  '$document_root$fastcgi_script_name',
  '$realpath_root$fastcgi_script_name',
  '$document_root/$fastcgi_script_name',
  '$realpath_root/$fastcgi_script_name',
  '$request_filename',
]);

export interface PhpAction {
  readonly php: PhpRouteDraft;
  readonly target: PhpTarget;
  /** Why the route cannot run what nginx runs (it answers 404 instead), or null. */
  readonly failed: string | null;
  /** A try_files of the location that is not the script check the php route makes itself (for the route). */
  readonly tryFiles: Directive | null;
  /** Debian's snippets/fastcgi-php.conf is included here: its try_files and `set $path_info` belong to the route. */
  readonly snippet: boolean;
}

/** `fastcgi_pass` and what decides which script runs with which PATH_INFO. */
export function phpAction(cx: ImportContext, d: Directive, loc: Location, pass: Directive, scope: Scope, routeRoot: string | null): PhpAction {
  const children = d.children ?? [];
  const target = pass.args[0] ?? '';
  if (target === '' || pass.args.length !== 1) {
    cx.report.warn(pass, 'not translated: fastcgi_pass takes one address');
    return { php: true, target: { kind: 'default', main: false }, failed: 'fastcgi_pass without an address', tryFiles: null, snippet: false };
  }
  const key = cx.fastcgiKey(target);
  const upstream = cx.upstreams.get(target);
  let php: PhpTarget;
  const out: { script?: string; split_path_info?: string; path_info?: string | false; pool?: string } = {};
  if (key === cx.mainKey) {
    php = { kind: 'default', main: d === cx.mainPhp };
    cx.report.note(
      pass,
      `php: the default pool, phpgate's own php-cgi workers (php.worker_count; size it like php-fpm's pm.max_children) in place of ${target}`,
    );
  } else {
    const pool = poolFor(cx, key, target);
    php = { kind: 'pool', pool };
    out.pool = pool.name;
    cx.report.note(
      pass,
      `php.pool ${pool.name}: its own php-cgi workers (worker_count inherits php.worker_count; size it like that php-fpm pool's pm.max_children) in place of ${target}`,
    );
  }
  if (upstream !== undefined && !cx.report.isHandled(upstream.d)) {
    const addrs = upstream.servers.map((s) => s.args[0] ?? '').join(', ');
    cx.report.note(upstream.d, `php-fpm at ${addrs}: replaced by phpgate's ${php.kind === 'default' ? 'default pool' : `pool ${php.pool.name}`}`);
    cx.report.doneTree(upstream.d);
  }

  const snippet = children.find(
    (c) => c.name === 'include' && isStockInclude(c.args[0] ?? '', cx.prefix) && stockName(c.args[0]!, cx.prefix) === DEBIAN_SNIPPET,
  );
  const ownTry = children.filter((c) => c.name === 'try_files').at(-1) ?? null;
  const split = splitPathInfo(cx, scope, snippet);
  // try_files is the route's own, as nginx runs it: a file it finds becomes the URI ($fastcgi_path_info empties).
  const tryFiles: Directive | null = ownTry;
  if (split !== null) out.split_path_info = split;
  // PATH_INFO is what a fastcgi_param says (Debian's snippet: $path_info, kept before try_files), else none.
  const pathInfo = pathInfoOf(cx, scope, snippet);
  if (pathInfo !== null) out.path_info = pathInfo;
  else if (split !== null) out.path_info = false;
  const script = scriptOf(cx, d, scope, routeRoot);
  if ('script' in script && script.script !== null) out.script = script.script;
  const failed = 'failed' in script ? script.failed : null;

  const index = children.find((c) => c.name === 'fastcgi_index');
  if (index !== undefined) {
    const dirs = loc.kind === LocationKind.Prefix || loc.kind === LocationKind.PrefixNoRegex || loc.match.endsWith('/');
    if (dirs && out.script === undefined) {
      cx.report.warn(
        index,
        `not translated: for a path ending in "/" nginx runs its ${index.args[0] ?? ''}; phpgate's php route runs the path itself`,
      );
    } else cx.report.note(index, 'not needed: no path ending in "/" reaches PHP here');
  }
  return { php: Object.keys(out).length === 0 ? true : out, target: php, failed, tryFiles, snippet: snippet !== undefined };
}

/**
 * The effective fastcgi_split_path_info (nginx inherits it), as a JavaScript regex; null: none (no PATH_INFO).
 * `unused`: the location's try_files $uri =404 lets no path with PATH_INFO through, so the split never applies.
 */
function splitPathInfo(cx: ImportContext, scope: Scope, snippet: Directive | undefined): string | null {
  let d: Directive | undefined;
  let regex: string | undefined;
  for (const list of scope.chain) {
    const own = list.filter((c) => c.name === 'fastcgi_split_path_info').at(-1);
    const inList = snippet !== undefined && list.includes(snippet);
    if (own === undefined && !inList) continue;
    // Both in one block: the later one is what nginx keeps.
    if (own !== undefined && (!inList || list.indexOf(own) > list.indexOf(snippet))) {
      d = own;
      regex = own.args[0];
    } else {
      d = snippet;
      regex = DEBIAN_SPLIT;
    }
    break;
  }
  if (d === undefined || regex === undefined) return null;
  const js = toJsRegex(regex, false);
  const groups = 'reason' in js ? -1 : (new RegExp(`${js.source}|`).exec('')?.length ?? 0) - 1;
  const report = !cx.report.isHandled(d) || d === snippet;
  if ('reason' in js || groups !== 2) {
    if (report) {
      cx.report.warn(
        d,
        `not translated (${'reason' in js ? js.reason : 'it needs two groups'}): failing closed, no PATH_INFO — a path after the script (/index.php/x) answers 404`,
      );
    }
    return null;
  }
  if (report) {
    const how =
      d === snippet
        ? `Debian's PHP snippet: php.split_path_info ${js.source}, try_files [$fastcgi_script_name, =404], PATH_INFO $path_info kept before it`
        : `php.split_path_info ${js.source}`;
    cx.report.note(d, `${how}${isStandardSplit(regex) ? '' : ' (nginx splits with this regex exactly)'}`);
  }
  return js.source;
}

/**
 * The PATH_INFO nginx passes: the effective fastcgi_param list's PATH_INFO value (Debian's snippet: `$path_info`),
 * or null when it passes none (stock fastcgi_params has no PATH_INFO).
 */
function pathInfoOf(cx: ImportContext, scope: Scope, snippet: Directive | undefined): string | null {
  const paramList = scope.chain.find((list) => list.some((c) => isParam(c) || isParamInclude(cx, c))) ?? [];
  const last = paramList.filter((c) => (isParam(c) && c.args[0] === 'PATH_INFO') || c === snippet).at(-1);
  if (last === undefined) return null;
  if (last === snippet) return '$path_info';
  const value = last.args[1] ?? '';
  if (!cx.report.isHandled(last)) cx.report.note(last, `php.path_info ${value}, evaluated when PHP is called (after try_files), as nginx`);
  return value;
}

/**
 * SCRIPT_FILENAME (the effective fastcgi_param list: the location's own, else the nearest enclosing one, as nginx
 * inherits it): the path's own script (default), a fixed front controller (`$document_root/index.php` → script
 * /index.php), or something the route cannot run.
 */
function scriptOf(cx: ImportContext, d: Directive, scope: Scope, routeRoot: string | null): { script: string | null } | { failed: string } {
  const paramList = scope.chain.find((list) => list.some((c) => isParam(c) || isParamInclude(cx, c))) ?? [];
  const last = paramList.filter((c) => (isParam(c) && c.args[0] === 'SCRIPT_FILENAME') || isScriptInclude(cx, c)).at(-1);
  const scriptName = paramList.filter((c) => isParam(c) && c.args[0] === 'SCRIPT_NAME').at(-1);
  if (last === undefined) {
    cx.report.warn(
      d,
      'no fastcgi_param SCRIPT_FILENAME here: php-fpm finds no script ("File not found") under nginx; phpgate runs the requested script',
    );
    return { script: null };
  }
  if (last.name === 'include') return { script: null };
  const value = last.args[1] ?? '';
  const done = (message: string | null): void => {
    if (cx.report.isHandled(last)) return;
    if (message === null) cx.report.done(last);
    else cx.report.note(last, message);
  };
  if (STANDARD_SCRIPT_FILENAMES.has(value)) {
    done(
      value.startsWith('$realpath_root')
        ? 'phpgate passes the docroot as written; if it is a symlink to a release directory, write the resolved path there'
        : null,
    );
    return { script: null };
  }
  const fixed =
    /^\$(?:document_root|realpath_root)(\/[^$]*\.php)$/.exec(value)?.[1] ??
    absoluteUnder(path.isAbsolute(value) ? cx.relocate(path.normalize(value)) : value, routeRoot ?? cx.draft.php.docroot);
  if (fixed !== null) {
    done(`php.script ${fixed}: every request here runs this front controller`);
    if (scriptName !== undefined && !cx.report.isHandled(scriptName)) {
      if (scriptName.args[1] === fixed) cx.report.note(scriptName, `SCRIPT_NAME is ${fixed}, the script phpgate runs`);
      else if (!/^\$fastcgi_script_name$/.test(scriptName.args[1] ?? ''))
        cx.report.warn(scriptName, `not translated: phpgate sets SCRIPT_NAME to the script it runs (${fixed})`);
      else cx.report.done(scriptName);
    }
    return { script: fixed };
  }
  if (!cx.report.isHandled(last)) cx.report.warn(last, "not translated: SCRIPT_FILENAME names no script phpgate can find under the route's root");
  return { failed: `SCRIPT_FILENAME ${value} at ${last.file}:${last.line}` };
}

function isParam(c: Directive): boolean {
  return c.name === 'fastcgi_param';
}

function isParamInclude(cx: ImportContext, c: Directive): boolean {
  return c.name === 'include' && isStockInclude(c.args[0] ?? '', cx.prefix) && PARAM_INCLUDES.has(stockName(c.args[0]!, cx.prefix));
}

function isScriptInclude(cx: ImportContext, c: Directive): boolean {
  return c.name === 'include' && isStockInclude(c.args[0] ?? '', cx.prefix) && SCRIPT_FILENAME_INCLUDES.has(stockName(c.args[0]!, cx.prefix));
}

/** `/srv/app/public/index.php` under the root `/srv/app/public` → `/index.php`; null otherwise. */
function absoluteUnder(value: string, root: string): string | null {
  if (!path.isAbsolute(value) || value.includes('$') || !value.endsWith('.php')) return null;
  const rel = path.relative(root, path.normalize(value));
  return rel.startsWith('..') || path.isAbsolute(rel) ? null : `/${rel.split(path.sep).join('/')}`;
}

/** The pool a fastcgi_pass target other than the default one runs on, named after its upstream or socket. */
export function poolFor(cx: ImportContext, key: string, target: string): PoolDraft {
  const existing = cx.pools.get(key);
  if (existing !== undefined) return existing;
  const base = (
    cx.upstreams.has(target) ? target : target.startsWith('unix:') ? path.basename(target).replace(/\.sock$/, '') : `pool-${target.split(':').at(-1)}`
  )
    .replace(/[^A-Za-z0-9_-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '');
  const stem = poolName.parse(base) === INVALID || base.toLowerCase() === DEFAULT_POOL_NAME ? 'pool' : base;
  const taken = new Set([...cx.pools.values()].map((p) => p.name));
  let name = stem;
  for (let i = 2; taken.has(name); i++) name = `${stem}-${i}`;
  const pool: PoolDraft = { name, patterns: [], env: {} };
  cx.pools.set(key, pool);
  cx.draft.pools.push(pool);
  return pool;
}

/** `proxy_pass` → the route's proxy, or why the route cannot fetch what nginx fetches. */
export function proxyAction(
  cx: ImportContext,
  d: Directive,
  loc: Location,
  pass: Directive,
  scope: Scope,
): { proxy: ProxyDraft; rest: Directive[] } | { failed: string } {
  const url = pass.args[0] ?? '';
  const m = /^(https?):\/\/([^/]+)(\/.*)?$/.exec(url);
  if (m === null || url.includes('$')) {
    cx.report.warn(pass, `not translated: proxy targets are http(s)://host:port URLs, not "${url}"`);
    return { failed: `proxy_pass ${url}` };
  }
  const [, scheme, hostPart, uri] = m as unknown as [string, string, string, string | undefined];
  const upstream = cx.upstreams.get(hostPart);
  const targets = upstream === undefined ? [`${scheme}://${hostPart}`] : upstream.servers.map((s) => `${scheme}://${s.args[0] ?? ''}`);
  // A unix socket would parse as host "unix": refused explicitly, upstreams speak TCP.
  const bad = targets.filter((t) => t.includes('unix:') || httpUrl.parse(t) === INVALID);
  if (bad.length > 0 || targets.length === 0) {
    cx.report.warn(pass, `not translated: proxy targets are http(s)://host:port URLs (${bad.join(', ') || 'no servers'})`);
    return { failed: `proxy_pass ${url}` };
  }
  let strip = '';
  const notes: string[] = [];
  if (uri !== undefined && uri !== loc.match) {
    const prefix = loc.kind === LocationKind.Prefix || loc.kind === LocationKind.PrefixNoRegex;
    if (prefix && uri === '/') strip = loc.match.replace(/\/$/, '');
    else notes.push(`nginx replaces ${loc.match} with ${uri}; phpgate can only strip a prefix, so paths reach the upstream unchanged`);
  }
  const websockets = (d.children ?? []).some((c) => c.name === 'proxy_set_header' && c.args[0]?.toLowerCase() === 'upgrade');
  const settings: ProxySettings = {};
  const rest = proxyDirectives(cx, d, pass, scope, settings);
  if (upstream !== undefined) upstreamBlock(cx, upstream, settings);
  const host = settings.host_header === 'target' ? ", host_header target (no proxy_set_header Host: nginx sends the target's)" : '';
  const summary = `proxy: ${targets.join(', ')}${websockets ? ', websockets' : ''}${strip === '' ? '' : `, strip_prefix ${strip}`}${host}`;
  if (notes.length > 0) cx.report.warn(pass, `${summary}; ${notes.join('; ')}`);
  else cx.report.note(pass, summary);
  const proxy: ProxyDraft = {
    targets,
    ...(websockets ? { websockets: true as const } : {}),
    ...(strip === '' ? {} : { strip_prefix: strip }),
    ...settings,
  };
  return { proxy, rest };
}
