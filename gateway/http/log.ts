/** The gateway's logger (pino), built once from logging.* and handed to every component as core's Logger. */
import { pino } from 'pino';
import type { LoggingConfig } from '../../config/types.js';
import type { Logger } from '../../core/log.js';

export function createLogger(cfg: LoggingConfig): Logger {
  const dest = cfg.file === '' ? pino.destination(1) : pino.destination({ dest: cfg.file, mkdir: true, sync: false });
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
