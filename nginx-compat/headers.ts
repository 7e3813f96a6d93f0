/**
 * add_header → headers.*: X-Frame-Options → frame_options, Referrer-Policy → referrer_policy,
 * X-Content-Type-Options → nosniff, Strict-Transport-Security → hsts (the exact value), Content-Security-Policy →
 * csp, any other fixed header → set, from server and http level; a location's add_headers are its route's
 * (routes.ts). Server-level Cache-Control and expires belong to static.cache_control (cacheHeaders in
 * location-blocks.ts). Also more_clear_headers.
 *
 * Two nginx rules the global keys do not share, reported where they matter: without `always` nginx adds a header
 * to 2xx/3xx responses only (phpgate to every response), and a location with any add_header of its own inherits
 * none from the server (phpgate's global headers go on every answer).
 */
import { headerName, headerValue, INVALID, referrerPolicy } from '../config/checks.js';
import { DEFAULTS } from '../config/defaults.js';
import type { ImportContext, Scope } from './context.js';
import type { HeaderKeysDraft } from './emit.js';
import { GATEWAY_OWN_HEADERS } from './notes.js';
import type { Directive } from './parse.js';

/** One add_header as a headers.* key. */
export type HeaderAssignment =
  | { readonly key: 'hsts' | 'csp' | 'referrer_policy'; readonly value: string }
  | { readonly key: 'frame_options'; readonly value: 'SAMEORIGIN' | 'DENY' }
  | { readonly key: 'nosniff'; readonly value: true }
  | { readonly key: 'set'; readonly name: string; readonly value: string };

export type Unsupported = { readonly unsupported: string };

function isCacheHeader(d: Directive): boolean {
  return d.name === 'expires' || (d.name === 'add_header' && d.args[0]?.toLowerCase() === 'cache-control');
}

/** `add_header NAME VALUE` as a headers.* key, or why it cannot be one (Cache-Control is not asked here). */
export function headerAssignment(name: string, value: string): HeaderAssignment | Unsupported {
  if (value.includes('$')) return { unsupported: 'the value holds nginx variables; phpgate sends fixed values' };
  if (headerName.parse(name) === INVALID) return { unsupported: `"${name}" is not ${headerName.expected}` };
  if (headerValue.parse(value) === INVALID) return { unsupported: `headers take ${headerValue.expected}` };
  const lower = name.toLowerCase();
  switch (lower) {
    case 'x-frame-options': {
      const v = value.trim().toUpperCase();
      if (v === 'SAMEORIGIN' || v === 'DENY') return { key: 'frame_options', value: v };
      return { unsupported: 'headers.frame_options takes SAMEORIGIN or DENY (for ALLOW-FROM, browsers read CSP frame-ancestors)' };
    }
    case 'referrer-policy': {
      const v = value.trim().toLowerCase();
      if (referrerPolicy.parse(v) === INVALID) return { unsupported: `headers.referrer_policy takes ${referrerPolicy.expected}` };
      return { key: 'referrer_policy', value: v };
    }
    case 'x-content-type-options':
      if (value.trim().toLowerCase() === 'nosniff') return { key: 'nosniff', value: true };
      return { unsupported: 'X-Content-Type-Options has one value, nosniff (headers.nosniff)' };
    case 'strict-transport-security':
      return { key: 'hsts', value };
    case 'content-security-policy':
      return { key: 'csp', value };
  }
  if (GATEWAY_OWN_HEADERS.has(lower)) {
    return { unsupported: `phpgate writes ${name} itself${lower === 'server' ? ' (headers.server)' : ''}; nginx would send a second one` };
  }
  return { key: 'set', name, value };
}

/** Where an add_header's key goes: the top level (a location's add_headers are its route's, routes.ts). */
interface HeaderTarget {
  readonly keys: HeaderKeysDraft;
  readonly top: true;
  readonly label: string;
}

function targetOf(cx: ImportContext): HeaderTarget {
  return { keys: cx.draft.headers, top: true, label: 'headers.' };
}

/** The key an assignment fills in its target: one value each, so two add_headers for it cannot both be kept. */
function slotOf(a: HeaderAssignment): string {
  return a.key === 'set' ? `set.${a.name.toLowerCase()}` : a.key;
}

function describe(a: HeaderAssignment, top: boolean): string {
  const value = a.value === true ? 'true' : JSON.stringify(a.value);
  if (a.key === 'set') return `set ${a.name}: ${value}`;
  return `${a.key}${top ? ':' : ''} ${value}`;
}

function currentValue(keys: HeaderKeysDraft, a: HeaderAssignment, earlier: Directive): string | true | undefined {
  return a.key === 'set' ? keys.set[earlier.args[0] ?? ''] : keys[a.key];
}

function assign(keys: HeaderKeysDraft, a: HeaderAssignment): void {
  switch (a.key) {
    case 'set':
      keys.set[a.name] = a.value;
      return;
    case 'frame_options':
      keys.frame_options = a.value;
      return;
    case 'nosniff':
      keys.nosniff = a.value;
      return;
    default:
      keys[a.key] = a.value;
  }
}

/** add_header (and expires, where cacheHeaders could not make a static.cache_control rule). */
export function addHeader(cx: ImportContext, d: Directive, scope: Scope): void {
  if (isCacheHeader(d)) {
    const where =
      scope.php !== null ? 'on PHP responses: send Cache-Control from PHP' : 'here: static.cache_control rules come from server and location blocks';
    return cx.report.warn(d, `not translated: caching headers ${where}`);
  }
  const [name = '', value = '', flag] = d.args;
  if (d.args.length < 2 || d.args.length > 3 || (flag !== undefined && flag !== 'always')) {
    return cx.report.warn(d, 'not translated: expected add_header NAME VALUE [always]');
  }
  if (scope.level === 'http' && cx.serverChildren.some((c) => c.name === 'add_header')) {
    return cx.report.note(d, 'not used: the server has add_header of its own, and nginx then inherits none from http');
  }
  if (value === '') return cx.report.note(d, 'nginx sends no header with an empty value');
  const a = headerAssignment(name, value);
  if ('unsupported' in a) return cx.report.warn(d, `not translated: ${a.unsupported}`);
  if (scope.level === 'location') return cx.report.warn(d, 'not translated: outside a route'); // locations' are their routes'
  const target = targetOf(cx);

  let origins = cx.headerOrigins.get(target.keys);
  if (origins === undefined) cx.headerOrigins.set(target.keys, (origins = new Map<string, Directive>()));
  const slot = slotOf(a);
  const earlier = origins.get(slot);
  if (earlier !== undefined) {
    if (currentValue(target.keys, a, earlier) === a.value) return cx.report.note(d, `the same as ${earlier.file}:${earlier.line}`);
    return cx.report.warn(
      d,
      `not translated: ${target.label}${describe(a, target.top)} — ${earlier.file}:${earlier.line} already gave ${name} another value, and phpgate sends one`,
    );
  }
  origins.set(slot, d);
  assign(target.keys, a);

  const extras: string[] = [];
  if (target.top && a.key !== 'set' && DEFAULTS.headers[a.key] === a.value) extras.push("phpgate's default already");
  if (a.key === 'hsts') extras.push('phpgate sends it over TLS only');
  if (flag !== 'always') extras.push('without "always" nginx adds it to 2xx and 3xx responses only, phpgate to every response');
  cx.report.note(d, `${target.label}${describe(a, target.top)}${extras.length > 0 ? ` (${extras.join('; ')})` : ''}`);
}

/**
 * A location with add_header of its own: nginx sends none of the enclosing block's add_headers there. A nested
 * route's add_header replaces its parent's as nginx's does, but the server's became global headers.* keys, which
 * phpgate sends on every answer. Said once, on the location, naming the headers phpgate will still send there.
 */
export function headerInheritance(cx: ImportContext, scope: Scope): void {
  const own = (scope.chain[0] ?? []).filter((c) => c.name === 'add_header' || c.name === 'expires');
  // Only add_header cuts the inheritance (expires is its own setting); expires still gives the location its Cache-Control.
  if (!own.some((c) => c.name === 'add_header') || scope.d === null) return;
  const ownNames = new Set(own.map((c) => (c.name === 'expires' ? 'cache-control' : c.args[0]?.toLowerCase())));
  const nearest = scope.chain.slice(1).find((list) => list.some((c) => c.name === 'add_header'));
  // An enclosing location's list is its route's, which this route replaces as nginx does.
  if (nearest === undefined || !cx.globalLevels.has(nearest)) return;
  const enclosing = nearest.filter((c) => c.name === 'add_header');
  const sent = enclosing.filter((e) => {
    const lower = e.args[0]?.toLowerCase();
    if (lower === undefined || ownNames.has(lower)) return false;
    if (lower === 'cache-control') return true; // the server's static.cache_control rule covers this location too
    return translated(e);
  });
  const names = [...new Set(sent.map((e) => e.args[0]!))];
  if (names.length === 0) return;
  cx.report.note(
    scope.d,
    `nginx sends none of the enclosing add_headers here (this location has add_header of its own); phpgate still sends ${names.join(', ')} (the server's headers are global)`,
  );
}

/** Whether an add_header becomes a headers.* key (the others are warned about where they stand). */
function translated(d: Directive): boolean {
  const [name = '', value = ''] = d.args;
  return value !== '' && !('unsupported' in headerAssignment(name, value));
}

/** `more_clear_headers` (headers-more): Server → headers.server "", X-Powered-By → headers.strip_powered_by. */
export function clearHeaders(cx: ImportContext, d: Directive, scope: Scope): void {
  if (scope.level === 'location') return cx.report.warn(d, 'not translated: headers.server and headers.strip_powered_by are server-wide');
  if (d.args.some((a) => a.startsWith('-'))) return cx.report.warn(d, 'not translated: phpgate removes headers unconditionally (no -s / -t)');
  const done: string[] = [];
  const others: string[] = [];
  for (const arg of d.args) {
    const lower = arg.toLowerCase();
    if (lower === 'server') {
      cx.draft.headers.server = '';
      done.push('headers.server: "" (no Server header)');
    } else if (lower === 'x-powered-by') {
      done.push("headers.strip_powered_by: true (phpgate's default)");
    } else {
      others.push(arg);
    }
  }
  if (done.length > 0) cx.report.note(d, done.join('; '));
  if (others.length > 0) cx.report.warn(d, `not translated: phpgate removes no other response headers (${others.join(', ')})`);
}
