/**
 * `phpgate check`, PHP's half (what `php-fpm -t` catches): php-cgi started with a pool's php.ini settings, as the
 * pool starts it (as the pool's user too), asked only for its version. Whatever PHP itself says about those
 * settings on the way (a bad value, an extension it cannot load, an ini syntax error) is returned, one line each,
 * with what would stop the pool from starting as that user (no such user, a docroot it cannot read).
 */
import { spawnSync } from 'node:child_process';
import type { GatewayConfig, PoolSettings } from '../config/types.js';
import { PhpgateError } from '../core/errors.js';
import { gatewayIdentity, phpIdentity, reachProblem, type PhpIdentity } from './identity.js';
import { iniDefine } from './master.js';

/** PHP's own complaints at startup: warnings, errors, ini syntax errors (not the version banner). */
const COMPLAINT = /^PHP (?:Warning|Fatal error|Parse error|Notice|Deprecated|Startup):|^PHP: {1,2}\S/;

/** Every pool's complaints, each line starting with the pool's place in the file (`php: …`, `pools.NAME: …`). */
export function checkPhpPools(c: Readonly<GatewayConfig>): string[] {
  const pools: Array<{ name: string; settings: PoolSettings }> = [
    { name: 'php', settings: c.php },
    ...c.pools.map((p) => ({ name: `pools.${p.name}`, settings: p })),
  ];
  return pools.flatMap(({ name, settings }) => {
    let id: PhpIdentity;
    try {
      id = phpIdentity(settings);
    } catch (err) {
      if (err instanceof PhpgateError) return [`${name}: ${err.message}`];
      throw err;
    }
    const reach = reachProblem(id, c.php.docroot, c.php.socket_dir);
    return [
      ...(reach === null ? [] : [`${name}: ${reach}`]),
      ...checkPhpSettings(c.php.binary, settings.ini, settings.env, id).map((l) => `${name}: ${l}`),
    ];
  });
}

function checkPhpSettings(
  binary: string,
  ini: Readonly<Record<string, string>>,
  env: Readonly<Record<string, string>>,
  id: PhpIdentity = gatewayIdentity(),
): string[] {
  const args = Object.entries(ini).flatMap(([k, v]) => ['-d', iniDefine(k, v)]);
  const self = gatewayIdentity();
  const ids = id.uid !== self.uid || id.gid !== self.gid ? { uid: id.uid, gid: id.gid } : {};
  const r = spawnSync(binary, [...args, '-v'], { env: { ...env }, encoding: 'utf8', timeout: 15_000, ...ids });
  if (r.error !== undefined) {
    const missing = (r.error as NodeJS.ErrnoException).code === 'ENOENT';
    return [missing ? `php.binary ${binary} not found (Debian: apt-get install -y php-cgi)` : `php-cgi could not run: ${r.error.message}`];
  }
  const lines = `${r.stdout}\n${r.stderr}`.split('\n').map((l) => l.trim());
  const complaints = lines.filter((l) => COMPLAINT.test(l)).map((l) => l.replace(/ in Unknown on line \d+$/, ''));
  if (complaints.length === 0 && r.status !== 0) complaints.push(`php-cgi -v exited with ${r.status ?? r.signal}`);
  return [...new Set(complaints)];
}
