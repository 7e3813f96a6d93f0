/**
 * URL → target, as the nginx front-controller recipe decides it:
 *
 *   index index.php index.html;
 *   location / { try_files $uri $uri/ /index.php?$query_string; }
 *   location ~ [^/]\.php(/|$) {
 *     fastcgi_split_path_info ^(.+?\.php)(/.*)$;
 *     try_files $fastcgi_script_name =404;
 *   }
 *
 * plus what nginx leaves to the admin and we never allow: dotfiles, paths outside the docroot. Entries of
 * try_files are compiled once; resolving a request does per-request work only (a few stat calls).
 */
import type fs from 'node:fs';
import path from 'node:path';
import { compileDenyPattern, compilePattern, type PathMatcher } from '../../config/pattern.js';
import type { PhpConfig, PoolConfig, StaticConfig } from '../../config/types.js';
import type { DocrootGuard, FileInfoCache } from '../http/file-cache.js';
import { encodePath } from '../http/uri.js';

export const RouteKind = { Php: 'php', Static: 'static', Redirect: 'redirect', Error: 'error' } as const;

export interface PhpRoute {
  readonly kind: typeof RouteKind.Php;
  readonly pool: string;
  readonly scriptName: string;
  readonly pathInfo: string | null;
  readonly scriptFilename: string;
  readonly queryString: string;
}
export interface StaticRoute {
  readonly kind: typeof RouteKind.Static;
  readonly file: string;
  readonly stat: fs.Stats;
}
export interface RedirectRoute {
  readonly kind: typeof RouteKind.Redirect;
  readonly status: number;
  /** Path + query; the front makes it absolute as nginx does. */
  readonly location: string;
}
export interface ErrorRoute {
  readonly kind: typeof RouteKind.Error;
  readonly status: number;
  readonly why: string;
}
export type Route = PhpRoute | StaticRoute | RedirectRoute | ErrorRoute;

/** nginx's PHP location: `location ~ [^/]\.php(/|$)`. */
const PHP_LOCATION = /[^/]\.php(\/|$)/;
/** nginx's `fastcgi_split_path_info ^(.+?\.php)(/.*)$`: the shortest prefix ending in .php, then the rest. */
const SPLIT_PATH_INFO = /^(.+?\.php)(\/.*)$/;
const STATIC_ROUTES_MAX = 10_000;
/** nginx allows 10 internal redirects before answering 500 "rewrite or internal redirection cycle". */
const MAX_INTERNAL_REDIRECTS = 10;

type TryEntry =
  | { readonly kind: 'file'; readonly template: string } // $uri, $uri.php, /maintenance.html, /cache$uri.html …
  | { readonly kind: 'dir' } // $uri/
  | { readonly kind: 'code'; readonly status: number } // =404 (last only)
  | { readonly kind: 'uri'; readonly path: string; readonly query: string | null }; // /index.php?$query_string (last only)

function compileTryFiles(entries: readonly string[]): TryEntry[] {
  return entries.map((e, i): TryEntry => {
    const last = i === entries.length - 1;
    if (e === '$uri/') return { kind: 'dir' };

    if (last && /^=\d{3}$/.test(e)) return { kind: 'code', status: Number(e.slice(1)) };
    if (last && e.startsWith('/')) {
      const q = e.indexOf('?');
      return q === -1 ? { kind: 'uri', path: e, query: null } : { kind: 'uri', path: e.slice(0, q), query: e.slice(q + 1) };
    }
    // config/ validated the list: anything else names a file, $uri standing for the request path.
    return { kind: 'file', template: e };
  });
}

export interface RouterOptions {
  readonly php: PhpConfig;
  readonly pools: readonly PoolConfig[];
  readonly static: StaticConfig;
  /** Name of the pool that takes paths no pattern matches. */
  readonly defaultPool: string;
  readonly files: FileInfoCache;
  readonly guard: DocrootGuard;
}

/**
 * PHP source under another extension: nginx's recipe would send `x.PHP`, `x.phtml` or `x.php5` as text (the PHP
 * location is case-sensitive and `.php` only), with whatever secrets the code holds. Never served as a file.
 */
export const PHP_SOURCE = /\.(?:php[0-9]?|phtml|phar|phps)$/i;

export class Router {
  readonly #root: string;
  readonly #index: readonly string[];
  readonly #tryFiles: readonly TryEntry[];
  readonly #pools: ReadonlyArray<{ readonly name: string; readonly match: PathMatcher }>;
  readonly #defaultPool: string;
  readonly #files: FileInfoCache;
  readonly #deny: readonly PathMatcher[];
  readonly #denied: ErrorRoute;
  readonly #guard: DocrootGuard;
  /**
   * Static answers by request path, reused while the file cache still holds the very stat they were made from:
   * a change on disk is then seen exactly when the file cache sees it (within FILE_INFO_VALID_MS).
   */
  readonly #staticRoutes = new Map<string, StaticRoute>();

  constructor(o: RouterOptions) {
    this.#root = o.php.docroot;
    this.#files = o.files;
    this.#deny = o.static.deny.map(compileDenyPattern);
    this.#denied = { kind: RouteKind.Error, status: o.static.deny_status, why: 'denied' };
    this.#guard = o.guard;
    this.#index = o.php.index;
    this.#tryFiles = compileTryFiles(o.php.try_files);
    this.#pools = o.pools.flatMap((p) => p.patterns.map((pattern) => ({ name: p.name, match: compilePattern(pattern) })));
    this.#defaultPool = o.defaultPool;
  }

  get documentRoot(): string {
    return this.#root;
  }

  /** The pool for a script path: first matching pattern wins, else the default pool. */
  poolFor(uriPath: string): string {
    for (const p of this.#pools) if (p.match(uriPath)) return p.name;
    return this.#defaultPool;
  }

  /** `uriPath` is decoded and normalised (see uri.ts); `query` is the raw query string. */
  resolve(uriPath: string, query: string): Route {
    const known = this.#staticRoutes.get(uriPath);
    if (known !== undefined && this.#files.stat(known.file) === known.stat) return known;
    const route = this.#resolve(uriPath, query);
    if (route.kind === RouteKind.Static) {
      // Only static answers: they depend on the path and the files alone (a PHP route carries the query).
      if (this.#staticRoutes.size >= STATIC_ROUTES_MAX) this.#staticRoutes.clear();
      this.#staticRoutes.set(uriPath, route);
    }
    return route;
  }

  /** What every request path is refused for, whatever a route says (routes.ts asks too), or null. */
  refused(uriPath: string): ErrorRoute | null {
    // Dotfiles and dot-directories (.env, .git/config, .htaccess) are never served or run, whatever try_files
    // says; the top-level /.well-known directory is the one public exception (ACME, security.txt). Only that
    // segment is exempt: a dotfile below it (/.well-known/.htaccess) is still denied.
    if (afterWellKnown(uriPath).indexOf('/.') !== -1) return this.#denied;
    // Backslashes are path separators to Windows-born PHP code and to some apps' own routers; refuse them
    // rather than let `..\` style tricks reach either.
    if (uriPath.indexOf('\\') !== -1) return this.#denied;
    // static.deny (/vendor/*, *.sql, composer.json …) holds for every request, as nginx's `location … { deny all; }`.
    for (const denied of this.#deny) if (denied(uriPath)) return this.#denied;
    return null;
  }

  get deniedStatus(): number {
    return this.#denied.status;
  }

  #resolve(uriPath: string, query: string): Route {
    const refused = this.refused(uriPath);
    if (refused !== null) return refused;
    let current = uriPath;
    let args = query;
    for (let redirects = 0; redirects <= MAX_INTERNAL_REDIRECTS; redirects++) {
      if (PHP_LOCATION.test(current)) return this.#php(current, args, uriPath);
      const next = this.#tryFilesLocation(current, args, uriPath);
      if (next.kind !== 'internal') return next.route;
      current = next.path;
      args = next.query;
    }
    return { kind: RouteKind.Error, status: 500, why: 'internal redirection cycle' };
  }

  /** `location ~ [^/]\.php(/|$)` with `try_files $fastcgi_script_name =404`. */
  /** `requestPath` (the URI the client asked for) picks the pool: a front controller serves every URL. */
  #php(uriPath: string, args: string, requestPath: string): Route {
    const m = SPLIT_PATH_INFO.exec(uriPath);
    const scriptName = m === null ? uriPath : m[1]!;
    const pathInfo = m === null ? '' : m[2]!;
    const file = this.#fsPath(scriptName);
    // Only an existing regular file whose own name ends in .php ever runs: /uploads/x.jpg/y.php splits to
    // nothing (no ".php/" in it), so x.jpg is never handed to PHP (php-cgi has no security.limit_extensions).
    if (!this.#isFile(file)) return { kind: RouteKind.Error, status: 404, why: 'no such script' };
    // Without follow_symlinks a script is held to the rule files are: one that resolves out of the docroot is
    // never run (nginx's try_files refuses it too under disable_symlinks).
    if (!this.#guard.allows(file)) return this.#denied;
    return { kind: RouteKind.Php, pool: this.poolFor(requestPath), scriptName, pathInfo, scriptFilename: file, queryString: args };
  }

  #tryFilesLocation(
    uriPath: string,
    args: string,
    requestPath: string,
  ): { kind: 'route'; route: Route } | { kind: 'internal'; path: string; query: string } {
    for (const entry of this.#tryFiles) {
      switch (entry.kind) {
        case 'file': {
          const candidate = entry.template.replaceAll('$uri', uriPath);
          const st = this.#files.stat(this.#fsPath(candidate));
          if (st === null) break;
          if (st.isDirectory()) {
            if (entry.template !== '$uri') break;
            // nginx's static module: a directory without its trailing slash is redirected to it.
            if (!uriPath.endsWith('/')) {
              return {
                kind: 'route',
                route: { kind: RouteKind.Redirect, status: 301, location: encodePath(uriPath) + '/' + (args === '' ? '' : '?' + args) },
              };
            }
            return { kind: 'route', route: this.#index_(uriPath, args, requestPath) };
          }
          if (!st.isFile()) break;
          // `$uri.php` (clean URLs) runs the script it found rather than sending its source as nginx would.
          if (candidate.endsWith('.php')) return { kind: 'route', route: this.#php(candidate, args, requestPath) };
          return { kind: 'route', route: this.#static(this.#fsPath(candidate), st) };
        }
        case 'dir': {
          const dir = uriPath.endsWith('/') ? uriPath : uriPath + '/';
          const st = this.#files.stat(this.#fsPath(dir));
          if (st === null || !st.isDirectory()) break;
          return { kind: 'route', route: this.#index_(dir, args, requestPath) };
        }
        case 'code':
          return { kind: 'route', route: { kind: RouteKind.Error, status: entry.status, why: 'try_files' } };
        case 'uri':
          return { kind: 'internal', path: entry.path, query: entry.query === null ? '' : substituteArgs(entry.query, args) };
      }
    }
    return { kind: 'route', route: { kind: RouteKind.Error, status: 404, why: 'not found' } };
  }

  /** nginx's index module: the first index file that exists; none → 403 (no listings). */
  #index_(dir: string, args: string, requestPath: string): Route {
    for (const name of this.#index) {
      const uri = dir + name;
      const st = this.#files.stat(this.#fsPath(uri));
      if (st === null || !st.isFile()) continue;
      if (PHP_LOCATION.test(uri)) return this.#php(uri, args, requestPath);
      return this.#static(this.#fsPath(uri), st);
    }
    return { kind: RouteKind.Error, status: 403, why: 'directory index forbidden' };
  }

  /** A file to send as is, unless it is PHP source or (without follow_symlinks) a link out of the docroot. */
  #static(file: string, stat: fs.Stats): Route {
    if (PHP_SOURCE.test(file)) return this.#denied;
    if (!this.#guard.allows(file)) return this.#denied;
    return { kind: RouteKind.Static, file, stat };
  }

  #isFile(p: string): boolean {
    const st = this.#files.stat(p);
    return st !== null && st.isFile();
  }

  /** Normalised URI paths never contain `..`, so joining keeps them inside the docroot. */
  #fsPath(uriPath: string): string {
    return path.join(this.#root, uriPath);
  }
}

const WELL_KNOWN = '/.well-known';

/** The path with a leading /.well-known segment removed (that one dot-directory is public), else the path. */
function afterWellKnown(uriPath: string): string {
  if (!uriPath.startsWith(WELL_KNOWN)) return uriPath;
  if (uriPath.length === WELL_KNOWN.length) return '';
  return uriPath.charCodeAt(WELL_KNOWN.length) === 47 /* '/' */ ? uriPath.slice(WELL_KNOWN.length) : uriPath;
}

function substituteArgs(template: string, args: string): string {
  return template.replaceAll('$query_string', args).replaceAll('$args', args);
}
