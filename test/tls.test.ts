/**
 * TLS on the main listener (HTTP/1.1 over TLS), the plain-HTTP redirect listener, and the TLS + redirect nginx
 * recipe imported and served. Certificates are made here with openssl, never downloaded.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { importNginx } from '../nginx-compat/index.js';
import { startGateway, type RunningGateway } from './support/gateway.js';
import { selfSigned as makeCert } from './support/certs.js';
import { freePort } from './support/proc.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-tls-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function selfSigned(name: string): { cert: string; key: string } {
  return makeCert(tmp, name);
}

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  const lib = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    lib
      .get(url, { headers, rejectUnauthorized: false, agent: false }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      })
      .on('error', reject);
  });
}

function docroot(name: string): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(path.join(dir, '.well-known/acme-challenge'), { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'index.php'),
    "<?php echo json_encode(['https' => $_SERVER['HTTPS'] ?? null, 'scheme' => $_SERVER['REQUEST_SCHEME'], 'uri' => $_SERVER['REQUEST_URI']]);",
  );
  fs.writeFileSync(path.join(dir, '.well-known/acme-challenge/token123'), 'acme-proof');
  return dir;
}

describe('TLS', () => {
  let g: RunningGateway;
  let redirectPort = 0;
  before(async () => {
    const { cert, key } = selfSigned('main');
    redirectPort = await freePort();
    g = await startGateway(`server:\n  redirect_http_port: ${redirectPort}\n  tls:\n    cert: ${cert}\n    key: ${key}\nphp:\n  worker_count: 1\n`, {
      docroot: docroot('site'),
    });
  });
  after(() => g.stop());

  test('the main port speaks TLS and PHP sees HTTPS=on and REQUEST_SCHEME=https', async () => {
    const r = await get(`https://127.0.0.1:${g.port}/some/page?x=1`);
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.text), { https: 'on', scheme: 'https', uri: '/some/page?x=1' });
  });

  test('the redirect listener sends plain HTTP to HTTPS with path and query kept (301)', async () => {
    const r = await get(`http://127.0.0.1:${redirectPort}/a/b?c=d`, { Host: 'example.test:8080' });
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, `https://example.test:${g.port}/a/b?c=d`);
  });

  test('ACME http-01 challenges are answered over plain HTTP, not redirected', async () => {
    const r = await get(`http://127.0.0.1:${redirectPort}/.well-known/acme-challenge/token123`);
    assert.equal(r.status, 200);
    assert.equal(r.text, 'acme-proof');
  });
});

describe('TLS errors at start', () => {
  test('a key that does not belong to the certificate is refused with one clear message', async () => {
    const a = selfSigned('a');
    const b = selfSigned('b');
    await assert.rejects(
      startGateway(`server:\n  tls:\n    cert: ${a.cert}\n    key: ${b.key}\nphp:\n  worker_count: 1\n`, { docroot: docroot('mismatch') }),
      /server\.tls: .* are not a usable certificate and key .*key belongs to the certificate/,
    );
  });
});

describe('the TLS + redirect nginx recipe, imported and served', () => {
  test('tls-redirect.conf imports, and the app answers over HTTPS with the plain port redirecting', async () => {
    const root = docroot('imported');
    const { cert, key } = selfSigned('imported');
    const fixture = fileURLToPath(new URL('./fixtures/nginx/tls-redirect.conf', import.meta.url));
    const { yaml } = importNginx(fixture, { root });
    const doc = parseDocument(yaml);
    // Relocated as a test must: this machine's certificate files and ports instead of the recipe's.
    doc.setIn(['server', 'tls', 'cert'], cert);
    doc.setIn(['server', 'tls', 'key'], key);
    const redirectPort = await freePort();
    doc.setIn(['server', 'redirect_http_port'], redirectPort);
    doc.setIn(['php', 'worker_count'], 1);
    const g = await startGateway(doc.toString(), { docroot: root });
    try {
      const r = await get(`https://127.0.0.1:${g.port}/`);
      assert.equal(r.status, 200);
      assert.equal((JSON.parse(r.text) as { https: unknown }).https, 'on');
      const plain = await get(`http://127.0.0.1:${redirectPort}/shop?x=1`, { Host: 'example.com' });
      assert.equal(plain.status, 301);
      assert.equal(plain.headers.location, `https://example.com:${g.port}/shop?x=1`);
    } finally {
      await g.stop();
    }
  });
});
