/**
 * Who the client is: trusted proxies' X-Forwarded-For / X-Forwarded-Proto (nginx real_ip), the PROXY protocol
 * v1/v2 from L4 load balancers, and connections per client address; through the real gateway and real php-cgi.
 * The PROXY header parser is also checked on its own, byte by byte.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseProxyHeader, ProxyProtocolError } from '../gateway/http/proxy-protocol.js';
import { ensureFixtureSite } from './fixtures/site.js';
import { selfSigned } from './support/certs.js';
import { dump, request, startGateway, type Dump, type RunningGateway } from './support/gateway.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-client-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Raw bytes in, the whole answer out (the request asks for Connection: close). */
function rawExchange(port: number, bytes: Buffer | string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let out = '';
    socket.on('data', (d: Buffer) => (out += d.toString('latin1')));
    socket.on('close', () => resolve(out));
    socket.on('error', reject);
    socket.write(bytes);
  });
}

function bodyOf(answer: string): Dump {
  const split = answer.indexOf('\r\n\r\n');
  assert.ok(answer.startsWith('HTTP/1.1 200'), answer.slice(0, 200));
  return JSON.parse(answer.slice(split + 4)) as Dump;
}

/** HTTP/1.0: the answer is not chunked, and the connection closes after it. */
const GET_DUMP = 'GET /dump.php HTTP/1.0\r\nHost: t\r\n\r\n';

function v2Header(family: 'ipv4' | 'ipv6', src: string, srcPort: number, command = 0x21): Buffer {
  const sig = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
  const addrs =
    family === 'ipv4'
      ? Buffer.concat([Buffer.from(src.split('.').map(Number)), Buffer.from([10, 0, 0, 1]), u16(srcPort), u16(443)])
      : Buffer.concat([ipv6Bytes(src), ipv6Bytes('::1'), u16(srcPort), u16(443)]);
  const tlv = Buffer.from([0x04, 0x00, 0x02, 0xaa, 0xbb]); // a TLV (NOOP) the parser must skip
  return Buffer.concat([sig, Buffer.from([command, family === 'ipv4' ? 0x11 : 0x21]), u16(addrs.length + tlv.length), addrs, tlv]);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function ipv6Bytes(a: string): Buffer {
  const [head, tail] = a.split('::') as [string, string | undefined];
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return Buffer.concat(groups.map((g) => u16(parseInt(g, 16))));
}

describe('PROXY protocol parser', () => {
  test('v1 TCP4 and TCP6 lines give the source address and port; bytes after the line are left', () => {
    const line = Buffer.from('PROXY TCP4 203.0.113.7 10.0.0.1 51234 443\r\nGET /');
    assert.deepEqual(parseProxyHeader(line), { complete: true, peer: { address: '203.0.113.7', port: 51234 }, length: line.length - 5 });
    const six = parseProxyHeader(Buffer.from('PROXY TCP6 2001:db8::7 2001:db8::1 4000 443\r\n'));
    assert.deepEqual(six, { complete: true, peer: { address: '2001:db8::7', port: 4000 }, length: 45 });
  });

  test('a v1 line arriving one byte at a time is incomplete until its CRLF', () => {
    const line = Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n');
    for (let n = 0; n < line.length; n++) assert.equal(parseProxyHeader(line.subarray(0, n)).complete, false, `at ${n}`);
    assert.equal(parseProxyHeader(line).complete, true);
  });

  test('v2 IPv4 and IPv6, TLVs skipped, split anywhere', () => {
    const four = v2Header('ipv4', '198.51.100.9', 40000);
    for (let n = 0; n < four.length; n++) assert.equal(parseProxyHeader(four.subarray(0, n)).complete, false, `at ${n}`);
    assert.deepEqual(parseProxyHeader(four), { complete: true, peer: { address: '198.51.100.9', port: 40000 }, length: four.length });
    const six = v2Header('ipv6', '2001:db8::42', 1234);
    assert.deepEqual(parseProxyHeader(six), { complete: true, peer: { address: '2001:db8::42', port: 1234 }, length: six.length });
  });

  test('v1 UNKNOWN and v2 LOCAL (health checks) name no client', () => {
    assert.deepEqual(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n')), { complete: true, peer: null, length: 15 });
    const local = v2Header('ipv4', '1.2.3.4', 1, 0x20);
    assert.deepEqual(parseProxyHeader(local), { complete: true, peer: null, length: local.length });
  });

  test('anything else is refused: plain HTTP, bad addresses, an overlong line, an unknown version', () => {
    const bad = [
      'GET / HTTP/1.1\r\n',
      'PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n',
      'PROXY TCP4 1.2.3.4 5.6.7.8 99999 2\r\n',
      'PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n',
      `PROXY TCP4 ${'1'.repeat(120)}`,
    ];
    for (const b of bad) assert.throws(() => parseProxyHeader(Buffer.from(b)), ProxyProtocolError, b);
    const v3 = v2Header('ipv4', '1.2.3.4', 1);
    v3[12] = 0x31;
    assert.throws(() => parseProxyHeader(v3), ProxyProtocolError);
  });
});

describe('trusted proxies (X-Forwarded-For, X-Forwarded-Proto)', () => {
  let trusted: RunningGateway;
  let untrusted: RunningGateway;
  before(async () => {
    trusted = await startGateway('server:\n  trusted_proxies: ["127.0.0.1", "10.0.0.0/8"]\nphp:\n  worker_count: 1\n', {
      docroot: ensureFixtureSite(),
    });
    untrusted = await startGateway('server:\n  trusted_proxies: ["10.0.0.0/8"]\nphp:\n  worker_count: 1\n', { docroot: ensureFixtureSite() });
  });
  after(async () => {
    await trusted.stop();
    await untrusted.stop();
  });

  test('from a trusted peer, the rightmost untrusted X-Forwarded-For address is REMOTE_ADDR', async () => {
    const d = dump(await request(trusted.base, '/dump.php', { headers: { 'X-Forwarded-For': '198.51.100.1, 203.0.113.9, 10.1.2.3' } }));
    assert.equal(d.server['REMOTE_ADDR'], '203.0.113.9');
    assert.equal(d.server['HTTP_X_FORWARDED_FOR'], '198.51.100.1, 203.0.113.9, 10.1.2.3', 'the header itself still reaches PHP');
  });

  test('several X-Forwarded-For headers are one list; all-trusted chains give the leftmost', async () => {
    const d = dump(
      await request(trusted.base, '/dump.php', {
        headers: [
          ['Host', 't'],
          ['X-Forwarded-For', '10.9.9.9'],
          ['X-Forwarded-For', '10.1.1.1'],
        ],
      }),
    );
    assert.equal(d.server['REMOTE_ADDR'], '10.9.9.9');
    const e = dump(
      await request(trusted.base, '/dump.php', {
        headers: [
          ['Host', 't'],
          ['X-Forwarded-For', '192.0.2.5'],
          ['X-Forwarded-For', '10.1.1.1'],
        ],
      }),
    );
    assert.equal(e.server['REMOTE_ADDR'], '192.0.2.5');
  });

  test('garbage in X-Forwarded-For stops the walk at the last good address', async () => {
    const d = dump(await request(trusted.base, '/dump.php', { headers: { 'X-Forwarded-For': '192.0.2.5, not-an-ip, 10.1.1.1' } }));
    assert.equal(d.server['REMOTE_ADDR'], '10.1.1.1');
  });

  test('X-Forwarded-Proto: https from a trusted peer makes HTTPS=on and REQUEST_SCHEME=https', async () => {
    const d = dump(await request(trusted.base, '/dump.php', { headers: { 'X-Forwarded-Proto': 'https', 'X-Forwarded-For': '192.0.2.5' } }));
    assert.equal(d.server['HTTPS'], 'on');
    assert.equal(d.server['REQUEST_SCHEME'], 'https');
  });

  test('from an untrusted peer the headers change nothing and reach PHP as plain HTTP_*', async () => {
    const d = dump(await request(untrusted.base, '/dump.php', { headers: { 'X-Forwarded-For': '192.0.2.5', 'X-Forwarded-Proto': 'https' } }));
    assert.equal(d.server['REMOTE_ADDR'], '127.0.0.1');
    assert.equal(d.server['HTTPS'], undefined);
    assert.equal(d.server['REQUEST_SCHEME'], 'http');
    assert.equal(d.server['HTTP_X_FORWARDED_FOR'], '192.0.2.5');
    assert.equal(d.server['HTTP_X_FORWARDED_PROTO'], 'https');
  });
});

describe('PROXY protocol on the listener', () => {
  let g: RunningGateway;
  let ignoring: RunningGateway;
  let secure: RunningGateway;
  before(async () => {
    const yaml = (proxies: string, extra = ''): string =>
      `server:\n  proxy_protocol: true\n  trusted_proxies: [${proxies}]\n${extra}  timeouts:\n    header_ms: 1000\nphp:\n  worker_count: 1\n`;
    g = await startGateway(yaml('"127.0.0.1"'), { docroot: ensureFixtureSite() });
    ignoring = await startGateway(yaml('"10.0.0.0/8"'), { docroot: ensureFixtureSite() });
    const c = selfSigned(tmp, 'pp');
    secure = await startGateway(yaml('"127.0.0.1"', `  tls:\n    cert: ${c.cert}\n    key: ${c.key}\n`), { docroot: ensureFixtureSite() });
  });
  after(async () => {
    await g.stop();
    await ignoring.stop();
    await secure.stop();
  });

  test('a v1 header from a trusted balancer sets REMOTE_ADDR and REMOTE_PORT, even sent with the request in one packet', async () => {
    const d = bodyOf(await rawExchange(g.port, `PROXY TCP4 203.0.113.7 10.0.0.1 51234 80\r\n${GET_DUMP}`));
    assert.equal(d.server['REMOTE_ADDR'], '203.0.113.7');
    assert.equal(d.server['REMOTE_PORT'], '51234');
  });

  test('a v2 header (IPv6 client) works the same', async () => {
    const d = bodyOf(await rawExchange(g.port, Buffer.concat([v2Header('ipv6', '2001:db8::42', 1234), Buffer.from(GET_DUMP)])));
    assert.equal(d.server['REMOTE_ADDR'], '2001:db8::42');
    assert.equal(d.server['REMOTE_PORT'], '1234');
  });

  test('a connection without a PROXY header is closed without an answer', async () => {
    assert.equal(await rawExchange(g.port, GET_DUMP), '');
  });

  test('a connection that sends nothing is closed after header_ms', async () => {
    const started = Date.now();
    assert.equal(await rawExchange(g.port, ''), '');
    assert.ok(Date.now() - started < 10_000);
  });

  test("an untrusted peer's PROXY header is read and ignored: REMOTE_ADDR stays the peer", async () => {
    const d = bodyOf(await rawExchange(ignoring.port, `PROXY TCP4 203.0.113.7 10.0.0.1 51234 80\r\n${GET_DUMP}`));
    assert.equal(d.server['REMOTE_ADDR'], '127.0.0.1');
  });

  test('with TLS the header comes before the handshake; HTTP/1.1 over TLS sees the client', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const raw = net.connect(secure.port, '127.0.0.1', () => {
        raw.write('PROXY TCP4 192.0.2.44 10.0.0.1 6000 443\r\n');
        const t = tls.connect({ socket: raw, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => t.write(GET_DUMP));
        let out = '';
        t.on('data', (d: Buffer) => (out += d.toString()));
        t.on('close', () => resolve(out));
        t.on('error', reject);
      });
    });
    const d = bodyOf(answer);
    assert.equal(d.server['REMOTE_ADDR'], '192.0.2.44');
    assert.equal(d.server['HTTPS'], 'on');
  });
});

describe('connections per client address', () => {
  let g: RunningGateway;
  before(async () => {
    g = await startGateway(
      'server:\n  proxy_protocol: true\n  trusted_proxies: ["127.0.0.1"]\n  limits:\n    connections_per_ip: 3\nphp:\n  worker_count: 1\n',
      { docroot: ensureFixtureSite() },
    );
  });
  after(() => g.stop());

  /** An open connection from `client` (as the PROXY header says), after one answered request. */
  async function hold(client: string): Promise<net.Socket> {
    const s = net.connect(g.port, '127.0.0.1');
    await new Promise<void>((resolve) => s.once('connect', () => resolve()));
    s.write(`PROXY TCP4 ${client} 10.0.0.1 1000 80\r\nGET /static.txt HTTP/1.1\r\nHost: t\r\n\r\n`);
    await new Promise<void>((resolve, reject) => {
      s.once('data', () => resolve());
      s.once('close', () => reject(new Error(`connection for ${client} closed`)));
    });
    return s;
  }

  function refused(client: string): Promise<boolean> {
    return new Promise((resolve) => {
      const s = net.connect(g.port, '127.0.0.1', () =>
        s.write(`PROXY TCP4 ${client} 10.0.0.1 1000 80\r\nGET /static.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`),
      );
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString()));
      s.on('error', () => undefined); // a refused connection may be reset: the close is the verdict
      s.on('close', () => resolve(got === ''));
    });
  }

  test("past connections_per_ip a client's new connection is closed; others are served; a freed slot is reusable", async () => {
    const held = [await hold('192.0.2.1'), await hold('192.0.2.1'), await hold('192.0.2.1')];
    try {
      assert.equal(await refused('192.0.2.1'), true, 'a fourth connection from the same client is refused');
      assert.equal(await refused('192.0.2.2'), false, 'another client is served');
      held.pop()!.destroy();
      let served = false;
      for (let i = 0; i < 20 && !served; i++) {
        served = !(await refused('192.0.2.1'));
        if (!served) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(served, 'after one closes, the client may connect again');
    } finally {
      for (const s of held) s.destroy();
    }
  });
});

describe('connections per address without a balancer', () => {
  function openConnections(port: number, n: number): Promise<Array<{ socket: net.Socket; closedEarly: Promise<boolean> }>> {
    return Promise.all(
      Array.from(
        { length: n },
        () =>
          new Promise<{ socket: net.Socket; closedEarly: Promise<boolean> }>((resolve) => {
            const socket = net.connect(port, '127.0.0.1', () => {
              // Closed by the gateway within a moment, or still open: that is the verdict.
              const closedEarly = new Promise<boolean>((done) => {
                const t = setTimeout(() => done(false), 500);
                socket.once('close', () => {
                  clearTimeout(t);
                  done(true);
                });
              });
              resolve({ socket, closedEarly });
            });
            socket.on('error', () => undefined); // a connection over the limit may be reset: the close is the verdict
          }),
      ),
    );
  }

  test('the TCP peer is counted; a trusted proxy is exempt (it carries many clients)', async () => {
    const counted = await startGateway('server:\n  limits:\n    connections_per_ip: 2\nphp:\n  worker_count: 1\n', { docroot: ensureFixtureSite() });
    const exempt = await startGateway('server:\n  trusted_proxies: ["127.0.0.1"]\n  limits:\n    connections_per_ip: 2\nphp:\n  worker_count: 1\n', {
      docroot: ensureFixtureSite(),
    });
    try {
      const a = await openConnections(counted.port, 4);
      const verdicts = await Promise.all(a.map((c) => c.closedEarly));
      assert.equal(verdicts.filter((closed) => closed).length, 2, 'two of four connections are refused');
      for (const c of a) c.socket.destroy();
      const b = await openConnections(exempt.port, 4);
      assert.deepEqual(await Promise.all(b.map((c) => c.closedEarly)), [false, false, false, false]);
      for (const c of b) c.socket.destroy();
    } finally {
      await counted.stop();
      await exempt.stop();
    }
  });
});
