/**
 * server.limits.header_kb and url_kb over HTTP/2, through the real gateway and real php-cgi: a header list past
 * header_kb never reaches PHP, refused as nginx refuses it (a GOAWAY with ENHANCE_YOUR_CALM, no status) whether or
 * not the client has acknowledged the server's SETTINGS yet (node's own check, which resets the stream, applies only
 * after); a :path past url_kb gets 414 as over HTTP/1.1. test/compat/differential-h2.test.ts shows nginx's answers.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ensureFixtureSite } from './fixtures/site.js';
import { selfSigned } from './support/certs.js';
import { startGateway, type Dump, type RunningGateway } from './support/gateway.js';
import { h2Probe, sentHeaderListSize } from './support/h2-probe.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-h2limits-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const certs = selfSigned(tmp, 'h2limits');

const ENHANCE_YOUR_CALM = http2.constants.NGHTTP2_ENHANCE_YOUR_CALM;
const HEADER_BYTES = 16 * 1024; // header_kb's default
const URL_BYTES = 8 * 1024; // url_kb's default

describe('HTTP/2 and server.limits.header_kb / url_kb (defaults: 16 and 8)', () => {
  let g: RunningGateway;
  before(async () => {
    g = await startGateway(`server:\n  tls:\n    cert: ${certs.cert}\n    key: ${certs.key}\nphp:\n  worker_count: 1\n`, {
      docroot: ensureFixtureSite(),
    });
  });
  after(() => g.stop());

  /** Requests PHP has run so far. */
  const phpRuns = (): number =>
    g.gateway.pools
      .get('default')!
      .stats()
      .workers.reduce((n, w) => n + w.requestsTotal, 0);

  /** An x-pad header that makes the whole header list of a GET of /dump.php exactly `size` bytes, as HTTP/2 counts. */
  const padTo = (size: number): Record<string, string> => {
    const base = sentHeaderListSize(g.port, { ':path': '/dump.php', 'x-pad': '' });
    return { ':path': '/dump.php', 'x-pad': 'p'.repeat(size - base) };
  };

  for (const acknowledged of [false, true]) {
    const when = acknowledged
      ? "after the client acknowledged the server's SETTINGS"
      : "before the client saw the server's SETTINGS (a first request)";

    test(`a 40 KB header, ${when}: no status, ENHANCE_YOUR_CALM, PHP never runs; the gateway serves on`, async () => {
      const runs = phpRuns();
      const r = await h2Probe(g.port, { ':path': '/dump.php', 'x-big': 'x'.repeat(40 * 1024) }, { acknowledged });
      assert.equal(r.status, 0, `answered ${r.status}: ${r.body.slice(0, 200)}`);
      if (acknowledged) {
        // node's own check, as the list is read: the stream reset, the connection kept.
        assert.equal(r.rstCode, ENHANCE_YOUR_CALM);
        assert.equal(r.goaway, null);
      } else {
        // The gateway's check, on the list node handed over: nginx's connection error.
        assert.deepEqual(r.goaway, { code: ENHANCE_YOUR_CALM, lastStreamId: 1 });
        assert.ok(r.connectionEnded);
      }
      assert.equal(phpRuns(), runs, 'PHP ran');
      const ok = await h2Probe(g.port, { ':path': '/dump.php' });
      assert.equal(ok.status, 200);
    });

    test(`a header list of exactly header_kb reaches PHP, one byte more does not (node's count and the gateway's agree), ${when}`, async () => {
      const fits = await h2Probe(g.port, padTo(HEADER_BYTES), { acknowledged });
      assert.equal(fits.status, 200, `rst ${fits.rstCode}, goaway ${JSON.stringify(fits.goaway)}`);
      const d = JSON.parse(fits.body) as Dump;
      assert.equal(d.server['HTTP_X_PAD']?.length, padTo(HEADER_BYTES)['x-pad']!.length);
      const runs = phpRuns();
      const over = await h2Probe(g.port, padTo(HEADER_BYTES + 1), { acknowledged });
      assert.equal(over.status, 0);
      assert.equal(acknowledged ? over.rstCode : over.goaway?.code, ENHANCE_YOUR_CALM);
      assert.equal(phpRuns(), runs, 'PHP ran');
    });
  }

  test('many small headers adding up past header_kb are refused the same way', async () => {
    const runs = phpRuns();
    const headers: Record<string, string> = { ':path': '/dump.php' };
    for (let i = 0; i < 100; i++) headers[`x-h${i}`] = 'v'.repeat(200);
    const r = await h2Probe(g.port, headers);
    assert.equal(r.status, 0);
    assert.equal(r.goaway?.code, ENHANCE_YOUR_CALM);
    assert.equal(phpRuns(), runs, 'PHP ran');
  });

  test('a stream sent right after the refused one is not served either: the connection takes no new stream', async () => {
    const runs = phpRuns();
    const session = http2.connect(`https://localhost:${g.port}`, { rejectUnauthorized: false });
    session.on('error', () => undefined); // the GOAWAY's error ends the session: expected
    try {
      // Both go out with the connection preface.
      const big = session.request({ ':path': '/dump.php', 'x-big': 'x'.repeat(40 * 1024) });
      const next = session.request({ ':path': '/dump.php?next' });
      const ended = (s: http2.ClientHttp2Stream): Promise<number> =>
        new Promise((resolve) => {
          let status = 0;
          s.on('response', (h) => (status = Number(h[':status'])));
          s.on('error', () => undefined); // the stream ends with the GOAWAY's error: its status (none) is the outcome
          s.resume();
          s.once('close', () => resolve(status));
        });
      assert.deepEqual(await Promise.all([ended(big), ended(next)]), [0, 0]);
    } finally {
      session.destroy();
    }
    // The second stream would have reached PHP by now had it been served.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(phpRuns(), runs, 'PHP ran');
    assert.ok(!g.logs().some((l) => l['uri'] === '/dump.php?next'), 'the second stream was served');
  });

  test('a :path of exactly url_kb reaches PHP; one byte more gets 414, as over HTTP/1.1, and PHP never runs', async () => {
    const prefix = '/dump.php?q=';
    const fits = await h2Probe(g.port, { ':path': prefix + 'a'.repeat(URL_BYTES - prefix.length) });
    assert.equal(fits.status, 200);
    assert.equal((JSON.parse(fits.body) as Dump).server['REQUEST_URI']?.length, URL_BYTES);
    const runs = phpRuns();
    const over = await h2Probe(g.port, { ':path': prefix + 'a'.repeat(URL_BYTES - prefix.length + 1) });
    assert.equal(over.status, 414);
    assert.equal(over.goaway, null, 'a 414 leaves the connection open');
    assert.equal(phpRuns(), runs, 'PHP ran');
  });
});
