/**
 * nginx variables against the ones phpgate's routes know (docs/ROUTES.md): which a value may use, which `set`
 * makes, and which the import cannot provide ("tainted": made from variables phpgate does not have, or from a
 * `map` that cannot be translated). A `map` whose source is fixed for the request and whose values are constant
 * becomes top-level rewrite steps (`set` the default, then one `if` per entry), so its variable exists at run time.
 *
 * Where a tainted variable matters the caller fails closed (a cache bypass that cannot be evaluated turns the
 * cache off for that route; a restriction whose condition cannot be evaluated applies always).
 */
import type { RewriteStep } from './emit.js';
import type { Directive } from './parse.js';
import { isKnownVariable } from '../config/route-syntax.js';
import { toJsRegex } from './regex.js';

/** Variables whose value is fixed for the whole request (no rewrite changes them): a map over them can run first. */
const REQUEST_CONSTANT = /^(http_\w+|cookie_\w+|request_uri|request_method|remote_addr|host|http_host|scheme|https|server_name|server_port)$/;

/** A `$name` or `${name}` reference: the name in group 1 or 2. */
const REFERENCE = /\$(?:\{(\w+)\}|(\w+))/g;

/** `$name` and `${name}` references in a value, by name. */
export function variablesIn(text: string): string[] {
  return [...text.matchAll(REFERENCE)].map((m) => m[1] ?? m[2]!);
}

/** A variable the runtime computes itself (config/route-syntax.ts's list); nginx has no $0 capture. */
export function isRuntimeVariable(name: string): boolean {
  return name !== '0' && isKnownVariable(name);
}

/** What one import knows about the server's variables. */
export class Variables {
  /** Every variable some `set` makes (anywhere in the server). */
  readonly #set = new Set<string>();
  /** Variables the import cannot provide, with why. */
  readonly #tainted = new Map<string, string>();
  readonly #maps = new Map<string, Directive>();
  /** Maps translated so far (their steps go first in the top-level rewrite). */
  readonly #translated = new Map<string, RewriteStep[]>();
  /** Variables whose truth decides a cache bypass: setting them to a true value only ever caches less. */
  readonly cacheVariables = new Set<string>();

  /** http-level `map` blocks and every `set` of the imported server (its locations and ifs included). */
  collect(http: readonly Directive[], server: readonly Directive[]): void {
    for (const d of http) {
      const dst = d.name === 'map' && d.children !== null ? d.args[1] : undefined;
      if (dst?.startsWith('$') === true) this.#maps.set(dst.slice(1), d);
    }
    const sets: Directive[] = [];
    const walk = (list: readonly Directive[]): void => {
      for (const d of list) {
        if (d.name === 'set' && d.args[0]?.startsWith('$') === true) sets.push(d);
        if ((d.name === 'fastcgi_cache_bypass' || d.name === 'fastcgi_no_cache') && d.children === null) {
          for (const a of d.args) for (const v of variablesIn(a)) this.cacheVariables.add(v);
        }
        if (d.children !== null && d.name !== 'server') walk(d.children);
      }
    };
    walk(http.filter((d) => d.name !== 'server'));
    walk(server);
    for (const d of sets) this.#set.add(d.args[0]!.slice(1));
    // A variable set from something unknown is unknown; taint spreads through sets until nothing changes.
    for (let changed = true; changed;) {
      changed = false;
      for (const d of sets) {
        const name = d.args[0]!.slice(1);
        if (this.#tainted.has(name)) continue;
        const bad = this.unknown(d.args[1] ?? '');
        if (bad.length > 0) {
          this.#tainted.set(name, `set from ${bad.map((v) => `$${v}`).join(', ')} at ${d.file}:${d.line}`);
          changed = true;
        }
      }
    }
  }

  /** The variables of `text` the runtime will not have (maps are translated on the way, when they can be). */
  unknown(text: string): string[] {
    return [...new Set(variablesIn(text).filter((v) => !this.known(v)))];
  }

  /** Why a variable is unknown, for messages. */
  why(name: string): string {
    return this.#tainted.get(name) ?? (this.#maps.has(name) ? 'a map phpgate cannot evaluate' : 'not a variable phpgate has');
  }

  known(name: string): boolean {
    if (this.#tainted.has(name)) return false;
    if (isRuntimeVariable(name) || this.#translated.has(name)) return true;
    const map = this.#maps.get(name);
    if (map !== undefined) {
      const steps = mapSteps(map);
      if ('reason' in steps) {
        this.#tainted.set(name, `map at ${map.file}:${map.line}: ${steps.reason}`);
        return false;
      }
      this.#translated.set(name, steps.steps);
      return true;
    }
    return this.#set.has(name);
  }

  /** The map directives translated so far and their steps, in the order they were first needed. */
  mapSteps(): { d: Directive; steps: RewriteStep[] }[] {
    return [...this.#translated.entries()].map(([name, steps]) => ({ d: this.#maps.get(name)!, steps }));
  }

  /** A map that could not be translated, or null. */
  taintedMap(d: Directive): string | null {
    const name = d.args[1]?.slice(1) ?? '';
    return this.#maps.get(name) === d ? (this.#tainted.get(name) ?? null) : null;
  }
}

/** A value as a `set` step argument: `$v value`, `$v ""` for nothing. */
export function setText(name: string, value: string): string {
  return `$${name} ${value === '' ? '""' : value}`;
}

/**
 * An operand of an if condition: quoted ("…", a `"` inside as `\"`) when it is empty, holds whitespace or starts
 * with a quote; as it is otherwise. Regexes never need it: their whitespace is escaped (regex.ts).
 */
export function quoteOperand(value: string): string {
  if (value !== '' && !/\s/.test(value) && !/^["']/.test(value)) return value;
  return `"${value.replace(/"/g, '\\"')}"`;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&').replace(/\s/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * `map $src $dst { default D; key V; ~re V; }` as steps with nginx's precedence: exact keys (case-insensitive)
 * before regexes in order, before the default. The steps set the default, then the regexes last to first (the
 * first match is set last, so it wins), then the exact keys.
 */
function mapSteps(d: Directive): { steps: RewriteStep[] } | { reason: string } {
  const [src = '', dst = ''] = d.args;
  const srcName = /^\$(\w+)$/.exec(src)?.[1];
  if (srcName === undefined) return { reason: `the source ${src} is not one variable` };
  if (!REQUEST_CONSTANT.test(srcName)) return { reason: `$${srcName} can change during the request (nginx evaluates the map when it is used)` };
  const name = dst.slice(1);
  let fallback = '';
  const exact: { key: string; value: string }[] = [];
  const regexes: { cond: string; value: string }[] = [];
  for (const c of d.children ?? []) {
    if (c.name === 'hostnames') return { reason: 'hostnames' };
    if (c.name === 'volatile') continue;
    const value = c.args[0];
    if (c.args.length !== 1 || value === undefined) return { reason: `${c.file}:${c.line}: expected KEY VALUE` };
    if (value.includes('$')) return { reason: `${c.file}:${c.line}: the value ${value} uses variables` };
    if (c.name === 'default') {
      fallback = value;
    } else if (c.name.startsWith('~')) {
      const caseless = c.name.startsWith('~*');
      // Every source a map may have is a raw request value: matched byte for byte, as an if condition on it.
      const re = toJsRegex(c.name.slice(caseless ? 2 : 1), caseless, 'bytes');
      if ('reason' in re) return { reason: `${c.file}:${c.line}: ${re.reason}` };
      regexes.push({ cond: `$${srcName} ${re.caseless ? '~*' : '~'} ${quoteOperand(re.source)}`, value });
    } else {
      exact.push({ key: c.name.replace(/^\\/, ''), value });
    }
  }
  const steps: RewriteStep[] = [{ set: setText(name, fallback) }];
  for (const r of [...regexes].reverse()) steps.push({ if: r.cond, then: [{ set: setText(name, r.value) }] });
  for (const e of exact) steps.push({ if: `$${srcName} ~* ^${escapeRegex(e.key)}$`, then: [{ set: setText(name, e.value) }] });
  return { steps };
}

/**
 * Variables with one constant value for every request: set once, unconditionally, at the server level, with a
 * value without variables, and set nowhere else (Magento's `set $MAGE_ROOT /var/www/magento2;`). A root or alias
 * written with them names a fixed directory.
 */
export function serverConstants(server: readonly Directive[]): Map<string, string> {
  const counts = new Map<string, number>();
  const walk = (list: readonly Directive[]): void => {
    for (const d of list) {
      if (d.name === 'set' && d.args[0]?.startsWith('$') === true) counts.set(d.args[0].slice(1), (counts.get(d.args[0].slice(1)) ?? 0) + 1);
      if (d.children !== null) walk(d.children);
    }
  };
  walk(server);
  const out = new Map<string, string>();
  for (const d of server) {
    const name = d.name === 'set' ? d.args[0]?.slice(1) : undefined;
    const value = d.args[1];
    if (name === undefined || value === undefined || d.args.length !== 2 || value.includes('$') || counts.get(name) !== 1) continue;
    out.set(name, value);
  }
  return out;
}

/** `text` with the server's constants put in; null when a variable that is not one remains. */
export function withConstants(text: string, constants: ReadonlyMap<string, string>): string | null {
  const out = text.replace(REFERENCE, (all, a: string | undefined, b: string | undefined) => constants.get(a ?? b!) ?? all);
  return out.includes('$') ? null : out;
}
