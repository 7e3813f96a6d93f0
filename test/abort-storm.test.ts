/**
 * Client aborts must never hurt a request that was not aborted. An aborted request's child is let go of and, at the
 * request's deadline (or at once when its body was cut), SIGKILLed unless it serves one of the pool's connections
 * again. Having finished the aborted script, the child goes back to accept() and may be serving another request
 * before the gateway knows its pid: killing it then gave that request a 502 ("child died mid-request").
 *
 * A verifying load (every answer must carry its own request's token) runs beside clients that abort mid-script and
 * mid-body, through the real gateway and real php-cgi, bounded in time and count, on loopback.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startGateway, type RunningGateway } from './support/gateway.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-aborts-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const RUN_MS = 6_000;
const VERIFIERS = 3;
const ABORTERS = 4;

/** A short answer carrying the token; `ms` of work first. */
const ECHO = `<?php
usleep((int)($_GET['ms'] ?? 0) * 1000);
echo 'token=' . ($_GET['t'] ?? '') . ';' . file_get_contents('php://input');
`;

interface Tally {
  ok: number;
  failed: string[];
}

function get(port: number, target: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: target, agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Normal requests one after another until `until`; each answer must be 200 with its own token. */
async function verify(port: number, id: number, until: number, tally: Tally): Promise<void> {
  for (let n = 0; Date.now() < until; n++) {
    const token = `v${id}-${n}`;
    try {
      const r = await get(port, `/echo.php?t=${token}&ms=${n % 3}`);
      if (r.status === 200 && r.body === `token=${token};`) tally.ok++;
      else tally.failed.push(`${token}: ${r.status} ${r.body.slice(0, 80)}`);
    } catch (err) {
      tally.failed.push(`${token}: ${String(err)}`);
    }
  }
}

/** Requests given up on while PHP works (every other one with its body cut short), until `until`. */
async function abort(port: number, id: number, until: number): Promise<number> {
  let sent = 0;
  for (let n = 0; Date.now() < until; n++) {
    sent++;
    const cutBody = n % 2 === 1;
    await new Promise<void>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        const head = cutBody
          ? `POST /echo.php?t=a${id}-${n}&ms=5 HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\nContent-Type: application/octet-stream\r\n\r\n${'b'.repeat(2000)}`
          : `GET /echo.php?t=a${id}-${n}&ms=${20 + (n % 40)} HTTP/1.1\r\nHost: x\r\n\r\n`;
        s.write(head);
        setTimeout(() => s.destroy(), 2 + (n % 9));
      });
      s.on('error', () => undefined); // the reset this client causes itself
      s.on('close', () => resolve());
    });
  }
  return sent;
}

describe('client aborts under a verifying load', () => {
  let g: RunningGateway;
  before(async () => {
    fs.writeFileSync(path.join(tmp, 'echo.php'), ECHO);
    // A short timeout_ms, so the deadline kill of every aborted request comes while the load runs.
    g = await startGateway('php:\n  worker_count: 4\n  timeout_ms: 150\n  queue_timeout_ms: 10000\n', { docroot: tmp });
  });
  after(() => g.stop());

  test('thousands of aborts give zero failed answers to the requests that were not aborted', async () => {
    const until = Date.now() + RUN_MS;
    const tally: Tally = { ok: 0, failed: [] };
    const results = await Promise.all([
      ...Array.from({ length: VERIFIERS }, (_, i) => verify(g.port, i, until, tally).then(() => 0)),
      ...Array.from({ length: ABORTERS }, (_, i) => abort(g.port, i, until)),
    ]);
    const aborted = results.reduce((a, b) => a + b, 0);
    const died = g.logs().filter((l) => l.msg === 'php-cgi child died mid-request').length;
    assert.ok(aborted > 500, `only ${aborted} aborts were sent`);
    assert.ok(tally.ok > 200, `only ${tally.ok} verified answers`);
    assert.deepEqual(tally.failed, [], `${tally.failed.length} of ${tally.ok + tally.failed.length} normal requests failed beside ${aborted} aborts`);
    assert.equal(died, 0, 'a child died under a request that was not aborted');
  });
});

describe('a client that leaves a script that never writes again', () => {
  let g: RunningGateway;
  before(async () => {
    fs.writeFileSync(path.join(tmp, 'spin.php'), '<?php file_put_contents(__DIR__ . "/spin.pid", getmypid()); while (true) usleep(10000);\n');
    // As many children as workers: the worker that let the child go can reconnect only to that child once it is free.
    g = await startGateway('php:\n  worker_count: 2\n  timeout_ms: 400\n', { docroot: tmp });
  });
  after(() => g.stop());

  test('its child is killed at the request deadline, not left spinning, and the pool serves on', async () => {
    const pidFile = path.join(tmp, 'spin.pid');
    fs.rmSync(pidFile, { force: true });
    await new Promise<void>((resolve) => {
      const s = net.connect(g.port, '127.0.0.1', () => s.write('GET /spin.php HTTP/1.1\r\nHost: x\r\n\r\n'));
      s.on('error', () => undefined); // the reset this client causes itself
      s.on('close', () => resolve());
      setTimeout(() => s.destroy(), 100);
    });
    const started = Date.now();
    for (let i = 0; i < 50 && !fs.existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 20));
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    let alive = true;
    while (alive && Date.now() - started < 3000) {
      await new Promise((r) => setTimeout(r, 50));
      const stat = fs.existsSync(`/proc/${pid}/stat`) ? fs.readFileSync(`/proc/${pid}/stat`, 'utf8') : '';
      alive = stat !== '' && !/\) [ZX] /.test(stat);
    }
    assert.equal(alive, false, `child ${pid} still spinning ${Date.now() - started} ms after its client left (timeout_ms 400)`);
    for (let i = 0; i < 4; i++) {
      const r = await get(g.port, `/echo.php?t=after${i}`);
      assert.equal(r.body, `token=after${i};`);
    }
  });
});
