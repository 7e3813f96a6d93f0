/**
 * The programs the bench drives, and their Debian packages. Run as root, the bench installs the missing ones with
 * apt-get (update, then install); otherwise it prints the command and goes on without them.
 */
import { spawnSync } from 'node:child_process';
import { nginxFpmAvailable } from '../../test/support/nginx-fpm.js';
import { h2loadVersion } from './h2load.js';
import { wrkVersion } from './wrk.js';

export type Program = 'wrk' | 'h2load' | 'nginx + php-fpm' | 'php-cgi';

const PACKAGES: Record<Program, string[]> = {
  wrk: ['wrk'],
  h2load: ['nghttp2-client'],
  'nginx + php-fpm': ['nginx', 'php-fpm'],
  'php-cgi': ['php-cgi'],
};

const APT_LIMIT_MS = 15 * 60_000;

function present(p: Program): boolean {
  switch (p) {
    case 'wrk':
      return wrkVersion() !== null;
    case 'h2load':
      return h2loadVersion() !== null;
    case 'nginx + php-fpm':
      return nginxFpmAvailable().ok;
    case 'php-cgi':
      return !spawnSync('php-cgi', ['-v'], { timeout: 5000 }).error;
  }
}

export const installHint = (programs: readonly Program[]) => `apt-get update && apt-get install -y ${programs.flatMap((p) => PACKAGES[p]).join(' ')}`;

function apt(args: string[]): boolean {
  console.log(`bench: apt-get ${args.join(' ')}`);
  const r = spawnSync('apt-get', args, { stdio: 'inherit', timeout: APT_LIMIT_MS, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return !r.error && r.status === 0;
}

/**
 * Returns which of `needed` are still missing: as root, after installing them (`install`: false to never install);
 * otherwise after printing the command that would.
 */
export function ensurePrograms(needed: readonly Program[], install: boolean): Program[] {
  const missing = needed.filter((p) => !present(p));
  if (missing.length === 0) return [];
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!install || !isRoot) {
    process.stderr.write(`bench: missing ${missing.join(', ')}; install with: ${installHint(missing)}${isRoot ? '' : ' (as root)'}\n`);
    return missing;
  }
  console.log(`bench: missing ${missing.join(', ')}; installing (running as root)`);
  if (!apt(['update']) || !apt(['install', '-y', ...missing.flatMap((p) => PACKAGES[p])])) process.stderr.write('bench: apt-get failed\n');
  return missing.filter((p) => !present(p));
}
