/**
 * `routes:` and the top-level `rewrite:` of gateway.yaml (docs/ROUTES.md): readers that check every entry where it
 * is written and return the parsed forms, and the checks that need the whole tree (variables, pools, files).
 */
import { isMap, isScalar, type Node } from 'yaml';
import * as C from './checks.js';
import { INVALID, type Invalid } from './checks.js';
import { list, obj, scalar, type At, type ReadContext, type Reader } from './reader.js';
import {
  IF_EXPECTED,
  isKnownVariable,
  parseCondition,
  parseExpires,
  parseMatch,
  parseReturn,
  parseRewrite,
  parseSet,
  parseTemplate,
  variablesOf,
  type Parsed,
} from './route-syntax.js';
import type { RewriteStep, RouteAccessRule, RouteCache, RouteConfig, RouteHeader, RoutePhp, TemplatePart, UpstreamConfig } from './types.js';
import { UPSTREAM_DEFAULTS, CACHE_RULE_DEFAULTS } from './defaults.js';

/** A scalar parsed by one of route-syntax's parsers; its own message on failure. */
function syntax<T>(expected: string, parse: (v: string | number) => Parsed<T>): Reader<T> {
  return {
    expected,
    read(node, at, cx) {
      const v = isScalar(node) ? node.value : undefined;
      if (typeof v !== 'string' && typeof v !== 'number') {
        cx.report(at.path, at.loc, `${at.path} must be ${expected}`);
        return INVALID;
      }
      const r = parse(v);
      if (r.ok) return r.value;
      cx.report(at.path, at.loc, `${at.path} must be ${r.error}, got ${JSON.stringify(v)}`);
      return INVALID;
    },
  };
}

/** A reader whose result is turned into another value (or refused) once read. */
function mapped<A, B>(inner: Reader<A>, f: (a: A, at: At, cx: ReadContext) => B | Invalid): Reader<B> {
  return {
    expected: inner.expected,
    read(node, at, cx) {
      const a = inner.read(node, at, cx);
      return a === INVALID ? INVALID : f(a, at, cx);
    },
  };
}

/** One of several readers chosen by the node's shape. */
function either<A, B>(expected: string, scalarReader: Reader<A>, mapReader: Reader<B>): Reader<A | B> {
  return {
    expected,
    read(node: Node | null, at, cx) {
      return isMap(node) ? mapReader.read(node, at, cx) : scalarReader.read(node, at, cx);
    },
  };
}

const template = syntax('text with nginx variables', (v) => ({ ok: true, value: parseTemplate(String(v)) }));

/** A header's value: one line (no control characters), with nginx variables. */
const headerTemplate = syntax(`${C.headerValue.expected}, with nginx variables`, (v) =>
  C.headerValue.parse(String(v)) === INVALID ? { ok: false, error: C.headerValue.expected } : { ok: true, value: parseTemplate(String(v)) },
);

// ------------------------------------------------------------------------------------------------ rewrite steps

const STEP_KEYS = ['rewrite', 'set', 'return', 'break', 'if'] as const;
const STEP_EXPECTED = `a mapping with one of ${STEP_KEYS.join(', ')} ("if" with "then")`;

const steps: Reader<RewriteStep[]> = {
  expected: `a list (each entry ${STEP_EXPECTED})`,
  read: (node, at, cx) => stepList.read(node, at, cx),
};

const stepFields = obj({
  rewrite: syntax('a rewrite', (v) => parseRewrite(String(v))),
  set: syntax('a set', (v) => parseSet(String(v))),
  return: syntax('a return', parseReturn),
  break: scalar(C.bool),
  if: syntax(IF_EXPECTED, (v) => parseCondition(String(v))),
  then: steps,
});

const step: Reader<RewriteStep> = {
  expected: STEP_EXPECTED,
  read(node, at, cx) {
    const keys = isMap(node) ? node.items.map((p) => (isScalar(p.key) ? String(p.key.value) : '')) : [];
    const present = STEP_KEYS.filter((k) => keys.includes(k));
    if (present.length !== 1 || (keys.includes('then') && present[0] !== 'if')) {
      cx.report(at.path, at.loc, `${at.path} must be ${STEP_EXPECTED}, got ${present.length === 0 ? 'none' : present.join(' and ')}`);
      return INVALID;
    }
    const s = stepFields.read(node, at, cx);
    if (s === INVALID) return INVALID;
    if (s.rewrite !== undefined) return { kind: 'rewrite', ...s.rewrite };
    if (s.set !== undefined) return { kind: 'set', ...s.set };
    if (s.return !== undefined) return { kind: 'return', ...s.return };
    if (s.if !== undefined) return { kind: 'if', condition: s.if, then: s.then ?? [] };
    if (s.break === true) return { kind: 'break' };
    return INVALID; // the key was there but its value was refused (already reported)
  },
};

const stepList = list(step);

// ------------------------------------------------------------------------------------------------ route actions

const php: Reader<RoutePhp | null> = either(
  'true, false or a mapping with script, split_path_info, pool',
  mapped(scalar(C.bool), (b) => (b ? { script: null, split_path_info: null, path_info: null, pool: null } : null)),
  mapped(
    obj({
      script: scalar(C.errorPageUri),
      split_path_info: syntax('a JavaScript regex with two groups (SCRIPT_NAME, PATH_INFO)', (v) => splitRegex(String(v))),
      path_info: {
        expected: 'false (no PATH_INFO) or text with nginx variables such as $path_info',
        read: (node, at, cx) => (isScalar(node) && node.value === false ? false : template.read(node, at, cx)),
      },
      pool: scalar(C.poolName),
    }),
    (p) => ({ script: p.script ?? null, split_path_info: p.split_path_info ?? null, path_info: p.path_info ?? null, pool: p.pool ?? null }),
  ),
);

function splitRegex(source: string): Parsed<string> {
  let groups: number;
  try {
    groups = new RegExp(`${source}|`).exec('')!.length - 1;
  } catch (err) {
    return { ok: false, error: `a valid JavaScript regex (${(err as Error).message})` };
  }
  return groups >= 2 ? { ok: true, value: source } : { ok: false, error: 'a JavaScript regex with two groups (SCRIPT_NAME, PATH_INFO)' };
}

const proxy = mapped(
  obj(
    {
      targets: list(scalar(C.httpUrl), { nonEmpty: true }),
      balance: scalar(C.upstreamBalance),
      websockets: scalar(C.bool),
      strip_prefix: scalar(C.stripPrefix),
      host_header: scalar(C.upstreamHostHeader),
      connect_ms: scalar(C.positiveMs),
      timeout_ms: scalar(C.positiveMs),
      down_s: scalar(C.numberAtLeast(0)),
    },
    ['targets'],
  ),
  (p): Omit<UpstreamConfig, 'pattern'> => ({ ...UPSTREAM_DEFAULTS, ...p }),
);

const accessRule: Reader<RouteAccessRule> = mapped(obj({ allow: scalar(C.accessTarget), deny: scalar(C.accessTarget) }), (r, at, cx) => {
  if ((r.allow === undefined) === (r.deny === undefined)) {
    cx.report(at.path, at.loc, `${at.path} must be a mapping with one of allow, deny (e.g. "allow: 10.0.0.0/8", "deny: all")`);
    return INVALID;
  }
  return r.allow !== undefined ? { allow: true, who: r.allow } : { allow: false, who: r.deny! };
});

const header: Reader<RouteHeader> = mapped(
  obj({ name: scalar(C.headerName), value: headerTemplate, always: scalar(C.bool) }, ['name', 'value']),
  (h) => ({
    name: h.name,
    value: h.value,
    always: h.always ?? false,
  }),
);

const headers: Reader<RouteHeader[]> = either('a list of { name, value, always } or a mapping of names to values', list(header), {
  expected: 'a mapping of names to values',
  read(node, at, cx) {
    const out: RouteHeader[] = [];
    if (!isMap(node)) return out;
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '';
      const name = C.headerName.parse(key);
      const raw = isScalar(pair.value) ? C.headerValue.parse(String(pair.value.value)) : INVALID;
      if (name === INVALID || raw === INVALID) {
        cx.report(at.path, cx.locOf(pair.key as Node, at.loc), `${at.path} must map header names to one-line values`);
        return INVALID;
      }
      out.push({ name, value: parseTemplate(raw), always: false });
    }
    return out;
  },
});

const cache: Reader<RouteCache> = mapped(
  obj(
    {
      ttl_s: scalar(C.numberAbove(0)),
      statuses: list(scalar(C.cacheableStatus), { nonEmpty: true }),
      stale_s: scalar(C.numberAtLeast(0)),
      key: scalar(C.cacheKey),
      bypass: list(template),
      no_store: list(template),
    },
    ['ttl_s'],
  ),
  (c) => ({ ...CACHE_RULE_DEFAULTS, ...c, bypass: c.bypass ?? [], no_store: c.no_store ?? [] }),
);

const deny = C.check('true (403) or a status from 400 to 599', (v) =>
  v === true ? 403 : typeof v === 'number' && Number.isInteger(v) && v >= 400 && v <= 599 ? v : INVALID,
);

/** nginx: the last index entry may be an absolute URI (with variables), an internal redirect when no file is found. */
const indexLast = C.check('a file name without "/", or (last) a URI starting with / such as "/index.php$request_uri"', (v) =>
  typeof v === 'string' && v.startsWith('/') && !v.includes('..') ? v : C.fileName.parse(v),
);

const tryLast = C.check('a URI starting with / or $, "=CODE" such as "=404", or "@name" (a named route)', (v) =>
  typeof v === 'string' && /^@[A-Za-z0-9_-]+$/.test(v) ? v : C.tryFilesLast.parse(v),
);

const routeList: Reader<RouteConfig[]> = {
  expected: 'a list of routes',
  read: (node, at, cx) => routes.read(node, at, cx),
};

const routeFields = obj(
  {
    match: syntax('a location match', (v) => parseMatch(String(v))),
    routes: routeList,
    root: scalar(C.nonEmptyString),
    alias: scalar(C.nonEmptyString),
    index: list(scalar(C.fileName), { nonEmpty: true, last: scalar(indexLast) }),
    try_files: list(scalar(C.tryFilesUri), { nonEmpty: true, last: scalar(tryLast) }),
    php,
    proxy,
    return: syntax('a return', parseReturn),
    rewrite: steps,
    deny: scalar(deny),
    access: list(accessRule),
    auth_basic: obj({ realm: scalar(C.string), user_file: scalar(C.nonEmptyString) }, ['user_file']),
    add_header: headers,
    expires: syntax('an expiry', parseExpires),
    cache,
    internal: scalar(C.bool),
  },
  ['match'],
);

/** The raw `match:` text of a route node, for messages. */
function matchText(node: Node | null): string {
  if (!isMap(node)) return '';
  const m = node.items.find((p) => isScalar(p.key) && p.key.value === 'match');
  return m !== undefined && isScalar(m.value) ? String(m.value.value) : '';
}

const route: Reader<RouteConfig> = {
  expected: 'a route (a mapping with match:)',
  read(node, at, cx) {
    const r = routeFields.read(node, at, cx);
    if (r === INVALID) return INVALID;
    // nginx: one content handler per location (fastcgi_pass or proxy_pass); a `return` answers before either runs.
    if (r.php != null && r.proxy !== undefined) {
      cx.report(at.path, at.loc, `${at.path} must have php or proxy, not both (nginx's content handlers: fastcgi_pass, proxy_pass)`);
      return INVALID;
    }
    if (r.alias !== undefined && r.root !== undefined) {
      cx.report(`${at.path}.alias`, cx.locate(`${at.path}.alias`), `${at.path}.alias: a route has root or alias, not both`);
      return INVALID;
    }
    if (r.match.kind === 'named' && at.path.includes('.routes[')) {
      cx.report(
        `${at.path}.match`,
        cx.locate(`${at.path}.match`),
        `${at.path}.match: a named route (@name) must be at the top level, as nginx's named locations`,
      );
      return INVALID;
    }
    return {
      text: matchText(node),
      match: r.match,
      routes: r.routes ?? [],
      root: r.root ?? null,
      alias: r.alias ?? null,
      index: r.index ?? null,
      try_files: r.try_files ?? null,
      php: r.php ?? null,
      proxy: r.proxy ?? null,
      return: r.return ?? null,
      rewrite: r.rewrite ?? [],
      deny: r.deny ?? null,
      access: r.access ?? null,
      auth_basic: r.auth_basic === undefined ? null : { realm: r.auth_basic.realm ?? '', user_file: r.auth_basic.user_file },
      add_header: r.add_header ?? null,
      expires: r.expires ?? null,
      cache: r.cache ?? null,
      internal: r.internal ?? false,
    };
  },
};

export const routes: Reader<RouteConfig[]> = list(route);
export const serverRewrite: Reader<RewriteStep[]> = steps;

// ------------------------------------------------------------------------------------------------ whole-tree checks

/** Every template of a rewrite script, with the variables `set` in it and the named groups of its regexes. */
function scanSteps(list: readonly RewriteStep[], defined: Set<string>, used: (parts: readonly TemplatePart[]) => void): void {
  for (const s of list) {
    switch (s.kind) {
      case 'rewrite':
        namedGroups(s.source, defined);
        used(s.replacement);
        break;
      case 'set':
        defined.add(s.name);
        used(s.value);
        break;
      case 'return':
        if (s.text !== null) used(s.text);
        break;
      case 'if': {
        const c = s.condition;
        if (c.kind === 'file') used(c.path);
        else used(c.left);
        if (c.kind === 'compare') used(c.right);
        if (c.kind === 'regex') namedGroups(c.source, defined);
        scanSteps(s.then, defined, used);
        break;
      }
      case 'break':
        break;
    }
  }
}

function namedGroups(source: string, into: Set<string>): void {
  for (const m of source.matchAll(/\(\?<([A-Za-z_][A-Za-z0-9_]*)>/g)) into.add(m[1]!.toLowerCase());
}

/**
 * Variables nginx would refuse at start ("unknown variable"): every one used must be built in, captured, or `set`
 * somewhere. Returns the messages (without places: the caller reports them at `routes`/`rewrite`).
 */
/** try_files entries naming a `@name` route that does not exist (nginx: "could not find named location"). */
export function missingNamedRoutes(tree: readonly RouteConfig[]): string[] {
  const names = new Set(tree.flatMap((r) => (r.match.kind === 'named' ? [r.match.name] : [])));
  const out: string[] = [];
  const walk = (rs: readonly RouteConfig[]): void => {
    for (const r of rs) {
      const last = r.try_files?.[r.try_files.length - 1];
      if (last?.startsWith('@') === true && !names.has(last.slice(1))) out.push(`try_files names "${last}", but no route has match: "${last}"`);
      walk(r.routes);
    }
  };
  walk(tree);
  return out;
}

export function unknownVariables(server: readonly RewriteStep[], tree: readonly RouteConfig[]): string[] {
  const defined = new Set<string>();
  const templates: (readonly TemplatePart[])[] = [];
  const use = (parts: readonly TemplatePart[]): void => void templates.push(parts);
  scanSteps(server, defined, use);
  const walk = (rs: readonly RouteConfig[]): void => {
    for (const r of rs) {
      if (r.match.kind === 'regex') namedGroups(r.match.source, defined);
      scanSteps(r.rewrite, defined, use);
      if (r.return?.text != null) use(r.return.text);
      if (r.php?.path_info) use(r.php.path_info);
      for (const h of r.add_header ?? []) use(h.value);
      for (const t of [...(r.cache?.bypass ?? []), ...(r.cache?.no_store ?? [])]) use(t);
      walk(r.routes);
    }
  };
  walk(tree);
  const unknown = new Set<string>();
  for (const t of templates) for (const v of variablesOf(t)) if (!isKnownVariable(v) && !defined.has(v)) unknown.add(v);
  return [...unknown].map(
    (v) =>
      `unknown variable "$${v}" (known: $uri, $request_uri, $args, $arg_NAME, $host, $scheme, $http_NAME, $cookie_NAME, …, and those set by "set")`,
  );
}
