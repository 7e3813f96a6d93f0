/**
 * nginx location (PCRE2) regexes → JavaScript regexes that match exactly the same request paths, or a refusal
 * naming the construct. Reading follows nginx on Debian 12: PCRE2 10.42 without UTF mode, `~*` = PCRE2_CASELESS
 * (pcre-lex.ts, pcre-parse.ts); what must hold beyond syntax is checked in pcre-check.ts — chiefly that nginx's
 * byte-wise matching of `.` and negated classes cannot tell from JavaScript's character-wise one.
 *
 * The result is used as `new RegExp(source, flags)` on the decoded path. Never with the `u` flag: the
 * translation works on UTF-16 code units, where `\w`, `\b` and case folding stay ASCII as in nginx (with `u`
 * and `i`, `\w` would match ſ and K); flags is '' or 'i'. Runs on node 20 and later (lookbehind, named groups;
 * no modifiers, no `v`).
 *
 * What is rewritten, and why:
 *  - `$` and `\Z` match at the end or before a final newline (a path can hold a decoded %0A): `(?=\n?$)`, or
 *    `\n?$` at the very end of the pattern (the match then includes the newline; nginx has no $0). `\z` is `$`.
 *  - `.` is `[^\n]` (JavaScript's also stops at \r, U+2028, U+2029), `\s` is `[\t-\r ]`, `\S` `[^\t-\r ]`.
 *  - `~*` and `(?i)` give the `i` flag when the whole pattern is caseless; when only part of it is (`(?i:…)`,
 *    `(?-i)`), or a caseless literal is a non-ASCII letter (PCRE2 folds ASCII only), letters are written
 *    `[aA]` and no flag is set.
 *  - `(?P<n>…)` and `(?'n'…)` are `(?<n>…)`; backreferences are numbered ones.
 *  - a possessive single character or set, `X*+`, is `X*(?!X)`; other atomic groups and possessive repeats are
 *    `(?=(…))\N`, which adds a capture group: `captureMap` then gives, for each PCRE2 group number, the
 *    JavaScript one (jsRegexFor's RegExp renumbers its matches itself).
 *  - an optional group that can match empty, `(…)?`, is `(?:(…)|)`: JavaScript refuses an empty pass.
 */
import { checkPcre, type SetMode } from './pcre-check.js';
import { type ByteSet, type Node, type Parsed, parsePcre, Refusal } from './pcre-parse.js';

export type PcreTranslation =
  | {
      readonly ok: true;
      readonly source: string;
      readonly flags: '' | 'i';
      readonly notes: string[];
      /** Present when JavaScript group numbers differ: captureMap[pcreGroup] = jsGroup (index 0 is the match). */
      readonly captureMap?: readonly number[];
    }
  | { readonly ok: false; readonly reason: string };

type FoldMode = 'flag' | 'expand' | 'none';

const isLetter = (c: number): boolean => (c >= 65 && c <= 90) || (c >= 97 && c <= 122);

/**
 * `subject`: 'path' (the decoded URI, UTF-8 as JavaScript characters: see above), or 'bytes' — a raw request value
 * ($request_uri, $args, headers and cookies), which node gives one character per byte (latin1; a request line with
 * bytes ≥ 0x80 is refused before any route): then no byte/character gap exists, only an ASCII pattern is taken.
 */
export function pcreToJs(source: string, caseInsensitive: boolean, subject: 'path' | 'bytes' = 'path'): PcreTranslation {
  let parsed: Parsed;
  let modes: Map<Node, SetMode>;
  if (subject === 'bytes' && [...source].some((c) => c.charCodeAt(0) > 0x7f))
    return { ok: false, reason: 'a non-ASCII character in a regex over a raw request value' };
  try {
    parsed = parsePcre(source, caseInsensitive);
    modes = checkPcre(parsed, subject === 'bytes');
  } catch (err) {
    if (err instanceof Refusal) return { ok: false, reason: err.message };
    throw err;
  }
  const notes: string[] = [];
  const fold = foldMode(parsed.root);
  if (fold === 'expand') notes.push('caseless only in part, or around a non-ASCII letter: letters written as [aA] (nginx folds ASCII only)');
  for (const [node, mode] of modes)
    if (mode === 'ascii' && node.t === 'set')
      notes.push(`${node.src} can only match a one-byte (ASCII) character there in nginx, which counts bytes: written so`);
  const e = new Emitter(fold, modes);
  const js = e.top(parsed.root);
  try {
    new RegExp(js, fold === 'flag' ? 'i' : '');
  } catch (err) {
    // A translation JavaScript rejects is a bug here; say so rather than hand it on.
    return { ok: false, reason: `internal: the translation ${js} does not compile (${(err as Error).message})` };
  }
  const result = { ok: true as const, source: js, flags: fold === 'flag' ? ('i' as const) : ('' as const), notes };
  if (e.captureMap.some((js, pcre) => js !== pcre)) {
    notes.push('an atomic group or possessive repeat adds a JavaScript capture group: numbers mapped by captureMap');
    return { ...result, captureMap: e.captureMap };
  }
  return result;
}

/** The regex itself, or null when the pattern is refused. Its matches carry PCRE2's group numbers. */
export function jsRegexFor(source: string, caseInsensitive: boolean): RegExp | null {
  const r = pcreToJs(source, caseInsensitive);
  if (!r.ok) return null;
  return r.captureMap === undefined ? new RegExp(r.source, r.flags) : new RenumberedRegExp(r.source, r.flags, r.captureMap);
}

/** A RegExp whose exec() (and so test, match, replace) reports groups by the PCRE2 numbers. */
class RenumberedRegExp extends RegExp {
  constructor(
    source: string,
    flags: string,
    private readonly map: readonly number[],
  ) {
    super(source, flags);
  }

  override exec(s: string): RegExpExecArray | null {
    const m = super.exec(s);
    if (m === null) return null;
    const out = this.map.map((js) => m[js]) as unknown as RegExpExecArray;
    out.index = m.index;
    out.input = m.input;
    out.groups = m.groups;
    return out;
  }
}

/** 'flag' when every letter is caseless and JavaScript's i folds exactly as PCRE2's; 'expand' when mixed. */
function foldMode(root: Node): FoldMode {
  let folded = false;
  let plain = false;
  let nonAsciiCased = false;
  let openSet = false;
  walk(root, (n) => {
    if (n.t === 'char') {
      if (isLetter(n.cp)) {
        if (n.fold) folded = true;
        else plain = true;
      } else if (n.cp > 0x7f) {
        // Under JavaScript's i, é would match É, caseless or not here; PCRE2 without UTF folds ASCII only.
        const c = String.fromCodePoint(n.cp);
        if (c.toUpperCase() !== c || c.toLowerCase() !== c) nonAsciiCased = true;
      }
    } else if (n.t === 'set') {
      for (let c = 65; c <= 90; c++) if (n.bytes[c] !== n.bytes[c + 32]) openSet = true;
    }
  });
  if (!folded) return 'none';
  return plain || nonAsciiCased || openSet ? 'expand' : 'flag';
}

function walk(n: Node, f: (n: Node) => void): void {
  f(n);
  if (n.t === 'seq') n.items.forEach((i) => walk(i, f));
  else if (n.t === 'alt') n.alts.forEach((a) => walk(a, f));
  else if (n.t === 'group' || n.t === 'repeat') walk(n.body, f);
}

const SPECIAL = new Set('\\^$.|?*+()[]{}');
const CLASS_SPECIAL = new Set('\\]^-[');
const DIGITS = range(48, 57);
const WORD = [...DIGITS, ...range(65, 90), 95, ...range(97, 122)];

function range(lo: number, hi: number): number[] {
  return Array.from({ length: hi - lo + 1 }, (_, k) => lo + k);
}

const sameList = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((v, i) => v === b[i]);

function hex(c: number): string {
  return c <= 0xff ? `\\x${c.toString(16).padStart(2, '0')}` : `\\u${c.toString(16).padStart(4, '0')}`;
}

/** One code unit in a class, escaped where it must be or is unreadable. */
function classUnit(c: number): string {
  if (c === 9) return '\\t';
  if (c === 10) return '\\n';
  if (c === 13) return '\\r';
  if (c < 0x20 || c === 0x7f) return hex(c);
  const s = String.fromCharCode(c);
  return CLASS_SPECIAL.has(s) ? '\\' + s : s;
}

function classBody(members: readonly number[]): string {
  let out = '';
  for (let i = 0; i < members.length;) {
    let j = i;
    while (j + 1 < members.length && members[j + 1] === members[j]! + 1) j++;
    const lo = members[i]!;
    const hi = members[j]!;
    out +=
      j - i >= 2
        ? `${classUnit(lo)}-${classUnit(hi)}`
        : members
            .slice(i, j + 1)
            .map(classUnit)
            .join('');
    i = j + 1;
  }
  return out;
}

/** A literal character outside a class. */
function literal(cp: number): string {
  if (cp < 0x80) {
    if (cp === 9) return '\\t';
    if (cp === 10) return '\\n';
    if (cp === 13) return '\\r';
    if (cp < 0x20 || cp === 0x7f) return hex(cp);
    const s = String.fromCharCode(cp);
    return SPECIAL.has(s) ? '\\' + s : s;
  }
  const s = String.fromCodePoint(cp);
  if (/^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u.test(s)) return s;
  return [...s].length === 1 && s.length === 2 ? hex(s.charCodeAt(0)) + hex(s.charCodeAt(1)) : hex(cp);
}

class Emitter {
  groups = 0;
  readonly captureMap: number[] = [0];

  constructor(
    readonly fold: FoldMode,
    readonly modes: ReadonlyMap<Node, SetMode>,
  ) {}

  /** The whole pattern: a `$` closing a top-level alternative may consume the final newline. */
  top(root: Node): string {
    const alts = root.t === 'alt' ? root.alts : [root];
    return alts
      .map((a) => {
        const items = a.t === 'seq' ? a.items : [a];
        const last = items[items.length - 1];
        if (last?.t === 'assert' && last.kind === 'end') return this.seq(items.slice(0, -1)) + '\\n?$';
        return this.node(a);
      })
      .join('|');
  }

  seq(items: readonly Node[]): string {
    let out = '';
    for (const item of items) {
      const s = this.node(item);
      // `\1` then a literal digit would read as \10…
      if (/\\\d+$/.test(out) && /^\d/.test(s)) out += '(?:)';
      out += s;
    }
    return out;
  }

  node(n: Node): string {
    switch (n.t) {
      case 'seq':
        return this.seq(n.items);
      case 'alt':
        return n.alts.map((a) => this.node(a)).join('|');
      case 'char':
        if (this.fold === 'expand' && n.fold && isLetter(n.cp)) return `[${String.fromCharCode(n.cp | 0x20, n.cp & ~0x20)}]`;
        return literal(n.cp);
      case 'set':
        return this.set(n.bytes, this.modes.get(n) ?? 'full');
      case 'assert':
        return {
          start: '^',
          end: '(?=\\n?$)',
          'end-only': '$',
          'line-start': '(?:^|(?<=\\n)(?!$))',
          'line-end': '(?=\\n|$)',
          word: '\\b',
          'not-word': '\\B',
        }[n.kind];
      case 'backref':
        return `\\${this.captureMap[n.group]!}`;
      case 'group':
        return this.group(n);
      case 'repeat':
        return this.repeat(n);
    }
  }

  group(n: Extract<Node, { t: 'group' }>): string {
    switch (n.kind) {
      case 'capture': {
        this.captureMap[n.index] = ++this.groups;
        return `(${n.name === null ? '' : `?<${n.name}>`}${this.node(n.body)})`;
      }
      case 'plain':
        return `(?:${this.node(n.body)})`;
      case 'atomic':
        return this.atomic(n.body);
      default: {
        const open = { ahead: '(?=', 'not-ahead': '(?!', behind: '(?<=', 'not-behind': '(?<!' }[n.kind];
        return `${open}${this.node(n.body)})`;
      }
    }
  }

  repeat(n: Extract<Node, { t: 'repeat' }>): string {
    if (n.mode === 'possessive') return this.atomic({ ...n, mode: 'greedy' });
    const lazy = n.mode === 'lazy' ? '?' : '';
    if (n.min === 0 && n.max === 1 && nullable(n.body)) {
      // JavaScript refuses an empty pass of `?`; PCRE2 takes it. An alternative has no such rule.
      const b = this.node(n.body);
      return n.mode === 'lazy' ? `(?:|${b})` : `(?:${b}|)`;
    }
    return this.atom(n.body) + quantifier(n.min, n.max) + lazy;
  }

  /** `body` as something a quantifier can follow. */
  atom(body: Node): string {
    const s = this.node(body);
    // An astral character is two code units: a quantifier would take only the second.
    // An emulated atomic group is a lookahead and a backreference: two items.
    const single =
      body.t === 'set' || (body.t === 'group' && body.kind !== 'atomic') || body.t === 'backref' || (body.t === 'char' && body.cp <= 0xffff);
    return single ? s : `(?:${s})`;
  }

  /** (?>body): JavaScript has no atomic group; a lookahead's first match, consumed by a backreference, is one. */
  atomic(body: Node): string {
    if (body.t === 'char' || body.t === 'set' || body.t === 'backref') return this.node(body);
    if (body.t === 'repeat' && (body.body.t === 'set' || (body.body.t === 'char' && body.body.cp <= 0xffff))) {
      const x = this.node(body.body);
      const { min, max } = body;
      if (body.mode === 'lazy') return min === 0 ? '' : x + quantifier(min, min);
      // A maximal run of X followed by no X: backtracking into it cannot find another.
      if (max === Infinity) return `${x}${quantifier(min, max)}(?!${x})`;
      if (min === max) return x + quantifier(min, max);
      if (max === 1) return `(?:${x}|(?!${x}))`;
      const fewer = min === max - 1 ? quantifier(min, min) : quantifier(min, max - 1);
      return `(?:${x}${quantifier(max, max)}|${x}${fewer}(?!${x}))`;
    }
    const k = ++this.groups;
    return `(?=(${this.node(body)}))\\${k}`;
  }

  set(bytes: ByteSet, mode: SetMode): string {
    const high = mode === 'full' && bytes[0x80] === 1;
    const members = range(0, 127).filter((c) => bytes[c] === 1);
    const others = range(0, 127).filter((c) => bytes[c] !== 1);
    if (high) {
      if (others.length === 0) return '[^]';
      if (sameList(others, DIGITS)) return '\\D';
      if (sameList(others, WORD)) return '\\W';
      if (others.length === 1 && others[0] === 10) return '[^\\n]';
      return `[^${classBody(this.pretty(others))}]`;
    }
    if (sameList(members, DIGITS)) return '\\d';
    if (sameList(members, WORD)) return '\\w';
    const listed = this.pretty(members);
    if (listed.length === 1) return literal(listed[0]!);
    if (members.length > 64) return `[^${classBody(this.pretty(others))}\\x80-\\uffff]`;
    return `[${classBody(listed)}]`;
  }

  /** Under the i flag a set need not list both cases. */
  pretty(list: readonly number[]): number[] {
    if (this.fold !== 'flag') return [...list];
    return list.filter((c) => !(c >= 65 && c <= 90 && list.includes(c + 32)));
  }
}

function quantifier(min: number, max: number): string {
  if (min === 0 && max === Infinity) return '*';
  if (min === 1 && max === Infinity) return '+';
  if (min === 0 && max === 1) return '?';
  if (min === max) return `{${min}}`;
  return max === Infinity ? `{${min},}` : `{${min},${max}}`;
}

function nullable(n: Node): boolean {
  switch (n.t) {
    case 'char':
    case 'set':
      return false;
    case 'assert':
    case 'backref':
      return true;
    case 'seq':
      return n.items.every(nullable);
    case 'alt':
      return n.alts.some(nullable);
    case 'group':
      return n.kind === 'capture' || n.kind === 'plain' || n.kind === 'atomic' ? nullable(n.body) : true;
    case 'repeat':
      return n.min === 0 || nullable(n.body);
  }
}
