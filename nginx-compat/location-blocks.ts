/**
 * What the server block says about caching headers: `expires` and `add_header Cache-Control` at server level →
 * one static.cache_control rule for every path (a location's are its route's, routes.ts).
 */
import type { ImportContext, Scope } from './context.js';
import { rank } from './location.js';
import type { Directive } from './parse.js';
import { expiresToCacheControl } from './units.js';

/** A path that only a PHP location for every script (not a front-controller-only one) would run. */
export const OTHER_PHP_PATH = '/some/other-script.php';

/** expires and add_header Cache-Control of the server block: one static.cache_control rule for every path. */
export function cacheHeaders(cx: ImportContext, children: readonly Directive[], scope: Scope): void {
  const expires = children.filter((c) => c.name === 'expires').at(-1);
  const cc = children.filter((c) => c.name === 'add_header' && c.args[0]?.toLowerCase() === 'cache-control').at(-1);
  if (expires === undefined && cc === undefined) return;
  const parts: string[] = [];
  if (expires !== undefined) {
    const v = expiresToCacheControl(expires.args);
    if ('unsupported' in v) {
      cx.report.warn(expires, `not translated: ${v.unsupported}`);
    } else if ('off' in v) {
      cx.report.note(expires, "no Cache-Control, as phpgate's default");
    } else {
      parts.push(v.value);
    }
  }
  if (cc !== undefined && cc.args[1] !== undefined) parts.push(cc.args[1]);
  const involved = [expires, cc].filter((x): x is Directive => x !== undefined && !cx.report.isHandled(x));
  if (parts.length === 0) return;
  const globs = cx.patterns(scope);
  if (!globs.ok) {
    for (const x of involved) cx.report.warn(x, `not translated: this location has no phpgate pattern (${globs.reason})`);
    return;
  }
  // nginx sends expires' Cache-Control and add_header's as two headers; a client reads them as one list.
  const value = parts.join(', ');
  const at = scope.d ?? involved[0]!;
  for (const pattern of globs.globs) cx.cacheControl.push({ rank: rank(scope.loc, cx.orderOf(at)), pattern, d: at, value });
  for (const x of involved) cx.report.note(x, `static.cache_control: ${globs.globs.join(', ')} → "${value}"`);
}
