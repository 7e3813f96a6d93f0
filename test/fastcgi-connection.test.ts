/**
 * FcgiConnection over a real unix socket against a scripted FastCGI peer (a responder written here, speaking
 * the wire format byte by byte): split records, keep-alive, backpressure, protocol refusals, a peer that dies.
 * PHP itself is exercised through the gateway in the other suites.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { PhpgateError } from '../core/errors.js';
import { FcgiConnection, type ConnectionOwner, type FcgiResponseHandler } from '../php/fastcgi/connection.js';
import { ProtocolStatus, RecordType } from '../php/fastcgi/constants.js';
import { RecordDecoder } from '../php/fastcgi/decoder.js';
import { decodeNameValuePairs, encodeEndRequest, encodeStreamRecords } from '../php/fastcgi/record.js';
import { eventually } from './support/proc.js';

type Script = (requestParams: Map<string, string>, stdin: Buffer, sock: net.Socket) => Promise<void> | void;

/** A FastCGI responder that collects one request at a time and runs `script` to answer it. */
function peer(socketPath: string, script: () => Script): net.Server {
  return net
    .createServer((sock) => {
      let params = Buffer.alloc(0);
      let stdin = Buffer.alloc(0);
      const decoder = new RecordDecoder({
        onRecord(type, _id, content) {
          if (type === RecordType.Params) params = Buffer.concat([params, content]);
          if (type === RecordType.Stdin) {
            if (content.length > 0) stdin = Buffer.concat([stdin, content]);
            else {
              const map = new Map(decodeNameValuePairs(params));
              const body = stdin;
              params = Buffer.alloc(0);
              stdin = Buffer.alloc(0);
              void script()(map, body, sock);
            }
          }
        },
      });
      sock.on('data', (c: Buffer) => decoder.push(c));
      sock.on('error', () => undefined); // the client side closing mid-write is part of some tests
    })
    .listen(socketPath);
}

function bytesOf(parts: Buffer[]): Buffer {
  return Buffer.concat(parts);
}

async function writeSlowly(sock: net.Socket, data: Buffer): Promise<void> {
  for (let i = 0; i < data.length; i++) {
    sock.write(data.subarray(i, i + 1));
    if (i % 7 === 0) await new Promise((r) => setImmediate(r));
  }
}

class Collect implements FcgiResponseHandler {
  out: Buffer[] = [];
  err: Buffer[] = [];
  ended: Promise<{ status: number } | { error: PhpgateError }>;
  #resolve!: (v: { status: number } | { error: PhpgateError }) => void;
  pauseAfterFirst = false;
  pausedOnce = false;
  constructor() {
    this.ended = new Promise((r) => (this.#resolve = r));
  }
  onStdout(chunk: Buffer): boolean {
    this.out.push(Buffer.from(chunk));
    if (this.pauseAfterFirst && !this.pausedOnce) {
      this.pausedOnce = true;
      return false;
    }
    return true;
  }
  onStderr(chunk: Buffer): void {
    this.err.push(Buffer.from(chunk));
  }
  onEnd(appStatus: number): void {
    this.#resolve({ status: appStatus });
  }
  onError(error: PhpgateError): void {
    this.#resolve({ error });
  }
}

function newOwner(): ConnectionOwner & { closed: number } {
  return {
    closed: 0,
    onConnectionClose() {
      this.closed++;
    },
    onConnectionDrain() {
      // not counted: these tests watch closes only
    },
  };
}
const owner = newOwner();

describe('FcgiConnection against a scripted FastCGI peer', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-fcgi-'));
  const sockPath = path.join(dir, 'peer.sock');
  let next: Script = () => undefined;
  let server: net.Server;
  before(() => {
    server = peer(sockPath, () => next);
  });
  after(() => {
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a response written one byte at a time arrives whole, and the connection is kept for the next request', async () => {
    const big = Buffer.alloc(150_000, 'x');
    next = async (params, stdin, sock) => {
      const answer = bytesOf([
        ...encodeStreamRecords(
          RecordType.Stdout,
          1,
          Buffer.from(`Content-Type: text/plain\r\n\r\n${params.get('SCRIPT_NAME')}:${stdin.toString()}|`),
        ),
        ...encodeStreamRecords(RecordType.Stderr, 1, Buffer.from('a warning\n')),
        ...encodeStreamRecords(RecordType.Stdout, 1, big),
        ...encodeStreamRecords(RecordType.Stdout, 1, Buffer.alloc(0)),
        encodeEndRequest(1, 7, ProtocolStatus.RequestComplete),
      ]);
      await writeSlowly(sock, answer.subarray(0, 300));
      sock.write(answer.subarray(300));
    };
    const conn = await FcgiConnection.connect(sockPath, owner, 1000);
    for (const round of [1, 2]) {
      const h = new Collect();
      conn.begin([['SCRIPT_NAME', `/r${round}.php`]], h);
      conn.writeStdin(Buffer.from('body-é'));
      conn.endStdin();
      assert.deepEqual(await h.ended, { status: 7 });
      const text = Buffer.concat(h.out).toString();
      assert.ok(text.startsWith(`Content-Type: text/plain\r\n\r\n/r${round}.php:body-é|`));
      assert.equal(Buffer.concat(h.out).length, Buffer.byteLength(`Content-Type: text/plain\r\n\r\n/r${round}.php:body-é|`) + big.length);
      assert.equal(Buffer.concat(h.err).toString(), 'a warning\n');
      assert.ok(conn.idle, 'kept alive after END_REQUEST');
    }
    conn.destroy();
  });

  test('onStdout returning false pauses reading until resume()', async () => {
    next = (_p, _s, sock) => {
      for (let i = 0; i < 50; i++) sock.write(bytesOf(encodeStreamRecords(RecordType.Stdout, 1, Buffer.alloc(64 * 1024, i))));
      sock.write(bytesOf([...encodeStreamRecords(RecordType.Stdout, 1, Buffer.alloc(0)), encodeEndRequest(1, 0, 0)]));
    };
    const conn = await FcgiConnection.connect(sockPath, owner, 1000);
    const h = new Collect();
    h.pauseAfterFirst = true;
    conn.begin([], h);
    conn.endStdin();
    await eventually('the first chunk, on which the handler pauses', () => h.pausedOnce, 5000);
    // A quiet period, not a wait for an event: what is asserted is that nothing more is read meanwhile.
    await new Promise((r) => setTimeout(r, 200));
    const whilePaused = Buffer.concat(h.out).length;
    assert.ok(whilePaused < 50 * 64 * 1024, `paused: read ${whilePaused} bytes of 3.2 MB`);
    conn.resume();
    assert.deepEqual(await h.ended, { status: 0 });
    assert.equal(Buffer.concat(h.out).length, 50 * 64 * 1024);
    conn.destroy();
  });

  test('an OVERLOADED end-request is an error, not an empty 200', async () => {
    next = (_p, _s, sock) => {
      sock.write(encodeEndRequest(1, 0, ProtocolStatus.Overloaded));
    };
    const conn = await FcgiConnection.connect(sockPath, owner, 1000);
    const h = new Collect();
    conn.begin([], h);
    conn.endStdin();
    const r = await h.ended;
    assert.ok('error' in r);
    assert.match(r.error.message, /protocol status 2/);
  });

  test('a peer that closes mid-response fails the request once and reports the close', async () => {
    next = (_p, _s, sock) => {
      sock.write(bytesOf(encodeStreamRecords(RecordType.Stdout, 1, Buffer.from('Status: 200\r\n\r\npartial'))));
      setTimeout(() => sock.destroy(), 20);
    };
    const own = newOwner();
    const conn = await FcgiConnection.connect(sockPath, own, 1000);
    const h = new Collect();
    conn.begin([], h);
    conn.endStdin();
    const r = await h.ended;
    assert.ok('error' in r && r.error.code === 'PG_ERR_UPSTREAM_CLOSED');
    assert.equal(own.closed, 1);
    assert.equal(conn.closed, true);
  });

  test('a record with a wrong version byte fails the request as a protocol error', async () => {
    next = (_p, _s, sock) => {
      const rec = bytesOf(encodeStreamRecords(RecordType.Stdout, 1, Buffer.from('x')));
      rec[0] = 9;
      sock.write(rec);
    };
    const conn = await FcgiConnection.connect(sockPath, owner, 1000);
    const h = new Collect();
    conn.begin([], h);
    conn.endStdin();
    const r = await h.ended;
    assert.ok('error' in r && r.error.code === 'PG_ERR_FCGI_PROTOCOL', JSON.stringify(r));
  });
});
