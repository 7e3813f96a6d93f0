/**
 * The CGI environment PHP sees: nginx's default `fastcgi_params` (in its order), then SCRIPT_FILENAME and
 * PATH_INFO as the usual PHP location sets them, then every request header as HTTP_*.
 * Pure: a request view in, name-value pairs out. Never touches the wire or the config.
 */

import type { ParamValue } from './fastcgi/record.js';

/** What the router and the HTTP front know about one request, already resolved to a script. */
export interface CgiRequest {
  readonly method: string;
  /** The original request target (path + query), still percent-encoded: nginx's $request_uri. */
  readonly requestUri: string;
  /** nginx's $args after any rewrite (a try_files fallback keeps the original query). */
  readonly queryString: string;
  /** Decoded script path, e.g. /index.php: nginx's $fastcgi_script_name. */
  readonly scriptName: string;
  /** Decoded part after the script, e.g. /extra/path; null: no PATH_INFO at all (an nginx route passing none). */
  readonly pathInfo: string | null;
  /** Decoded current URI after rewrites: nginx's $document_uri. */
  readonly documentUri: string;
  readonly documentRoot: string;
  readonly scriptFilename: string;
  /** HTTP/1.0, HTTP/1.1 or HTTP/2.0, as nginx spells $server_protocol. */
  readonly serverProtocol: string;
  readonly https: boolean;
  readonly remoteAddr: string;
  readonly remotePort: number;
  readonly serverAddr: string;
  readonly serverPort: number;
  readonly serverName: string;
  /** Empty when absent, as nginx sends them. */
  readonly contentType: string;
  readonly contentLength: string;
  /** Alternating names and values, as node's rawHeaders. */
  readonly rawHeaders: readonly string[];
  /**
   * HTTP_HOST as the front decided it, in place of any Host header: Debian's fastcgi_params passes nginx's validated
   * `$host`, not the header as sent (the gateway keeps a numeric port, as nginx's `$host$is_request_port$request_port`).
   * An absolute-form target's authority wins over Host (RFC 9112 §3.2.2). null: the Host header (or :authority) as sent.
   */
  readonly host: string | null;
}

export type CgiParams = Array<[string, ParamValue]>;

// Header name → HTTP_* name, memoised: the same few dozen names arrive on every request.
const httpNameCache = new Map<string, string | null>();
const HTTP_NAME_CACHE_MAX = 512;

/**
 * nginx (ignore_invalid_headers on, underscores_in_headers off) drops header names with anything but letters,
 * digits and '-'. We do the same: otherwise `X_Forwarded_For` would arrive as HTTP_X_FORWARDED_FOR and could
 * spoof a header a proxy in front set legitimately.
 */
const VALID_HEADER_NAME = /^[A-Za-z0-9-]+$/;

function httpName(name: string): string | null {
  let cgi = httpNameCache.get(name);
  if (cgi !== undefined) return cgi;
  if (!VALID_HEADER_NAME.test(name)) cgi = null;
  // httpoxy (CVE-2016-5385): a `Proxy` request header would become HTTP_PROXY, which PHP libraries (Guzzle,
  // curl wrappers) read as the outbound proxy. nginx-hardening advice and Caddy both drop it; so do we.
  else if (name.length === 5 && name.toLowerCase() === 'proxy') cgi = null;
  else cgi = 'HTTP_' + name.toUpperCase().replaceAll('-', '_');
  if (httpNameCache.size < HTTP_NAME_CACHE_MAX) httpNameCache.set(name, cgi);
  return cgi;
}

export function buildCgiParams(r: CgiRequest, serverSoftware: string): CgiParams {
  const params: CgiParams = [
    ['QUERY_STRING', r.queryString],
    ['REQUEST_METHOD', r.method],
    ['CONTENT_TYPE', r.contentType],
    ['CONTENT_LENGTH', r.contentLength],
    ['SCRIPT_NAME', r.scriptName],
    ['REQUEST_URI', r.requestUri],
    ['DOCUMENT_URI', r.documentUri],
    ['DOCUMENT_ROOT', r.documentRoot],
    ['SERVER_PROTOCOL', r.serverProtocol],
    ['REQUEST_SCHEME', r.https ? 'https' : 'http'],
  ];
  // nginx: `fastcgi_param HTTPS $https if_not_empty;` — absent, not "off", over plain HTTP.
  if (r.https) params.push(['HTTPS', 'on']);
  params.push(
    ['GATEWAY_INTERFACE', 'CGI/1.1'],
    ['SERVER_SOFTWARE', serverSoftware],
    ['REMOTE_ADDR', r.remoteAddr],
    ['REMOTE_PORT', String(r.remotePort)],
    ['REMOTE_USER', remoteUser(r.rawHeaders)],
    ['SERVER_ADDR', r.serverAddr],
    ['SERVER_PORT', String(r.serverPort)],
    ['SERVER_NAME', r.serverName],
    ['REDIRECT_STATUS', '200'],
    ['SCRIPT_FILENAME', r.scriptFilename],
  );
  if (r.pathInfo !== null) params.push(['PATH_INFO', r.pathInfo]);
  appendHeaderParams(params, r.rawHeaders, r.host);
  return params;
}

/**
 * nginx's $remote_user, as Debian's fastcgi_params passes it: the user name of an `Authorization: Basic` header
 * (the bytes before the first ':' of its base64 payload), whether or not anything checked it; '' without one, or
 * when the header is malformed (not base64, no ':'), as ngx_http_auth_basic_user declines it.
 */
export function remoteUser(raw: readonly string[]): ParamValue {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length !== 13 || name.toLowerCase() !== 'authorization') continue;
    const m = /^basic +([A-Za-z0-9+/]*={0,2})$/i.exec(raw[i + 1]!.trim());
    if (m === null || m[1]!.length % 4 === 1) return '';
    const bytes = Buffer.from(m[1]!, 'base64');
    const colon = bytes.indexOf(0x3a);
    if (colon === -1) return '';
    const user = bytes.subarray(0, colon);
    // Bytes as sent: a user name in another encoding reaches PHP unchanged, as from nginx.
    return user.every((b) => b < 0x80) ? user.toString('latin1') : user;
  }
  return '';
}

const NON_ASCII = /[\u0080-\u00ff]/;

/**
 * node hands header values over one byte per character (latin1); text params are written as UTF-8. A value with
 * bytes over 0x7F goes as those very bytes, so PHP gets what the client sent, as behind nginx — whether it is
 * UTF-8 (`X-Name: café`, cookie values) or not.
 */
function headerValue(v: string): ParamValue {
  return NON_ASCII.test(v) ? Buffer.from(v, 'latin1') : v;
}

/** Repeated headers joined, as text when both parts are (the common case), else as bytes. */
function join(a: ParamValue, sep: string, b: ParamValue): ParamValue {
  if (typeof a === 'string' && typeof b === 'string') return a + sep + b;
  return Buffer.concat([toBytes(a), Buffer.from(sep, 'latin1'), toBytes(b)]);
}

function toBytes(v: ParamValue): Buffer {
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
}

/** Request headers as HTTP_*; repeated ones joined with ", " (cookies with "; "), as nginx ≥ 1.23 does. */
function appendHeaderParams(params: CgiParams, raw: readonly string[], host: string | null): void {
  const first = params.length;
  let index: Map<string, number> | null = null;
  let hostSeen = false;
  let pseudoAuthority: string | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.charCodeAt(0) === 58 /* ':' HTTP/2 pseudo-header */) {
      if (name === ':authority' && raw[i + 1] !== '') pseudoAuthority = raw[i + 1]!;
      continue;
    }
    const cgi = httpName(name);
    if (cgi === null) continue;
    const value = headerValue(raw[i + 1]!);
    if (cgi === 'HTTP_HOST') {
      if (host !== null) continue; // the front's host wins (added below)
      hostSeen = true;
    }
    index ??= new Map();
    const at = index.get(cgi);
    if (at === undefined) {
      index.set(cgi, params.length);
      params.push([cgi, value]);
    } else {
      const pair = params[at]!;
      pair[1] = join(pair[1], cgi === 'HTTP_COOKIE' ? '; ' : ', ', value);
    }
  }
  // HTTP/2 without a Host header: its :authority is the host (as nginx turns it into one), also when the front
  // end did not give a host; otherwise PHP would see no HTTP_HOST at all.
  const hostValue = host ?? (hostSeen ? null : pseudoAuthority);
  if (hostValue !== null) params.splice(first, 0, ['HTTP_HOST', hostValue]);
}
