/**
 * Typed readers over YAML nodes. A reader checks one node against its shape, records every problem with the
 * node's line:col, and returns what was valid. Object readers return only the keys present and valid, so
 * defaults are applied later in one place (defaults.ts) and pools can tell "absent" from "set".
 */
import { isAlias, isMap, isNode, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';
import { INVALID, describeValue, type Check, type Invalid } from './checks.js';
import type { ConfigIssue } from './errors.js';

export interface Loc {
  readonly file: string;
  readonly line: number; // 1-based; 0 = not in the file (env var, flag, default)
  readonly col: number;
}

/** Where a reader is: display path ("pools[1].name"), schema path ("pools[].name"), and the value's place. */
export interface At {
  readonly path: string;
  readonly spath: string;
  readonly loc: Loc;
}

export interface Reader<T> {
  /** Completes "KEY must be …". */
  readonly expected: string;
  read(node: Node | null, at: At, cx: ReadContext): T | Invalid;
}

export type ReadType<R> = R extends Reader<infer T> ? T : never;

/** Collects issues and remembers where each path's value was written, for checks that run after reading. */
export class ReadContext {
  readonly issues: ConfigIssue[] = [];
  readonly #where = new Map<string, Loc>();
  readonly #rejected = new Set<string>();

  readonly #lines: LineCounter;
  readonly #doc: Document;

  constructor(
    readonly file: string,
    /** Schema path of a retired key → its new schema path, e.g. "php.workers" → "php.worker_count". */
    readonly renamed: Readonly<Record<string, string>>,
    lines: LineCounter,
    doc: Document,
  ) {
    this.#lines = lines;
    this.#doc = doc;
  }

  report(path: string, loc: Loc, message: string): void {
    this.issues.push({ file: loc.file, line: loc.line, col: loc.col, message });
    this.#rejected.add(path);
  }

  /** Reports a problem with a value already read, at the place it came from. */
  reportAt(path: string, message: string): void {
    this.report(path, this.locate(path), message);
  }

  /** The value at `path` came from `loc` (a file position, or an env var / flag that replaced it). */
  place(path: string, loc: Loc): void {
    this.#where.set(path, loc);
    this.#rejected.delete(path);
  }

  locate(path: string): Loc {
    return this.#where.get(path) ?? this.nowhere;
  }

  /** A later check must not complain about a value already reported as malformed (it holds a default now). */
  wasRejected(path: string): boolean {
    return this.#rejected.has(path);
  }

  get nowhere(): Loc {
    return { file: this.file, line: 0, col: 0 };
  }

  /** The place of a source offset. */
  at(offset: number): Loc {
    const { line, col } = this.#lines.linePos(offset);
    return { file: this.file, line, col };
  }

  locOf(node: Node | null, fallback: Loc): Loc {
    const start = node?.range?.[0];
    const end = node?.range?.[1];
    // An empty value ("port:") has a zero-width range just past the colon; the key is the better place.
    if (start === undefined || end === undefined || start === end) return fallback;
    return this.at(start);
  }

  deref(x: unknown): Node | null {
    if (isAlias(x)) return x.resolve(this.#doc) ?? null;
    return isNode(x) ? x : null;
  }
}

function describeNode(node: Node | null): string {
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  return describeValue(isScalar(node) ? node.value : null);
}

function isEmpty(node: Node | null): boolean {
  return node === null || (isScalar(node) && node.value === null);
}

function label(path: string): string {
  return path === '' ? 'the configuration' : path;
}

function fail(at: At, cx: ReadContext, expected: string, node: Node | null): Invalid {
  cx.report(at.path, at.loc, `${label(at.path)} must be ${expected}, got ${describeNode(node)}`);
  return INVALID;
}

export function scalar<T>(check: Check<T>): Reader<T> {
  return {
    expected: check.expected,
    read(node, at, cx) {
      const value = isScalar(node) ? check.parse(node.value) : INVALID;
      return value === INVALID ? fail(at, cx, check.expected, node) : value;
    },
  };
}

interface ListOptions<T> {
  readonly nonEmpty?: boolean;
  /** A different rule for the last entry (try_files' "=404"). */
  readonly last?: Reader<T>;
}

/** An empty value counts as an empty list. Any bad entry makes the whole list invalid (each one is reported). */
export function list<T>(item: Reader<T>, opts: ListOptions<T> = {}): Reader<T[]> {
  const expected = `a ${opts.nonEmpty === true ? 'non-empty ' : ''}list (each entry ${item.expected})`;
  return {
    expected,
    read(node, at, cx) {
      if (!isEmpty(node) && !isSeq(node)) return fail(at, cx, expected, node);
      const entries = isSeq(node) ? node.items.map((x) => cx.deref(x)) : [];
      if (opts.nonEmpty === true && entries.length === 0) {
        cx.report(at.path, at.loc, `${at.path} must be ${expected}, got an empty list`);
        return INVALID;
      }
      const out: T[] = [];
      let ok = true;
      entries.forEach((entry, i) => {
        const reader = opts.last !== undefined && i === entries.length - 1 ? opts.last : item;
        const value = reader.read(entry, child(at, `[${i}]`, '[]', cx.locOf(entry, at.loc), cx), cx);
        if (value === INVALID) ok = false;
        else out.push(value);
      });
      return ok ? out : INVALID;
    },
  };
}

function child(at: At, suffix: string, ssuffix: string, loc: Loc, cx: ReadContext): At {
  const path = at.path + suffix;
  cx.place(path, loc);
  return { path, spath: at.spath + ssuffix, loc };
}

function keyPath(base: string, key: string): string {
  return base === '' ? key : `${base}.${key}`;
}

/** One `key: value` entry of a mapping, with both ends dereferenced and located. */
interface Entry {
  readonly key: string | null; // null when the key is not a plain scalar
  readonly keyLoc: Loc;
  readonly value: Node | null;
  readonly valueLoc: Loc;
  readonly rawKey: unknown;
}

function entries(node: Node | null, at: At, cx: ReadContext): Entry[] {
  if (!isMap(node)) return [];
  return node.items.map((pair) => {
    const keyNode = cx.deref(pair.key);
    const keyLoc = cx.locOf(keyNode, at.loc);
    const value = cx.deref(pair.value);
    const rawKey = isScalar(keyNode) ? keyNode.value : undefined;
    // eslint-disable-next-line @typescript-eslint/no-base-to-string -- a scalar's value: string, number, boolean or bigint
    const key = isScalar(keyNode) && rawKey !== null ? String(rawKey) : null;
    return { key, keyLoc, value, valueLoc: cx.locOf(value, keyLoc), rawKey };
  });
}

type Fields = Record<string, Reader<unknown>>;
type Simplify<T> = { [K in keyof T]: T[K] } & {};
export type ObjOf<F extends Fields, R extends keyof F> = Simplify<{ [K in Exclude<keyof F, R>]?: ReadType<F[K]> } & { [K in R]: ReadType<F[K]> }>;

/**
 * A mapping with a fixed set of keys (fastify's additionalProperties: false): unknown keys are errors that
 * list what is allowed, suggest a near miss, or name a key's new name. Invalid only when a required key is
 * missing or invalid; otherwise returns the valid keys present.
 */
export function obj<F extends Fields, R extends keyof F & string = never>(fields: F, required: readonly R[] = []): Reader<ObjOf<F, R>> {
  const allowed = Object.keys(fields);
  return {
    expected: 'a mapping',
    read(node, at, cx) {
      if (!isEmpty(node) && !isMap(node)) return fail(at, cx, 'a mapping', node);
      const out: Record<string, unknown> = {};
      for (const e of entries(node, at, cx)) {
        if (e.key === null || !Object.hasOwn(fields, e.key)) {
          unknownKey(e, allowed, at, cx);
          continue;
        }
        const reader = fields[e.key]!;
        const path = keyPath(at.path, e.key);
        cx.place(path, e.valueLoc);
        const value = reader.read(e.value, { path, spath: keyPath(at.spath, e.key), loc: e.valueLoc }, cx);
        if (value !== INVALID) out[e.key] = value;
      }
      return requireKeys(out, node, required, at, cx) ? (out as ObjOf<F, R>) : INVALID;
    },
  };
}

function requireKeys(out: Record<string, unknown>, node: Node | null, required: readonly string[], at: At, cx: ReadContext): boolean {
  // A retired name for a required key was already reported as renamed; "missing" would say it twice.
  const present = new Set(entries(node, at, cx).map((e) => newName(e.key, at, cx) ?? e.key));
  let ok = true;
  for (const key of required) {
    if (!present.has(key)) {
      cx.report(keyPath(at.path, key), at.loc, `${label(at.path)} is missing required key "${key}"`);
    }
    if (!Object.hasOwn(out, key)) ok = false;
  }
  return ok;
}

function unknownKey(e: Entry, allowed: readonly string[], at: At, cx: ReadContext): void {
  if (e.key === null) {
    cx.report(at.path, e.keyLoc, `${label(at.path)} keys must be plain names, got ${describeValue(e.rawKey)}`);
    return;
  }
  const path = keyPath(at.path, e.key);
  const renamedTo = newName(e.key, at, cx);
  if (renamedTo !== undefined) {
    cx.report(path, e.keyLoc, `${path}: \`${e.key}\` was renamed to \`${renamedTo}\``);
    return;
  }
  const near = closest(e.key, allowed);
  const hint = near === undefined ? '' : ` (did you mean "${near}"?)`;
  const scope = at.path === '' ? 'at the top level' : `in ${at.path}`;
  cx.report(path, e.keyLoc, `unknown key "${path}"${hint}; allowed ${scope}: ${allowed.join(', ')}`);
}

/** The current name of a retired key at this level, if it is one. */
function newName(key: string | null, at: At, cx: ReadContext): string | undefined {
  const spath = key === null ? '' : keyPath(at.spath, key);
  if (!Object.hasOwn(cx.renamed, spath)) return undefined;
  const renamedTo = cx.renamed[spath]!;
  return renamedTo.slice(renamedTo.lastIndexOf('.') + 1);
}

/** The allowed name nearest to a typo, if within 2 edits. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, substitution));
    }
    prev = row;
  }
  return prev[b.length]!;
}

/** A mapping of free-form names to strings (php.ini, php.env): every name and value checked. */
export function stringMap(keyCheck: Check<string>, valueCheck: Check<string>): Reader<Record<string, string>> {
  const value = scalar(valueCheck);
  return {
    expected: 'a mapping of names to values',
    read(node, at, cx) {
      if (!isEmpty(node) && !isMap(node)) return fail(at, cx, 'a mapping of names to values', node);
      const out: [string, string][] = [];
      for (const e of entries(node, at, cx)) {
        const key = keyCheck.parse(e.rawKey);
        if (key === INVALID) {
          const path = keyPath(at.path, String(e.rawKey));
          cx.report(path, e.keyLoc, `${at.path} key must be ${keyCheck.expected}, got ${describeValue(e.rawKey)}`);
          continue;
        }
        const path = keyPath(at.path, key);
        cx.place(path, e.valueLoc);
        const v = value.read(e.value, { path, spath: keyPath(at.spath, key), loc: e.valueLoc }, cx);
        if (v !== INVALID) out.push([key, v]);
      }
      // fromEntries defines own properties, so a key such as "__proto__" stays data instead of a prototype.
      return Object.fromEntries(out);
    },
  };
}
