/**
 * The handshake: the first request on every new connection runs a tiny PHP file the gateway owns (outside
 * every docroot) that answers getmypid(). From then on the gateway knows which child serves which connection
 * and supervises by pid (memory, timeout kill, recycle).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, PhpgateError, UpstreamError } from '../core/errors.js';
import type { FcgiConnection, FcgiResponseHandler } from './fastcgi/connection.js';
import { CgiHeadParser } from './response.js';

/**
 * The pool's shared memory, as PHP itself sees it: opcache and APCu live in one segment per master, shared by
 * its children, so /proc can't attribute them; PHP's own counters can.
 */
const PROBE = `<?php
// phpgate probe: the master's shared opcache and APCu memory, for /metrics and /status.
header('Content-Type: application/json');
$o = function_exists('opcache_get_status') ? @opcache_get_status(false) : false;
$a = (function_exists('apcu_enabled') && apcu_enabled()) ? @apcu_sma_info(true) : false;
echo json_encode([
    'opcacheUsed' => is_array($o) ? $o['memory_usage']['used_memory'] : null,
    'opcacheFree' => is_array($o) ? $o['memory_usage']['free_memory'] : null,
    'apcuUsed' => is_array($a) ? $a['seg_size'] * $a['num_seg'] - $a['avail_mem'] : null,
    'apcuSize' => is_array($a) ? $a['seg_size'] * $a['num_seg'] : null,
]);
`;

const SCRIPT = '<?php\n// phpgate handshake: tells the gateway which php-cgi child holds this connection.\necho getmypid();\n';

/**
 * Makes sure the socket directory is private to this user, then writes the handshake script there and returns
 * its path. The directory holds the pools' sockets and a script php-cgi runs: in a shared /tmp, a directory
 * another user created (or could write into) would let them swap the socket and read every request, or plant a
 * symlink that the script's write would follow. `forOthers` (the gateway is root): PHP may run as other users,
 * who must pass through (0711, not list) to their own socket subdirectories and read the scripts; nothing here is
 * writable but by us, and no socket lies here then (php/master.ts socketDirFor).
 */
export function writeHandshakeScript(socketDir: string, forOthers = false): string {
  ensureSocketDir(socketDir, forOthers);
  writePrivate(path.join(socketDir, 'phpgate-probe.php'), PROBE);
  return writePrivate(path.join(socketDir, 'phpgate-handshake.php'), SCRIPT);
}

/** The socket directory, made if missing and checked as a directory of ours (never a link to follow), then its mode. */
export function ensureSocketDir(socketDir: string, forOthers: boolean): void {
  const mode = forOthers ? 0o711 : 0o700;
  fs.mkdirSync(socketDir, { recursive: true, mode });
  const st = fs.lstatSync(socketDir);
  const uid = process.getuid?.() ?? st.uid;
  if (!st.isDirectory() || st.uid !== uid) {
    throw new PhpgateError(
      ErrorCode.ConfigInvalid,
      `php.socket_dir ${socketDir} is not a directory owned by this user (uid ${uid}); remove it or choose another`,
    );
  }
  // Ours but too open (made by hand, an old umask, an earlier run with other users): close it rather than refuse.
  if ((st.mode & 0o777) !== mode) fs.chmodSync(socketDir, mode);
}

/**
 * php-fpm's clear_env for php-cgi: PHP_FCGI_CHILDREN and PHP_FCGI_MAX_REQUESTS make the master pre-fork (it reads
 * them once at start), but php-cgi copies its environment into every request's $_SERVER, $_ENV and getenv(), and
 * PHP's putenv() is undone at each request's end. So every request starts with this script (auto_prepend_file),
 * which takes them out again; a site's own auto_prepend_file runs right after it. Returns the ini with it set.
 */
export function withEnvGuard(ini: Readonly<Record<string, string>>, socketDir: string): Readonly<Record<string, string>> {
  const own = ini['auto_prepend_file'];
  const chained = own === undefined || own === '' || own === 'none' ? '' : `require ${phpString(own)};\n`;
  const name = chained === '' ? 'phpgate-env.php' : `phpgate-env-${createHash('sha256').update(own!).digest('hex').slice(0, 12)}.php`;
  const file = writePrivate(path.join(socketDir, name), `${ENV_GUARD}${chained}`);
  return { ...ini, auto_prepend_file: file };
}

// putenv() takes them out of the environment for this request (PHP undoes it at the end), before $_SERVER and
// $_ENV are built from it (on first use, auto_globals_jit); where they were built already, they are unset there.
// About a microsecond of PHP's time per request.
const ENV_GUARD = `<?php
// phpgate: the php-cgi master's own variables are not the site's (php-fpm's clear_env).
putenv('PHP_FCGI_CHILDREN');
putenv('PHP_FCGI_MAX_REQUESTS');
if (isset($GLOBALS['_SERVER'])) {
    unset($GLOBALS['_SERVER']['PHP_FCGI_CHILDREN'], $GLOBALS['_SERVER']['PHP_FCGI_MAX_REQUESTS']);
    unset($GLOBALS['_ENV']['PHP_FCGI_CHILDREN'], $GLOBALS['_ENV']['PHP_FCGI_MAX_REQUESTS']);
}
`;

/**
 * The handshake script lives in the socket directory, outside every docroot. If the user restricts PHP with
 * open_basedir, PHP would refuse to run it, so that one directory is added to the list.
 */
export function withHandshakeDir(ini: Readonly<Record<string, string>>, dir: string): Readonly<Record<string, string>> {
  const basedir = ini['open_basedir'];
  if (basedir === undefined || basedir === '') return ini;
  return { ...ini, open_basedir: `${basedir}:${dir}` };
}

/** A PHP single-quoted string literal. */
function phpString(s: string): string {
  return `'${s.replace(/[\\']/g, '\\$&')}'`;
}

/** The probe script written beside the handshake script (by writeHandshakeScript). */
export function probeScriptBeside(handshakeScript: string): string {
  return path.join(path.dirname(handshakeScript), 'phpgate-probe.php');
}

/** Every script written (file → content), so that a restart can write them again after a cleaner took them. */
const written = new Map<string, string>();

/**
 * The socket directory as writeHandshakeScript and withEnvGuard left it, made again: a tmp cleaner may have removed
 * the directory or the scripts in it. Runs before every master restart; throws (ENOSPC, ENOTDIR…) for the restart
 * path to retry.
 */
export function restoreSocketDir(socketDir: string, forOthers: boolean): void {
  writeHandshakeScript(socketDir, forOthers);
  for (const [file, content] of written) if (path.dirname(file) === socketDir) writePrivate(file, content);
}

/**
 * Never through a link: a fresh file created exclusively, then renamed over whatever is there (rename replaces
 * a link itself, and is atomic for another gateway starting beside us on the same directory). Readable by PHP's
 * user, whoever that is: the directory decides who reaches it (0700, or 0711 with nothing secret in these).
 */
function writePrivate(file: string, content: string): string {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.rmSync(tmp, { force: true });
  fs.writeFileSync(tmp, content, { mode: 0o644, flag: 'wx' });
  fs.chmodSync(tmp, 0o644); // whatever the umask
  fs.renameSync(tmp, file);
  written.set(file, content);
  return file;
}

export function handshakeParams(script: string): Array<[string, string]> {
  return [
    ['GATEWAY_INTERFACE', 'CGI/1.1'],
    ['REQUEST_METHOD', 'GET'],
    ['SERVER_PROTOCOL', 'HTTP/1.1'],
    ['SCRIPT_FILENAME', script],
    ['SCRIPT_NAME', '/phpgate-handshake.php'],
    ['REQUEST_URI', '/phpgate-handshake.php'],
    ['QUERY_STRING', ''],
    ['CONTENT_TYPE', ''],
    ['CONTENT_LENGTH', ''],
    ['REDIRECT_STATUS', '200'],
  ];
}

/**
 * The answer of a script the gateway owns (handshake, probe), read like any PHP answer: the CGI head parsed and
 * dropped, the body handed over whole. Usable on a bare connection and through a worker.
 */
export class ScriptAnswer implements FcgiResponseHandler {
  readonly #head = new CgiHeadParser(SCRIPT_HEAD_LIMIT);
  readonly #body: Buffer[] = [];
  #inBody = false;
  readonly #done: (body: string) => void;
  readonly #fail: (err: PhpgateError) => void;

  constructor(done: (body: string) => void, fail: (err: PhpgateError) => void) {
    this.#done = done;
    this.#fail = fail;
  }

  onStdout(chunk: Buffer): boolean {
    let body: Buffer = chunk;
    if (!this.#inBody) {
      // A bad head throws; the connection turns that into onError.
      const parsed = this.#head.push(chunk);
      if (parsed === null) return true;
      this.#inBody = true;
      body = parsed.body;
    }
    this.#body.push(Buffer.from(body));
    return true;
  }

  onStderr(): void {
    // A notice from php.ini is the master's business (logged there); the answer is on stdout.
  }

  onEnd(): void {
    this.#done(Buffer.concat(this.#body).toString('utf8').trim());
  }

  onError(err: PhpgateError): void {
    this.#fail(err);
  }

  onStdinDrain(): void {
    // These scripts get no body.
  }
}

const SCRIPT_HEAD_LIMIT = 8 * 1024;

/** Runs the handshake on a fresh connection; resolves with the child's pid. */
export function handshake(conn: FcgiConnection, script: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new UpstreamError(ErrorCode.UpstreamTimeout, `handshake got no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const answer = new ScriptAnswer(
      (body) => {
        clearTimeout(timer);
        const pid = Number(body);
        if (Number.isInteger(pid) && pid > 0) resolve(pid);
        else reject(new UpstreamError(ErrorCode.UpstreamHeaders, `handshake answered ${JSON.stringify(body.slice(0, 200))}`));
      },
      (err) => {
        clearTimeout(timer);
        reject(err);
      },
    );
    conn.begin(handshakeParams(script), answer, true);
  });
}
