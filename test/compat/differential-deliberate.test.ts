/**
 * Differential test, the deliberate differences: where phpgate answers differently from nginx + php-fpm (the
 * reference stack in test/anchors/) on purpose, each side's behaviour is asserted here, so a change on either
 * side shows up as a failure rather than passing unnoticed. Everything else must be the same (see
 * differential.test.ts and differential-response.test.ts; the harness is ./both.ts).
 *
 * nginx + php-fpm missing: the tests are skipped locally, but fail when CI is set (CI installs them).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { parse, securityHeaderNames, useStacks } from './both.js';
import type { Dump } from './both.js';

/** nginx's version from its SERVER_SOFTWARE ("nginx/1.22.1"), as [major, minor]. */
function nginxVersion(d: Dump): [number, number] {
  const m = /^nginx\/(\d+)\.(\d+)/.exec(d.server['SERVER_SOFTWARE'] ?? '');
  assert.ok(m, `unexpected SERVER_SOFTWARE from nginx: ${d.server['SERVER_SOFTWARE']}`);
  return [Number(m[1]), Number(m[2])];
}

/** nginx ≥ 1.23 joins repeated request headers into one FastCGI param; 1.22 and older send each line. */
const joinsRepeats = ([major, minor]: [number, number]): boolean => major > 1 || minor >= 23;

describe('differential: deliberate differences of phpgate from nginx + php-fpm', () => {
  const { both, ready, refPort } = useStacks();

  // ---- dotfiles ------------------------------------------------------------------------------------------

  // The reference config has no `location ~ /\. { deny all; }`, so nginx serves dotfiles as static files.
  for (const [target, secret] of [
    ['/.env', 'SECRET'],
    ['/.git/config', 'repositoryformatversion'],
    ['/.htaccess', 'Deny from all'],
  ] as const) {
    it(`phpgate deliberately refuses dotfiles: ${target} (nginx serves it, phpgate 404)`, async (t) => {
      if (!ready(t)) return;
      const [a, b] = await both({ target });
      assert.equal(a.status, 200, `nginx+fpm: ${target}`);
      assert.ok(a.text.includes(secret), `nginx+fpm served: ${a.text.slice(0, 200)}`);
      assert.equal(b.status, 404, `phpgate: ${target}`);
      assert.ok(!b.text.includes(secret) && !b.text.includes('do-not-serve'), `phpgate leaked: ${b.text.slice(0, 200)}`);
    });
  }

  // ---- security headers ---------------------------------------------------------------------------------

  for (const target of ['/dump.php', '/static.txt', '/.env']) {
    it(`phpgate adds helmet's security headers by default, nginx none: ${target}`, async (t) => {
      if (!ready(t)) return;
      const [a, b] = await both({ target });
      for (const name of securityHeaderNames()) {
        assert.equal(a.headers[name], undefined, `nginx+fpm sent ${name}`);
        assert.ok(typeof b.headers[name] === 'string', `phpgate did not send ${name}`);
      }
      assert.equal(b.headers['x-frame-options'], 'SAMEORIGIN');
      assert.equal(b.headers['strict-transport-security'], undefined, 'HSTS only over TLS');
      assert.equal(b.headers['content-security-policy'], undefined, 'CSP off by default');
      assert.match(String(a.headers['server']), /^nginx/);
      assert.equal(b.headers['server'], 'phpgate');
    });
  }

  // ---- repeated request headers --------------------------------------------------------------------------

  it('repeated request headers: nginx 1.22 passes the last copy, phpgate joins them with ", " (as nginx ≥ 1.23)', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({
      target: '/dump.php',
      headers: [
        ['X-Dup', 'first'],
        ['X-Dup', 'second'],
      ],
    });
    const da = parse(a, 'nginx+fpm');
    const db = parse(b, 'phpgate');
    // Each line becomes its own FastCGI param in nginx < 1.23; PHP keeps the last one.
    assert.equal(da.server['HTTP_X_DUP'], joinsRepeats(nginxVersion(da)) ? 'first, second' : 'second');
    assert.equal(db.server['HTTP_X_DUP'], 'first, second');
  });

  it('repeated Cookie headers: nginx 1.22 passes the last one, phpgate joins them with "; " (as nginx ≥ 1.23)', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({
      target: '/dump.php',
      headers: [
        ['Cookie', 'a=1'],
        ['Cookie', 'b=2'],
      ],
    });
    const da = parse(a, 'nginx+fpm');
    const db = parse(b, 'phpgate');
    if (joinsRepeats(nginxVersion(da))) {
      assert.equal(da.server['HTTP_COOKIE'], 'a=1; b=2');
      assert.deepEqual(da.cookie, { a: '1', b: '2' });
    } else {
      assert.equal(da.server['HTTP_COOKIE'], 'b=2');
      assert.deepEqual(da.cookie, { b: '2' });
    }
    assert.equal(db.server['HTTP_COOKIE'], 'a=1; b=2');
    assert.deepEqual(db.cookie, { a: '1', b: '2' });
  });

  // ---- Host ----------------------------------------------------------------------------------------------

  it("HTTP_HOST: Debian's fastcgi_params pass $host (lower-cased, no port), phpgate $host with a numeric port kept", async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/dump.php', headers: { Host: 'Example.TEST:8081' } });
    const da = parse(a, 'nginx+fpm');
    const db = parse(b, 'phpgate');
    // Recent Debian packages add `fastcgi_param HTTP_HOST $host;`; older ones (and upstream nginx) pass the header
    // as sent. phpgate passes $host and keeps the port when it is a number, as nginx's `$host$is_request_port$request_port`
    // (README, "Differences from nginx + php-fpm"): nothing but a host name and digits reaches PHP, links keep :8081.
    const debianHost = /^\s*fastcgi_param\s+HTTP_HOST\s+\$host\s*;/m.test(fs.readFileSync('/etc/nginx/fastcgi_params', 'utf8'));
    assert.equal(da.server['HTTP_HOST'], debianHost ? 'example.test' : 'Example.TEST:8081');
    assert.equal(db.server['HTTP_HOST'], 'example.test:8081');
  });

  // ---- redirects of the gateway itself -------------------------------------------------------------------

  it('directory redirect: nginx sends an absolute Location with its own port, phpgate a relative one', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/sub' });
    assert.equal(a.status, 301);
    assert.equal(b.status, 301);
    // nginx: absolute_redirect on, port_in_redirect on, host from the Host header.
    assert.equal(a.headers['location'], `http://localhost:${refPort()}/sub/`);
    // phpgate: relative (RFC 9110 §10.2.2), so it is right behind a load balancer and never echoes Host.
    assert.equal(b.headers['location'], '/sub/');
  });

  // ---- response headers ----------------------------------------------------------------------------------

  it('hop-by-hop headers from PHP: nginx 1.22 passes Upgrade on to the client, phpgate drops it (RFC 9110 §7.6.1)', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/hop.php' });
    assert.equal(a.status, 200);
    assert.equal(b.status, 200);
    for (const r of [a, b]) {
      assert.equal(r.headers['x-kept'], 'yes');
      assert.equal(r.headers['keep-alive'], undefined);
      assert.equal(r.text, 'ok');
    }
    assert.equal(a.headers['upgrade'], 'h2c');
    assert.equal(b.headers['upgrade'], undefined);
  });

  it('static files: phpgate adds X-Content-Type-Options: nosniff (the Content-Type is the same: no charset)', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ target: '/static.txt' });
    assert.equal(a.headers['x-content-type-options'], undefined);
    assert.equal(b.headers['x-content-type-options'], 'nosniff');
    assert.equal(a.headers['content-type'], 'text/plain');
    assert.equal(b.headers['content-type'], a.headers['content-type']);
  });

  it('405 on a static file: phpgate names the allowed methods (Allow, RFC 9110 §15.5.6), nginx does not', async (t) => {
    if (!ready(t)) return;
    const [a, b] = await both({ method: 'POST', target: '/static.txt', headers: { 'Content-Type': 'text/plain' }, body: 'x' });
    assert.equal(a.status, 405);
    assert.equal(b.status, 405);
    assert.equal(a.headers['allow'], undefined);
    assert.equal(b.headers['allow'], 'GET, HEAD');
  });
});
