/**
 * Shared harness of the differential tests (test/compat/differential*.test.ts): the same request sent to the
 * reference nginx + php-fpm (test/anchors/, Debian's /etc/nginx/fastcgi_params) and to phpgate, over the same
 * fixture docroot, and the normalisations that make their answers comparable.
 *
 * Every request carries an explicit `Host: localhost`; everything else (method, raw target, headers, body,
 * framing) is sent identically to both. Loopback only, one request per connection, each with a timeout.
 *
 * nginx + php-fpm missing: the tests are skipped locally, but fail when CI is set (CI installs them).
 */
import { after, before } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type http from 'node:http';
import { isDeepStrictEqual } from 'node:util';
import { ensureFixtureSite } from '../fixtures/site.js';
import { nginxFpmMissing, startNginxFpm } from '../support/nginx-fpm.js';
import type { NginxFpm } from '../support/nginx-fpm.js';
import { request, startGateway } from '../support/gateway.js';
import type { Dump, RunningGateway, SimpleResponse } from '../support/gateway.js';

export type { Dump, SimpleResponse };

export const WORKERS = 4;
/** Per request; the slowest case (a 5 MB upload, stream.php) takes well under a second. */
const REQUEST_TIMEOUT_MS = 15_000;

// ---------------------------------------------------------------------------------------------------------
// Normalisation
// ---------------------------------------------------------------------------------------------------------

/**
 * $_SERVER keys that legitimately differ between the two stacks, dropped before comparing.
 */
export const SERVER_KEYS_DROPPED = new Set([
  'SERVER_SOFTWARE', // "nginx/1.22.1" vs phpgate's own name
  'SERVER_PORT', // two listeners on two different free ports
  'REMOTE_PORT', // the client's ephemeral port, different per connection
  'REQUEST_TIME', // wall clock
  'REQUEST_TIME_FLOAT', // wall clock
]);

export function normaliseServer(server: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(server)) {
    if (SERVER_KEYS_DROPPED.has(k)) continue;
    // The Host header is the same on both sides; a port (if any) would be each listener's own.
    if (k === 'HTTP_HOST' && typeof v === 'string') {
      out[k] = v.replace(/:\d+$/, '');
      continue;
    }
    out[k] = v;
  }
  return out;
}

/**
 * getenv() without a name, less what is the request's own: php-fpm lists the FastCGI parameters there too (they
 * are in $_SERVER with the same values), php-cgi only its process environment. What remains is the environment the
 * site was given: php.env on one side, the pool's env[] on the other (none in the anchor), and any leak.
 */
export function normaliseEnv(env: Record<string, string> | string[], server: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(env)) return out; // json_encode of an empty array
  for (const [k, v] of Object.entries(env)) {
    // HTTP_*: request headers, not environment (php-fpm's getenv() even hands out HTTP_PROXY, which its $_SERVER
    // and phpgate drop: httpoxy).
    if (k === 'FCGI_ROLE' || k.startsWith('HTTP_') || (Object.hasOwn(server, k) && server[k] === v)) continue;
    out[k] = v;
  }
  return out;
}

/** Readable differences between two flat records: keys only on one side, and differing values. */
export function recordDiff(ref: Record<string, unknown>, gw: Record<string, unknown>): string[] {
  const lines: string[] = [];
  const keys = [...new Set([...Object.keys(ref), ...Object.keys(gw)])].sort();
  for (const k of keys) {
    const inRef = Object.hasOwn(ref, k);
    const inGw = Object.hasOwn(gw, k);
    if (inRef && !inGw) lines.push(`  only nginx+fpm: ${k} = ${JSON.stringify(ref[k])}`);
    else if (!inRef && inGw) lines.push(`  only phpgate:   ${k} = ${JSON.stringify(gw[k])}`);
    else if (!isDeepStrictEqual(ref[k], gw[k]))
      lines.push(`  differs:        ${k}: nginx+fpm ${JSON.stringify(ref[k])} | phpgate ${JSON.stringify(gw[k])}`);
  }
  return lines;
}

/** Response headers that are each server's own business (framing, connection, identity, clock). */
export const RESPONSE_HEADERS_DROPPED = new Set([
  'server',
  'date',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  ...securityHeaderNames(),
]);

/**
 * What phpgate's headers.* adds by default (helmet's set) and a stock nginx does not: asserted on their own in
 * differential-deliberate.test.ts, left out of the like-for-like comparisons.
 */
export function securityHeaderNames(): string[] {
  return ['x-frame-options', 'x-content-type-options', 'referrer-policy'];
}
// X-Powered-By is kept on purpose: it comes from PHP (expose_php) and must be the same on both sides.

/**
 * Lower-cased: header names are case-insensitive (RFC 9110), and the spelling legitimately differs: nginx
 * re-spells PHP's `Content-type` as `Content-Type`, phpgate passes PHP's spelling through.
 */
export function headerNames(res: SimpleResponse, extraDropped: readonly string[] = []): string[] {
  const names = new Set<string>();
  for (let i = 0; i < res.rawHeaders.length; i += 2) {
    const name = res.rawHeaders[i]!.toLowerCase();
    if (!RESPONSE_HEADERS_DROPPED.has(name) && !extraDropped.includes(name)) names.add(name);
  }
  return [...names].sort();
}

/** "names only on one side" for an assertion message, or '' when both have the same names. */
export function headerNamesDiff(a: SimpleResponse, b: SimpleResponse, extraDropped: readonly string[] = []): string {
  const namesA = headerNames(a, extraDropped);
  const namesB = headerNames(b, extraDropped);
  if (isDeepStrictEqual(namesA, namesB)) return '';
  return (
    `response header names: only nginx+fpm [${namesA.filter((n) => !namesB.includes(n)).join(', ')}], ` +
    `only phpgate [${namesB.filter((n) => !namesA.includes(n)).join(', ')}]`
  );
}

export const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

export function short(v: unknown): string {
  const s = JSON.stringify(v);
  return s.length > 300 ? `${s.slice(0, 300)}... (${s.length} chars, sha256 ${sha256(s).slice(0, 16)})` : s;
}

// ---------------------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------------------

export interface Req {
  method?: string;
  target: string;
  /**
   * Besides `Host: localhost`, which every request carries. A list of pairs sends each pair as its own header
   * line, in order (repeated names stay repeated); Content-Length is then not added for a body.
   */
  headers?: Record<string, string> | Array<[string, string]>;
  body?: Buffer | string | Buffer[];
  /** No Content-Length: node sends Transfer-Encoding: chunked, one chunk per body part. */
  chunked?: boolean;
}

export interface DumpCase extends Req {
  name: string;
  /** HEAD: no body to parse; compare status and header names only. */
  headOnly?: boolean;
  /** Extra checks on the nginx+fpm dump (it is the reference), to be sure the case tests what it claims. */
  check?: (d: Dump) => void;
}

function send(base: string, r: Req): Promise<SimpleResponse> {
  const opts: Parameters<typeof request>[2] = { method: r.method ?? 'GET', timeoutMs: REQUEST_TIMEOUT_MS };
  if (Array.isArray(r.headers)) {
    opts.headers = [['Host', 'localhost'], ...r.headers];
  } else {
    const headers: http.OutgoingHttpHeaders = { Host: 'localhost', ...r.headers };
    opts.headers = headers;
  }
  if (r.body !== undefined) opts.body = r.body;
  if (r.chunked) opts.chunked = true;
  return request(base, r.target, opts);
}

export interface Stacks {
  /** The same request to both stacks, at the same time; returns [nginx+fpm, phpgate]. */
  both(this: void, r: Req): Promise<[SimpleResponse, SimpleResponse]>;
  /** Skips (locally) or fails (CI) when nginx + php-fpm are not installed; false: the test must return. */
  ready(this: void, t: TestContext): boolean;
  /** nginx's listen port (it shows in its absolute redirects). */
  refPort(this: void): number;
}

/**
 * Starts nginx + php-fpm and a phpgate over the fixture site before the tests of the enclosing describe(), and
 * stops both after them. Call it inside describe().
 */
export function useStacks(): Stacks {
  let ref: NginxFpm | undefined;
  let gw: RunningGateway | undefined;
  let unavailable: string | undefined;

  before(async () => {
    unavailable = nginxFpmMissing('the differential tests');
    if (unavailable !== undefined) return;
    const docroot = ensureFixtureSite();
    ref = await startNginxFpm(docroot, { workers: WORKERS });
    try {
      gw = await startGateway(`php:\n  worker_count: ${WORKERS}\n`, { docroot });
    } catch (err) {
      await ref.stop();
      ref = undefined;
      throw err;
    }
  });

  after(async () => {
    await Promise.all([gw?.stop(), ref?.stop()]);
  });

  return {
    both(r) {
      const label =
        (who: string) =>
        (err: unknown): never => {
          throw new Error(`${who}: ${r.method ?? 'GET'} ${r.target}: ${err instanceof Error ? err.message : String(err)}`);
        };
      return Promise.all([send(`http://127.0.0.1:${ref!.port}`, r).catch(label('nginx+fpm')), send(gw!.base, r).catch(label('phpgate'))]);
    },
    ready(t) {
      if (unavailable === undefined) return true;
      t.skip(`nginx + php-fpm unavailable: ${unavailable}`);
      return false;
    },
    refPort: () => ref!.port,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Dumps
// ---------------------------------------------------------------------------------------------------------

export function parse(res: SimpleResponse, who: string): Dump {
  assert.equal(res.status, 200, `${who}: expected a dump, got ${res.status}: ${res.text.slice(0, 500)}`);
  try {
    return JSON.parse(res.text) as Dump;
  } catch {
    throw new Error(`${who}: response is not a JSON dump: ${res.text.slice(0, 500)}`);
  }
}

/** Every difference of one dump case, so a failing case reports all of them at once. */
export function compareDumpCase(c: DumpCase, a: SimpleResponse, b: SimpleResponse): string[] {
  const problems: string[] = [];
  if (a.status !== b.status) problems.push(`status: nginx+fpm ${a.status} | phpgate ${b.status}`);
  const names = headerNamesDiff(a, b);
  if (names !== '') problems.push(names);
  if (c.headOnly) {
    if (b.body.length !== 0) problems.push(`HEAD: phpgate sent a body of ${b.body.length} bytes`);
    return problems;
  }
  const da = parse(a, 'nginx+fpm');
  const db = parse(b, 'phpgate');
  c.check?.(da);
  const serverDiff = recordDiff(normaliseServer(da.server), normaliseServer(db.server));
  if (serverDiff.length > 0) problems.push(`$_SERVER:\n${serverDiff.join('\n')}`);
  // The whole environment too: a variable phpgate uses to start php-cgi must never reach the site (clear_env).
  const envDiff = recordDiff(normaliseEnv(da.env, da.server), normaliseEnv(db.env, db.server));
  if (envDiff.length > 0) problems.push(`getenv():\n${envDiff.join('\n')}`);
  for (const key of ['get', 'post', 'cookie', 'files', 'input', 'input_len'] as const) {
    if (!isDeepStrictEqual(da[key], db[key])) problems.push(`${key}: nginx+fpm ${short(da[key])} | phpgate ${short(db[key])}`);
  }
  return problems;
}

/** The answer of test/fixtures/site/digest.php: binary-safe, without echoing the body. */
export interface Digest {
  method: string;
  input_sha256: string;
  input_len: number;
  /** HTTP_* and CONTENT_* of $_SERVER, values as hex. */
  headers_hex: Record<string, string>;
  post_count: number;
  files_count: number;
}

export function parseDigest(res: SimpleResponse, who: string): Digest {
  assert.equal(res.status, 200, `${who}: expected a digest, got ${res.status}: ${res.text.slice(0, 500)}`);
  return JSON.parse(res.text) as Digest;
}

/** A header value as the hex of its bytes, the way digest.php reports it. */
export const hex = (s: string, encoding: BufferEncoding = 'utf8'): string => Buffer.from(s, encoding).toString('hex');
