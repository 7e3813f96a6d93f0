/**
 * `phpgate check`, PHP's half (what `php-fpm -t` catches): php-cgi started with a pool's php.ini settings, as the
 * pool starts it, asked only for its version. Whatever PHP itself says about those settings on the way (a bad
 * value, an extension it cannot load, an ini syntax error) is returned, one line each.
 */
import { spawnSync } from 'node:child_process';
import { iniDefine } from './master.js';

/** PHP's own complaints at startup: warnings, errors, ini syntax errors (not the version banner). */
const COMPLAINT = /^PHP (?:Warning|Fatal error|Parse error|Notice|Deprecated|Startup):|^PHP: {1,2}\S/;

export function checkPhpSettings(binary: string, ini: Readonly<Record<string, string>>, env: Readonly<Record<string, string>>): string[] {
  const args = Object.entries(ini).flatMap(([k, v]) => ['-d', iniDefine(k, v)]);
  const r = spawnSync(binary, [...args, '-v'], { env: { ...env }, encoding: 'utf8', timeout: 15_000 });
  if (r.error !== undefined) {
    const missing = (r.error as NodeJS.ErrnoException).code === 'ENOENT';
    return [missing ? `php.binary ${binary} not found (Debian: apt-get install -y php-cgi)` : `php-cgi could not run: ${r.error.message}`];
  }
  const lines = `${r.stdout}\n${r.stderr}`.split('\n').map((l) => l.trim());
  const complaints = lines.filter((l) => COMPLAINT.test(l)).map((l) => l.replace(/ in Unknown on line \d+$/, ''));
  if (complaints.length === 0 && r.status !== 0) complaints.push(`php-cgi -v exited with ${r.status ?? r.signal}`);
  return [...new Set(complaints)];
}
