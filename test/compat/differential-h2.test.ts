/**
 * Differential test, header and target sizes over HTTP/2 (TLS + ALPN): the same requests to nginx + php-fpm (the
 * anchor config, with its TLS + HTTP/2 listener; large_client_header_buffers at nginx's default, 4 8k) and to
 * phpgate with the limits the importer writes for `large_client_header_buffers 4 8k` (header_kb 32, url_kb 8).
 *
 * nginx (1.19.7 on; the http2_max_field_size / http2_max_header_size of older versions acted alike) ends the
 * connection with GOAWAY ENHANCE_YOUR_CALM when one field's HPACK-encoded string is longer than one buffer or the
 * decoded names and values add up past all buffers; it never answers 414 over HTTP/2. phpgate bounds the whole list
 * (names, values and 32 per field, as HTTP/2 counts it) with the same GOAWAY, except that node's own check resets
 * the stream instead once the client has acknowledged the server's SETTINGS; and it answers a :path past url_kb
 * with 414, as over HTTP/1.1. Each side's answer is asserted, so a change on either side shows.
 *
 * nginx + php-fpm missing: the tests are skipped locally, but fail when CI is set (CI installs them).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { ensureFixtureSite } from '../fixtures/site.js';
import { selfSigned } from '../support/certs.js';
import { startGateway, type Dump, type RunningGateway } from '../support/gateway.js';
import { h2Probe, type H2Outcome } from '../support/h2-probe.js';
import { nginxFpmMissing, startNginxFpm, type NginxFpm } from '../support/nginx-fpm.js';

const ENHANCE_YOUR_CALM = http2.constants.NGHTTP2_ENHANCE_YOUR_CALM;

/** nginx's and phpgate's connection error for an oversized header list, on a connection's first stream. */
const GOAWAY_CALM = { code: ENHANCE_YOUR_CALM, lastStreamId: 1 };

describe('differential over HTTP/2: header list and :path sizes', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-diff-h2-'));
  let ref: NginxFpm | undefined;
  let gw: RunningGateway | undefined;
  let unavailable: string | undefined;

  before(async () => {
    unavailable = nginxFpmMissing('the differential tests');
    if (unavailable !== undefined) return;
    const certs = selfSigned(tmp, 'diff-h2');
    const docroot = ensureFixtureSite();
    ref = await startNginxFpm(docroot, { workers: 2, tls: certs });
    try {
      gw = await startGateway(
        `server:\n  tls:\n    cert: ${certs.cert}\n    key: ${certs.key}\n  limits:\n    header_kb: 32\n    url_kb: 8\nphp:\n  worker_count: 2\n`,
        { docroot },
      );
    } catch (err) {
      await ref.stop();
      ref = undefined;
      throw err;
    }
  });
  after(async () => {
    await Promise.all([gw?.stop(), ref?.stop()]);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const ready = (t: TestContext): boolean => {
    if (unavailable === undefined) return true;
    t.skip(`nginx + php-fpm unavailable: ${unavailable}`);
    return false;
  };

  /** The same request to both, each on a fresh connection; returns [nginx+fpm, phpgate]. */
  const both = (headers: http2.OutgoingHttpHeaders, acknowledged = false): Promise<[H2Outcome, H2Outcome]> =>
    Promise.all([h2Probe(ref!.tlsPort!, headers, { acknowledged }), h2Probe(gw!.port, headers, { acknowledged })]);

  const refused = (r: H2Outcome, who: string): void => {
    assert.equal(r.status, 0, `${who} answered ${r.status}`);
    assert.deepEqual(r.goaway, GOAWAY_CALM, `${who}: ${JSON.stringify(r)}`);
    assert.ok(r.connectionEnded, `${who}: the connection stayed open`);
  };

  const seen = (r: H2Outcome, who: string): Dump => {
    assert.equal(r.status, 200, `${who}: rst ${r.rstCode}, goaway ${JSON.stringify(r.goaway)}`);
    return JSON.parse(r.body) as Dump;
  };

  it('same: one 40 KB header on a first request: GOAWAY ENHANCE_YOUR_CALM from both, no status', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ ':path': '/dump.php', 'x-big': 'x'.repeat(40 * 1024) });
    refused(a, 'nginx+fpm');
    refused(b, 'phpgate');
  });

  it('same: five 7000-byte headers (each under a buffer, together past all four): GOAWAY from both', async (t) => {
    if (!ready(t)) return;
    const headers: http2.OutgoingHttpHeaders = { ':path': '/dump.php' };
    for (const n of ['a', 'b', 'c', 'd', 'e']) headers[`x-${n}`] = 'x'.repeat(7000);
    const [a, b] = await both(headers);
    refused(a, 'nginx+fpm');
    refused(b, 'phpgate');
  });

  it('same: four 7000-byte headers (28 KB) reach PHP on both, whole', async (t) => {
    if (!ready(t)) return;
    const headers: http2.OutgoingHttpHeaders = { ':path': '/dump.php' };
    for (const n of ['a', 'b', 'c', 'd']) headers[`x-${n}`] = 'x'.repeat(7000);
    const [a, b] = await both(headers);
    for (const [r, who] of [
      [a, 'nginx+fpm'],
      [b, 'phpgate'],
    ] as const) {
      const d = seen(r, who);
      for (const n of ['A', 'B', 'C', 'D']) assert.equal(d.server[`HTTP_X_${n}`], 'x'.repeat(7000), `${who}: HTTP_X_${n}`);
    }
  });

  it('deliberate: a 40 KB header once the SETTINGS are acknowledged: nginx GOAWAY; phpgate (node) resets the stream, ENHANCE_YOUR_CALM', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ ':path': '/dump.php', 'x-big': 'x'.repeat(40 * 1024) }, true);
    refused(a, 'nginx+fpm');
    assert.equal(b.status, 0);
    assert.equal(b.rstCode, ENHANCE_YOUR_CALM);
    assert.equal(b.goaway, null, 'phpgate: the connection stays');
  });

  it('deliberate: one 12 KB header (a field past one 8k buffer, the list under header_kb): nginx GOAWAY, phpgate serves it', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ ':path': '/dump.php', 'x-big': 'x'.repeat(12 * 1024) });
    refused(a, 'nginx+fpm');
    assert.equal(seen(b, 'phpgate').server['HTTP_X_BIG'], 'x'.repeat(12 * 1024));
  });

  it('deliberate: a 9000-byte :path (HPACK-encoded under 8k): nginx serves it (no 414 over HTTP/2), phpgate 414 as over HTTP/1.1', async (t) => {
    if (!ready(t)) return;
    const target = `/dump.php?q=${'x'.repeat(9000 - '/dump.php?q='.length)}`;
    const [a, b] = await both({ ':path': target });
    assert.equal(seen(a, 'nginx+fpm').server['REQUEST_URI'], target);
    assert.equal(b.status, 414);
  });
});
