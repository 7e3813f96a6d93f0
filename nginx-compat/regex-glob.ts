/**
 * nginx location regexes → phpgate URL globs (`*` any run including `/`, `?` one character other than `/`).
 *
 * Only the regexes people actually write for locations are understood: literals and escaped punctuation,
 * `^` and `$`, `.*`, groups with alternatives (`(js|css)`, `(?:…)`, `(/|$)`), optional parts (`(\.php)?`,
 * `x?`), small literal classes (`sw[op]`) and `[^/]`. An unanchored start or end becomes `*`. Anything else
 * (`\d`, ranges, lookarounds, counted repeats) is refused with the reason, and the caller reports it: a
 * location is never guessed at.
 *
 * Some translations are close but not exact, and say so: `.+` and `[^/]+` become `*` (which also matches
 * nothing, or a `/`), a lone `.` becomes `?`, and `~*` (case-insensitive) has no glob counterpart.
 */

export type GlobResult =
  | { readonly ok: true; readonly globs: readonly string[]; readonly approximations: readonly string[] }
  | { readonly ok: false; readonly reason: string };

const STAR = 0;
const ONE = 1;
const START = 2;
const END = 3;
type Part = string | typeof STAR | typeof ONE | typeof START | typeof END;
type Alt = readonly Part[];

/** Past this many expanded alternatives the regex is not a simple list of paths any more. */
const MAX_ALTERNATIVES = 64;

class Refused extends Error {}

export function regexToGlobs(source: string, caseInsensitive: boolean): GlobResult {
  const approximations = new Set<string>();
  if (caseInsensitive) approximations.add('nginx matches it case-insensitively (~*), phpgate patterns are case-sensitive');
  let alts: Alt[];
  try {
    const p = new RegexReader(source, approximations);
    alts = p.alternation();
    if (!p.atEnd()) throw new Refused(`unexpected "${p.peek()}"`);
  } catch (err) {
    if (err instanceof Refused) return { ok: false, reason: `regex ${source}: ${err.message}` };
    throw err;
  }
  const globs: string[] = [];
  for (const alt of alts) {
    const g = toGlob(alt);
    if (g !== null && !globs.includes(g)) globs.push(g);
  }
  if (globs.length === 0) return { ok: false, reason: `regex ${source} matches no request path` };
  return { ok: true, globs, approximations: [...approximations] };
}

/** One expanded alternative as a glob, or null when it can never match a request path. */
function toGlob(alt: Alt): string | null {
  let body = '';
  let anchoredStart = false;
  let anchoredEnd = false;
  for (const [i, part] of alt.entries()) {
    if (part === START) {
      if (body !== '') return null; // something before ^: never matches
      anchoredStart = true;
    } else if (part === END) {
      if (alt.slice(i + 1).some((p) => p !== END)) return null; // something after $: never matches
      anchoredEnd = true;
    } else if (anchoredEnd) {
      return null;
    } else {
      body += part === STAR ? '*' : part === ONE ? '?' : part;
    }
  }
  // Request paths start with "/": an anchored alternative that does not can never match.
  if (anchoredStart && !body.startsWith('/') && !body.startsWith('*')) return null;
  const glob = `${anchoredStart ? '' : '*'}${body}${anchoredEnd ? '' : '*'}`;
  return glob.replace(/\*{2,}/g, '*');
}

function product(a: readonly Alt[], b: readonly Alt[]): Alt[] {
  const out: Alt[] = [];
  for (const x of a) for (const y of b) out.push([...x, ...y]);
  if (out.length > MAX_ALTERNATIVES) throw new Refused(`more than ${MAX_ALTERNATIVES} alternatives`);
  return out;
}

/** A literal character as a glob: `*` and `?` have no escape in phpgate globs. */
function literal(c: string): string {
  if (c === '*' || c === '?') throw new Refused(`a literal "${c}" cannot be written in a phpgate pattern`);
  return c;
}

/** What an atom is before its quantifier: expanded alternatives, or "any character" / "any but /". */
type Atom = { readonly alts: Alt[] } | { readonly any: 'all' | 'noslash' };

class RegexReader {
  #i = 0;
  readonly #src: string;
  readonly #approx: Set<string>;

  constructor(src: string, approx: Set<string>) {
    this.#src = src;
    this.#approx = approx;
  }

  atEnd(): boolean {
    return this.#i >= this.#src.length;
  }

  peek(): string {
    return this.#src[this.#i] ?? '';
  }

  alternation(): Alt[] {
    const out: Alt[] = [...this.#sequence()];
    while (this.peek() === '|') {
      this.#i += 1;
      out.push(...this.#sequence());
      if (out.length > MAX_ALTERNATIVES) throw new Refused(`more than ${MAX_ALTERNATIVES} alternatives`);
    }
    return out;
  }

  #sequence(): Alt[] {
    let alts: Alt[] = [[]];
    while (!this.atEnd() && this.peek() !== '|' && this.peek() !== ')') {
      const atom = this.#atom();
      alts = product(alts, this.#quantified(atom));
    }
    return alts;
  }

  #quantified(atom: Atom): Alt[] {
    const q = this.peek();
    if (q === '{') throw new Refused('counted repeats ({n,m}) are not supported');
    if (q !== '*' && q !== '+' && q !== '?') {
      if ('alts' in atom) return atom.alts;
      if (atom.any === 'all') this.#approx.add('a lone "." (any character, "/" included) is taken as "?" (one character other than "/")');
      return [[ONE]];
    }
    this.#i += 1;
    if (this.peek() === '?' || this.peek() === '+') this.#i += 1; // lazy or possessive: same set of matches
    if ('alts' in atom) {
      if (q === '?') return [[], ...atom.alts];
      throw new Refused(`"${q}" after anything but "." or [^/] is not supported`);
    }
    if (q === '?') {
      this.#approx.add('an optional "." is taken as "*"');
      return [[STAR]];
    }
    if (atom.any === 'noslash') {
      this.#approx.add(`"[^/]${q}" is taken as "${q === '+' ? '?*' : '*'}", which also matches a "/"`);
      return q === '+' ? [[ONE, STAR]] : [[STAR]];
    }
    if (q === '+') this.#approx.add('".+" is taken as "*", which also matches nothing');
    return [[STAR]];
  }

  #atom(): Atom {
    const c = this.#src[this.#i]!;
    this.#i += 1;
    switch (c) {
      case '^':
        return { alts: [[START]] };
      case '$':
        return { alts: [[END]] };
      case '.':
        return { any: 'all' };
      case '(':
        return { alts: this.#group() };
      case '[':
        return this.#charClass();
      case '\\':
        return { alts: [[this.#escape()]] };
      case '*':
      case '+':
      case '?':
      case '{':
        throw new Refused(`"${c}" with nothing to repeat`);
      case ')':
        throw new Refused('unbalanced ")"');
      default:
        return { alts: [[literal(c)]] };
    }
  }

  #group(): Alt[] {
    if (this.peek() === '?') {
      const kind = this.#src[this.#i + 1];
      if (kind !== ':') throw new Refused(`(?${kind ?? ''}…) lookarounds and flags are not supported`);
      this.#i += 2;
    }
    const inner = this.alternation();
    if (this.peek() !== ')') throw new Refused('unbalanced "("');
    this.#i += 1;
    return inner;
  }

  #escape(): string {
    const c = this.#src[this.#i];
    if (c === undefined) throw new Refused('a trailing backslash');
    this.#i += 1;
    if (/[A-Za-z0-9]/.test(c)) throw new Refused(`"\\${c}" is not supported`);
    return literal(c);
  }

  /** `[^/]`, or a class of literal characters (`[op]`, `[-_]`) taken as alternatives. */
  #charClass(): Atom {
    const close = this.#src.indexOf(']', this.#i + 1);
    if (close === -1) throw new Refused('unterminated "["');
    const body = this.#src.slice(this.#i, close);
    this.#i = close + 1;
    if (body === '^/' || body === '^\\/') return { any: 'noslash' };
    if (body.startsWith('^')) throw new Refused(`negated class [${body}] is not supported`);
    const chars: string[] = [];
    for (let j = 0; j < body.length; j++) {
      let ch = body[j]!;
      if (ch === '\\') {
        j += 1;
        ch = body[j] ?? '';
        if (/[A-Za-z0-9]/.test(ch)) throw new Refused(`"\\${ch}" in a class is not supported`);
      } else if (ch === '-' && j > 0 && j < body.length - 1) {
        throw new Refused(`ranges such as [${body}] are not supported`);
      }
      if (!chars.includes(ch)) chars.push(literal(ch));
    }
    return { alts: chars.map((ch) => [ch]) };
  }
}
