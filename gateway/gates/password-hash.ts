/**
 * The password hashes of an htpasswd file, as nginx's auth_basic_user_file takes them: its own {PLAIN}, {SHA},
 * {SSHA} and $apr1$ schemes, and what the system crypt(3) of a current Linux verifies: bcrypt ($2y$, $2a$, $2b$),
 * MD5-crypt ($1$) and SHA-crypt ($5$, $6$). Apache's `htpasswd` writes all of these but {PLAIN} and {SSHA}.
 *
 * Refused, so that the user can never log in: DES crypt (`htpasswd -d`; it keeps the first 8 characters of a
 * password and falls to a brute force in hours), `htpasswd -p` plain text (no prefix: nginx passes it to crypt(3),
 * which never matches it either; write `{PLAIN}secret`), and anything else not recognised.
 *
 * Everything here is synchronous and may be slow (bcrypt and the crypt schemes by design): `classify()` says which
 * are cheap enough to run on the event loop; the slow ones run in the hash worker (hash-verifier.ts).
 * Passwords are bytes, as the Authorization header carries them; every comparison takes constant time.
 */
import bcrypt from 'bcryptjs';
import crypto from 'node:crypto';
import { isUtf8 } from 'node:buffer';

export type HashScheme = 'plain' | 'sha1' | 'ssha' | 'md5-crypt' | 'sha-crypt' | 'bcrypt';

/** A line's hash as recognised, or why it is refused. */
export type Classified = { readonly scheme: HashScheme; readonly slow: boolean } | { readonly refused: string };

const CRYPT64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const BCRYPT = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;
const MD5_CRYPT = /^\$(apr1|1)\$([^$]{0,8})\$([./0-9A-Za-z]{22})$/;
const SHA_CRYPT = /^\$([56])\$(?:rounds=(\d{1,9})\$)?([^$]{0,16})\$([./0-9A-Za-z]+)$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const DES = /^[./0-9A-Za-z]{13}$/;
/** glibc's bounds for SHA-crypt's rounds= (it clamps; the result then never equals a hash that named other rounds). */
const SHA_ROUNDS_MIN = 1000;
const SHA_ROUNDS_MAX = 999_999_999;
const SHA_ROUNDS_DEFAULT = 5000;

export function classify(hash: string): Classified {
  if (hash.startsWith('{PLAIN}')) return { scheme: 'plain', slow: false };
  if (hash.startsWith('{SHA}')) {
    const b64 = hash.slice(5);
    return BASE64.test(b64) && Buffer.from(b64, 'base64').length === 20
      ? { scheme: 'sha1', slow: false }
      : { refused: '{SHA} is not the base64 of a 20-byte SHA-1' };
  }
  if (hash.startsWith('{SSHA}')) {
    const b64 = hash.slice(6);
    return BASE64.test(b64) && Buffer.from(b64, 'base64').length > 20
      ? { scheme: 'ssha', slow: false }
      : { refused: '{SSHA} is not the base64 of a SHA-1 and a salt' };
  }
  if (hash.startsWith('$2')) {
    const m = BCRYPT.exec(hash);
    if (m === null) return { refused: 'not a bcrypt hash ($2y$, $2a$ or $2b$, cost, 53 characters; $2x$ is the buggy 8-bit variant)' };
    const cost = Number(m[1]);
    return cost >= 4 && cost <= 31 ? { scheme: 'bcrypt', slow: true } : { refused: `bcrypt cost ${cost} is not 4 to 31` };
  }
  if (hash.startsWith('$apr1$') || hash.startsWith('$1$')) {
    return MD5_CRYPT.test(hash) ? { scheme: 'md5-crypt', slow: true } : { refused: 'not an MD5-crypt hash ($apr1$ or $1$, salt, 22 characters)' };
  }
  if (hash.startsWith('$5$') || hash.startsWith('$6$')) {
    const m = SHA_CRYPT.exec(hash);
    if (m === null || m[4]!.length !== (m[1] === '5' ? 43 : 86)) return { refused: 'not a SHA-crypt hash ($5$ or $6$, [rounds=N$], salt, digest)' };
    const rounds = m[2] === undefined ? SHA_ROUNDS_DEFAULT : Number(m[2]);
    if (rounds < SHA_ROUNDS_MIN || rounds > SHA_ROUNDS_MAX)
      return { refused: `SHA-crypt rounds=${rounds} is not ${SHA_ROUNDS_MIN} to ${SHA_ROUNDS_MAX}` };
    return { scheme: 'sha-crypt', slow: true };
  }
  if (DES.test(hash)) {
    return { refused: 'DES crypt (htpasswd -d) is not accepted: it keeps only 8 characters of a password; re-create it with htpasswd -B' };
  }
  if (hash.startsWith('$')) return { refused: `unknown hash scheme ${JSON.stringify(hash.slice(0, hash.indexOf('$', 1) + 1))}` };
  return { refused: 'not a recognised hash (htpasswd -p plain text is not accepted, as nginx does not; write {PLAIN}password or use htpasswd -B)' };
}

/** Whether `password` matches a hash `classify()` accepted as `scheme`. Never throws: anything wrong is no match. */
export function verifyPassword(password: Uint8Array, scheme: HashScheme, hash: string): boolean {
  try {
    switch (scheme) {
      case 'plain':
        return sameBytes(sha256(password), sha256(Buffer.from(hash.slice(7), 'latin1')));
      case 'sha1':
        return sameBytes(sha1(password), Buffer.from(hash.slice(5), 'base64'));
      case 'ssha': {
        const raw = Buffer.from(hash.slice(6), 'base64');
        return sameBytes(sha1(password, raw.subarray(20)), raw.subarray(0, 20));
      }
      case 'md5-crypt':
        return sameText(md5Crypt(password, hash), hash);
      case 'sha-crypt':
        return sameText(shaCrypt(password, hash), hash);
      case 'bcrypt': {
        // bcryptjs takes a string and hashes its UTF-8; bytes that are not UTF-8 could not be given to it unchanged.
        const bytes = Buffer.from(password.buffer, password.byteOffset, password.byteLength);
        return isUtf8(bytes) && bcrypt.compareSync(bytes.toString('utf8'), hash);
      }
    }
  } catch {
    return false; // a hash classify() let through but an algorithm still rejects: no match
  }
}

function sha256(data: Uint8Array): Buffer {
  return crypto.createHash('sha256').update(data).digest();
}

function sha1(data: Uint8Array, salt?: Uint8Array): Buffer {
  const h = crypto.createHash('sha1').update(data);
  if (salt !== undefined) h.update(salt);
  return h.digest();
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

function sameText(a: string, b: string): boolean {
  return sameBytes(Buffer.from(a, 'latin1'), Buffer.from(b, 'latin1'));
}

/** n characters of crypt's base64 from the low bits of v upward. */
function to64(v: number, n: number): string {
  let out = '';
  for (let i = 0; i < n; i++, v = Math.floor(v / 64)) out += CRYPT64[v % 64]!;
  return out;
}

/** Poul-Henning Kamp's MD5-crypt ($1$), which Apache's $apr1$ is with its own magic. */
export function md5Crypt(password: Uint8Array, setting: string): string {
  const m = MD5_CRYPT.exec(setting) ?? /^\$(apr1|1)\$([^$]{0,8})/.exec(setting);
  if (m === null) throw new Error('not an MD5-crypt setting');
  const magic = `$${m[1]!}$`;
  const salt = Buffer.from(m[2]!, 'latin1');
  const pw = Buffer.from(password);
  const alt = crypto.createHash('md5').update(pw).update(salt).update(pw).digest();
  const ctx = crypto.createHash('md5').update(pw).update(magic).update(salt);
  for (let left = pw.length; left > 0; left -= 16) ctx.update(alt.subarray(0, Math.min(16, left)));
  // Once per bit of the length: a NUL for a one, the password's first byte for a zero (the C original's quirk).
  for (let i = pw.length; i > 0; i >>= 1) ctx.update(i & 1 ? Buffer.alloc(1) : pw.subarray(0, 1));
  let final = ctx.digest();
  for (let i = 0; i < 1000; i++) {
    const h = crypto.createHash('md5');
    h.update(i & 1 ? pw : final);
    if (i % 3) h.update(salt);
    if (i % 7) h.update(pw);
    h.update(i & 1 ? final : pw);
    final = h.digest();
  }
  const b = (x: number, y: number, z: number): number => (final[x]! << 16) | (final[y]! << 8) | final[z]!;
  const digest =
    to64(b(0, 6, 12), 4) + to64(b(1, 7, 13), 4) + to64(b(2, 8, 14), 4) + to64(b(3, 9, 15), 4) + to64(b(4, 10, 5), 4) + to64(final[11]!, 2);
  return `${magic}${m[2]!}$${digest}`;
}

/** Byte order of SHA-crypt's output, three bytes per four characters (Ulrich Drepper's specification). */
const SHA256_ORDER = [0, 10, 20, 21, 1, 11, 12, 22, 2, 3, 13, 23, 24, 4, 14, 15, 25, 5, 6, 16, 26, 27, 7, 17, 18, 28, 8, 9, 19, 29];
const SHA512_ORDER = [
  0, 21, 42, 22, 43, 1, 44, 2, 23, 3, 24, 45, 25, 46, 4, 47, 5, 26, 6, 27, 48, 28, 49, 7, 50, 8, 29, 9, 30, 51, 31, 52, 10, 53, 11, 32, 12, 33, 54,
  34, 55, 13, 56, 14, 35, 15, 36, 57, 37, 58, 16, 59, 17, 38, 18, 39, 60, 40, 61, 19, 62, 20, 41,
];

/** SHA-256-crypt ($5$) and SHA-512-crypt ($6$) as glibc computes them. */
export function shaCrypt(password: Uint8Array, setting: string): string {
  const m = SHA_CRYPT.exec(setting);
  if (m === null) throw new Error('not a SHA-crypt setting');
  const alg = m[1] === '5' ? 'sha256' : 'sha512';
  const size = alg === 'sha256' ? 32 : 64;
  const rounds = m[2] === undefined ? SHA_ROUNDS_DEFAULT : Math.min(SHA_ROUNDS_MAX, Math.max(SHA_ROUNDS_MIN, Number(m[2])));
  const salt = Buffer.from(m[3]!, 'latin1');
  const pw = Buffer.from(password);
  const H = (): crypto.Hash => crypto.createHash(alg);
  const b = H().update(pw).update(salt).update(pw).digest();
  const a = H().update(pw).update(salt);
  for (let left = pw.length; left > 0; left -= size) a.update(b.subarray(0, Math.min(size, left)));
  for (let i = pw.length; i > 0; i >>= 1) a.update(i & 1 ? b : pw);
  let c = a.digest();
  const dp = H();
  for (let i = 0; i < pw.length; i++) dp.update(pw);
  const p = repeat(dp.digest(), pw.length);
  const ds = H();
  for (let i = 0; i < 16 + c[0]!; i++) ds.update(salt);
  const s = repeat(ds.digest(), salt.length);
  for (let i = 0; i < rounds; i++) {
    const h = H();
    h.update(i & 1 ? p : c);
    if (i % 3) h.update(s);
    if (i % 7) h.update(p);
    h.update(i & 1 ? c : p);
    c = h.digest();
  }
  const order = alg === 'sha256' ? SHA256_ORDER : SHA512_ORDER;
  let digest = '';
  for (let i = 0; i < order.length; i += 3) digest += to64((c[order[i]!]! << 16) | (c[order[i + 1]!]! << 8) | c[order[i + 2]!]!, 4);
  digest += alg === 'sha256' ? to64((c[31]! << 8) | c[30]!, 3) : to64(c[63]!, 2);
  const roundsPart = m[2] === undefined ? '' : `rounds=${rounds}$`;
  return `$${m[1]!}$${roundsPart}${m[3]!}$${digest}`;
}

/** `digest` repeated (and cut) to `length` bytes: SHA-crypt's P and S sequences. */
function repeat(digest: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i += digest.length) digest.copy(out, i, 0, Math.min(digest.length, length - i));
  return out;
}
