/**
 * Purges shared between gateway instances (cache.purge_redis) through real gateways, real php-cgi and a private
 * redis-server: a purge on instance A empties the page on B (admin endpoint and `phpgate cache purge`); with Redis
 * down A purges itself and says B was not reached; once Redis is back B clears its cache and purges reach it
 * again; messages that are not valid purges, and purges on another channel, change nothing; a reload can move an
 * instance onto another channel; a frozen Redis is noticed by the PING; and an instance of two processes gets each
 * purge once per process.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { decodePurge, encodePurge, sharedPurgeSettings } from '../gateway/cache-purge.js';
import { loadConfig } from '../config/load.js';
import { ConfigError } from '../config/errors.js';
import { PHP_USER_ENV, request, startGateway, type RunningGateway, type SimpleResponse } from './support/gateway.js';
import { eventually, eventuallyAsync, freePort } from './support/proc.js';
import { startRedis, type RunningRedis } from './support/redis.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-shared-purge-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Each render has its own number, so a re-render shows in the body. */
const PAGE = `<?php
$f = __DIR__ . '/renders.txt';
$fp = fopen($f, 'c+'); flock($fp, LOCK_EX);
$n = (int)stream_get_contents($fp) + 1;
ftruncate($fp, 0); rewind($fp); fwrite($fp, (string)$n); flock($fp, LOCK_UN); fclose($fp);
echo "render $n pid " . getmypid();
`;

const docroot = path.join(tmp, 'site');
fs.mkdirSync(docroot);
fs.writeFileSync(path.join(docroot, 'page.php'), PAGE);

const xcache = (r: SimpleResponse): string | undefined => r.headers['x-cache'] as string | undefined;

function yaml(redisUrl: string, extra = ''): string {
  return `php:\n  worker_count: 1\ncache:\n  purge_redis: "${redisUrl}"\n${extra}  rules:\n    - { pattern: "/page.php", ttl_s: 600 }\n`;
}

function cli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'gateway/cli.ts', ...args],
      { cwd: root, encoding: 'utf8', timeout: 30_000 },
      (err, stdout, stderr) => {
        resolve({ status: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr });
      },
    );
  });
}

const logged = (g: RunningGateway, msg: string): Array<Record<string, unknown>> => g.logs().filter((l) => l['msg'] === msg);

/** Cached on g: a MISS (a render), then a HIT with the same body. Returns the body. */
async function cached(g: RunningGateway): Promise<string> {
  const first = await request(g.base, '/page.php');
  assert.equal(first.status, 200, first.text);
  const second = await request(g.base, '/page.php');
  assert.equal(xcache(second), 'HIT');
  assert.equal(second.text, first.text);
  return second.text;
}

/** The next request on g is a MISS with a new render. */
async function rendersAnew(g: RunningGateway, before: string): Promise<void> {
  const r = await request(g.base, '/page.php');
  assert.equal(xcache(r), 'MISS', `expected a MISS, got ${xcache(r)}: ${r.text}`);
  assert.notEqual(r.text, before, 'a new render');
}

async function purgeOn(g: RunningGateway, pattern: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await request(g.adminBase, `/cache/purge?pattern=${encodeURIComponent(pattern)}`, { method: 'POST' });
  return { status: r.status, body: JSON.parse(r.text) as Record<string, unknown> };
}

describe('cache purges shared through Redis: two instances', () => {
  let redis: RunningRedis;
  let a: RunningGateway;
  let b: RunningGateway;
  let other: RunningGateway;
  let configA = '';

  before(async () => {
    redis = await startRedis();
    a = await startGateway(yaml(redis.url), { docroot, admin: true });
    b = await startGateway(yaml(redis.url), { docroot });
    // Same Redis, another database: another deployment, whose channel differs.
    other = await startGateway(yaml(`${redis.url}/1`), { docroot });
    for (const g of [a, b, other]) await eventually('subscribed', () => logged(g, 'cache purges shared through Redis').length === 1);
    configA = path.join(tmp, 'a.yaml');
    fs.writeFileSync(configA, `admin:\n  port: ${new URL(a.adminBase).port}\nphp:\n  docroot: ${JSON.stringify(docroot)}\n`);
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop(), other?.stop()]);
    await redis?.stop();
  });

  test('a purge on A through the admin endpoint empties the page on B and on A, not on another channel', async () => {
    const [onA, onB, onOther] = [await cached(a), await cached(b), await cached(other)];
    const { status, body } = await purgeOn(a, '/page.php');
    assert.equal(status, 200);
    assert.deepEqual(body, { pattern: '/page.php', purged: 1, instances: 'all', subscribers: 2 });
    await eventually('B applied it', () => logged(b, 'cache purged by another instance').length === 1);
    assert.deepEqual(logged(b, 'cache purged by another instance')[0]!['purged'], 1);
    await rendersAnew(b, onB);
    await rendersAnew(a, onA);
    // A does not apply its own message a second time; the other deployment never sees it.
    assert.equal(logged(a, 'cache purged by another instance').length, 0);
    const stillThere = await request(other.base, '/page.php');
    assert.equal(xcache(stillThere), 'HIT');
    assert.equal(stillThere.text, onOther);
  });

  test('phpgate cache purge against A reaches B', async () => {
    const onB = await cached(b);
    const before = logged(b, 'cache purged by another instance').length;
    const out = await cli(['cache', 'purge', '/page.php', '--config', configA]);
    assert.equal(out.status, 0, out.stderr);
    assert.match(out.stdout, /purged 1 cached answer\(s\) matching \/page\.php here, and sent the purge to every instance on Redis \(2 gateway/);
    await eventually('B applied it', () => logged(b, 'cache purged by another instance').length === before + 1);
    await rendersAnew(b, onB);
  });

  test('messages that are not valid purges are dropped; a valid one from elsewhere applies', async () => {
    const onB = await cached(b);
    const client = new Redis(redis.url, { maxRetriesPerRequest: 0 });
    try {
      const channel = 'phpgate:cache-purge:0';
      for (const junk of [
        'not json',
        JSON.stringify({ purge: 'page.php', from: 'x' }), // the pattern rule: starts with / or *
        JSON.stringify({ purge: '*', from: 'x', extra: 'FLUSHALL' }),
        JSON.stringify({ purge: '*' }),
        JSON.stringify({ purge: '*', from: 'x'.repeat(65) }),
        JSON.stringify({ purge: '/' + 'a'.repeat(20_000), from: 'x' }),
        JSON.stringify(['*', 'x']),
      ]) {
        await client.publish(channel, junk);
      }
      await eventually('dropped', () => logged(b, 'cache purge channel: dropped a message that is not a valid purge').length === 1);
      const r = await request(b.base, '/page.php');
      assert.equal(xcache(r), 'HIT', 'nothing was purged');
      assert.equal(r.text, onB);
      const before = logged(b, 'cache purged by another instance').length;
      await client.publish(channel, encodePurge('someone-else', '/page.*'));
      await eventually('applied', () => logged(b, 'cache purged by another instance').length === before + 1);
      await rendersAnew(b, onB);
    } finally {
      client.disconnect();
    }
  });

  test('with Redis down, A purges itself and says B was not reached; once Redis is back, B clears and purges reach it again', async () => {
    const port = redis.port;
    await redis.stop('SIGKILL');
    for (const g of [a, b]) await eventually('channel lost', () => g.logs().some((l) => String(l['msg']).startsWith('cache purge channel lost')));
    const [onA, onB] = [await cached(a), await cached(b)];
    const { status, body } = await purgeOn(a, '/page.php');
    assert.equal(status, 200);
    assert.deepEqual(body, { pattern: '/page.php', purged: 1, instances: 'local only: redis unavailable' });
    assert.ok(
      a.logs().some((l) => l['level'] === 40 && l['msg'] === 'cache purge done here but not sent to the other instances: Redis unavailable'),
      'warned',
    );
    await rendersAnew(a, onA);
    // B missed it (Pub/Sub keeps nothing): it still has the page, until its subscription comes back.
    const missed = await request(b.base, '/page.php');
    assert.equal(xcache(missed), 'HIT');
    const out = await cli(['cache', 'purge', '/page.php', '--config', configA]);
    assert.equal(out.status, 1, out.stdout);
    assert.match(out.stdout, /purged 1 cached answer\(s\) matching \/page\.php here/);
    assert.match(out.stderr, /other instances were not reached \(local only: redis unavailable\)/);

    redis = await startRedis({ port });
    for (const g of [a, b])
      await eventually('channel back', () => g.logs().some((l) => String(l['msg']).startsWith('cache purge channel back')), 15_000);
    // B's cache was cleared when it subscribed again: the purge it missed cannot leave it a stale page.
    await rendersAnew(b, onB);
    const again = await cached(b);
    const appliedBefore = logged(b, 'cache purged by another instance').length;
    // The publisher reconnects by itself too.
    await eventuallyAsync('purges reach B again', async () => (await purgeOn(a, '/page.php')).body['instances'] === 'all', 15_000);
    await eventually('B applied it', () => logged(b, 'cache purged by another instance').length > appliedBefore);
    await rendersAnew(b, again);
  });
});

describe('cache purges shared through Redis: a reload, and a Redis that stops answering', () => {
  let redis: RunningRedis;
  let a: RunningGateway;
  let b: RunningGateway;

  before(async () => {
    redis = await startRedis();
    a = await startGateway(yaml(redis.url), { docroot, admin: true });
    b = await startGateway(yaml(redis.url, '  purge_channel: elsewhere\n'), { docroot });
    for (const g of [a, b]) await eventually('subscribed', () => logged(g, 'cache purges shared through Redis').length === 1);
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop('SIGKILL');
  });

  test("a reload onto A's channel makes B receive A's purges", async () => {
    const onB = await cached(b);
    assert.equal((await purgeOn(a, '/page.php')).body['subscribers'], 1, 'B listens elsewhere');
    assert.equal(xcache(await request(b.base, '/page.php')), 'HIT');
    await b.gateway.reload({ ...b.config, cache: { ...b.config.cache, purge_channel: '' } });
    await eventually('B subscribed anew', () => logged(b, 'cache purges shared through Redis').length === 2);
    const again = await cached(b);
    assert.notEqual(again, onB, 'a changed cache.* starts a new cache');
    assert.equal((await purgeOn(a, '/page.php')).body['subscribers'], 2);
    await eventually('B applied it', () => logged(b, 'cache purged by another instance').length === 1);
    await rendersAnew(b, again);
  });

  test('a subscription that stops answering (Redis frozen) is noticed by its PING, and cleared once Redis answers again', async () => {
    const onB = await cached(b);
    process.kill(redis.pid, 'SIGSTOP');
    try {
      await eventually(
        'PING failed',
        () => b.logs().some((l) => String(l['reason']).startsWith('PING failed') && String(l['msg']).startsWith('cache purge channel lost')),
        20_000,
      );
    } finally {
      process.kill(redis.pid, 'SIGCONT');
    }
    await eventually('channel back', () => b.logs().some((l) => String(l['msg']).startsWith('cache purge channel back')), 20_000);
    await rendersAnew(b, onB);
  });
});

describe('cache purges shared through Redis: an instance of two processes', () => {
  let redis: RunningRedis;
  let b: RunningGateway;
  let proc: ReturnType<typeof spawn>;
  let output = '';
  let base = '';
  let admin = '';
  const lines = (): Array<Record<string, unknown>> =>
    output
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const count = (msg: string): number => lines().filter((l) => l['msg'] === msg).length;

  before(async () => {
    redis = await startRedis();
    b = await startGateway(yaml(redis.url), { docroot, admin: true });
    const port = await freePort();
    const adminPort = await freePort();
    const file = path.join(tmp, 'two.yaml');
    fs.writeFileSync(
      file,
      `server:\n  host: 127.0.0.1\n  port: ${port}\n  processes: 2\nadmin:\n  port: ${adminPort}\nphp:\n  docroot: ${JSON.stringify(docroot)}\n  worker_count: 2\n  socket_dir: ${JSON.stringify(path.join(tmp, 'sock2'))}\n${yaml(redis.url).replace(/^php:\n {2}worker_count: 1\n/, '')}`,
    );
    proc = spawn(process.execPath, ['--import', 'tsx', 'gateway/cli.ts', '--config', file], {
      cwd: root,
      env: { ...process.env, ...PHP_USER_ENV },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc.stdout!.on('data', (c: Buffer) => (output += c.toString()));
    proc.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    await eventually('both processes subscribed', () => count('cache purges shared through Redis') === 2 || proc.exitCode !== null, 30_000);
    assert.equal(proc.exitCode, null, output);
    base = `http://127.0.0.1:${port}`;
    admin = `http://127.0.0.1:${adminPort}`;
  });
  after(async () => {
    if (proc !== undefined && proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    }
    await b?.stop();
    await redis?.stop();
  });

  test("a purge from another instance reaches both processes once each; the instance's own purge is not applied twice", async () => {
    const fromB = await purgeOn(b, '/page.php');
    assert.equal(fromB.body['subscribers'], 3, 'B and the two processes are subscribed');
    await eventually('both processes applied it', () => count('cache purged by another instance') === 2);
    const pids = new Set(
      lines()
        .filter((l) => l['msg'] === 'cache purged by another instance')
        .map((l) => l['pid']),
    );
    assert.equal(pids.size, 2, 'one each');

    const r = await request(admin, '/cache/purge?pattern=/page.php', { method: 'POST' });
    assert.equal(r.status, 200, r.text);
    assert.equal((JSON.parse(r.text) as { instances: string }).instances, 'all');
    await eventually('B applied it', () => logged(b, 'cache purged by another instance').length === 1);
    // Give the instance's own message time to arrive at its two processes: neither applies it.
    await request(base, '/page.php');
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(count('cache purged by another instance'), 2, 'its own purge came back through Redis and was ignored');
  });
});

describe('cache.purge_redis and cache.purge_channel', () => {
  const load = (text: string): ReturnType<typeof loadConfig> => loadConfig({ text, file: 'g.yaml', baseDir: tmp, env: {}, overrides: { docroot } });

  test('"" follows rate_limit.store when it is a Redis; "off" keeps purges local; the channel carries the database', () => {
    assert.equal(sharedPurgeSettings(load('cache: {}\n')), null);
    assert.deepEqual(sharedPurgeSettings(load('rate_limit:\n  store: redis://10.0.0.5:6379/3\n')), {
      url: 'redis://10.0.0.5:6379/3',
      channel: 'phpgate:cache-purge:3',
    });
    assert.equal(sharedPurgeSettings(load('rate_limit:\n  store: redis://10.0.0.5\ncache:\n  purge_redis: "off"\n')), null);
    assert.deepEqual(sharedPurgeSettings(load('cache:\n  purge_redis: redis://r\n  purge_channel: shop-prod\n')), {
      url: 'redis://r',
      channel: 'shop-prod',
    });
  });

  test('bad values are refused with their place', () => {
    assert.throws(
      () => load('cache:\n  purge_redis: http://r\n'),
      (e: unknown) => e instanceof ConfigError && /g\.yaml:2:\d+.*purge_redis/.test(e.message),
    );
    assert.throws(
      () => load('cache:\n  purge_channel: "a b"\n'),
      (e: unknown) => e instanceof ConfigError && /g\.yaml:2:\d+.*purge_channel/.test(e.message),
    );
  });

  test('decodePurge takes a purge and nothing else', () => {
    assert.deepEqual(decodePurge(encodePurge('i1', '/blog/*')), { from: 'i1', pattern: '/blog/*' });
    for (const raw of [
      '',
      'null',
      '"*"',
      '{"purge":"*","from":""}',
      '{"purge":"","from":"i"}',
      '{"purge":1,"from":"i"}',
      '{"from":"i","purge":"x/*"}',
    ]) {
      assert.equal(decodePurge(raw), null, raw);
    }
  });
});
