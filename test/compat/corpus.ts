/**
 * The corpus harness: real nginx configurations that PHP projects publish for their users
 * (test/compat/corpus/<site>/nginx.conf, each naming its source), run by nginx + php-fpm and, imported with
 * `importNginx`, by phpgate, over the same generated docroot; every request of the site's site.json is sent to
 * both and the answers compared. It measures how faithfully an imported real-world site behaves.
 *
 * Each `.php` of a site's `files` is a probe printing which script ran and the CGI variables that say how the
 * path was split; every other file holds its own path, so a body compare tells which file was sent.
 *
 * Verdicts: same; differs; unsafe: phpgate serves (2xx) or runs something nginx refuses with a 4xx, runs
 * another script than nginx, or sends a file where nginx hands the request to PHP. phpgate refusing what nginx
 * serves only differs.
 *
 * Library for corpus.test.ts, and a command for developers:
 *   node --import tsx test/compat/corpus.ts [site ...]     (table of differences and the rates)
 */
import { mkdir, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { importNginx } from '../../nginx-compat/index.js';
import { nginxFpmAvailable, nginxMainConfig, startNginxFpmConfig, type NginxFpm } from '../support/nginx-fpm.js';
import { request, startGateway, type RunningGateway, type SimpleResponse } from '../support/gateway.js';

export const CORPUS_DIR = fileURLToPath(new URL('./corpus/', import.meta.url));
/** php-fpm children and php-cgi workers per stack: enough for one request at a time, with a spare. */
const WORKERS = 2;
const REQUEST_TIMEOUT_MS = 10_000;

export interface SiteRequest {
  /** The raw request target, sent as is. */
  path: string;
  method?: string;
  headers?: Record<string, string>;
  /** What the request checks in the config: "entry point", "deny: …", "asset", "cache bypass: …" … */
  why: string;
  /**
   * A known difference: text of the import warning that names it (the directive or the message). A request that
   * differs must have one, found in the report; one that no longer differs need not.
   */
  named?: string;
}

export interface Site {
  name: string;
  source: string;
  /** Paths to create, relative to @ROOT@; a trailing slash makes an (empty) directory. */
  files: string[];
  requests: SiteRequest[];
  /** The response header nginx reports $upstream_cache_status in (the config's own add_header). */
  cacheHeader?: string;
  /** The directory below @ROOT@ that the server's `root` names, when it is not @ROOT@ itself (Magento's pub). */
  docroot?: string;
  /** The config text, with @PORT@, @ROOT@ and @RUN@ still in it. */
  config: string;
}

/** The fields of a probe's answer: what a PHP app reads to route a request. */
interface Probe {
  script: string;
  SCRIPT_NAME: string | null;
  PATH_INFO: string | null;
  REQUEST_URI: string | null;
  QUERY_STRING: string | null;
  DOCUMENT_URI: string | null;
}
const PROBE_FIELDS = ['script', 'SCRIPT_NAME', 'PATH_INFO', 'REQUEST_URI', 'QUERY_STRING', 'DOCUMENT_URI'] as const;

/** One side's answer, reduced to what is compared. */
export interface Answer {
  /** 0: no answer (connection error, timeout; see `error`). */
  status: number;
  error?: string;
  location?: string;
  probe?: Probe;
  body: Buffer;
  cache?: string;
}

export type Verdict = 'same' | 'differs' | 'unsafe';

export interface Outcome {
  req: SiteRequest;
  verdict: Verdict;
  nginx: Answer;
  /** Absent when phpgate could not be started from the import (see SiteResult.failure). */
  phpgate?: Answer;
  /** What differs, one short phrase each (for the table and the tally of difference kinds). */
  diffs: string[];
}

export interface SiteResult {
  site: string;
  source: string;
  outcomes: Outcome[];
  /** Why phpgate did not run this site (import threw, the YAML did not load): all its requests differ. */
  failure?: string;
  /** The import report's warnings, as `line: directive — message`. */
  warnings: string[];
}

// ---------------------------------------------------------------------------------------------------------
// The corpus
// ---------------------------------------------------------------------------------------------------------

function asStringRecord(v: unknown, what: string): Record<string, string> {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.values(v).every((x) => typeof x === 'string')) {
    throw new Error(`${what}: expected an object of strings`);
  }
  return v as Record<string, string>;
}

function readSite(name: string): Site {
  const dir = path.join(CORPUS_DIR, name);
  const where = `test/compat/corpus/${name}/site.json`;
  const raw = JSON.parse(readFileSync(path.join(dir, 'site.json'), 'utf8')) as Record<string, unknown>;
  const config = readFileSync(path.join(dir, 'nginx.conf'), 'utf8');
  if (typeof raw['source'] !== 'string' || !Array.isArray(raw['files']) || !Array.isArray(raw['requests'])) {
    throw new Error(`${where}: needs source, files and requests`);
  }
  const files = raw['files'].map((f, i) => {
    if (typeof f !== 'string' || f === '' || f.startsWith('/') || f.split('/').includes('..')) throw new Error(`${where}: files[${i}] unsuitable`);
    return f;
  });
  const requests = raw['requests'].map((r: unknown, i): SiteRequest => {
    const o = r as Record<string, unknown>;
    if (typeof o['path'] !== 'string' || !o['path'].startsWith('/') || typeof o['why'] !== 'string') {
      throw new Error(`${where}: requests[${i}] needs a path starting with / and a why`);
    }
    return {
      path: o['path'],
      why: o['why'],
      ...(typeof o['method'] === 'string' ? { method: o['method'] } : {}),
      ...(typeof o['named'] === 'string' ? { named: o['named'] } : {}),
      ...(o['headers'] === undefined ? {} : { headers: asStringRecord(o['headers'], `${where}: requests[${i}].headers`) }),
    };
  });
  const optional = (k: string): string | undefined => {
    const v = raw[k];
    if (v !== undefined && typeof v !== 'string') throw new Error(`${where}: ${k} must be a string`);
    return v;
  };
  const cacheHeader = optional('cacheHeader');
  const docroot = optional('docroot');
  return {
    name,
    source: raw['source'],
    files,
    requests,
    config,
    ...(cacheHeader === undefined ? {} : { cacheHeader }),
    ...(docroot === undefined ? {} : { docroot }),
  };
}

/** The corpus' sites (all, or those named), in name order. */
export function loadSites(names: readonly string[] = []): Site[] {
  const all = readdirSync(CORPUS_DIR, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  const unknown = names.filter((n) => !all.includes(n));
  if (unknown.length > 0) throw new Error(`no such corpus site: ${unknown.join(', ')} (have: ${all.join(', ')})`);
  return (names.length > 0 ? all.filter((n) => names.includes(n)) : all).map(readSite);
}

// ---------------------------------------------------------------------------------------------------------
// Docroot and configs
// ---------------------------------------------------------------------------------------------------------

/** PHP single-quoted string literal. */
const phpString = (s: string): string => `'${s.replace(/[\\']/g, (c) => `\\${c}`)}'`;

function probeScript(base: string): string {
  const fields = PROBE_FIELDS.slice(1)
    .map((k) => `${phpString(k)} => $_SERVER[${phpString(k)}] ?? null`)
    .join(', ');
  return [
    '<?php',
    `$base = ${phpString(base)};`,
    "header('Content-Type: application/json');",
    `echo json_encode(['corpus_probe' => true, 'script' => substr(__FILE__, strlen($base)), ${fields}], JSON_UNESCAPED_SLASHES);`,
    '',
  ].join('\n');
}

async function buildDocroot(site: Site, root: string): Promise<void> {
  for (const f of site.files) {
    const file = path.join(root, f);
    if (f.endsWith('/')) {
      await mkdir(file, { recursive: true });
      continue;
    }
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, f.endsWith('.php') ? probeScript(root) : `/${f}\n`);
  }
}

function fillIn(config: string, vars: { PORT: string; ROOT: string; RUN: string }): string {
  return config.replace(/@(PORT|ROOT|RUN)@/g, (_m, k: keyof typeof vars) => vars[k]);
}

/** The imported YAML with the harness' own settings: a small pool. */
function gatewayYaml(imported: string): string {
  const doc = (parseYaml(imported) ?? {}) as Record<string, unknown>;
  const php = (typeof doc['php'] === 'object' && doc['php'] !== null ? doc['php'] : {}) as Record<string, unknown>;
  return stringifyYaml({ ...doc, php: { ...php, worker_count: WORKERS } });
}

// ---------------------------------------------------------------------------------------------------------
// Requests and answers
// ---------------------------------------------------------------------------------------------------------

function isProbe(v: unknown): v is Probe & { corpus_probe: true } {
  return typeof v === 'object' && v !== null && (v as Record<string, unknown>)['corpus_probe'] === true;
}

/** Location with this machine's host and port left out, so the two listeners' redirects compare. */
function normaliseLocation(loc: string): string {
  let u: URL;
  try {
    u = new URL(loc, 'http://localhost/');
  } catch {
    return loc;
  }
  const local = u.hostname === 'localhost' || u.hostname === '127.0.0.1';
  if (!local) return u.href;
  return `${u.protocol === 'http:' ? '' : `${u.protocol}//localhost`}${u.pathname}${u.search}`;
}

async function ask(port: number, r: SiteRequest, cacheHeader: string | undefined): Promise<Answer> {
  let res: SimpleResponse;
  try {
    res = await request(`http://127.0.0.1:${port}`, r.path, {
      method: r.method ?? 'GET',
      headers: { Host: 'localhost', ...r.headers },
      ...(r.method === 'POST' ? { body: '' } : {}),
      timeoutMs: REQUEST_TIMEOUT_MS,
    });
  } catch (err) {
    return { status: 0, error: err instanceof Error ? err.message : String(err), body: Buffer.alloc(0) };
  }
  const answer: Answer = { status: res.status, body: res.body };
  const loc = res.headers['location'];
  if (typeof loc === 'string') answer.location = normaliseLocation(loc);
  if (cacheHeader !== undefined) {
    const v = res.headers[cacheHeader.toLowerCase()];
    answer.cache = Array.isArray(v) ? v.join(', ') : (v ?? '');
  }
  if ((res.headers['content-type'] ?? '').startsWith('application/json')) {
    try {
      const parsed: unknown = JSON.parse(res.text);
      if (isProbe(parsed)) {
        // An empty PATH_INFO and none are the same to PHP apps (they read it with `?? ''`).
        answer.probe = Object.fromEntries(PROBE_FIELDS.map((k) => [k, k === 'PATH_INFO' && parsed[k] === '' ? null : parsed[k]])) as unknown as Probe;
      }
    } catch (_notJson) {
      // Not a probe's answer: compared as a body.
    }
  }
  return answer;
}

const is2xx = (s: number): boolean => s >= 200 && s < 300;
const is4xx = (s: number): boolean => s >= 400 && s < 500;

/**
 * A file nginx sends that holds secrets by nature: a dotfile or dot-directory (.git/, .env, .htaccess; /.well-known
 * is public) or PHP source. phpgate refusing one of these is the issue's "refusing what nginx would leak": the same.
 */
function isLeak(target: string): boolean {
  const p = target.split('?', 1)[0]!;
  return /\/\.(?!well-known(?:\/|$))/.test(p) || /\.(?:php[0-9]?|phtml|phar|phps)$/i.test(p);
}

/** Every difference between the two answers, and the verdict. */
export function compare(n: Answer, g: Answer, target = ''): { verdict: Verdict; diffs: string[] } {
  if (is2xx(n.status) && n.probe === undefined && is4xx(g.status) && g.probe === undefined && isLeak(target)) {
    return { verdict: 'same', diffs: [] };
  }
  const diffs: string[] = [];
  if (n.status !== g.status) diffs.push(`status ${n.status} → ${g.status}`);
  if ((n.location ?? '') !== (g.location ?? '')) diffs.push('Location');
  if (n.probe && g.probe) {
    for (const k of PROBE_FIELDS) if (n.probe[k] !== g.probe[k]) diffs.push(k === 'script' ? 'script' : `${k}`);
  } else if (n.probe) {
    diffs.push('PHP ran only behind nginx');
  } else if (g.probe) {
    diffs.push('PHP ran only behind phpgate');
  } else if (is2xx(n.status) && is2xx(g.status) && !n.body.equals(g.body)) {
    diffs.push('body');
  }
  if ((n.cache ?? '') !== (g.cache ?? '')) diffs.push('cache status');
  const unsafe =
    // A refusal nginx answers with an error page runs PHP too: only running something else is unsafe (below).
    (is4xx(n.status) && (is2xx(g.status) || (g.probe !== undefined && n.probe === undefined))) ||
    (n.probe !== undefined && g.probe !== undefined && n.probe.script !== g.probe.script) ||
    // A rewrite to the app is how some configs hide files (Kirby's content/ → /error): sending the file leaks it.
    (n.probe !== undefined && g.probe === undefined && is2xx(g.status));
  return { verdict: unsafe ? 'unsafe' : diffs.length > 0 ? 'differs' : 'same', diffs };
}

// ---------------------------------------------------------------------------------------------------------
// One site
// ---------------------------------------------------------------------------------------------------------

/** Both stacks over the site's docroot, every request to both, everything stopped and removed again. */
export async function runSite(site: Site): Promise<SiteResult> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), `phpgate-corpus-${site.name}-`));
  let nginx: NginxFpm | undefined;
  let gw: RunningGateway | undefined;
  try {
    await mkdir(path.join(tmp, 'root'));
    const root = await realpath(path.join(tmp, 'root'));
    await buildDocroot(site, root);
    const siteFile = { path: '' };
    nginx = await startNginxFpmConfig(
      async ({ runDir, port }) => {
        // The site file sits in the run dir, where its relative includes (fastcgi_params, snippets/…) resolve.
        siteFile.path = path.join(runDir, 'site.conf');
        await writeFile(siteFile.path, fillIn(site.config, { PORT: String(port), ROOT: root, RUN: runDir }));
        return nginxMainConfig(runDir, '  include site.conf;');
      },
      { workers: WORKERS },
    );

    let failure: string | undefined;
    const warnings: string[] = [];
    try {
      const imported = importNginx(siteFile.path, { root: path.join(root, site.docroot ?? '') });
      for (const w of imported.warnings) if (w.kind === 'warning') warnings.push(`${w.line}: ${w.directive} — ${w.message}`);
      gw = await startGateway(gatewayYaml(imported.yaml));
    } catch (err) {
      failure = `phpgate not started from the import: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`;
    }

    const outcomes: Outcome[] = [];
    for (const req of site.requests) {
      // One request at a time, to both at once: a caching site's answers depend on the order.
      const [n, g] = await Promise.all([
        ask(nginx.port, req, site.cacheHeader),
        gw === undefined ? Promise.resolve(undefined) : ask(gw.port, req, site.cacheHeader === undefined ? undefined : gw.config.cache.header),
      ]);
      if (g === undefined) outcomes.push({ req, verdict: 'differs', nginx: n, diffs: ['phpgate not started'] });
      else outcomes.push({ req, nginx: n, phpgate: g, ...compare(n, g, req.path) });
    }
    return { site: site.name, source: site.source, outcomes, warnings, ...(failure === undefined ? {} : { failure }) };
  } finally {
    await Promise.all([gw?.stop(), nginx?.stop()]);
    await rm(tmp, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------------------

/** Differing requests whose difference the import report does not name (see SiteRequest.named). */
export function unnamedDifferences(results: readonly SiteResult[]): string[] {
  return results.flatMap((r) =>
    r.outcomes
      .filter((o) => o.verdict !== 'same')
      .filter((o) => o.req.named === undefined || !r.warnings.some((w) => w.includes(o.req.named!)))
      .map(
        (o) =>
          `  ${r.site}: ${o.req.method ?? 'GET'} ${o.req.path} — ${o.req.named === undefined ? 'no "named" warning given' : `no warning with "${o.req.named}"`}`,
      ),
  );
}

export function rates(results: readonly SiteResult[]): { total: number; same: number; unsafe: number; sameRate: number } {
  const all = results.flatMap((r) => r.outcomes);
  const same = all.filter((o) => o.verdict === 'same').length;
  const unsafe = all.filter((o) => o.verdict === 'unsafe').length;
  return { total: all.length, same, unsafe, sameRate: all.length === 0 ? 1 : same / all.length };
}

function summary(a: Answer | undefined): string {
  if (a === undefined) return '—';
  if (a.status === 0) return `no answer (${a.error ?? '?'})`;
  const parts = [String(a.status)];
  if (a.location !== undefined) parts.push(`→ ${a.location}`);
  if (a.probe) {
    parts.push(`php ${a.probe.script}`);
    if (a.probe.SCRIPT_NAME !== a.probe.script) parts.push(`SCRIPT_NAME=${a.probe.SCRIPT_NAME}`);
    if (a.probe.PATH_INFO !== null) parts.push(`PATH_INFO=${a.probe.PATH_INFO}`);
    parts.push(`QS=${JSON.stringify(a.probe.QUERY_STRING)}`);
    if (a.probe.DOCUMENT_URI !== null && a.probe.DOCUMENT_URI !== a.probe.SCRIPT_NAME) parts.push(`DOCUMENT_URI=${a.probe.DOCUMENT_URI}`);
  } else if (is2xx(a.status)) {
    const text = a.body.toString('utf8').trim();
    parts.push(/^\/[\x20-\x7e]*$/.test(text) ? `file ${text}` : `${a.body.length} bytes`);
  }
  if (a.cache !== undefined) parts.push(`cache=${a.cache || '-'}`);
  return parts.join(' ');
}

/** The differences of one site, one line each: verdict, request, why, nginx's answer, phpgate's. */
export function siteTable(r: SiteResult): string {
  const { total, same, unsafe } = rates([r]);
  const lines = [`## ${r.site}: ${same}/${total} same (${pct(same, total)}), ${unsafe} unsafe — ${r.source}`];
  if (r.failure !== undefined) lines.push(`   ${r.failure}`);
  for (const o of r.outcomes) {
    if (o.verdict === 'same') continue;
    const method = o.req.method !== undefined && o.req.method !== 'GET' ? `${o.req.method} ` : '';
    const cookie = o.req.headers?.['Cookie'] !== undefined ? ` [Cookie: ${o.req.headers['Cookie']}]` : '';
    lines.push(`${o.verdict === 'unsafe' ? 'UNSAFE ' : 'differs'} ${method}${o.req.path}${cookie}  (${o.req.why})`);
    lines.push(`          nginx:   ${summary(o.nginx)}`);
    lines.push(`          phpgate: ${summary(o.phpgate)}   [${o.diffs.join(', ')}]`);
  }
  return lines.join('\n');
}

const pct = (a: number, b: number): string => `${b === 0 ? 100 : Math.round((a / b) * 1000) / 10}%`;

/** What an answer is, for naming a difference's kind. */
function answerClass(a: Answer): string {
  if (a.status === 0) return 'no answer';
  if (a.probe) return 'PHP';
  if (a.status >= 300 && a.status < 400) return 'redirect';
  if (is2xx(a.status)) return 'file';
  if (is4xx(a.status)) return 'refusal';
  return 'error';
}

/** One differing request's kind, e.g. "nginx refusal, phpgate file" or "PHP: same script, other PATH_INFO". */
export function kindOf(o: Outcome): string {
  if (o.phpgate === undefined) return 'phpgate not started';
  const a = answerClass(o.nginx);
  const b = answerClass(o.phpgate);
  if (a !== b) return `nginx ${a}, phpgate ${b}`;
  if (a === 'PHP') {
    if (o.diffs.includes('script')) return 'PHP: another script';
    const vars = o.diffs.filter((d) => (PROBE_FIELDS as readonly string[]).includes(d));
    if (vars.length > 0) return `PHP: same script, other ${vars.join('/')}`;
  }
  if (o.diffs.some((d) => d.startsWith('status '))) return `${a}: other status (${o.nginx.status} vs ${o.phpgate.status})`;
  if (o.diffs.includes('Location')) return 'redirect: other Location';
  if (o.diffs.includes('body')) return 'file: other body';
  return o.diffs.join(', ');
}

/** The kinds of difference over all sites, most common first: what to work on. */
export function differenceKinds(results: readonly SiteResult[]): Array<[string, number]> {
  const counts = new Map<string, number>();
  for (const o of results.flatMap((r) => r.outcomes)) {
    if (o.verdict === 'same') continue;
    const k = kindOf(o);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

export function fullReport(results: readonly SiteResult[]): string {
  const { total, same, unsafe } = rates(results);
  const perSite = results.map((r) => {
    const x = rates([r]);
    return `  ${r.site.padEnd(26)} ${String(x.total).padStart(4)} requests  ${pct(x.same, x.total).padStart(6)} same  ${x.unsafe} unsafe${r.failure ? '  (phpgate not started)' : ''}`;
  });
  return [
    ...results.map(siteTable),
    '',
    'Rates:',
    ...perSite,
    `  ${'overall'.padEnd(26)} ${String(total).padStart(4)} requests  ${pct(same, total).padStart(6)} same  ${unsafe} unsafe`,
    '',
    'Difference kinds:',
    ...differenceKinds(results).map(([k, n]) => `  ${String(n).padStart(4)}  ${k}`),
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------------------

async function main(names: string[]): Promise<void> {
  const avail = nginxFpmAvailable();
  if (!avail.ok) throw new Error(`nginx + php-fpm unavailable: ${avail.reason}`);
  const results: SiteResult[] = [];
  for (const site of loadSites(names)) results.push(await runSite(site));
  process.stdout.write(`${fullReport(results)}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).then(
    // The gateways' php-cgi masters are stopped; nothing else should keep the process, but do not wait on it.
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
