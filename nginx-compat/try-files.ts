/**
 * nginx `try_files` → a route's try_files (or php.try_files for a server without locations). Entries are kept as
 * nginx writes them (`$uri`, `$uri/`, templates, a last URI or `=CODE`); in a last URI `$is_args$args` becomes
 * `?$args`, the same request for PHP. A last `@name`:
 * - a named location that only rewrites to the front controller (`rewrite ^ /index.php;`) becomes that URI;
 * - any other stays `@name`: the named location is a named route (routes.ts), reached with the URI unchanged.
 */
import { INVALID, tryFilesLast, tryFilesUri } from '../config/checks.js';
import type { ImportContext } from './context.js';
import type { RewriteStep } from './emit.js';
import type { Directive } from './parse.js';

export type TryFilesResult =
  | { readonly entries: string[]; readonly named: Directive | null }
  | { readonly steps: RewriteStep[]; readonly named: Directive }
  | { readonly reason: string };

/** Variables the old global php.try_files knows (a server without locations). */
const GLOBAL_VARIABLES = /\$(uri|query_string|args)\b/g;

/** `try_files …` for php.try_files (no routes): $uri, $query_string and $args only. */
export function translateTryFiles(args: readonly string[], named: ReadonlyMap<string, Directive>): TryFilesResult {
  if (args.length < 2) return { reason: 'try_files needs at least two entries' };
  const entries: string[] = [];
  let usedNamed: Directive | null = null;
  for (const [i, raw] of args.entries()) {
    const last = i === args.length - 1;
    let entry = raw;
    if (entry.startsWith('@')) {
      if (!last) return { reason: `${entry} can only be the last entry` };
      const loc = named.get(entry.slice(1));
      if (loc === undefined) return { reason: `there is no location ${entry}` };
      const uri = frontControllerRewrite(loc);
      if (uri === null) return { reason: `location ${entry} does more than rewrite to a script` };
      usedNamed = loc;
      entry = uri;
    }
    entry = entry.replace('$is_args$args', '?$query_string').replace(/\?\$args$/, '?$query_string');
    if (entry.replace(GLOBAL_VARIABLES, '').includes('$')) {
      return { reason: `"${raw}" uses nginx variables phpgate does not have (it knows $uri, $query_string, $args)` };
    }
    const check = last ? tryFilesLast : tryFilesUri;
    if (check.parse(entry) === INVALID) return { reason: `"${raw}" must be ${check.expected}` };
    entries.push(entry);
  }
  return { entries, named: usedNamed };
}

/** A route's `try_files`: entries with the variables routes know, a last `@name` as described above. */
export function routeTryFiles(cx: ImportContext, d: Directive): TryFilesResult {
  const args = d.args;
  if (args.length < 2) return { reason: 'try_files needs at least two entries' };
  const entries: string[] = [];
  for (const [i, raw] of args.entries()) {
    const last = i === args.length - 1;
    if (raw.startsWith('@')) {
      if (!last) return { reason: `${raw} can only be the last entry` };
      return namedFallback(cx, raw.slice(1), entries);
    }
    // Only a last entry is a URI, where `?$args` means the same; elsewhere `$is_args` is part of a file name.
    const entry = last ? raw.replace('$is_args$args', '?$args') : raw;
    const unknown = cx.vars.unknown(entry);
    if (unknown.length > 0) return { reason: `"${raw}": ${unknown.map((v) => `$${v} is ${cx.vars.why(v)}`).join('; ')}` };
    const check = last ? tryFilesLast : tryFilesUri;
    if (check.parse(entry) === INVALID) return { reason: `"${raw}" must be ${check.expected}` };
    entries.push(entry);
  }
  return { entries, named: null };
}

function namedFallback(cx: ImportContext, name: string, before: readonly string[]): TryFilesResult {
  const loc = cx.named.get(name);
  if (loc === undefined) return { reason: `there is no location @${name}` };
  const uri = frontControllerRewrite(loc);
  if (uri !== null) return { entries: [...before, uri.replace(/\?\$query_string$/, '?$args')], named: loc };
  // Any other named location is a named route (`@name`), reached as nginx reaches it: with the URI unchanged.
  return { entries: [...before, `@${name}`], named: loc };
}

/**
 * `location @x { rewrite ^ /index.php; }` (Drupal's @rewrite) → `/index.php?$query_string`: a rewrite whose
 * replacement has no `?` keeps the request's arguments. Anything with captures (`?q=$1`) is not a plain URI.
 */
function frontControllerRewrite(loc: Directive): string | null {
  const children = loc.children ?? [];
  if (children.length !== 1) return null;
  const r = children[0]!;
  if (r.name !== 'rewrite' || r.args.length < 2 || r.args.length > 3) return null;
  const [regex, target, flag] = r.args as [string, string, string | undefined];
  if (!['^', '^(.*)$', '^/(.*)$', '.*', '^.*$'].includes(regex)) return null;
  // break would serve the new URI from the named location itself (a static file), not route it again.
  if (flag !== undefined && flag !== 'last') return null;
  if (!target.startsWith('/') || target.includes('$')) return null;
  return target.includes('?') ? target : `${target}?$query_string`;
}
