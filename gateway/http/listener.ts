/**
 * The main listener: plain HTTP/1.1, or TLS with HTTP/2 by ALPN and HTTP/1.1 as fallback (node:http2
 * allowHTTP1), with the connection-level guards in front of either: the PROXY protocol header, connections per
 * client address, and the timeouts and size limits against slow or oversized requests.
 * What happens to a request is the pipeline's business; this module owns sockets and sessions.
 */
import http from 'node:http';
import type http2 from 'node:http2';
import { createRequire } from 'node:module';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { LimitsConfig, TimeoutsConfig } from '../../config/types.js';
import { rememberProxiedPeer, unmapIPv4, type TrustedProxies } from './client-address.js';
import type { Logger } from '../../core/log.js';
import { readProxyHeader } from './proxy-protocol.js';
import type { ConnectionCounts } from './status.js';
import type { TlsMaterial } from './tls.js';
import { H2Request, H2Response, headerListSize, refuseHeaderList } from './h2.js';

export interface ListenerSettings {
  readonly tls: TlsMaterial | null;
  readonly timeouts: TimeoutsConfig;
  readonly limits: LimitsConfig;
  readonly proxyProtocol: boolean;
  readonly trusted: TrustedProxies;
  readonly log: Logger;
}

/**
 * Both kinds of request a listener delivers. node's HTTP/2 compatibility API mirrors http's request and response
 * in everything the pipeline uses (headers, rawHeaders, url, streams, writeHead, 'drain', 'close'); the pipeline
 * is written against http's types and avoids what HTTP/2 lacks (Connection headers, reason phrases).
 */
export type RequestListener = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/**
 * An HTTP/1.1 request with an Upgrade header, handed over with its raw socket and what followed its head. Returns
 * true when it took the connection (a websocket tunnel, or a refusal); false: the request is served as an ordinary
 * one, Upgrade ignored, as nginx does where nothing is configured for it.
 */
export type UpgradeListener = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => boolean;

/** node:http2 is loaded only for a TLS listener: a plain one does not pay its memory (with http-proxy-3 loaded lazily too, 0.7 MB of RSS). */
const loadHttp2 = (): typeof http2 => createRequire(import.meta.url)('node:http2') as typeof http2;

/** HTTP/2 header lists past this many name-value pairs are refused (node's default, 128, is below what real browsers with big cookies send). */
const H2_MAX_HEADER_PAIRS = 512;

export class MainListener {
  readonly #server: http.Server | http2.Http2SecureServer;
  readonly #secure: http2.Http2SecureServer | null = null;
  readonly #sessions = new Set<http2.ServerHttp2Session>();
  /** Every open TCP connection: what a stop past its grace period cuts (the HTTP/2 server has no closeAllConnections). */
  readonly #sockets = new Set<Socket>();
  /** TCP connections accepted since start (phpgate_connections_accepted_total). */
  #accepted = 0;
  #closing = false;
  /** Set by lameDuck(): HTTP/1.1 answers say `Connection: close` from then on. */
  #lameDuck = false;
  #upgrade: UpgradeListener | null = null;
  /** node's own HTTP/1.1 connection handlers (before any guard): where an Upgrade request nobody takes is replayed. */
  readonly #http: ReadonlyArray<(socket: Duplex) => void>;
  readonly #log: Logger;

  constructor(s: ListenerSettings, handle: RequestListener) {
    this.#log = s.log;
    const headerBytes = s.limits.header_kb * 1024;
    const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      // node adds `Connection: close` to the head and closes the connection after this answer.
      if (this.#lameDuck) res.shouldKeepAlive = false;
      handle(req, res);
    };
    if (s.tls === null) {
      this.#server = http.createServer(http1Options(s.timeouts, s.limits), onRequest);
    } else {
      const server = loadHttp2().createSecureServer(
        {
          cert: s.tls.cert,
          key: s.tls.key,
          allowHTTP1: true,
          noDelay: true,
          handshakeTimeout: s.timeouts.header_ms,
          maxHeaderListPairs: H2_MAX_HEADER_PAIRS,
          // node resets a stream whose header list passes maxHeaderListSize while it is read, but only once the
          // client has acknowledged these settings; the 'stream' listener below checks the streams opened before.
          settings: { maxConcurrentStreams: s.limits.h2_max_streams, maxHeaderListSize: headerBytes },
        },
        // HTTP/1.1 over TLS (allowHTTP1) arrives here as with http's server.
        onRequest as unknown as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void,
      );
      // HTTP/2 streams take the lean path (h2.ts) instead of node's compatibility objects, which a 'request'
      // listener installs as a 'stream' listener of its own: that one is taken off, this one answers every stream.
      server.removeAllListeners('stream');
      server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders?: string[]) => {
        const req = new H2Request(stream, headers, rawHeaders);
        const size = headerListSize(req.rawHeaders);
        if (size > headerBytes) {
          s.log.debug({ client: req.socket.remoteAddress, size, limit: headerBytes }, 'HTTP/2 connection closed: request header list over header_kb');
          refuseHeaderList(stream);
          return;
        }
        handle(req as unknown as http.IncomingMessage, new H2Response(stream, req) as unknown as http.ServerResponse);
      });
      // HTTP/1.1 connections on this server run node's http machinery, which reads these from the server object
      // (requireHostHeader is http.createServer's default; here nothing sets it).
      Object.assign(server, { requireHostHeader: true, ...http1Options(s.timeouts, s.limits) });
      server.on('session', (session: http2.ServerHttp2Session) => {
        this.#sessions.add(session);
        session.once('close', () => this.#sessions.delete(session));
        if (this.#closing) {
          // Its handshake finished after the stop began: it may finish what it sends at once, nothing more.
          session.close();
          return;
        }
        // An idle HTTP/2 connection is closed as an idle keep-alive one is (nginx's keepalive_timeout); close() lets
        // streams still running (a long PHP request) finish first.
        session.setTimeout(s.timeouts.keepalive_ms, () => session.close());
      });
      this.#server = server;
      this.#secure = server;
    }
    this.#http = this.#server.listeners(this.#secure === null ? 'connection' : 'secureConnection') as Array<(socket: Duplex) => void>;
    if (s.proxyProtocol || s.limits.connections_per_ip > 0) guardConnections(this.#server, s);
    // Before the guard: a connection still sending its PROXY header is cut by a stop too.
    this.#server.prependListener('connection', (socket: Socket) => {
      this.#accepted++;
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    // Expectations are the pipeline's to answer: `100-continue` only once a body will really be read (never before
    // a 413), and anything else as nginx does, by ignoring it (node would answer 417).
    this.#server.on('checkContinue', onRequest);
    this.#server.on('checkExpectation', onRequest);
  }

  /** Open connections by protocol (counted from the sets the stop needs anyway: nothing per request). */
  connections(): ConnectionCounts {
    const http2 = this.#sessions.size;
    return { http1: Math.max(0, this.#sockets.size - http2), http2, accepted: this.#accepted };
  }

  get tls(): boolean {
    return this.#secure !== null;
  }

  listen(port: number, host: string): Promise<void> {
    const server = this.#server;
    return new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
  }

  address(): AddressInfo | null {
    const a = this.#server.address();
    return a === null || typeof a === 'string' ? null : a;
  }

  /**
   * Who takes HTTP/1.1 Upgrade requests (websockets), or null: then node serves them as ordinary requests. Listened
   * for only while set, since node hands every Upgrade request to a listener once there is one (h2c attempts too).
   */
  setUpgradeHandler(handler: UpgradeListener | null): void {
    const server = this.#server as http.Server;
    if (handler === null) server.removeListener('upgrade', this.#onUpgrade);
    else if (this.#upgrade === null) server.on('upgrade', this.#onUpgrade);
    this.#upgrade = handler;
  }

  readonly #onUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (this.#upgrade?.(req, socket, head) !== true) this.#replay(req, socket, head);
  };

  /**
   * Gives an Upgrade request back to node's HTTP parser as an ordinary request: node stopped parsing at its head
   * (what follows may be a body, or further requests), so the head is written again without Upgrade and put back
   * in front of the rest, and the connection goes through node's own handlers once more (not the PROXY header and
   * connection-limit guard: it passed that already). Its body, keep-alive and pipelining then work as without Upgrade.
   */
  #replay(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    let text = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/${req.httpVersion}\r\n`;
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() !== 'upgrade') text += `${raw[i]!}: ${raw[i + 1]!}\r\n`;
    socket.unshift(head);
    // node hands header text over as latin1 strings: the same bytes go back.
    socket.unshift(Buffer.from(`${text}\r\n`, 'latin1'));
    for (const h of this.#http) h.call(this.#server, socket);
  }

  /** New certificate files (renewals) for connections from now on. */
  setSecureContext(tls: TlsMaterial): void {
    this.#secure?.setSecureContext({ cert: tls.cert, key: tls.key });
  }

  /**
   * The lame duck before a stop: still accepting and serving, but moving clients off their connections without
   * failing a request, so that a load balancer's pooled connections are gone before the port closes. HTTP/1.1
   * answers carry `Connection: close` and each connection closes after its answer (the peer reads that in the
   * answer, so it never sends a request on a connection being closed: closing an idle one could cross one in
   * flight); HTTP/2 sessions get a GOAWAY and close once their streams are done (a client opens a new one).
   */
  lameDuck(): void {
    this.#lameDuck = true;
    for (const session of this.#sessions) session.close();
  }

  /** Stops at once (a failed start). */
  closeNow(): void {
    this.#server.close();
    this.#destroyAll();
  }

  /**
   * Graceful close: stop accepting; idle keep-alive connections close as they go idle; HTTP/2 sessions get a
   * GOAWAY and close once their streams are done; whatever is still open after `graceMs` is cut.
   */
  async close(graceMs: number): Promise<void> {
    this.#closing = true;
    const server = this.#server;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const session of this.#sessions) session.close();
    // Keep-alive connections go idle as their last response ends; close them as they do, not after the grace.
    // (Both servers have closeIdleConnections: it covers the HTTP/1.1 connections of the TLS one too.)
    const closeIdle = (): void => (server as http.Server).closeIdleConnections();
    const sweep = setInterval(closeIdle, 50);
    closeIdle();
    const grace = setTimeout(() => {
      this.#log.warn({ drainMs: graceMs }, 'drain_ms passed: closing the connections still open');
      this.#destroyAll();
    }, graceMs);
    await closed;
    clearInterval(sweep);
    clearTimeout(grace);
  }

  #destroyAll(): void {
    this.#closing = true;
    for (const session of this.#sessions) session.destroy();
    for (const socket of this.#sockets) socket.destroy();
  }
}

/** The HTTP/1.1 guards of every listener: head size and time, keep-alive idle time. */
export function http1Options(timeouts: TimeoutsConfig, limits: LimitsConfig): http.ServerOptions {
  return {
    maxHeaderSize: limits.header_kb * 1024,
    headersTimeout: timeouts.header_ms,
    keepAliveTimeout: timeouts.keepalive_ms,
    requestTimeout: 0, // uploads and long PHP runs are bounded by body_ms and the pools' timeout_ms instead
    connectionsCheckingInterval: checkInterval(timeouts.header_ms),
  };
}

/** node checks header and request timeouts on an interval (30 s by default): often enough that header_ms holds. */
function checkInterval(headerMs: number): number {
  return Math.max(100, Math.min(1000, Math.floor(headerMs / 4)));
}

/**
 * Runs before the HTTP (or TLS) server sees a connection: reads the PROXY header when the listener expects one,
 * and counts connections per client address (server.limits.connections_per_ip; trusted proxies are exempt, as
 * they carry many clients). A connection over the limit, or with a missing or malformed PROXY header, is closed
 * before a byte is answered: nothing has been read that could be answered yet (nginx's "broken header").
 */
function guardConnections(server: http.Server | http2.Http2SecureServer, s: ListenerSettings): void {
  const handlers = server.listeners('connection') as Array<(socket: Socket) => void>;
  server.removeAllListeners('connection');
  const limit = s.limits.connections_per_ip;
  const open = new Map<string, number>();
  const admit = (socket: Socket, address: string): void => {
    if (limit > 0 && !s.trusted.trusts(address)) {
      const n = (open.get(address) ?? 0) + 1;
      if (n > limit) {
        s.log.debug({ client: address, limit }, 'connection refused: connections_per_ip reached');
        socket.destroy();
        return;
      }
      open.set(address, n);
      socket.once('close', () => {
        const left = (open.get(address) ?? 1) - 1;
        if (left <= 0) open.delete(address);
        else open.set(address, left);
      });
    }
    for (const h of handlers) h.call(server, socket);
  };
  server.on('connection', (socket: Socket) => {
    const peer = unmapIPv4(socket.remoteAddress ?? '');
    if (!s.proxyProtocol) {
      admit(socket, peer);
      return;
    }
    socket.on('error', ignore); // until the HTTP server takes the socket over with its own handler
    readProxyHeader(socket, s.timeouts.header_ms).then(
      (proxied) => {
        socket.removeListener('error', ignore);
        if (socket.destroyed) return;
        // Only a trusted balancer may say who the client is; anyone else's header is read and ignored.
        if (proxied === null || !s.trusted.trusts(peer)) {
          admit(socket, peer);
          return;
        }
        rememberProxiedPeer(socket, proxied);
        admit(socket, unmapIPv4(proxied.address));
      },
      (err: Error) => {
        s.log.debug({ client: peer, err: err.message }, 'connection closed: PROXY protocol header missing or malformed');
        socket.destroy();
      },
    );
  });
}

function ignore(): void {
  // An error is followed by 'close', which fails readProxyHeader: its rejection handler logs and destroys the socket.
}
