/**
 * Users and groups from /etc/passwd and /etc/group, for php.user / php.group (as php-fpm's pool `user`/`group`).
 * Read when asked, never cached: a reload sees accounts created since the start.
 */
import fs from 'node:fs';

export interface Account {
  readonly name: string;
  readonly uid: number;
  /** The primary group. */
  readonly gid: number;
}

export interface Group {
  readonly name: string;
  readonly gid: number;
}

/** The www-data of Debian's php-fpm pool: PHP's user when the gateway runs as root and php.user is unset. */
export const DEFAULT_PHP_USER = 'www-data';

/** A numeric id as written (`33`, `"33"`), or null for a name. */
export function numericId(value: string): number | null {
  return /^\d+$/.test(value) && Number(value) <= 0xffff_fffe ? Number(value) : null;
}

/** The account named (or numbered) `value`, or null when /etc/passwd has none. */
export function findUser(value: string, passwd = '/etc/passwd'): Account | null {
  const id = numericId(value);
  for (const f of entries(passwd)) {
    const uid = Number(f[2]);
    if (f.length < 4 || !Number.isInteger(uid)) continue;
    if (id === null ? f[0] === value : uid === id) return { name: f[0]!, uid, gid: Number(f[3]) };
  }
  return null;
}

/** The group named (or numbered) `value`, or null when /etc/group has none. */
export function findGroup(value: string, group = '/etc/group'): Group | null {
  const id = numericId(value);
  for (const f of entries(group)) {
    const gid = Number(f[2]);
    if (f.length < 3 || !Number.isInteger(gid)) continue;
    if (id === null ? f[0] === value : gid === id) return { name: f[0]!, gid };
  }
  return null;
}

function entries(file: string): string[][] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    void err; // no such file (a minimal container): no accounts by name; numeric ids still work
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.split(':'));
}
