import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import http from 'node:http';
import { ensureFixtureSite } from './fixtures/site.js';
import { nginxFpmAvailable, startNginxFpm } from './support/nginx-fpm.js';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function get(port: number, path: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`timeout: GET ${path}`)));
    req.on('error', reject);
  });
}

interface Dump {
  server: Record<string, unknown>;
  get: unknown;
}

async function dump(port: number, path: string): Promise<Dump> {
  const r = await get(port, path);
  assert.equal(r.status, 200, `GET ${path}: ${r.body.slice(0, 300)}`);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  return JSON.parse(r.body) as Dump;
}

test('reference nginx + php-fpm over the fixture site', async (t) => {
  const avail = nginxFpmAvailable();
  if (!avail.ok) {
    t.skip(avail.reason);
    return;
  }
  const nf = await startNginxFpm(ensureFixtureSite(), { workers: 2 });
  try {
    assert.ok(nf.port > 0);
    assert.ok(existsSync(nf.runDir));

    await t.test('script with a query string', async () => {
      const d = await dump(nf.port, '/dump.php?a=1');
      assert.equal(d.server['SCRIPT_NAME'], '/dump.php');
      assert.equal(d.server['QUERY_STRING'], 'a=1');
      assert.equal(d.server['REQUEST_URI'], '/dump.php?a=1');
      assert.deepEqual(d.get, { a: '1' });
    });

    await t.test('PATH_INFO after the script', async () => {
      const d = await dump(nf.port, '/info.php/extra/path');
      assert.equal(d.server['SCRIPT_NAME'], '/info.php');
      assert.equal(d.server['PATH_INFO'], '/extra/path');
    });

    await t.test('unknown path falls back to the front controller', async () => {
      const d = await dump(nf.port, '/pretty/url?x=1');
      assert.equal(d.server['SCRIPT_NAME'], '/index.php');
      assert.equal(d.server['REQUEST_URI'], '/pretty/url?x=1');
      assert.equal(d.server['QUERY_STRING'], 'x=1');
    });

    await t.test('PHP code in an uploaded "image" is served, not executed', async () => {
      const r = await get(nf.port, '/uploads/x.jpg');
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'image/jpeg');
      assert.equal(r.body, '<?php echo "EXECUTED"; ?>');
      assert.ok(!r.body.startsWith('EXECUTED'));
    });
  } finally {
    await nf.stop();
  }
  assert.ok(!existsSync(nf.runDir), 'stop() removes the run dir');
});
