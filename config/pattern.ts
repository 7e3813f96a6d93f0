/**
 * URL patterns (globs) used by pools, static rules, rate limits, cache rules and upstreams.
 *
 *   `*`  any run of characters, `/` included ("/api/*" matches "/api/a/b")
 *   `?`  exactly one character other than `/`
 *   anything else is literal; matching is case-sensitive and against the whole path.
 *
 * Patterns are compiled once at load; the returned function is the per-request work.
 */

export type PathMatcher = (path: string) => boolean;

const matchAll: PathMatcher = () => true;

export function hasWildcard(glob: string): boolean {
  return glob.includes('*') || glob.includes('?');
}

/** True for `*`, `/*` (and `**`, `/**`): request paths always start with `/`, so these take every request. */
export function patternMatchesEverything(glob: string): boolean {
  return /^\/?\*+$/.test(glob);
}

export function compilePattern(glob: string): PathMatcher {
  if (patternMatchesEverything(glob)) return matchAll;
  if (!hasWildcard(glob)) return (path) => path === glob;
  const re = globToRegExp(glob);
  return (path) => re.test(path);
}

/**
 * A deny-list entry without any `/` (`*.sql`, `composer.json`) is a file-name glob: it matches any path whose
 * last segment matches it ("/a/b/dump.sql", "/composer.json"). An entry with a `/` is an ordinary URL pattern.
 */
export function isBasenameGlob(glob: string): boolean {
  return !glob.includes('/');
}

export function compileDenyPattern(glob: string): PathMatcher {
  if (!isBasenameGlob(glob)) return compilePattern(glob);
  const matchName = compilePattern(glob);
  return (path) => matchName(path.slice(path.lastIndexOf('/') + 1));
}

/**
 * Why not the obvious `^a.*b.*c$`: with several `.*` a hostile long path makes the engine backtrack
 * polynomially (ReDoS). Each middle literal chunk is instead taken atomically at its leftmost place
 * (a lookahead captures it, a backreference consumes it; JS lookaheads never backtrack). Leftmost is always
 * right for globs because the `*` after the chunk absorbs whatever lies between.
 */
function globToRegExp(glob: string): RegExp {
  const chunks = glob.split('*').map(chunkSource);
  const first = chunks[0] ?? '';
  if (chunks.length === 1) return new RegExp(`^${first}$`, 's');
  const last = chunks[chunks.length - 1] ?? '';
  let src = `^${first}`;
  let group = 0;
  for (const middle of chunks.slice(1, -1)) {
    if (middle === '') continue; // consecutive stars
    group += 1;
    src += `(?=(.*?${middle}))\\${group}`;
  }
  return new RegExp(`${src}.*${last}$`, 's');
}

function chunkSource(chunk: string): string {
  let src = '';
  for (const ch of chunk) src += ch === '?' ? '[^/]' : ch.replace(/[.+^${}()|[\]\\/-]/g, '\\$&');
  return src;
}
