/**
 * nginx's PCRE regexes as gateway.yaml's JavaScript regexes: exactly (pcre.ts), or — where a refusal must stay a
 * refusal — widened to a JavaScript regex that matches at least every path the PCRE one does.
 *
 * The JavaScript text never holds whitespace (a space becomes \x20): rewrite steps and if conditions are split
 * on spaces, as nginx's directives are.
 */
import { pcreToJs } from './pcre.js';

export interface JsRegex {
  readonly source: string;
  /** `~*`: the regex matches case-insensitively. */
  readonly caseless: boolean;
  readonly notes: readonly string[];
}

/** The PCRE regex as an exact JavaScript regex, or why not. */
export function toJsRegex(pcre: string, caseless: boolean, subject: 'path' | 'bytes' = 'path'): JsRegex | { readonly reason: string } {
  const r = pcreToJs(pcre, caseless, subject);
  if (!r.ok) return { reason: `regex ${pcre}: ${r.reason}` };
  // An atomic group's emulation adds JavaScript groups: $1…$9 in the config would name other groups.
  if (r.captureMap !== undefined) return { reason: `regex ${pcre}: its JavaScript form numbers capture groups differently` };
  const flags = [...r.flags].sort().join('');
  if (flags !== '' && flags !== 'i') return { reason: `regex ${pcre}: needs the JavaScript flags "${r.flags}", which a route cannot carry` };
  return { source: noWhitespace(r.source), caseless: flags === 'i', notes: r.notes };
}

/** Whitespace as escapes (`\x20`), outside and inside classes alike; `\ ` (an escaped space) too. */
function noWhitespace(source: string): string {
  let out = '';
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (c === '\\' && i + 1 < source.length) {
      const next = source[i + 1]!;
      out += /\s/.test(next) ? hex(next) : `\\${next}`;
      i += 1;
    } else out += /\s/.test(c) ? hex(c) : c;
  }
  return out;
}

function hex(c: string): string {
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

export interface Widened {
  readonly regex: JsRegex;
  /** Only meaning-preserving rewrites were needed: the result is exact after all. */
  readonly exact: boolean;
  /** How it was widened, for the report. */
  readonly how: string;
}

/** Matches everything: what is left when nothing narrower can be said. */
const EVERYTHING: JsRegex = { source: '^', caseless: false, notes: [] };

/**
 * A JavaScript regex matching every path `pcre` matches (and perhaps more). First PCRE spellings are rewritten
 * (exactly: `\A`, `\z`, `\Z`, `(?P<n>`, `\Q…\E`, POSIX classes, `\x{…}`; widening: atomic groups and possessive
 * quantifiers lose their no-backtracking rule, inline `(?i)` makes the whole regex case-insensitive); when that is
 * still refused, the regex's fixed start (`^/admin/…`) or fixed end (`….php$`); at worst every path. `subject` as
 * toJsRegex's: a regex over a raw request value is widened for its bytes, not the decoded path's characters.
 */
export function widenRegex(pcre: string, caseless: boolean, subject: 'path' | 'bytes' = 'path'): Widened {
  const rewritten = rewritePcre(pcre);
  if (rewritten !== null) {
    const r = toJsRegex(rewritten.source, caseless || rewritten.caseless, subject);
    if (!('reason' in r)) {
      return { regex: r, exact: rewritten.exact, how: `as ${r.caseless ? '~*' : '~'} ${r.source}` };
    }
  }
  const fixed = fixedPart(pcre);
  if (fixed !== null) {
    const r = toJsRegex(fixed, caseless, subject);
    if (!('reason' in r)) return { regex: r, exact: false, how: `widened to ${r.caseless ? '~*' : '~'} ${r.source}` };
  }
  return { regex: EVERYTHING, exact: false, how: 'widened to everything (~ ^)' };
}

const POSIX: Readonly<Record<string, string>> = {
  alpha: 'a-zA-Z',
  digit: '0-9',
  alnum: 'a-zA-Z0-9',
  upper: 'A-Z',
  lower: 'a-z',
  xdigit: '0-9A-Fa-f',
  word: '\\w',
  space: '\\s',
  blank: ' \\t',
  punct: '!-\\/:-@\\[-`{-~',
};

/** PCRE-only spellings rewritten; null when something is left that cannot be (recursion, verbs, conditionals). */
function rewritePcre(src: string): { source: string; caseless: boolean; exact: boolean } | null {
  let out = '';
  let exact = true;
  let caseless = false;
  let inClass = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    const rest = src.slice(i);
    if (c === '\\') {
      const n = src[i + 1] ?? '';
      if (n === 'Q') {
        const end = src.indexOf('\\E', i + 2);
        const lit = src.slice(i + 2, end === -1 ? src.length : end);
        out += lit.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
        i = end === -1 ? src.length : end + 1;
        continue;
      }
      if (!inClass && n === 'A') out += '^';
      else if (!inClass && n === 'z') out += '$';
      else if (!inClass && n === 'Z') out += '(?=\\n?$)';
      else if (n === 'x' && src[i + 2] === '{') {
        const m = /^\\x\{([0-9a-fA-F]{1,4})\}/.exec(rest);
        if (m === null) return null;
        out += `\\u${m[1]!.padStart(4, '0')}`;
        i += m[0].length - 1;
        continue;
      } else if (n === 'a') out += '\\x07';
      else if (n === 'e') out += '\\x1b';
      else if ('KGRXCphHvVNg'.includes(n) && n !== '') return null;
      else out += `\\${n}`;
      i += 1;
      continue;
    }
    if (inClass) {
      const posix = /^\[:(\^?)(\w+):\]/.exec(rest);
      if (posix !== null) {
        const body = POSIX[posix[2]!];
        if (posix[1] === '^' || body === undefined) return null;
        out += body;
        i += posix[0].length - 1;
        continue;
      }
      // PCRE takes a `]` first in a class literally; JavaScript would end the class there.
      if (c === ']' && (out.endsWith('[') || out.endsWith('[^'))) out += '\\]';
      else {
        if (c === ']') inClass = false;
        out += c;
      }
      continue;
    }
    if (c === '[') {
      inClass = true;
      out += c;
      continue;
    }
    if (c === '(' && src[i + 1] === '?') {
      const m = /^\(\?(P<|P=|P>|>|i\)|i:|[A-Za-z-]+[):]|[R0-9&+(]|\*)/.exec(rest);
      if (m !== null) {
        const kind = m[1]!;
        if (kind === 'P<') {
          out += '(?<';
          i += 3;
        } else if (kind === 'P=') {
          const name = /^\(\?P=(\w+)\)/.exec(rest);
          if (name === null) return null;
          out += `\\k<${name[1]!}>`;
          i += name[0].length - 1;
        } else if (kind === '>') {
          out += '(?:';
          exact = false;
          i += 2;
        } else if (kind === 'i)') {
          // At the very start it makes the whole regex caseless: exact; anywhere else, widening.
          if (i !== 0 && out !== '^') exact = false;
          caseless = true;
          i += 3;
        } else if (kind === 'i:') {
          out += '(?:';
          caseless = true;
          exact = false;
          i += 3;
        } else return null;
        continue;
      }
    }
    if (c === '+' && /[*+?}]$/.test(out) && !/\\[*+?}]$/.test(out)) {
      exact = false; // possessive: X*+ matches a subset of what X* matches
      continue;
    }
    out += c;
  }
  return { source: out, caseless, exact };
}

/**
 * A superset from the regex's fixed start or end, as PCRE: `^/admin/(?>x)…` → `^/admin/`, `…\.php$` → `\.php$`
 * (toJsRegex then writes PCRE's `$` as `\n?$`). Only for a regex with no alternation at its top level.
 */
function fixedPart(src: string): string | null {
  const atoms = topLevelAtoms(src);
  if (atoms === null) return null;
  const literal = (a: Atom): a is { lit: string } => 'lit' in a;
  let start = '';
  if (atoms[0] !== undefined && 'anchor' in atoms[0] && atoms[0].anchor === '^') {
    for (const a of atoms.slice(1)) {
      if (!literal(a)) break;
      start += a.lit;
    }
  }
  let end = '';
  const last = atoms.at(-1);
  if (last !== undefined && 'anchor' in last && last.anchor === '$') {
    for (const a of atoms.slice(0, -1).reverse()) {
      if (!literal(a)) break;
      end = a.lit + end;
    }
  }
  const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  if (start.length >= 2 && start.length >= end.length) return `^${esc(start)}`;
  if (end.length >= 2) return `${esc(end)}$`;
  return null;
}

type Atom = { lit: string } | { anchor: '^' | '$' } | { other: true };

/** The regex's top-level pieces: single literal characters (quantified ones count as other), anchors, the rest. */
function topLevelAtoms(src: string): Atom[] | null {
  const atoms: Atom[] = [];
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c === '|') return null;
    if (c === '^' || c === '$') {
      atoms.push({ anchor: c });
      continue;
    }
    if ('*+?{'.includes(c)) {
      // The quantifier makes the previous atom optional or repeated: no longer a fixed character.
      if (atoms.length > 0) atoms[atoms.length - 1] = { other: true };
      if (c === '{') {
        const close = src.indexOf('}', i);
        if (close === -1) return null;
        i = close;
      }
      continue;
    }
    if (c === '\\') {
      const n = src[i + 1];
      if (n === undefined) return null;
      atoms.push(/[^A-Za-z0-9]/.test(n) ? { lit: n } : { other: true });
      i += 1;
      continue;
    }
    if (c === '[' || c === '(') {
      const end = skipGroup(src, i);
      if (end === -1) return null;
      atoms.push({ other: true });
      i = end;
      continue;
    }
    atoms.push(c === '.' ? { other: true } : { lit: c });
  }
  return atoms;
}

/** The index of the `]` or `)` closing the class or group opened at `i` (escapes and nested classes skipped), or -1. */
function skipGroup(src: string, i: number): number {
  let depth = 0;
  let inClass = false;
  for (let j = i; j < src.length; j++) {
    const c = src[j]!;
    if (c === '\\') {
      j += 1;
      continue;
    }
    if (inClass) {
      if (c === ']' && j > i + 1 && !(src[j - 1] === '[' || (src[j - 1] === '^' && src[j - 2] === '['))) {
        inClass = false;
        if (depth === 0) return j;
      }
      continue;
    }
    if (c === '[') inClass = true;
    else if (c === '(') depth += 1;
    else if (c === ')') {
      depth -= 1;
      if (depth === 0) return j;
    }
  }
  return -1;
}
