/** The package's own version and root directory, found from this file's location (source or dist). */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function findPackageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'package.json');
    if (fs.existsSync(candidate) && (JSON.parse(fs.readFileSync(candidate, 'utf8')) as { name?: string }).name === 'phpgate') return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('phpgate: cannot find its own package.json');
    dir = parent;
  }
}

export const PACKAGE_ROOT = findPackageRoot();
export const VERSION = (JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
/** The bundled example site's directory: the embedded default's base (its docroot is ./public). */
export const EXAMPLE_DIR = path.join(PACKAGE_ROOT, 'example');
