/**
 * Settings that environment variables and command-line flags may override: env beats the file, flags beat env.
 * Each goes through the same check as the file's key, and is reported as `env NAME` or `--flag`.
 */
import path from 'node:path';
import * as C from './checks.js';
import { INVALID, describeValue, type Check } from './checks.js';
import type { Loc, ReadContext } from './reader.js';
import type { RawConfig } from './schema.js';

/** From CLI flags. */
export interface Overrides {
  host?: string;
  port?: number;
  docroot?: string;
  workers?: number;
}

interface Setting {
  readonly expected: string;
  /** Writes the value into the raw config if it passes the check; false otherwise. */
  apply(raw: RawConfig, value: unknown): boolean;
}

function setting<T>(check: Check<T>, set: (raw: RawConfig, value: T) => void): Setting {
  return {
    expected: check.expected,
    apply(raw, value) {
      const parsed = check.parse(value);
      if (parsed === INVALID) return false;
      set(raw, parsed);
      return true;
    },
  };
}

// A path typed in a shell means relative to the shell's directory, not the config file's; resolving it here
// makes the later resolution against the file's directory a no-op.
const fromCwd = (p: string): string => path.resolve(p);

const SETTINGS = {
  'server.host': setting(C.nonEmptyString, (r, v) => {
    (r.server ??= {}).host = v;
  }),
  'server.port': setting(C.port, (r, v) => {
    (r.server ??= {}).port = v;
  }),
  'server.max_body_mb': setting(C.maxBodyMb, (r, v) => {
    (r.server ??= {}).max_body_mb = v;
  }),
  'admin.port': setting(C.portOrOff, (r, v) => {
    (r.admin ??= {}).port = v;
  }),
  'php.binary': setting(C.nonEmptyString, (r, v) => {
    (r.php ??= {}).binary = v;
  }),
  'php.docroot': setting(C.nonEmptyString, (r, v) => {
    (r.php ??= {}).docroot = fromCwd(v);
  }),
  'php.socket_dir': setting(C.nonEmptyString, (r, v) => {
    (r.php ??= {}).socket_dir = fromCwd(v);
  }),
  'php.worker_count': setting(C.workerCount, (r, v) => {
    (r.php ??= {}).worker_count = v;
  }),
  'php.user': setting(C.account, (r, v) => {
    (r.php ??= {}).user = v;
  }),
  'logging.level': setting(C.logLevel, (r, v) => {
    (r.logging ??= {}).level = v;
  }),
} satisfies Record<string, Setting>;

type SettingKey = keyof typeof SETTINGS;

export interface EnvVar {
  readonly name: string;
  /** The configuration key it overrides. */
  readonly key: SettingKey;
  readonly description: string;
}

/** Listed by `phpgate --help`. */
export const ENV_VARS: readonly EnvVar[] = [
  { name: 'PHPGATE_HOST', key: 'server.host', description: 'address to listen on' },
  { name: 'PHPGATE_PORT', key: 'server.port', description: 'port to listen on' },
  { name: 'PHPGATE_MAX_BODY_MB', key: 'server.max_body_mb', description: 'largest request body, in MB' },
  { name: 'PHPGATE_ADMIN_PORT', key: 'admin.port', description: 'admin/metrics port (0 = off)' },
  { name: 'PHPGATE_PHP_BINARY', key: 'php.binary', description: 'php-cgi executable' },
  { name: 'PHPGATE_DOCROOT', key: 'php.docroot', description: 'document root (relative to the current directory)' },
  { name: 'PHPGATE_SOCKET_DIR', key: 'php.socket_dir', description: 'directory for worker sockets' },
  { name: 'PHPGATE_WORKERS', key: 'php.worker_count', description: 'workers in the default pool' },
  { name: 'PHPGATE_PHP_USER', key: 'php.user', description: 'user php-cgi runs as (the gateway must be root to switch)' },
  { name: 'PHPGATE_LOG_LEVEL', key: 'logging.level', description: 'fatal, error, warn, info, debug, trace or silent' },
];

const FLAGS = {
  host: 'server.host',
  port: 'server.port',
  docroot: 'php.docroot',
  workers: 'php.worker_count',
} as const satisfies Record<keyof Overrides, SettingKey>;

/** Tries each reading of the value in turn; the first that passes wins, else one issue. */
function override(raw: RawConfig, key: SettingKey, readings: readonly unknown[], loc: Loc, cx: ReadContext): void {
  const s = SETTINGS[key];
  for (const value of readings) {
    if (s.apply(raw, value)) {
      cx.place(key, loc);
      return;
    }
  }
  cx.report(key, loc, `${key} must be ${s.expected}, got ${describeValue(readings[0])}`);
}

const NUMERIC = /^[+-]?(\d+\.?\d*|\.\d+)$/;

export function applyEnv(raw: RawConfig, env: NodeJS.ProcessEnv, cx: ReadContext): void {
  for (const v of ENV_VARS) {
    const text = env[v.name];
    if (text === undefined || text === '') continue; // `NAME= cmd` is how shells unset for one command
    // Env values are always text: "8080" is read as a number where the key wants one.
    const readings = NUMERIC.test(text.trim()) ? [text, Number(text)] : [text];
    override(raw, v.key, readings, { file: `env ${v.name}`, line: 0, col: 0 }, cx);
  }
}

export function applyFlags(raw: RawConfig, flags: Overrides, cx: ReadContext): void {
  for (const flag of Object.keys(FLAGS) as (keyof Overrides)[]) {
    const value = flags[flag];
    if (value !== undefined) override(raw, FLAGS[flag], [value], { file: `--${flag}`, line: 0, col: 0 }, cx);
  }
}
