/**
 * Scalar checks: turn one plain value (from YAML, an env var or a flag) into a typed value, or say what is allowed.
 * They know nothing about where the value came from; the readers add the place.
 */
import { isIP } from 'node:net';
import { CACHE_KEY_VARIABLES, parseCacheKey } from './cache-key.js';
import { LogFormats, LogLevels, UpstreamBalances, UpstreamHostHeaders, type LogLevel, type RateLimitKey } from './types.js';

export const INVALID = Symbol('invalid');
export type Invalid = typeof INVALID;

export interface Check<T> {
  /** Completes "KEY must be …", e.g. "an integer from 1 to 65535". */
  readonly expected: string;
  parse(this: void, value: unknown): T | Invalid;
}

export function check<T>(expected: string, parse: (value: unknown) => T | Invalid): Check<T> {
  return { expected, parse };
}

export function int(min: number, max?: number): Check<number> {
  const expected = max === undefined ? `an integer ≥ ${min}` : `an integer from ${min} to ${max}`;
  return check(expected, (v) => (typeof v === 'number' && Number.isInteger(v) && v >= min && (max === undefined || v <= max) ? v : INVALID));
}

export function numberAbove(min: number): Check<number> {
  return check(`a number > ${min}`, (v) => (typeof v === 'number' && Number.isFinite(v) && v > min ? v : INVALID));
}

export function numberAtLeast(min: number): Check<number> {
  return check(`a number ≥ ${min}`, (v) => (typeof v === 'number' && Number.isFinite(v) && v >= min ? v : INVALID));
}

export const port = int(1, 65535);
/** For listeners that may be off: 0 means "do not listen". */
export const portOrOff = check('an integer from 0 to 65535 (0 = off)', int(0, 65535).parse);
export const positiveMs = int(1);

export const bool = check('true or false', (v) => (typeof v === 'boolean' ? v : INVALID));
export const string = check('a string', (v) => (typeof v === 'string' ? v : INVALID));
export const nonEmptyString = check('a non-empty string', (v) => (typeof v === 'string' && v !== '' ? v : INVALID));

export function oneOf<const T extends string>(values: readonly T[]): Check<T> {
  const expected = `one of ${values.map((x) => JSON.stringify(x)).join(', ')}`;
  return check(expected, (v) => values.find((x) => x === v) ?? INVALID);
}

export const logLevel: Check<LogLevel> = oneOf(LogLevels);
export const logFormat = oneOf(LogFormats);

export const processes = check<number | 'auto'>('an integer ≥ 1 or "auto"', (v) => (v === 'auto' ? 'auto' : int(1).parse(v)));

/** A header's exact value as an alternative to true/false: one line (a YAML `|` block would split the head). */
export const boolOrHeaderValue = check<boolean | string>('true, false or a header value on one line (no line breaks)', (v) =>
  typeof v === 'boolean' || (v !== '' && headerValue.parse(v) !== INVALID) ? (v as boolean | string) : INVALID,
);

export const addressOrCidr = check('an IPv4/IPv6 address or CIDR (e.g. "10.0.0.0/8", "::1")', (v) =>
  typeof v === 'string' && isAddressOrCidr(v) ? v : INVALID,
);

/** A route's access rule target, as nginx's allow/deny: `all`, or an address or CIDR of either family. */
export const accessTarget = check('"all" or an IPv4/IPv6 address or CIDR (e.g. "10.0.0.0/8", "2001:db8::/32")', (v) =>
  v === 'all' || (typeof v === 'string' && isAddressOrCidr(v) && !v.includes('%')) ? v : INVALID,
);

function isAddressOrCidr(s: string): boolean {
  const slash = s.indexOf('/');
  const family = isIP(slash < 0 ? s : s.slice(0, slash));
  if (family === 0) return false;
  if (slash < 0) return true;
  const bits = s.slice(slash + 1);
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}

/** An upstream target: where to connect, and a path to put in front; credentials, a query or a fragment have no meaning there. */
export const httpUrl = check('an http:// or https:// URL such as "http://127.0.0.1:3000" (a path is allowed; no user, query or fragment)', (v) =>
  typeof v === 'string' && isHttpUrl(v) ? v : INVALID,
);

function isHttpUrl(s: string): boolean {
  if (!URL.canParse(s) || /[?#]/.test(s)) return false;
  const u = new URL(s);
  return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '' && u.username === '' && u.password === '';
}

export const upstreamBalance = oneOf(UpstreamBalances);
export const upstreamHostHeader = oneOf(UpstreamHostHeaders);

export const rateLimitStore = check('"memory" or a redis:// / rediss:// URL', (v) =>
  v === 'memory' || (typeof v === 'string' && /^rediss?:\/\/./.test(v)) ? v : INVALID,
);

export const purgeRedis = check('"" (rate_limit.store\'s Redis, if it is one), "off" or a redis:// / rediss:// URL', (v) =>
  v === '' || v === 'off' || (typeof v === 'string' && /^rediss?:\/\/./.test(v)) ? v : INVALID,
);

/** A Redis channel name as it shows in `PUBSUB CHANNELS`: printable, no spaces, bounded. */
export const purgeChannel = check('"" (derived) or a channel name of up to 100 letters, digits and : . _ -', (v) =>
  typeof v === 'string' && /^[A-Za-z0-9:._-]{0,100}$/.test(v) ? v : INVALID,
);

export const rateLimitKey = check<RateLimitKey>('"ip" or "header:NAME" (e.g. "header:X-Api-Key")', (v) =>
  v === 'ip' || (typeof v === 'string' && /^header:[A-Za-z0-9-]+$/.test(v)) ? (v as RateLimitKey) : INVALID,
);

export const frameOptions = check<'SAMEORIGIN' | 'DENY' | false>('"SAMEORIGIN", "DENY" or false', (v) =>
  v === 'SAMEORIGIN' || v === 'DENY' || v === false ? v : INVALID,
);

const REFERRER_POLICIES = [
  'no-referrer',
  'no-referrer-when-downgrade',
  'same-origin',
  'origin',
  'strict-origin',
  'origin-when-cross-origin',
  'strict-origin-when-cross-origin',
  'unsafe-url',
];

export const referrerPolicy = check<string | false>(`false or a Referrer-Policy (${REFERRER_POLICIES.join(', ')})`, (v) =>
  v === false || (typeof v === 'string' && v.split(',').every((p) => REFERRER_POLICIES.includes(p.trim()))) ? v : INVALID,
);

/** RFC 9110 token characters: what a header name may be made of. */
export const headerName = check("a header name (letters, digits and !#$%&'*+-.^_`|~)", (v) =>
  typeof v === 'string' && /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(v) ? v : INVALID,
);

export const headerNameOrEmpty = check(`"" (none) or ${headerName.expected}`, (v) => (v === '' ? v : headerName.parse(v)));

/** Visible characters, spaces and tabs: no CR/LF, which would split the response head. */
export const headerValue = check('a header value without control characters', (v) =>
  typeof v === 'string' && /^[\t\x20-\x7e\x80-\xff]*$/.test(v) ? v : INVALID,
);

/** Request paths always start with `/`, so any other first character makes a pattern that never matches. */
export const urlPattern = check('a URL pattern starting with / or * (request paths always start with /)', (v) =>
  typeof v === 'string' && (v.startsWith('/') || v.startsWith('*')) ? v : INVALID,
);

export const denyPattern = check('a URL pattern starting with / or *, or a file-name glob without / (e.g. "*.sql")', (v) =>
  typeof v === 'string' && v !== '' && (urlPattern.parse(v) !== INVALID || !v.includes('/')) ? v : INVALID,
);

export const cacheKey = check(`a key template of text and ${CACHE_KEY_VARIABLES}`, (v) =>
  typeof v === 'string' && v !== '' && parseCacheKey(v) !== null ? v : INVALID,
);

/** A status a cache rule may store: a final answer (1xx never is one). */
export const cacheableStatus = int(200, 599);

export const stripPrefix = check('"" or a path starting with /', (v) => (typeof v === 'string' && (v === '' || v.startsWith('/')) ? v : INVALID));

export const internalPrefix = check('a path starting and ending with / (e.g. /protected/)', (v) =>
  typeof v === 'string' && v.length > 1 && v.startsWith('/') && v.endsWith('/') && !v.includes('..') && !v.includes('//') ? v : INVALID,
);

/**
 * nginx's `charset`: "" or "off" sends none; a name goes into the header as `; charset=NAME`, so only the characters
 * charset names are made of (IANA's: UTF-8, ISO-8859-1, Shift_JIS, windows-1252 …).
 */
export const charset = check('"" (off) or a charset name such as "utf-8" or "iso-8859-1" (letters, digits, ".", "_", ":", "+", "-")', (v) =>
  v === '' || v === 'off' ? '' : typeof v === 'string' && /^[A-Za-z0-9][A-Za-z0-9._:+-]*$/.test(v) ? v : INVALID,
);

/** nginx's charset_types entries: a media type without parameters, or "*" for every type. */
export const mediaType = check('a media type without parameters such as "text/css", or "*" for every type', (v) =>
  v === '*' || (typeof v === 'string' && /^[A-Za-z0-9][\w!#$&^.+-]*\/[A-Za-z0-9][\w!#$&^.+-]*$/.test(v)) ? v : INVALID,
);

export const fileName = check('a file name without "/"', (v) =>
  typeof v === 'string' && v !== '' && v !== '.' && v !== '..' && !/[/\0]/.test(v) ? v : INVALID,
);

/** nginx try_files: every entry is a URI ("$uri", "/index.php?$query_string"); only the last may be "=CODE". */
export const tryFilesUri = check('a URI starting with / or $ ("=CODE" is only allowed as the last entry)', (v) =>
  typeof v === 'string' && /^[/$]/.test(v) ? v : INVALID,
);

export const tryFilesLast = check('a URI starting with / or $, or "=CODE" such as "=404"', (v) =>
  typeof v === 'string' && (/^[/$]/.test(v) || isStatusFallback(v)) ? v : INVALID,
);

function isStatusFallback(s: string): boolean {
  return /^=\d{3}$/.test(s) && Number(s.slice(1)) >= 100 && Number(s.slice(1)) <= 599;
}

export const poolName = check('a name of letters, digits, "_" and "-" starting with a letter or digit', (v) =>
  typeof v === 'string' && /^[a-z0-9][a-z0-9_-]*$/i.test(v) ? v : INVALID,
);

/** php.user / php.group: a name as /etc/passwd and /etc/group write them, a numeric id, or "" (the default). */
export const account = check('a user or group name, a numeric id, or "" (the default)', (v) => {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 ? String(v) : INVALID;
  return typeof v === 'string' && /^(?:[A-Za-z_][A-Za-z0-9_.-]*\$?|\d+|)$/.test(v) ? v : INVALID;
});

/**
 * ini and env values: any scalar, passed on as a string. Booleans become "1"/"0" (what php.ini means by On/Off,
 * and what PHP's truthiness gets right: the string "false" would be true). NUL cannot cross exec().
 */
export const scalarAsString = check('a string, number or boolean (no NUL bytes)', (v) => {
  if (typeof v === 'boolean') return v ? '1' : '0';
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return typeof v === 'string' && !v.includes('\0') ? v : INVALID;
});

/**
 * A php.ini value: passed to php-cgi byte for byte (php/master.ts quotes what the ini syntax would cut). The one
 * value that cannot be written: a `'` together with a `"` or `${` (neither ini quoting keeps all three literal).
 */
export const iniValue = check('a string, number or boolean (no NUL bytes, no line breaks; not \' together with ", ${ or a final \\)', (v) => {
  const s = scalarAsString.parse(v);
  if (s === INVALID || /[\r\n]/.test(s)) return INVALID;
  return s.includes("'") && (s.includes('"') || s.includes('${') || s.endsWith('\\')) ? INVALID : s;
});

export const iniKey = check('an ini directive name such as "memory_limit" or "opcache.enable"', (v) =>
  typeof v === 'string' && /^[A-Za-z_][A-Za-z0-9_.-]*$/.test(v) ? v : INVALID,
);

export const envKey = check('an environment variable name matching /^[A-Za-z_][A-Za-z0-9_]*$/', (v) =>
  typeof v === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(v) ? v : INVALID,
);

/** How a rejected value is shown after "got". */
export function describeValue(v: unknown): string {
  if (v === null || v === undefined) return 'an empty value';
  if (typeof v === 'string') return JSON.stringify(v);
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- YAML scalars and override strings: never objects
  return String(v);
}

// Checks shared by the file schema and the env/flag overrides, so both accept exactly the same values.
export const workerCount = int(1, 256);
export const denyStatus = check<403 | 404>('403 or 404', (v) => (v === 403 || v === 404 ? v : INVALID));
/** error_pages keys: the statuses the gateway answers itself. */
export const errorPageStatus = check('one of "400", "403", "404", "405", "408", "413", "500", "502", "503", "504"', (v) =>
  // YAML reads `404:` as a number; "404": as a string. Both mean the status.
  (typeof v === 'number' || typeof v === 'string') && /^(400|403|404|405|408|413|500|502|503|504)$/.test(String(v)) ? String(v) : INVALID,
);
export const errorPageUri = check('a URI starting with / (a static file or a PHP script in the docroot)', (v) =>
  typeof v === 'string' && v.startsWith('/') && !v.includes('..') ? v : INVALID,
);
/** nginx's error_page target: a URI, answered with the error's status; `= URI`: with the page's own; `=CODE URI`: with CODE. */
/** Dot segments, control characters, a `%` that is not an escape, or %00: a page no request could name. */
// eslint-disable-next-line no-control-regex -- control characters are what is refused
const BAD_PAGE_URI = /\.\.|[\u0000-\u001f\u007f]|%(?![0-9A-Fa-f]{2})|%00/;

export const errorPage = check(
  'a URI starting with / (a static file or a PHP script), optionally after "=" or "=CODE" as nginx\'s error_page',
  (v) => {
    if (typeof v !== 'string') return INVALID;
    const m = /^(?:=(\d{3})?\s+)?(\/.*)$/.exec(v);
    return m !== null && !BAD_PAGE_URI.test(m[2]!) ? v : INVALID;
  },
);
export const maxBodyMb = numberAbove(0);
/** Below this php-cgi cannot even boot a framework; recycling at a lower limit would loop. */
export const memoryLimitMb = int(16);
