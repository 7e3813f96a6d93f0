/**
 * Who php-cgi runs as (php.user / php.group, per pool as php-fpm's pool `user`/`group`), decided when a pool is
 * built. A gateway started as root never runs PHP as root unless the configuration says `php.user: root`: by
 * default PHP runs as www-data, as Debian's php-fpm pool does. A gateway that is not root cannot switch users,
 * so the settings must then be unset or name its own user and group.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DEFAULT_PHP_USER, findGroup, findUser, numericId } from '../config/accounts.js';
import { ErrorCode, PhpgateError } from '../core/errors.js';
import type { Logger } from '../core/log.js';

export interface PhpIdentity {
  readonly uid: number;
  readonly gid: number;
  /** For messages: `www-data (uid 33)`. */
  readonly label: string;
}

/** The gateway's own effective user and group. */
export function gatewayIdentity(): PhpIdentity {
  const uid = process.geteuid?.() ?? 0;
  return { uid, gid: process.getegid?.() ?? 0, label: labelOf(uid) };
}

/** The user and group PHP runs as under these settings; throws (ConfigInvalid, one line) when it must not start. */
export function phpIdentity(settings: { readonly user: string; readonly group: string }): PhpIdentity {
  const self = gatewayIdentity();
  const { user, group } = settings;
  if (self.uid !== 0) {
    // Only root may setuid/setgid: anything but the gateway's own user and group is refused, not ignored.
    if (user === '' && group === '') return self;
    const uid = user === '' ? self.uid : idOfUser(user);
    const gid = group === '' ? self.gid : idOfGroup(group);
    if (uid !== self.uid || gid !== self.gid) {
      const what = uid !== self.uid ? `php.user "${user}"` : `php.group "${group}"`;
      throw new PhpgateError(
        ErrorCode.ConfigInvalid,
        `${what}: only root can run PHP as another user or group, and phpgate runs as ${self.label}; unset it, or start phpgate as root`,
      );
    }
    return self;
  }
  const name = user === '' ? DEFAULT_PHP_USER : user;
  const account = findUser(name);
  if (account === null && (user === '' || numericId(user) === null)) {
    throw new PhpgateError(
      ErrorCode.ConfigInvalid,
      user === ''
        ? `php.user is not set and there is no user ${DEFAULT_PHP_USER} here: phpgate does not run PHP as root unless told to; set php.user to the user PHP should run as (php.user: root to allow root)`
        : `php.user: no user "${user}" in /etc/passwd`,
    );
  }
  const uid = account?.uid ?? numericId(user)!;
  const gid = group !== '' ? idOfGroup(group) : (account?.gid ?? uid);
  return { uid, gid, label: labelOf(uid) };
}

function idOfUser(user: string): number {
  const id = findUser(user)?.uid ?? numericId(user);
  if (id === null) throw new PhpgateError(ErrorCode.ConfigInvalid, `php.user: no user "${user}" in /etc/passwd`);
  return id;
}

function idOfGroup(group: string): number {
  const id = findGroup(group)?.gid ?? numericId(group);
  if (id === null) throw new PhpgateError(ErrorCode.ConfigInvalid, `php.group: no group "${group}" in /etc/group`);
  return id;
}

function labelOf(uid: number): string {
  const name = findUser(String(uid))?.name;
  return name === undefined ? `uid ${uid}` : `${name} (uid ${uid})`;
}

/**
 * Why `id` cannot reach `target` (enter every directory on the way, and read and enter `target` itself when
 * `list`), naming the first path component that stops it; null when nothing does. Decided from the mode bits as
 * the kernel does for a process with that uid and gid and no supplementary groups (how php-cgi is started; ACLs
 * are not read).
 */
export function accessProblem(target: string, id: PhpIdentity, list: boolean): string | null {
  if (id.uid === 0) return null;
  const parts = path
    .resolve(target)
    .split('/')
    .filter((p) => p !== '');
  for (let i = 0; i <= parts.length; i++) {
    const dir = `/${parts.slice(0, i).join('/')}`;
    const need = i === parts.length && list ? 5 : 1; // r-x, or --x to pass through
    let st: fs.Stats;
    try {
      st = fs.statSync(dir);
    } catch (err) {
      return `${dir} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
    }
    const bits = st.uid === id.uid ? st.mode >> 6 : st.gid === id.gid ? st.mode >> 3 : st.mode;
    if ((bits & need) !== need) {
      const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
      return `${dir} (mode ${mode}, owner ${labelOf(st.uid)}) does not let ${id.label} ${need === 5 ? 'read' : 'enter'} it`;
    }
  }
  return null;
}

/** What stops PHP, run as `id`, from reading the docroot or reaching its socket; null when nothing does. */
export function reachProblem(id: PhpIdentity, docroot: string, socketDir: string): string | null {
  const root = accessProblem(docroot, id, true);
  if (root !== null) return `php.docroot ${docroot}: ${root}, and PHP runs as ${id.label}: let that user read it (or move the site), or set php.user`;
  // The socket directory itself is opened to it (0711) by writeHandshakeScript; the ones above must let it through.
  const sockets = accessProblem(path.dirname(socketDir), id, false);
  if (sockets !== null) return `php.socket_dir ${socketDir}: ${sockets}, and PHP runs as ${id.label}: choose another php.socket_dir`;
  return null;
}

/**
 * Each pool's identity, refused (one line) when PHP could not read the docroot or reach its socket. The bundled
 * example site (phpgate started with no configuration, often as root from a clone under /root) instead runs PHP
 * as the gateway's own user, with a warning that says why: only that site, never a configured one.
 */
export function poolIdentities(
  pools: ReadonlyArray<{ readonly name: string; readonly settings: { readonly user: string; readonly group: string } }>,
  o: { readonly docroot: string; readonly socketDir: string; readonly exampleSite: boolean; readonly log: Logger },
): Map<string, PhpIdentity> {
  const out = new Map<string, PhpIdentity>();
  for (const { name, settings } of pools) {
    let id = gatewayIdentity();
    let why: string | null;
    try {
      id = phpIdentity(settings);
      why = reachProblem(id, o.docroot, o.socketDir);
    } catch (err) {
      if (!(err instanceof PhpgateError)) throw err;
      why = err.message;
    }
    if (why !== null && !o.exampleSite) throw new PhpgateError(ErrorCode.ConfigInvalid, why);
    if (why !== null) {
      id = gatewayIdentity();
      o.log.warn({ pool: name }, `PHP runs as ${id.label} for the bundled example site only, because ${why}; a configured site never falls back`);
    }
    out.set(name, id);
  }
  return out;
}
