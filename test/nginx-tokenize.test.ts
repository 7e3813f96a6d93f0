/**
 * nginx-compat/tokenize.ts against ngx_conf_read_token()'s rules, case by case: words and whitespace, quotes,
 * backslash escapes, `#` comments, `$var` / `${var}`, braces inside words and in regexes, what may follow a
 * closing quote, and line numbers. Each row is what nginx itself reads from that text. The directive tree
 * built from the tokens is tested in nginx-import.test.ts.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { NginxSyntaxError } from '../nginx-compat/errors.js';
import { tokenize, TokenKind, type Token } from '../nginx-compat/tokenize.js';

/** A token as a row writes it: punctuation as itself, a word as its text, a quoted word as ["text"]. */
type Written = string | readonly [string];

function written(t: Token): Written {
  if (t.kind !== TokenKind.Word) return t.kind;
  return t.quoted ? [t.text] : t.text;
}

interface Case {
  readonly name: string;
  readonly conf: string;
  readonly want: readonly Written[];
}

const cases: readonly Case[] = [
  // words and whitespace
  { name: 'a directive: words and ";"', conf: 'listen 80;', want: ['listen', '80', ';'] },
  { name: 'tabs, CR and LF all separate words', conf: 'listen\t80\r\n  default_server;\r\n', want: ['listen', '80', 'default_server', ';'] },
  { name: '";" ends a word without a space', conf: 'a b;c d;', want: ['a', 'b', ';', 'c', 'd', ';'] },
  { name: 'an empty file has no tokens', conf: '', want: [] },
  { name: 'a file of comments and blank lines has no tokens', conf: '# one\n\n   # two\n', want: [] },
  { name: 'UTF-8 in a word is kept', conf: 'add_header X café;', want: ['add_header', 'X', 'café', ';'] },
  // blocks
  { name: '"{" and "}" are tokens of their own', conf: 'events {}', want: ['events', '{', '}'] },
  { name: '"{" ends a word without a space', conf: 'http{server{}}', want: ['http', '{', 'server', '{', '}', '}'] },
  { name: 'a "}" inside a word is an ordinary character', conf: 'set $a b}c;', want: ['set', '$a', 'b}c', ';'] },
  { name: 'a "}" right after a word is part of it (nginx needs the space)', conf: 'return 200 x}', want: ['return', '200', 'x}'] },
  // quotes
  { name: 'double quotes make one word of spaces', conf: 'add_header X "a b";', want: ['add_header', 'X', ['a b'], ';'] },
  { name: 'single quotes too', conf: "add_header X 'a b';", want: ['add_header', 'X', ['a b'], ';'] },
  { name: 'an empty quoted string is a word', conf: 'return 200 "";', want: ['return', '200', [''], ';'] },
  { name: '";", "{", "}" and "#" inside quotes are text', conf: 'return 200 "a;b{c}d#e";', want: ['return', '200', ['a;b{c}d#e'], ';'] },
  { name: 'the other quote inside quotes is text', conf: `x "it's" 'say "hi"';`, want: ['x', ["it's"], ['say "hi"'], ';'] },
  { name: 'a quote inside a word is an ordinary character', conf: `x a"b c'd';`, want: ['x', 'a"b', "c'd'", ';'] },
  { name: 'a quoted word may be followed by "{"', conf: 'location "/a" {}', want: ['location', ['/a'], '{', '}'] },
  { name: 'a quoted word may be followed by ")" (if conditions)', conf: `if ($a = 'b') {}`, want: ['if', '($a', '=', ['b'], ')', '{', '}'] },
  { name: 'a quoted string may span lines', conf: 'x "a\nb";', want: ['x', ['a\nb'], ';'] },
  // escapes
  { name: '\\" \\\' and \\\\ lose the backslash in quotes', conf: String.raw`x "a\"b" 'c\'d' "e\\f";`, want: ['x', ['a"b'], ["c'd"], ['e\\f'], ';'] },
  { name: '\\t \\r \\n become tab, CR and LF', conf: String.raw`x "a\tb\rc\nd";`, want: ['x', ['a\tb\rc\nd'], ';'] },
  {
    name: 'any other escape is kept as written (regexes arrive intact)',
    conf: String.raw`location ~ \.php$ {}`,
    want: ['location', '~', '\\.php$', '{', '}'],
  },
  { name: '\\d in a quoted regex is kept as written', conf: String.raw`rewrite "^/(\d+)$" /x;`, want: ['rewrite', ['^/(\\d+)$'], '/x', ';'] },
  { name: 'an escaped space joins two words and keeps the backslash', conf: String.raw`x a\ b;`, want: ['x', 'a\\ b', ';'] },
  { name: 'an escaped ";" stays in the word, backslash and all', conf: String.raw`x a\;b;`, want: ['x', 'a\\;b', ';'] },
  { name: 'an escaped quote at the start of a word does not open a string', conf: String.raw`x \"a b;`, want: ['x', '"a', 'b', ';'] },
  // comments
  { name: '"#" at the start of a token comments out the rest of the line', conf: 'listen 80; # a ; { }\nx;', want: ['listen', '80', ';', 'x', ';'] },
  { name: '"#" inside a word is text', conf: 'return 200 a#b;', want: ['return', '200', 'a#b', ';'] },
  { name: 'a comment right after ";" without a space', conf: 'a;#b\nc;', want: ['a', ';', 'c', ';'] },
  { name: 'a comment at the end of the file without a newline', conf: 'a; # end', want: ['a', ';'] },
  // variables
  { name: '$var stays as text', conf: 'root /srv/$host;', want: ['root', '/srv/$host', ';'] },
  { name: '${var} stays as text: "{" right after "$" belongs to the word', conf: 'root /srv/${host}x;', want: ['root', '/srv/${host}x', ';'] },
  { name: '${var} at the start of a word', conf: 'set $a ${b};', want: ['set', '$a', '${b}', ';'] },
  { name: '"{" after a variable name (not right after "$") opens a block', conf: 'if $a{}', want: ['if', '$a', '{', '}'] },
  { name: 'an escaped "$" is not a variable: the "{" after it opens a block', conf: String.raw`x a\${b};`, want: ['x', 'a\\$', '{', 'b}', ';'] },
  { name: '"$$" then "{": the second "$" starts a variable', conf: 'x $${a};', want: ['x', '$${a}', ';'] },
  { name: 'every "{" right after "$" belongs to the word, as in nginx', conf: 'x ${{a};', want: ['x', '${{a}', ';'] },
  // braces in regexes
  { name: 'a quoted regex keeps its braces', conf: 'location ~ "^/a{2,3}$" {}', want: ['location', '~', ['^/a{2,3}$'], '{', '}'] },
  {
    name: 'an unquoted regex brace opens a block, as in nginx (such regexes must be quoted)',
    conf: 'location ~ ^/a{2}$ {}',
    want: ['location', '~', '^/a', '{', '2}$', '{', '}'],
  },
  {
    name: 'escaped braces in an unquoted regex stay in the word',
    conf: String.raw`location ~ ^/a\{2\}$ {}`,
    want: ['location', '~', '^/a\\{2\\}$', '{', '}'],
  },
  { name: 'a regex with ${} from a variable-like "$" keeps its brace', conf: 'location ~ ^/x${y} {}', want: ['location', '~', '^/x${y}', '{', '}'] },
];

describe('nginx tokenizer (ngx_conf_read_token)', () => {
  for (const c of cases) {
    test(c.name, () => {
      assert.deepEqual(tokenize(c.conf, 't.conf').map(written), c.want, JSON.stringify(c.conf));
    });
  }
});

interface LineCase {
  readonly name: string;
  readonly conf: string;
  /** [token text, line] for every token. */
  readonly want: ReadonlyArray<readonly [string, number]>;
}

const lines: readonly LineCase[] = [
  {
    name: 'each token carries the line it starts on',
    conf: 'a 1;\nb 2;\n',
    want: [
      ['a', 1],
      ['1', 1],
      [';', 1],
      ['b', 2],
      ['2', 2],
      [';', 2],
    ],
  },
  {
    name: 'a quoted string spanning lines is on its first line; the next token is counted past it',
    conf: 'x "a\nb\nc";\ny;',
    want: [
      ['x', 1],
      ['a\nb\nc', 1],
      [';', 3],
      ['y', 4],
      [';', 4],
    ],
  },
  {
    name: 'an escaped newline in a word counts as a line',
    conf: 'x a\\\nb;\ny;',
    want: [
      ['x', 1],
      ['a\\\nb', 1],
      [';', 2],
      ['y', 3],
      [';', 3],
    ],
  },
  {
    name: 'CRLF line ends count once',
    conf: 'a;\r\nb;\r\n',
    want: [
      ['a', 1],
      [';', 1],
      ['b', 2],
      [';', 2],
    ],
  },
  {
    name: 'comment lines count',
    conf: '# 1\n# 2\nz;',
    want: [
      ['z', 3],
      [';', 3],
    ],
  },
];

describe('nginx tokenizer: line numbers', () => {
  for (const c of lines) {
    test(c.name, () => {
      assert.deepEqual(
        tokenize(c.conf, 'l.conf').map((t) => [t.text, t.line]),
        c.want,
      );
    });
  }
});

interface ErrorCase {
  readonly name: string;
  readonly conf: string;
  readonly message: RegExp;
  readonly line: number;
}

const errors: readonly ErrorCase[] = [
  { name: 'an unterminated double quote, at the line it opened', conf: 'a;\nx "never\n\n', message: /unterminated double-quoted string/, line: 2 },
  { name: 'an unterminated single quote', conf: "x 'never;", message: /unterminated single-quoted string/, line: 1 },
  { name: 'a word glued to a closing quote', conf: 'x "a"b;', message: /unexpected "b" after a quoted string/, line: 1 },
  { name: 'a "}" glued to a closing quote (nginx: unexpected "}")', conf: 'x "a"}', message: /unexpected "}" after a quoted string/, line: 1 },
  { name: 'a "#" glued to a closing quote', conf: 'x "a"#c\n', message: /unexpected "#" after a quoted string/, line: 1 },
  { name: 'a quote glued to a closing quote', conf: `x "a"'b';`, message: /unexpected "'" after a quoted string/, line: 1 },
];

describe('nginx tokenizer: syntax errors name the file and line', () => {
  for (const c of errors) {
    test(c.name, () => {
      assert.throws(
        () => tokenize(c.conf, 'e.conf'),
        (err: unknown) => {
          assert.ok(err instanceof NginxSyntaxError, String(err));
          assert.match(err.message, c.message);
          assert.equal(err.file, 'e.conf');
          assert.equal(err.line, c.line);
          return true;
        },
      );
    });
  }
});
