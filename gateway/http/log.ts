/** The gateway's logger (pino), built once from logging.* and handed to every component as core's Logger. */
import { pino } from 'pino';
import type { LoggingConfig } from '../../config/types.js';
import type { Logger } from '../../core/log.js';

/** Every log file this process writes (logging.file), for SIGUSR1. */
const files = new Set<{ reopen(): void }>();

/**
 * nginx's SIGUSR1: every log file is opened again by its name, so after logrotate moves it (`postrotate: kill -USR1`)
 * new lines go to a new file, and the moved one is complete.
 */
export function reopenLogFiles(): void {
  for (const f of files) f.reopen();
}

export function createLogger(cfg: LoggingConfig): Logger {
  const dest = cfg.file === '' ? pino.destination(1) : pino.destination({ dest: cfg.file, mkdir: true, sync: false });
  if (cfg.file !== '') files.add(dest);
  return pino(
    {
      level: cfg.level,
      base: { pid: process.pid },
      // Credentials never reach the log, whatever a component passes in.
      redact: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'headers.cookie'],
    },
    dest,
  );
}
