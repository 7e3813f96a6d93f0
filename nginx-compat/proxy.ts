/**
 * What a proxy_pass location and its `upstream {}` block say beyond targets and paths: the balancing method,
 * how long a failed server stays out (fail_timeout), the timeouts, and which Host the upstream gets. Each
 * directive is reported here; route-php.ts makes the route's proxy.
 */
import type { Directive } from './parse.js';
import type { ImportContext, Scope, UpstreamDef } from './context.js';
import type { UpstreamDraft } from './emit.js';
import { NOTES, STANDARD_PROXY_HEADERS } from './notes.js';
import { parseTime } from './units.js';

/** The proxy keys besides targets, websockets and strip_prefix (those of an upstreams[] entry, without pattern). */
export type ProxySettings = Omit<UpstreamDraft, 'pattern' | 'targets' | 'websockets' | 'strip_prefix'>;

/** Host values that mean "the client's Host" (phpgate's host_header: client, the default). */
const CLIENT_HOST = new Set(['$host', '$http_host', '$host:$server_port']);

/**
 * An `upstream {}` block: least_conn → balance, the servers' fail_timeout → down_s (max_fails=0 → 0). Its
 * directives are reported by the first location that uses it; later ones get the same settings silently.
 */
export function upstreamBlock(cx: ImportContext, upstream: UpstreamDef, into: ProxySettings): void {
  const report = !cx.report.isHandled(upstream.d);
  const say = (d: Directive, kind: 'note' | 'warn', message: string): void => {
    if (report) cx.report[kind](d, message);
  };
  const downs = new Set<number>();
  for (const c of upstream.d.children ?? []) {
    switch (c.name) {
      case 'server':
        server(c, downs, say);
        break;
      case 'least_conn':
        into.balance = 'least_conn';
        say(c, 'note', 'balance: least_conn');
        break;
      case 'keepalive':
      case 'keepalive_timeout':
      case 'keepalive_requests':
      case 'keepalive_time':
        say(c, 'note', "phpgate keeps connections to targets alive (for as long as the target's Keep-Alive allows, up to 60 s)");
        break;
      case 'zone':
        say(c, 'note', 'not needed: phpgate is one process');
        break;
      default:
        say(c, 'warn', `not translated: proxy.balance round_robin or least_conn only (${c.name})`);
    }
  }
  const [down, ...others] = [...downs];
  if (down !== undefined && down !== 10) into.down_s = down;
  if (report) {
    if (others.length > 0)
      cx.report.warn(upstream.d, `servers with different fail_timeout/max_fails: phpgate has one down_s per upstream (${down ?? 10} s taken)`);
    cx.report.done(upstream.d);
  }
}

/** One `server ADDRESS [params]` line: fail_timeout and max_fails → down_s; the rest is reported as not kept. */
function server(d: Directive, downs: Set<number>, say: (d: Directive, kind: 'note' | 'warn', message: string) => void): void {
  let failTimeoutS = 10;
  let maxFails = 1;
  const dropped: string[] = [];
  for (const param of d.args.slice(1)) {
    const [name, value = ''] = param.split('=', 2) as [string, string?];
    if (name === 'fail_timeout' && parseTime(value) !== null) failTimeoutS = parseTime(value)! / 1000;
    else if (name === 'max_fails' && /^\d+$/.test(value)) maxFails = Number(value);
    else dropped.push(param);
  }
  downs.add(maxFails === 0 ? 0 : failTimeoutS);
  const notes: string[] = [];
  if (maxFails > 1) notes.push(`max_fails=${maxFails}: phpgate marks a target down at its first failed connection`);
  if (dropped.length > 0) notes.push(`not kept: ${dropped.join(' ')} (targets are equal, none is a backup)`);
  if (notes.length > 0) say(d, 'warn', notes.join('; '));
  else say(d, 'note', maxFails === 0 ? 'down_s: 0 (max_fails=0: never marked down)' : `a target (down_s ${failTimeoutS})`);
}

/**
 * The location's proxy_* directives (proxy_pass itself aside): proxy_connect_timeout → connect_ms,
 * proxy_read_timeout → timeout_ms, the Host the upstream gets → host_header. Returns the directives it did not
 * take, for the location's other handlers.
 */
export function proxyDirectives(cx: ImportContext, location: Directive, pass: Directive, scope: Scope, into: ProxySettings): Directive[] {
  const rest: Directive[] = [];
  for (const c of location.children ?? []) {
    if (c === pass) continue;
    if (c.name === 'proxy_set_header') proxySetHeader(cx, c);
    else if (c.name === 'proxy_connect_timeout' || c.name === 'proxy_read_timeout') timeout(cx, c, into);
    else if (c.name === 'proxy_send_timeout')
      cx.report.note(c, 'covered by proxy.timeout_ms (a target that takes nothing of a request for that long gets 504)');
    else if (c.name === 'proxy_next_upstream')
      cx.report.note(c, "phpgate tries the next target after a failed connection, for idempotent requests without a body (nginx's error timeout)");
    else if (c.name === 'proxy_redirect' && c.args[0] === 'default')
      cx.report.note(c, 'phpgate rewrites a Location pointing at the target the same way');
    else if (c.name === 'proxy_redirect') cx.report.warn(c, 'not translated: phpgate always rewrites as proxy_redirect default does');
    else if (c.name.startsWith('proxy_') && NOTES[c.name] === undefined) cx.report.warn(c, 'not translated: no proxy key for it');
    else rest.push(c);
  }
  // proxy_set_header is inherited as a whole list from the nearest level that has one; without any, nginx sends
  // `Host: $proxy_host` (the target's own host:port).
  const host = cx.inherited('proxy_set_header', scope).find((h) => h.args[0]?.toLowerCase() === 'host');
  if (host === undefined || host.args[1] === '$proxy_host') into.host_header = 'target';
  return rest;
}

/** proxy_set_header: what phpgate sends anyway is a note; Host says host_header; any other header is not sent. */
export function proxySetHeader(cx: ImportContext, c: Directive): void {
  const name = c.args[0]?.toLowerCase() ?? '';
  const value = c.args[1] ?? '';
  if (name === 'host') {
    if (value === '$proxy_host') return cx.report.note(c, 'proxy.host_header: target');
    if (CLIENT_HOST.has(value)) return cx.report.note(c, "proxy.host_header: client (phpgate's default: the Host the client sent)");
    return cx.report.warn(c, `not translated: proxy.host_header is the client's Host or the target's, not "${value}" (the client's is sent)`);
  }
  const std = STANDARD_PROXY_HEADERS.get(name);
  if (std !== undefined) cx.report.note(c, `standard forwarding header (${std})`);
  else cx.report.warn(c, 'not translated: upstreams take no extra request headers');
}

function timeout(cx: ImportContext, c: Directive, into: ProxySettings): void {
  const ms = parseTime(c.args[0] ?? '');
  if (ms === null || ms < 1) return cx.report.warn(c, 'not translated: not an nginx time');
  const key = c.name === 'proxy_connect_timeout' ? 'connect_ms' : 'timeout_ms';
  into[key] = ms;
  cx.report.note(c, `proxy.${key}: ${ms}`);
}
