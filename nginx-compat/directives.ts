/**
 * One nginx directive → gateway.yaml keys (or a note, or a warning). handleDirective() is the dispatcher; the
 * functions below each translate one directive family (the table is in nginx-compat/README.md). Location blocks
 * are handed to location-blocks.ts.
 */
import { addressOrCidr, errorPageStatus, errorPageUri, fileName, INVALID } from '../config/checks.js';
import { cacheStatusHeader, cacheTuning, usesCacheStatus } from './cache.js';
import type { ImportContext, Scope } from './context.js';
import { contentType } from './content-type.js';
import { classifyParam, STOCK_INCLUDE_NOTES } from './fastcgi.js';
import { addHeader, clearHeaders } from './headers.js';
import { clientLimits, http2Streams, limitConn, limitConnStatus, limitReq, limitReqStatus } from './limits.js';
import { DEFERRED, NOTES } from './notes.js';
import { proxySetHeader } from './proxy.js';
import { isStockInclude, stockName, type Directive } from './parse.js';
import { MB, parseSize, parseTime } from './units.js';

/** Unlimited bodies (client_max_body_size 0): 1 TiB, since phpgate needs a number. */
const UNLIMITED_BODY_MB = 1_048_576;

/** One directive in its scope: translated, noted, or warned about (location blocks are handed on). */
export function handleDirective(cx: ImportContext, d: Directive, scope: Scope): void {
  if (cx.report.isHandled(d)) return;
  const note = NOTES[d.name];
  if (note !== undefined) {
    cx.report.note(d, note);
    return;
  }
  if (DEFERRED.has(d.name)) return;
  switch (d.name) {
    case 'server':
      return; // chosen in run(); the others are reported there
    case 'location':
      // The server's locations are its routes (routes.ts); one anywhere else is not reached.
      cx.report.warn(d, 'not translated: a location outside the imported server or its locations');
      return cx.report.doneTree(d);
    case 'server_name':
      if (scope.level === 'server') return serverName(cx, d);
      break;
    case 'root':
      return root(cx, d, scope);
    case 'index':
      return index(cx, d, scope);
    case 'try_files':
      return tryFiles(cx, d);
    case 'error_page':
      return errorPage(cx, d, scope);
    case 'client_max_body_size':
      return maxBody(cx, d, scope);
    case 'gzip':
    case 'brotli':
    case 'gzip_static':
    case 'brotli_static':
    case 'gzip_min_length':
    case 'brotli_min_length':
    case 'gzip_comp_level':
    case 'brotli_comp_level':
      return compression(cx, d, scope);
    case 'add_header':
      if (usesCacheStatus(d)) return cacheStatusHeader(cx, d);
      return addHeader(cx, d, scope);
    case 'expires':
      return addHeader(cx, d, scope);
    case 'more_clear_headers':
      return clearHeaders(cx, d, scope);
    case 'ssl_certificate':
    case 'ssl_certificate_key':
    case 'ssl':
      return tls(cx, d, scope);
    case 'limit_req':
      return limitReq(cx, d, scope);
    case 'limit_req_status':
      return limitReqStatus(cx, d);
    case 'limit_conn':
      return limitConn(cx, d, scope);
    case 'limit_conn_status':
      return limitConnStatus(cx, d);
    case 'http2_max_concurrent_streams':
      return http2Streams(cx, d, scope);
    case 'set_real_ip_from':
    case 'real_ip_header':
      return realIp(cx, d, scope);
    case 'fastcgi_cache_methods':
    case 'fastcgi_cache_min_uses':
    case 'fastcgi_cache_background_update':
    case 'fastcgi_cache_revalidate':
    case 'fastcgi_ignore_headers':
      return cacheTuning(cx, d);
    case 'access_log':
    case 'error_log':
    case 'log_not_found':
      return logging(cx, d, scope);
    case 'keepalive_timeout':
    case 'client_header_timeout':
    case 'client_body_timeout':
    case 'send_timeout':
    case 'large_client_header_buffers':
      return clientLimits(cx, d, scope);
    case 'worker_processes':
      return workerProcesses(cx, d);
    case 'events':
      cx.report.note(d, 'nginx process tuning: not needed');
      return cx.report.doneTree(d);
    case 'include':
      return stockInclude(cx, d, scope);
    case 'fastcgi_pass':
    case 'fastcgi_param':
    case 'fastcgi_split_path_info':
    case 'fastcgi_read_timeout':
    case 'fastcgi_hide_header':
    case 'fastcgi_intercept_errors':
      return fastcgi(cx, d, scope);
    case 'allow':
    case 'deny':
    case 'auth_basic':
    case 'auth_basic_user_file':
      return; // the routes carry them (routes.ts), nginx's locations inherit them
    case 'satisfy':
      if (d.args[0] === 'any') return cx.report.warn(d, 'failing closed: phpgate requires the address rules and auth_basic both (satisfy all)');
      return cx.report.note(d, 'phpgate requires the address rules and auth_basic both, as satisfy all');
    case 'return':
    case 'rewrite':
    case 'if':
    case 'set':
    case 'break':
      // Server-level ones are the top-level rewrite steps (translate.ts); locations' are their routes'.
      cx.report.warn(d, 'not translated: a rewrite directive outside the imported server and its locations');
      return cx.report.doneTree(d);
    case 'charset':
    case 'charset_types':
    case 'default_type':
      return contentType(cx, d, scope);
    case 'autoindex':
      if (d.args[0] === 'off') return cx.report.note(d, 'phpgate never lists directories (403 without an index file)');
      return cx.report.warn(d, 'not translated: phpgate never lists directories (403 without an index file)');
    case 'disable_symlinks':
      return symlinks(cx, d);
    case 'etag':
      if (d.args[0] === 'on') return cx.report.note(d, 'phpgate sends ETags for static files');
      return cx.report.warn(d, 'not translated: phpgate always sends ETags for static files');
    case 'proxy_pass':
      return cx.report.warn(d, 'not translated: proxy_pass outside a location');
    case 'proxy_set_header':
      // Outside a proxy_pass location: inherited by those that set none.
      return proxySetHeader(cx, d);
  }
  if (d.children !== null) {
    cx.report.warn(d, `not translated: phpgate has no equivalent of the "${d.name}" block (nothing inside it is imported)`);
    cx.report.doneTree(d);
    return;
  }
  cx.report.warn(d, 'not translated: phpgate has no equivalent');
}

function serverName(cx: ImportContext, d: Directive): void {
  const usable = d.args.filter((n) => n !== '_' && n !== '' && !n.startsWith('~') && !n.includes('*') && !n.startsWith('.'));
  const first = usable[0];
  if (first === undefined) {
    cx.report.note(d, 'catch-all name: server.server_name stays "" (phpgate answers every Host)');
    return;
  }
  cx.draft.server.server_name = first;
  const others = d.args.filter((n) => n !== first);
  cx.report.note(
    d,
    `server.server_name: ${first} (SERVER_NAME for PHP)${others.length > 0 ? `; phpgate answers every Host, ${others.join(' ')} included` : ''}`,
  );
}

function root(cx: ImportContext, d: Directive, scope: Scope): void {
  // The server's root (else http's) became php.docroot in docroot() (translate.ts), and is reported there;
  // a location's is its route's (routes.ts).
  if (scope.level !== 'location') cx.report.note(d, "overridden by the server's root");
}

function index(cx: ImportContext, d: Directive, scope: Scope): void {
  void scope; // a location's index is its route's (routes.ts)
  const names = d.args.filter((n) => fileName.parse(n) !== INVALID && !n.includes('$'));
  const dropped = d.args.filter((n) => !names.includes(n));
  if (names.length === 0) {
    cx.report.warn(d, 'not translated: php.index takes file names (no "/" or variables)');
    return;
  }
  cx.draft.php.index = names;
  cx.report.note(d, `php.index: ${names.join(', ')}`);
  const fallback = indexFallback(cx, d);
  if (fallback !== null && dropped.length === 1) {
    cx.report.note(d, `${fallback}: every route's index ends with it (an internal redirect for a directory without an index file)`);
  } else if (dropped.length > 0) cx.report.warn(d, `not translated: ${dropped.join(' ')} (php.index takes file names, no "/" or variables)`);
}

function tryFiles(cx: ImportContext, d: Directive): void {
  // The server's: for requests no location takes (routes.ts, or php.try_files without locations, translate.ts).
  cx.serverTryFiles = d;
}

function errorPage(cx: ImportContext, d: Directive, scope: Scope): void {
  if (scope.level === 'location') {
    cx.report.warn(d, "not translated: phpgate's error pages (static.error_pages) are server-wide");
    return;
  }
  const uri = d.args[d.args.length - 1] ?? '';
  let codes = d.args.slice(0, -1);
  // `=` (the page's own status) or `=CODE` (that status), as static.error_pages writes them.
  const answer = codes.at(-1)?.startsWith('=') === true ? codes.at(-1)! : null;
  if (answer !== null) codes = codes.slice(0, -1);
  if (answer !== null && !/^=(\d{3})?$/.test(answer)) {
    cx.report.warn(d, `not translated: "${answer}" is not a status`);
    return;
  }
  if (errorPageUri.parse(uri) === INVALID || uri.includes('$')) {
    cx.report.warn(d, `not translated: static.error_pages takes a URI in the docroot, not "${uri}"`);
    return;
  }
  const taken: string[] = [];
  const refused: string[] = [];
  for (const c of codes) {
    const status = errorPageStatus.parse(c);
    if (status === INVALID) refused.push(c);
    else {
      cx.draft.static.error_pages[status] = answer === null ? uri : `${answer} ${uri}`;
      taken.push(status);
    }
  }
  if (taken.length > 0) {
    cx.report.note(
      d,
      `static.error_pages: ${taken.join(', ')} → ${answer === null ? '' : `${answer} `}${uri} (the gateway's own errors; PHP's error responses pass through as with fastcgi_intercept_errors off)`,
    );
  }
  if (refused.length > 0) cx.report.warn(d, `not translated for ${refused.join(', ')}: static.error_pages takes ${errorPageStatus.expected}`);
}

function maxBody(cx: ImportContext, d: Directive, scope: Scope): void {
  if (scope.level === 'location') {
    cx.report.warn(d, 'not translated: phpgate has one body limit (server.max_body_mb) for every path');
    return;
  }
  const bytes = parseSize(d.args[0] ?? '');
  if (bytes === null) {
    cx.report.warn(d, 'not translated: not an nginx size');
    return;
  }
  if (bytes === 0) {
    cx.draft.server.max_body_mb = UNLIMITED_BODY_MB;
    cx.report.warn(d, `nginx does not limit bodies here; phpgate needs a limit: server.max_body_mb ${UNLIMITED_BODY_MB} (1 TiB)`);
    return;
  }
  const mb = Math.round((bytes / MB) * 1e6) / 1e6;
  cx.draft.server.max_body_mb = mb;
  cx.report.note(d, `server.max_body_mb: ${mb}`);
}

function compression(cx: ImportContext, d: Directive, scope: Scope): void {
  if (scope.level === 'location') {
    cx.report.warn(d, "not translated: phpgate's compression settings (compression.*, static.precompressed) are server-wide");
    return;
  }
  const arg = d.args[0] ?? '';
  const onOff = arg === 'on' ? true : arg === 'off' ? false : null;
  switch (d.name) {
    case 'gzip':
    case 'brotli':
      if (onOff === null) break;
      cx.draft.compression[d.name] = onOff;
      return cx.report.note(d, `compression.${d.name}: ${onOff}`);
    case 'gzip_static':
    case 'brotli_static':
      if (onOff === null && arg !== 'always') break;
      cx.precompressed.push(onOff !== false);
      cx.draft.static.precompressed = cx.precompressed.includes(true);
      return cx.report.note(d, `static.precompressed: ${cx.draft.static.precompressed} (file.br / file.gz served when the client accepts them)`);
    case 'gzip_comp_level':
    case 'brotli_comp_level': {
      const key = d.name === 'gzip_comp_level' ? 'gzip_level' : 'brotli_level';
      const level = /^\d{1,2}$/.test(arg) ? Number(arg) : NaN;
      if (!(level >= (key === 'gzip_level' ? 1 : 0) && level <= (key === 'gzip_level' ? 9 : 11))) break;
      cx.draft.compression[key] = level;
      return cx.report.note(d, `compression.${key}: ${level}`);
    }
    default: {
      const bytes = parseSize(arg);
      if (bytes === null) break;
      if (d.name === 'gzip_min_length' || cx.draft.compression.min_bytes === undefined) cx.draft.compression.min_bytes = bytes;
      return cx.report.note(d, `compression.min_bytes: ${bytes}`);
    }
  }
  cx.report.warn(d, 'not translated: unexpected value');
}

function tls(cx: ImportContext, d: Directive, scope: Scope): void {
  if (scope.level === 'location') return cx.report.warn(d, 'not translated: TLS settings are server-wide');
  if (d.name === 'ssl') return cx.report.note(d, 'old spelling of "listen … ssl"');
  const arg = d.args[0] ?? '';
  if (arg.includes('$') || arg.startsWith('data:') || arg.startsWith('engine:')) {
    return cx.report.warn(d, 'not translated: server.tls takes file paths');
  }
  if (d.name === 'ssl_certificate') cx.cert = d;
  else cx.key = d;
}

function realIp(cx: ImportContext, d: Directive, scope: Scope): void {
  if (scope.level === 'location') return cx.report.warn(d, 'not translated: trusted proxies are server-wide');
  if (d.name === 'real_ip_header') {
    const header = d.args[0]?.toLowerCase();
    if (header === 'x-forwarded-for')
      return cx.report.note(d, 'phpgate takes the client address from X-Forwarded-For sent by server.trusted_proxies');
    if (header === 'proxy_protocol') {
      if (cx.proxyProtocol !== null)
        return cx.report.note(
          d,
          'phpgate takes the client address from the PROXY header of connections from server.trusted_proxies (server.proxy_protocol)',
        );
      return cx.report.warn(d, 'not translated: the imported server has no "listen … proxy_protocol", so there is no PROXY header to read');
    }
    return cx.report.warn(
      d,
      'not translated: phpgate reads the client address from the PROXY header (server.proxy_protocol) or X-Forwarded-For only',
    );
  }
  const cidr = d.args[0] ?? '';
  if (addressOrCidr.parse(cidr) === INVALID) return cx.report.warn(d, `not translated: server.trusted_proxies takes ${addressOrCidr.expected}`);
  if (!cx.draft.server.trusted_proxies.includes(cidr)) cx.draft.server.trusted_proxies.push(cidr);
  cx.report.note(d, `server.trusted_proxies: ${cidr}`);
}

function logging(cx: ImportContext, d: Directive, scope: Scope): void {
  if (d.name === 'log_not_found') {
    if (d.args[0] === 'on') return cx.report.note(d, 'phpgate logs every request');
    return cx.report.warn(d, "not translated: phpgate's access log records every request, 404s included (no per-location switch)");
  }
  if (d.name === 'error_log') return cx.report.note(d, 'phpgate logs to logging.file (stdout by default) at logging.level');
  if (d.args[0] === 'off') {
    if (scope.level === 'location') return cx.report.warn(d, 'not translated: phpgate logs every request or none (logging.access)');
    cx.draft.logging.access = false;
    return cx.report.note(d, 'logging.access: false');
  }
  cx.report.note(d, 'phpgate writes one JSON access line per request to logging.file (stdout by default); the path and format are not kept');
}

function workerProcesses(cx: ImportContext, d: Directive): void {
  const arg = d.args[0] ?? '';
  if (arg === 'auto') cx.draft.server.processes = 'auto';
  else if (/^[1-9]\d*$/.test(arg)) cx.draft.server.processes = Number(arg);
  else return cx.report.warn(d, 'not translated: expected a number or auto');
  cx.report.note(d, `server.processes: ${arg}`);
}

function stockInclude(cx: ImportContext, d: Directive, scope: Scope): void {
  // Only stock files are left unexpanded by the parser (see parse.ts).
  const arg = d.args[0] ?? '';
  const rel = stockName(arg, cx.prefix);
  const note = isStockInclude(arg, cx.prefix) ? STOCK_INCLUDE_NOTES[rel] : undefined;
  const fastcgi = rel.startsWith('fastcgi') || rel === 'snippets/fastcgi-php.conf';
  if (note !== undefined && (!fastcgi || scope.php !== null || scope.level !== 'location')) return cx.report.note(d, note);
  cx.report.warn(d, `not translated: nginx's ${rel} is not read`);
}

function fastcgi(cx: ImportContext, d: Directive, scope: Scope): void {
  const pool = scope.php?.kind === 'pool' ? scope.php.pool : null;
  if (scope.level === 'location' && scope.php === null) {
    return cx.report.warn(d, 'not translated: a FastCGI setting outside a PHP location');
  }
  switch (d.name) {
    case 'fastcgi_pass':
      return; // reported by phpLocation() (location-blocks.ts)
    case 'fastcgi_split_path_info':
      // A PHP location's is its route's php.split_path_info (route-php.ts), which also reads the server's.
      return cx.report.note(d, 'inherited by the PHP locations that set none (their php.split_path_info)');
    case 'fastcgi_read_timeout': {
      const ms = parseTime(d.args[0] ?? '');
      if (ms === null || ms < 1) return cx.report.warn(d, 'not translated: not an nginx time');
      if (pool !== null) pool.timeout_ms = ms;
      else cx.draft.php.timeout_ms = ms;
      return cx.report.note(
        d,
        `${pool === null ? 'php' : `pools[${pool.name}]`}.timeout_ms: ${ms} (past it phpgate answers 504 and replaces the worker)`,
      );
    }
    case 'fastcgi_hide_header':
      if (d.args[0]?.toLowerCase() === 'x-powered-by') {
        // strip_powered_by (the default) drops the header; expose_php keeps PHP from making it in the first place.
        cx.draft.php.ini['expose_php'] = '0';
        return cx.report.note(
          d,
          'headers.strip_powered_by: true (phpgate\'s default drops X-Powered-By), and php.ini expose_php: "0" (PHP does not send it)',
        );
      }
      return cx.report.warn(d, "not translated: phpgate passes PHP's response headers on (except X-Accel-*)");
    case 'fastcgi_intercept_errors':
      if (d.args[0] === 'off') return cx.report.note(d, "PHP's error responses pass through, as phpgate does");
      return cx.report.warn(
        d,
        "not translated: phpgate passes PHP's own error responses through; static.error_pages answer the gateway's own errors",
      );
    default: {
      const [name = '', value = ''] = d.args;
      const v = classifyParam(name, value);
      switch (v.kind) {
        case 'standard':
          return cx.report.done(d);
        case 'note':
          return cx.report.note(d, v.message);
        case 'warn':
          return cx.report.warn(d, `not translated: ${v.message}`);
        case 'env': {
          const env = pool === null ? cx.draft.php.env : pool.env;
          env[v.key] = v.value;
          return cx.report.note(
            d,
            `${pool === null ? 'php' : `pools[${pool.name}]`}.env.${v.key} (php-cgi's environment: in $_SERVER and getenv(), as the parameter was)`,
          );
        }
      }
    }
  }
}

function symlinks(cx: ImportContext, d: Directive): void {
  if (d.args[0] === 'off') {
    cx.draft.static.follow_symlinks = true;
    return cx.report.note(d, 'static.follow_symlinks: true');
  }
  cx.report.note(d, 'phpgate refuses symlinks that leave the docroot (static.follow_symlinks: false)');
}

/** index's last entry when it is an absolute URI phpgate can build (nginx: an internal redirect to it), else null. */
export function indexFallback(cx: ImportContext, d: Directive): string | null {
  const last = d.args.at(-1);
  if (last === undefined || d.args.length < 2 || !last.startsWith('/') || last.includes('..') || /\s/.test(last)) return null;
  return cx.vars.unknown(last).length === 0 ? last : null;
}
