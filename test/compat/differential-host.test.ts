/**
 * Differential test, the Host header: which Host values nginx refuses with 400 (ngx_http_validate_host) and what
 * PHP sees as HTTP_HOST and SERVER_NAME for the ones it takes, against phpgate over the same fixture site. A Host
 * that reaches PHP can reach a cached page (test/host-poisoning.test.ts), so the two must refuse the same ones.
 *
 * nginx + php-fpm missing: the tests are skipped locally, but fail when CI is set (CI installs them).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { parse, useStacks } from './both.js';

/**
 * Debian's fastcgi_params passes nginx's validated `$host` as HTTP_HOST (its security update for absolute-form
 * targets); phpgate does the same and keeps a numeric port (`$host$is_request_port$request_port`, which that file
 * names as the way to keep it on nginx ≥ 1.29.3). An older file passes the header as sent: then only statuses compare.
 */
const REF_PASSES_HOST = /^\s*fastcgi_param\s+HTTP_HOST\s+\$host\s*;/m.test(
  fs.existsSync('/etc/nginx/fastcgi_params') ? fs.readFileSync('/etc/nginx/fastcgi_params', 'utf8') : '',
);

/** The numeric port a Host names, as phpgate keeps it ('' for none or anything else). */
function numericPort(host: string): string {
  const colon = host.startsWith('[') ? host.indexOf(']:') + 1 : host.indexOf(':');
  const port = colon > 0 ? host.slice(colon + 1) : '';
  return /^[0-9]{1,5}$/.test(port) ? `:${port}` : '';
}

const HOSTS = [
  'localhost',
  'LocalHost.',
  'example.com:8080',
  'example.com.:80',
  '.example.com',
  'example.com:',
  'example.com:80:90',
  'example.com:"><b>x<b>',
  'example.com:a\\b',
  '[::1]:80',
  '[::1',
  'xn--bcher-kva.example',
  'exa mple.com',
  'example.com:80 x',
  'exa\tmple.com',
  'example..com',
  'example.com:8..0',
  'example.com/sub',
  'a/../b',
  // (An empty Host is in host-poisoning.test.ts: node's client sends its own for an empty value.)
  ':80',
  '.',
];

describe('differential: Host validation as nginx', () => {
  const { both, ready } = useStacks();

  for (const host of HOSTS) {
    it(`Host ${JSON.stringify(host)}`, async (t) => {
      if (!ready(t)) return;
      const [a, b] = await both({ target: '/dump.php', headers: { Host: host } });
      assert.equal(b.status, a.status, `nginx+fpm ${a.status}, phpgate ${b.status}`);
      if (a.status !== 200) return;
      const ref = parse(a, 'nginx+fpm').server;
      const gw = parse(b, 'phpgate').server;
      assert.equal(gw['SERVER_NAME'], ref['SERVER_NAME']);
      if (REF_PASSES_HOST) assert.equal(gw['HTTP_HOST'], `${String(ref['HTTP_HOST'])}${numericPort(host)}`);
      assert.doesNotMatch(String(gw['HTTP_HOST']), /[^a-z0-9.:[\]\\"<>-]|[<>"\\]/, 'only a host name and a port reach PHP');
    });
  }

  for (const target of ['http://example.com/dump.php', 'http://Example.COM:8080/dump.php', 'http://ex..com/dump.php', 'http://ex%2fa/dump.php']) {
    it(`absolute-form target ${target}`, async (t) => {
      if (!ready(t)) return;
      const [a, b] = await both({ target });
      assert.equal(b.status, a.status, `nginx+fpm ${a.status}, phpgate ${b.status}`);
      if (a.status !== 200) return;
      const refHost = String(parse(a, 'nginx+fpm').server['HTTP_HOST']);
      if (REF_PASSES_HOST) assert.equal(parse(b, 'phpgate').server['HTTP_HOST'], `${refHost}${numericPort(new URL(target).host)}`);
    });
  }
});
