/**
 * The one logging surface of every room. pino's Logger satisfies it (gateway/http/log.ts builds the real one);
 * components get theirs handed in when they are built and never reach for a global.
 */

/** A line: its fields and a message, or only a message. */
export interface LogFn {
  (obj: object, msg?: string): void;
  (msg: string): void;
}

export interface Logger {
  readonly fatal: LogFn;
  readonly error: LogFn;
  readonly warn: LogFn;
  readonly info: LogFn;
  readonly debug: LogFn;
  /** The same logger with `bindings` added to every line (`{ log: 'access' }`, `{ process: 2 }`). */
  child(bindings: object): Logger;
}
