/**
 * The text formats of logging.format (README: Logging). Access lines are written from the request's record directly
 * (the hot path: no JSON in between); every other line is a pino JSON line turned into text (rare, so parsed).
 *
 *   combined  access: nginx's `combined` log_format, byte for byte in layout;
 *             others: nginx's error log, `2026/12/06 07:00:00 [warn] 1234#0: message, key: value, …`
 *   pretty    one line per entry for a terminal: `2026-12-06 07:00:00.123 WARN  message key=value …`, colour on a TTY
 *
 * Every line stays one line: control characters, quotes and backslashes in values are escaped as nginx does (\xHH).
 */
import type { LogFormat } from '../../config/types.js';
import type { RequestRecord } from './status.js';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;

/** Anything nginx's access log escapes (escape=default): `"`, `\`, control characters and bytes ≥ 0x7F. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what it looks for
const NEEDS_ESCAPE = /[\x00-\x1f"\\\x7f-\uffff]/;

/** nginx's escaping of a logged value: `\xHH` for each byte that needs it (characters above 0xFF as their UTF-8 bytes). */
export function escapeValue(v: string): string {
  if (!NEEDS_ESCAPE.test(v)) return v;
  let out = '';
  for (const ch of v) {
    const c = ch.codePointAt(0)!;
    if (c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x5c) out += ch;
    else if (c <= 0xff) out += hex(c);
    else for (const b of Buffer.from(ch, 'utf8')) out += hex(b);
  }
  return out;
}

function hex(b: number): string {
  return `\\x${b.toString(16).toUpperCase().padStart(2, '0')}`;
}

const pad2 = (n: number): string => (n < 10 ? `0${n}` : String(n));

/** nginx's $time_local (`06/Dec/2026:07:00:00 +0100`), made once per second. */
let localSecond = -1;
let localText = '';
export function timeLocal(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second === localSecond) return localText;
  const d = new Date(ms);
  const off = -d.getTimezoneOffset();
  const abs = Math.abs(off);
  localText =
    `${pad2(d.getDate())}/${MONTHS[d.getMonth()]!}/${d.getFullYear()}:${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())} ` +
    `${off < 0 ? '-' : '+'}${pad2(Math.floor(abs / 60))}${pad2(abs % 60)}`;
  localSecond = second;
  return localText;
}

/** `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"` */
export function combinedLine(r: RequestRecord, now: number): string {
  return (
    `${r.remoteAddr} - ${r.remoteUser === '' ? '-' : escapeValue(r.remoteUser)} [${timeLocal(now)}] ` +
    `"${escapeValue(r.method)} ${escapeValue(r.uri)} ${r.protocol}" ${r.status} ${r.bodyBytes} ` +
    `"${r.referer === '' ? '-' : escapeValue(r.referer)}" "${r.userAgent === '' ? '-' : escapeValue(r.userAgent)}"\n`
  );
}

/** Local time with milliseconds, `2026-12-06 07:00:00.123`. */
function prettyTime(d: Date): string {
  const ms = d.getMilliseconds();
  return (
    `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}.` +
    `${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}`
  );
}

const ms1 = (v: number): string => (Math.round(v * 10) / 10).toFixed(1);

const RESET = '\x1b[0m';
const STATUS_COLOUR = ['', '', '\x1b[32m', '\x1b[36m', '\x1b[33m', '\x1b[31m'] as const;

/** An access line for a terminal: status, request, time, size, then what served it and who asked. */
export function prettyAccessLine(r: RequestRecord, now: number, colour: boolean): string {
  const status = colour ? `${STATUS_COLOUR[Math.floor(r.status / 100)] ?? ''}${r.status}${RESET}` : String(r.status);
  let line = `${prettyTime(new Date(now))} ${status} ${escapeValue(r.method)} ${escapeValue(r.uri)} ${r.protocol} ${ms1(r.durationMs)}ms ${r.bodyBytes}B`;
  if (r.pool !== null) line += ` pool=${escapeValue(r.pool)}`;
  if (r.workerPid !== 0) line += ` workerPid=${r.workerPid}`;
  if (r.upstreamMs !== null) line += ` upstream=${ms1(r.upstreamMs)}ms`;
  if (r.cache !== null) line += ` cache=${r.cache}`;
  line += ` client=${r.remoteAddr}`;
  if (r.remoteUser !== '') line += ` user="${escapeValue(r.remoteUser)}"`;
  if (r.host !== '') line += ` host=${escapeValue(r.host)}`;
  line += ` id=${escapeValue(r.requestId)}`;
  if (r.referer !== '') line += ` referer="${escapeValue(r.referer)}"`;
  if (r.userAgent !== '') line += ` ua="${escapeValue(r.userAgent)}"`;
  return `${line}\n`;
}

/** pino's numeric levels as nginx's error log and a terminal name them. */
function levelName(level: unknown, nginx: boolean): string {
  const n = typeof level === 'number' ? level : 30;
  if (n >= 60) return nginx ? 'crit' : 'FATAL';
  if (n >= 50) return nginx ? 'error' : 'ERROR';
  if (n >= 40) return nginx ? 'warn' : 'WARN ';
  if (n >= 30) return nginx ? 'info' : 'INFO ';
  return nginx ? 'debug' : 'DEBUG';
}

const LEVEL_COLOUR: Readonly<Record<string, string>> = {
  FATAL: '\x1b[35m',
  ERROR: '\x1b[31m',
  'WARN ': '\x1b[33m',
  'INFO ': '\x1b[32m',
  DEBUG: '\x1b[90m',
};

/** What every pino line carries, shown by the layout itself rather than as a field. */
const FRAME = new Set(['level', 'time', 'pid', 'hostname', 'msg']);

/** A field's value as text: strings escaped, an error as its message, anything else as JSON. */
function fieldText(key: string, v: unknown): string {
  if (typeof v === 'string') return escapeValue(v);
  if (key === 'err' && typeof v === 'object' && v !== null && typeof (v as { message?: unknown }).message === 'string') {
    return escapeValue((v as { message: string }).message);
  }
  return escapeValue(JSON.stringify(v) ?? String(v));
}

function messageOf(e: Record<string, unknown>): string {
  return typeof e['msg'] === 'string' ? escapeValue(e['msg']) : '';
}

/** One pino entry (parsed) as nginx's error log writes a line. */
export function errorLogLine(e: Record<string, unknown>): string {
  const d = new Date(typeof e['time'] === 'string' || typeof e['time'] === 'number' ? e['time'] : Date.now());
  let line =
    `${d.getFullYear()}/${pad2(d.getMonth() + 1)}/${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())} ` +
    `[${levelName(e['level'], true)}] ${typeof e['pid'] === 'number' ? e['pid'] : process.pid}#0: ${messageOf(e)}`;
  for (const key in e) if (!FRAME.has(key)) line += `, ${key}: ${fieldText(key, e[key])}`;
  return `${line}\n`;
}

/** One pino entry (parsed) as a terminal line. */
export function prettyLine(e: Record<string, unknown>, colour: boolean): string {
  const d = new Date(typeof e['time'] === 'string' || typeof e['time'] === 'number' ? e['time'] : Date.now());
  const level = levelName(e['level'], false);
  let line = `${prettyTime(d)} ${colour ? `${LEVEL_COLOUR[level] ?? ''}${level}${RESET}` : level} ${messageOf(e)}`;
  for (const key in e) {
    if (FRAME.has(key)) continue;
    const text = fieldText(key, e[key]);
    line += ` ${key}=${text.includes(' ') || text === '' ? `"${text}"` : text}`;
  }
  return `${line}\n`;
}

/** Where the text formats write: a SonicBoom destination (gateway/http/log.ts). */
export interface LineSink {
  write(line: string): boolean;
  flush?(cb?: (err?: Error) => void): void;
}

/**
 * The stream pino writes its JSON lines into for the text formats: each line is parsed and written as text. A line
 * that does not parse (never expected from pino) is written as it came rather than lost.
 */
export class TextLines {
  readonly #to: LineSink;
  readonly #format: (e: Record<string, unknown>) => string;

  constructor(to: LineSink, format: Exclude<LogFormat, 'json'>, colour: boolean) {
    this.#to = to;
    this.#format = format === 'combined' ? errorLogLine : (e) => prettyLine(e, colour);
  }

  write(chunk: string): boolean {
    let text: string;
    try {
      text = this.#format(JSON.parse(chunk) as Record<string, unknown>);
    } catch {
      // Not JSON after all: the line as pino wrote it is still worth more than nothing.
      text = chunk;
    }
    return this.#to.write(text);
  }

  flush(cb?: (err?: Error) => void): void {
    if (this.#to.flush !== undefined) this.#to.flush(cb);
    else cb?.();
  }
}
