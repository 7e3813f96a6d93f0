/**
 * The one Accept-Encoding parser (gateway/http/accept-encoding.ts), case by case, and the two choices made with
 * it: the compression filter's encoder (Compression.negotiate) and the static handler's precompressed sibling
 * (the real StaticFiles behind a bare node server, br before gzip on a tie). The decisions are written in the parser's doc comment; each case below
 * holds one of them. The end-to-end matrices are in compression.test.ts and static.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { DEFAULTS } from '../config/index.js';
import { Compression } from '../gateway/filters/compression.js';
import { StaticFiles } from '../gateway/handlers/static.js';
import { sendError } from '../gateway/http/errors-http.js';
import { Exchange, type ExchangeContext } from '../gateway/http/exchange.js';
import { parseAcceptEncoding, qualityOf, weightOf } from '../gateway/http/accept-encoding.js';
import { DocrootGuard, FileInfoCache } from '../gateway/http/file-cache.js';

interface WeightCase {
  readonly name: string;
  readonly header: string;
  /** Expected weights of br, gzip and a coding the header never names (zstd). */
  readonly br: number;
  readonly gzip: number;
  readonly other: number;
}

const weights: readonly WeightCase[] = [
  // plain lists
  { name: 'a bare coding has weight 1', header: 'gzip', br: 0, gzip: 1, other: 0 },
  { name: 'a browser list: every named coding at 1', header: 'gzip, deflate, br, zstd', br: 1, gzip: 1, other: 1 },
  { name: 'no spaces after commas', header: 'gzip,deflate,br', br: 1, gzip: 1, other: 0 },
  { name: 'an empty header accepts no coding', header: '', br: 0, gzip: 0, other: 0 },
  { name: 'empty list elements are skipped (§5.6.1)', header: ' , ,gzip,, ', br: 0, gzip: 1, other: 0 },
  // valid qvalues (§12.4.2)
  { name: 'q=0.5 is a weight of one half', header: 'gzip;q=0.5', br: 0, gzip: 0.5, other: 0 },
  { name: 'three decimals are allowed', header: 'gzip;q=0.001', br: 0, gzip: 0.001, other: 0 },
  { name: 'q=0. (a dot and no digits) is 0', header: 'gzip;q=0.', br: 0, gzip: 0, other: 0 },
  { name: 'q=1.000 is 1', header: 'gzip;q=1.000', br: 0, gzip: 1, other: 0 },
  { name: 'q=1. is 1', header: 'gzip;q=1.', br: 0, gzip: 1, other: 0 },
  { name: 'q=0.000 refuses', header: 'gzip;q=0.000', br: 0, gzip: 0, other: 0 },
  // malformed qvalues refuse the coding (nginx: "disabled … for any invalid cases")
  { name: 'q=.5 (no leading digit) is malformed and refuses', header: 'gzip;q=.5', br: 0, gzip: 0, other: 0 },
  { name: 'q=1.5 (above 1) is malformed and refuses, not capped at 1', header: 'gzip;q=1.5', br: 0, gzip: 0, other: 0 },
  { name: 'q=1.001 (above 1 by a thousandth) refuses', header: 'gzip;q=1.001', br: 0, gzip: 0, other: 0 },
  { name: 'q=2 refuses', header: 'gzip;q=2', br: 0, gzip: 0, other: 0 },
  { name: 'q=0.0001 (four decimals) is malformed and refuses, not rounded', header: 'gzip;q=0.0001', br: 0, gzip: 0, other: 0 },
  { name: 'q=0.5000 (four decimals) refuses too', header: 'gzip;q=0.5000', br: 0, gzip: 0, other: 0 },
  { name: 'a negative q refuses', header: 'gzip;q=-1', br: 0, gzip: 0, other: 0 },
  { name: 'a word for q refuses', header: 'gzip;q=abc', br: 0, gzip: 0, other: 0 },
  { name: 'an empty q refuses', header: 'gzip;q=', br: 0, gzip: 0, other: 0 },
  { name: 'a quoted q refuses', header: 'gzip;q="0.5"', br: 0, gzip: 0, other: 0 },
  { name: 'exponent notation refuses', header: 'gzip;q=5e-1', br: 0, gzip: 0, other: 0 },
  { name: 'a malformed q on one coding leaves the others alone', header: 'gzip;q=1.5, br', br: 1, gzip: 0, other: 0 },
  // q=0 and *
  { name: 'gzip;q=0 refuses gzip', header: 'gzip;q=0, br', br: 1, gzip: 0, other: 0 },
  { name: '* accepts every coding not named', header: '*', br: 1, gzip: 1, other: 1 },
  { name: '*;q=0 refuses every coding not named', header: '*;q=0', br: 0, gzip: 0, other: 0 },
  { name: 'a named coding wins over a later *;q=0', header: 'gzip, *;q=0', br: 0, gzip: 1, other: 0 },
  { name: 'a named coding wins over an earlier *;q=0', header: '*;q=0, gzip', br: 0, gzip: 1, other: 0 },
  { name: 'a named gzip;q=0 wins over *', header: 'gzip;q=0, *', br: 1, gzip: 0, other: 1 },
  { name: '* with a weight lends it to unnamed codings only', header: 'br;q=0.2, *;q=0.7', br: 0.2, gzip: 0.7, other: 0.7 },
  { name: 'a malformed q on * refuses every unnamed coding', header: '*;q=abc, br', br: 1, gzip: 0, other: 0 },
  // x-gzip (§8.4.1.3)
  { name: 'x-gzip is gzip', header: 'x-gzip', br: 0, gzip: 1, other: 0 },
  { name: 'x-gzip keeps its weight as gzip', header: 'x-gzip;q=0.4', br: 0, gzip: 0.4, other: 0 },
  { name: 'X-GZIP in capitals is gzip', header: 'X-GZIP', br: 0, gzip: 1, other: 0 },
  { name: 'xgzip (no dash) is another coding', header: 'xgzip', br: 0, gzip: 0, other: 0 },
  { name: 'gzipx is another coding (nginx: a prefix is not gzip)', header: 'gzipx', br: 0, gzip: 0, other: 0 },
  // duplicates: first weight wins
  { name: 'a coding named twice keeps its first weight (refused first)', header: 'gzip;q=0, gzip', br: 0, gzip: 0, other: 0 },
  { name: 'a coding named twice keeps its first weight (accepted first)', header: 'gzip, gzip;q=0', br: 0, gzip: 1, other: 0 },
  { name: 'gzip then x-gzip: the first one counts', header: 'gzip;q=0, x-gzip', br: 0, gzip: 0, other: 0 },
  { name: '* named twice keeps its first weight', header: '*;q=0, *', br: 0, gzip: 0, other: 0 },
  // identity
  { name: 'identity alone accepts no coding', header: 'identity', br: 0, gzip: 0, other: 0 },
  { name: 'identity;q=0 with * still accepts the codings', header: 'identity;q=0, *', br: 1, gzip: 1, other: 1 },
  // case
  { name: 'codings are case-insensitive (§8.4.1)', header: 'GZIP, Br', br: 1, gzip: 1, other: 0 },
  { name: 'the q parameter name is case-insensitive', header: 'gzip;Q=0.3', br: 0, gzip: 0.3, other: 0 },
  // spaces and other parameters
  { name: 'spaces around ";" (OWS, §12.4.2)', header: 'gzip ; q=0.6', br: 0, gzip: 0.6, other: 0 },
  { name: 'spaces around "=" are tolerated', header: 'gzip;q = 0.6', br: 0, gzip: 0.6, other: 0 },
  { name: 'tabs around the coding', header: '\tgzip\t;q=0.6\t', br: 0, gzip: 0.6, other: 0 },
  { name: 'a parameter other than q is skipped', header: 'gzip;level=9', br: 0, gzip: 1, other: 0 },
  { name: 'q after another parameter still counts', header: 'gzip;level=9;q=0.2', br: 0, gzip: 0.2, other: 0 },
  { name: 'a parameter without "=" is skipped', header: 'gzip;foo;q=0.2', br: 0, gzip: 0.2, other: 0 },
  { name: 'a second q on one coding is not read', header: 'gzip;q=0.2;q=1', br: 0, gzip: 0.2, other: 0 },
  { name: 'a parameter named like q (qq) is not a weight', header: 'gzip;qq=0', br: 0, gzip: 1, other: 0 },
];

describe('Accept-Encoding weights (RFC 9110 §12.4.2, §12.5.3)', () => {
  for (const c of weights) {
    test(c.name, () => {
      const accepted = parseAcceptEncoding(c.header);
      assert.deepEqual(
        { br: weightOf(accepted, 'br'), gzip: weightOf(accepted, 'gzip'), other: weightOf(accepted, 'zstd') },
        { br: c.br, gzip: c.gzip, other: c.other },
        `Accept-Encoding: ${c.header}`,
      );
      // qualityOf is the same answer from the raw header (what the static handler calls).
      assert.equal(qualityOf(c.header, 'gzip'), c.gzip);
      assert.equal(qualityOf(c.header, 'br'), c.br);
    });
  }

  test('the parsed map keeps the header order, lower-cases names and stores x-gzip as gzip', () => {
    assert.deepEqual(
      [...parseAcceptEncoding('BR;q=0.8, X-Gzip, *;q=0, identity')],
      [
        ['br', 0.8],
        ['gzip', 1],
        ['*', 0],
        ['identity', 1],
      ],
    );
  });
});

interface ChoiceCase {
  readonly name: string;
  readonly header: string;
  /** What both places pick, brotli and gzip both available: the higher weight, br on a tie; null is identity. */
  readonly want: 'br' | 'gzip' | null;
}

const choices: readonly ChoiceCase[] = [
  { name: 'br and gzip alike: br (smaller for the same CPU)', header: 'gzip, deflate, br', want: 'br' },
  { name: 'gzip preferred by weight wins over br', header: 'br;q=0.1, gzip;q=0.9', want: 'gzip' },
  { name: 'br refused: gzip', header: 'br;q=0, gzip', want: 'gzip' },
  { name: 'both refused: identity', header: 'gzip;q=0, br;q=0', want: null },
  { name: '*;q=0.5: br on the tie', header: '*;q=0.5', want: 'br' },
  { name: '*;q=0: identity', header: '*;q=0', want: null },
  { name: 'x-gzip only: gzip', header: 'x-gzip', want: 'gzip' },
  { name: 'gzip;q=1.5 (malformed) alone: identity, not gzip capped at 1', header: 'gzip;q=1.5', want: null },
  { name: 'gzip;q=1.5 beside br;q=0.5: br, the malformed gzip being refused', header: 'gzip;q=1.5, br;q=0.5', want: 'br' },
  { name: 'gzip;q=.5 (malformed) alone: identity', header: 'gzip;q=.5', want: null },
  { name: 'gzip;q=0.0001 (malformed) alone: identity', header: 'gzip;q=0.0001', want: null },
  { name: 'gzip;q=abc (malformed) alone: identity', header: 'gzip;q=abc', want: null },
  { name: 'identity only: identity', header: 'identity', want: null },
  { name: 'deflate only (not offered): identity', header: 'deflate', want: null },
  { name: 'uppercase GZIP: gzip', header: 'GZIP', want: 'gzip' },
];

/**
 * The real StaticFiles over a temp dir holding app.css and both siblings, behind a bare node server (no PHP, no
 * pipeline): what it answers is the precompressed choice.
 */
async function startStatic(): Promise<{ port: number; stop: () => Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-ae-'));
  const file = path.join(dir, 'app.css');
  fs.writeFileSync(file, 'body { margin: 0 }\n');
  fs.writeFileSync(file + '.br', 'br bytes');
  fs.writeFileSync(file + '.gz', 'gz bytes');
  const files = new FileInfoCache();
  const staticFiles = new StaticFiles({
    config: DEFAULTS.static,
    files,
    guard: new DocrootGuard(files, dir, false),
    log: pino({ level: 'silent' }),
  });
  const cx: ExchangeContext = {
    log: pino({ level: 'silent' }),
    errors: { answerError: (req, res, status) => sendError(req, res, status) },
    sendTimeoutMs: 10_000,
    stripPoweredBy: true,
  };
  const server = http.createServer((req, res) => {
    const x = new Exchange(req, res, cx, null, [], null);
    staticFiles.serve(x, x, file, fs.statSync(file), '/app.css');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    stop: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function contentEncoding(port: number, acceptEncoding: string): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/app.css', headers: { 'Accept-Encoding': acceptEncoding }, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.headers['content-encoding']));
      })
      .on('error', reject);
  });
}

describe('one parser, one choice: the compression filter and the precompressed sibling agree', () => {
  const compression = new Compression({ gzip: true, brotli: true, min_bytes: 0, gzip_level: 1, brotli_level: 1 });
  let site: { port: number; stop: () => Promise<void> };
  before(async () => {
    site = await startStatic();
  });
  after(() => site.stop());

  for (const c of choices) {
    test(c.name, async () => {
      assert.equal(compression.negotiate(c.header), c.want, `Compression.negotiate(${JSON.stringify(c.header)})`);
      assert.equal(await contentEncoding(site.port, c.header), c.want ?? undefined, `static sibling for ${JSON.stringify(c.header)}`);
    });
  }

  test('with brotli off, a client preferring br gets gzip, and one accepting only br gets identity', () => {
    const gzipOnly = new Compression({ gzip: true, brotli: false, min_bytes: 0, gzip_level: 1, brotli_level: 1 });
    assert.equal(gzipOnly.negotiate('br, gzip;q=0.5'), 'gzip');
    assert.equal(gzipOnly.negotiate('br'), null);
  });
});
