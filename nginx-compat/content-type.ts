/**
 * What decides static files' Content-Type. nginx's charset module: `charset` and `charset_types` at http or server
 * level become static.charset and static.charset_types (the server's win over http's: it is read after); phpgate's
 * are server-wide and apply to static files, PHP's answers carry PHP's own charset (default_charset).
 * `default_type`: phpgate's is Debian's, application/octet-stream.
 */
import { charset as charsetCheck, INVALID, mediaType } from '../config/checks.js';
import { DEFAULTS } from '../config/defaults.js';
import type { ImportContext, Scope } from './context.js';
import type { Directive } from './parse.js';

/** The type of files whose extension no table knows, as Debian's nginx.conf sets it. */
const DEFAULT_TYPE = 'application/octet-stream';

export function contentType(cx: ImportContext, d: Directive, scope: Scope): void {
  if (d.name === 'charset_types') return charsetTypes(cx, d, scope);
  if (d.name === 'default_type') return defaultType(cx, d);
  const arg = d.args[0] ?? '';
  if (arg.includes('$')) return cx.report.warn(d, 'not translated: static.charset takes a charset name, not a variable');
  const name = charsetCheck.parse(arg);
  if (name === INVALID) return cx.report.warn(d, `not translated: static.charset must be ${charsetCheck.expected}`);
  if (scope.level === 'location') {
    // nginx's charset names are case-insensitive.
    if (name.toLowerCase() === (cx.draft.static.charset ?? DEFAULTS.static.charset).toLowerCase())
      return cx.report.note(d, "the server's static.charset already");
    return cx.report.warn(d, "not translated: phpgate's static.charset is server-wide (this location's files are sent with the server's)");
  }
  cx.draft.static.charset = name;
  if (name === '') return cx.report.note(d, 'static.charset: "" (no charset on static files, the default)');
  cx.report.note(d, `static.charset: ${name} (added to static files of static.charset_types; PHP's answers carry PHP's own, default_charset)`);
}

function charsetTypes(cx: ImportContext, d: Directive, scope: Scope): void {
  if (scope.level === 'location') return cx.report.warn(d, "not translated: phpgate's static.charset_types are server-wide");
  const bad = d.args.filter((t) => mediaType.parse(t) === INVALID);
  if (bad.length > 0 || d.args.length === 0) return cx.report.warn(d, `not translated: static.charset_types takes ${mediaType.expected}`);
  cx.draft.static.charset_types = [...d.args];
  cx.report.note(d, `static.charset_types: ${d.args.join(', ')} (text/html always)`);
}

function defaultType(cx: ImportContext, d: Directive): void {
  const known = "phpgate sends nginx's mime.types types, and mime-types' for extensions nginx's table lacks (.mjs, .md, .csv …)";
  if (d.args[0]?.toLowerCase() === DEFAULT_TYPE) return cx.report.note(d, `${known}; ${DEFAULT_TYPE} for the rest, as here`);
  cx.report.warn(d, `not translated: ${known}; ${DEFAULT_TYPE} for the rest`);
}
