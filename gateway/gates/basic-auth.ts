/**
 * A route's `auth_basic: { realm, user_file }`, nginx's auth_basic + auth_basic_user_file.
 *
 * nginx reads the user file on every request; here it is read when built and again whenever a stat (at most one a
 * second, off the request's path) shows it changed, so a password change applies without a reload. A missing file
 * answers 403 and an unreadable one 500, as in nginx, until it is back.
 *
 * Verifying bcrypt or a crypt hash is slow by design and runs on the hash worker (hash-verifier.ts). So that a
 * logged-in browser does not pay it on every request, answers are remembered by a salted SHA-256 of the
 * Authorization header (never the header itself) in two bounded LRUs, one for successes and one for failures;
 * both are emptied when the file changes. Identical headers arriving while one is being verified share that
 * verification.
 */
import crypto from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import fs from 'node:fs';
import { LRUCache } from 'lru-cache';
import type { Logger } from '../../core/log.js';
import { hashVerifier } from './hash-verifier.js';
import { parseHtpasswd, type UserEntry } from './htpasswd.js';
import { verifyPassword } from './password-hash.js';

export interface BasicAuthOptions {
  readonly realm: string;
  /** The htpasswd file (the configuration resolves a relative path). */
  readonly user_file: string;
  /** Told each (re)load of the file and its warnings. */
  readonly log?: Logger;
}

export type AuthResult =
  | { readonly ok: true; readonly user: string }
  /**
   * 401: no, bad or wrong credentials (send `challenge`); 403: no user file; 500: it cannot be read, or the hash
   * worker failed; 503: too many verifications waiting.
   */
  | { readonly ok: false; readonly status: 401 | 403 | 500 | 503 };

const STAT_INTERVAL_MS = 1000;
const SUCCESSES_KEPT = 1024;
const FAILURES_KEPT = 1024;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

const UNAUTHORIZED: AuthResult = Object.freeze({ ok: false, status: 401 });
const NO_FILE: AuthResult = Object.freeze({ ok: false, status: 403 });
const SERVER_ERROR: AuthResult = Object.freeze({ ok: false, status: 500 });
const BUSY: AuthResult = Object.freeze({ ok: false, status: 503 });

/** What one read of the file gave. */
interface UserFile {
  readonly users: ReadonlyMap<string, UserEntry>;
  readonly warnings: readonly string[];
  /** Set when there are no users to check against: the answer to every request. */
  readonly refusal: AuthResult | null;
  /** Changes whenever the file does (or appears, or goes). */
  readonly stamp: string;
}

export class BasicAuth {
  /** The 401 answer's WWW-Authenticate value. */
  readonly challenge: string;
  readonly #path: string;
  readonly #log: Logger | undefined;
  /** Salts the header's hash, so a remembered key cannot be matched against precomputed guesses. */
  readonly #salt = crypto.randomBytes(16).toString('base64');
  readonly #successes = new LRUCache<string, AuthResult>({ max: SUCCESSES_KEPT });
  readonly #failures = new LRUCache<string, true>({ max: FAILURES_KEPT });
  readonly #verifying = new Map<string, Promise<AuthResult>>();
  #file: UserFile;
  /** Bumped on each change of the file: a verification started before it must not fill the new caches. */
  #generation = 0;
  #nextStat = 0;
  #statting = false;

  constructor(options: BasicAuthOptions) {
    this.challenge = `Basic realm="${options.realm.replace(/["\\]/g, '\\$&')}"`;
    this.#path = options.user_file;
    this.#log = options.log;
    this.#file = this.#readSync();
    this.#report();
    this.#nextStat = Date.now() + STAT_INTERVAL_MS;
  }

  /** Why lines of the current file are ignored or their users can never log in, as `file:line: …`. */
  get warnings(): readonly string[] {
    return this.#file.warnings;
  }

  /** The request's Authorization header → the user, or the refusal. Synchronous unless a slow hash must be verified. */
  check(authorization: string | undefined): AuthResult | Promise<AuthResult> {
    this.#maybeRevalidate();
    const file = this.#file;
    if (authorization === undefined || authorization.length < 7) return UNAUTHORIZED;
    // nginx asks for credentials before it opens the file: 403/500 only answer a request that brought some.
    if (file.refusal !== null) return parseBasic(authorization) === null ? UNAUTHORIZED : file.refusal;
    const key = crypto.createHash('sha256').update(this.#salt).update(authorization).digest('base64');
    const known = this.#successes.get(key);
    if (known !== undefined) return known;
    if (this.#failures.has(key)) return UNAUTHORIZED;
    const pending = this.#verifying.get(key);
    if (pending !== undefined) return pending;
    const credentials = parseBasic(authorization);
    const entry = credentials === null ? undefined : file.users.get(credentials.name);
    if (credentials === null || entry === undefined || 'refused' in entry) return this.#remember(key, UNAUTHORIZED, this.#generation);
    const success: AuthResult = Object.freeze({ ok: true, user: credentials.user });
    if (!entry.slow) {
      return this.#remember(key, verifyPassword(credentials.password, entry.scheme, entry.hash) ? success : UNAUTHORIZED, this.#generation);
    }
    const verdict = hashVerifier.verify(credentials.password, entry.scheme, entry.hash);
    if (verdict === null) return BUSY;
    const generation = this.#generation;
    const answer = verdict.then(
      (ok) => {
        if (this.#verifying.get(key) === answer) this.#verifying.delete(key);
        return this.#remember(key, ok ? success : UNAUTHORIZED, generation);
      },
      (err: unknown) => {
        if (this.#verifying.get(key) === answer) this.#verifying.delete(key);
        this.#log?.error({ err, file: this.#path }, 'auth_basic: a password could not be verified');
        return SERVER_ERROR;
      },
    );
    this.#verifying.set(key, answer);
    return answer;
  }

  /** Stats the file now and rereads it if it changed (the tests' way to avoid waiting for the next second). */
  async revalidate(): Promise<void> {
    this.#nextStat = Date.now() + STAT_INTERVAL_MS;
    let next: UserFile;
    try {
      const st = await fs.promises.stat(this.#path);
      if (stampOf(st) === this.#file.stamp) return;
      next = this.#fromBytes(await fs.promises.readFile(this.#path), stampOf(st));
    } catch (err) {
      next = this.#failed(err);
      if (next.stamp === this.#file.stamp) return;
    }
    this.#install(next);
  }

  #maybeRevalidate(): void {
    if (this.#statting || Date.now() < this.#nextStat) return;
    this.#statting = true;
    void this.revalidate()
      .catch((err: unknown) => this.#log?.error({ err, file: this.#path }, 'auth_basic: user file check failed'))
      .finally(() => {
        this.#statting = false;
      });
  }

  #install(next: UserFile): void {
    this.#file = next;
    this.#generation++;
    this.#successes.clear();
    this.#failures.clear();
    this.#verifying.clear();
    this.#report();
  }

  #remember(key: string, result: AuthResult, generation: number): AuthResult {
    if (generation === this.#generation) {
      if (result.ok) this.#successes.set(key, result);
      else this.#failures.set(key, true);
    }
    return result;
  }

  #readSync(): UserFile {
    try {
      const st = fs.statSync(this.#path);
      return this.#fromBytes(fs.readFileSync(this.#path), stampOf(st));
    } catch (err) {
      return this.#failed(err);
    }
  }

  #fromBytes(bytes: Buffer, stamp: string): UserFile {
    const { users, warnings } = parseHtpasswd(bytes, this.#path);
    return { users, warnings, refusal: null, stamp };
  }

  #failed(err: unknown): UserFile {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    const missing = code === 'ENOENT' || code === 'ENOTDIR';
    const warning = missing
      ? `${this.#path}: no such file; every request is refused (403)`
      : `${this.#path}: cannot be read (${code}); every request fails (500)`;
    return { users: new Map(), warnings: [warning], refusal: missing ? NO_FILE : SERVER_ERROR, stamp: `error ${code}` };
  }

  #report(): void {
    const log = this.#log;
    if (log === undefined) return;
    log.info({ file: this.#path, users: this.#file.users.size }, 'auth_basic: user file loaded');
    for (const w of this.#file.warnings) log.warn(`auth_basic: ${w}`);
  }
}

function stampOf(st: fs.Stats): string {
  return `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

/** nginx's reading of `Basic <base64 of user:password>`: a user name is required; anything malformed is no credentials. */
function parseBasic(header: string): { name: string; user: string; password: Buffer } | null {
  if (header.slice(0, 6).toLowerCase() !== 'basic ') return null;
  let i = 6;
  while (header.charCodeAt(i) === 32) i++;
  const b64 = header.slice(i);
  if (b64.length % 4 === 1 || !BASE64.test(b64)) return null;
  const raw = Buffer.from(b64, 'base64');
  const colon = raw.indexOf(0x3a);
  if (colon <= 0) return null;
  const name = raw.subarray(0, colon);
  // REMOTE_USER must be exactly the name that matched; a name that is not UTF-8 could not be handed on unchanged.
  if (!isUtf8(name)) return null;
  return { name: name.toString('latin1'), user: name.toString('utf8'), password: raw.subarray(colon + 1) };
}
