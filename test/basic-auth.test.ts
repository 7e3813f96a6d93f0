/**
 * auth_basic (gateway/gates/basic-auth.ts) against user files written by Apache's real `htpasswd`, one per
 * format it writes: bcrypt (-B), apr1 (-m), {SHA} (-s), SHA-256/512-crypt (-2, -5) log in; DES crypt (-d) and
 * plain text (-p) are refused with a warning. Also nginx's reading of the file and of the header, the cache of
 * verified headers, a file that changes, goes or cannot be read, and an event loop that keeps turning while a
 * bcrypt is verified.
 *
 * htpasswd missing: the tests are skipped locally, but fail when CI is set (CI installs apache2-utils).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test, type TestContext } from 'node:test';
import { BasicAuth, type AuthResult } from '../gateway/gates/basic-auth.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-auth-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const missing = ((): string | null => {
  try {
    execFileSync('htpasswd', ['-nb', 'probe', 'probe'], { stdio: 'pipe', timeout: 10_000 });
    return null;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
})();

/** Skips (locally) or fails (CI) without htpasswd; false: the test must return. */
function ready(t: TestContext): boolean {
  if (missing === null) return true;
  if (process.env['CI']) throw new Error(`htpasswd is required for the auth_basic tests in CI, but: ${missing} (apt-get install -y apache2-utils)`);
  t.skip(`htpasswd unavailable (apt-get install -y apache2-utils): ${missing}`);
  return false;
}

let files = 0;
function newFile(): string {
  return path.join(tmp, `users-${++files}`);
}

/** Adds (or changes) one user with the real htpasswd; `flag` picks the format. */
function htpasswd(file: string, flag: string, user: string, password: string, ...extra: string[]): void {
  const create = fs.existsSync(file) ? [] : ['-c'];
  execFileSync('htpasswd', [...create, '-b', flag, ...extra, file, user, password], { stdio: 'pipe', timeout: 30_000 });
}

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

function authOf(file: string): BasicAuth {
  return new BasicAuth({ realm: 'Private', user_file: file });
}

const OK = (user: string): AuthResult => ({ ok: true, user });
const DENIED: AuthResult = { ok: false, status: 401 };

describe('the formats htpasswd writes', () => {
  test('bcrypt, apr1, {SHA} and SHA-crypt users log in with their password and only with it', async (t) => {
    if (!ready(t)) return;
    const file = newFile();
    const users = { bcrypt: '-B', apr1: '-m', sha1: '-s', sha256: '-2', sha512: '-5' };
    for (const [user, flag] of Object.entries(users)) htpasswd(file, flag, user, `${user}-pw`);
    htpasswd(file, '-B', 'costly', 'costly-pw', '-C', '10');
    htpasswd(file, '-5', 'rounds', 'rounds-pw', '-r', '20000');
    const auth = authOf(file);
    assert.deepEqual(auth.warnings, []);
    for (const user of [...Object.keys(users), 'costly', 'rounds']) {
      assert.deepEqual(await auth.check(basic(user, `${user}-pw`)), OK(user), user);
      assert.deepEqual(await auth.check(basic(user, `${user}-pw `)), DENIED, `${user}: a wrong password`);
      assert.deepEqual(await auth.check(basic(user, 'bcrypt-pw')), user === 'bcrypt' ? OK(user) : DENIED, `${user}: another's password`);
    }
    assert.deepEqual(await auth.check(basic('nobody', 'bcrypt-pw')), DENIED);
  });

  test('DES crypt (-d) and plain text (-p) lines are refused: the right password never logs in', async (t) => {
    if (!ready(t)) return;
    const file = newFile();
    htpasswd(file, '-B', 'good', 'secret');
    htpasswd(file, '-d', 'des', 'secret');
    htpasswd(file, '-p', 'plain', 'secret');
    const auth = authOf(file);
    assert.equal(auth.warnings.length, 2, auth.warnings.join('\n'));
    assert.match(auth.warnings[0]!, new RegExp(`^${file}:2: user "des" can never log in: DES crypt`));
    assert.match(auth.warnings[1]!, new RegExp(`^${file}:3: user "plain" can never log in: .*\\{PLAIN\\}`));
    assert.ok(!auth.warnings.join().includes('secret'), 'no password in a warning');
    assert.deepEqual(await auth.check(basic('des', 'secret')), DENIED);
    assert.deepEqual(await auth.check(basic('plain', 'secret')), DENIED);
    assert.deepEqual(await auth.check(basic('good', 'secret')), OK('good'));
  });

  test("nginx's own schemes: {PLAIN} and {SSHA}", async () => {
    const file = newFile();
    const salt = Buffer.from('salty!');
    const ssha = Buffer.concat([crypto.createHash('sha1').update('ssha-pw').update(salt).digest(), salt]).toString('base64');
    fs.writeFileSync(file, `plain:{PLAIN}plain-pw\nssha:{SSHA}${ssha}\n`);
    const auth = authOf(file);
    assert.deepEqual(await auth.check(basic('plain', 'plain-pw')), OK('plain'));
    assert.deepEqual(await auth.check(basic('plain', 'plain-p')), DENIED);
    assert.deepEqual(await auth.check(basic('ssha', 'ssha-pw')), OK('ssha'));
    assert.deepEqual(await auth.check(basic('ssha', 'plain-pw')), DENIED);
  });

  test('UTF-8 names and passwords; a name that is not UTF-8 is refused', async (t) => {
    if (!ready(t)) return;
    const file = newFile();
    htpasswd(file, '-B', 'jürgen', 'pässwörd');
    const auth = authOf(file);
    assert.deepEqual(await auth.check(basic('jürgen', 'pässwörd')), OK('jürgen'));
    const latin1 = `Basic ${Buffer.concat([Buffer.from('j\xfcrgen:', 'latin1'), Buffer.from('pässwörd')]).toString('base64')}`;
    assert.deepEqual(await auth.check(latin1), DENIED);
  });
});

describe("nginx's reading of the file and of the header", () => {
  test('comments, CRLF, a trailing field, the first line of a user, no final newline, and lines that say nothing', async (t) => {
    if (!ready(t)) return;
    const src = newFile();
    htpasswd(src, '-m', 'x', 'first');
    const first = fs.readFileSync(src, 'latin1').trim().slice(2);
    htpasswd(src, '-m', 'x', 'second');
    const second = fs.readFileSync(src, 'latin1').trim().slice(2);
    const file = newFile();
    const lines = [
      '# a comment:{PLAIN}x',
      `crlf:${first}\r`,
      `field:${first}:a comment nginx ignores`,
      `twice:${first}`,
      `twice:${second}`,
      'refusedfirst:NOTAHASH',
      `refusedfirst:${first}`,
      'no colon here',
      ':{PLAIN}nameless',
      '',
      `last:${second}`,
    ];
    fs.writeFileSync(file, lines.join('\n'));
    const auth = authOf(file);
    assert.deepEqual(
      auth.warnings.map((w) => w.slice(file.length + 1).replace(/:.*/, '')),
      ['5', '6', '7', '8', '9'],
      auth.warnings.join('\n'),
    );
    assert.deepEqual(await auth.check(basic('crlf', 'first')), OK('crlf'));
    assert.deepEqual(await auth.check(basic('field', 'first')), OK('field'));
    assert.deepEqual(await auth.check(basic('twice', 'first')), OK('twice'));
    assert.deepEqual(await auth.check(basic('twice', 'second')), DENIED, 'the first line of a user counts');
    assert.deepEqual(await auth.check(basic('refusedfirst', 'first')), DENIED, 'a refused first line is not skipped for a later one');
    assert.deepEqual(await auth.check(basic('last', 'second')), OK('last'));
    assert.deepEqual(await auth.check(basic('# a comment', '{PLAIN}x')), DENIED);
    assert.deepEqual(await auth.check(basic('', 'nameless')), DENIED);
  });

  test('headers: scheme case, spaces, a colon in the password; anything malformed is no credentials', async () => {
    const file = newFile();
    fs.writeFileSync(file, 'alice:{PLAIN}pa:ss\nbob:{PLAIN}b:c\n');
    const auth = authOf(file);
    const b64 = (s: string): string => Buffer.from(s).toString('base64');
    assert.deepEqual(await auth.check(`basic ${b64('alice:pa')}`), OK('alice'), 'the hash field ends at a colon, as in nginx');
    assert.deepEqual(await auth.check(`BASIC   ${b64('bob:b')}`), OK('bob'));
    assert.deepEqual(await auth.check(basic('bob', 'b:c')), DENIED, 'the password is everything after the first colon');
    for (const bad of [
      undefined,
      '',
      'Basic',
      'Basic ',
      'Bearer abc',
      `Basic ${b64('alice')}`,
      `Basic ${b64(':pa')}`,
      `Basic ${b64('alice:pa')}!`,
      'Basic a',
      `Basic\t${b64('alice:pa')}`,
    ]) {
      assert.deepEqual(await auth.check(bad), DENIED, String(bad));
    }
  });

  test('the challenge quotes the realm', () => {
    const auth = new BasicAuth({ realm: 'Staff "only" \\ here', user_file: newFile() });
    assert.equal(auth.challenge, 'Basic realm="Staff \\"only\\" \\\\ here"');
  });
});

describe('verification and its cache', () => {
  test('a slow hash is verified once per header: later requests are answered at once, and failures too', async (t) => {
    if (!ready(t)) return;
    const file = newFile();
    htpasswd(file, '-B', 'alice', 'secret');
    htpasswd(file, '-s', 'sam', 'secret');
    const auth = authOf(file);
    const first = auth.check(basic('alice', 'secret'));
    assert.ok(first instanceof Promise, 'bcrypt runs on the hash worker');
    assert.equal(auth.check(basic('alice', 'secret')), first, 'the same header while verifying shares the verification');
    assert.deepEqual(await first, OK('alice'));
    assert.deepEqual(auth.check(basic('alice', 'secret')), OK('alice'), 'remembered: no promise');
    assert.ok((auth.check(basic('alice', 'wrong')) as unknown) instanceof Promise);
    await auth.check(basic('alice', 'wrong'));
    assert.deepEqual(auth.check(basic('alice', 'wrong')), DENIED, 'a failure is remembered too');
    assert.deepEqual(auth.check(basic('sam', 'secret')), OK('sam'), '{SHA} is verified on the spot');
  });

  test('the event loop keeps turning while a bcrypt is verified', async (t) => {
    if (!ready(t)) return;
    const file = newFile();
    htpasswd(file, '-B', 'alice', 'secret', '-C', '12');
    const auth = authOf(file);
    await auth.check(basic('alice', 'warm the worker up'));
    let worstGap = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      worstGap = Math.max(worstGap, now - last);
      last = now;
    }, 5);
    const started = performance.now();
    const result = await auth.check(basic('alice', 'secret'));
    const took = performance.now() - started;
    clearInterval(timer);
    assert.deepEqual(result, OK('alice'));
    assert.ok(worstGap < took / 2, `the loop stalled ${worstGap.toFixed(0)} ms of a ${took.toFixed(0)} ms verification`);
  });

  test('too many verifications waiting: 503 at once, and the waiting ones still answered', async (t) => {
    if (!ready(t)) return;
    const file = newFile();
    htpasswd(file, '-B', 'alice', 'secret', '-C', '4');
    const auth = authOf(file);
    const answers = Array.from({ length: 80 }, (_, i) => auth.check(basic('alice', `wrong-${i}`)));
    const busy = answers.filter((a): a is AuthResult => !(a instanceof Promise));
    assert.ok(busy.length > 0, 'some were refused at once');
    for (const a of busy) assert.deepEqual(a, { ok: false, status: 503 });
    for (const a of await Promise.all(answers.filter((a) => a instanceof Promise))) assert.deepEqual(a, DENIED);
    assert.deepEqual(await auth.check(basic('alice', 'secret')), OK('alice'));
  });
});

describe('a user file that changes', () => {
  test('a changed password applies after the file is stat again; remembered answers are forgotten', async (t) => {
    if (!ready(t)) return;
    const file = newFile();
    htpasswd(file, '-B', 'alice', 'old');
    htpasswd(file, '-m', 'bob', 'bob-pw');
    const auth = authOf(file);
    assert.deepEqual(await auth.check(basic('alice', 'old')), OK('alice'));
    assert.deepEqual(await auth.check(basic('alice', 'new')), DENIED);
    htpasswd(file, '-B', 'alice', 'new');
    await auth.revalidate();
    assert.deepEqual(await auth.check(basic('alice', 'old')), DENIED);
    assert.deepEqual(await auth.check(basic('alice', 'new')), OK('alice'));
    execFileSync('htpasswd', ['-D', file, 'bob'], { stdio: 'pipe' });
    await auth.revalidate();
    assert.deepEqual(await auth.check(basic('bob', 'bob-pw')), DENIED, 'a deleted user');
  });

  test('without being asked: within about a second of the change', async (t) => {
    if (!ready(t)) return;
    const file = newFile();
    htpasswd(file, '-s', 'alice', 'old');
    const auth = authOf(file);
    assert.deepEqual(await auth.check(basic('alice', 'old')), OK('alice'));
    htpasswd(file, '-s', 'alice', 'new');
    const deadline = Date.now() + 5000;
    let result = await auth.check(basic('alice', 'new'));
    while (!result.ok && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      result = await auth.check(basic('alice', 'new'));
    }
    assert.deepEqual(result, OK('alice'));
    assert.deepEqual(await auth.check(basic('alice', 'old')), DENIED);
  });

  test('a missing file answers 403 and an unreadable one 500, until it is back', async (t) => {
    if (!ready(t)) return;
    const file = newFile();
    const auth = authOf(file);
    assert.deepEqual(auth.check(basic('alice', 'pw')), { ok: false, status: 403 });
    assert.deepEqual(auth.check(undefined), DENIED, 'no credentials: asked for them first, as nginx does');
    assert.match(auth.warnings[0]!, /no such file/);
    htpasswd(file, '-m', 'alice', 'pw');
    await auth.revalidate();
    assert.deepEqual(await auth.check(basic('alice', 'pw')), OK('alice'));
    fs.rmSync(file);
    await auth.revalidate();
    assert.deepEqual(auth.check(basic('alice', 'pw')), { ok: false, status: 403 }, 'remembered successes are gone with the file');
    fs.mkdirSync(file);
    await auth.revalidate();
    assert.deepEqual(auth.check(basic('alice', 'pw')), { ok: false, status: 500 });
  });
});
