/**
 * Request bodies cannot be used to exhaust the gateway's memory or CPU (server.limits.body_memory_mb), through a
 * real gateway in a child process of its own (test/support/gateway-child.ts) with real php-cgi, so its memory and
 * CPU are measured apart from the clients'. What is measured: `held`, the gateway's heapUsed + external (external
 * includes every Buffer's memory) after two full garbage collections, and its CPU time (process.cpuUsage). RSS is
 * printed too but not asserted: the allocator may keep freed pages mapped.
 *
 * 1. Many slow HTTP/1.1 uploads (a large declared Content-Length, 64 KiB sent, then a byte a second): held stays
 *    under baseline + body_memory_mb + a per-connection allowance, and returns near baseline once they close.
 * 2. HTTP/2: 10 connections × 128 streams, each sending 64 KiB of a larger body: the same bound.
 * 3. 4 connections sending 1-byte chunks (chunked encoding) for 5 s: refused with 400 and closed, the gateway's
 *    CPU stops growing within about a second after, and its memory stays bounded meanwhile. Chunks of 20 bytes are
 *    no flood: such a body reaches PHP whole.
 * 4. A multipart upload of a few MB still reaches PHP whole (test/compat/differential.test.ts covers the rest).
 *
 * The number of slow uploads is 4,000, or fewer when the open-file limit is lower: every upload costs the test one
 * descriptor and the gateway up to two (its socket and a spool file).
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureFixtureSite } from './fixtures/site.js';
import { selfSigned } from './support/certs.js';
import { gatewayProcess, type GatewayProcess, type Usage } from './support/gateway-child.js';

const MiB = 1024 * 1024;
const BODY_MEMORY_MB = 32;
/**
 * What node itself holds per open connection and request (socket, parser, request and response objects, timers: about
 * 9 KiB on an idle machine), plus, for an upload paused while its batch is written, the chunk node read last (a slice
 * that keeps its read buffer alive): on a busy machine, with thousands of batches waiting for the disk, ~20 KiB.
 */
const PER_CONNECTION = 32 * 1024;
/** Near baseline again: what may stay (caches that warmed up, the allocator's pools). */
const RETURN_SLACK = 8 * MiB;
const SENT_PER_UPLOAD = 64 * 1024;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-bodymem-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const docroot = ensureFixtureSite();

const openFileLimit = (): number => {
  const line = fs
    .readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'));
  const soft = Number(line?.split(/\s+/)[3]);
  return Number.isFinite(soft) ? soft : 1024;
};
const SLOW_UPLOADS = Math.min(4000, Math.floor((openFileLimit() - 400) / 2));

const yaml = (extra = ''): string => `
server:
  max_body_mb: 256
  timeouts: { body_ms: 20000, keepalive_ms: 20000 }
  limits: { body_memory_mb: ${BODY_MEMORY_MB} }
${extra}
php:
  worker_count: 2
  ini: { upload_max_filesize: 16M, post_max_size: 300M }
`;

const mb = (n: number): string => `${(n / MiB).toFixed(1)} MB`;
const show = (what: string, u: Usage): void =>
  console.log(`# ${what}: held ${mb(u.held)} (heap ${mb(u.heapUsed)}, external ${mb(u.external)}), rss ${mb(u.rss)}, cpu ${Math.round(u.cpuMs)} ms`);

/** Polls until `cond` holds for the gateway's usage, or the time is up; returns the last usage. */
async function usageWhen(g: GatewayProcess, cond: (u: Usage) => boolean, timeoutMs: number): Promise<Usage> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const u = await g.usage();
    if (cond(u) || Date.now() > end) return u;
    await sleep(250);
  }
}

/** Opens `n` HTTP/1.1 uploads that send their head and `sent` bytes of a 100 MB body, then a byte a second. */
async function slowUploads(port: number, n: number, sent: number): Promise<{ sockets: net.Socket[]; stop: () => void }> {
  const sockets: net.Socket[] = [];
  const head = `POST /dump.php HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\nContent-Length: ${100 * MiB}\r\n\r\n`;
  const first = Buffer.concat([Buffer.from(head), Buffer.alloc(sent, 0x61)]);
  for (let i = 0; i < n; i += 200) {
    await Promise.all(
      Array.from({ length: Math.min(200, n - i) }, () => {
        return new Promise<void>((resolve, reject) => {
          const s = net.connect(port, '127.0.0.1', () => {
            s.write(first, () => resolve());
          });
          s.on('error', reject);
          sockets.push(s);
        });
      }),
    );
  }
  const trickle = setInterval(() => {
    for (const s of sockets) if (!s.destroyed) s.write('b');
  }, 1000);
  return {
    sockets,
    stop: () => {
      clearInterval(trickle);
      for (const s of sockets) s.destroy();
    },
  };
}

describe('request bodies and the gateway’s memory (server.limits.body_memory_mb)', { timeout: 120_000 }, () => {
  test(`${SLOW_UPLOADS} slow HTTP/1.1 uploads stay under the bound, and memory returns once they close`, async () => {
    const g = await gatewayProcess(yaml(), { docroot });
    try {
      const base = await g.usage();
      show('baseline', base);
      const up = await slowUploads(g.port, SLOW_UPLOADS, SENT_PER_UPLOAD);
      const bound = base.held + BODY_MEMORY_MB * MiB + SLOW_UPLOADS * PER_CONNECTION;
      // Until every byte sent has been read (the gateway's CPU goes quiet: on a busy machine that takes longer than on
      // an idle one, and chunks still in flight are not what the uploads hold).
      let open = await g.usage();
      for (let waited = 0; waited < 20_000; waited += 500) {
        await sleep(500);
        const next = await g.usage();
        const quiet = next.cpuMs - open.cpuMs < 50;
        open = next;
        if (quiet && waited >= 1500) break;
      }
      show(`${SLOW_UPLOADS} slow uploads open`, open);
      up.stop();
      const back = await usageWhen(g, (u) => u.held < base.held + RETURN_SLACK, 10_000);
      show('after they closed', back);
      assert.ok(open.held < bound, `held ${mb(open.held)} with ${SLOW_UPLOADS} slow uploads open: over ${mb(bound)}`);
      assert.ok(back.held < base.held + RETURN_SLACK, `held ${mb(back.held)} after the uploads closed: baseline was ${mb(base.held)}`);
    } finally {
      await g.stop();
    }
  });

  test('HTTP/2: 10 connections × 128 streams with partial bodies stay under the bound, and memory returns', async () => {
    const certs = selfSigned(tmp, 'bodymem');
    const g = await gatewayProcess(yaml(`  tls: { cert: ${certs.cert}, key: ${certs.key} }`), { docroot });
    const sessions: http2.ClientHttp2Session[] = [];
    try {
      const base = await g.usage();
      show('baseline', base);
      const chunk = Buffer.alloc(SENT_PER_UPLOAD, 0x62);
      for (let c = 0; c < 10; c++) {
        const session = http2.connect(`https://127.0.0.1:${g.port}`, { rejectUnauthorized: false });
        session.on('error', () => undefined); // destroyed by the test: what it reports then concerns nobody
        sessions.push(session);
        for (let i = 0; i < 128; i++) {
          const stream = session.request({ ':method': 'POST', ':path': '/dump.php', 'content-length': String(100 * MiB) }, { endStream: false });
          stream.on('error', () => undefined); // reset when the test destroys its session
          stream.write(chunk);
        }
      }
      await sleep(3000);
      const open = await g.usage();
      show('1,280 HTTP/2 streams open', open);
      for (const s of sessions) s.destroy();
      const back = await usageWhen(g, (u) => u.held < base.held + RETURN_SLACK, 10_000);
      show('after they closed', back);
      const bound = base.held + BODY_MEMORY_MB * MiB + 1280 * PER_CONNECTION;
      assert.ok(open.held < bound, `held ${mb(open.held)} with 1,280 streams open: over ${mb(bound)}`);
      assert.ok(back.held < base.held + RETURN_SLACK, `held ${mb(back.held)} after the streams closed: baseline was ${mb(base.held)}`);
    } finally {
      for (const s of sessions) s.destroy();
      await g.stop();
    }
  });

  test('4 connections sending 1-byte chunks for 5 s: CPU stops when they leave, memory stays bounded', async () => {
    const g = await gatewayProcess(yaml(), { docroot });
    try {
      const base = await g.usage();
      show('baseline', base);
      const one = Buffer.from('1\r\nx\r\n');
      const batch = Buffer.concat(Array.from({ length: 1024 }, () => one));
      let bytes = 0;
      let stop = false;
      const answers = ['', '', '', ''];
      const sockets = answers.map((_, i) => {
        const s = net.connect(g.port, '127.0.0.1');
        s.on('error', () => undefined); // the gateway closes a flooding connection: expected
        s.on('data', (d: Buffer) => (answers[i] += d.toString('latin1')));
        s.write('POST /dump.php HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n');
        const pump = (): void => {
          while (!stop && !s.destroyed) {
            bytes += 1024;
            if (!s.write(batch)) {
              s.once('drain', pump);
              return;
            }
          }
        };
        s.once('connect', pump);
        return s;
      });
      let peak = base;
      const end = Date.now() + 5000;
      while (Date.now() < end) {
        await sleep(500);
        const u = await g.usage(false);
        if (u.held > peak.held) peak = u;
      }
      stop = true;
      for (const s of sockets) s.destroy();
      const left = await g.usage(false);
      await sleep(1000);
      const second = await g.usage(false);
      await sleep(2000);
      const later = await g.usage(false);
      const back = await usageWhen(g, (u) => u.held < base.held + RETURN_SLACK, 10_000);
      show('peak during the flood (no gc)', peak);
      show('when the clients left', left);
      show('after they closed', back);
      console.log(
        `# ${mb(bytes)} of body in 1-byte chunks: ${Math.round(left.cpuMs - base.cpuMs)} ms CPU while sending, ` +
          `${Math.round(second.cpuMs - left.cpuMs)} ms in the next second, ${Math.round(later.cpuMs - second.cpuMs)} ms in the 2 s after`,
      );
      // Refused (and the connection closed, dropping what the kernel still buffers) instead of read for as long as they send.
      for (const a of answers) assert.match(a, /^HTTP\/1\.1 400 /, `a flooding connection got ${JSON.stringify(a.slice(0, 100))}`);
      // Nothing queued keeps burning: after a second, the gateway is as idle as any (timers, GC: tens of ms).
      assert.ok(
        later.cpuMs - second.cpuMs < 300,
        `the gateway burnt ${Math.round(later.cpuMs - second.cpuMs)} ms of CPU 1–3 s after the clients left`,
      );
      assert.ok(peak.held < base.held + BODY_MEMORY_MB * MiB + 64 * MiB, `held peaked at ${mb(peak.held)} (no gc) during the flood`);
      assert.ok(back.held < base.held + RETURN_SLACK, `held ${mb(back.held)} after the flood: baseline was ${mb(base.held)}`);
    } finally {
      await g.stop();
    }
  });

  test('a chunked body in small chunks (20,000 of 20 bytes) is no flood: PHP gets it whole', async () => {
    const g = await gatewayProcess(yaml(), { docroot });
    try {
      const chunk = (i: number): string => `${String(i).padStart(20, '.')}`;
      const body = Array.from({ length: 20_000 }, (_, i) => chunk(i)).join('');
      const wire = Array.from({ length: 20_000 }, (_, i) => `14\r\n${chunk(i)}\r\n`).join('') + '0\r\n\r\n';
      const answer = await new Promise<string>((resolve, reject) => {
        let text = '';
        const s = net.connect(g.port, '127.0.0.1', () => {
          s.write('POST /digest.php HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n');
          // Written 100 chunks at a time: many chunks per read on the gateway's side.
          for (let i = 0; i < wire.length; i += 2400) s.write(wire.slice(i, i + 2400));
        });
        s.on('data', (d: Buffer) => (text += d.toString('utf8')));
        s.on('end', () => resolve(text));
        s.on('error', reject);
      });
      const sha = crypto.createHash('sha256').update(body).digest('hex');
      assert.match(answer, /^HTTP\/1\.1 200 /, answer.slice(0, 300));
      assert.ok(answer.includes(`"input_sha256":"${sha}"`), answer.slice(0, 600));
    } finally {
      await g.stop();
    }
  });

  test('a multipart upload of a few MB reaches PHP whole', async () => {
    const g = await gatewayProcess(yaml(), { docroot });
    try {
      const file = crypto.randomBytes(5 * MiB + 123);
      const boundary = 'bodymemboundary';
      const body = Buffer.concat([
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="f"; filename="a.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`),
        file,
        Buffer.from(`\r\n--${boundary}\r\nContent-Disposition: form-data; name="t"\r\n\r\nhello\r\n--${boundary}--\r\n`),
      ]);
      const answer = await new Promise<string>((resolve, reject) => {
        const req = http.request(
          {
            host: '127.0.0.1',
            port: g.port,
            method: 'POST',
            path: '/dump.php',
            headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` },
          },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (text += c));
            res.on('end', () => resolve(text));
          },
        );
        req.on('error', reject);
        // Written in 1 KiB pieces: many small reads on the gateway's side, coalesced before the spool.
        for (let i = 0; i < body.length; i += 1024) req.write(body.subarray(i, i + 1024));
        req.end();
      });
      const got = JSON.parse(answer) as { files: Record<string, { size: number; sha256: string }>; post: Record<string, string> };
      assert.deepEqual(
        { size: got.files['f']?.size, sha256: got.files['f']?.sha256, t: got.post['t'] },
        { size: file.length, sha256: crypto.createHash('sha256').update(file).digest('hex'), t: 'hello' },
      );
    } finally {
      await g.stop();
    }
  });
});
