/**
 * Pools against real php-cgi: routing by URL pattern, shared APCu across the children of one master, children
 * and masters that die, timeouts, recycling and queueing.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { request, startGateway, type RunningGateway } from './support/gateway.js';
import { eventually, running } from './support/proc.js';

const docroot = fileURLToPath(new URL('./fixtures/pools/', import.meta.url));

async function getJson(g: RunningGateway, target: string): Promise<{ status: number; body: { pid: number; value?: unknown } }> {
  const res = await request(g.base, target);
  return { status: res.status, body: res.status === 200 ? (JSON.parse(res.text) as { pid: number; value?: unknown }) : { pid: 0 } };
}

function workerPids(g: RunningGateway, pool: string): number[] {
  return g.gateway.pools
    .get(pool)!
    .stats()
    .workers.map((w) => w.pid);
}

function allIdle(g: RunningGateway, pool: string): boolean {
  const s = g.gateway.pools.get(pool)!.stats();
  return s.workers.every((w) => w.state === 'idle' && w.pid > 0);
}

describe('pools', () => {
  let g: RunningGateway;
  before(async () => {
    g = await startGateway(
      `
php:
  worker_count: 3
  timeout_ms: 800
pools:
  - name: heavy
    worker_count: 1
    patterns: ["/heavy/*", "/reports-*"]
`,
      { docroot },
    );
  });
  after(() => g.stop());
  // Every test starts from whole, idle pools, whatever an earlier one killed or left running.
  beforeEach(() => eventually('pools idle', () => allIdle(g, 'default') && allIdle(g, 'heavy')));

  test('a URL matching a pool pattern runs on that pool, everything else on the default pool', async () => {
    const heavy = await getJson(g, '/heavy/export?x=1');
    const heavy2 = await getJson(g, '/reports-2024');
    const fast = await getJson(g, '/other/page');
    assert.ok(workerPids(g, 'heavy').includes(heavy.body.pid), 'front-controller URL under /heavy/ went to heavy');
    assert.ok(workerPids(g, 'heavy').includes(heavy2.body.pid));
    assert.ok(workerPids(g, 'default').includes(fast.body.pid));
    assert.notEqual(g.gateway.pools.get('heavy')!.masterPid, g.gateway.pools.get('default')!.masterPid);
  });

  test('an APCu value stored by one request is read by every worker of the pool', async () => {
    const stored = await getJson(g, '/apcu.php?op=set&key=shared&val=hello');
    assert.equal(stored.status, 200);
    // Three slow reads at once must occupy the three children, one each.
    const reads = await Promise.all([1, 2, 3].map(() => getJson(g, '/apcu.php?op=get&key=shared&ms=300')));
    assert.equal(new Set(reads.map((r) => r.body.pid)).size, 3, 'parallel requests land on distinct children');
    for (const r of reads) assert.equal(r.body.value, 'hello');
  });

  test('requests wait for an idle worker instead of piling onto a busy child', async () => {
    const t0 = Date.now();
    const rs = await Promise.all([1, 2, 3, 4, 5, 6].map(() => getJson(g, '/heavy/sleep?ms=0').then(() => getJson(g, '/sleep.php?ms=150'))));
    assert.ok(rs.every((r) => r.status === 200));
    // 6 requests of 150 ms on 3 workers: at least two rounds.
    assert.ok(Date.now() - t0 >= 290, 'no more than worker_count requests ran at once');
  });

  test('a child killed while idle is replaced and its connection re-established', async () => {
    await eventually('pool idle', () => allIdle(g, 'default'));
    const before = workerPids(g, 'default');
    process.kill(before[0]!, 'SIGKILL');
    await eventually('a new child handshaken', () => allIdle(g, 'default') && !workerPids(g, 'default').includes(before[0]!));
    const after = workerPids(g, 'default');
    assert.equal(new Set(after).size, 3);
    const reads = await Promise.all([1, 2, 3].map(() => getJson(g, '/sleep.php?ms=200')));
    assert.deepEqual(new Set(reads.map((r) => r.body.pid)), new Set(after));
  });

  test('a worker dying mid-request answers 502 for that request only', async () => {
    await eventually('pool idle', () => allIdle(g, 'default'));
    const [dead, ...others] = await Promise.all([request(g.base, '/die.php'), getJson(g, '/sleep.php?ms=300'), getJson(g, '/sleep.php?ms=300')]);
    // The status line may already be out ("about to die" was flushed): then the cut connection shows it.
    assert.ok(dead.status === 502 || dead.text.startsWith('about to die'), `got ${dead.status}`);
    for (const r of others) assert.equal(r.status, 200);
    await eventually('pool back to 3 idle workers', () => allIdle(g, 'default'));
  });

  test('a killed master is restarted and serves again', async () => {
    await eventually('pool idle', () => allIdle(g, 'default'));
    const pool = g.gateway.pools.get('default')!;
    const oldMaster = pool.masterPid!;
    const oldChildren = workerPids(g, 'default');
    process.kill(oldMaster, 'SIGKILL');
    await eventually('a new master with handshaken workers', () => pool.masterPid !== null && pool.masterPid !== oldMaster && allIdle(g, 'default'));
    for (const pid of oldChildren) assert.equal(running(pid), false, `orphaned child ${pid} of the dead master was stopped`);
    const r = await getJson(g, '/sleep.php?ms=0');
    assert.equal(r.status, 200);
    assert.ok(workerPids(g, 'default').includes(r.body.pid));
  });

  test('a request over timeout_ms answers 504, the child is killed and replaced', async () => {
    await eventually('pool idle', () => allIdle(g, 'default'));
    const t0 = Date.now();
    const res = await request(g.base, '/sleep.php?ms=5000');
    const elapsed = Date.now() - t0;
    assert.equal(res.status, 504);
    assert.ok(elapsed < 3000, `answered after ${elapsed} ms`);
    const entry = g.logs().find((l) => typeof l.msg === 'string' && l.msg.includes('timeout_ms'));
    assert.ok(entry, 'the timeout is logged');
    assert.equal(entry['pool'], 'default');
    assert.match(String(entry['request']), /sleep\.php/);
    const killed = Number(entry['workerPid']);
    await eventually('killed child gone', () => !running(killed));
    await eventually('replacement handshaken', () => allIdle(g, 'default') && !workerPids(g, 'default').includes(killed));
    assert.equal((await getJson(g, '/sleep.php?ms=0')).status, 200);
  });
});

describe('recycling and queue limits', () => {
  // A gateway per test: max_requests counts each child's requests, so a test must not inherit a used one.
  let g: RunningGateway;
  beforeEach(async () => {
    g = await startGateway(
      `
php:
  worker_count: 1
  max_requests: 3
  queue_limit: 1
  queue_timeout_ms: 5000
`,
      { docroot },
    );
  });
  afterEach(() => g.stop());

  test('max_requests recycles a worker between requests and no request fails', async () => {
    const pids: number[] = [];
    for (let i = 0; i < 9; i++) {
      const r = await getJson(g, '/sleep.php?ms=0');
      assert.equal(r.status, 200, `request ${i}`);
      pids.push(r.body.pid);
    }
    assert.equal(new Set(pids.slice(0, 3)).size, 1);
    assert.equal(new Set(pids).size, 3, `a new child every 3 requests: ${pids.join(',')}`);
    assert.notEqual(pids[2], pids[3]);
  });

  test('past queue_limit a request gets 503 with Retry-After at once', async () => {
    await eventually('the worker is idle', () => allIdle(g, 'default'));
    const slow = [request(g.base, '/sleep.php?ms=600'), request(g.base, '/sleep.php?ms=600')];
    await eventually(
      'one running, one queued',
      () => {
        const s = g.gateway.pools.get('default')!.stats();
        return s.busy === 1 && s.queued === 1;
      },
      5_000,
    );
    const t0 = Date.now();
    const refused = await request(g.base, '/sleep.php?ms=0');
    assert.equal(refused.status, 503);
    assert.ok(refused.headers['retry-after']);
    assert.ok(Date.now() - t0 < 500, 'refused without waiting');
    for (const r of await Promise.all(slow)) assert.equal(r.status, 200);
  });
});
