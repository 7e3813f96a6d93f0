/**
 * nginx variables for one request while routes are chosen: the request's own ($host, $http_NAME, $cookie_NAME,
 * $arg_NAME …), the current URI and arguments as rewrites change them, the last regex's captures, and those `set`
 * makes. One object per request, made only when a route needs a variable (most requests never do).
 */
import type { IncomingMessage } from 'node:http';
import type { TemplatePart } from '../../config/types.js';
import type { ClientInfo } from '../http/client-address.js';
import { cookieValue, headerValue, requestHost } from '../http/request.js';
import type { ParsedTarget } from '../http/uri.js';

/** What the variables are read from, besides the request. */
export interface RouteState {
  /** nginx's $uri: the decoded, normalised path, as rewrites and internal redirects change it. */
  uri: string;
  /** nginx's $args. */
  args: string;
  /** The last successful regex match (location, rewrite or if): $1…$9 and named groups. */
  captures: RegExpExecArray | null;
  /** The current route's root ($document_root) and how a URI maps to a file ($request_filename). */
  root: string;
  fileOf: (uri: string) => string;
  /** The route's fastcgi_split_path_info: $fastcgi_script_name and $fastcgi_path_info are the current URI split by it. */
  split: RegExp | null;
}

export class RequestVars {
  #set: Map<string, string> | null = null;

  constructor(
    readonly req: IncomingMessage,
    readonly target: ParsedTarget,
    readonly client: ClientInfo,
    readonly serverName: string,
    readonly state: RouteState,
  ) {}

  set(name: string, value: string): void {
    (this.#set ??= new Map()).set(name, value);
  }

  render(parts: readonly TemplatePart[]): string {
    if (parts.length === 1 && 'text' in parts[0]!) return parts[0].text;
    let out = '';
    for (const p of parts) out += 'text' in p ? p.text : this.get(p.variable);
    return out;
  }

  /** A variable's value ('' when it has none, as nginx's empty value). */
  get(name: string): string {
    const set = this.#set?.get(name);
    if (set !== undefined) return set;
    const s = this.state;
    switch (name) {
      case 'uri':
      case 'document_uri':
        return s.uri;
      case 'request_uri':
        return this.target.requestUri;
      case 'args':
      case 'query_string':
        return s.args;
      case 'is_args':
        return s.args === '' ? '' : '?';
      case 'host':
        return requestHost(this.req, this.target) || this.serverName;
      case 'http_host':
        return headerValue(this.req, 'host');
      case 'scheme':
        return this.client.https ? 'https' : 'http';
      case 'https':
        return this.client.https ? 'on' : '';
      case 'server_name':
        return this.serverName;
      case 'server_port':
        return String(this.req.socket.localPort ?? '');
      case 'request_method':
        return this.req.method ?? '';
      case 'remote_addr':
        return this.client.address;
      case 'document_root':
      case 'realpath_root':
        return s.root;
      case 'request_filename':
        return s.fileOf(s.uri);
      case 'fastcgi_script_name':
      case 'fastcgi_path_info': {
        // As nginx: computed from the URI now (try_files changing the URI empties $fastcgi_path_info).
        const m = s.split === null ? null : s.split.exec(s.uri);
        if (name === 'fastcgi_path_info') return m?.[2] ?? '';
        return m?.[1] ?? s.uri;
      }
      case 'request':
        return `${this.req.method ?? ''} ${this.target.requestUri} HTTP/${this.req.httpVersion}`;
      case 'server_protocol':
        return `HTTP/${this.req.httpVersion}`;
      case 'content_type':
        return headerValue(this.req, 'content-type');
      case 'content_length':
        return headerValue(this.req, 'content-length');
    }
    if (name.length === 1 && name >= '0' && name <= '9') return s.captures?.[Number(name)] ?? '';
    if (name.startsWith('http_')) return headerValue(this.req, name.slice(5).replace(/_/g, '-'));
    if (name.startsWith('cookie_')) return cookieValue(this.req.headers.cookie, name.slice(7));
    if (name.startsWith('arg_')) return argValue(s.args, name.slice(4));
    return s.captures?.groups?.[name] ?? '';
  }
}

/** nginx's $arg_NAME: the raw (still encoded) value of the first argument named so, in any letter case. */
function argValue(args: string, name: string): string {
  for (const pair of args.split('&')) {
    const eq = pair.indexOf('=');
    const key = eq === -1 ? pair : pair.slice(0, eq);
    if (key.toLowerCase() === name) return eq === -1 ? '' : pair.slice(eq + 1);
  }
  return '';
}

/** nginx's truth of a value: empty and "0" are false. */
export function isTrue(value: string): boolean {
  return value !== '' && value !== '0';
}
