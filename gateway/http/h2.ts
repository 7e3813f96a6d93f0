/**
 * The lean HTTP/2 path: a request and a response over node's core Http2Stream API, in place of node's
 * compatibility layer (Http2ServerRequest/Response), which costs several objects, a dozen stream listeners and a
 * header-by-header copy per request.
 *
 * They offer what the gateway and http-proxy-3 use of http's request and response, and nothing else: the request's
 * head (pseudo-headers included, as compat's), its body as the stream itself (on/pipe/pause/resume), the response's
 * head (preset headers, then writeHead, which a response-head list wins over by name), writes with backpressure,
 * 'close' and 'drain'. HTTP/2's differences stay in http/: here, response-head.ts, and the protocol checks of
 * exchange.ts (no reason phrase; a cut is a reset), body.ts (a stream's end, closing a stream early), request.ts and
 * trace.ts; nothing outside http/ asks which protocol a request came on.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Http2Stream, ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';

const EMPTY: readonly string[] = [];

/** RFC 9113 §7's ENHANCE_YOUR_CALM, spelled out: node:http2's constants would load the module on plain listeners too. */
const ENHANCE_YOUR_CALM = 0xb;

/**
 * A request's header list as HTTP/2 sizes it (SETTINGS_MAX_HEADER_LIST_SIZE, RFC 9113 §6.5.2): every field's name
 * and value octets plus 32, pseudo-headers included, as node's own check counts once the client has acknowledged
 * the limit. node hands header text over as latin1 strings: one character per octet.
 */
export function headerListSize(raw: readonly string[]): number {
  let size = 16 * raw.length; // 32 per field, two entries per field
  for (let i = 0; i < raw.length; i++) size += raw[i]!.length;
  return size;
}

/**
 * Refuses a request whose header list is over the limit as nginx does (large_client_header_buffers over HTTP/2): a
 * connection error, GOAWAY with ENHANCE_YOUR_CALM naming this stream as the last one; no status. node enforces its
 * advertised maxHeaderListSize only on streams opened after the client acknowledged the server's SETTINGS (it then
 * resets the stream, ENHANCE_YOUR_CALM, before storing the list): a client's first requests come before that, and a
 * client may never acknowledge. Ending the connection leaves such a client one oversized list per TLS handshake.
 */
export function refuseHeaderList(stream: ServerHttp2Stream): void {
  const session = stream.session;
  if (session === undefined) {
    stream.destroy();
    return;
  }
  session.goaway(ENHANCE_YOUR_CALM, stream.id ?? 0); // an id is set on every stream a client opened
  // Reset with an error code, the stream is destroyed with an error: expected, and no one else listens to it.
  stream.on('error', onStreamError);
  stream.close(ENHANCE_YOUR_CALM);
  // A graceful close, not destroy(): node stops reading at once on destroy and then closes the socket, so whatever
  // the client sent meanwhile (its SETTINGS acknowledgement) makes the kernel answer with a TCP reset, which can
  // discard the GOAWAY before the client reads it. Streams already running finish; node refuses any later one.
  session.close();
}

/** One HTTP/2 request's head, and its body as the stream. */
export class H2Request {
  readonly stream: ServerHttp2Stream;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly method: string;
  readonly url: string;
  readonly httpVersion = '2.0';
  readonly httpVersionMajor = 2;
  readonly httpVersionMinor = 0;
  /** The session's socket, kept: node clears `stream.session` once the stream is destroyed. */
  readonly socket: Socket;

  constructor(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[] | undefined) {
    this.stream = stream;
    this.socket = stream.session!.socket;
    this.headers = headers;
    this.rawHeaders = rawHeaders ?? flatten(headers);
    this.method = (headers[':method'] as string | undefined) ?? 'GET';
    this.url = (headers[':path'] as string | undefined) ?? '/';
  }

  get connection(): Socket {
    return this.socket;
  }

  /** The whole body has arrived (or there was none). */
  get complete(): boolean {
    return this.stream.readableEnded || this.stream.endAfterHeaders;
  }

  get errored(): Error | null {
    return this.stream.errored;
  }

  /**
   * The body's events are the stream's ('data', 'end', 'aborted'), except 'error', which node's compatibility
   * request does not pass on either: a reset stream ends in 'aborted' and 'close', which is what listeners act on.
   */
  on(event: string, fn: (...args: unknown[]) => void): this {
    if (event !== 'error') this.stream.on(event, fn);
    return this;
  }

  once(event: string, fn: (...args: unknown[]) => void): this {
    if (event !== 'error') this.stream.once(event, fn);
    return this;
  }

  removeListener(event: string, fn: (...args: unknown[]) => void): this {
    this.stream.removeListener(event, fn);
    return this;
  }

  pause(): this {
    this.stream.pause();
    return this;
  }

  resume(): this {
    this.stream.resume();
    return this;
  }

  pipe<T extends NodeJS.WritableStream>(dest: T, options?: { end?: boolean }): T {
    return this.stream.pipe(dest, options);
  }
}

/** One HTTP/2 response, written straight to the stream. */
export class H2Response {
  readonly stream: ServerHttp2Stream;
  readonly req: H2Request;
  statusCode = 200;
  /** HTTP/2 has none; kept so code written for http's response can set it. */
  statusMessage = '';
  #preset: Record<string, string | number | string[]> | null = null;
  #sent = false;
  /** A HEAD, 204 or 304: the head ends the stream, and body writes are dropped. */
  #bodiless = false;

  constructor(stream: ServerHttp2Stream, req: H2Request) {
    this.stream = stream;
    this.req = req;
    // A client resetting the stream is reported as an error on it: its 'close' tells the exchange; nothing more to do.
    stream.on('error', onStreamError);
  }

  get headersSent(): boolean {
    return this.#sent;
  }

  get socket(): Socket {
    return this.req.socket;
  }

  get finished(): boolean {
    return this.stream.writableEnded;
  }

  get writableEnded(): boolean {
    return this.stream.writableEnded;
  }

  get writableFinished(): boolean {
    return this.stream.writableFinished;
  }

  get destroyed(): boolean {
    return this.stream.destroyed;
  }

  /** Bytes written and not yet sent (the client's flow-control window is closed, or the socket is full). */
  get writableLength(): number {
    return this.stream.writableLength;
  }

  setHeader(name: string, value: string | number | readonly string[]): this {
    (this.#preset ??= {})[name.toLowerCase()] = Array.isArray(value) ? [...(value as string[])] : (value as string | number);
    return this;
  }

  appendHeader(name: string, value: string | readonly string[]): this {
    const preset = (this.#preset ??= {});
    const lower = name.toLowerCase();
    const had = preset[lower];
    const add = Array.isArray(value) ? (value as string[]) : [value as string];
    preset[lower] = had === undefined ? (add.length === 1 ? add[0]! : add) : [...(Array.isArray(had) ? had : [String(had)]), ...add];
    return this;
  }

  getHeader(name: string): string | number | string[] | undefined {
    return this.#preset?.[name.toLowerCase()];
  }

  getHeaderNames(): string[] {
    return this.#preset === null ? (EMPTY as string[]) : Object.keys(this.#preset);
  }

  removeHeader(name: string): void {
    if (this.#preset !== null) delete this.#preset[name.toLowerCase()];
  }

  /**
   * Sends the head: the preset headers, then `headers` (an object, or a name/value list), which win by name. Names
   * are taken as lower-case HTTP/2 names; repeats in a list become arrays (several Set-Cookie stay several).
   */
  writeHead(
    status: number,
    reasonOrHeaders?: string | OutgoingHttpHeaders | readonly unknown[],
    maybeHeaders?: OutgoingHttpHeaders | readonly unknown[],
  ): this {
    if (this.#sent) throw new Error('ERR_HTTP2_HEADERS_SENT: the response head was already sent');
    const headers = typeof reasonOrHeaders === 'string' ? maybeHeaders : reasonOrHeaders;
    const head: OutgoingHttpHeaders = this.#preset === null ? {} : { ...this.#preset };
    if (Array.isArray(headers)) {
      const given: Record<string, true> = {};
      for (let i = 0; i < headers.length; i += 2) {
        const name = String(headers[i]).toLowerCase();
        const value = headers[i + 1] as string | number;
        const had = head[name];
        if (had === undefined || given[name] !== true) head[name] = value;
        else head[name] = [...(Array.isArray(had) ? had : [String(had)]), String(value)];
        given[name] = true;
      }
    } else if (headers !== undefined) {
      for (const name in headers as OutgoingHttpHeaders) head[name.toLowerCase()] = (headers as OutgoingHttpHeaders)[name];
    }
    this.statusCode = status;
    head[':status'] = status;
    this.#bodiless = this.req.method === 'HEAD' || status === 204 || status === 304;
    // Sent only once node took it: a head it refuses (a repeated single-value header) leaves room for a 502.
    if (!this.stream.destroyed && !this.stream.closed) this.stream.respond(head, { endStream: this.#bodiless });
    this.#sent = true;
    return this;
  }

  write(chunk: Buffer | string): boolean {
    if (!this.#sent) this.writeHead(this.statusCode);
    if (this.#bodiless || this.stream.destroyed) return true;
    return this.stream.write(chunk);
  }

  end(chunk?: Buffer | string): this {
    if (!this.#sent) this.writeHead(this.statusCode);
    if (this.#bodiless || this.stream.destroyed || this.stream.writableEnded) return this;
    if (chunk === undefined) this.stream.end();
    else this.stream.end(chunk);
    return this;
  }

  /** An answer cut short: the stream is reset (RST_STREAM), so the client sees it incomplete. */
  destroy(err?: Error): this {
    this.stream.destroy(err);
    return this;
  }

  /** `100 Continue` before reading a body the client holds back. */
  writeContinue(): void {
    if (!this.#sent && !this.stream.destroyed) this.stream.additionalHeaders({ ':status': 100 });
  }

  on(event: string, fn: (...args: unknown[]) => void): this {
    this.stream.on(event, fn);
    return this;
  }

  once(event: string, fn: (...args: unknown[]) => void): this {
    this.stream.once(event, fn);
    return this;
  }

  removeListener(event: string, fn: (...args: unknown[]) => void): this {
    this.stream.removeListener(event, fn);
    return this;
  }
}

/** A request's fields as a flat name/value list (rawHeaders), for node versions whose 'stream' event gives none. */
function flatten(headers: IncomingHttpHeaders): string[] {
  const out: string[] = [];
  for (const name in headers) {
    const v = headers[name];
    if (Array.isArray(v)) for (const one of v) out.push(name, one);
    else if (v !== undefined) out.push(name, v);
  }
  return out;
}

function onStreamError(this: Http2Stream): void {
  // Nothing to do: the stream's 'close' follows, which is what the exchange listens for.
}
