/** What php/ adds to the project's Logger (core/log.ts): PHP's own output, line by line. */
import type { Logger } from '../core/log.js';

/**
 * Logs each non-blank line of what PHP wrote to stderr as its own warning (nginx's "FastCGI sent in stderr").
 * `prefix` says who wrote it; `context` ties it to a pool, a process or a request.
 */
export function logLines(log: Logger, context: object, prefix: string, chunk: Buffer): void {
  for (const line of chunk.toString('utf8').split('\n')) {
    const text = line.trim();
    if (text !== '') log.warn(context, `${prefix}${text}`);
  }
}
