/**
 * Tokens → a tree of directives, with `include` expanded in place.
 *
 * Where includes are looked for: nginx resolves a relative include against its configuration prefix
 * (/etc/nginx, the importer's `prefix` option). An imported site file usually lives elsewhere (a repository, a
 * copy in /tmp), with its snippets beside it, so a relative include is looked up in the including file's
 * directory first and then under the prefix.
 * Globs (`*`, `?`, `[…]`) expand to the matching files in sorted order; a glob that matches nothing includes
 * nothing, as in nginx, while a missing file named without a glob is an error.
 *
 * nginx's stock include files (fastcgi_params, fastcgi.conf, snippets/fastcgi-php.conf, mime.types …) are not
 * expanded: they hold nginx's own defaults, which phpgate builds in, and reading them from the local /etc/nginx
 * would make the import depend on the machine it runs on. They stay in the tree as `include` directives.
 */
import fs from 'node:fs';
import path from 'node:path';
import { NginxSyntaxError } from './errors.js';
import { tokenize, TokenKind, type Token } from './tokenize.js';

export interface Directive {
  readonly name: string;
  readonly args: readonly string[];
  /** The block's directives, or null for a simple directive ending in `;`. */
  readonly children: readonly Directive[] | null;
  readonly file: string;
  readonly line: number;
}

/** nginx's configuration prefix, where relative includes are resolved when not found beside the including file. */
export const NGINX_CONF_DIR = '/etc/nginx';

/** nginx's compiled-in prefix on Debian: where a relative `root` points. */
export const NGINX_PREFIX = '/usr/share/nginx';

/** Include files shipped with nginx (paths relative to NGINX_CONF_DIR): kept as directives, never read. */
export const STOCK_INCLUDES: ReadonlySet<string> = new Set([
  'fastcgi_params',
  'fastcgi.conf',
  'snippets/fastcgi-php.conf',
  'mime.types',
  'proxy_params',
  'scgi_params',
  'uwsgi_params',
  'koi-utf',
  'koi-win',
  'win-utf',
]);

const MAX_INCLUDE_DEPTH = 16;

/**
 * Reads and parses an nginx configuration file, expanding its includes. `prefix`: nginx's configuration prefix,
 * where relative includes are looked for after the including file's directory (nginx's own default: /etc/nginx).
 */
export function parseNginxFile(file: string, prefix: string = NGINX_CONF_DIR): Directive[] {
  return parseFile(file, [], 0, null, prefix);
}

/** Parses configuration text; includes are resolved relative to `file`'s directory, then `prefix`. */
export function parseNginx(text: string, file: string, prefix: string = NGINX_CONF_DIR): Directive[] {
  return new Parser(tokenize(text, file), file, [path.resolve(file)], 0, prefix).parseBlock(null);
}

/** An include of one of nginx's stock files (`fastcgi_params`, or `/etc/nginx/fastcgi_params` under the prefix). */
export function isStockInclude(arg: string, prefix: string = NGINX_CONF_DIR): boolean {
  return STOCK_INCLUDES.has(stockName(arg, prefix));
}

/** The include's name relative to the prefix (or to /etc/nginx), as STOCK_INCLUDES lists it. */
export function stockName(arg: string, prefix: string = NGINX_CONF_DIR): string {
  for (const dir of [prefix, NGINX_CONF_DIR]) if (arg.startsWith(dir.replace(/\/+$/, '') + '/')) return arg.slice(dir.replace(/\/+$/, '').length + 1);
  return arg;
}

/** Where an include directive stands, for errors about the file it names. */
interface IncludedFrom {
  readonly file: string;
  readonly line: number;
}

function parseFile(file: string, stack: readonly string[], depth: number, from: IncludedFrom | null, prefix: string): Directive[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    // Rethrown located (at the include when there is one): a file nginx could not open either is the user's to fix.
    const why = err instanceof Error ? err.message : String(err);
    throw new NginxSyntaxError(from?.file ?? file, from?.line ?? 0, `cannot read ${file}: ${why}`, { cause: err });
  }
  return new Parser(tokenize(text, file), file, [...stack, path.resolve(file)], depth, prefix).parseBlock(null);
}

class Parser {
  #pos = 0;
  readonly #tokens: readonly Token[];
  readonly #file: string;
  readonly #stack: readonly string[];
  readonly #depth: number;
  readonly #prefix: string;

  constructor(tokens: readonly Token[], file: string, stack: readonly string[], depth: number, prefix: string) {
    this.#tokens = tokens;
    this.#file = file;
    this.#stack = stack;
    this.#depth = depth;
    this.#prefix = prefix;
  }

  /** Directives up to the matching `}` (opened by `open`), or to the end of the file at the top. */
  parseBlock(open: Token | null): Directive[] {
    const out: Directive[] = [];
    for (;;) {
      const t = this.#tokens[this.#pos];
      if (t === undefined) {
        if (open !== null) throw new NginxSyntaxError(open.file, open.line, 'unexpected end of file, expecting "}" (this block is never closed)');
        return out;
      }
      if (t.kind === TokenKind.BlockEnd) {
        if (open === null) throw new NginxSyntaxError(t.file, t.line, 'unexpected "}" (no block to close)');
        this.#pos += 1;
        return out;
      }
      if (t.kind !== TokenKind.Word) throw new NginxSyntaxError(t.file, t.line, `unexpected "${t.text}" (a directive name was expected)`);
      const d = this.#directive();
      if (d.name === 'include' && d.children === null) out.push(...this.#include(d));
      else out.push(d);
    }
  }

  #directive(): Directive {
    const first = this.#tokens[this.#pos]!;
    const args: string[] = [];
    this.#pos += 1;
    for (;;) {
      const t = this.#tokens[this.#pos];
      if (t === undefined) {
        throw new NginxSyntaxError(first.file, first.line, `unexpected end of file, expecting ";" or "}" after "${first.text}"`);
      }
      this.#pos += 1;
      if (t.kind === TokenKind.Word) {
        args.push(t.text);
        continue;
      }
      if (t.kind === TokenKind.End) return { name: first.text, args, children: null, file: first.file, line: first.line };
      if (t.kind === TokenKind.BlockStart) {
        const children = this.parseBlock(t);
        return { name: first.text, args, children, file: first.file, line: first.line };
      }
      // A `}` before the `;`: nginx says the same.
      throw new NginxSyntaxError(t.file, t.line, `unexpected "}" ("${first.text}" is missing its ";")`);
    }
  }

  #include(d: Directive): Directive[] {
    if (d.args.length !== 1) throw new NginxSyntaxError(d.file, d.line, `"include" takes one file name, got ${d.args.length}`);
    const arg = d.args[0]!;
    if (isStockInclude(arg, this.#prefix)) return [d];
    if (this.#depth >= MAX_INCLUDE_DEPTH)
      throw new NginxSyntaxError(d.file, d.line, `includes nested deeper than ${MAX_INCLUDE_DEPTH} (an include cycle?)`);
    const files = resolveInclude(arg, path.dirname(this.#file), this.#prefix);
    if (files === null) {
      throw new NginxSyntaxError(d.file, d.line, `include "${arg}": no such file (looked in ${path.dirname(this.#file)} and ${this.#prefix})`);
    }
    const out: Directive[] = [];
    for (const f of files) {
      if (this.#stack.includes(path.resolve(f)))
        throw new NginxSyntaxError(d.file, d.line, `include "${arg}" includes ${f} again (an include cycle)`);
      out.push(...parseFile(f, this.#stack, this.#depth + 1, d, this.#prefix));
    }
    return out;
  }
}

const GLOB_CHARS = /[*?[]/;

/**
 * The files an include names: a glob's matches (possibly none), or the one file (null when it exists neither
 * beside the including file nor under the prefix).
 */
function resolveInclude(arg: string, baseDir: string, prefix: string): string[] | null {
  const bases = path.isAbsolute(arg) ? [''] : [baseDir, prefix];
  if (!GLOB_CHARS.test(arg)) {
    for (const base of bases) {
      const candidate = base === '' ? arg : path.join(base, arg);
      if (isFile(candidate)) return [candidate];
    }
    return null;
  }
  for (const base of bases) {
    const found = expandGlob(base === '' ? arg : path.join(base, arg));
    if (found.length > 0) return found;
  }
  return [];
}

function isFile(p: string): boolean {
  return fs.statSync(p, { throwIfNoEntry: false })?.isFile() === true;
}

/** glob(3) for include paths: wildcards in any component, sorted, dotfiles only when the pattern starts with a dot. */
function expandGlob(pattern: string): string[] {
  const parts = pattern.split('/');
  let current = [parts[0] === '' ? '/' : parts[0]!];
  for (let i = 1; i < parts.length; i++) {
    const part = parts[i]!;
    if (part === '') continue;
    const next: string[] = [];
    for (const dir of current) {
      if (!GLOB_CHARS.test(part)) {
        next.push(path.join(dir, part));
        continue;
      }
      const re = componentRegExp(part);
      let names: string[];
      try {
        names = fs.readdirSync(dir);
      } catch (err) {
        void err; // a directory that does not exist or cannot be listed matches nothing, as glob(3)
        continue;
      }
      for (const name of names.sort()) {
        if (name.startsWith('.') && !part.startsWith('.')) continue;
        if (re.test(name)) next.push(path.join(dir, name));
      }
    }
    current = next;
  }
  return current.filter(isFile);
}

function componentRegExp(part: string): RegExp {
  let src = '';
  for (let i = 0; i < part.length; i++) {
    const c = part[i]!;
    if (c === '*') src += '.*';
    else if (c === '?') src += '.';
    else if (c === '[') {
      const close = part.indexOf(']', i + 2);
      if (close === -1) src += '\\[';
      else {
        const body = part
          .slice(i + 1, close)
          .replace(/^!/, '^')
          .replace(/\\/g, '\\\\');
        src += `[${body}]`;
        i = close;
      }
    } else src += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${src}$`, 's');
}
