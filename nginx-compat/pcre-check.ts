/**
 * What must hold for a PCRE2 tree (pcre-parse.ts) to match in JavaScript exactly as nginx matches it, beyond the
 * syntax: throws a Refusal naming the construct when it does not.
 *
 * Bytes and UTF-16. nginx's PCRE2 runs without UTF mode on the path's UTF-8 bytes; the JavaScript regex runs on
 * the decoded string's UTF-16 code units (the gateway decodes paths strictly, so both are the same valid text).
 * ASCII is one byte and one unit either way, and a literal non-ASCII character is matched whole by both. The
 * difference is in one-byte matchers that accept bytes ≥ 0x80 ("high" sets: `.`, `[^/]`, `\W`, `\S` …): PCRE2 can
 * stop one inside a character, JavaScript cannot, and a character is 2–4 bytes but 1–2 units. So:
 *  - a high set repeated without bound (`.*`, `[^/]+`: a "run") covers whole characters when what is on either
 *    side of it cannot be part of a character — an ASCII or literal item, an anchor, or the free start of an
 *    unanchored pattern (the leftmost match starts where a character starts) or its free end (greedy runs stop
 *    at an ASCII byte or the end);
 *  - a single high set (`/.well-known`) between such items can only match a one-byte character: it is written
 *    as its ASCII part. At a free edge (`.php$` unanchored) it matches the last (first) byte of any character,
 *    which changes what the match spans but not whether there is one: allowed only when nothing is captured;
 *  - two high items next to each other (`.+.`, `.{2}`, `(.)(.*)`) count bytes: refused.
 * Adjacency is computed on the tree's Glushkov positions (which item can immediately follow which), through
 * nullable items, loops, alternatives and lookarounds.
 *
 * Captures and loops. JavaScript clears a repeated group's captures at each pass and refuses an empty pass;
 * PCRE2 keeps an earlier pass's value and ends the loop on an empty pass. A backreference to a group not set
 * yet fails in PCRE2 and matches empty in JavaScript. Patterns where any of these could show are refused.
 */
import { type Node, type Parsed, Refusal } from './pcre-parse.js';

/** How a one-byte set is written: 'ascii' keeps only its ASCII bytes, 'full' also accepts any non-ASCII unit. */
export type SetMode = 'ascii' | 'full';

type Kind = 'hard' | 'single' | 'run' | 'pass' | 'hard-pass';
interface Position {
  readonly kind: Kind;
  readonly node: Node;
}
interface Info {
  readonly nullable: boolean;
  readonly first: readonly number[];
  readonly last: readonly number[];
}

const FREE_START = -1;
const FREE_END = -2;
/** A known character boundary: what a lookaround's body starts (or ends) at. */
const BOUNDARY = -3;

const isHigh = (n: Node): boolean => n.t === 'set' && n.bytes[0x80] === 1;
const isRun = (n: Node): boolean => n.t === 'repeat' && isHigh(n.body) && n.min <= 1 && n.max === Infinity;

export function describe(n: Node): string {
  switch (n.t) {
    case 'set':
    case 'repeat':
    case 'backref':
      return n.src;
    case 'char':
      return String.fromCodePoint(n.cp);
    default:
      return n.t;
  }
}

/** Returns how each high set is to be written; throws a Refusal when the pattern cannot be matched exactly. */
export function checkPcre(parsed: Parsed, bytes = false): Map<Node, SetMode> {
  const nullable = new Nullable();
  registerGroups(parsed.root, nullable);
  checkCaptures(parsed.root, new Set(), nullable, false);
  return new Alignment(parsed, nullable, bytes).run();
}

class Nullable {
  readonly groups = new Map<number, Node>();
  /** Groups being looked into: a backreference inside its own group (refused elsewhere) must not loop here. */
  readonly open = new Set<number>();
  of(n: Node): boolean {
    switch (n.t) {
      case 'char':
      case 'set':
        return false;
      case 'assert':
        return true;
      case 'backref': {
        const g = this.groups.get(n.group);
        if (g === undefined || this.open.has(n.group)) return true;
        this.open.add(n.group);
        const r = this.of(g);
        this.open.delete(n.group);
        return r;
      }
      case 'seq':
        return n.items.every((i) => this.of(i));
      case 'alt':
        return n.alts.some((a) => this.of(a));
      case 'group':
        return n.kind === 'capture' || n.kind === 'plain' || n.kind === 'atomic' ? this.of(n.body) : true;
      case 'repeat':
        return n.min === 0 || this.of(n.body);
    }
  }
}

function captureGroups(n: Node, out: number[] = []): number[] {
  if (n.t === 'group' && n.kind === 'capture') out.push(n.index);
  if (n.t === 'seq') n.items.forEach((i) => captureGroups(i, out));
  else if (n.t === 'alt') n.alts.forEach((a) => captureGroups(a, out));
  else if (n.t === 'group' || n.t === 'repeat') captureGroups(n.body, out);
  return out;
}

function registerGroups(n: Node, nullable: Nullable): void {
  if (n.t === 'group' && n.kind === 'capture') nullable.groups.set(n.index, n.body);
  if (n.t === 'seq') n.items.forEach((i) => registerGroups(i, nullable));
  else if (n.t === 'alt') n.alts.forEach((a) => registerGroups(a, nullable));
  else if (n.t === 'group' || n.t === 'repeat') registerGroups(n.body, nullable);
}

/**
 * Walks in match order with the groups certainly set so far; returns those set after `n`. Checks backreferences,
 * captures in loops, loops that can pass empty, and lookbehinds (fixed length, as PCRE2 demands).
 */
function checkCaptures(n: Node, before: ReadonlySet<number>, nullable: Nullable, inBehind: boolean): ReadonlySet<number> {
  switch (n.t) {
    case 'char':
    case 'set':
    case 'assert':
      return before;
    case 'backref':
      if (inBehind) throw new Refusal(`the backreference ${n.src} in a lookbehind is not translated`);
      if (n.fold) throw new Refusal(`the backreference ${n.src} under caseless matching: JavaScript would also fold non-ASCII letters`);
      if (!before.has(n.group))
        throw new Refusal(`the backreference ${n.src} can be reached before group ${n.group} is set: PCRE2 then fails, JavaScript matches empty`);
      return before;
    case 'seq':
      return n.items.reduce((acc, i) => checkCaptures(i, acc, nullable, inBehind), before);
    case 'alt': {
      const outs = n.alts.map((a) => checkCaptures(a, before, nullable, inBehind));
      return new Set([...outs[0]!].filter((g) => outs.every((o) => o.has(g))));
    }
    case 'group': {
      if (n.kind === 'behind' || n.kind === 'not-behind') {
        checkLookbehind(n.body);
        const after = checkCaptures(n.body, before, nullable, true);
        return n.kind === 'behind' ? after : before;
      }
      const after = checkCaptures(n.body, before, nullable, inBehind);
      if (n.kind === 'not-ahead') return before;
      return n.kind === 'capture' ? new Set([...after, n.index]) : after;
    }
    case 'repeat': {
      const after = checkCaptures(n.body, before, nullable, inBehind);
      if (n.max > 1 && n.min < n.max && nullable.of(n.body))
        throw new Refusal(`${n.src} repeats something that can match the empty string: PCRE2 and JavaScript end such loops differently`);
      if (n.max > 1) {
        // Groups inside the body come after everything in `before`: `after` holds those every pass sets.
        for (const g of captureGroups(n.body)) {
          if (inBehind)
            throw new Refusal(
              `group ${g} is repeated inside a lookbehind: JavaScript matches lookbehinds backwards and keeps another pass's capture`,
            );
          if (!after.has(g))
            throw new Refusal(`group ${g} is inside ${n.src} but not set on every pass: PCRE2 keeps an earlier pass's value, JavaScript clears it`);
        }
      }
      return n.min >= 1 ? after : before;
    }
  }
}

/** PCRE2 (10.42) wants each top-level alternative of a lookbehind to have one length in bytes. */
function checkLookbehind(body: Node): void {
  for (const alt of body.t === 'alt' ? body.alts : [body]) {
    if (byteLength(alt) === null) throw new Refusal('PCRE2 rejects it (nginx -t fails): lookbehind assertion is not fixed length');
  }
}

function byteLength(n: Node): number | null {
  switch (n.t) {
    case 'char':
      return Buffer.byteLength(String.fromCodePoint(n.cp));
    case 'set':
      return 1;
    case 'assert':
      return 0;
    case 'backref':
      throw new Refusal(`the backreference ${n.src} in a lookbehind is not translated`);
    case 'seq': {
      let sum = 0;
      for (const i of n.items) {
        const l = byteLength(i);
        if (l === null) return null;
        sum += l;
      }
      return sum;
    }
    case 'alt': {
      const ls = n.alts.map(byteLength);
      return ls.every((l) => l !== null && l === ls[0]) ? ls[0]! : null;
    }
    case 'group':
      return n.kind === 'capture' || n.kind === 'plain' || n.kind === 'atomic' ? byteLength(n.body) : 0;
    case 'repeat': {
      const l = byteLength(n.body);
      return l !== null && n.min === n.max ? l * n.min : null;
    }
  }
}

class Alignment {
  readonly positions: Position[] = [];
  readonly follow = new Map<number, Set<number>>();
  readonly precede = new Map<number, Set<number>>();
  readonly lookarounds: { marker: number; behind: boolean; body: Info | null }[] = [];
  /** Atomic groups (and possessive repeats) with their bodies' first and last positions. */
  readonly atomics: { src: string; body: Node; first: readonly number[]; last: readonly number[]; inside: readonly [number, number] }[] = [];
  /** A char or set position → the repeat directly around it. */
  readonly repeatOf = new Map<number, Extract<Node, { t: 'repeat' }>>();

  constructor(
    readonly parsed: Parsed,
    readonly nullable: Nullable,
    /** The subject is one character per byte (a raw request value, not the decoded path): no byte/character gap. */
    readonly bytes: boolean,
  ) {}

  run(): Map<Node, SetMode> {
    const root = this.info(this.parsed.root);
    for (const f of root.first) this.edge(FREE_START, f);
    for (const l of root.last) this.edge(l, FREE_END);
    // A lookaround stands between characters (checked below: an ASCII or literal item or an anchor on one side),
    // so its body starts (a lookbehind's: ends) at a character boundary; its other end is open.
    for (const la of this.lookarounds) {
      const body = la.body!;
      for (const f of body.first) this.edge(la.behind ? FREE_START : BOUNDARY, f);
      for (const l of body.last) this.edge(l, la.behind ? BOUNDARY : FREE_END);
    }
    // An atomic group keeps the first way its body matches, without looking at what follows: a body that can
    // end inside a character (a single high set, a lazy run) would commit to that. Zero-width ends are not
    // followed further: refused when the pattern has high sets at all.
    const anyHigh = this.positions.some((q) => q.kind === 'single' || q.kind === 'run');
    for (const a of this.atomics) {
      // PCRE2 10.42's auto-possessification bug: a greedy repeated character or class right before an atomic
      // group (or a possessive repeat of a group) that starts with an optional group or a branch that can be
      // empty is made possessive, so `\/*(?:x)?+\/` never matches "//". nginx has it; refused rather than copied.
      if (!simpleRepeat(a.body))
        for (const f of a.first)
          for (const b of this.direct(f, false)) {
            if (b >= a.inside[0] && b < a.inside[1]) continue;
            const pos = this.positions[b];
            const r = pos?.kind === 'run' ? pos.node : this.repeatOf.get(b);
            if (r?.t === 'repeat' && r.mode === 'greedy' && r.max > r.min)
              throw new Refusal(`${r.src} before ${a.src}: PCRE2 10.42 (nginx's) wrongly makes ${r.src} possessive there; not translated`);
          }
      for (const l of a.last) {
        if (this.bytes) break;
        const p = this.positions[l]!;
        const risky = p.kind === 'single' || (p.kind === 'run' && lazyRun(p.node)) || ((p.kind === 'pass' || p.kind === 'hard-pass') && anyHigh);
        if (risky)
          throw new Refusal(`${a.src} commits to a match that can end inside a UTF-8 character (at ${describe(p.node)}), which JavaScript cannot do`);
      }
    }
    const modes = new Map<Node, SetMode>();
    // One character per byte: every high set takes any byte as it is, wherever it stands.
    if (this.bytes) return modes;
    const loose = (q: number): boolean => {
      const k = this.positions[q]?.kind;
      return q === FREE_START || q === FREE_END || k === 'single' || k === 'run';
    };
    this.positions.forEach((p, id) => {
      // A zero-width test (\B, a lookaround) can be made inside a UTF-8 character by nginx, where JavaScript has
      // no position (\B holds there: two non-word bytes). Exact when every way to it has an ASCII or literal
      // item, or an anchor, on one side at least: then it stands between characters.
      if (p.kind === 'pass' && [...this.around(id, true)].some(loose) && [...this.around(id, false)].some(loose))
        throw new Refusal(
          `${p.node.t === 'assert' ? '\\B' : 'a lookaround'} with no ASCII or literal item, nor an anchor, on either side: nginx also tests it inside a UTF-8 character`,
        );
      if (p.kind !== 'single' && p.kind !== 'run') return;
      const before = this.around(id, true);
      const after = this.around(id, false);
      for (const q of [...before, ...after]) {
        const other = this.positions[q];
        if (other !== undefined && (other.kind === 'single' || other.kind === 'run'))
          throw new Refusal(
            `${describe(p.node)} next to ${describe(other.node)}: nginx's PCRE2 (no UTF) counts bytes there and can split a UTF-8 character between them`,
          );
      }
      if (p.kind === 'run') {
        // A lazy run at the open end stops after one byte, maybe inside a character: what it and anything
        // after it capture would differ.
        if (lazyRun(p.node) && after.has(FREE_END) && this.parsed.groups > 0)
          throw new Refusal(`${describe(p.node)} at the open end, with capture groups: PCRE2 stops it after one byte of a UTF-8 character`);
        return;
      }
      // A single high set between ASCII or literal items takes a one-byte character; with one side open it
      // takes any byte, which JavaScript's whole character stands for. A side that is sometimes open and
      // sometimes not, with the other side the same, mixes both.
      const openBefore = before.has(FREE_START);
      const openAfter = after.has(FREE_END);
      if (!openBefore && !openAfter) {
        modes.set(p.node, 'ascii');
        return;
      }
      const where = openBefore ? 'start' : 'end';
      if ((!openBefore || before.size > 1) && (!openAfter || after.size > 1))
        throw new Refusal(`${describe(p.node)} is sometimes at the pattern's open ${where} and sometimes not: no single translation is exact`);
      if (this.parsed.groups > 0)
        throw new Refusal(
          `${describe(p.node)} at the pattern's open ${where} may match one byte of a UTF-8 character in nginx; exact only without capture groups`,
        );
      modes.set(p.node, 'full');
    });
    return modes;
  }

  edge(from: number, to: number): void {
    for (const [map, a, b] of [[this.follow, from, to] as const, [this.precede, to, from] as const]) {
      let s = map.get(a);
      if (s === undefined) map.set(a, (s = new Set()));
      s.add(b);
    }
  }

  /** Positions directly before (or after) `id`, sentinels included. */
  direct(id: number, after: boolean): number[] {
    return [...((after ? this.follow : this.precede).get(id) ?? [])];
  }

  /** What can be next to `id` on one side, looking through zero-width positions. */
  around(id: number, before: boolean): Set<number> {
    const out = new Set<number>();
    const seen = new Set<number>([id]);
    const todo = this.direct(id, !before);
    while (todo.length > 0) {
      const q = todo.pop()!;
      if (seen.has(q)) {
        if (q === id) out.add(q);
        continue;
      }
      seen.add(q);
      const kind = this.positions[q]?.kind;
      if (kind !== 'pass') out.add(q);
      if (kind === 'pass' || kind === 'hard-pass') todo.push(...this.direct(q, !before));
    }
    return out;
  }

  position(kind: Kind, node: Node): Info {
    const id = this.positions.push({ kind, node }) - 1;
    return { nullable: false, first: [id], last: [id] };
  }

  info(n: Node): Info {
    switch (n.t) {
      case 'char':
        return this.position('hard', n);
      case 'set':
        return this.position(isHigh(n) ? 'single' : 'hard', n);
      case 'assert':
        // \b holds only next to an ASCII word character, so never inside a character: an anchor like ^.
        return this.position(n.kind === 'not-word' ? 'pass' : 'hard', n);
      case 'backref':
        return this.position(this.nullable.of(n) ? 'hard-pass' : 'hard', n);
      case 'seq': {
        let acc: Info = { nullable: true, first: [], last: [] };
        for (const item of n.items) {
          const i = this.info(item);
          for (const l of acc.last) for (const f of i.first) this.edge(l, f);
          acc = {
            nullable: acc.nullable && i.nullable,
            first: acc.nullable ? [...acc.first, ...i.first] : acc.first,
            last: i.nullable ? [...acc.last, ...i.last] : i.last,
          };
        }
        return acc;
      }
      case 'alt': {
        const is = n.alts.map((a) => this.info(a));
        return { nullable: is.some((i) => i.nullable), first: is.flatMap((i) => i.first), last: is.flatMap((i) => i.last) };
      }
      case 'group': {
        if (n.kind === 'capture' || n.kind === 'plain') return this.info(n.body);
        if (n.kind === 'atomic') {
          const from = this.positions.length;
          const i = this.info(n.body);
          this.atomics.push({ src: '(?>…)', body: n.body, first: i.first, last: i.last, inside: [from, this.positions.length] });
          return i;
        }
        const marker = this.position('pass', n);
        const la: { marker: number; behind: boolean; body: Info | null } = {
          marker: marker.first[0]!,
          behind: n.kind.endsWith('behind'),
          body: null,
        };
        this.lookarounds.push(la);
        la.body = this.info(n.body);
        return marker;
      }
      case 'repeat': {
        if (isRun(n)) return this.position('run', n);
        const from = this.positions.length;
        const i = this.info(n.body);
        if (n.body.t === 'char' || n.body.t === 'set') this.repeatOf.set(i.first[0]!, n);
        if (n.max > 1) for (const l of i.last) for (const f of i.first) this.edge(l, f);
        if (n.mode === 'possessive') this.atomics.push({ src: n.src, body: n, first: i.first, last: i.last, inside: [from, this.positions.length] });
        return { nullable: i.nullable || n.min === 0, first: i.first, last: i.last };
      }
    }
  }
}

/** A character or set, repeated or not: what PCRE2 compiles without an atomic group. */
function simpleRepeat(n: Node): boolean {
  const single = (x: Node): boolean => x.t === 'char' || x.t === 'set';
  return single(n) || (n.t === 'repeat' && single(n.body));
}

function lazyRun(n: Node): boolean {
  return n.t === 'repeat' && n.mode === 'lazy' && n.min >= 1;
}
