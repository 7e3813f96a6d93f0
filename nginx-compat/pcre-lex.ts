/**
 * The lexical layer of nginx's regexes as PCRE2 10.42 reads them without UTF mode: escapes, character classes
 * (POSIX ones with the "C" tables), and the byte sets they stand for. pcre-parse.ts builds the tree on it.
 */

/** Which of the 256 byte values a one-byte matcher accepts (1 = member). */
export type ByteSet = Uint8Array;

/** start: `^` `\A` `\G`; end: `$` `\Z` (end, or before a final newline); end-only: `\z`; line-*: multiline `^` `$`. */
export type AssertKind = 'start' | 'end' | 'end-only' | 'line-start' | 'line-end' | 'word' | 'not-word';

export class Refusal extends Error {}

/** PCRE2 itself rejects the pattern: nginx would not start with it. */
export const rejected = (what: string): Refusal => new Refusal(`PCRE2 rejects it (nginx -t fails): ${what}`);

export interface Flags {
  i: boolean;
  m: boolean;
  s: boolean;
  x: boolean;
  xx: boolean;
  n: boolean;
  U: boolean;
}

export function byteSet(members: Iterable<number> = []): ByteSet {
  const s = new Uint8Array(256);
  for (const b of members) s[b] = 1;
  return s;
}

export const range = (lo: number, hi: number): number[] => Array.from({ length: hi - lo + 1 }, (_, k) => lo + k);
const DIGIT = range(48, 57);
const UPPER = range(65, 90);
const LOWER = range(97, 122);
const WORD = [...DIGIT, ...UPPER, ...LOWER, 95];
/** C-locale isspace(): \t \n \v \f \r and space (not 0x85 or 0xA0: no UTF, "C" tables). */
const SPACE = [9, 10, 11, 12, 13, 32];

const POSIX: Record<string, readonly number[]> = {
  alpha: [...UPPER, ...LOWER],
  lower: LOWER,
  upper: UPPER,
  alnum: [...DIGIT, ...UPPER, ...LOWER],
  ascii: range(0, 127),
  blank: [9, 32],
  cntrl: [...range(0, 31), 127],
  digit: DIGIT,
  graph: range(33, 126),
  print: range(32, 126),
  punct: range(33, 126).filter((c) => !WORD.includes(c) || c === 95),
  space: SPACE,
  word: WORD,
  xdigit: [...DIGIT, ...range(65, 70), ...range(97, 102)],
};

export function complement(s: ByteSet): ByteSet {
  return s.map((v) => 1 - v);
}

function shorthand(letter: string): ByteSet | null {
  switch (letter) {
    case 'd':
      return byteSet(DIGIT);
    case 'w':
      return byteSet(WORD);
    case 's':
      return byteSet(SPACE);
    case 'D':
      return complement(byteSet(DIGIT));
    case 'W':
      return complement(byteSet(WORD));
    case 'S':
      return complement(byteSet(SPACE));
    default:
      return null;
  }
}

const isLetter = (c: number): boolean => (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
const otherCase = (c: number): number => c ^ 0x20;

/** Adds the other case of every ASCII letter in the set. */
function foldSet(s: ByteSet): void {
  for (let c = 65; c <= 122; c++) if (isLetter(c) && s[c] === 1) s[otherCase(c)] = 1;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,31}$/;

export type Escape =
  | { readonly k: 'char'; readonly cp: number }
  /** A character of the pattern after a backslash (`\é`): the character itself, not a byte value. */
  | { readonly k: 'literal'; readonly cp: number }
  | { readonly k: 'set'; readonly bytes: ByteSet }
  | { readonly k: 'assert'; readonly kind: AssertKind }
  | { readonly k: 'backref'; readonly group: number; readonly name: string | null }
  | { readonly k: 'quote' }
  | { readonly k: 'none' };

/** Reads the pattern's characters, escapes and classes; the grammar above them is the Parser's. */
export class Reader {
  pos = 0;
  /** Capture groups opened so far (\g{-1} counts back from here). */
  groups = 0;

  constructor(readonly src: string) {}

  atEnd(): boolean {
    return this.pos >= this.src.length;
  }

  peek(k = 0): string {
    return this.src[this.pos + k] ?? '';
  }

  /** One code point of the pattern (an astral character is one). */
  takeCodePoint(): number {
    const cp = this.src.codePointAt(this.pos)!;
    this.pos += cp > 0xffff ? 2 : 1;
    return cp;
  }

  /** In extended mode: white space and # comments between items are not part of the pattern. */
  skipExtended(f: Flags): void {
    if (!f.x) return;
    for (;;) {
      const c = this.peek();
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v') this.pos++;
      else if (c === '#') while (!this.atEnd() && this.peek() !== '\n') this.pos++;
      else return;
    }
  }

  /** After a backslash (this.pos is at it). Inside a class only 'char', 'set', 'quote' and 'none' come back. */
  escape(inClass: boolean): Escape {
    const start = this.pos;
    this.pos++;
    if (this.atEnd()) throw rejected('\\ at end of pattern');
    if (this.src.charCodeAt(this.pos) > 0x7f) return { k: 'literal', cp: this.takeCodePoint() };
    const c = this.peek();
    this.pos++;
    const here = (): string => this.src.slice(start, this.pos);
    const simple: Record<string, number> = { a: 7, e: 0x1b, f: 12, n: 10, r: 13, t: 9 };
    if (simple[c] !== undefined) return { k: 'char', cp: simple[c] };
    const sh = shorthand(c);
    if (sh !== null) return { k: 'set', bytes: sh };
    switch (c) {
      case 'x': {
        if (this.peek() === '{') {
          const m = /^\{([0-9a-fA-F]+)\}/.exec(this.src.slice(this.pos));
          if (m === null) throw rejected(`malformed ${here()}`);
          this.pos += m[0].length;
          return { k: 'char', cp: byteValue(parseInt(m[1]!, 16), here()) };
        }
        const m = /^[0-9a-fA-F]{0,2}/.exec(this.src.slice(this.pos))![0];
        this.pos += m.length;
        return { k: 'char', cp: m === '' ? 0 : parseInt(m, 16) };
      }
      case 'o': {
        const m = /^\{([0-7]+)\}/.exec(this.src.slice(this.pos));
        if (m === null) throw rejected(`malformed ${here()}`);
        this.pos += m[0].length;
        return { k: 'char', cp: byteValue(parseInt(m[1]!, 8), here()) };
      }
      case '0': {
        const m = /^[0-7]{0,2}/.exec(this.src.slice(this.pos))![0];
        this.pos += m.length;
        return { k: 'char', cp: parseInt('0' + m, 8) };
      }
      case 'c': {
        if (this.atEnd()) throw rejected('\\c at end of pattern');
        const x = this.src.charCodeAt(this.pos++);
        if (x < 32 || x > 126) throw rejected(`${here()}: \\c must be followed by a printable ASCII character`);
        return { k: 'char', cp: (x >= 97 && x <= 122 ? x - 32 : x) ^ 0x40 };
      }
      case 'Q':
        return { k: 'quote' };
      case 'E':
        return { k: 'none' };
      case 'h':
      case 'H':
      case 'v':
      case 'V':
      case 'R':
        throw new Refusal(
          `${here()} matches the single byte ${c === 'h' || c === 'H' ? '0xA0' : '0x85'} (PCRE2 without UTF), part of UTF-8 characters: no exact translation`,
        );
      case 'p':
      case 'P':
        throw new Refusal(`${here()}: without UTF mode nginx's PCRE2 applies Unicode properties to single bytes read as Latin-1; not translated`);
    }
    if (inClass) {
      if (c >= '1' && c <= '7') {
        const m = /^[0-7]{0,2}/.exec(this.src.slice(this.pos))![0];
        this.pos += m.length;
        return { k: 'char', cp: parseInt(c + m, 8) };
      }
      if (c === 'b') return { k: 'char', cp: 8 };
      if (c === '8' || c === '9') return { k: 'char', cp: c.charCodeAt(0) };
      if (/[A-Za-z]/.test(c)) throw new Refusal(`${here()} in a character class is not translated`);
      return { k: 'char', cp: this.src.codePointAt(this.pos - 1)! };
    }
    switch (c) {
      case 'b':
        return { k: 'assert', kind: 'word' };
      case 'B':
        return { k: 'assert', kind: 'not-word' };
      case 'A':
      case 'G': // \G: the start offset, which nginx always passes as 0
        return { k: 'assert', kind: 'start' };
      case 'Z':
        return { k: 'assert', kind: 'end' };
      case 'z':
        return { k: 'assert', kind: 'end-only' };
      case 'N':
        if (this.peek() === '{' && !/^\{\d+(,\d*)?\}/.test(this.src.slice(this.pos))) throw rejected(`${here()}{…} is supported only in UTF mode`);
        return { k: 'set', bytes: complement(byteSet([10])) };
      case 'C':
        return { k: 'set', bytes: byteSet(range(0, 255)) };
      case 'K':
        throw new Refusal(`\\K (reset the match start) has no JavaScript counterpart`);
      case 'X':
        throw new Refusal(`\\X (extended grapheme cluster) is not translated`);
      case 'g':
        return this.backrefG(here);
      case 'k': {
        const m = /^(?:<([^>]*)>|'([^']*)'|\{([^}]*)\})/.exec(this.src.slice(this.pos));
        if (m === null) throw rejected(`\\k must be followed by <name>, 'name' or {name}`);
        this.pos += m[0].length;
        return { k: 'backref', group: 0, name: checkName(m[1] ?? m[2] ?? m[3]!) };
      }
    }
    if (c >= '1' && c <= '9') {
      const m = /^\d*/.exec(this.src.slice(this.pos))![0];
      this.pos += m.length;
      if (m !== '')
        throw new Refusal(`${here()}: PCRE2 reads it as a backreference or an octal character depending on the group count; not translated`);
      return { k: 'backref', group: Number(c), name: null };
    }
    if (/[A-Za-z]/.test(c)) {
      if ('FLlUu'.includes(c)) throw rejected(`PCRE2 does not support ${here()}`);
      throw rejected(`unrecognized character follows \\ in ${here()}`);
    }
    return { k: 'char', cp: this.src.codePointAt(this.pos - 1)! };
  }

  backrefG(here: () => string): Escape {
    const m = /^(?:\{(-?\d+)\}|(-?\d+)|\{([^}]*)\})/.exec(this.src.slice(this.pos));
    if (m === null) throw new Refusal(`${here()}${this.src.slice(this.pos, this.pos + 1)}… (a subroutine call or unknown form) is not translated`);
    this.pos += m[0].length;
    const num = m[1] ?? m[2];
    if (num === undefined) return { k: 'backref', group: 0, name: checkName(m[3]!) };
    let n = Number(num);
    // \g{-1}: the most recently opened group before this point.
    if (n < 0) n = this.groups + 1 + n;
    if (n <= 0) throw rejected(`reference to non-existent subpattern in ${here()}`);
    return { k: 'backref', group: n, name: null };
  }

  charClass(f: Flags): { bytes: ByteSet; src: string } {
    const start = this.pos;
    this.pos++;
    if (this.src.startsWith('[:<:]]', this.pos) || this.src.startsWith('[:>:]]', this.pos))
      throw new Refusal(`${this.src.slice(start, start + 7)} (word start/end) is not translated`);
    let negate = false;
    if (this.peek() === '^') {
      negate = true;
      this.pos++;
    }
    const members = byteSet();
    let first = true;
    let quoting = false;
    for (;;) {
      if (this.atEnd()) throw rejected('missing terminating ] for character class');
      if (quoting) {
        if (this.src.startsWith('\\E', this.pos)) {
          this.pos += 2;
          quoting = false;
          continue;
        }
      } else {
        const c = this.peek();
        if (c === ']' && !first) break;
        first = false;
        if (f.xx && (c === ' ' || c === '\t')) {
          this.pos++;
          continue;
        }
        if (c === '[' && /^\[[.=]/.test(this.src.slice(this.pos)) && /^\[([.=]).*?\1\]/.test(this.src.slice(this.pos)))
          throw rejected('POSIX collating elements are not supported');
        const posix = /^\[:(\^?)([a-z]+):\]/.exec(this.src.slice(this.pos));
        if (posix !== null) {
          let cls = posix[2]!;
          // PCRE2: under caseless matching [:upper:] and [:lower:] are [:alpha:].
          if (f.i && (cls === 'upper' || cls === 'lower')) cls = 'alpha';
          const m = POSIX[cls];
          if (m === undefined) throw rejected(`unknown POSIX class name [:${posix[2]}:]`);
          for (const b of posix[1] === '^' ? range(0, 255).filter((x) => !m.includes(x)) : m) members[b] = 1;
          this.pos += posix[0].length;
          continue;
        }
      }
      const lo = this.classItem(quoting);
      if (lo === 'quote') {
        quoting = true;
        continue;
      }
      if (lo === 'none') continue;
      if (typeof lo !== 'number') {
        if (this.peek() === '-' && this.peek(1) !== ']' && this.peek(1) !== '') throw rejected('invalid range in character class');
        lo.forEach((v, b) => v === 1 && (members[b] = 1));
        continue;
      }
      if (this.peek() === '-' && this.peek(1) !== ']' && this.peek(1) !== '') {
        const save = this.pos;
        this.pos++;
        const hi = this.classItem(false);
        if (hi === 'quote' || hi === 'none') {
          this.pos = save; // `-` before \Q or \E: a literal hyphen
          members[lo] = 1;
          continue;
        }
        if (typeof hi !== 'number') throw rejected('invalid range in character class');
        if (hi < lo) throw rejected('range out of order in character class');
        for (let b = lo; b <= hi; b++) members[b] = 1;
        continue;
      }
      members[lo] = 1;
    }
    this.pos++;
    if (f.i) foldSet(members);
    const bytes = negate ? complement(members) : members;
    const src = this.src.slice(start, this.pos);
    const high = bytes.subarray(128).reduce((a, v) => a + v, 0);
    if (high !== 0 && high !== 128)
      throw new Refusal(`${src} matches some bytes ≥ 0x80 but not others: nginx's PCRE2 (no UTF) would test single bytes of UTF-8 characters`);
    return { bytes, src };
  }

  /** One member of a class: a byte value, a set (\d …), or a \Q / \E marker. */
  classItem(quoting: boolean): number | ByteSet | 'quote' | 'none' {
    if (!quoting && this.peek() === '\\') {
      const start = this.pos;
      const e = this.escape(true);
      if (e.k === 'quote') return 'quote';
      if (e.k === 'none') return 'none';
      if (e.k === 'set') return e.bytes;
      if (e.k !== 'char' && e.k !== 'literal') throw rejected(`${this.src.slice(start, this.pos)} in a character class`);
      if (e.k === 'char') return e.cp;
      this.pos = start + 1; // the escaped character is read as any other
    }
    const cp = this.takeCodePoint();
    if (cp > 0x7f)
      throw new Refusal(
        `the non-ASCII character "${String.fromCodePoint(cp)}" in a class: nginx's PCRE2 (no UTF) would match each of its UTF-8 bytes alone`,
      );
    return cp;
  }
}

export function byteValue(v: number, src: string): number {
  if (v > 0xff) throw rejected(`character code point value in ${src} is too large (no UTF mode)`);
  return v;
}

export function checkName(name: string): string {
  if (!NAME.test(name)) throw rejected(`invalid group name "${name}"`);
  return name;
}
