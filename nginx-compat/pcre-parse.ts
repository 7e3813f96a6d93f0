/**
 * An nginx regex → a tree, read as nginx's PCRE2 reads it: PCRE2 10.42 (Debian 12's libpcre2-8), compiled by
 * nginx with no option but PCRE2_CASELESS for `~*`. So there is no UTF mode: the pattern and the subject are
 * bytes, `.` and classes match one byte, caseless matching folds ASCII letters only (the built-in "C" tables).
 *
 * Escapes and classes are read by pcre-lex.ts. A pattern PCRE2 would reject (nginx -t fails on it) and a
 * construct with no JavaScript counterpart both throw a Refusal saying which.
 */

import { type AssertKind, type ByteSet, byteSet, checkName, complement, type Flags, range, Reader, Refusal, rejected } from './pcre-lex.js';

export { type AssertKind, type ByteSet, Refusal } from './pcre-lex.js';

export type GroupKind = 'capture' | 'plain' | 'atomic' | 'ahead' | 'not-ahead' | 'behind' | 'not-behind';
export type RepeatMode = 'greedy' | 'lazy' | 'possessive';

export type Node =
  | { readonly t: 'seq'; readonly items: readonly Node[] }
  | { readonly t: 'alt'; readonly alts: readonly Node[] }
  /** One character of the pattern (a non-ASCII one stands for its UTF-8 bytes, always matched whole). */
  | { readonly t: 'char'; readonly cp: number; readonly fold: boolean }
  /** One byte out of a set; caseless folding is already applied. `src` is the pattern text, for messages. */
  | { readonly t: 'set'; readonly bytes: ByteSet; readonly src: string }
  | { readonly t: 'group'; readonly kind: GroupKind; readonly body: Node; readonly index: number; readonly name: string | null }
  | { readonly t: 'repeat'; readonly body: Node; readonly min: number; readonly max: number; readonly mode: RepeatMode; readonly src: string }
  | { readonly t: 'assert'; readonly kind: AssertKind }
  | { readonly t: 'backref'; group: number; readonly name: string | null; readonly fold: boolean; readonly src: string };

export interface Parsed {
  readonly root: Node;
  /** Capture groups, numbered 1..groups as PCRE2 numbers them. */
  readonly groups: number;
  readonly names: ReadonlyMap<string, number>;
}

const MAX_QUANTIFIER = 65535;
/** PCRE2's default parentheses nesting limit (PARENS_NEST_LIMIT). */
const MAX_NESTING = 250;
/** Longer than any location regex; keeps the checks' work bounded. */
const MAX_LENGTH = 4096;

class Parser extends Reader {
  depth = 0;
  readonly names = new Map<string, number>();
  readonly backrefs: Extract<Node, { t: 'backref' }>[] = [];

  alternation(f: Flags): Node {
    const alts: Node[] = [];
    let items: Node[] = [];
    for (;;) {
      this.skipExtended(f);
      if (this.atEnd() || this.peek() === ')') break;
      if (this.peek() === '|') {
        this.pos++;
        alts.push(seq(items));
        items = [];
        continue;
      }
      const start = this.pos;
      const atoms = this.atom(f);
      const last = atoms.pop();
      items.push(...atoms);
      if (last === undefined) {
        // Nothing but a comment, \E or an option setting: PCRE2 applies a quantifier after the first two to the
        // item before them; after an option setting it is an error.
        const what = this.src.slice(start, this.pos);
        this.skipExtended(f);
        const save = this.pos;
        if (this.readQuantifier() === null) continue;
        const prev = items.pop();
        if (what.startsWith('(?') && !what.startsWith('(?#')) throw rejected(`quantifier does not follow a repeatable item after ${what}`);
        if (prev === undefined || prev.t === 'repeat') throw new Refusal(`a quantifier after ${what} is not translated`);
        this.pos = save;
        items.push(this.quantifier(f, prev, start));
        continue;
      }
      items.push(this.quantifier(f, last, start));
    }
    alts.push(seq(items));
    return alts.length === 1 ? alts[0]! : { t: 'alt', alts };
  }

  /** The repeat applying to `body` (the atom just read), or `body` itself. */
  quantifier(f: Flags, body: Node, start: number): Node {
    this.skipExtended(f);
    const q = this.readQuantifier();
    if (q === null) return body;
    if (body.t === 'char' && body.cp > 0x7f)
      throw new Refusal(
        `${this.src.slice(start, this.pos)}: without UTF mode the quantifier applies to the last byte of "${String.fromCodePoint(body.cp)}" only`,
      );
    if (body.t === 'assert' || (body.t === 'group' && body.kind !== 'capture' && body.kind !== 'plain' && body.kind !== 'atomic'))
      throw new Refusal(`a quantifier on an assertion (${this.src.slice(start, this.pos)}) is not translated`);
    this.skipExtended(f);
    let mode: RepeatMode = 'greedy';
    if (this.peek() === '?') {
      this.pos++;
      mode = 'lazy';
    } else if (this.peek() === '+') {
      this.pos++;
      mode = 'possessive';
    }
    // (?U) swaps greedy and lazy; possessive stays possessive.
    if (f.U && mode !== 'possessive') mode = mode === 'greedy' ? 'lazy' : 'greedy';
    const src = this.src.slice(start, this.pos);
    this.skipExtended(f);
    if (this.readQuantifier() !== null) throw rejected(`quantifier does not follow a repeatable item in "${src}…"`);
    return { t: 'repeat', body, min: q.min, max: q.max, mode, src };
  }

  /** `*` `+` `?` `{n}` `{n,}` `{n,m}` (10.42 reads `{,m}` as literal text), consumed; null if none is here. */
  readQuantifier(): { min: number; max: number } | null {
    const c = this.peek();
    if (c === '*' || c === '+' || c === '?') {
      this.pos++;
      return { min: c === '+' ? 1 : 0, max: c === '?' ? 1 : Infinity };
    }
    if (c !== '{') return null;
    const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.pos));
    if (m === null) return null;
    const min = Number(m[1]);
    const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
    if (min > MAX_QUANTIFIER || (max !== Infinity && max > MAX_QUANTIFIER)) throw rejected(`number too big in ${m[0]}`);
    if (min > max) throw rejected(`numbers out of order in ${m[0]}`);
    this.pos += m[0].length;
    return { min, max };
  }

  /** The items one piece of syntax stands for: usually one; none for comments and option settings; \Q…\E: several. */
  atom(f: Flags): Node[] {
    const c = this.peek();
    switch (c) {
      case '(':
        return this.group(f);
      case '[':
        return [{ t: 'set', ...this.charClass(f) }];
      case '.':
        this.pos++;
        return [{ t: 'set', bytes: f.s ? byteSet(range(0, 255)) : complement(byteSet([10])), src: '.' }];
      case '^':
        this.pos++;
        return [{ t: 'assert', kind: f.m ? 'line-start' : 'start' }];
      case '$':
        this.pos++;
        return [{ t: 'assert', kind: f.m ? 'line-end' : 'end' }];
      case '*':
      case '+':
      case '?':
        throw rejected(`quantifier does not follow a repeatable item at "${this.src.slice(this.pos)}"`);
      case '{':
        if (/^\{\d+(,\d*)?\}/.test(this.src.slice(this.pos)))
          throw rejected(`quantifier does not follow a repeatable item at "${this.src.slice(this.pos)}"`);
        break;
      case '\\':
        return this.escapeOutside(f);
    }
    return [charNode(this.takeCodePoint(), f)];
  }

  escapeOutside(f: Flags): Node[] {
    const start = this.pos;
    const e = this.escape(false);
    switch (e.k) {
      case 'none':
        return [];
      case 'quote': {
        const out: Node[] = [];
        while (!this.atEnd() && !this.src.startsWith('\\E', this.pos)) out.push(charNode(this.takeCodePoint(), f));
        if (!this.atEnd()) this.pos += 2;
        return out;
      }
      case 'char':
        if (e.cp > 0x7f) throw byteEscape(this.src.slice(start, this.pos));
        return [charNode(e.cp, f)];
      case 'literal':
        return [charNode(e.cp, f)];
      case 'set':
        return [{ t: 'set', bytes: e.bytes, src: this.src.slice(start, this.pos) }];
      case 'assert':
        return [{ t: 'assert', kind: e.kind }];
      case 'backref': {
        const node = { t: 'backref' as const, group: e.group, name: e.name, fold: f.i, src: this.src.slice(start, this.pos) };
        this.backrefs.push(node);
        return [node];
      }
    }
  }

  group(outer: Flags): Node[] {
    const start = this.pos;
    this.pos++;
    const f = { ...outer };
    let kind: GroupKind;
    let name: string | null = null;
    const rest = this.src.slice(this.pos);
    if (rest.startsWith('*')) throw new Refusal(`${/^\*[A-Za-z_:]*/.exec(rest)![0]}: PCRE2 verbs and start-of-pattern options are not translated`);
    if (rest.startsWith('?#')) {
      const end = this.src.indexOf(')', this.pos);
      if (end === -1) throw rejected('missing ) after (?# comment');
      this.pos = end + 1;
      return [];
    }
    const named = /^\?(?:P?<([A-Za-z0-9_]*)>|'([A-Za-z0-9_]*)')/.exec(rest);
    if (!rest.startsWith('?')) {
      kind = outer.n ? 'plain' : 'capture';
    } else if (named !== null) {
      kind = 'capture';
      name = checkName(named[1] ?? named[2]!);
      this.pos += named[0].length;
    } else if (rest.startsWith('?P=')) {
      const m = /^\?P=([^)]*)\)/.exec(rest);
      if (m === null) throw rejected('malformed (?P=name)');
      this.pos += m[0].length;
      const node = { t: 'backref' as const, group: 0, name: checkName(m[1]!), fold: outer.i, src: this.src.slice(start, this.pos) };
      this.backrefs.push(node);
      return [node];
    } else {
      const two = rest.slice(0, 3);
      const k: Record<string, GroupKind> = { '?:': 'plain', '?>': 'atomic', '?=': 'ahead', '?!': 'not-ahead', '?<=': 'behind', '?<!': 'not-behind' };
      const found = k[two] !== undefined ? two : k[two.slice(0, 2)] !== undefined ? two.slice(0, 2) : null;
      if (found !== null) {
        kind = k[found]!;
        this.pos += found.length;
      } else {
        const opts = /^\?(\^?)([imnsxJU]*)(?:-([imnsxJU]*))?([:)])/.exec(rest);
        if (opts === null) throw new Refusal(`(${groupSyntax(rest)}: ${unsupportedGroup(rest)}`);
        this.pos += opts[0].length;
        if (opts[1] === '^') {
          if (opts[3] !== undefined) throw rejected('(?^ cannot be followed by -');
          Object.assign(f, { i: false, m: false, s: false, x: false, xx: false, n: false, U: false });
        }
        setFlags(f, opts[2]!, true);
        if (opts[3] !== undefined) setFlags(f, opts[3], false);
        if (opts[4] === ')') {
          // An option setting lasts to the end of the group it is in, alternatives after it included.
          Object.assign(outer, f);
          return [];
        }
        const body = this.nested(f);
        this.close(start);
        return [{ t: 'group', kind: 'plain', body, index: 0, name: null }];
      }
    }
    const index = kind === 'capture' ? ++this.groups : 0;
    if (name !== null) {
      if (this.names.has(name)) throw rejected(`two named groups have the same name (${name})`);
      this.names.set(name, index);
    }
    const body = this.nested(f);
    this.close(start);
    return [{ t: 'group', kind, body, index, name }];
  }

  nested(f: Flags): Node {
    if (++this.depth > MAX_NESTING) throw rejected('parentheses are too deeply nested');
    const body = this.alternation(f);
    this.depth--;
    return body;
  }

  close(start: number): void {
    if (this.peek() !== ')') throw rejected(`missing ) for the group at "${this.src.slice(start, start + 20)}"`);
    this.pos++;
  }
}

function seq(items: Node[]): Node {
  return items.length === 1 ? items[0]! : { t: 'seq', items };
}

function charNode(cp: number, f: Flags): Node {
  return { t: 'char', cp, fold: f.i };
}

function byteEscape(src: string): Refusal {
  return new Refusal(`${src} is one byte ≥ 0x80 for nginx's PCRE2 (no UTF), a piece of a UTF-8 character; not translated`);
}

function setFlags(f: Flags, letters: string, on: boolean): void {
  for (const l of letters) if (l !== 'x' && l !== 'J') f[l as 'i' | 'm' | 'n' | 's' | 'U'] = on;
  // (?xx) also ignores spaces and tabs in classes; (?-x) turns both off.
  const xs = letters.split('x').length - 1;
  if (xs > 0) {
    f.x = on;
    f.xx = on && xs > 1;
  }
}

function groupSyntax(rest: string): string {
  return /^\?[^:)]{0,12}[:)]?/.exec(rest)?.[0] ?? rest.slice(0, 6);
}

function unsupportedGroup(rest: string): string {
  if (/^\?\|/.test(rest)) return 'branch reset groups are not translated';
  if (/^\?(R|[+-]?\d|&|P>)/.test(rest)) return 'recursion and subroutine calls have no JavaScript counterpart';
  if (/^\?\(/.test(rest)) return 'conditional groups have no JavaScript counterpart';
  if (/^\?C/.test(rest)) return 'callouts have no JavaScript counterpart';
  if (/^\?<?\*/.test(rest)) return 'non-atomic assertions have no JavaScript counterpart';
  return 'PCRE2 rejects it (nginx -t fails): unrecognized group syntax';
}

export function parsePcre(source: string, caseless: boolean): Parsed {
  if (source.length > MAX_LENGTH) throw new Refusal(`longer than ${MAX_LENGTH} characters: not checked`);
  const p = new Parser(source);
  const flags: Flags = { i: caseless, m: false, s: false, x: false, xx: false, n: false, U: false };
  const root = p.alternation(flags);
  if (!p.atEnd()) throw rejected(`unmatched closing parenthesis at "${source.slice(p.pos)}"`);
  for (const b of p.backrefs) {
    if (b.name !== null) {
      const n = p.names.get(b.name);
      if (n === undefined) throw rejected(`reference to non-existent subpattern (${b.src})`);
      b.group = n;
    } else if (b.group > p.groups) {
      throw rejected(`reference to non-existent subpattern (${b.src})`);
    }
  }
  return { root, groups: p.groups, names: p.names };
}
