/**
 * Accept-Encoding (RFC 9110 §12.5.3): which content codings the client takes, and its weight for each. The one
 * parser of the gateway: static files pick a precompressed sibling with it, the compression filter an encoder.
 * Imports nothing of ours, so handlers/ and filters/ can both use it.
 *
 * Decisions (RFC 9110 §8.4.1, §12.4.2, §12.5.3, checked against nginx's ngx_http_gzip_accept_encoding and
 * ngx_http_gzip_quantity):
 *
 *   - Codings are case-insensitive: `GZIP` is gzip. `x-gzip` is gzip (§8.4.1.3: a recipient SHOULD treat them
 *     alike; nginx only looks for `gzip`).
 *   - A weight is `q=` followed by a qvalue exactly as §12.4.2 writes it: "0" ["." 0*3DIGIT] / "1" ["." 0*3("0")].
 *     So `q=0.5`, `q=0.`, `q=1.000` and `Q=0.5` are weights; spaces around `;` and `=` are tolerated (RFC 9110
 *     allows none around `=`, but the meaning is plain).
 *   - A weight outside that grammar refuses the coding (weight 0): `q=.5`, `q=1.5`, `q=2`, `q=0.0001`, `q=-1`,
 *     `q=abc`, `q=`, `q="0.5"`. nginx does the same ("gzip is disabled … for any invalid cases"): when the
 *     client's meaning is unclear, the unencoded answer is the one every client can read. (Capping q=1.5 at 1
 *     would send gzip to a client whose header we could not read.)
 *   - `gzip;q=0` refuses gzip. `*` gives its weight to every coding the header does not name (`*;q=0` refuses
 *     them all); a named coding wins over `*` wherever it stands.
 *   - A coding named twice keeps its first weight (nginx reads the first `gzip` only); `gzip;q=0, x-gzip` is
 *     gzip refused.
 *   - Other parameters are skipped (`gzip;level=9` is gzip at 1); empty list elements (`, ,gzip`) are skipped
 *     (§5.6.1).
 *   - identity is never refused by this module: when no coding is acceptable the unencoded bytes go out, as nginx
 *     sends them (§12.5.3 lets a server disregard `identity;q=0` rather than answer 406).
 */

/** Codings (lower case, `x-gzip` as `gzip`, `*` as itself) and their weights from 0 to 1. */
export type AcceptedCodings = ReadonlyMap<string, number>;

/** §12.4.2's qvalue; anything else is not a weight. */
const QVALUE = /^(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)$/;

/** Every coding the header names, with its weight (see the decisions above). */
export function parseAcceptEncoding(value: string): AcceptedCodings {
  const out = new Map<string, number>();
  for (const element of value.split(',')) {
    const semi = element.indexOf(';');
    let name = (semi === -1 ? element : element.slice(0, semi)).trim().toLowerCase();
    if (name === '') continue;
    if (name === 'x-gzip') name = 'gzip';
    if (out.has(name)) continue;
    let q = 1;
    if (semi !== -1) {
      for (const param of element.slice(semi + 1).split(';')) {
        const eq = param.indexOf('=');
        if (eq === -1 || param.slice(0, eq).trim().toLowerCase() !== 'q') continue;
        const qvalue = param.slice(eq + 1).trim();
        q = QVALUE.test(qvalue) ? Number(qvalue) : 0;
        break;
      }
    }
    out.set(name, q);
  }
  return out;
}

/** The weight of `coding` (lower case): its own, else that of `*`, else 0 (not acceptable). */
export function weightOf(accepted: AcceptedCodings, coding: string): number {
  return accepted.get(coding) ?? accepted.get('*') ?? 0;
}

/** The weight an Accept-Encoding value gives `coding` (lower case); 0 when it is not acceptable. */
export function qualityOf(acceptEncoding: string, coding: string): number {
  return weightOf(parseAcceptEncoding(acceptEncoding), coding);
}
