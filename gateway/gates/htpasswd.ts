/**
 * An htpasswd file read as nginx's auth_basic_user_file reads it: `user:hash` lines, the hash ending at a `:`
 * (a comment may follow) or the line's end, lines starting with `#` (or a CR) ignored, and the first line of a
 * user the one that counts. A line whose hash is refused (password-hash.ts) still counts: that user can never log
 * in, even if a later line would have let them, and a warning with file:line says why.
 *
 * The text is taken as bytes (a `latin1` string holds one byte per character), so names and {PLAIN} passwords
 * compare byte for byte, as nginx compares them, whatever their encoding.
 */
import { classify, type HashScheme } from './password-hash.js';

export type UserEntry = { readonly scheme: HashScheme; readonly slow: boolean; readonly hash: string } | { readonly refused: true };

export interface ParsedUsers {
  /** By name, as bytes in a latin1 string. */
  readonly users: ReadonlyMap<string, UserEntry>;
  /** `file:line: …`, one per line that is ignored or whose user can never log in. */
  readonly warnings: readonly string[];
}

const REFUSED: UserEntry = Object.freeze({ refused: true });

export function parseHtpasswd(bytes: Buffer, file: string): ParsedUsers {
  const text = bytes.toString('latin1');
  const users = new Map<string, UserEntry>();
  const warnings: string[] = [];
  const lines = text.split('\n');
  if (text.startsWith('\xef\xbb\xbf')) warnings.push(`${file}:1: starts with a UTF-8 byte order mark, which becomes part of the first user's name`);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const at = `${file}:${i + 1}`;
    if (line === '' || line.startsWith('#') || line.startsWith('\r')) continue;
    const colon = line.indexOf(':');
    if (colon < 0) {
      warnings.push(`${at}: no ":" between a user and a password hash; ignored`);
      continue;
    }
    if (colon === 0) {
      warnings.push(`${at}: no user name before ":"; ignored`);
      continue;
    }
    const user = line.slice(0, colon);
    const name = shown(user);
    if (users.has(user)) {
      warnings.push(`${at}: user ${name} again; ignored (the first line of a user counts, as in nginx)`);
      continue;
    }
    const hash = line.slice(colon + 1).split(/[:\r]/, 1)[0]!;
    const c = classify(hash);
    if ('refused' in c) {
      warnings.push(`${at}: user ${name} can never log in: ${c.refused}`);
      users.set(user, REFUSED);
    } else {
      users.set(user, { scheme: c.scheme, slow: c.slow, hash });
    }
  }
  return { users, warnings };
}

/** A name for a message: its UTF-8 reading, quoted (control characters escaped). */
function shown(user: string): string {
  return JSON.stringify(Buffer.from(user, 'latin1').toString('utf8'));
}
