/** Single requests the bench sends itself, to check what the servers answer before it measures them. */
import http from 'node:http';
import http2 from 'node:http2';

export interface Got {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The header lines as they came, in order: name, value, name, value, … (HTTP/2: lower case, pseudo-headers first). */
  rawHeaders: string[];
  body: Buffer;
  /** The ALPN protocol of an HTTPS request ('h2'), '' for plain HTTP. */
  alpn: string;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer;
  agent?: http.Agent;
}

/** One HTTP/1.1 request to 127.0.0.1:port; the body is not decoded (a gzip answer stays gzip). */
export function request(port: number, urlPath: string, o: RequestOptions = {}): Promise<Got> {
  return new Promise((resolve, reject) => {
    const headers = { ...o.headers, ...(o.body === undefined ? {} : { 'content-length': String(o.body.length) }) };
    const req = http.request(
      { host: '127.0.0.1', port, path: urlPath, method: o.method ?? 'GET', headers, agent: o.agent ?? false, timeout: 5000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks), alpn: '' }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${o.method ?? 'GET'} ${urlPath} timed out`)));
    req.on('error', reject);
    req.end(o.body);
  });
}

/** One HTTP/2 GET over TLS, trusting only `ca` (the bench's self-signed certificate). */
export function getH2(port: number, urlPath: string, ca: Buffer): Promise<Got> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { ca, ALPNProtocols: ['h2'] });
    const fail = (err: Error) => {
      session.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(`h2 GET ${urlPath} timed out`)), 5000);
    session.once('error', fail);
    const stream = session.request({ ':path': urlPath });
    let headers: Got['headers'] = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (headers = h));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.once('error', fail);
    stream.on('end', () => {
      clearTimeout(timer);
      const alpn = session.alpnProtocol ?? '';
      session.close();
      // node hands HTTP/2 headers over as an object; its keys keep the order they came in.
      const rawHeaders = Object.entries(headers).flatMap(([name, v]) => (Array.isArray(v) ? v.flatMap((x) => [name, x]) : [name, String(v ?? '')]));
      resolve({ status: Number(headers[':status'] ?? 0), headers, rawHeaders, body: Buffer.concat(chunks), alpn });
    });
  });
}

/** A header's value as one string ('' when absent). */
export function header(res: Got, name: string): string {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v.join(', ') : (v ?? '');
}

/** Checks an answer is 200 with exactly `expected`; the comparison means nothing otherwise. */
export function checkBody(who: string, what: string, res: Got, expected: Buffer | string): void {
  const want = Buffer.isBuffer(expected) ? expected : Buffer.from(expected);
  if (res.status !== 200 || !res.body.equals(want)) {
    const shown = res.body.length <= 200 ? `: ${JSON.stringify(res.body.toString())}` : '';
    throw new Error(`${who} ${what}: status ${res.status}, ${res.body.length} bytes${shown} (expected 200 and ${want.length} bytes)`);
  }
}
