/**
 * Defences of the admin listener against browsers, besides admin.token:
 * - DNS rebinding: a page on evil.example, whose name the attacker then points at 127.0.0.1, would read status and
 *   metrics with `Host: evil.example`. Without a token, only requests that name the listener by address or as
 *   localhost are answered (health checks excepted: they show nothing and probes name hosts as they like).
 * - Cross-site requests: any page can make a browser POST to http://127.0.0.1:9180/cache/purge. A browser says
 *   which page sent it (Origin, Sec-Fetch-Site), so a change of state from another site is refused, token or not.
 */
import type { IncomingMessage } from 'node:http';
import net from 'node:net';

/** The Host names an IP address or localhost (any port), not a DNS name someone else controls. */
export function namedByAddress(host: string | undefined): boolean {
  if (host === undefined) return false;
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:[0-9]*$/, '');
  return name.toLowerCase() === 'localhost' || net.isIP(name) !== 0;
}

/** A browser sent this from a page of another origin than the listener's own. Tools (curl, the CLI) send neither. */
export function fromOtherSite(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return true;
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  try {
    return new URL(origin).host !== (req.headers.host ?? '').toLowerCase();
  } catch (err) {
    void err; // "null" (a sandboxed page, a file:) or junk: not this listener's own page
    return true;
  }
}
