/**
 * The local nginx's MIME table (Debian's /etc/nginx/mime.types, nginx's own conf/mime.types), read for tests that
 * compare phpgate's Content-Type with nginx's; null when nginx is not installed.
 */
import fs from 'node:fs';

export const NGINX_MIME_TYPES = '/etc/nginx/mime.types';

/** Extension (lower case) → media type, as `types { TYPE ext ext …; }` lists them; null without the file. */
export function nginxMimeTypes(file = NGINX_MIME_TYPES): Map<string, string> | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  const body = text.replace(/#.*$/gm, '');
  const open = body.indexOf('{');
  const close = body.lastIndexOf('}');
  if (open < 0 || close < open) throw new Error(`${file}: no types { … } block`);
  const map = new Map<string, string>();
  for (const stmt of body.slice(open + 1, close).split(';')) {
    const [type, ...exts] = stmt.trim().split(/\s+/);
    if (type === undefined || type === '') continue;
    // A later type for the same extension replaces the earlier one (nginx warns "duplicate extension").
    for (const ext of exts) map.set(ext.toLowerCase(), type);
  }
  return map;
}
