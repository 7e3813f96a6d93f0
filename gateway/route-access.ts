/**
 * The access phase of routes (nginx's ngx_http_access_module and auth_basic): each route's rules compiled once at
 * load, checked for a request that reached the route. `satisfy all`, as nginx's default: an address refused is
 * 403 before credentials are asked for.
 */
import type { IncomingMessage } from 'node:http';
import { BlockList, isIPv4 } from 'node:net';
import type { RouteAccessRule } from '../config/types.js';
import type { ClientInfo } from './http/client-address.js';
import type { Location } from './route/locations.js';
import type { AccessGuards } from './route/routes.js';

type Rule = { readonly allow: boolean; readonly all: true } | { readonly allow: boolean; readonly all: false; readonly list: BlockList };

function compile(rules: readonly RouteAccessRule[]): Rule[] {
  return rules.map((r) => {
    if (r.who === 'all') return { allow: r.allow, all: true };
    const list = new BlockList();
    const slash = r.who.indexOf('/');
    const addr = slash === -1 ? r.who : r.who.slice(0, slash);
    const type = isIPv4(addr) ? 'ipv4' : 'ipv6';
    if (slash === -1) list.addAddress(addr, type);
    else list.addSubnet(addr, Number(r.who.slice(slash + 1)), type);
    return { allow: r.allow, all: false, list };
  });
}

/** An IPv4-mapped IPv6 client (::ffff:a.b.c.d) is checked as the IPv4 address, as nginx does. */
function plain(address: string): { address: string; type: 'ipv4' | 'ipv6' } {
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return isIPv4(v4) ? { address: v4, type: 'ipv4' } : { address, type: 'ipv6' };
}

export class RouteAccess implements AccessGuards {
  readonly #rules = new Map<readonly RouteAccessRule[], Rule[]>();

  constructor(locations: readonly Location[]) {
    for (const l of locations) if (l.access !== null && !this.#rules.has(l.access)) this.#rules.set(l.access, compile(l.access));
  }

  check(loc: Location, req: IncomingMessage, client: ClientInfo): null | { readonly status: 403 } | { readonly status: 401; readonly realm: string } {
    if (loc.access !== null && !this.#allows(this.#rules.get(loc.access)!, client.address)) return FORBIDDEN;
    if (loc.authBasic !== null) return { status: 401, realm: loc.authBasic.realm };
    void req;
    return null;
  }

  #allows(rules: readonly Rule[], address: string): boolean {
    const a = plain(address);
    for (const r of rules) if (r.all || r.list.check(a.address, a.type)) return r.allow;
    return true;
  }
}

const FORBIDDEN = { status: 403 } as const;
