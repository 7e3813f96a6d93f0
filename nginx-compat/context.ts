/**
 * What one import knows while it walks the configuration: the draft it fills, the report, the definitions used
 * by reference (upstream, limit_req_zone, fastcgi_cache_path, named locations, maps and variables) and what is
 * collected for the last pass. Handlers in directives.ts and routes.ts read and write it; translate.ts creates it
 * and finishes the draft.
 */
import path from 'node:path';
import type { RateLimitKey } from '../config/types.js';
import { newDraft, type Draft, type HeaderKeysDraft, type PoolDraft } from './emit.js';
import { locationGlobs, type Location } from './location.js';
import { NGINX_CONF_DIR, type Directive } from './parse.js';
import type { GlobResult } from './regex-glob.js';
import { Report } from './report.js';
import { Variables } from './variables.js';

export interface ImportOptions {
  /** server_name of the server block to import, when the file has several. */
  readonly server?: string;
  /**
   * Use this directory as php.docroot instead of the one nginx's `root` names: for moving a site to another
   * path, and for tests (fixtures name /var/www/…). Resolved against the current directory.
   */
  readonly root?: string;
  /**
   * nginx's configuration prefix (default /etc/nginx): relative includes not found beside the including file,
   * auth_basic_user_file and certificate paths are resolved against it, as nginx does.
   */
  readonly prefix?: string;
}

/** Where a directive stands: its level, the location (if any), the PHP target it feeds, its enclosing lists. */
export interface Scope {
  readonly level: 'main' | 'http' | 'server' | 'location';
  readonly loc: Location | null;
  /** The location (or server) block the directive is in. */
  readonly d: Directive | null;
  /** In a location with fastcgi_pass: the default pool or a named one. */
  readonly php: PhpTarget | null;
  /** Enclosing directive lists, innermost first: for directives that inherit (fastcgi_cache_valid). */
  readonly chain: readonly (readonly Directive[])[];
}

/** `main`: the location that runs every script (`\.php$`); its directives apply to whatever reaches PHP. */
export type PhpTarget = { readonly kind: 'default'; readonly main: boolean } | { readonly kind: 'pool'; readonly pool: PoolDraft };

/** One entry of a first-match-wins list, with its place in nginx's location precedence (see location.ts rank()). */
export interface Ranked<T> {
  readonly rank: readonly [number, number];
  readonly pattern: string;
  readonly d: Directive;
  readonly value: T;
}

export interface UpstreamDef {
  readonly d: Directive;
  readonly servers: readonly Directive[];
}

export interface RateZone {
  readonly d: Directive;
  /** The nginx key, e.g. $binary_remote_addr. */
  readonly key: string;
  /** What phpgate counts by for that key; null: nothing phpgate can count by (the rule falls back to 'ip'). */
  readonly counts: RateLimitKey | null;
  readonly points: number;
  readonly duration_s: number;
}

export interface ConnZone {
  readonly d: Directive;
  /** The nginx key, e.g. $binary_remote_addr. */
  readonly key: string;
  /** Keyed on the client address: the only limit_conn phpgate has (server.limits.connections_per_ip). */
  readonly perAddress: boolean;
}

export interface CacheZone {
  readonly d: Directive;
  readonly maxBytes: number | null;
  /** inactive= (nginx's default 10m), in seconds; null: not an nginx time. */
  readonly inactiveS: number | null;
}

export type Handler = (cx: ImportContext, d: Directive, scope: Scope) => void;

/** Every path: what server-wide directives, and the main PHP location's, apply to. */
const ALL: GlobResult = { ok: true, globs: ['/*'], approximations: [] };

export function isMainPhp(scope: Scope): boolean {
  return scope.php?.kind === 'default' && scope.php.main;
}

export class ImportContext {
  readonly report: Report;
  readonly opts: ImportOptions;
  readonly #order = new Map<Directive, number>();
  draft: Draft = newDraft('');
  /** The server's `root` as written (php.docroot may be relocated by opts.root). */
  serverRoot: string | null = null;
  /** The imported server block's directives (http-level ones that the server overrides ask). */
  serverChildren: readonly Directive[] = [];
  /** The listen that asked for the PROXY protocol (server.proxy_protocol), or null. */
  proxyProtocol: Directive | null = null;

  readonly upstreams = new Map<string, UpstreamDef>();
  readonly rateZones = new Map<string, RateZone>();
  readonly connZones = new Map<string, ConnZone>();
  readonly cacheZones = new Map<string, CacheZone>();
  readonly named = new Map<string, Directive>();
  /** Pools by fastcgi_pass target. */
  readonly pools = new Map<string, PoolDraft>();
  /** The main PHP location and its fastcgi_pass target: that target is the default pool. */
  mainKey: string | null = null;
  mainPhp: Directive | null = null;
  readonly vars = new Variables();
  /** Location-level rewrites that match dotfiles: warned unless a location of the site refuses dotfiles first. */
  readonly dotfileRewrites: Directive[] = [];
  /** Server-level `set` constants (variables.ts serverConstants), for roots and aliases. */
  constants: ReadonlyMap<string, string> = new Map();
  /** The server's and http's directive lists: add_headers there become global headers.* keys. */
  readonly globalLevels = new Set<readonly Directive[]>();

  readonly cacheControl: Ranked<string>[] = [];
  /** The first fastcgi_cache that made rules: where cache-wide notes go. */
  firstCache: Directive | null = null;
  /** cache.lock_ms and what set it: one for every rule, the first fastcgi_cache decides. */
  cacheLock: { readonly ms: number; readonly d: Directive } | null = null;
  /** The add_header that set cache.header. */
  cacheHeader: Directive | null = null;
  /** Which add_header set each key of the top-level headers: phpgate sends one value. */
  readonly headerOrigins = new Map<HeaderKeysDraft, Map<string, Directive>>();
  serverTryFiles: Directive | null = null;
  cert: Directive | null = null;
  key: Directive | null = null;
  readonly precompressed: boolean[] = [];

  constructor(tree: readonly Directive[], opts: ImportOptions) {
    this.opts = opts;
    const walk = (list: readonly Directive[]): void => {
      for (const d of list) {
        this.#order.set(d, this.#order.size);
        walk(d.children ?? []);
      }
    };
    walk(tree);
    this.report = new Report(this.#order);
  }

  /** nginx's configuration prefix (ImportOptions.prefix). */
  get prefix(): string {
    return this.opts.prefix ?? NGINX_CONF_DIR;
  }

  /** A path inside the server's root (as the nginx file names it) moved under php.docroot (relocated by opts.root). */
  relocate(abs: string): string {
    const serverRoot = this.serverRoot === null ? null : path.normalize(this.serverRoot).replace(/(.)\/$/, '$1');
    if (serverRoot === null || (abs !== serverRoot && !abs.startsWith(`${serverRoot}/`))) return abs;
    return this.draft.php.docroot + abs.slice(serverRoot.length);
  }

  /** The directive's position in the configuration as read (includes expanded). */
  orderOf(d: Directive): number {
    return this.#order.get(d) ?? Number.MAX_SAFE_INTEGER;
  }

  /** The URL globs a directive in `scope` applies to: the location's, or every path for server-wide ones. */
  patterns(scope: Scope): GlobResult {
    if (scope.level !== 'location' || scope.loc === null || isMainPhp(scope)) return ALL;
    return locationGlobs(scope.loc);
  }

  /** A fastcgi_pass target, named by its upstream block when it has one. */
  fastcgiKey(target: string): string {
    return this.upstreams.has(target) ? `upstream ${target}` : target;
  }

  /** The nearest list (innermost scope first) that holds `name`, as nginx inherits array directives. */
  inherited(name: string, scope: Scope): Directive[] {
    for (const list of scope.chain) {
      const found = list.filter((d) => d.name === name);
      if (found.length > 0) return found;
    }
    return [];
  }
}
