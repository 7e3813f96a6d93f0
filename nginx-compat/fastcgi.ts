/**
 * nginx's FastCGI recipe against phpgate's CGI environment: which `fastcgi_param` lines are the standard ones
 * phpgate already sends, which are application settings (constant values → php.env), and which cannot be
 * translated. See "The CGI environment PHP must see" in the architecture notes.
 */
import { envKey, INVALID, scalarAsString } from '../config/checks.js';

export type ParamVerdict =
  | { readonly kind: 'standard' }
  | { readonly kind: 'note'; readonly message: string }
  | { readonly kind: 'env'; readonly key: string; readonly value: string }
  | { readonly kind: 'warn'; readonly message: string };

/** nginx's fastcgi_params (and fastcgi.conf's SCRIPT_FILENAME, the recipe's PATH_INFO): name → the usual value. */
const STANDARD: Readonly<Record<string, readonly string[]>> = {
  QUERY_STRING: ['$query_string', '$args'],
  REQUEST_METHOD: ['$request_method'],
  CONTENT_TYPE: ['$content_type'],
  CONTENT_LENGTH: ['$content_length'],
  SCRIPT_NAME: ['$fastcgi_script_name'],
  REQUEST_URI: ['$request_uri'],
  DOCUMENT_URI: ['$document_uri'],
  DOCUMENT_ROOT: ['$document_root'],
  SERVER_PROTOCOL: ['$server_protocol'],
  REQUEST_SCHEME: ['$scheme'],
  HTTPS: ['$https'],
  GATEWAY_INTERFACE: ['CGI/1.1'],
  SERVER_SOFTWARE: ['nginx/$nginx_version', 'nginx'],
  REMOTE_ADDR: ['$remote_addr'],
  REMOTE_PORT: ['$remote_port'],
  REMOTE_USER: ['$remote_user'],
  SERVER_ADDR: ['$server_addr'],
  SERVER_PORT: ['$server_port'],
  SERVER_NAME: ['$server_name'],
  REDIRECT_STATUS: ['200'],
  SCRIPT_FILENAME: ['$document_root$fastcgi_script_name', '$request_filename'],
  PATH_INFO: ['$fastcgi_path_info', '$path_info'],
};

/** The front-controller spelling used by locations that send every URL to one script. */
const FRONT_CONTROLLER_FILENAME = /^\$(document_root|realpath_root)\/[\w.-]+\.php$/;

export function classifyParam(name: string, value: string): ParamVerdict {
  const usual = STANDARD[name];
  if (usual?.includes(value) === true) return { kind: 'standard' };
  if (name === 'HTTP_PROXY' && value === '') {
    return { kind: 'note', message: 'httpoxy guard: phpgate never passes a Proxy request header to PHP' };
  }
  if ((name === 'SCRIPT_FILENAME' && value === '$realpath_root$fastcgi_script_name') || (name === 'DOCUMENT_ROOT' && value === '$realpath_root')) {
    return {
      kind: 'note',
      message: 'phpgate passes php.docroot as written; if it is a symlink to a release directory, write the resolved path there',
    };
  }
  if (name === 'SCRIPT_FILENAME' && FRONT_CONTROLLER_FILENAME.test(value)) {
    return { kind: 'note', message: 'front controller: phpgate reaches it through php.try_files and picks the pool by the request path' };
  }
  if (name === 'SCRIPT_NAME' && /^\/[\w.-]+\.php$/.test(value)) {
    return { kind: 'note', message: 'front controller: phpgate sets SCRIPT_NAME to the script try_files reached' };
  }
  if (name === 'HTTPS' && value === 'on') return { kind: 'note', message: 'phpgate sets HTTPS=on for requests that came over TLS' };
  if (name === 'SERVER_NAME' && value === '$host') {
    return { kind: 'note', message: 'phpgate passes server.server_name (HTTP_HOST carries the Host header)' };
  }
  if (name === 'PATH_TRANSLATED') return { kind: 'warn', message: 'phpgate does not send PATH_TRANSLATED' };
  if (name.startsWith('HTTP_')) {
    const header = name
      .slice(5)
      .toLowerCase()
      .replace(/(^|_)(\w)/g, (_m, sep: string, c: string) => `${sep === '' ? '' : '-'}${c.toUpperCase()}`);
    const host = name === 'HTTP_HOST' ? '; an application that builds links from HTTP_HOST then uses the Host the client sent' : '';
    return {
      kind: 'warn',
      message: `PHP sees the request's own ${header} header in ${name}, not "${value}" (phpgate passes the request headers as they came)${host}`,
    };
  }
  if (usual !== undefined) {
    return { kind: 'warn', message: `phpgate sets ${name} itself (nginx's usual ${usual[0]}); this override is not translated` };
  }
  if (value.includes('$')) return { kind: 'warn', message: 'a value built from nginx variables cannot be translated' };
  if (envKey.parse(name) === INVALID || scalarAsString.parse(value) === INVALID) {
    return { kind: 'warn', message: `"${name}" cannot be an environment variable name` };
  }
  return { kind: 'env', key: name, value };
}

/** The split that phpgate performs: the shortest prefix ending in `.php`, then a `/…` rest (or nothing). */
const STANDARD_SPLITS = new Set(['^(.+?\\.php)(/.*)$', '^(.+?\\.php)(|/.*)$', '^(.+?\\.php)(/.*|)$']);

export function isStandardSplit(regex: string): boolean {
  return STANDARD_SPLITS.has(regex);
}

/** What nginx's stock include files hold, and why phpgate needs none of it. */
export const STOCK_INCLUDE_NOTES: Readonly<Record<string, string>> = {
  fastcgi_params: "nginx's standard FastCGI parameters: phpgate sends the same CGI environment",
  'fastcgi.conf': "nginx's standard FastCGI parameters with SCRIPT_FILENAME: phpgate sends the same CGI environment",
  'snippets/fastcgi-php.conf':
    "Debian's PHP snippet (split_path_info, try_files $fastcgi_script_name =404, PATH_INFO): phpgate's PHP routing does the same",
  'mime.types': "phpgate's MIME table sends nginx's types for the extensions nginx's mime.types lists",
  proxy_params: "nginx's standard proxy headers (Host, X-Real-IP, X-Forwarded-For, X-Forwarded-Proto)",
};
