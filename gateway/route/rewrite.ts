/**
 * nginx's rewrite module: `rewrite`, `set`, `if`, `return` and `break`, run in order on the request's URI. Regexes
 * are compiled once at load; a request runs the steps of the server and of the route it reaches.
 */
import type fs from 'node:fs';
import type { RewriteFlag, RewriteStep, RouteCondition, TemplatePart } from '../../config/types.js';
import { isTrue, type RequestVars } from './vars.js';

export type CompiledStep =
  | {
      readonly kind: 'rewrite';
      readonly regex: RegExp;
      /** The replacement before its first literal `?`, and after it (null: none). A `?` from a variable is path. */
      readonly path: readonly TemplatePart[];
      readonly query: readonly TemplatePart[] | null;
      readonly flag: RewriteFlag | null;
    }
  | { readonly kind: 'set'; readonly name: string; readonly value: readonly TemplatePart[] }
  | { readonly kind: 'if'; readonly test: CompiledCondition; readonly then: readonly CompiledStep[] }
  | { readonly kind: 'return'; readonly status: number; readonly text: readonly TemplatePart[] | null }
  | { readonly kind: 'break' };

type CompiledCondition =
  | { readonly kind: 'value'; readonly left: readonly TemplatePart[] }
  | { readonly kind: 'compare'; readonly left: readonly TemplatePart[]; readonly negate: boolean; readonly right: readonly TemplatePart[] }
  | { readonly kind: 'regex'; readonly left: readonly TemplatePart[]; readonly negate: boolean; readonly regex: RegExp }
  | { readonly kind: 'file'; readonly test: '-f' | '-d' | '-e' | '-x'; readonly negate: boolean; readonly path: readonly TemplatePart[] };

export function compileSteps(steps: readonly RewriteStep[]): CompiledStep[] {
  return steps.map((s): CompiledStep => {
    switch (s.kind) {
      case 'rewrite':
        return { kind: 'rewrite', regex: new RegExp(s.source), ...splitQuery(s.replacement), flag: s.flag };
      case 'if':
        return { kind: 'if', test: compileCondition(s.condition), then: compileSteps(s.then) };
      default:
        return s;
    }
  });
}

/** nginx decides where the arguments start when it compiles a replacement: at its first literal `?`. */
function splitQuery(parts: readonly TemplatePart[]): { path: TemplatePart[]; query: TemplatePart[] | null } {
  const path: TemplatePart[] = [];
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    const q = 'text' in p ? p.text.indexOf('?') : -1;
    if (q === -1) {
      path.push(p);
      continue;
    }
    const text = (p as { text: string }).text;
    if (q > 0) path.push({ text: text.slice(0, q) });
    const query: TemplatePart[] = text.length > q + 1 ? [{ text: text.slice(q + 1) }] : [];
    return { path, query: [...query, ...parts.slice(i + 1)] };
  }
  return { path, query: null };
}

function compileCondition(c: RouteCondition): CompiledCondition {
  if (c.kind !== 'regex') return c;
  return { kind: 'regex', left: c.left, negate: c.negate, regex: new RegExp(c.source, c.caseInsensitive ? 'i' : '') };
}

/** How a rewrite script ended. */
export type RewriteOutcome =
  | { readonly kind: 'next' } // ran to its end: go on in this route (the URI may have changed)
  | { readonly kind: 'break' } // `break` or `rewrite … break`: go on in this route, no more rewriting
  | { readonly kind: 'last' } // `rewrite … last`: choose the route again for the new URI
  | { readonly kind: 'redirect'; readonly status: number; readonly location: string }
  | { readonly kind: 'return'; readonly status: number; readonly text: string | null };

export const NEXT: RewriteOutcome = { kind: 'next' };
const BREAK: RewriteOutcome = { kind: 'break' };
const LAST: RewriteOutcome = { kind: 'last' };

/** The file system as conditions see it (the gateway's stat cache). */
export type StatFn = (file: string) => fs.Stats | null;

export function runSteps(steps: readonly CompiledStep[], v: RequestVars, stat: StatFn): RewriteOutcome {
  for (const s of steps) {
    switch (s.kind) {
      case 'set':
        v.set(s.name, v.render(s.value));
        break;
      case 'break':
        return BREAK;
      case 'return':
        return returned(s.status, s.text === null ? null : v.render(s.text));
      case 'if':
        if (test(s.test, v, stat)) {
          const out = runSteps(s.then, v, stat);
          if (out.kind !== 'next') return out;
        }
        break;
      case 'rewrite': {
        const out = rewrite(s, v);
        if (out !== null) return out;
        break;
      }
    }
  }
  return NEXT;
}

/** nginx's `return`: a redirect status with a URL gives Location; other statuses with text give a body. */
function returned(status: number, text: string | null): RewriteOutcome {
  if (text !== null && (status === 301 || status === 302 || status === 303 || status === 307 || status === 308)) {
    return { kind: 'redirect', status, location: text };
  }
  return { kind: 'return', status, text };
}

const REDIRECT_TARGET = /^(?:https?:\/\/)/;

function rewrite(s: CompiledStep & { kind: 'rewrite' }, v: RequestVars): RewriteOutcome | null {
  const st = v.state;
  const m = s.regex.exec(st.uri);
  if (m === null) return null;
  st.captures = m;
  const target = v.render(s.path);
  // nginx: arguments in the replacement replace $args, with the old ones appended unless it ends in "?".
  let args = st.args;
  if (s.query !== null) {
    const own = v.render(s.query);
    args = own === '' ? '' : st.args === '' ? own : `${own}&${st.args}`;
  }
  if (REDIRECT_TARGET.test(target) || s.flag === 'redirect' || s.flag === 'permanent') {
    const status = s.flag === 'permanent' ? 301 : 302;
    return { kind: 'redirect', status, location: args === '' ? target : `${target}?${args}` };
  }
  st.uri = target;
  st.args = args;
  if (s.flag === 'last') return LAST;
  if (s.flag === 'break') return BREAK;
  return null;
}

function test(c: CompiledCondition, v: RequestVars, stat: StatFn): boolean {
  switch (c.kind) {
    case 'value':
      return isTrue(v.render(c.left));
    case 'compare':
      return (v.render(c.left) === v.render(c.right)) !== c.negate;
    case 'regex': {
      const m = c.regex.exec(v.render(c.left));
      if (m !== null && !c.negate) v.state.captures = m;
      return (m !== null) !== c.negate;
    }
    case 'file': {
      const st = stat(v.render(c.path));
      const yes = c.test === '-f' ? st?.isFile() === true : c.test === '-d' ? st?.isDirectory() === true : st !== null;
      return yes !== c.negate;
    }
  }
}
