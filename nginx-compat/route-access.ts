/**
 * Who may reach a route: `allow`/`deny` → `deny: true` (a bare `deny all`) or `access` (the ordered list),
 * `auth_basic` + `auth_basic_user_file` → `auth_basic`, `limit_except` → a method check in the route's rewrite
 * steps. nginx inherits all of them into nested locations; what cannot be expressed refuses (fails closed).
 */
import path from 'node:path';
import { addressOrCidr, INVALID } from '../config/checks.js';
import type { ImportContext } from './context.js';
import type { AccessRule, RewriteStep } from './emit.js';
import type { Directive } from './parse.js';

/** One block's allow/deny list: none, a bare refusal, an allow for everyone, or rules. */
export type Access =
  { readonly kind: 'none' } | { readonly kind: 'deny' } | { readonly kind: 'allow-all' } | { readonly kind: 'list'; readonly rules: AccessRule[] };

export function accessDirectives(list: readonly Directive[]): Directive[] {
  return list.filter((c) => (c.name === 'allow' || c.name === 'deny') && c.children === null);
}

/** The allow/deny directives of one block, in order, as nginx checks them (first match decides). */
export function readAccess(cx: ImportContext, ds: readonly Directive[], report: boolean): Access {
  if (ds.length === 0) return { kind: 'none' };
  const rules: AccessRule[] = [];
  for (const d of ds) {
    const arg = d.args[0] ?? '';
    const allow = d.name === 'allow';
    if (d.args.length !== 1 || (arg !== 'all' && !arg.startsWith('unix:') && addressOrCidr.parse(arg) === INVALID)) {
      // nginx would not start; an allow that cannot be read grants nothing, a deny that cannot be read refuses all.
      if (report)
        cx.report.warn(d, `not translated: not an address, CIDR, unix: or all; ${allow ? 'dropped (it grants nothing)' : 'read as deny all'}`);
      if (!allow) rules.push({ deny: 'all' });
      continue;
    }
    if (arg.startsWith('unix:')) {
      if (report) cx.report.note(d, 'unix: clients: phpgate listens on TCP only, so this rule never applies');
      continue;
    }
    rules.push(allow ? { allow: arg } : { deny: arg });
  }
  // Rules after an "all" are never reached.
  const end = rules.findIndex((r) => ('allow' in r ? r.allow : r.deny) === 'all');
  const kept = end === -1 ? rules : rules.slice(0, end + 1);
  if (kept.length === 0) return { kind: 'none' };
  if ('deny' in kept[0]! && kept[0].deny === 'all') return { kind: 'deny' };
  if (kept.every((r) => 'allow' in r))
    return kept.some((r) => 'allow' in r && r.allow === 'all') ? { kind: 'allow-all' } : { kind: 'list', rules: kept };
  return { kind: 'list', rules: kept };
}

export function describeAccess(a: Access): string {
  if (a.kind === 'list') return `access: ${a.rules.map((r) => ('allow' in r ? `allow ${r.allow}` : `deny ${r.deny}`)).join(', ')}`;
  return a.kind === 'deny' ? 'deny: true (403)' : 'open to every address';
}

export type Auth = { readonly realm: string; readonly user_file: string } | { readonly off: true } | { readonly failed: string } | null;

/**
 * The auth_basic in effect (nginx inherits auth_basic and auth_basic_user_file separately): `off`, a realm with a
 * user file (resolved against the configuration prefix, as nginx does), or nothing (no realm, or no user file:
 * nginx then asks for nothing).
 */
export function readAuth(cx: ImportContext, chain: readonly (readonly Directive[])[]): { auth: Auth; ds: Directive[] } {
  const nearest = (name: string): Directive | undefined => {
    for (const list of chain) {
      const found = list.filter((c) => c.name === name).at(-1);
      if (found !== undefined) return found;
    }
    return undefined;
  };
  const realmD = nearest('auth_basic');
  const fileD = nearest('auth_basic_user_file');
  const ds = [realmD, fileD].filter((x): x is Directive => x !== undefined);
  if (realmD === undefined) return { auth: null, ds };
  const realm = realmD.args[0] ?? '';
  if (realm === 'off') return { auth: { off: true }, ds };
  if (fileD === undefined) return { auth: null, ds };
  const file = fileD.args[0] ?? '';
  if (file.includes('$') || file === '') return { auth: { failed: `auth_basic_user_file ${file}` }, ds };
  return { auth: { realm, user_file: path.isAbsolute(file) ? file : path.join(cx.prefix, file) }, ds };
}

const SAFE_METHODS: Readonly<Record<string, readonly string[]>> = { GET: ['GET', 'HEAD'] };

/**
 * `limit_except METHOD … { deny all; }` → a step refusing (403) the other methods. Its rules are checked after the
 * location's rewrites, as nginx's access phase comes after its rewrite phase. A body other than `deny all`
 * (addresses, auth_basic) cannot be expressed and refuses the other methods for everyone.
 */
export function limitExceptSteps(cx: ImportContext, d: Directive): RewriteStep[] {
  const methods = [...new Set(d.args.flatMap((m) => SAFE_METHODS[m.toUpperCase()] ?? [m.toUpperCase()]))];
  const body = d.children ?? [];
  const onlyDeny = body.length === 1 && body[0]!.name === 'deny' && body[0]!.args[0] === 'all';
  const step: RewriteStep = { if: `$request_method !~ ^(${methods.join('|')})$`, then: [{ return: '403' }] };
  cx.report.doneTree(d);
  if (onlyDeny) cx.report.note(d, `rewrite step: methods other than ${methods.join(', ')} are refused (403)`);
  else {
    cx.report.warn(
      d,
      `failing closed: phpgate refuses methods other than ${methods.join(', ')} for every client (what the block allows — addresses, auth_basic — is not translated)`,
    );
  }
  return [step];
}
