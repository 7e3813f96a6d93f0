/**
 * One request through an HTTP upstream, with http-proxy-3 (1.23: 2.x needs Node 22), and what the websocket
 * tunnels (websocket-tunnel.ts) share with it.
 *
 * http-proxy-3 makes the upstream request (target URL, path, body piped in) and tunnels websockets; the gateway
 * keeps the rest, as nginx's proxy module does: which headers cross (proxy-headers.ts), the answer's head and body
 * (selfHandleResponse: security headers under the upstream's, backpressure, send_ms), connect and read timeouts,
 * marking a failed target down and trying the next one, and its own 502/504/408/413 with the error pages.
 *
 * One exchange object per request, its handlers bound once; http-proxy-3 hands each upstream request back through
 * its shared 'proxyReq' event, with the exchange in the per-call options under a symbol of ours.
 */
import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ProxyServer } from 'http-proxy-3';
import { ErrorCode, PhpgateError, UpstreamError } from '../../../core/errors.js';
import { BodyKind, bodyKind, closeAfter, expectsContinue } from '../../http/body.js';
import type { ClientInfo, TrustedProxies } from '../../http/client-address.js';
import type { Logger } from '../../../core/log.js';
import { prepareRequestHeaders, responseHeaders, type RedirectRewrite } from './headers.js';
import { ATTEMPT, type Attempt, type AttemptOptions } from './http-proxy.js';
import type { Exchange } from '../../http/exchange.js';
import type { ClientCloseListener, ResponseHead, ResponseSink, Source } from '../../http/sink.js';
import type { Upstream, UpstreamTarget } from './upstreams.js';
import type { ParsedTarget } from '../../http/uri.js';

/** What every proxied request of one pipeline shares: built once, not per request. */
export interface ProxyContext {
  readonly log: Logger;
  /** For X-Forwarded-For (server.trusted_proxies). */
  readonly clients: TrustedProxies;
  /** server.max_body_mb: also for bodies of unknown length, counted as they stream through. */
  readonly maxBodyBytes: number;
}

/** RFC 9110 §9.2.2; nginx's proxy_next_upstream never resends POST, LOCK or PATCH. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

function ignoreAbandoned(): void {
  // An upstream request given up on: errors it still reports (its destroy's own among them) concern nobody.
}

/**
 * One request to an HTTP upstream: pick a target, stream the body there, and produce the target's answer into a
 * ResponseSink (so upstream answers are compressed and cached by the same filters as PHP's).
 */
export class ProxyExchange implements Attempt, Source, ClientCloseListener {
  readonly #x: Exchange;
  readonly #sink: ResponseSink;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #upstream: Upstream;
  readonly #target: ParsedTarget;
  readonly #client: ClientInfo;
  readonly #cx: ProxyContext;
  readonly #forwardPath: string;
  readonly #body: BodyKind;
  readonly chunked: boolean;
  /**
   * Sent again to the next target when one fails before answering: only idempotent requests without a body (a
   * body streams through and is not kept; nginx can resend only because it buffers bodies first).
   */
  readonly #retriable: boolean;
  /** The client waits for `100 Continue` before its body: sent once a target is chosen. */
  #continue: boolean;
  /** The target of the attempt under way; it counts this request in flight until released. */
  #current: UpstreamTarget | null = null;
  /** Targets that failed this request (null until one does). */
  #tried: UpstreamTarget[] | null = null;
  /** A keep-alive connection the target had already closed was retried once, not counted as the target's fault. */
  #staleRetried = false;
  #proxyReq: ClientRequest | null = null;
  #proxyRes: IncomingMessage | null = null;
  #connected = false;
  #headSent = false;
  #done = false;
  /** The upstream's answer is paused until the client drains; send_ms runs meanwhile (the exchange's) instead of timeout_ms. */
  #paused = false;
  /** Body bytes of an unsized body so far, against max_body_mb. */
  #bodyBytes = 0;

  constructor(x: Exchange, sink: ResponseSink, upstream: Upstream, client: ClientInfo, cx: ProxyContext) {
    this.#x = x;
    this.#sink = sink;
    const req = x.req;
    this.#req = req;
    this.#res = x.res;
    this.#upstream = upstream;
    this.#target = x.target!;
    this.#client = client;
    this.#cx = cx;
    this.#forwardPath = upstream.forwardPath(this.#target);
    this.#body = bodyKind(req);
    this.chunked = this.#body === BodyKind.Unsized;
    this.#retriable = this.#body === BodyKind.None && IDEMPOTENT.has(req.method ?? '');
    this.#continue = this.#body !== BodyKind.None && expectsContinue(req);
  }

  start(): void {
    this.#x.watch(this);
    forwardHeaders(this.#req, this.#client, this.#cx, false, this.chunked, this.#x.requestId);
    if (this.chunked) this.#req.on('data', this.#onBodyData);
    const t = this.#upstream.pick(null);
    if (t === null) this.#fail(new UpstreamError(ErrorCode.UpstreamUnavailable, 'every target of this upstream is marked down'));
    else this.#attempt(t);
  }

  #attempt(t: UpstreamTarget): void {
    t.inFlight++;
    this.#current = t;
    this.#connected = false;
    this.#proxyReq = null;
    if (this.#continue) {
      this.#continue = false;
      this.#res.writeContinue();
    }
    const trace = this.#x.trace;
    if (trace !== null) {
      trace.pool = t.label;
      trace.upstreamStart = performance.now();
    }
    const options: AttemptOptions = { target: t.url, agent: t.agent, headers: t.hostHeader ?? undefined, [ATTEMPT]: this };
    try {
      send(this.#upstream.proxy, this.#req, this.#res, null, this.#forwardPath, options, this.#onProxyError);
    } catch (err) {
      this.#cx.log.error({ err, request: this.#label(t) }, 'could not make the upstream request');
      this.#fail(new UpstreamError(ErrorCode.UpstreamConnect, `upstream request: ${String(err)}`, { cause: err }));
    }
  }

  onProxyRequest(proxyReq: ClientRequest): void {
    if (this.#done) {
      // Answered meanwhile (a body over max_body_mb before the connection was made): never sent.
      this.#abandon(proxyReq);
      return;
    }
    this.#proxyReq = proxyReq;
    proxyReq.on('response', this.#onResponse);
    proxyReq.on('timeout', this.#onTimeout);
    // node arms this once connected (and at once on a kept-alive connection); until then connect_ms holds.
    proxyReq.setTimeout(this.#upstream.timeoutMs);
    const socket = proxyReq.socket;
    if (socket !== null && socket.connecting) {
      socket.setTimeout(this.#upstream.connectMs);
      socket.once('connect', this.#onConnect);
    } else {
      this.#connected = true;
    }
  }

  readonly #onConnect = (): void => {
    this.#connected = true;
  };

  /** An upstream request failed (its 'error'), or the client's request stream did (http-proxy-3 reports both). */
  readonly #onProxyError = (err: Error): void => {
    if (this.#done) return;
    if (err === this.#req.errored) return; // the client's own: its response's 'close' ends the exchange
    const t = this.#current;
    if (t === null) return;
    if (this.#headSent) {
      this.#cx.log.error({ err, request: this.#label(t) }, 'upstream failed mid-answer');
      this.#fail(new UpstreamError(ErrorCode.UpstreamClosed, err.message, { cause: err }));
      return;
    }
    const proxyReq = this.#proxyReq;
    // A kept-alive connection the target closed just as it was reused: the target is fine, ask again (once).
    const stale = proxyReq !== null && proxyReq.reusedSocket && (err as NodeJS.ErrnoException).code === 'ECONNRESET' && !this.#staleRetried;
    if (stale) this.#staleRetried = true;
    const code = this.#connected ? ErrorCode.UpstreamClosed : ErrorCode.UpstreamConnect;
    this.#upstreamFailed(new UpstreamError(code, `${t.url.origin}: ${err.message}`, { cause: err }), !stale);
  };

  /** Before any answer: the target is marked down (unless `down` is false), and the next one tried when allowed. */
  #upstreamFailed(err: UpstreamError, down: boolean): void {
    const t = this.#current!;
    this.#release();
    if (down) {
      this.#upstream.markDown(t, err.message);
      (this.#tried ??= []).push(t);
    }
    const next = this.#retriable ? this.#upstream.pick(this.#tried) : null;
    if (next !== null) {
      this.#cx.log.warn({ err, request: this.#label(t), next: next.url.origin }, 'upstream request failed; trying the next target');
      this.#attempt(next);
      return;
    }
    this.#cx.log.error({ err, request: this.#label(t) }, 'upstream request failed');
    this.#fail(err);
  }

  readonly #onTimeout = (): void => {
    const proxyReq = this.#proxyReq;
    if (this.#done || proxyReq === null) return;
    const t = this.#current!;
    this.#abandon(proxyReq);
    if (!this.#connected) {
      // A target that swallows connection attempts is as dead as one that refuses them.
      this.#upstreamFailed(
        new UpstreamError(ErrorCode.UpstreamConnect, `${t.url.origin}: no connection within connect_ms (${this.#upstream.connectMs} ms)`),
        true,
      );
      return;
    }
    // Silence past timeout_ms while the answer is owed. If the client's body is still arriving and the target takes
    // all it is given, the client is the slow one (nginx's client_body_timeout: 408). A slow target is not a dead
    // one: not marked down, nor asked twice.
    const clientSlow = this.#body !== BodyKind.None && !this.#req.complete && !proxyReq.writableNeedDrain;
    const err = clientSlow
      ? new PhpgateError(ErrorCode.ClientTimeout, `request body stalled while proxying to ${t.url.origin}`)
      : new UpstreamError(ErrorCode.UpstreamTimeout, `${t.url.origin}: no answer within timeout_ms (${this.#upstream.timeoutMs} ms)`);
    this.#cx.log.error({ err, request: this.#label(t), midAnswer: this.#headSent }, 'upstream request timed out');
    this.#fail(err);
  };

  readonly #onResponse = (proxyRes: IncomingMessage): void => {
    const t = this.#current;
    if (this.#done || t === null) {
      proxyRes.resume();
      return;
    }
    this.#proxyRes = proxyRes;
    this.#upstream.answered(t);
    this.#headSent = true;
    if (!this.#sink.start(upstreamHead(proxyRes, t.redirect), this)) {
      // Answered otherwise (a stale cached answer, an internal redirect, a head node refused): the rest is dropped.
      this.#done = true;
      this.#release();
      this.#abandon(this.#proxyReq!);
      return;
    }
    proxyRes.on('data', this.#onData);
    proxyRes.on('end', this.#onEnd);
    proxyRes.on('close', this.#onUpstreamClose);
  };

  readonly #onData = (chunk: Buffer): void => {
    // Each chunk is one read from the target: what the exchange holds to learn the length goes out now.
    if ((this.#sink.data(chunk) && this.#sink.flush()) || this.#paused || this.#done) return;
    // The client is full: the target waits (its socket is paused) while the exchange's send_ms runs.
    this.#paused = true;
    this.#proxyRes!.pause();
    this.#proxyReq!.socket?.setTimeout(0);
  };

  // Source: the client took what it was given.
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    if (this.#done) return;
    this.#proxyReq!.socket?.setTimeout(this.#upstream.timeoutMs);
    this.#proxyRes!.resume();
  }

  readonly #onEnd = (): void => {
    if (this.#done) return;
    this.#done = true;
    const trace = this.#x.trace;
    if (trace !== null) trace.upstreamMs = performance.now() - trace.upstreamStart;
    this.#release();
    this.#sink.end();
  };

  /** 'close' without 'end': the target went away mid-answer (nginx: "upstream prematurely closed connection"). */
  readonly #onUpstreamClose = (): void => {
    if (this.#done) return;
    const t = this.#current;
    this.#cx.log.error({ request: t === null ? '' : this.#label(t) }, 'upstream closed the connection before its answer was complete');
    this.#fail(new UpstreamError(ErrorCode.UpstreamClosed, 'upstream answer cut short'));
  };

  /** Counts an unsized body as it streams through: past max_body_mb, 413 (nginx: "client intended to send too large chunked body"). */
  readonly #onBodyData = (chunk: Buffer): void => {
    this.#bodyBytes += chunk.length;
    if (this.#bodyBytes <= this.#cx.maxBodyBytes || this.#done) return;
    this.#req.removeListener('data', this.#onBodyData);
    if (this.#proxyReq !== null) this.#abandon(this.#proxyReq);
    this.#fail(new PhpgateError(ErrorCode.BodyTooLarge, `request body over max_body_mb (${this.#cx.maxBodyBytes} bytes)`));
  };

  // ClientCloseListener: the client went away before its answer was complete; the upstream request goes too.
  clientClosed(): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#proxyReq !== null) this.#abandon(this.#proxyReq);
    this.#release();
  }

  /**
   * Ends the exchange with the gateway's own answer (error page) when nothing was sent yet; after the head went out,
   * only cutting the connection shows the client that the answer is incomplete.
   */
  #fail(err: PhpgateError): void {
    if (this.#done) return;
    this.#done = true;
    this.#release();
    // An upload cut short leaves the rest of its body unread: the connection cannot carry another request.
    if (!this.#headSent && this.#body !== BodyKind.None && !this.#req.complete) closeAfter(this.#req, this.#res);
    this.#sink.error(err);
  }

  /** Gives an upstream request up: it is destroyed, and what it reports afterwards is no longer this exchange's. */
  #abandon(proxyReq: ClientRequest): void {
    proxyReq.removeListener('response', this.#onResponse);
    proxyReq.removeListener('timeout', this.#onTimeout);
    proxyReq.removeAllListeners('error');
    proxyReq.on('error', ignoreAbandoned);
    proxyReq.destroy();
  }

  #release(): void {
    if (this.#current === null) return;
    this.#current.inFlight--;
    this.#current = null;
  }

  #label(t: UpstreamTarget): string {
    return `${this.#req.method ?? ''} ${this.#target.requestUri} → ${t.url.origin}`;
  }
}

/** The target's answer as a response head: its headers as the client gets them, X-Accel-Expires and -Buffering apart. */
function upstreamHead(proxyRes: IncomingMessage, redirect: RedirectRewrite): ResponseHead {
  const raw = proxyRes.rawHeaders;
  let noBuffering = false;
  let accelExpires: string | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length < 14 || (name.charCodeAt(0) | 32) !== 120 /* x */) continue;
    const lower = name.toLowerCase();
    if (lower === 'x-accel-buffering') noBuffering = raw[i + 1]!.toLowerCase() === 'no';
    else if (lower === 'x-accel-expires') accelExpires = raw[i + 1]!;
  }
  const length = proxyRes.headers['content-length'];
  const type = proxyRes.headers['content-type'];
  return {
    status: proxyRes.statusCode ?? 502,
    // (dropped by the exchange over HTTP/2, which has no reason phrase)
    reason: proxyRes.statusMessage ?? '',
    headers: responseHeaders(raw, false, redirect),
    contentType: type ?? '',
    contentLength: length !== undefined && /^\d{1,15}$/.test(length) ? Number(length) : null,
    noBuffering,
    accelExpires,
    // An upstream's X-Accel-Redirect is hidden, not followed: only PHP answers hand files back to the gateway (an
    // upstream is often another party's application, which must not read the gateway's internal locations).
    accelRedirect: null,
  };
}

/**
 * The request's headers made the upstream's (proxy-headers.ts), the client as server.trusted_proxies sees it, and
 * `requestId` (the access log's) as X-Request-Id ('' : none).
 */
export function forwardHeaders(
  req: IncomingMessage,
  client: ClientInfo,
  cx: ProxyContext,
  upgrade: boolean,
  chunked: boolean,
  requestId: string,
): void {
  const forwarded = cx.clients.forwardedChain(req);
  prepareRequestHeaders(req.headers, {
    chain: forwarded.chain,
    believed: forwarded.believed,
    clientAddress: client.address,
    https: client.https,
    upgrade,
    chunked,
    requestId,
  });
}

/**
 * Has http-proxy-3 make the upstream request (`head` null) or the websocket handshake. It reads the path from
 * req.url while doing so, synchronously; the access log reads req.url at the end and must see what the client asked for.
 */
export function send(
  proxy: ProxyServer,
  req: IncomingMessage,
  to: ServerResponse | Socket,
  head: Buffer | null,
  path: string,
  options: AttemptOptions,
  onError: (err: Error) => void,
): void {
  const url = req.url;
  req.url = path;
  try {
    if (head === null) proxy.web(req, to as ServerResponse, options, onError);
    else proxy.ws(req, to, head, options, onError);
  } finally {
    req.url = url;
  }
}
