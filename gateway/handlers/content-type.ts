/**
 * Static files' Content-Type, as nginx sends it: the media type of the name's extension alone, and `; charset=X`
 * only when static.charset is set and the type is one of static.charset_types (nginx's charset module). A header
 * charset overrides a page's own `<meta charset>`, so none by default: a legacy ISO-8859-1 page renders as written.
 */
import mime from 'mime-types';
import type { StaticConfig } from '../../config/types.js';

/**
 * Where nginx's mime.types (as Debian ships it in /etc/nginx/mime.types) names another type than mime-types for an
 * extension, nginx's, so a site moved over keeps what its files were sent as (charset_types name nginx's types
 * too). test/content-type.test.ts compares every extension of the local nginx's table when there is one.
 */
const NGINX_TYPES: ReadonlyMap<string, string> = new Map([
  ['js', 'application/javascript'], // mime-types: text/javascript (RFC 9239); nginx's table is frozen
  ['xml', 'text/xml'],
  ['ico', 'image/x-icon'],
  ['bmp', 'image/x-ms-bmp'],
  ['m4a', 'audio/x-m4a'],
  ['ra', 'audio/x-realaudio'],
  ['rar', 'application/x-rar-compressed'],
  ['pdb', 'application/x-pilot'],
  ['prc', 'application/x-pilot'],
  // Downloads either way; nginx says so plainly.
  ['exe', 'application/octet-stream'],
  ['dll', 'application/octet-stream'],
  ['msi', 'application/octet-stream'],
  ['deb', 'application/octet-stream'],
  ['dmg', 'application/octet-stream'],
  ['iso', 'application/octet-stream'],
]);

/** An extension neither table knows, or none: Debian's nginx.conf `default_type`, a download. */
const DEFAULT_TYPE = 'application/octet-stream';

/**
 * The media type of an extension (lower case, without the dot): nginx's where its table has the extension, else
 * mime-types' (nginx would send its default_type: .mjs, .md, .csv, .webmanifest … are not in its table, and a
 * module script sent as application/octet-stream does not run).
 */
export function mediaTypeOf(ext: string): string {
  if (ext === '') return DEFAULT_TYPE;
  return NGINX_TYPES.get(ext) ?? (mime.lookup(ext) || DEFAULT_TYPE);
}

/** The lower-case extension of a file name ('' when it has none). */
function extensionOf(file: string): string {
  const slash = file.lastIndexOf('/');
  const dot = file.lastIndexOf('.');
  return dot > slash ? file.slice(dot + 1).toLowerCase() : '';
}

/** Bound on remembered extensions: names are the client's to choose. */
const MEMO_MAX = 1000;

/** Content-Type headers by extension for one configuration, each made once. */
export class ContentTypes {
  readonly #charset: string;
  readonly #charsetTypes: ReadonlySet<string>;
  readonly #everyType: boolean;
  readonly #memo = new Map<string, string>();

  constructor(cfg: Pick<StaticConfig, 'charset' | 'charset_types'>) {
    this.#charset = cfg.charset;
    // nginx compares types case-insensitively and always includes text/html.
    this.#charsetTypes = new Set(['text/html', ...cfg.charset_types.map((t) => t.toLowerCase())]);
    this.#everyType = this.#charsetTypes.has('*');
  }

  /** The Content-Type header of `file`. */
  of(file: string): string {
    const ext = extensionOf(file);
    let type = this.#memo.get(ext);
    if (type === undefined) {
      type = mediaTypeOf(ext);
      if (this.#charset !== '' && (this.#everyType || this.#charsetTypes.has(type))) type = `${type}; charset=${this.#charset}`;
      if (this.#memo.size < MEMO_MAX) this.#memo.set(ext, type);
    }
    return type;
  }
}
