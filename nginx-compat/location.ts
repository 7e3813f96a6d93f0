/**
 * nginx `location` blocks: their modifier and path, the URL globs they stand for, and how they match a path.
 *
 * nginx picks one location per request (exact `=`, then the longest prefix, whose `^~` stops the regex search,
 * then the regexes in order, then the longest prefix); phpgate's rules are first-match-wins lists. `rank()`
 * orders the globs the same way: exact paths, then regexes in file order, then prefixes longest first.
 */
import type { Directive } from './parse.js';
import { regexToGlobs, type GlobResult } from './regex-glob.js';

export const LocationKind = {
  Exact: '=',
  Prefix: 'prefix',
  /** `^~`: a prefix that, when it is the longest match, stops the regex search. */
  PrefixNoRegex: '^~',
  Regex: '~',
  RegexCaseless: '~*',
  Named: '@',
} as const;
export type LocationKind = (typeof LocationKind)[keyof typeof LocationKind];

export interface Location {
  readonly kind: LocationKind;
  /** The path, regex or name as written (without the modifier). */
  readonly match: string;
}

/** `location [=|~|~*|^~] uri` or `location @name`, also in nginx's joined spellings (`=/x`, `~*\.css$`). */
export function readLocation(d: Directive): Location | { readonly error: string } {
  const [a, b, ...rest] = d.args;
  if (a === undefined || rest.length > 0) return { error: 'location takes a modifier and a path' };
  if (b !== undefined) {
    switch (a) {
      case '=':
        return { kind: LocationKind.Exact, match: b };
      case '^~':
        return { kind: LocationKind.PrefixNoRegex, match: b };
      case '~':
        return { kind: LocationKind.Regex, match: b };
      case '~*':
        return { kind: LocationKind.RegexCaseless, match: b };
      default:
        return { error: `unknown location modifier "${a}"` };
    }
  }
  if (a.startsWith('@')) return { kind: LocationKind.Named, match: a.slice(1) };
  if (a.startsWith('=')) return { kind: LocationKind.Exact, match: a.slice(1) };
  if (a.startsWith('^~')) return { kind: LocationKind.PrefixNoRegex, match: a.slice(2) };
  if (a.startsWith('~*')) return { kind: LocationKind.RegexCaseless, match: a.slice(2) };
  if (a.startsWith('~')) return { kind: LocationKind.Regex, match: a.slice(1) };
  return { kind: LocationKind.Prefix, match: a };
}

export function isRegex(loc: Location): boolean {
  return loc.kind === LocationKind.Regex || loc.kind === LocationKind.RegexCaseless;
}

export function describeLocation(loc: Location): string {
  if (loc.kind === LocationKind.Prefix) return loc.match;
  if (loc.kind === LocationKind.Named) return `@${loc.match}`;
  return `${loc.kind} ${loc.match}`;
}

/** The URL globs a location stands for: `= /x` → `/x`, `/api/` → `/api/*`, a simple regex → its globs. */
export function locationGlobs(loc: Location): GlobResult {
  switch (loc.kind) {
    case LocationKind.Named:
      return { ok: false, reason: `@${loc.match} is a named location (only reached by try_files or error_page)` };
    case LocationKind.Exact:
    case LocationKind.Prefix:
    case LocationKind.PrefixNoRegex: {
      if (!loc.match.startsWith('/')) return { ok: false, reason: `"${loc.match}" does not start with "/"` };
      if (/[*?]/.test(loc.match)) return { ok: false, reason: `"${loc.match}" holds "*" or "?", which phpgate patterns cannot take literally` };
      return { ok: true, globs: [loc.kind === LocationKind.Exact ? loc.match : `${loc.match}*`], approximations: [] };
    }
    default:
      return regexToGlobs(loc.match, loc.kind === LocationKind.RegexCaseless);
  }
}

/** Whether nginx's location would take `uriPath` on its own merits (ignoring which other locations exist). */
export function locationMatches(loc: Location, uriPath: string): boolean {
  switch (loc.kind) {
    case LocationKind.Named:
      return false;
    case LocationKind.Exact:
      return uriPath === loc.match;
    case LocationKind.Prefix:
    case LocationKind.PrefixNoRegex:
      return uriPath.startsWith(loc.match);
    default: {
      const re = toJsRegExp(loc);
      return re !== null && re.test(uriPath);
    }
  }
}

/** PCRE as JavaScript: the location regexes people write mean the same in both; null when JS cannot read it. */
function toJsRegExp(loc: Location): RegExp | null {
  try {
    return new RegExp(loc.match, loc.kind === LocationKind.RegexCaseless ? 'i' : '');
  } catch (err) {
    void err; // PCRE-only syntax (possessive quantifiers, \Q…\E): the caller treats it as matching nothing
    return null;
  }
}

/** Sort key for first-match-wins lists in nginx's precedence: exact, regexes in file order, prefixes longest first. */
export function rank(loc: Location | null, order: number): readonly [number, number] {
  if (loc === null) return [3, order]; // server-wide: after every location
  if (loc.kind === LocationKind.Exact) return [0, order];
  if (isRegex(loc)) return [1, order];
  return [2, -loc.match.length];
}
