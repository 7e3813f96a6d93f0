/**
 * nginx's rewrite module (`rewrite`, `set`, `if`, `return`, `break`) → gateway.yaml rewrite steps, in order, at the
 * server level (top-level `rewrite:`) and in locations (a route's `rewrite:`, or its `return:`).
 *
 * Regexes become JavaScript (pcre.ts); variables must be ones phpgate has (variables.ts). What cannot be
 * translated fails closed where it refuses or keeps something out of the cache:
 * - a `rewrite` whose regex or replacement cannot be expressed: the requests it would rewrite are refused (403),
 *   matched by a widened regex (regex.ts);
 * - an `if` whose condition cannot be evaluated: a body that only refuses (return 4xx) or marks the request for a
 *   cache bypass runs for a widened condition, or always; any other body is dropped with a warning;
 * - directives inside an `if` other than the rewrite module's: warned about (nginx's if-as-location is not kept).
 */
import type { ImportContext } from './context.js';
import type { RewriteStep } from './emit.js';
import type { Directive } from './parse.js';
import { toJsRegex, widenRegex } from './regex.js';
import { quoteOperand, setText } from './variables.js';

export const REWRITE_DIRECTIVES: ReadonlySet<string> = new Set(['rewrite', 'set', 'if', 'return', 'break']);

const REWRITE_FLAGS = new Set(['last', 'break', 'redirect', 'permanent']);
const FILE_TESTS = new Set(['-f', '!-f', '-d', '!-d', '-e', '!-e']);

/** The rewrite-module directives of a block, in order, as steps; each directive is reported. */
export function rewriteSteps(cx: ImportContext, ds: readonly Directive[]): RewriteStep[] {
  return ds.flatMap((d) => step(cx, d));
}

function step(cx: ImportContext, d: Directive): RewriteStep[] {
  switch (d.name) {
    case 'return':
      return returnStep(cx, d);
    case 'rewrite':
      return rewriteStep(cx, d);
    case 'set':
      return setStep(cx, d);
    case 'break':
      cx.report.note(d, 'rewrite step break');
      return [{ break: true }];
    default:
      return ifStep(cx, d);
  }
}

/** `return CODE [text|URL]` or `return URL` (302) as the step's text, or null when it is not one. */
export function returnText(d: Directive): string | null {
  const [first = '', second] = d.args;
  if (d.args.length === 1 && /^(https?:\/\/|\$scheme)/.test(first)) return `302 ${first}`;
  if (!/^\d{3}$/.test(first) || d.args.length > 2) return null;
  return second === undefined ? first : `${first} ${second}`;
}

/** A return that refuses: 4xx, 5xx, or 444 (nginx closes the connection). */
export function isRefusal(step: RewriteStep): boolean {
  return 'return' in step && Number(step.return.split(' ')[0]) >= 400;
}

function returnStep(cx: ImportContext, d: Directive): RewriteStep[] {
  const text = returnText(d);
  if (text === null) {
    cx.report.warn(d, 'not translated: expected return CODE [TEXT|URL] or return URL; the request is refused (403) instead');
    return [{ return: '403' }];
  }
  const unknown = cx.vars.unknown(text);
  if (unknown.length > 0) {
    cx.report.warn(d, `rewrite step return ${text}, but ${describeUnknown(cx, unknown)}: phpgate puts nothing in their place`);
  } else cx.report.note(d, `rewrite step return ${text}`);
  return [{ return: text }];
}

function describeUnknown(cx: ImportContext, names: readonly string[]): string {
  return names.map((n) => `$${n} is ${cx.vars.why(n)}`).join('; ');
}

/** Variables holding raw request bytes (ASCII request line, latin1 headers), not the decoded path. */
const RAW_VALUE =
  /^\$(?:request_uri|args|query_string|is_args|request_method|scheme|https|host|http_\w+|cookie_\w+|arg_\w+|remote_addr|server_name|server_port)$/;

/** Paths phpgate refuses before any rewrite (its dotfile rule), to tell where a site's own rule for them differs. */
const DOTFILES = ['/.htaccess', '/.git/config', '/.env'];

/** phpgate's dotfile rule answers before a rewrite the site has for them. */
export function warnDotfiles(cx: ImportContext, d: Directive): void {
  cx.report.warn(
    d,
    'differs for dotfiles: phpgate refuses dotfiles and dot-directories (except /.well-known/) before any rewrite or route, with static.deny_status; this rewrite is not reached for them',
  );
}

function rewriteStep(cx: ImportContext, d: Directive): RewriteStep[] {
  const [re = '', replacement = '', flag] = d.args;
  const problems: string[] = [];
  if (d.args.length < 2 || d.args.length > 3 || (flag !== undefined && !REWRITE_FLAGS.has(flag)))
    problems.push('expected rewrite REGEX REPLACEMENT [FLAG]');
  const js = toJsRegex(re, false);
  if ('reason' in js) problems.push(js.reason);
  const unknown = cx.vars.unknown(replacement);
  if (unknown.length > 0) problems.push(describeUnknown(cx, unknown));
  if (/\s/.test(replacement)) problems.push('the replacement holds whitespace');
  if (problems.length === 0 && !('reason' in js)) {
    const text = `${js.source} ${replacement}${flag === undefined ? '' : ` ${flag}`}`;
    cx.report.note(d, `rewrite step ${text}${js.notes.length > 0 ? ` (${js.notes.join('; ')})` : ''}`);
    // Server-level: it runs before any location, so the site sends dotfiles to it; in a location, only when no
    // location of the site refuses them first (translate.ts decides once the routes are known).
    if (DOTFILES.some((p) => new RegExp(js.source, js.caseless ? 'i' : '').test(p))) {
      if (cx.serverChildren.includes(d)) warnDotfiles(cx, d);
      else cx.dotfileRewrites.push(d);
    }
    return [{ rewrite: text }];
  }
  // Not expressible: the requests it would rewrite are refused rather than served unrewritten.
  const wide = widenRegex(re, false);
  const refuse: RewriteStep = { return: '403' };
  cx.report.warn(
    d,
    `not translated (${problems.join('; ')}): failing closed, the requests it would rewrite are refused with 403 (its regex ${wide.how})`,
  );
  return wide.regex.source === '^' ? [refuse] : [{ if: `$uri ${wide.regex.caseless ? '~*' : '~'} ${wide.regex.source}`, then: [refuse] }];
}

function setStep(cx: ImportContext, d: Directive): RewriteStep[] {
  const [target = '', value = ''] = d.args;
  const name = /^\$(\w+)$/.exec(target)?.[1];
  if (name === undefined || d.args.length !== 2) {
    cx.report.warn(d, 'not translated: expected set $VARIABLE VALUE');
    return [];
  }
  if (!cx.vars.known(name)) {
    cx.report.warn(d, `not translated: $${name} is ${cx.vars.why(name)}; where it decides a cache bypass, that route is not cached`);
    return [];
  }
  cx.report.note(d, `rewrite step set ${setText(name, value)}`);
  return [{ set: setText(name, value) }];
}

type Condition = { readonly text: string } | { readonly reason: string; readonly widened: string | null };

/** The `if (…)` condition in gateway.yaml's spelling, or why not (with a wider condition when one exists). */
export function condition(cx: ImportContext, d: Directive): Condition {
  const tokens = [...d.args];
  if (tokens[0] !== undefined) tokens[0] = tokens[0].replace(/^\(/, '');
  const lastIndex = tokens.length - 1;
  if (tokens[lastIndex] !== undefined) tokens[lastIndex] = tokens[lastIndex].replace(/\)$/, '');
  // A bare ")" or "(" leaves an empty token; an empty quoted operand ("") stays as the third token.
  const parts = tokens.filter((t, i) => t !== '' || (i === 2 && tokens.length >= 3));
  const unknownIn = (text: string): string | null => {
    const unknown = cx.vars.unknown(text);
    return unknown.length === 0 ? null : describeUnknown(cx, unknown);
  };
  if (parts.length === 1 && /^\$\w+$/.test(parts[0]!)) {
    const why = unknownIn(parts[0]!);
    return why === null ? { text: parts[0]! } : { reason: why, widened: null };
  }
  if (parts.length === 2 && FILE_TESTS.has(parts[0]!)) {
    const why = unknownIn(parts[1]!);
    return why === null ? { text: `${parts[0]!} ${quoteOperand(parts[1]!)}` } : { reason: why, widened: null };
  }
  if (parts.length === 3 && /^\$\w+$/.test(parts[0]!)) {
    const [variable, op, operand] = parts as [string, string, string];
    const why = unknownIn(variable);
    if (why !== null) return { reason: why, widened: null };
    if (op === '=' || op === '!=') {
      const whyOperand = unknownIn(operand);
      return whyOperand === null ? { text: `${variable} ${op} ${quoteOperand(operand)}` } : { reason: whyOperand, widened: null };
    }
    const m = /^(!?)~(\*?)$/.exec(op);
    if (m !== null) {
      const [, not = '', star = ''] = m;
      // A raw request value (not the decoded path) is one character per byte in the gateway: matched as bytes.
      const subject = RAW_VALUE.test(variable) ? 'bytes' : 'path';
      const js = toJsRegex(operand, star === '*', subject);
      const spell = (source: string, caseless: boolean): string => `${variable} ${not}~${caseless ? '*' : ''} ${quoteOperand(source)}`;
      if (!('reason' in js)) return { text: spell(js.source, js.caseless) };
      // Only a positive match can be widened into a condition that holds at least as often.
      const wide = not === '' ? widenRegex(operand, star === '*', subject) : null;
      if (wide?.exact === true) return { text: spell(wide.regex.source, wide.regex.caseless) };
      return { reason: js.reason, widened: wide === null ? null : spell(wide.regex.source, wide.regex.caseless) };
    }
  }
  return { reason: `the condition ${d.args.join(' ')} is not one phpgate evaluates`, widened: null };
}

function ifStep(cx: ImportContext, d: Directive): RewriteStep[] {
  const body: Directive[] = [];
  for (const c of d.children ?? []) {
    if (REWRITE_DIRECTIVES.has(c.name) && c.name !== 'if') body.push(c);
    else {
      cx.report.warn(
        c,
        'not translated: inside "if" phpgate keeps rewrite, set, return and break only (nginx runs the request with this block\'s settings when the condition holds)',
      );
      cx.report.doneTree(c);
    }
  }
  const then = rewriteSteps(cx, body);
  const cond = condition(cx, d);
  if ('text' in cond) {
    cx.report.note(d, `rewrite step if ${cond.text}`);
    return then.length === 0 ? [] : [{ if: cond.text, then }];
  }
  // The condition cannot be evaluated: keep what refuses (or keeps a request out of the cache), for at least as
  // many requests as nginx; drop the rest.
  const safe = then.filter((s) => isRefusal(s) || isCacheSafeSet(cx, s));
  if (safe.length === 0) {
    cx.report.warn(d, `not translated: ${cond.reason}; nothing inside it is imported`);
    return [];
  }
  const dropped = then.length - safe.length;
  const kept = dropped > 0 ? `; only its refusals and cache bypasses are kept (${dropped} other step(s) dropped)` : '';
  if (cond.widened !== null) {
    cx.report.warn(d, `failing closed: ${cond.reason}; the condition is widened to ${cond.widened}${kept}`);
    return [{ if: cond.widened, then: safe }];
  }
  cx.report.warn(d, `failing closed: ${cond.reason}; what it does applies to every request here${kept}`);
  return safe;
}

/** `set $v 1` for a variable a cache bypass reads: running it more often only caches less. */
function isCacheSafeSet(cx: ImportContext, s: RewriteStep): boolean {
  if (!('set' in s)) return false;
  const m = /^\$(\w+) (.*)$/.exec(s.set);
  return m !== null && cx.vars.cacheVariables.has(m[1]!) && m[2] !== '""' && m[2] !== '0' && !m[2]!.includes('$');
}
