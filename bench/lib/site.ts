/**
 * The site every server under test serves: a temp docroot with the PHP scripts of bench/site/ and the files made
 * here (a small CSS file, 1 MB of random bytes, a ~50 KB HTML page), plus the request bodies of the POST cases in
 * a directory beside it (wrk reads them through bench/lua/body.lua; the bench sends the same bytes to check).
 */
import { createHash, randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPTS = fileURLToPath(new URL('../site/', import.meta.url));
export const LUA_DIR = fileURLToPath(new URL('../lua/', import.meta.url));

const SMALL_CSS_BYTES = 2700;
const BIG_BYTES = 1024 * 1024;
const PAGE_BYTES = 50 * 1024;
const UPLOAD_BYTES = 100 * 1024;
const BOUNDARY = '----phpgateBenchBoundary7MA4YWxkTrZu0gW';

/** A request body on disk: what wrk's body.lua sends, and what the bench sends to check the answers first. */
export interface Body {
  method: 'POST';
  contentType: string;
  file: string;
  bytes: Buffer;
}

export interface Site {
  root: string;
  docroot: string;
  /** Static files by URL path, with their exact bytes. */
  files: Readonly<Record<string, Buffer>>;
  /** The JSON order for /json.php (about 1 KB). */
  json: Body;
  /** A multipart form with a 100 KB file for /upload.php, and the answer upload.php must give for it. */
  upload: Body & { expected: string };
  remove(): Promise<void>;
}

/** ~2.7 KB of plausible CSS, exactly SMALL_CSS_BYTES long. */
function smallCss(): string {
  let css = '';
  for (let i = 0; css.length < SMALL_CSS_BYTES - 200; i++) {
    css += `.card-${i} { margin: 0 auto; padding: ${i % 7}px ${i % 5}px; color: #${(0x123456 + i * 4099).toString(16).slice(-6)}; }\n`;
  }
  const pad = SMALL_CSS_BYTES - css.length - '/*  */\n'.length;
  return `${css}/* ${'-'.repeat(pad)} */\n`;
}

/** A small seeded generator (mulberry32): the same page on every run. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  'the of and to in is that for it as was with be by on not he this are or his from at which but have an they you ' +
  'were her she there been one all we their has would when if so no will more what out up into can said its about ' +
  'garden kitchen window morning river bread market season letter village station winter summer journey harbour ' +
  'lantern orchard pattern message library evening coffee bicycle mountain weather meadow neighbour recipe chapter'
).split(' ');

/** A news-site article page of about PAGE_BYTES: navigation, headings, paragraphs with links, lists, a footer. */
function page50k(): string {
  const rnd = seeded(50);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
  const sentence = (): string => {
    const n = 8 + Math.floor(rnd() * 14);
    const w = Array.from({ length: n }, () => pick(WORDS));
    if (rnd() < 0.3) w[Math.floor(rnd() * n)] = `<a href="/topic/${pick(WORDS)}">${pick(WORDS)} ${pick(WORDS)}</a>`;
    return `${w.join(' ').replace(/^./, (c) => c.toUpperCase())}.`;
  };
  const head = [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
    '<title>The Valley Courier — local news</title><link rel="stylesheet" href="/small.css"></head>',
    '<body>',
    `<header class="site-header"><nav class="main-nav">${WORDS.slice(50, 62)
      .map((w) => `<a class="nav-link" href="/section/${w}">${w}</a>`)
      .join('')}</nav></header>`,
    '<main class="content">',
  ].join('\n');
  const foot = '</main>\n<footer class="site-footer"><p>© The Valley Courier</p></footer>\n</body>\n</html>\n';
  const parts: string[] = [];
  let size = head.length + foot.length;
  for (let i = 1; size < PAGE_BYTES; i++) {
    const paragraphs = Array.from(
      { length: 3 + Math.floor(rnd() * 3) },
      () => `<p>${Array.from({ length: 3 + Math.floor(rnd() * 4) }, sentence).join(' ')}</p>`,
    );
    const list = rnd() < 0.4 ? `\n<ul class="facts">${Array.from({ length: 4 }, () => `<li>${sentence()}</li>`).join('')}</ul>` : '';
    const article = `<article class="story" id="story-${i}">\n<h2 class="story-title"><a href="/story/${i}">${sentence()}</a></h2>\n${paragraphs.join('\n')}${list}\n</article>`;
    parts.push(article);
    size += article.length + 1;
  }
  return `${head}\n${parts.join('\n')}\n${foot}`;
}

function jsonOrder(): string {
  const items = Array.from({ length: 12 }, (_, i) => ({
    sku: `SKU-${1000 + i * 37}`,
    name: `Item number ${i + 1}`,
    qty: 1 + (i % 4),
    price: 3.5 + i * 2.25,
  }));
  return JSON.stringify({
    id: 'A-20931',
    customer: { email: 'ann@example.com', name: 'Ann Example', country: 'DE' },
    items,
    note: 'leave at the door',
  });
}

function multipart(file: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(
      `--${BOUNDARY}\r\nContent-Disposition: form-data; name="title"\r\n\r\nholiday\r\n` +
        `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="photo.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`,
    ),
    file,
    Buffer.from(`\r\n--${BOUNDARY}--\r\n`),
  ]);
}

export async function makeSite(): Promise<Site> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'phpgate-bench-site-'));
  const docroot = path.join(root, 'docroot');
  const bodies = path.join(root, 'bodies');
  await Promise.all([mkdir(docroot), mkdir(bodies)]);
  for (const name of (await readdir(SCRIPTS)).filter((n) => n.endsWith('.php'))) await copyFile(path.join(SCRIPTS, name), path.join(docroot, name));

  const files: Record<string, Buffer> = {
    '/small.css': Buffer.from(smallCss()),
    '/big.bin': randomBytes(BIG_BYTES),
    '/page50k.html': Buffer.from(page50k()),
  };
  for (const [urlPath, bytes] of Object.entries(files)) await writeFile(path.join(docroot, urlPath), bytes);

  const photo = randomBytes(UPLOAD_BYTES);
  const json: Body = { method: 'POST', contentType: 'application/json', file: path.join(bodies, 'order.json'), bytes: Buffer.from(jsonOrder()) };
  const upload = {
    method: 'POST' as const,
    contentType: `multipart/form-data; boundary=${BOUNDARY}`,
    file: path.join(bodies, 'upload.multipart'),
    bytes: multipart(photo),
    expected: JSON.stringify({ title: 'holiday', name: 'photo.jpg', size: UPLOAD_BYTES, md5: createHash('md5').update(photo).digest('hex') }),
  };
  await writeFile(json.file, json.bytes);
  await writeFile(upload.file, upload.bytes);
  return { root, docroot, files, json, upload, remove: () => rm(root, { recursive: true, force: true }) };
}
