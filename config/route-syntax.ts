/**
 * The nginx-shaped strings of `routes:` (see docs/ROUTES.md): a location's match, `rewrite`, `return`, `set`, `if`
 * conditions, `expires` and text with variables. Each parser returns the parsed form or a message completing
 * "must be …"; gateway/route/ compiles the parsed forms once at load.
 */
import type { RouteCondition, RouteMatch, RewriteFlag, TemplatePart } from './types.js';

export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = <T>(error: string): Parsed<T> => ({ ok: false, error });

/** A JavaScript regex that compiles; its message otherwise. */
function regex(source: string, caseInsensitive: boolean): Parsed<string> {
  try {
    new RegExp(source, caseInsensitive ? 'i' : '');
    return ok(source);
  } catch (err) {
    return bad(`a valid JavaScript regex (${(err as Error).message})`);
  }
}

export const MATCH_EXPECTED = 'a location as nginx writes it: "= /exact", "/prefix", "^~ /prefix", "~ regex", "~* regex" or "@name"';

export function parseMatch(text: string): Parsed<RouteMatch> {
  const named = /^\s*@([A-Za-z0-9_-]+)\s*$/.exec(text);
  if (named !== null) return ok({ kind: 'named', name: named[1]! });
  const m = /^\s*(=|\^~|~\*|~)?\s*(.*?)\s*$/s.exec(text)!;
  const modifier = m[1];
  const rest = m[2]!;
  if (rest === '') return bad(MATCH_EXPECTED);
  if (modifier === '~' || modifier === '~*') {
    const r = regex(rest, modifier === '~*');
    return r.ok ? ok({ kind: 'regex', source: rest, caseInsensitive: modifier === '~*' }) : bad(r.error);
  }
  if (!rest.startsWith('/')) return bad(`${MATCH_EXPECTED}; a path starts with /`);
  if (modifier === '=') return ok({ kind: 'exact', path: rest });
  return ok({ kind: 'prefix', path: rest, priority: modifier === '^~' });
}

/** nginx's arguments: words split on spaces, "…" and '…' quoted (quotes removed, `\"` kept as `"`). */
export function splitArgs(text: string): string[] | null {
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ' || c === '\t') {
      i++;
      continue;
    }
    if (c === '"' || c === "'") {
      let word = '';
      let j = i + 1;
      for (; j < text.length && text[j] !== c; j++) {
        if (text[j] === '\\' && text[j + 1] === c) j++;
        word += text[j];
      }
      if (j >= text.length) return null;
      out.push(word);
      i = j + 1;
      continue;
    }
    let j = i;
    while (j < text.length && text[j] !== ' ' && text[j] !== '\t') j++;
    out.push(text.slice(i, j));
    i = j;
  }
  return out;
}

const FLAGS: readonly RewriteFlag[] = ['last', 'break', 'redirect', 'permanent'];
export const REWRITE_EXPECTED = '"REGEX REPLACEMENT [last|break|redirect|permanent]" as nginx\'s rewrite';

export function parseRewrite(text: string): Parsed<{ source: string; replacement: TemplatePart[]; flag: RewriteFlag | null }> {
  const args = splitArgs(text);
  if (args === null || args.length < 2 || args.length > 3) return bad(REWRITE_EXPECTED);
  const flag = args[2] === undefined ? null : (FLAGS.find((f) => f === args[2]) ?? undefined);
  if (flag === undefined) return bad(`${REWRITE_EXPECTED}; "${args[2]}" is not a flag`);
  const r = regex(args[0]!, false);
  if (!r.ok) return bad(r.error);
  return ok({ source: args[0]!, replacement: parseTemplate(args[1]!), flag });
}

export const RETURN_EXPECTED = 'a status (e.g. 404), "CODE URL" for 301/302/303/307/308, "CODE text", or a URL (302)';

export function parseReturn(value: string | number): Parsed<{ status: number; text: TemplatePart[] | null }> {
  if (typeof value === 'number')
    return Number.isInteger(value) && value >= 0 && value <= 999 ? ok({ status: value, text: null }) : bad(RETURN_EXPECTED);
  const args = splitArgs(value);
  if (args === null || args.length === 0 || args.length > 2) return bad(RETURN_EXPECTED);
  if (args.length === 1 && /^(https?:\/\/|\$scheme)/.test(args[0]!)) return ok({ status: 302, text: parseTemplate(args[0]!) });
  if (!/^\d{1,3}$/.test(args[0]!)) return bad(RETURN_EXPECTED);
  const status = Number(args[0]);
  return ok({ status, text: args[1] === undefined ? null : parseTemplate(args[1]) });
}

export const SET_EXPECTED = '"$name value" as nginx\'s set';

export function parseSet(text: string): Parsed<{ name: string; value: TemplatePart[] }> {
  const args = splitArgs(text);
  if (args === null || args.length !== 2 || !/^\$[a-z_][a-z0-9_]*$/i.test(args[0]!)) return bad(SET_EXPECTED);
  return ok({ name: args[0]!.slice(1).toLowerCase(), value: parseTemplate(args[1]!) });
}

export const IF_EXPECTED =
  'an nginx if condition: "$var", "$var = text", "$var != text", "$var ~ re" (~*, !~, !~*), "-f PATH" (!-f, -d, !-d, -e, !-e)';

export function parseCondition(text: string): Parsed<RouteCondition> {
  const inner = /^\s*\((.*)\)\s*$/s.exec(text)?.[1] ?? text;
  const args = splitArgs(inner.trim());
  if (args === null || args.length === 0 || args.length > 3) return bad(IF_EXPECTED);
  const [a, b, c] = args as [string, string | undefined, string | undefined];
  if (/^!?-[fdex]$/.test(a)) {
    if (b === undefined || c !== undefined) return bad(IF_EXPECTED);
    return ok({ kind: 'file', test: a.replace('!', '') as '-f' | '-d' | '-e' | '-x', negate: a.startsWith('!'), path: parseTemplate(b) });
  }
  if (!a.startsWith('$')) return bad(IF_EXPECTED);
  const left = parseTemplate(a);
  if (b === undefined) return ok({ kind: 'value', left });
  if (c === undefined) return bad(IF_EXPECTED);
  if (b === '=' || b === '!=') {
    return ok({ kind: 'compare', left, negate: b === '!=', right: parseTemplate(c) });
  }
  const m = /^(!?)~(\*?)$/.exec(b);
  if (m === null) return bad(IF_EXPECTED);
  const r = regex(c, m[2] === '*');
  if (!r.ok) return bad(r.error);
  return ok({ kind: 'regex', left, negate: m[1] === '!', source: c, caseInsensitive: m[2] === '*' });
}

export const EXPIRES_EXPECTED = 'a time such as "30d", "12h", "1y", "-1", or "max", "epoch", "off"';
const UNITS: Readonly<Record<string, number>> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, M: 2592000, y: 31536000 };

/** Seconds from now (negative: in the past), 'max', 'epoch' or 'off'. */
export function parseExpires(value: string | number): Parsed<number | 'max' | 'epoch' | 'off'> {
  if (typeof value === 'number') return Number.isInteger(value) ? ok(value) : bad(EXPIRES_EXPECTED);
  if (value === 'max' || value === 'epoch' || value === 'off') return ok(value);
  const m = /^(-?)((?:\d+(?:ms|[smhdwMy])?)+)$/.exec(value.replace(/\s+/g, ''));
  if (m === null) return bad(EXPIRES_EXPECTED);
  let seconds = 0;
  for (const part of m[2]!.matchAll(/(\d+)(ms|[smhdwMy])?/g)) seconds += Number(part[1]) * UNITS[part[2] ?? 's']!;
  return ok(Math.floor(m[1] === '-' ? -seconds : seconds));
}

/** Variables every request has, besides $http_NAME, $cookie_NAME, $arg_NAME, $1…$9, named captures and `set` ones. */
export const BUILTIN_VARIABLES: ReadonlySet<string> = new Set([
  'uri',
  'document_uri',
  'request_uri',
  'args',
  'query_string',
  'is_args',
  'host',
  'http_host',
  'scheme',
  'https',
  'server_name',
  'server_port',
  'request_method',
  'remote_addr',
  'document_root',
  'realpath_root',
  'request_filename',
  'fastcgi_script_name',
  'fastcgi_path_info',
  'request',
  'server_protocol',
  'content_type',
  'content_length',
]);

/**
 * Whether `name` (no `$`; nginx's variable names ignore letter case) is a variable the gateway computes without a
 * `set`: the built-ins, $http_NAME, $cookie_NAME, $arg_NAME and the captures $0…$9. The importer asks the same.
 */
export function isKnownVariable(name: string): boolean {
  const n = name.toLowerCase();
  return BUILTIN_VARIABLES.has(n) || /^\d$/.test(n) || /^(http|cookie|arg)_[a-z0-9_-]+$/.test(n);
}

/** Text with `$name` / `${name}` variables; a `$` not followed by a name stays text, as nginx leaves it. */
export function parseTemplate(text: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  const re = /\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*|\d))/g;
  let last = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    if (m.index > last) parts.push({ text: text.slice(last, m.index) });
    last = re.lastIndex;
    parts.push({ variable: (m[1] ?? m[2]!).toLowerCase() });
  }
  if (last < text.length) parts.push({ text: text.slice(last) });
  return parts;
}

/** Every variable a template names. */
export function variablesOf(parts: readonly TemplatePart[]): string[] {
  return parts.flatMap((p) => ('variable' in p ? [p.variable] : []));
}
