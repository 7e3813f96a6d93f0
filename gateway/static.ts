/**
 * Static files, the simple way until the static-file work lands: GET/HEAD only (405 otherwise, as nginx),
 * MIME type from mime-types, Last-Modified and an nginx-style ETag with 304s, streamed with backpressure.
 */
import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import mime from 'mime-types';
import { sendError } from './errors-http.js';

export function serveStatic(req: IncomingMessage, res: ServerResponse, file: string, st: fs.Stats): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendError(req, res, 405, { Allow: 'GET, HEAD' });
    return;
  }
  // nginx's ETag: hex mtime (seconds) and hex size.
  const etag = `"${Math.floor(st.mtimeMs / 1000).toString(16)}-${st.size.toString(16)}"`;
  const lastModified = st.mtime.toUTCString();
  const type = mime.contentType(mime.lookup(file) || 'application/octet-stream') || 'application/octet-stream';
  const inm = req.headers['if-none-match'];
  const ims = req.headers['if-modified-since'];
  const notModified = inm !== undefined
    ? inm.split(',').some((t) => t.trim() === etag || t.trim() === '*' || t.trim() === 'W/' + etag)
    : ims !== undefined && Date.parse(ims) >= Math.floor(st.mtimeMs / 1000) * 1000;
  const headers = {
    'Content-Type': type,
    'Last-Modified': lastModified,
    ETag: etag,
    'X-Content-Type-Options': 'nosniff',
  };
  if (notModified) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  res.writeHead(200, { ...headers, 'Content-Length': st.size });
  if (req.method === 'HEAD' || st.size === 0) {
    res.end();
    return;
  }
  const stream = fs.createReadStream(file);
  stream.on('error', (err) => {
    // Vanished or unreadable between stat and open: the status line is out, so cut the connection.
    res.destroy(err);
  });
  res.once('close', () => stream.destroy());
  stream.pipe(res);
}
