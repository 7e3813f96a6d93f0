/**
 * nginx's open_file_cache for the router and the static files: what a path is (file, directory, nothing) and
 * where it really points, remembered for at most `validMs` (open_file_cache_valid), so a busy site does not
 * stat every file on every request, and a file changed on disk is seen within that time.
 */
import fs from 'node:fs';

/** nginx's open_file_cache_valid default is 60 s; the static-file contract asks for at most 1 s. */
export const FILE_INFO_VALID_MS = 1000;
const MAX_ENTRIES = 10_000;

interface Entry {
  stat: fs.Stats | null;
  checkedAt: number;
  /** realpath, computed on first need within the validity window; null when it could not be resolved. */
  real: string | null | undefined;
}

/**
 * Whether a file may be sent: without follow_symlinks, its real path must lie inside the docroot's real path.
 * The docroot is resolved again (through the cache) on every check, so re-pointing a `current -> releases/N`
 * docroot link takes effect within a second, as the files themselves do.
 */
export class DocrootGuard {
  readonly #files: FileInfoCache;
  readonly #root: string;
  readonly #follow: boolean;

  constructor(files: FileInfoCache, docroot: string, followSymlinks: boolean) {
    this.#files = files;
    this.#root = docroot;
    this.#follow = followSymlinks;
  }

  allows(file: string): boolean {
    if (this.#follow) return true;
    const root = this.#files.realpath(this.#root);
    const real = this.#files.realpath(file);
    return root !== null && real !== null && real.startsWith(root.endsWith('/') ? root : root + '/');
  }
}

/** ENOTDIR (/file.txt/more), ENAMETOOLONG, EACCES, ELOOP: for serving, all mean "nothing here". */
const NOT_THERE = new Set(['ENOENT', 'ENOTDIR', 'ENAMETOOLONG', 'EACCES', 'ELOOP']);

export class FileInfoCache {
  readonly #validMs: number;
  // A plain Map, emptied when full: lookups are on every request's path, and an LRU's bookkeeping costs more
  // than the rare refill (nginx's open_file_cache max works the same way, evicting what is inactive).
  readonly #entries = new Map<string, Entry>();

  constructor(validMs = FILE_INFO_VALID_MS) {
    this.#validMs = validMs;
  }

  stat(path: string): fs.Stats | null {
    return this.#entry(path).stat;
  }

  /** The path with symlinks resolved, or null if it does not exist. */
  realpath(path: string): string | null {
    const e = this.#entry(path);
    if (e.real === undefined) {
      try {
        e.real = fs.realpathSync(path);
      } catch (err) {
        if (!NOT_THERE.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
        e.real = null;
      }
    }
    return e.real;
  }

  #entry(path: string): Entry {
    const now = Date.now();
    let e = this.#entries.get(path);
    if (e !== undefined && now - e.checkedAt < this.#validMs) return e;
    // Synchronous on purpose: a stat of a cached dentry takes microseconds, less than a promise round trip, and
    // happens at most once a second per path.
    let stat: fs.Stats | null;
    try {
      stat = fs.statSync(path, { throwIfNoEntry: false }) ?? null;
    } catch (err) {
      if (!NOT_THERE.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
      stat = null;
    }
    if (e === undefined) {
      e = { stat, checkedAt: now, real: undefined };
      if (this.#entries.size >= MAX_ENTRIES) this.#entries.clear();
      this.#entries.set(path, e);
    } else {
      e.stat = stat;
      e.checkedAt = now;
      e.real = undefined;
    }
    return e;
  }
}
