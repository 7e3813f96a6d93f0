/**
 * One HTTP/2 request on a fresh connection, reporting how the server ended it, for tests of refusals below the HTTP
 * layer: a status and body when it answered, else the stream's reset code and the connection's GOAWAY.
 *
 * `acknowledged`: the request is sent only once the server's SETTINGS arrived (and node's client acknowledged them
 * first); without it the request goes out with the connection preface, before the server's SETTINGS are known, as a
 * browser's first request does.
 */
import http2 from 'node:http2';

export interface H2Outcome {
  /** The response's :status, or 0 when none came. */
  status: number;
  body: string;
  /** The stream's RST_STREAM code (node sets the GOAWAY's code on streams a GOAWAY ended). */
  rstCode: number;
  /** The GOAWAY the server sent, if any. */
  goaway: { code: number; lastStreamId: number } | null;
  /** The connection is gone once the stream ended (node's client ends it itself on a GOAWAY with an error code). */
  connectionEnded: boolean;
}

export async function h2Probe(port: number, headers: http2.OutgoingHttpHeaders, opts: { acknowledged?: boolean } = {}): Promise<H2Outcome> {
  // Header blocks past node's default 64 KB are the server's to refuse, not the client's.
  const session = http2.connect(`https://localhost:${port}`, { rejectUnauthorized: false, maxSendHeaderBlockLength: 1 << 20 });
  let goaway: H2Outcome['goaway'] = null;
  session.on('goaway', (code: number, lastStreamId: number) => (goaway ??= { code, lastStreamId }));
  session.on('error', () => undefined); // a GOAWAY with an error code ends the session with that error: reported above
  try {
    if (opts.acknowledged === true) {
      await new Promise<void>((resolve, reject) => {
        session.once('remoteSettings', () => resolve());
        session.once('error', reject);
      });
    }
    const stream = session.request({ ':path': '/', ...headers });
    let status = 0;
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', () => undefined); // the reset code is the outcome
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no end of the stream within 10 s')), 10_000);
      stream.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    // A GOAWAY may be read in the same turn as the stream's end: let node report it.
    await new Promise((r) => setImmediate(r));
    return {
      status,
      body: Buffer.concat(chunks).toString('latin1'),
      rstCode: stream.rstCode ?? 0,
      goaway,
      connectionEnded: session.destroyed || session.closed,
    };
  } finally {
    session.destroy();
  }
}

/**
 * The size of the header list node's client sends for `headers` on a GET, as HTTP/2 counts it (name + value + 32 per
 * field, pseudo-headers included): node's client adds :method, :scheme and :authority.
 */
export function sentHeaderListSize(port: number, headers: Record<string, string>): number {
  const all: Record<string, string> = { ':method': 'GET', ':authority': `localhost:${port}`, ':scheme': 'https', ':path': '/', ...headers };
  let size = 0;
  for (const [name, value] of Object.entries(all)) size += name.length + value.length + 32;
  return size;
}
