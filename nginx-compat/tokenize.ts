/**
 * nginx's configuration grammar, token by token, as ngx_conf_read_token() reads it:
 *
 *   - words are separated by whitespace, `;` and `{`; a `}` only ends a block at the start of a token
 *     (inside a word it is an ordinary character, which is how `${var}` survives);
 *   - `{` right after `$` belongs to the word (`${var}`), anywhere else it opens a block;
 *   - `"…"` and `'…'` quote a word (a quote only opens a string at the start of a token, and a closing quote
 *     must be followed by whitespace, `;`, `{` or `)`);
 *   - a backslash makes the next character ordinary; `\"` `\'` `\\` lose the backslash, `\t` `\r` `\n` become
 *     tab, CR, LF, and any other pair is kept as written (so regexes such as `\.php$` arrive intact);
 *   - `#` starts a comment to the end of the line, but only at the start of a token (`a#b` is one word).
 *
 * `$var` and `${var}` are kept as text: variables mean something only to the directive that takes them.
 */
import { NginxSyntaxError } from './errors.js';

export const TokenKind = {
  Word: 'word',
  BlockStart: '{',
  BlockEnd: '}',
  End: ';',
} as const;
export type TokenKind = (typeof TokenKind)[keyof typeof TokenKind];

export interface Token {
  readonly kind: TokenKind;
  /** The word with escapes resolved; for punctuation, the character itself. */
  readonly text: string;
  /** Whether the word was written in quotes ("" is only possible quoted). */
  readonly quoted: boolean;
  readonly file: string;
  /** 1-based line where the token starts. */
  readonly line: number;
}

const SPACE = new Set([' ', '\t', '\r', '\n']);

export function tokenize(text: string, file: string): Token[] {
  const tokens: Token[] = [];
  let line = 1;
  let i = 0;
  const n = text.length;
  const push = (kind: TokenKind, value: string, quoted: boolean, at: number): void => {
    tokens.push({ kind, text: value, quoted, file, line: at });
  };

  while (i < n) {
    const ch = text[i]!;
    if (ch === '\n') {
      line += 1;
      i += 1;
      continue;
    }
    if (SPACE.has(ch)) {
      i += 1;
      continue;
    }
    if (ch === '#') {
      while (i < n && text[i] !== '\n') i += 1;
      continue;
    }
    if (ch === ';' || ch === '{' || ch === '}') {
      push(ch === ';' ? TokenKind.End : ch === '{' ? TokenKind.BlockStart : TokenKind.BlockEnd, ch, false, line);
      i += 1;
      continue;
    }
    if (ch === '"' || ch === "'") {
      const start = line;
      let value = '';
      i += 1;
      for (;;) {
        if (i >= n) throw new NginxSyntaxError(file, start, `unterminated ${ch === '"' ? 'double' : 'single'}-quoted string`);
        const c = text[i]!;
        if (c === ch) {
          i += 1;
          break;
        }
        if (c === '\\' && i + 1 < n) {
          const next = text[i + 1]!;
          if (next === '\n') line += 1;
          value += unescape(next);
          i += 2;
          continue;
        }
        if (c === '\n') line += 1;
        value += c;
        i += 1;
      }
      const after = text[i];
      // As nginx: a `)` may follow (an `if` condition: `if ($host = 'a')`) and starts the next word.
      if (after !== undefined && !SPACE.has(after) && after !== ';' && after !== '{' && after !== ')') {
        throw new NginxSyntaxError(file, line, `unexpected "${after}" after a quoted string (missing space?)`);
      }
      push(TokenKind.Word, value, true, start);
      continue;
    }
    // An unquoted word: runs to whitespace, `;` or a `{` that does not follow `$`.
    const start = line;
    let value = '';
    // nginx's `variable`: the last character read was a `$` as written. An escaped `\$` is not one (its `{` opens a
    // block), and a `{` keeps it set (`${{` stays in the word).
    let variable = false;
    while (i < n) {
      const c = text[i]!;
      if (c === '\\' && i + 1 < n) {
        const next = text[i + 1]!;
        if (next === '\n') line += 1;
        value += unescape(next);
        i += 2;
        variable = false;
        continue;
      }
      if (SPACE.has(c) || c === ';') break;
      if (c === '{' && !variable) break;
      if (c !== '{') variable = c === '$';
      value += c;
      i += 1;
    }
    push(TokenKind.Word, value, false, start);
  }
  return tokens;
}

/** What a backslash pair becomes (ngx_conf_read_token's copy loop). */
function unescape(next: string): string {
  switch (next) {
    case '"':
    case "'":
    case '\\':
      return next;
    case 't':
      return '\t';
    case 'r':
      return '\r';
    case 'n':
      return '\n';
    default:
      return '\\' + next;
  }
}
