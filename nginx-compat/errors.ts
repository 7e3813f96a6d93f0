/**
 * The importer's errors. Both carry PG_ERR_CONFIG_INVALID: an nginx file phpgate cannot read, or one that does
 * not say which site to import, is a configuration problem for the user to fix (the CLI exits 2).
 */
import { ErrorCode, PhpgateError } from '../core/errors.js';

/** The nginx file itself is malformed or unreadable: `file:line: what`, as nginx -t reports it. */
export class NginxSyntaxError extends PhpgateError {
  readonly file: string;
  readonly line: number;
  constructor(file: string, line: number, what: string, options?: { cause?: unknown }) {
    super(ErrorCode.ConfigInvalid, line > 0 ? `${file}:${line}: ${what}` : `${file}: ${what}`, options);
    this.file = file;
    this.line = line;
  }
}

/** The file is well formed but cannot be imported as asked (no server block, several and none chosen …). */
export class NginxImportError extends PhpgateError {
  constructor(message: string) {
    super(ErrorCode.ConfigInvalid, message);
  }
}
