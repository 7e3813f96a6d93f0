/** The logging surface php/ needs; pino's Logger satisfies it. Handed in when things are built. */
export interface LogFn {
  (obj: object, msg?: string): void;
}
export interface Logger {
  readonly error: LogFn;
  readonly warn: LogFn;
  readonly info: LogFn;
  readonly debug: LogFn;
}
