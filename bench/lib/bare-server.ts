/**
 * The ceiling phpgate's static path is measured against: one file answered from memory by node's own HTTP
 * machinery and nothing else (no framework, no routing beyond one path, no file system per request). HTTP/1.1 through
 * `node:http`; HTTP/2 through node's core `http2` API over TLS: the 'stream' event, `stream.respond()` and
 * `stream.end(buf)`, never the compatibility request/response objects (no 'request' listener, so node does not
 * build them).
 *
 * Run by ./bare.ts as a node process of its own (compiled to plain JS first, no loader), so its CPU time and RSS
 * are its own. Its one argument is a BareConfig as JSON; it listens on 127.0.0.1 on a port the system picks and
 * reports that port over the IPC channel. It exits when the bench goes away (the channel closes) or on SIGTERM.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';

export interface BareConfig {
  /** 'http1': `node:http`, plain; 'h2': `node:http2` core API over TLS, HTTP/2 only (ALPN h2). */
  protocol: 'http1' | 'h2';
  /** The one path answered 200; anything else is a 404 (a method other than GET or HEAD: 405). */
  urlPath: string;
  /** The file whose bytes are the answer; read once at start. */
  file: string;
  /** The answer's headers, in order (HTTP/2: lower-case names), without the ones node writes itself (Date, Connection, Keep-Alive). */
  headers: Array<[string, string]>;
  /** HTTP/1.1: how long an idle keep-alive connection is kept (node writes it as `Keep-Alive: timeout=N`); unused for h2. */
  keepAliveTimeoutMs: number;
  /** 'h2': the PEM files. */
  tls: { cert: string; key: string } | null;
}

/** What the process reports over its IPC channel once it listens. */
export interface BareReady {
  port: number;
}

const HOST = '127.0.0.1';
const config = JSON.parse(process.argv[2] ?? 'null') as BareConfig;
const BODY = readFileSync(config.file);

// ---- HTTP/1.1: node:http ----

const HEAD_1: http.OutgoingHttpHeaders = Object.fromEntries(config.headers);
const NOT_FOUND_1: http.OutgoingHttpHeaders = { 'Content-Length': '0' };
const NOT_ALLOWED_1: http.OutgoingHttpHeaders = { 'Content-Length': '0', Allow: 'GET, HEAD' };

function onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, NOT_ALLOWED_1).end();
  } else if (req.url !== config.urlPath) {
    res.writeHead(404, NOT_FOUND_1).end();
  } else {
    res.writeHead(200, HEAD_1).end(BODY); // node sends no body for HEAD
  }
}

function http1Server(): http.Server {
  return http.createServer({ keepAliveTimeout: config.keepAliveTimeoutMs }, onRequest);
}

// ---- HTTP/2: node:http2 core API ----

const { HTTP2_HEADER_METHOD, HTTP2_HEADER_PATH, HTTP2_HEADER_STATUS } = http2.constants;
/** respond() copies these (adding Date), so one object serves every stream. */
const HEAD_2: http2.OutgoingHttpHeaders = { [HTTP2_HEADER_STATUS]: 200, ...Object.fromEntries(config.headers) };
const NOT_FOUND_2: http2.OutgoingHttpHeaders = { [HTTP2_HEADER_STATUS]: 404, 'content-length': '0' };
const NOT_ALLOWED_2: http2.OutgoingHttpHeaders = { [HTTP2_HEADER_STATUS]: 405, 'content-length': '0', allow: 'GET, HEAD' };
const END_STREAM = { endStream: true } as const;

function onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
  // A stream the client resets or whose connection drops is destroyed with an error; unheard, it would end the process.
  stream.on('error', onStreamError);
  const method = headers[HTTP2_HEADER_METHOD];
  if (method !== 'GET' && method !== 'HEAD') {
    stream.respond(NOT_ALLOWED_2, END_STREAM);
  } else if (headers[HTTP2_HEADER_PATH] !== config.urlPath) {
    stream.respond(NOT_FOUND_2, END_STREAM);
  } else if (method === 'HEAD') {
    stream.respond(HEAD_2, END_STREAM);
  } else {
    stream.respond(HEAD_2);
    stream.end(BODY);
  }
}

function onStreamError(): void {
  // Ignored on purpose: a client going away mid-answer (h2load ending a run) is no error of the server's.
}

function h2Server(tls: { cert: string; key: string }): http2.Http2SecureServer {
  // noDelay as phpgate's listener sets it (and nginx's tcp_nodelay default); otherwise node's defaults.
  const server = http2.createSecureServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key), noDelay: true });
  server.on('stream', onStream);
  // Same reason as onStreamError, for a whole connection (a reset socket, a TLS error).
  server.on('sessionError', onStreamError);
  return server;
}

// ---- start ----

function bareServer(): http.Server | http2.Http2SecureServer {
  if (config.protocol === 'http1') return http1Server();
  if (config.tls === null) throw new Error('bare-server: HTTP/2 needs tls (a certificate and key)');
  return h2Server(config.tls);
}

if (process.send === undefined) throw new Error('bare-server: start it through bench/lib/bare.ts (it reports its port over IPC)');
// The bench is gone (exited, killed): nothing of it may outlive it.
process.on('disconnect', () => process.exit(0));

const server = bareServer();
server.listen(0, HOST, () => {
  const ready: BareReady = { port: (server.address() as AddressInfo).port };
  process.send!(ready);
});
