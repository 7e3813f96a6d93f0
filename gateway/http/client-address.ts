/**
 * Who the client is, as nginx's real_ip module decides it: the TCP peer, unless the peer is a trusted proxy
 * (server.trusted_proxies). A trusted peer's PROXY protocol header names the client; then, while the address
 * so far is trusted, X-Forwarded-For is walked from the right to the first untrusted address
 * (real_ip_recursive on), and a trusted peer's `X-Forwarded-Proto: https` makes the request HTTPS.
 * From anyone else those headers are only headers: they reach PHP as HTTP_* and change nothing.
 */
import type { IncomingMessage } from 'node:http';
import net from 'node:net';

export interface ClientInfo {
  /** REMOTE_ADDR: plain IPv4 for IPv4 peers, never ::ffff:-mapped. */
  readonly address: string;
  readonly port: number;
  readonly https: boolean;
}

/** What a PROXY protocol header said about one connection: the client's address and port. */
export interface ProxiedPeer {
  readonly address: string;
  readonly port: number;
}

/** PROXY protocol results by connection (the raw TCP socket: TLS sockets are looked up through their parent). */
const proxied = new WeakMap<object, ProxiedPeer>();

export function rememberProxiedPeer(socket: net.Socket, peer: ProxiedPeer): void {
  proxied.set(socket, peer);
}

function proxiedPeerOf(socket: net.Socket): ProxiedPeer | undefined {
  if (proxied.has(socket)) return proxied.get(socket);
  // A TLS socket (HTTP/1.1 over TLS, or an HTTP/2 session's) wraps the TCP socket the PROXY header came on.
  const parent = (socket as { _parent?: unknown })._parent;
  return typeof parent === 'object' && parent !== null ? proxied.get(parent) : undefined;
}

/** A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d; PHP apps expect the plain IPv4 form. */
export function unmapIPv4(addr: string): string {
  return addr.startsWith('::ffff:') && addr.indexOf('.') !== -1 ? addr.slice(7) : addr;
}

export class TrustedProxies {
  readonly #list = new net.BlockList();
  readonly #empty: boolean;

  constructor(cidrs: readonly string[]) {
    this.#empty = cidrs.length === 0;
    for (const entry of cidrs) {
      const slash = entry.indexOf('/');
      const addr = slash < 0 ? entry : entry.slice(0, slash);
      const family = net.isIPv6(addr) ? 'ipv6' : 'ipv4';
      if (slash < 0) this.#list.addAddress(addr, family);
      else this.#list.addSubnet(addr, Number(entry.slice(slash + 1)), family);
    }
  }

  /** An address (plain IPv4 or IPv6) is one of the trusted proxies. */
  trusts(address: string): boolean {
    if (this.#empty || address === '') return false;
    const family = net.isIPv6(address) ? 'ipv6' : net.isIPv4(address) ? 'ipv4' : null;
    if (family === null) return false;
    // An IPv4-mapped IPv6 address matches IPv4 ranges too (BlockList does so for its own entries).
    return this.#list.check(address, family);
  }

  /** The client of one request, after PROXY protocol, X-Forwarded-For and X-Forwarded-Proto from trusted peers. */
  resolve(req: IncomingMessage): ClientInfo {
    const socket = req.socket;
    const peer = unmapIPv4(socket.remoteAddress ?? '');
    const peerPort = socket.remotePort ?? 0;
    const tls = (socket as { encrypted?: boolean }).encrypted === true;
    if (this.#empty || !this.trusts(peer)) return { address: peer, port: peerPort, https: tls };
    let address = peer;
    let port = peerPort;
    const fromProxyProtocol = proxiedPeerOf(socket);
    if (fromProxyProtocol !== undefined) {
      address = unmapIPv4(fromProxyProtocol.address);
      port = fromProxyProtocol.port;
    }
    let https = tls;
    // X-Forwarded-* are believed only while what we have so far is a proxy we trust.
    if (this.trusts(address)) {
      const forwarded = forwardedFor(req);
      if (forwarded !== null) {
        const walked = this.#rightmostUntrusted(forwarded);
        if (walked !== null && walked !== address) {
          address = walked;
          port = 0; // the forwarded client's port is unknown (nginx: $remote_port empty); PHP gets 0
        }
      }
      const proto = req.headers['x-forwarded-proto'];
      if (typeof proto === 'string' && proto !== '') https = lastListItem(proto).toLowerCase() === 'https';
    }
    return { address, port, https };
  }

  /**
   * X-Forwarded-For for an HTTP upstream, as nginx's $proxy_add_x_forwarded_for: the list as received, then the
   * address the request came from (a trusted peer's PROXY header names it; otherwise the TCP peer). The received
   * list, and any other X-Forwarded-* header, is passed on only from a sender this gateway trusts (`believed`);
   * from anyone else it is a claim the upstream must not see as ours, so the sender's address is the whole list.
   */
  forwardedChain(req: IncomingMessage): { readonly chain: string; readonly believed: boolean } {
    const sender = this.#sender(req);
    if (!this.trusts(sender)) return { chain: sender, believed: false };
    const received = forwardedFor(req);
    return { chain: received === null ? sender : `${received}, ${sender}`, believed: true };
  }

  /** The request's headers come from a proxy this gateway trusts (what it says of the client may be believed). */
  sentByTrusted(req: IncomingMessage): boolean {
    return !this.#empty && this.trusts(this.#sender(req));
  }

  /** Who wrote the request's headers: the TCP peer, or, behind a trusted peer's PROXY header, the address it names. */
  #sender(req: IncomingMessage): string {
    const peer = unmapIPv4(req.socket.remoteAddress ?? '');
    if (this.#empty || !this.trusts(peer)) return peer;
    const fromProxyProtocol = proxiedPeerOf(req.socket);
    return fromProxyProtocol === undefined ? peer : unmapIPv4(fromProxyProtocol.address);
  }

  /** nginx real_ip_recursive: from the right, skip trusted addresses; all trusted → the leftmost. Garbage stops the walk. */
  #rightmostUntrusted(list: string): string | null {
    let end = list.length;
    let last: string | null = null;
    while (end > 0) {
      const comma = list.lastIndexOf(',', end - 1);
      const item = unmapIPv4(stripPort(list.slice(comma + 1, end).trim()));
      end = comma < 0 ? 0 : comma;
      if (item === '') continue;
      if (net.isIP(item) === 0) return last; // not an address: believe no further than the last good one
      last = item;
      if (!this.trusts(item)) return item;
    }
    return last;
  }
}

/** Several X-Forwarded-For headers are one list, in order. */
function forwardedFor(req: IncomingMessage): string | null {
  const raw = req.rawHeaders;
  let out: string | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 15 && name.toLowerCase() === 'x-forwarded-for') out = out === null ? raw[i + 1]! : `${out}, ${raw[i + 1]!}`;
  }
  return out;
}

function lastListItem(v: string): string {
  const comma = v.lastIndexOf(',');
  return (comma < 0 ? v : v.slice(comma + 1)).trim();
}

/** "1.2.3.4:5678" and "[::1]:80" as some proxies write them; a bare IPv6 address has colons but no brackets. */
function stripPort(item: string): string {
  if (item.startsWith('[')) {
    const close = item.indexOf(']');
    return close < 0 ? item : item.slice(1, close);
  }
  const colon = item.indexOf(':');
  return colon > 0 && item.indexOf(':', colon + 1) < 0 ? item.slice(0, colon) : item;
}
