/** The gateway's logger (pino), built once from logging.* and handed to every component as core's Logger. */
import { pino } from 'pino';
import type { LoggingConfig } from '../../config/types.js';
import type { Logger } from '../../core/log.js';
import { TextLines, type LineSink } from './log-format.js';

type Destination = ReturnType<typeof pino.destination>;

/** One destination per file ('' : stdout), shared by the logger and the access lines so their lines never interleave mid-line. */
const destinations = new Map<string, Destination>();

/** Where lines for `file` ('' : stdout) go: opened once, reopened by reopenLogFiles(). */
export function logDestination(file: string): Destination {
  let dest = destinations.get(file);
  if (dest === undefined) {
    dest = file === '' ? pino.destination(1) : pino.destination({ dest: file, mkdir: true, sync: false });
    destinations.set(file, dest);
  }
  return dest;
}

/**
 * nginx's SIGUSR1: every log file is opened again by its name, so after logrotate moves it (`postrotate: kill -USR1`)
 * new lines go to a new file, and the moved one is complete.
 */
export function reopenLogFiles(): void {
  for (const [file, dest] of destinations) if (file !== '') dest.reopen();
}

/** Colour only for a person: the text goes to a terminal. */
export function colourFor(file: string): boolean {
  return file === '' && process.stdout.isTTY;
}

/** The second of the last line's time, and its `,"time":"…T07:00:00.` part. */
let isoSecond = -1;
let isoPrefix = '';

/** pino's isoTime (`"2026-12-06T07:00:00.123Z"`, UTC), the date formatted once per second rather than on every line. */
function isoTime(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== isoSecond) {
    isoSecond = second;
    isoPrefix = `,"time":"${new Date(second * 1000).toISOString().slice(0, 20)}`;
  }
  const ms = now - second * 1000;
  return `${isoPrefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z"`;
}

/** A pino logger writing `logging.format` lines to `file` ('' : stdout) at `cfg.level`. */
export function loggerTo(cfg: LoggingConfig, file: string): Logger {
  const dest = logDestination(file);
  const stream: LineSink = cfg.format === 'json' ? dest : new TextLines(dest, cfg.format, colourFor(file));
  return pino(
    {
      level: cfg.level,
      base: { pid: process.pid },
      timestamp: isoTime,
      // Credentials never reach the log, whatever a component passes in.
      redact: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'headers.cookie'],
    },
    stream,
  );
}

export function createLogger(cfg: LoggingConfig): Logger {
  return loggerTo(cfg, cfg.file);
}
