/**
 * One persistent FastCGI connection (FCGI_KEEP_CONN) to a php-cgi child, one request at a time.
 * Owns the socket, deadlines and backpressure; the bytes are the codec's business.
 */
import net from 'node:net';
import { ErrorCode, UpstreamError, type PhpgateError } from '../../core/errors.js';
import { Flags, ProtocolStatus, RecordType, Role } from './constants.js';
import { RecordDecoder, parseEndRequest, type RecordSink } from './decoder.js';
import { FastCgiProtocolError } from './errors.js';
import { encodeRequestStart, encodeStreamRecords, type ParamValue } from './record.js';

/** php-cgi serves one request per connection at a time, so every request on it can use the same id. */
const REQUEST_ID = 1;
const EMPTY = Buffer.alloc(0);

/** Receives one request's answer. Exactly one of onEnd / onError is called, once. */
export interface FcgiResponseHandler {
  /** Return false to stop reading from PHP until resume() (the client is slow). */
  onStdout(chunk: Buffer): boolean;
  onStderr(chunk: Buffer): void;
  onEnd(appStatus: number): void;
  onError(err: PhpgateError): void;
  /**
   * Every record of one socket read was delivered and the request goes on: what was held to see whether the
   * answer ends in this read must go out now. Return false to stop reading, as from onStdout.
   */
  onReadEnd?(): boolean;
}

export interface ConnectionOwner {
  /** The socket closed, whether or not a request was running. */
  onConnectionClose(conn: FcgiConnection): void;
  /** STDIN may be written again. */
  onConnectionDrain(conn: FcgiConnection): void;
}

export class FcgiConnection implements RecordSink {
  readonly #socket: net.Socket;
  readonly #decoder: RecordDecoder;
  readonly #owner: ConnectionOwner;
  #handler: FcgiResponseHandler | null = null;
  #stdinOpen = false;
  #closed = false;
  /** False once the stream state is unknown (PHP answered before reading all STDIN): never reuse it then. */
  #reusable = true;
  #lastError: Error | null = null;

  /** Through connect() only. TypeScript's `private`: ECMAScript has no private constructor. */
  private constructor(socket: net.Socket, owner: ConnectionOwner) {
    this.#socket = socket;
    this.#owner = owner;
    this.#decoder = new RecordDecoder(this);
    socket.on('data', this.#onData);
    socket.on('drain', this.#onDrain);
    socket.on('error', this.#onSocketError);
    socket.on('close', this.#onClose);
  }

  static connect(path: string, owner: ConnectionOwner, timeoutMs: number): Promise<FcgiConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(path);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new UpstreamError(ErrorCode.UpstreamConnect, `connect to ${path} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new UpstreamError(ErrorCode.UpstreamConnect, `connect to ${path}: ${err.message}`, { cause: err }));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new FcgiConnection(socket, owner));
      });
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The request's body has not been fully sent yet. */
  get stdinOpen(): boolean {
    return this.#stdinOpen;
  }

  get idle(): boolean {
    return this.#handler === null && !this.#closed && this.#reusable;
  }

  /**
   * Starts a request: BEGIN_REQUEST with KEEP_CONN and the params. STDIN follows with writeStdin/endStdin, or,
   * with `noBody`, its end goes out in the same write (one syscall for the common GET).
   */
  begin(params: Iterable<readonly [string, ParamValue]>, handler: FcgiResponseHandler, noBody = false): void {
    if (this.#handler !== null || this.#closed) throw new Error('FcgiConnection.begin on a busy or closed connection');
    // Encoded first: params that cannot be sent (ParamTooLarge) throw before this connection changes at all.
    const start = encodeRequestStart(REQUEST_ID, Role.Responder, Flags.KeepConn, params, noBody);
    this.#handler = handler;
    this.#stdinOpen = !noBody;
    this.#socket.write(start);
  }

  /** Returns false when the socket's buffer is full: wait for the owner's onConnectionDrain. */
  writeStdin(chunk: Buffer): boolean {
    if (!this.#stdinOpen || chunk.length === 0) return true;
    const s = this.#socket;
    let ok = true;
    s.cork();
    for (const part of encodeStreamRecords(RecordType.Stdin, REQUEST_ID, chunk)) ok = s.write(part);
    s.uncork();
    return ok;
  }

  endStdin(): void {
    if (!this.#stdinOpen) return;
    this.#stdinOpen = false;
    for (const part of encodeStreamRecords(RecordType.Stdin, REQUEST_ID, EMPTY)) this.#socket.write(part);
  }

  /** Reading was paused by onStdout returning false; the client caught up. */
  resume(): void {
    if (!this.#closed) this.#socket.resume();
  }

  destroy(): void {
    this.#socket.destroy();
  }

  onRecord(type: number, requestId: number, content: Buffer): void {
    const h = this.#handler;
    if (h === null || requestId !== REQUEST_ID) {
      // php-cgi never sends unsolicited records; one that arrives means the stream is out of step.
      this.#fail(new FastCgiProtocolError(`unexpected FastCGI record type ${type} for request ${requestId}`));
      return;
    }
    switch (type) {
      case RecordType.Stdout:
        if (content.length > 0 && !h.onStdout(content)) this.#socket.pause();
        return;
      case RecordType.Stderr:
        if (content.length > 0) h.onStderr(content);
        return;
      case RecordType.EndRequest: {
        const { appStatus, protocolStatus } = parseEndRequest(content);
        if (protocolStatus !== ProtocolStatus.RequestComplete) {
          // CANT_MPX_CONN, OVERLOADED, UNKNOWN_ROLE: the application refused the request; nothing it sent counts.
          this.#fail(new UpstreamError(ErrorCode.UpstreamClosed, `PHP refused the request (FastCGI protocol status ${protocolStatus})`));
          return;
        }
        this.#handler = null;
        // A handler that paused us for a slow client has no reason to resume once its response is over; the
        // connection must read again (the next answer, or PHP closing it) whatever the handler does.
        this.#socket.resume();
        if (this.#stdinOpen) {
          // PHP finished before we sent all of STDIN: leftover STDIN records would be read as the next request.
          this.#stdinOpen = false;
          this.#reusable = false;
          this.#socket.destroy();
        }
        h.onEnd(appStatus);
        return;
      }
      default:
        // FCGI_UNKNOWN_TYPE and friends: nothing we asked for; ignore as the spec allows.
        return;
    }
  }

  #fail(err: PhpgateError): void {
    const h = this.#handler;
    this.#handler = null;
    this.#reusable = false;
    this.#socket.destroy();
    if (h !== null) h.onError(err);
  }

  readonly #onData = (chunk: Buffer): void => {
    try {
      this.#decoder.push(chunk);
      const h = this.#handler;
      if (h !== null && h.onReadEnd !== undefined && !h.onReadEnd()) this.#socket.pause();
    } catch (err) {
      // The decoder threw a protocol error or a handler threw: the stream can't be trusted any more. The decoder's
      // FastCgiProtocolError is an UpstreamError and goes on as it is; anything else is wrapped in one.
      this.#fail(err instanceof UpstreamError ? err : new FastCgiProtocolError(String(err), { cause: err }));
    }
  };

  readonly #onDrain = (): void => {
    this.#owner.onConnectionDrain(this);
  };

  readonly #onSocketError = (err: Error): void => {
    // 'close' follows every 'error'; the request (if any) is failed there, with this error as the cause.
    this.#lastError = err;
  };

  readonly #onClose = (): void => {
    this.#closed = true;
    const h = this.#handler;
    this.#handler = null;
    if (h !== null) {
      const why = this.#lastError === null ? 'PHP closed the connection' : `PHP connection failed: ${this.#lastError.message}`;
      h.onError(new UpstreamError(ErrorCode.UpstreamClosed, `${why} before the response ended`, { cause: this.#lastError ?? undefined }));
    }
    this.#owner.onConnectionClose(this);
  };
}
