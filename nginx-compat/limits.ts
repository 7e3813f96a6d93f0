/**
 * What nginx limits per client → phpgate's limits: request rates (limit_req_zone + limit_req → rate_limit.rules),
 * open connections per address (limit_conn_zone + limit_conn → server.limits.connections_per_ip), HTTP/2 streams
 * (server.limits.h2_max_streams), client timeouts and header buffers (server.timeouts.*, server.limits.*_kb).
 */
import { INVALID, int, rateLimitKey } from '../config/checks.js';
import type { RateLimitKey } from '../config/types.js';
import { isMainPhp, type ConnZone, type ImportContext, type RateZone, type Scope } from './context.js';
import type { Directive } from './parse.js';
import { parseSize, parseTime } from './units.js';

/** nginx keys that stand for the client address (after set_real_ip_from): phpgate's 'ip'. */
const ADDRESS_KEYS: ReadonlySet<string> = new Set(['$binary_remote_addr', '$remote_addr']);

/** What gateway/pipeline.ts answers a rate-limited request; nginx's limit_req_status defaults to 503. */
const PHPGATE_RATE_LIMIT_STATUS = '429';

const h2Streams = int(1, 65535);
const connections = int(1);

/** `${var}` is `$var`. */
function plainVariable(key: string): string {
  return key.replace(/^\$\{(\w+)\}$/, '$$$1');
}

/**
 * What phpgate counts requests by for an nginx zone key: the client address, or one request header
 * (`$http_x_api_key` → `header:X-Api-Key`, nginx's variable read back as the header it names). null: neither.
 */
export function rateKey(nginxKey: string): RateLimitKey | null {
  const key = plainVariable(nginxKey);
  if (ADDRESS_KEYS.has(key)) return 'ip';
  const m = /^\$http_(\w+)$/.exec(key);
  if (m === null) return null;
  const name = m[1]!
    .split('_')
    .filter((w) => w !== '')
    .map((w) => w[0]!.toUpperCase() + w.slice(1).toLowerCase())
    .join('-');
  const counted = rateLimitKey.parse(`header:${name}`);
  return counted === INVALID ? null : counted;
}

function describeKey(key: RateLimitKey): string {
  return key === 'ip' ? 'per client address' : `per value of the ${key.slice('header:'.length)} header`;
}

/** `limit_req_zone KEY zone=NAME:SIZE rate=Nr/s|Nr/m`, read where it is defined (reported where it is used). */
export function readRateZone(cx: ImportContext, d: Directive): { name: string; zone: RateZone } | null {
  const [key, ...params] = d.args;
  const zoneArg = params.find((a) => a.startsWith('zone='));
  const rateArg = params.find((a) => a.startsWith('rate='));
  const rate = /^rate=(\d+)r\/([sm])$/.exec(rateArg ?? '');
  if (key === undefined || zoneArg === undefined || rate === null) {
    cx.report.warn(d, 'not translated: expected limit_req_zone KEY zone=NAME:SIZE rate=Nr/s|Nr/m');
    return null;
  }
  const name = zoneArg.slice('zone='.length).split(':')[0]!;
  return { name, zone: { d, key, counts: rateKey(key), points: Number(rate[1]), duration_s: rate[2] === 's' ? 1 : 60 } };
}

/** `limit_conn_zone KEY zone=NAME:SIZE`. */
export function readConnZone(cx: ImportContext, d: Directive): { name: string; zone: ConnZone } | null {
  const [key, zoneArg] = d.args;
  if (key === undefined || zoneArg?.startsWith('zone=') !== true || d.args.length !== 2) {
    cx.report.warn(d, 'not translated: expected limit_conn_zone KEY zone=NAME:SIZE');
    return null;
  }
  const name = zoneArg.slice('zone='.length).split(':')[0]!;
  return { name, zone: { d, key, perAddress: ADDRESS_KEYS.has(plainVariable(key)) } };
}

export function limitReq(cx: ImportContext, d: Directive, scope: Scope): void {
  const zoneName = d.args.find((a) => a.startsWith('zone='))?.slice('zone='.length);
  const zone = zoneName === undefined ? undefined : cx.rateZones.get(zoneName);
  if (zone === undefined) return cx.report.warn(d, `not translated: no limit_req_zone ${zoneName ?? ''} in the imported configuration`);
  const globs = cx.patterns(scope);
  if (!globs.ok) return cx.report.warn(d, `not translated: this location has no phpgate pattern (${globs.reason})`);
  // A key phpgate cannot count by is warned about on the zone (below); the rule still limits per address.
  const key = zone.counts ?? 'ip';
  for (const pattern of globs.globs) {
    const dup = cx.draft.rate_limit.rules.some(
      (r) => r.pattern === pattern && r.points === zone.points && r.duration_s === zone.duration_s && r.key === key,
    );
    // block_s 0: nginx refuses only while over the rate, as phpgate does until the window ends.
    if (!dup) cx.draft.rate_limit.rules.push({ pattern, points: zone.points, duration_s: zone.duration_s, block_s: 0, key });
  }
  const extras: string[] = [];
  if (d.args.some((a) => a.startsWith('burst=') || a === 'nodelay' || a.startsWith('delay='))) {
    extras.push('burst/nodelay are not modelled: phpgate has no leaky bucket, it counts requests per window');
  }
  if (isMainPhp(scope)) extras.push('nginx limits requests that reach PHP; this rule counts every request');
  if (globs.approximations.length > 0) extras.push(`approximately: ${globs.approximations.join('; ')}`);
  if (cx.inherited('limit_req_status', scope).length === 0) {
    extras.push(`refused with ${PHPGATE_RATE_LIMIT_STATUS}, where nginx answers 503 without limit_req_status`);
  }
  cx.report.note(
    d,
    `rate_limit.rules: ${globs.globs.join(', ')} ${zone.points} per ${zone.duration_s}s ${describeKey(key)}${extras.length > 0 ? ` (${extras.join('; ')})` : ''}`,
  );
  if (cx.report.isHandled(zone.d)) return;
  const rate = `rate ${zone.points}r/${zone.duration_s === 1 ? 's' : 'm'}: points ${zone.points}, duration_s ${zone.duration_s}`;
  if (zone.counts === null) {
    cx.report.warn(zone.d, `${rate}; nginx counts per ${zone.key}, phpgate only per client address or per request header ($http_NAME): key ip`);
  } else {
    const header = zone.counts === 'ip' ? '' : ' (nginx does not count requests without the header)';
    cx.report.note(zone.d, `${rate}, key ${zone.counts}${header}`);
  }
}

export function limitReqStatus(cx: ImportContext, d: Directive): void {
  if (d.args[0] === PHPGATE_RATE_LIMIT_STATUS)
    return cx.report.note(d, `phpgate refuses rate-limited requests with ${PHPGATE_RATE_LIMIT_STATUS} too`);
  cx.report.warn(d, `not translated: phpgate refuses rate-limited requests with ${PHPGATE_RATE_LIMIT_STATUS}`);
}

export function limitConn(cx: ImportContext, d: Directive, scope: Scope): void {
  if (scope.level === 'location') {
    return cx.report.warn(d, 'not translated: phpgate limits connections server-wide (server.limits.connections_per_ip)');
  }
  // limit_conn is inherited only by a level that has none of its own.
  if (scope.level === 'http' && cx.serverChildren.some((c) => c.name === 'limit_conn')) {
    return cx.report.note(d, 'not used: the server has limit_conn of its own, and nginx then inherits none');
  }
  const [zoneName = '', count = ''] = d.args;
  const zone = cx.connZones.get(zoneName);
  if (zone === undefined) return cx.report.warn(d, `not translated: no limit_conn_zone ${zoneName} in the imported configuration`);
  if (!cx.report.isHandled(zone.d)) {
    cx.report.note(zone.d, zone.perAddress ? 'per client address: server.limits.connections_per_ip' : `keyed on ${zone.key} (see limit_conn)`);
  }
  if (!zone.perAddress) {
    return cx.report.warn(d, `not translated: nginx counts connections per ${zone.key}; phpgate counts them per client address only`);
  }
  const n = /^\d+$/.test(count) ? connections.parse(Number(count)) : INVALID;
  if (n === INVALID || d.args.length !== 2) return cx.report.warn(d, 'not translated: expected limit_conn ZONE NUMBER (at least 1)');
  // Several limit_conn all apply: the tightest one decides.
  const value = Math.min(n, cx.draft.server.limits.connections_per_ip ?? n);
  cx.draft.server.limits.connections_per_ip = value;
  cx.report.note(
    d,
    `server.limits.connections_per_ip: ${value}${value !== n ? ' (a tighter limit_conn applies)' : ''} (phpgate counts open connections, idle keep-alive ones too, where nginx counts those with a request in progress and each HTTP/2 stream; server.trusted_proxies are not limited)`,
  );
}

export function limitConnStatus(cx: ImportContext, d: Directive): void {
  cx.report.warn(d, 'not translated: how phpgate refuses a connection past server.limits.connections_per_ip is not configurable');
}

export function http2Streams(cx: ImportContext, d: Directive, scope: Scope): void {
  if (scope.level === 'location') return cx.report.warn(d, 'not translated: HTTP/2 settings are server-wide');
  const arg = d.args[0] ?? '';
  const n = /^\d+$/.test(arg) ? h2Streams.parse(Number(arg)) : INVALID;
  if (n === INVALID) return cx.report.warn(d, `not translated: server.limits.h2_max_streams takes ${h2Streams.expected}`);
  cx.draft.server.limits.h2_max_streams = n;
  cx.report.note(d, `server.limits.h2_max_streams: ${n}`);
}

const TIMEOUT_KEYS = {
  keepalive_timeout: 'keepalive_ms',
  client_header_timeout: 'header_ms',
  client_body_timeout: 'body_ms',
  send_timeout: 'send_ms',
} as const;
export type TimeoutDirective = keyof typeof TIMEOUT_KEYS;

function isTimeoutDirective(name: string): name is TimeoutDirective {
  return Object.hasOwn(TIMEOUT_KEYS, name);
}

/** keepalive_timeout, client_header_timeout, client_body_timeout, send_timeout, large_client_header_buffers. */
export function clientLimits(cx: ImportContext, d: Directive, scope: Scope): void {
  if (scope.level === 'location') return cx.report.warn(d, "not translated: phpgate's client limits are server-wide");
  if (d.name === 'large_client_header_buffers') {
    const n = Number(d.args[0]);
    const size = parseSize(d.args[1] ?? '');
    if (!Number.isInteger(n) || n < 1 || size === null) return cx.report.warn(d, 'not translated: expected NUMBER SIZE');
    // nginx needs the request line to fit one buffer (414 past it) and each header line to fit one buffer,
    // with at most N in use: N × SIZE bounds the whole head, the closest phpgate's one total can come.
    const headerKb = Math.max(1, Math.ceil((n * size) / 1024));
    const urlKb = Math.max(1, Math.ceil(size / 1024));
    cx.draft.server.limits.header_kb = headerKb;
    cx.draft.server.limits.url_kb = urlKb;
    return cx.report.note(
      d,
      `server.limits.header_kb ${headerKb} (all buffers: phpgate bounds the whole head, nginx each line), server.limits.url_kb ${urlKb} (one buffer)`,
    );
  }
  if (!isTimeoutDirective(d.name)) return cx.report.warn(d, 'not translated: phpgate has no equivalent');
  const ms = parseTime(d.args[0] ?? '');
  if (ms === null || ms < 1) return cx.report.warn(d, 'not translated: phpgate needs a positive time');
  const key = TIMEOUT_KEYS[d.name];
  cx.draft.server.timeouts[key] = ms;
  cx.report.note(d, `server.timeouts.${key}: ${ms}${d.args.length > 1 ? ' (the Keep-Alive header value is not sent)' : ''}`);
}
