/**
 * HTTP/1.1 requests with an Upgrade header, which node hands over raw with their socket (the listener asks only
 * while some upstream takes websockets): a websocket handshake on such an upstream's path is tunnelled, or refused
 * by the rate limits. Anything else (h2c, a websocket to a PHP path) is not taken.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../core/log.js';
import type { RateLimiter } from './gates/rate-limit.js';
import type { ProxyContext } from './handlers/upstream/proxy.js';
import type { Upstreams } from './handlers/upstream/upstreams.js';
import { responseOnSocket, WebSocketTunnel } from './handlers/upstream/websocket.js';
import type { TrustedProxies } from './http/client-address.js';
import type { ErrorResponder } from './http/errors-http.js';
import { hasSeveralHosts, isWebSocketHandshake } from './http/request.js';
import { setHeaders } from './http/response-head.js';
import { parseTarget } from './http/uri.js';

export interface UpgradeOptions {
  readonly maxUrlBytes: number;
  readonly upstreams: Upstreams | null;
  readonly rateLimit: RateLimiter | null;
  readonly clients: TrustedProxies;
  readonly proxy: ProxyContext;
  readonly errors: ErrorResponder;
  readonly log: Logger;
}

export class Upgrades {
  readonly #o: UpgradeOptions;

  constructor(o: UpgradeOptions) {
    this.#o = o;
  }

  /** True when the request was taken (tunnelled or refused); false: the listener serves it as an ordinary request. */
  take(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = req.url ?? '';
    const target = url.length > this.#o.maxUrlBytes || hasSeveralHosts(req.rawHeaders) ? null : parseTarget(url);
    const upstream = target === null || this.#o.upstreams === null ? null : this.#o.upstreams.match(target.path);
    if (target === null || upstream === null || !upstream.websockets || !isWebSocketHandshake(req)) return false;
    // node's server let go of the socket: a client that vanishes now must not become an uncaught error.
    socket.on('error', ignoreUpgradeSocketError);
    const client = this.#o.clients.resolve(req);
    const tunnel = new WebSocketTunnel(req, socket as Socket, head, upstream, target, client, this.#o.proxy, this.#o.upstreams!.tunnels);
    const verdict = this.#o.rateLimit === null ? null : this.#o.rateLimit.check(target.path, client.address, req);
    if (verdict === null) {
      tunnel.start();
      return true;
    }
    verdict.then(
      (v) => {
        if (v.allowed) {
          tunnel.start();
          return;
        }
        const res = responseOnSocket(req, socket);
        setHeaders(res, v.headers);
        this.#o.errors.answerError(req, res, 429, null);
      },
      (err: unknown) => {
        this.#o.log.error({ err, url }, 'rate limiter failed; the websocket passes');
        tunnel.start();
      },
    );
    return true;
  }
}

function ignoreUpgradeSocketError(): void {
  // The upgrade socket's errors end it (its 'close' follows); the answer or tunnel on it learns of that there.
}
