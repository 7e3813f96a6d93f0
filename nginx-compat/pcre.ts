/**
 * PCRE (nginx's regexes) → JavaScript regexes, for gateway.yaml's routes and rewrite steps.
 *
 * A minimal stand-in: a pattern is taken as it is when JavaScript compiles it and it holds none of the PCRE-only
 * constructs whose meaning JavaScript does not share (atomic groups, possessive quantifiers, `(?P…)`, `\Q…\E`,
 * `\A`/`\Z`/`\z`, inline `(?i`, POSIX classes). Refused patterns are reported by the caller, never guessed at.
 */

export type PcreResult = { ok: true; source: string; flags: string; notes: string[] } | { ok: false; reason: string };

const PCRE_ONLY: readonly string[] = ['(?>', '++', '*+', '?+', '(?P', '\\Q', '\\A', '\\Z', '\\z', '(?i', '[[:'];

export function pcreToJs(source: string, caseInsensitive: boolean): PcreResult {
  const found = PCRE_ONLY.find((s) => source.includes(s));
  if (found !== undefined) return { ok: false, reason: `"${found}" has no JavaScript equivalent here` };
  const flags = caseInsensitive ? 'i' : '';
  try {
    new RegExp(source, flags);
  } catch (err) {
    return { ok: false, reason: `not a JavaScript regex (${(err as Error).message})` };
  }
  return { ok: true, source, flags, notes: [] };
}
