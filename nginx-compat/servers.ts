/**
 * The `server` blocks of an nginx configuration, and which one to import.
 *
 * phpgate serves one site. With several server blocks the user names one (`--server NAME`, matched against
 * server_name as nginx does: exact, `*.example.com`, `.example.com`, `~regex`). A plain-HTTP server that only
 * redirects to https (`return 301 https://…`) is not a site of its own when an ssl server answers the same
 * names: it becomes that server's `server.redirect_http_port`.
 */
import { NginxImportError } from './errors.js';
import type { Directive } from './parse.js';

export interface Listen {
  readonly d: Directive;
  /** null: every address (`80`, `*:80`, `0.0.0.0:80`, `[::]:80`). */
  readonly host: string | null;
  readonly port: number;
  readonly ssl: boolean;
  readonly http2: boolean;
  /** Parameters after the address, as written. */
  readonly params: readonly string[];
}

export interface ServerBlock {
  readonly d: Directive;
  readonly names: readonly string[];
  readonly listens: readonly Listen[];
  readonly ssl: boolean;
  /** The `return 30x https://…` of a server that does nothing else, or null. */
  readonly redirect: Directive | null;
}

/** nginx listens on *:80 when a server has no listen directive (and runs as root). */
const DEFAULT_LISTEN_PORT = 80;
const WILDCARD_HOSTS = new Set(['*', '0.0.0.0', '::', '[::]']);

export function parseListen(d: Directive): Listen | { readonly error: string } {
  const [address, ...params] = d.args;
  if (address === undefined) return { error: 'listen without an address' };
  if (address.startsWith('unix:')) return { error: 'listening on a unix socket is not supported (phpgate listens on TCP)' };
  let host: string | null;
  let portText: string | undefined;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(address);
  if (v6 !== null) {
    host = v6[1]!;
    portText = v6[2];
  } else if (/^\d+$/.test(address)) {
    host = null;
    portText = address;
  } else {
    const colon = address.lastIndexOf(':');
    host = colon === -1 ? address : address.slice(0, colon);
    portText = colon === -1 ? undefined : address.slice(colon + 1);
  }
  const port = portText === undefined ? DEFAULT_LISTEN_PORT : Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return { error: `"${address}" has no valid port` };
  if (host !== null && WILDCARD_HOSTS.has(host)) host = null;
  return { d, host, port, ssl: params.includes('ssl'), http2: params.includes('http2'), params };
}

export function readServers(httpScope: readonly Directive[]): ServerBlock[] {
  return httpScope
    .filter((d) => d.name === 'server' && d.children !== null)
    .map((d) => {
      const children = d.children ?? [];
      const names = children.filter((c) => c.name === 'server_name').flatMap((c) => c.args);
      const listens = children
        .filter((c) => c.name === 'listen')
        .map(parseListen)
        .filter((l): l is Listen => !('error' in l));
      const ssl = listens.some((l) => l.ssl) || children.some((c) => c.name === 'ssl' && c.args[0] === 'on');
      return { d, names, listens, ssl, redirect: ssl ? null : redirectOnly(children) };
    });
}

const REDIRECT_CODES = new Set(['301', '302', '303', '307', '308']);
/** What may stand beside the redirect in a redirect-only server. */
const REDIRECT_SERVER_EXTRAS = new Set(['listen', 'server_name', 'access_log', 'error_log']);

function httpsReturn(d: Directive): boolean {
  return d.name === 'return' && REDIRECT_CODES.has(d.args[0] ?? '') && (d.args[1] ?? '').startsWith('https://');
}

/** The https redirect of a server whose every request is redirected (`return`, or `location / { return … }`). */
function redirectOnly(children: readonly Directive[]): Directive | null {
  let found: Directive | null = null;
  for (const c of children) {
    if (REDIRECT_SERVER_EXTRAS.has(c.name)) continue;
    if (httpsReturn(c)) {
      found ??= c;
      continue;
    }
    const inner = c.children ?? [];
    const onlyReturn = inner.length === 1 && httpsReturn(inner[0]!);
    // `location / { return 301 https://…; }`, or certbot's `if ($host = example.com) { return 301 https://…; }`
    if (onlyReturn && ((c.name === 'location' && c.args.length === 1 && c.args[0] === '/') || c.name === 'if')) {
      found ??= inner[0]!;
      continue;
    }
    // certbot leaves `return 404;` after its `if`: requests for other hosts, not a site.
    if (c.name === 'return' && c.args[0] === '404' && found !== null) continue;
    return null;
  }
  return found;
}

/** Whether nginx's server_name `pattern` answers `host`. */
function nameMatches(pattern: string, host: string): boolean {
  const h = host.toLowerCase();
  const p = pattern.toLowerCase();
  if (p.startsWith('~')) {
    try {
      return new RegExp(pattern.slice(1), 'i').test(host);
    } catch (err) {
      void err; // PCRE-only syntax: nginx may accept it, but it cannot be tested here; treated as no match
      return false;
    }
  }
  if (p.startsWith('*.')) return h.endsWith(p.slice(1));
  if (p.endsWith('.*')) return h.startsWith(p.slice(0, -1));
  if (p.startsWith('.')) return h === p.slice(1) || h.endsWith(p);
  return h === p;
}

function catchAll(s: ServerBlock): boolean {
  return s.names.length === 0 || s.names.every((n) => n === '_' || n === '' || n === '""');
}

/** Whether two servers answer (some of) the same names. */
function sameSite(a: ServerBlock, b: ServerBlock): boolean {
  if (catchAll(a) || catchAll(b)) return true;
  return a.names.some((n) => b.names.some((m) => n.toLowerCase() === m.toLowerCase()));
}

/** `server_name a b (listen 80, 443 ssl)` */
export function describeServerNames(s: ServerBlock): string {
  const names = s.names.length === 0 ? '(no server_name)' : s.names.join(' ');
  const listens = s.listens.length === 0 ? `${DEFAULT_LISTEN_PORT}` : s.listens.map((l) => `${l.port}${l.ssl ? ' ssl' : ''}`).join(', ');
  return `server_name ${names} (listen ${listens})`;
}

function describeServer(s: ServerBlock): string {
  return `${s.d.file}:${s.d.line}: ${describeServerNames(s)}`;
}

export interface Choice {
  readonly chosen: ServerBlock;
  /** The redirect-only server whose port becomes server.redirect_http_port. */
  readonly redirectFrom: ServerBlock | null;
  /** Every other server: not imported. */
  readonly others: readonly ServerBlock[];
}

export function chooseServer(servers: readonly ServerBlock[], file: string, wanted: string | undefined): Choice {
  if (servers.length === 0) throw new NginxImportError(`${file}: no server block to import`);
  const redirects = servers.filter((s) => s.redirect !== null && servers.some((o) => o !== s && o.ssl && sameSite(s, o)));
  let candidates = servers.filter((s) => !redirects.includes(s));
  if (wanted !== undefined) {
    candidates = candidates.filter((s) => s.names.some((n) => nameMatches(n, wanted)));
    if (candidates.length === 0) {
      throw new NginxImportError(
        `${file}: no server block answers "${wanted}"; the server blocks are:\n${servers.map((s) => `  ${describeServer(s)}`).join('\n')}`,
      );
    }
  }
  // The same names on plain HTTP and on TLS, both full sites: phpgate serves one port, the TLS one.
  if (candidates.length > 1 && wanted !== undefined && candidates.filter((s) => s.ssl).length === 1) {
    candidates = candidates.filter((s) => s.ssl);
  }
  if (candidates.length > 1) {
    const how = wanted === undefined ? 'choose one with --server NAME' : `"${wanted}" matches several; make NAME more specific`;
    throw new NginxImportError(
      `${file} has ${candidates.length} server blocks; ${how}:\n${candidates.map((s) => `  ${describeServer(s)}`).join('\n')}`,
    );
  }
  const chosen = candidates[0]!;
  const redirectFrom = chosen.ssl ? (redirects.find((r) => sameSite(r, chosen)) ?? null) : null;
  return { chosen, redirectFrom, others: servers.filter((s) => s !== chosen && s !== redirectFrom) };
}
