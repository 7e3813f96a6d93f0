/**
 * Real PCRE2 as nginx uses it, through PHP's preg_match: the same libpcre2-8 (10.42 on Debian 12), no UTF mode,
 * `i` = PCRE2_CASELESS as nginx's `~*`, JIT off as nginx's default (`pcre_jit off`). Subjects go in as UTF-8
 * bytes, as nginx sees a decoded path; captures come back as those bytes, decoded.
 */
import { spawnSync } from 'node:child_process';

export interface OracleCase {
  readonly pattern: string;
  readonly caseless: boolean;
  readonly subjects: readonly string[];
}

/** Per subject: null when no match, else the groups 1..n (null: unset), plus the named ones. */
export type OracleMatch = { readonly groups: (string | null)[]; readonly named: Record<string, string | null> } | null;
export type OracleResult = { readonly error: string } | { readonly matches: OracleMatch[] };

const SCRIPT = String.raw`
ini_set('pcre.jit', '0');
$in = json_decode(stream_get_contents(STDIN), true);
$out = [];
foreach ($in as $c) {
  $re = "\x01" . $c['pattern'] . "\x01" . ($c['caseless'] ? 'i' : '');
  $ms = [];
  $err = null;
  foreach ($c['subjects'] as $hex) {
    $r = @preg_match($re, hex2bin($hex), $m, PREG_UNMATCHED_AS_NULL);
    if ($r === false) { $err = error_get_last()['message'] ?? preg_last_error_msg(); error_clear_last(); break; }
    if ($r === 0) { $ms[] = null; continue; }
    $g = []; $named = [];
    foreach ($m as $k => $v) {
      $hv = $v === null ? null : bin2hex($v);
      if (is_int($k)) { if ($k > 0) $g[$k - 1] = $hv; } else { $named[$k] = $hv; }
    }
    $ms[] = ['groups' => $g, 'named' => (object) $named];
  }
  $out[] = $err === null ? ['matches' => $ms] : ['error' => $err];
}
echo json_encode($out);
`;

const fromHex = (h: string | null): string | null => (h === null ? null : Buffer.from(h, 'hex').toString('utf8'));

export function pcreOracle(cases: readonly OracleCase[]): OracleResult[] {
  for (const c of cases) if (c.pattern.includes('\x01')) throw new Error('pattern holds the delimiter \\x01');
  const input = JSON.stringify(cases.map((c) => ({ ...c, subjects: c.subjects.map((s) => Buffer.from(s, 'utf8').toString('hex')) })));
  const r = spawnSync('php', ['-n', '-r', SCRIPT], { input, encoding: 'utf8', timeout: 60_000, maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`php failed (${r.status ?? r.signal}): ${r.stderr}`);
  const raw = JSON.parse(r.stdout) as (
    { error: string } | { matches: ({ groups: (string | null)[]; named: Record<string, string | null> } | null)[] }
  )[];
  return raw.map((res) =>
    'error' in res
      ? res
      : {
          matches: res.matches.map((m) =>
            m === null
              ? null
              : { groups: m.groups.map(fromHex), named: Object.fromEntries(Object.entries(m.named).map(([k, v]) => [k, fromHex(v)])) },
          ),
        },
  );
}

/** The same shape from a JavaScript regex (as jsRegexFor returns it: PCRE2's group numbers). */
export function jsMatches(re: RegExp, groups: number, subjects: readonly string[]): OracleMatch[] {
  return subjects.map((s) => {
    const m = re.exec(s);
    if (m === null) return null;
    const g: (string | null)[] = [];
    for (let i = 1; i <= groups; i++) g.push(m[i] ?? null);
    const named = Object.fromEntries(Object.entries(m.groups ?? {}).map(([k, v]) => [k, v ?? null]));
    return { groups: g, named };
  });
}
