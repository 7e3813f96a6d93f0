/** nginx's value syntaxes: times (`30s`, `5m`, `1h30m`, `500ms`), sizes (`64m`, `512k`), `expires` values. */

const TIME_UNITS_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
  M: 30 * 86_400_000,
  y: 365 * 86_400_000,
};

/** An nginx time in milliseconds (a bare number is seconds), or null when it is not one. */
export function parseTime(text: string): number | null {
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const re = /(\d+)(ms|s|m|h|d|w|M|y)/gy;
  let total = 0;
  let consumed = 0;
  for (const m of text.matchAll(re)) {
    total += Number(m[1]) * TIME_UNITS_MS[m[2]!]!;
    consumed += m[0].length;
  }
  return consumed === text.length && consumed > 0 ? total : null;
}

const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** An nginx size in bytes (`k`, `m`, `g`, either case; a bare number is bytes), or null. */
export function parseSize(text: string): number | null {
  const m = /^(\d+)([kKmMgG]?)$/.exec(text);
  return m === null ? null : Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!;
}

export const MB = 1024 * 1024;

/** A year: what `expires max` becomes (nginx writes ten years; RFC 9111 caches treat anything past a year alike). */
const ONE_YEAR_S = 31_536_000;

export type ExpiresValue = { readonly value: string } | { readonly off: true } | { readonly unsupported: string };

/** `expires` → the Cache-Control value it stands for. */
export function expiresToCacheControl(args: readonly string[]): ExpiresValue {
  if (args.length !== 1) return { unsupported: 'expires with "modified" or a time of day' };
  const a = args[0]!;
  if (a === 'off') return { off: true };
  if (a === 'max') return { value: `public, max-age=${ONE_YEAR_S}` };
  if (a === 'epoch') return { value: 'no-cache' };
  if (a.startsWith('@')) return { unsupported: 'expires at a time of day' };
  const negative = a.startsWith('-');
  const ms = parseTime(negative || a.startsWith('+') ? a.slice(1) : a);
  if (ms === null) return { unsupported: `"${a}" is not an nginx time` };
  if (negative || ms === 0) return { value: 'no-cache' };
  return { value: `max-age=${Math.floor(ms / 1000)}` };
}
