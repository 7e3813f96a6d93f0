/** Configuration errors: every problem found in a file, each located, thrown together as one ConfigError. */
import { ErrorCode, PhpgateError } from '../core/errors.js';

/** One configuration problem, located in its file. */
export interface ConfigIssue {
  file: string;
  line: number; // 1-based; 0 when the problem has no place in the file (env, flag)
  col: number;
  message: string;
}

export class ConfigError extends PhpgateError {
  readonly issues: readonly ConfigIssue[];
  constructor(issues: readonly ConfigIssue[]) {
    super(ErrorCode.ConfigInvalid, issues.map(formatIssue).join('\n'));
    this.issues = issues;
  }
}

export function formatIssue(i: ConfigIssue): string {
  return i.line > 0 ? `${i.file}:${i.line}:${i.col}: ${i.message}` : `${i.file}: ${i.message}`;
}
