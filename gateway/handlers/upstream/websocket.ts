/**
 * Websocket tunnels to HTTP upstreams (upstreams[].websockets), with http-proxy-3's `ws`, and the gateway's own
 * answers on a raw Upgrade socket.
 */
import http, { type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ErrorCode, UpstreamError } from '../../../core/errors.js';
import type { ClientInfo } from '../../http/client-address.js';
import { sendError, statusForError } from '../../http/errors-http.js';
import { requestIdOf } from '../../http/request-id.js';
import { ATTEMPT, type Attempt, type AttemptOptions } from './http-proxy.js';
import { forwardHeaders, send, type ProxyContext } from './proxy.js';
import type { Upstream, UpstreamTarget, WebSocketTunnels } from './upstreams.js';
import type { ParsedTarget } from '../../http/uri.js';

/**
 * A websocket handshake (HTTP/1.1 `Upgrade: websocket`) tunnelled to a target by http-proxy-3's `ws`: it relays the
 * target's 101 and then pipes both sockets. A target that cannot be reached is marked down and the client gets 502
 * (its reconnect then goes to the next target). The tunnel counts as in flight (least_conn) until it closes;
 * established tunnels have no idle timeout, unlike nginx's proxy_read_timeout, which cuts quiet websockets.
 * Websockets over HTTP/2 (RFC 8441 extended CONNECT) are not offered: browsers then open them over HTTP/1.1.
 */
export class WebSocketTunnel implements Attempt {
  readonly chunked = false;
  readonly #req: IncomingMessage;
  readonly #socket: Socket;
  readonly #head: Buffer;
  readonly #upstream: Upstream;
  readonly #target: ParsedTarget;
  readonly #client: ClientInfo;
  readonly #cx: ProxyContext;
  readonly #tunnels: WebSocketTunnels;
  #current: UpstreamTarget | null = null;
  #proxyReq: ClientRequest | null = null;
  #connected = false;
  #upgraded = false;
  #answered = false;

  constructor(
    req: IncomingMessage,
    socket: Socket,
    head: Buffer,
    upstream: Upstream,
    target: ParsedTarget,
    client: ClientInfo,
    cx: ProxyContext,
    tunnels: WebSocketTunnels,
  ) {
    this.#req = req;
    this.#socket = socket;
    this.#head = head;
    this.#upstream = upstream;
    this.#target = target;
    this.#client = client;
    this.#cx = cx;
    this.#tunnels = tunnels;
  }

  start(): void {
    const t = this.#upstream.pick(null);
    if (t === null) {
      this.#answer(502);
      return;
    }
    if (!this.#tunnels.add(this.#socket)) return; // the gateway is stopping
    t.inFlight++;
    this.#current = t;
    this.#socket.once('close', this.#onClose);
    forwardHeaders(this.#req, this.#client, this.#cx, true, false, requestIdOf(this.#req, this.#cx.clients));
    // No agent: a websocket holds its own connection for its whole life.
    const options: AttemptOptions = { target: t.url, headers: t.hostHeader ?? undefined, [ATTEMPT]: this };
    send(this.#upstream.proxy, this.#req, this.#socket, this.#head, this.#upstream.forwardPath(this.#target), options, this.#onError);
  }

  onProxyRequest(proxyReq: ClientRequest): void {
    this.#proxyReq = proxyReq;
    proxyReq.once('upgrade', this.#onUpgrade);
    proxyReq.once('socket', this.#onSocket);
  }

  readonly #onSocket = (socket: Socket): void => {
    // connect_ms while connecting, then timeout_ms for the target's answer to the handshake; once upgraded,
    // http-proxy-3 clears the timeout.
    socket.setTimeout(this.#upstream.connectMs);
    socket.once('timeout', this.#onSocketTimeout);
    socket.once('connect', this.#onConnect);
  };

  readonly #onConnect = (): void => {
    this.#connected = true;
    this.#proxyReq?.socket?.setTimeout(this.#upstream.timeoutMs);
  };

  readonly #onSocketTimeout = (): void => {
    const t = this.#current;
    if (this.#upgraded || t === null) return;
    const err = this.#connected
      ? new UpstreamError(ErrorCode.UpstreamTimeout, `${t.url.origin}: no answer to the websocket handshake within timeout_ms`)
      : new UpstreamError(ErrorCode.UpstreamConnect, `${t.url.origin}: no connection within connect_ms (${this.#upstream.connectMs} ms)`);
    this.#proxyReq?.destroy(err); // reported back through #onError
  };

  readonly #onUpgrade = (): void => {
    this.#upgraded = true;
    if (this.#current !== null) this.#upstream.answered(this.#current);
  };

  /** The handshake failed before the target's answer (after it, http-proxy-3 closes both sides and that is all). */
  readonly #onError = (err: Error): void => {
    const t = this.#current;
    if (this.#upgraded || this.#answered || t === null) {
      this.#cx.log.debug({ err }, 'websocket tunnel closed on an error');
      return;
    }
    const failure =
      err instanceof UpstreamError
        ? err
        : new UpstreamError(this.#connected ? ErrorCode.UpstreamClosed : ErrorCode.UpstreamConnect, `${t.url.origin}: ${err.message}`, {
            cause: err,
          });
    if (failure.code !== ErrorCode.UpstreamTimeout) this.#upstream.markDown(t, failure.message);
    this.#cx.log.error({ err: failure, request: `websocket ${this.#target.requestUri} → ${t.url.origin}` }, 'websocket handshake failed');
    this.#answer(statusForError(failure.code));
  };

  readonly #onClose = (): void => {
    if (this.#current === null) return;
    this.#current.inFlight--;
    this.#current = null;
  };

  /** The gateway's own answer on the raw socket (http-proxy-3 ends the socket right after). */
  #answer(status: number): void {
    this.#answered = true;
    sendError(this.#req, responseOnSocket(this.#req, this.#socket), status);
  }
}

/**
 * A response for a request node handed over raw with its socket (the 'upgrade' event), as node's own server would
 * have made it; the connection closes once it is sent (whatever followed the head on the socket is not read).
 */
export function responseOnSocket(req: IncomingMessage, socket: Duplex): ServerResponse {
  const res = new http.ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket as Socket);
  // Left assigned: the socket's 'close' is then the response's (what the access log waits for).
  res.once('finish', () => (socket as Socket).destroySoon());
  return res;
}
