/**
 * The response cache's key template, written as nginx's fastcgi_cache_key: literal text and variables.
 *
 *   $scheme $request_method $host $request_uri $uri $args $is_args $http_NAME $cookie_NAME
 *
 * `$http_accept_language` is the Accept-Language header, `$cookie_currency` the cookie "currency" (nginx's
 * spellings: header names lower-case with `_` for `-`). Parsed here for config validation; compiled in gateway/.
 */
export type CacheKeyPart =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'scheme' | 'method' | 'host' | 'request_uri' | 'uri' | 'args' | 'is_args' }
  | { readonly kind: 'header'; readonly name: string }
  | { readonly kind: 'cookie'; readonly name: string };

export const DEFAULT_CACHE_KEY = '$scheme$request_method$host$request_uri';

const SIMPLE: Readonly<Record<string, CacheKeyPart['kind']>> = {
  scheme: 'scheme',
  request_method: 'method',
  host: 'host',
  request_uri: 'request_uri',
  uri: 'uri',
  args: 'args',
  is_args: 'is_args',
};

export const CACHE_KEY_VARIABLES = '$scheme, $request_method, $host, $request_uri, $uri, $args, $is_args, $http_NAME, $cookie_NAME';

/** The parts of a key template, or null when it names a variable phpgate does not know. */
export function parseCacheKey(template: string): CacheKeyPart[] | null {
  const parts: CacheKeyPart[] = [];
  // `${name}` as nginx allows, for a variable followed by letters.
  const re = /\$(?:\{([a-z_][a-z0-9_]*)\}|([a-z_][a-z0-9_]*))/gi;
  let last = 0;
  for (let m = re.exec(template); m !== null; m = re.exec(template)) {
    if (m.index > last) parts.push({ kind: 'text', text: template.slice(last, m.index) });
    last = re.lastIndex;
    const name = (m[1] ?? m[2]!).toLowerCase();
    const simple = SIMPLE[name];
    if (simple !== undefined) parts.push({ kind: simple } as CacheKeyPart);
    else if (name.startsWith('http_') && name.length > 5) parts.push({ kind: 'header', name: name.slice(5).replace(/_/g, '-') });
    else if (name.startsWith('cookie_') && name.length > 7) parts.push({ kind: 'cookie', name: name.slice(7) });
    else return null;
  }
  if (template.slice(last).includes('$')) return null;
  if (last < template.length) parts.push({ kind: 'text', text: template.slice(last) });
  return parts;
}
