/** php.ini values as php-cgi's `-d` must carry them. */

/** A value the ini syntax reads back as written when unquoted: a plain token (`256M`, `/var/lib/php`, `On`). */
const PLAIN = /^[A-Za-z0-9_./:+@,%-]*$/;
/** An expression of php.ini constants (`E_ALL & ~E_NOTICE`): left unquoted so php.ini's arithmetic applies. */
const EXPRESSION = /^(?=.*[A-Z])[A-Z0-9_\s&|^~!()]+$/;

/**
 * `-d KEY=VALUE` that PHP reads back as VALUE, byte for byte: php-cgi hands `KEY=VALUE` to the ini parser, which
 * cuts an unquoted value at `=`, `;` or `'` (a Redis session.save_path `tcp://h:6379?prefix=x` became
 * `tcp://h:6379?prefix`), evaluates `&|~` and expands `${…}`. Anything but a plain token or an expression of
 * constants is single-quoted (literal in ini), or double-quoted when it holds a `'` (config/ refuses the one value
 * neither keeps). So `E_ALL & ~E_NOTICE` is still an expression and `Off` a boolean, as in php.ini.
 */
export function iniDefine(key: string, value: string): string {
  if (PLAIN.test(value) || EXPRESSION.test(value)) return `${key}=${value}`;
  return value.includes("'") ? `${key}="${value}"` : `${key}='${value}'`;
}
