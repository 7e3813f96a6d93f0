/**
 * nginx `try_files` → php.try_files. phpgate's router understands `$uri`, `$uri/`, file templates built on
 * `$uri` (`$uri.html`), a last URI with `?$query_string`/`?$args`, and a last `=CODE`. nginx spellings of the
 * same thing are rewritten (`/index.php$is_args$args` → `/index.php?$query_string`), and a last `@name` whose
 * named location only rewrites to the front controller (`rewrite ^ /index.php;`) becomes that URI.
 */
import { INVALID, tryFilesLast, tryFilesUri } from '../config/checks.js';
import type { Directive } from './parse.js';

export type TryFilesResult = { readonly entries: string[]; readonly named: Directive | null } | { readonly reason: string };

const KNOWN_VARIABLES = /\$(uri|query_string|args)\b/g;

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
    // `$is_args$args` is "?" and the arguments when there are any: the same request for PHP.
    entry = entry.replace('$is_args$args', '?$query_string').replace(/\?\$args$/, '?$query_string');
    if (entry.replace(KNOWN_VARIABLES, '').includes('$')) {
      return { reason: `"${raw}" uses nginx variables phpgate does not have (it knows $uri, $query_string, $args)` };
    }
    const check = last ? tryFilesLast : tryFilesUri;
    if (check.parse(entry) === INVALID) return { reason: `"${raw}" must be ${check.expected}` };
    entries.push(entry);
  }
  return { entries, named: usedNamed };
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
  if (flag !== undefined && flag !== 'last' && flag !== 'break') return null;
  if (!target.startsWith('/') || target.includes('$')) return null;
  return target.includes('?') ? target : `${target}?$query_string`;
}
