/**
 * rate_limit.* through the real gateway (real php-cgi behind it): the 429 sequence with Retry-After and the
 * RateLimit-* headers for static files and PHP, rules confined to their patterns, overlapping rules (every
 * matching rule counts, the tightest refuses), block_s, keys by header, client addresses behind trusted proxies,
 * and the Redis store: two gateways sharing one counter, a Redis killed mid-test (per-instance limits, no 5xx)
 * and restarted (shared again).
 *
 * Every request comes from 127.0.0.1, so each test uses paths of its own rules: counters never leak between tests.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PHP_USER_ENV, request, startGateway, type RunningGateway, type SimpleResponse } from './support/gateway.js';
import { eventually } from './support/proc.js';
import { startRedis, type RunningRedis } from './support/redis.js';

const PHP_BODY = 'login-page-ran';

/** A docroot of our own: a few static files and one PHP script. */
function makeDocroot(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-ratelimit-'));
  for (const name of ['hello.txt', 'other.txt', 'who.txt', 'blocked.txt', 'unblocked.txt', 'shared.txt', 'solo.txt', 'after.txt']) {
    fs.writeFileSync(path.join(root, name), `${name}\n`);
  }
  fs.mkdirSync(path.join(root, 'api', 'tight'), { recursive: true });
  fs.writeFileSync(path.join(root, 'api', 'wide.txt'), 'wide\n');
  fs.writeFileSync(path.join(root, 'api', 'tight', 'x.txt'), 'tight\n');
  fs.mkdirSync(path.join(root, 'keyed'));
  fs.writeFileSync(path.join(root, 'keyed', 'data.txt'), 'keyed\n');
  fs.writeFileSync(path.join(root, 'login.php'), `<?php echo '${PHP_BODY}';\n`);
  fs.writeFileSync(path.join(root, 'wp-login.php'), `<?php echo '${PHP_BODY}';\n`);
  return root;
}

function get(gw: RunningGateway, target: string, headers: Record<string, string> = {}): Promise<SimpleResponse> {
  return request(gw.base, target, { headers });
}

async function statuses(gw: RunningGateway, target: string, n: number, headers: Record<string, string> = {}): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await get(gw, target, headers)).status);
  return out;
}

function num(res: SimpleResponse, name: string): number {
  const v = res.headers[name.toLowerCase()];
  assert.equal(typeof v, 'string', `${name} header missing (status ${res.status})`);
  assert.match(v as string, /^\d+$/, `${name}: ${String(v)}`);
  return Number(v);
}

/** The allowed answers of one rule: Limit constant, Remaining counting down, a Reset within the window. */
function assertCountdown(answers: readonly SimpleResponse[], limit: number, windowS: number): void {
  answers.forEach((res, i) => {
    assert.equal(res.status, 200, `request ${i + 1}`);
    assert.equal(num(res, 'RateLimit-Limit'), limit);
    assert.equal(num(res, 'RateLimit-Remaining'), limit - 1 - i);
    const reset = num(res, 'RateLimit-Reset');
    assert.ok(reset >= 1 && reset <= windowS, `RateLimit-Reset ${reset}`);
    assert.equal(res.headers['retry-after'], undefined, 'Retry-After only on 429');
  });
}

function assertRefused(res: SimpleResponse, limit: number, maxWaitS: number): number {
  assert.equal(res.status, 429);
  assert.equal(num(res, 'RateLimit-Limit'), limit);
  assert.equal(num(res, 'RateLimit-Remaining'), 0);
  const retry = num(res, 'Retry-After');
  assert.ok(retry >= 1 && retry <= maxWaitS, `Retry-After ${retry}`);
  assert.ok(num(res, 'RateLimit-Reset') >= 1);
  return retry;
}

describe('rate limiting with the memory store', () => {
  let docroot: string;
  let gw: RunningGateway;

  before(async () => {
    docroot = makeDocroot();
    gw = await startGateway(
      `
php: { worker_count: 1 }
rate_limit:
  headers: always
  rules:
    - { pattern: "/hello.txt", points: 3, duration_s: 60 }
    - { pattern: "/login.php", points: 2, duration_s: 60 }
    - { pattern: "/wp-login.php", points: 2, duration_s: 60 }
    - { pattern: "/api/*", points: 10, duration_s: 60 }
    - { pattern: "/api/tight/*", points: 2, duration_s: 60 }
    - { pattern: "/blocked.txt", points: 1, duration_s: 1, block_s: 30 }
    - { pattern: "/unblocked.txt", points: 1, duration_s: 1 }
    - { pattern: "/keyed/*", points: 2, duration_s: 60, key: "header:X-Api-Key" }
`,
      { docroot },
    );
  });

  after(async () => {
    await gw.stop();
    fs.rmSync(docroot, { recursive: true, force: true });
  });

  test('a static file: N allowed with RateLimit-* counting down, then 429 with Retry-After', async () => {
    const allowed = [await get(gw, '/hello.txt'), await get(gw, '/hello.txt'), await get(gw, '/hello.txt')];
    assertCountdown(allowed, 3, 60);
    assert.equal(allowed[0]!.text, 'hello.txt\n');
    const refused = await get(gw, '/hello.txt');
    assertRefused(refused, 3, 60);
    assert.doesNotMatch(refused.text, /hello\.txt/);
    assert.equal((await get(gw, '/hello.txt')).status, 429, 'still refused within the window');
  });

  test('a PHP script: N allowed, then 429 answered by the gateway without running PHP', async () => {
    const allowed = [await get(gw, '/login.php'), await get(gw, '/login.php')];
    assertCountdown(allowed, 2, 60);
    assert.equal(allowed[1]!.text, PHP_BODY);
    const refused = await get(gw, '/login.php');
    assertRefused(refused, 2, 60);
    assert.doesNotMatch(refused.text, new RegExp(PHP_BODY));
  });

  test('a rule on a script counts the URLs that run it with a PATH_INFO (/wp-login.php/x, /wp-login.php%2f)', async () => {
    const viaPathInfo = await get(gw, '/wp-login.php/x');
    assert.equal(viaPathInfo.status, 200);
    assert.equal(viaPathInfo.text, PHP_BODY, 'the script ran');
    assert.equal((await get(gw, '/wp-login.php%2f')).status, 200);
    assertRefused(await get(gw, '/wp-login.php'), 2, 60);
    assertRefused(await get(gw, '/wp-login.php/other'), 2, 60);
  });

  test('a path no rule matches is never limited and gets no RateLimit headers', async () => {
    for (const res of await Promise.all(Array.from({ length: 12 }, () => get(gw, '/other.txt')))) {
      assert.equal(res.status, 200);
      assert.equal(res.headers['ratelimit-limit'], undefined);
      assert.equal(res.headers['retry-after'], undefined);
    }
  });

  test('overlapping rules: the tighter refuses, and every matching rule counts the request (refused ones too)', async () => {
    const allowed = [await get(gw, '/api/tight/x.txt'), await get(gw, '/api/tight/x.txt')];
    assertCountdown(allowed, 2, 60); // the headers describe the tightest matching rule
    assertRefused(await get(gw, '/api/tight/x.txt'), 2, 60);
    // /api/* (10 points) counted all three, so a path only it matches has 10 - 3 - 1 left.
    const wide = await get(gw, '/api/wide.txt');
    assert.equal(wide.status, 200);
    assert.equal(num(wide, 'RateLimit-Limit'), 10);
    assert.equal(num(wide, 'RateLimit-Remaining'), 6);
  });

  test('block_s keeps refusing after the window would have reset; without it the next window admits again', async () => {
    assert.deepEqual(await statuses(gw, '/blocked.txt', 1), [200]);
    assert.deepEqual(await statuses(gw, '/unblocked.txt', 1), [200]);
    const blocked = await get(gw, '/blocked.txt');
    const retry = assertRefused(blocked, 1, 30);
    assert.ok(retry > 1, `Retry-After ${retry} names the block, not the 1 s window`);
    assert.equal((await get(gw, '/unblocked.txt')).status, 429);
    // Past the 1 s window (with margin): the plain rule starts a new window; the blocked key stays blocked.
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await get(gw, '/unblocked.txt')).status, 200);
    assertRefused(await get(gw, '/blocked.txt'), 1, 30);
  });

  test('key by header: each X-Api-Key has its own counter; without the header the client address counts', async () => {
    assert.deepEqual(await statuses(gw, '/keyed/data.txt', 3, { 'X-Api-Key': 'key-a' }), [200, 200, 429]);
    assert.deepEqual(await statuses(gw, '/keyed/data.txt', 3, { 'X-Api-Key': 'key-b' }), [200, 200, 429]);
    assert.deepEqual(await statuses(gw, '/keyed/data.txt', 3), [200, 200, 429]);
    assert.deepEqual(await statuses(gw, '/keyed/data.txt', 1, { 'X-Api-Key': 'key-c' }), [200]);
  });

  test('an API key equal to a client address does not spend that address counter (keys are namespaced)', async () => {
    const other = await startGateway(
      `
php: { worker_count: 1 }
rate_limit:
  rules: [{ pattern: "/keyed/*", points: 2, duration_s: 60, key: "header:X-Api-Key" }]
`,
      { docroot },
    );
    try {
      assert.deepEqual(await statuses(other, '/keyed/data.txt', 3, { 'X-Api-Key': '127.0.0.1' }), [200, 200, 429]);
      assert.deepEqual(await statuses(other, '/keyed/data.txt', 2), [200, 200], 'the address 127.0.0.1 still has its points');
    } finally {
      await other.stop();
    }
  });
});

describe('rate limiting with the default headers: "refused"', () => {
  test('allowed answers carry no RateLimit-* headers; the 429 carries them and Retry-After', async () => {
    const docroot = makeDocroot();
    const gw = await startGateway('php: { worker_count: 1 }\nrate_limit:\n  rules: [{ pattern: "/hello.txt", points: 2, duration_s: 60 }]\n', {
      docroot,
    });
    try {
      for (const res of [await get(gw, '/hello.txt'), await get(gw, '/hello.txt')]) {
        assert.equal(res.status, 200);
        assert.equal(res.headers['ratelimit-limit'], undefined);
        assert.equal(res.headers['ratelimit-remaining'], undefined);
      }
      assertRefused(await get(gw, '/hello.txt'), 2, 60);
    } finally {
      await gw.stop();
      fs.rmSync(docroot, { recursive: true, force: true });
    }
  });
});

describe('rate limiting across a reload', () => {
  test('a reload with the same rules keeps the counts; changed rules start afresh', async () => {
    const docroot = makeDocroot();
    const rules = (points: number): string =>
      `php: { worker_count: 1 }\nrate_limit:\n  rules: [{ pattern: "/solo.txt", points: ${points}, duration_s: 60 }]\n`;
    const gw = await startGateway(rules(2), { docroot });
    try {
      assert.deepEqual(await statuses(gw, '/solo.txt', 2), [200, 200]);
      const { loadConfig } = await import('../config/load.js');
      const reloadWith = async (text: string): Promise<void> => {
        const next = loadConfig({ text, file: 'test.yaml', env: { PATH: process.env['PATH'], ...PHP_USER_ENV }, overrides: { docroot } });
        await gw.gateway.reload({
          ...next,
          server: gw.config.server,
          admin: gw.config.admin,
          php: { ...next.php, socket_dir: gw.config.php.socket_dir },
        });
      };
      await reloadWith(rules(2));
      assert.deepEqual(await statuses(gw, '/solo.txt', 1), [429], 'the allowance spent before the reload stays spent');
      await reloadWith(rules(3));
      assert.deepEqual(await statuses(gw, '/solo.txt', 4), [200, 200, 200, 429]);
    } finally {
      await gw.stop();
      fs.rmSync(docroot, { recursive: true, force: true });
    }
  });
});

describe('rate limiting and trusted proxies', () => {
  const RULES = `
php: { worker_count: 1 }
rate_limit:
  rules: [{ pattern: "/who.txt", points: 1, duration_s: 60 }]
`;
  let docroot: string;
  let trusting: RunningGateway;
  let plain: RunningGateway;

  before(async () => {
    docroot = makeDocroot();
    trusting = await startGateway(`server: { trusted_proxies: ["127.0.0.1"] }\n${RULES}`, { docroot });
    plain = await startGateway(RULES, { docroot });
  });

  after(async () => {
    await trusting.stop();
    await plain.stop();
    fs.rmSync(docroot, { recursive: true, force: true });
  });

  test('behind a trusted proxy, each X-Forwarded-For client has its own counter', async () => {
    assert.deepEqual(await statuses(trusting, '/who.txt', 2, { 'X-Forwarded-For': '203.0.113.1' }), [200, 429]);
    assert.deepEqual(await statuses(trusting, '/who.txt', 2, { 'X-Forwarded-For': '203.0.113.2' }), [200, 429]);
  });

  test('without trusted_proxies X-Forwarded-For is ignored: a forged header does not buy a new counter', async () => {
    assert.deepEqual(await statuses(plain, '/who.txt', 1, { 'X-Forwarded-For': '203.0.113.1' }), [200]);
    assert.deepEqual(await statuses(plain, '/who.txt', 1, { 'X-Forwarded-For': '203.0.113.2' }), [429]);
  });
});

describe('rate limiting with a Redis store', () => {
  const UNREACHABLE = 'rate limit store unreachable: limits are counted per instance until it is back';
  const BACK = 'rate limit store reachable again: counters are shared again';
  let docroot: string;
  let redis: RunningRedis;
  let a: RunningGateway;
  let b: RunningGateway;

  const said = (gw: RunningGateway, msg: string): number => gw.logs().filter((l) => l.msg === msg).length;

  before(async () => {
    docroot = makeDocroot();
    redis = await startRedis();
    const yaml = `
php: { worker_count: 1 }
rate_limit:
  store: "${redis.url}"
  headers: always
  rules:
    - { pattern: "/shared.txt", points: 4, duration_s: 60 }
    - { pattern: "/solo.txt", points: 2, duration_s: 60 }
    - { pattern: "/after.txt", points: 2, duration_s: 60 }
`;
    a = await startGateway(yaml, { docroot });
    b = await startGateway(yaml, { docroot });
    for (const gw of [a, b]) await eventually('the gateway to reach Redis', () => said(gw, 'rate limit store connected') === 1);
  });

  after(async () => {
    // Stopping the gateways quits their Redis connections; a connection left open would keep this file running.
    await a.stop();
    await b.stop();
    await redis.stop();
    fs.rmSync(docroot, { recursive: true, force: true });
  });

  test('two gateways share one counter: requests split across both are refused at the shared limit', async () => {
    const answers = [await get(a, '/shared.txt'), await get(b, '/shared.txt'), await get(a, '/shared.txt'), await get(b, '/shared.txt')];
    assertCountdown(answers, 4, 60);
    assertRefused(await get(a, '/shared.txt'), 4, 60);
    assertRefused(await get(b, '/shared.txt'), 4, 60);
  });

  test('Redis killed: both keep serving (no 5xx) with per-instance limits, warning once; restarted: shared again', async () => {
    await redis.stop('SIGKILL');
    for (const gw of [a, b]) await eventually('the outage to be noticed', () => said(gw, UNREACHABLE) === 1);
    // Per instance now: each gateway admits the full limit once, then refuses.
    assert.deepEqual(await statuses(a, '/solo.txt', 3), [200, 200, 429]);
    assert.deepEqual(await statuses(b, '/solo.txt', 3), [200, 200, 429]);
    // Let several reconnection attempts fail: still one warning per gateway, not one per attempt or request.
    await new Promise((r) => setTimeout(r, 1000));
    for (const gw of [a, b]) assert.equal(said(gw, UNREACHABLE), 1);

    redis = await startRedis({ port: redis.port });
    for (const gw of [a, b]) await eventually('Redis to be reached again', () => said(gw, BACK) === 1);
    const answers = [await get(a, '/after.txt'), await get(b, '/after.txt')];
    assertCountdown(answers, 2, 60);
    assertRefused(await get(a, '/after.txt'), 2, 60);
    assertRefused(await get(b, '/after.txt'), 2, 60);
  });
});

describe('rate limiting with a Redis store that hangs (a partition: connected, never answering)', () => {
  const HUNG = 'rate limit store not answering: limits are counted per instance until it answers again';
  const ANSWERING = 'rate limit store answering again: counters are shared again';
  let docroot: string;
  let redis: RunningRedis;
  let gw: RunningGateway;

  before(async () => {
    docroot = makeDocroot();
    redis = await startRedis();
    gw = await startGateway(
      `php: { worker_count: 1 }\nrate_limit:\n  store: "${redis.url}"\n  rules:\n    - { pattern: "/hello.txt", points: 1000, duration_s: 60 }\n`,
      {
        docroot,
      },
    );
    await eventually('the gateway to reach Redis', () => gw.logs().some((l) => l.msg === 'rate limit store connected'));
  });

  after(async () => {
    process.kill(redis.pid, 'SIGCONT');
    await gw.stop();
    await redis.stop('SIGKILL');
    fs.rmSync(docroot, { recursive: true, force: true });
  });

  test('a SIGSTOPped Redis costs a few slow requests, then the breaker counts locally at once; SIGCONT: shared again', async () => {
    assert.equal((await get(gw, '/hello.txt')).status, 200);
    process.kill(redis.pid, 'SIGSTOP');
    const took: number[] = [];
    for (let i = 0; i < 40; i++) {
      const t0 = performance.now();
      const r = await get(gw, '/hello.txt');
      took.push(performance.now() - t0);
      assert.equal(r.status, 200, 'never refused or failed because the store hangs');
    }
    const slow = took.filter((ms) => ms > 200).length;
    assert.ok(slow <= 3, `${slow} of 40 requests waited for the hung store: ${took.map((ms) => Math.round(ms)).join(' ')}`);
    assert.equal(gw.logs().filter((l) => l.msg === HUNG && l.level === 40).length, 1, 'one warning');
    const metrics = gw.gateway.status().rateLimit;
    assert.ok(JSON.stringify(metrics).includes('fallback'), `the store's state says so: ${JSON.stringify(metrics)}`);

    process.kill(redis.pid, 'SIGCONT');
    await eventually('Redis answering again', () => gw.logs().some((l) => l.msg === ANSWERING));
    const t0 = performance.now();
    assert.equal((await get(gw, '/hello.txt')).status, 200);
    assert.ok(performance.now() - t0 < 200);
    assert.ok(!JSON.stringify(gw.gateway.status().rateLimit).includes('fallback'));
  });
});
