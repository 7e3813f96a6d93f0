/**
 * The admin side: /healthz and /readyz, Prometheus metrics, status.json and the live dashboard (in headless
 * Chromium). The StatusSource here is a hand-built status provider with PoolStats-shaped data, not a stand-in
 * for PHP: wiring the real Gateway to these endpoints is tested with the gateway.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { register as globalRegistry } from 'prom-client';
import type { AdminConfig } from '../config/types.js';
import type { Logger } from '../core/log.js';
import { healthAnswer } from '../gateway/admin/health.js';
import { DURATION_BUCKETS_S, Metrics, NO_POOL_LABEL } from '../gateway/admin/metrics.js';
import { PlainHistogram } from '../gateway/admin/plain-histogram.js';
import { RECENT_WINDOW_S, RPS_WINDOW_S } from '../gateway/admin/recent.js';
import { AdminServer } from '../gateway/admin/server.js';
import type { GatewayStatus, RequestRecord, StatusSource } from '../gateway/http/status.js';
import type { PoolStats, WorkerStats } from '../php/pool.js';
import { chromiumSkip, launchChromium } from './support/browser.js';

const TOKEN = 's3cret-admin-token';

const NO_RESTARTS: PoolStats['restarts'] = { crash: 0, memory: 0, max_requests: 0, timeout: 0, client_abort: 0, reload: 0 };

function worker(pid: number, over: Partial<WorkerStats> = {}): WorkerStats {
  return { pid, state: 'idle', requests: 3, requestsTotal: 10, privateBytes: 0, current: null, childSince: Date.now() - 60_000, last: null, ...over };
}

function pool(name: string, over: Partial<PoolStats> = {}): PoolStats {
  const workers = over.workers ?? [worker(101), worker(102)];
  return {
    name,
    masterPid: 100,
    workers,
    idle: workers.filter((w) => w.state === 'idle').length,
    busy: workers.filter((w) => w.state === 'busy').length,
    starting: workers.filter((w) => w.state !== 'idle' && w.state !== 'busy').length,
    queued: 0,
    queueLimit: 64,
    ready: true,
    failing: false,
    problem: null,
    restarts: NO_RESTARTS,
    shared: { opcacheUsed: 9_000_000, opcacheFree: 120_000_000, apcuUsed: 1_000_000, apcuSize: 33_554_432 },
    maxQueued: 0,
    maxBusy: 0,
    waited: 0,
    ...over,
  };
}

/** A status provider whose answer the test changes at will. */
class Status implements StatusSource {
  current: GatewayStatus;
  calls = 0;
  constructor(pools: PoolStats[], over: Partial<GatewayStatus> = {}) {
    this.current = {
      version: '9.8.7-test',
      startedAt: Date.now() - 3_723_000,
      draining: false,
      pools,
      connections: { http1: 0, http2: 0, accepted: 0 },
      rateLimit: null,
      cacheRules: [],
      ...over,
    };
  }
  status(): GatewayStatus {
    this.calls++;
    return this.current;
  }
  set(over: Partial<GatewayStatus>): void {
    this.current = { ...this.current, ...over };
  }
}

function record(over: Partial<RequestRecord> = {}): RequestRecord {
  return {
    remoteAddr: '127.0.0.1',
    remoteUser: '',
    method: 'GET',
    uri: '/index.php',
    protocol: 'HTTP/1.1',
    status: 200,
    bytes: 12,
    bodyBytes: 2,
    durationMs: 4,
    pool: 'default',
    workerPid: 101,
    upstreamMs: 3,
    cache: null,
    cacheRule: null,
    limitedBy: null,
    host: 'localhost',
    referer: '',
    userAgent: '',
    requestId: 'r1',
    ...over,
  };
}

/** Log lines written by the component under test, parsed. */
function captureLog(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const log: Logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}

function adminConfig(over: Partial<AdminConfig> = {}): AdminConfig {
  return { host: '127.0.0.1', port: 0, token: TOKEN, health_on_main: false, ...over };
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/** One request on its own connection (agent: false), bounded in time. */
function request(base: string, path: string, o: { method?: string; token?: string; headers?: http.OutgoingHttpHeaders } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = { ...o.headers };
    if (o.token !== undefined) headers.authorization = `Bearer ${o.token}`;
    const req = http.request(`${base}${path}`, { method: o.method ?? 'GET', headers, agent: false, timeout: 5_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${path}: no answer within 5 s`)));
    req.on('error', reject);
    req.end();
  });
}

/** Starts an AdminServer on a free loopback port. */
async function startAdmin(source: StatusSource, metrics: Metrics, over: Partial<AdminConfig> = {}) {
  const { log, lines } = captureLog();
  // admin.port 0 means "no listener", so take a port the OS just handed out.
  const port = await new Promise<number>((resolve, reject) => {
    const probe = http.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const p = (probe.address() as { port: number }).port;
      probe.close(() => resolve(p));
    });
  });
  const server = new AdminServer({ config: adminConfig({ port, ...over }), source, metrics, purge: () => null, log });
  await server.start();
  const a = server.address()!;
  return { server, lines, base: `http://127.0.0.1:${a.port}` };
}

describe('health answers', () => {
  test('/healthz answers 200 ok whatever the pools say (liveness is only "the process answers")', () => {
    const s = new Status([pool('default', { ready: false, failing: true })], { draining: true });
    assert.deepEqual(healthAnswer('/healthz', s), { status: 200, body: 'ok' });
  });

  test('/readyz answers 200 ready when not draining and every pool is ready', () => {
    const s = new Status([pool('default'), pool('heavy')]);
    assert.deepEqual(healthAnswer('/readyz', s), { status: 200, body: 'ready' });
  });

  test('/readyz answers 503 draining while the gateway drains', () => {
    const s = new Status([pool('default')], { draining: true });
    assert.deepEqual(healthAnswer('/readyz', s), { status: 503, body: 'draining' });
  });

  test('/readyz names a failing pool and why, one line per problem', () => {
    const s = new Status([pool('default'), pool('heavy', { ready: false, failing: true }), pool('boot', { ready: false, starting: 2 })], {
      draining: true,
    });
    const h = healthAnswer('/readyz', s)!;
    assert.equal(h.status, 503);
    assert.deepEqual(h.body.split('\n'), [
      'draining',
      'pool "heavy": no live worker (php-cgi keeps failing to start)',
      'pool "boot": no live worker yet (2 starting)',
    ]);
  });

  test('any other path is not a health path (null), including near misses', () => {
    const s = new Status([pool('default')]);
    for (const p of ['/', '/healthz/', '/readyz.php', '/HEALTHZ', '/status', '']) assert.equal(healthAnswer(p, s), null, p);
  });
});

describe('metrics', () => {
  test("uses its own registry, never prom-client's global one", async () => {
    const m = new Metrics(new Status([pool('default')]));
    m.onRequestDone(record());
    assert.doesNotMatch(await globalRegistry.metrics(), /phpgate_/);
    assert.match((await m.render()).body, /phpgate_requests_total/);
  });

  test('counts requests by pool and status; requests no pool served are labelled "-"', async () => {
    const m = new Metrics(new Status([pool('default')]));
    for (let i = 0; i < 3; i++) m.onRequestDone(record());
    m.onRequestDone(record({ status: 404 }));
    m.onRequestDone(record({ pool: null, workerPid: 0, upstreamMs: null, status: 200 }));
    m.onRequestDone(record({ pool: null, workerPid: 0, upstreamMs: null, status: 304 }));
    const { contentType, body } = await m.render();
    assert.match(contentType, /^text\/plain/);
    assert.equal(NO_POOL_LABEL, '-');
    assert.match(body, /^phpgate_requests_total\{pool="default",status="200"\} 3$/m);
    assert.match(body, /^phpgate_requests_total\{pool="default",status="404"\} 1$/m);
    assert.match(body, /^phpgate_requests_total\{pool="-",status="200"\} 1$/m);
    assert.match(body, /^phpgate_requests_total\{pool="-",status="304"\} 1$/m);
  });

  test('request durations fill histogram buckets from 1 ms to 30 s; upstream time only when PHP was involved', async () => {
    const m = new Metrics(new Status([]));
    m.onRequestDone(record({ durationMs: 0.5, upstreamMs: 0.4 })); // ≤ 1 ms
    m.onRequestDone(record({ durationMs: 40, upstreamMs: 30 })); // ≤ 50 ms
    m.onRequestDone(record({ durationMs: 45_000, upstreamMs: null })); // beyond 30 s: +Inf only
    m.onRequestDone(record({ pool: null, durationMs: 2, upstreamMs: null }));
    const { body } = await m.render();
    const bucket = (metric: string, pool: string, le: string): number => {
      const line = body.split('\n').find((l) => l.startsWith(`${metric}_bucket{le="${le}",pool="${pool}"}`));
      assert.ok(line !== undefined, `${metric} ${pool} le=${le} in\n${body}`);
      return Number(line.split(' ')[1]);
    };
    assert.deepEqual(DURATION_BUCKETS_S[0], 0.001);
    assert.deepEqual(DURATION_BUCKETS_S.at(-1), 30);
    for (const le of DURATION_BUCKETS_S) bucket('phpgate_request_duration_seconds', 'default', String(le));
    assert.equal(bucket('phpgate_request_duration_seconds', 'default', '0.001'), 1);
    assert.equal(bucket('phpgate_request_duration_seconds', 'default', '0.025'), 1);
    assert.equal(bucket('phpgate_request_duration_seconds', 'default', '0.05'), 2);
    assert.equal(bucket('phpgate_request_duration_seconds', 'default', '30'), 2);
    assert.equal(bucket('phpgate_request_duration_seconds', 'default', '+Inf'), 3);
    assert.match(body, /^phpgate_request_duration_seconds_count\{pool="default"\} 3$/m);
    assert.match(body, /^phpgate_upstream_duration_seconds_count\{pool="default"\} 2$/m);
    assert.equal(bucket('phpgate_upstream_duration_seconds', 'default', '0.001'), 1);
    assert.match(body, /^phpgate_request_duration_seconds_count\{pool="-"\} 1$/m);
    assert.doesNotMatch(body, /phpgate_upstream_duration_seconds_count\{pool="-"\}/, 'no upstream series for requests PHP never saw');
  });

  test("a histogram counts a value equal to a bound in that bound's bucket (le), and escapes label values", () => {
    const h = new PlainHistogram('x_seconds', 'Help with a \\ backslash.', 'pool', [0.5, 1]);
    const s = h.series('a"b\\c\nd');
    for (const v of [0.5, 0.7, 1, 3]) s.observe(v);
    h.series('never'); // no observation: no lines
    assert.equal(
      h.render(),
      [
        '# HELP x_seconds Help with a \\\\ backslash.',
        '# TYPE x_seconds histogram',
        'x_seconds_bucket{le="0.5",pool="a\\"b\\\\c\\nd"} 1',
        'x_seconds_bucket{le="1",pool="a\\"b\\\\c\\nd"} 3',
        'x_seconds_bucket{le="+Inf",pool="a\\"b\\\\c\\nd"} 4',
        'x_seconds_sum{pool="a\\"b\\\\c\\nd"} 5.2',
        'x_seconds_count{pool="a\\"b\\\\c\\nd"} 4',
        '',
      ].join('\n'),
    );
  });

  test('pool gauges are read from the status source at scrape time, once per scrape', async () => {
    const busy = worker(202, { state: 'busy', privateBytes: 24 * 1024 * 1024, current: { label: '/report.php', startedAt: Date.now() } });
    const s = new Status([
      pool('default', { workers: [worker(101, { privateBytes: 8_000_000 }), worker(0, { state: 'connecting' })], queued: 2, queueLimit: 50 }),
      pool('heavy', { workers: [busy], ready: false, failing: true, restarts: { ...NO_RESTARTS, crash: 4, memory: 1 } }),
    ]);
    const m = new Metrics(s);
    const before = s.calls;
    const { body } = await m.render();
    assert.equal(s.calls - before, 1, 'every gauge shares one status() snapshot');
    const expected = [
      'phpgate_pool_workers{pool="default",state="idle"} 1',
      'phpgate_pool_workers{pool="default",state="busy"} 0',
      'phpgate_pool_workers{pool="default",state="starting"} 1',
      'phpgate_pool_workers{pool="heavy",state="busy"} 1',
      'phpgate_pool_queue_length{pool="default"} 2',
      'phpgate_pool_queue_limit{pool="default"} 50',
      'phpgate_worker_restarts_total{pool="heavy",reason="crash"} 4',
      'phpgate_worker_restarts_total{pool="heavy",reason="memory"} 1',
      'phpgate_worker_restarts_total{pool="heavy",reason="max_requests"} 0',
      'phpgate_worker_private_memory_bytes{pool="default",pid="101"} 8000000',
      `phpgate_worker_private_memory_bytes{pool="heavy",pid="202"} ${24 * 1024 * 1024}`,
      'phpgate_pool_ready{pool="default"} 1',
      'phpgate_pool_ready{pool="heavy"} 0',
      'phpgate_pool_shared_memory_bytes{pool="default",kind="opcache_used"} 9000000',
      'phpgate_pool_shared_memory_bytes{pool="default",kind="apcu_size"} 33554432',
      'phpgate_draining 0',
    ];
    for (const line of expected) assert.ok(body.split('\n').includes(line), `missing: ${line}`);
    assert.doesNotMatch(body, /pid="0"/, 'a slot with no child has no memory series');
    assert.match(body, /^# TYPE phpgate_worker_restarts_total counter$/m);
    assert.match(body, /^process_cpu_user_seconds_total /m, 'default process metrics are on the same registry');
    assert.match(body, /^nodejs_eventloop_lag_seconds /m);
  });

  test('worker restarts are a counter across reloads: what a replaced pool counted is kept', async () => {
    const s = new Status([pool('default', { restarts: { ...NO_RESTARTS, crash: 3 } })]);
    const m = new Metrics(s);
    const crashes = async (): Promise<string | undefined> =>
      (await m.render()).body.split('\n').find((l) => l.startsWith('phpgate_worker_restarts_total{pool="default",reason="crash"}'));
    assert.equal(await crashes(), 'phpgate_worker_restarts_total{pool="default",reason="crash"} 3');
    // A reload: the new pool counts from zero, and has seen one crash since.
    s.set({ pools: [pool('default', { restarts: { ...NO_RESTARTS, crash: 1 } })] });
    assert.equal(await crashes(), 'phpgate_worker_restarts_total{pool="default",reason="crash"} 4');
    s.set({ pools: [pool('default', { restarts: { ...NO_RESTARTS, crash: 2 } })] });
    assert.equal(await crashes(), 'phpgate_worker_restarts_total{pool="default",reason="crash"} 5');
  });

  test('series of pools and children that went away are dropped at the next scrape', async () => {
    const s = new Status([pool('default', { workers: [worker(101, { privateBytes: 1000 })] }), pool('old')]);
    const m = new Metrics(s);
    assert.match((await m.render()).body, /pool="old"/);
    s.set({ pools: [pool('default', { workers: [worker(303, { privateBytes: 2000 })] })], draining: true });
    const { body } = await m.render();
    assert.doesNotMatch(body, /pool="old"/);
    assert.doesNotMatch(body, /pid="101"/);
    assert.match(body, /^phpgate_worker_private_memory_bytes\{pool="default",pid="303"\} 2000$/m);
    assert.match(body, /^phpgate_draining 1$/m);
  });

  test('recent(): requests per second and p50/p99 over the last ~10 s, sliding with the clock', () => {
    let now = 1_000_000;
    const m = new Metrics(new Status([]), { clock: () => now });
    assert.deepEqual(m.recent(), { rps: 0, p50Ms: 0, p99Ms: 0, windowS: 1 });
    now += 20_000; // long up: the window is full
    for (let i = 0; i < 98; i++) m.onRequestDone(record({ durationMs: 10 }));
    m.onRequestDone(record({ durationMs: 800 }));
    m.onRequestDone(record({ durationMs: 900 }));
    now += 500;
    const r = m.recent();
    assert.ok(r.windowS > RECENT_WINDOW_S - 1 && r.windowS <= RECENT_WINDOW_S, `windowS ${r.windowS}`);
    // req/s is over the last RPS_WINDOW_S seconds (2.5 s here: two whole ones and half of this one), not the 10 s.
    assert.ok(Math.abs(r.rps - 100 / (RPS_WINDOW_S - 0.5)) < 1e-9, `rps ${r.rps}`);
    assert.ok(Math.abs(r.p50Ms - 10) / 10 < 0.06, `p50 ${r.p50Ms} ≈ 10 ms`);
    assert.ok(Math.abs(r.p99Ms - 800) / 800 < 0.06, `p99 ${r.p99Ms} ≈ 800 ms`);
    now += RECENT_WINDOW_S * 1000; // all of it is now older than the window
    assert.equal(m.recent().rps, 0);
    assert.equal(m.recent().p99Ms, 0);
    m.onRequestDone(record({ durationMs: 50 }));
    assert.ok(Math.abs(m.recent().p99Ms - 50) / 50 < 0.06, 'an old slot is reused for the new second, its old counts gone');
  });

  test('recent(): just after start, the rate is over the time actually elapsed (never under 1 s)', () => {
    let now = 5_000_300;
    const m = new Metrics(new Status([]), { clock: () => now });
    for (let i = 0; i < 30; i++) m.onRequestDone(record());
    now += 2_000;
    assert.equal(m.recent().windowS, 2);
    assert.equal(m.recent().rps, 15);
  });

  test('recent(): req/s follows a stop within RPS_WINDOW_S seconds (it does not lag ~10 s behind)', () => {
    let now = 7_000_000;
    const m = new Metrics(new Status([]), { clock: () => now });
    now += 20_000;
    for (let i = 0; i < 100; i++) m.onRequestDone(record());
    now += RPS_WINDOW_S * 1000;
    assert.equal(m.recent().rps, 0);
    assert.ok(m.recent().p99Ms > 0, 'the percentiles still cover the last 10 s');
  });
});

describe('admin server', () => {
  const s = new Status([
    pool('default', {
      workers: [
        worker(101),
        worker(102, { state: 'busy', privateBytes: 5 * 1048576, current: { label: 'index.php GET /shop', startedAt: Date.now() - 1500 } }),
      ],
    }),
    pool('heavy', { ready: false, failing: true, restarts: { ...NO_RESTARTS, crash: 3 } }),
  ]);
  const metrics = new Metrics(s);
  let admin: Awaited<ReturnType<typeof startAdmin>>;
  before(async () => {
    admin = await startAdmin(s, metrics);
  });
  after(() => admin.server.stop());

  test('the first scrape already has process metrics counted from the start (the registry is built with the listener)', async () => {
    await new Promise((r) => setTimeout(r, 200));
    const body = (await request(admin.base, '/metrics', { token: TOKEN })).text;
    const lag = body.split('\n').filter((l) => l.startsWith('nodejs_eventloop_lag_') && !l.startsWith('#'));
    assert.ok(lag.length > 0, 'event-loop lag series');
    for (const line of lag) assert.ok(Number(line.split(' ').at(-1)) < 10, `a sane event-loop lag at the first scrape: ${line}`);
  });

  test('admin.port 0 means no listener: start() is a no-op and address() is null', async () => {
    const { log } = captureLog();
    const off = new AdminServer({ config: adminConfig({ port: 0 }), source: s, metrics, purge: () => null, log });
    await off.start();
    assert.equal(off.address(), null);
    await off.stop();
  });

  test('health endpoints never ask for the token (load balancers cannot send one)', async () => {
    const live = await request(admin.base, '/healthz');
    assert.equal(live.status, 200);
    assert.equal(live.text, 'ok');
    assert.match(live.headers['content-type']!, /^text\/plain/);
    const ready = await request(admin.base, '/readyz', { token: 'wrong' });
    assert.equal(ready.status, 503);
    assert.equal(ready.text, 'pool "heavy": no live worker (php-cgi keeps failing to start)');
    assert.match(ready.headers['content-type']!, /^text\/plain/);
  });

  for (const path of ['/metrics', '/status', '/status.json']) {
    test(`${path} without the token is 401 with WWW-Authenticate: Bearer`, async () => {
      const res = await request(admin.base, path);
      assert.equal(res.status, 401);
      assert.match(res.headers['www-authenticate']!, /^Bearer\b/);
    });

    test(`${path} with a wrong token (shorter, longer, same length, other scheme) is 401`, async () => {
      for (const token of ['s3cret', `${TOKEN}x`, TOKEN.replace('a', 'b'), '']) {
        assert.equal((await request(admin.base, path, { token })).status, 401, `token ${JSON.stringify(token)}`);
      }
      assert.equal((await request(admin.base, path, { headers: { authorization: `Basic ${TOKEN}` } })).status, 401);
      assert.equal((await request(admin.base, path, { headers: { authorization: TOKEN } })).status, 401);
    });

    test(`${path} with the right token is 200`, async () => {
      assert.equal((await request(admin.base, path, { token: TOKEN })).status, 200);
      assert.equal((await request(admin.base, path, { headers: { authorization: `bearer  ${TOKEN}` } })).status, 200, 'scheme is case-insensitive');
    });
  }

  test('the token in the query opens the dashboard page only, not its data or the metrics', async () => {
    assert.equal((await request(admin.base, `/status?token=${TOKEN}`)).status, 200);
    assert.equal((await request(admin.base, `/status?token=nope`)).status, 401);
    assert.equal((await request(admin.base, `/status.json?token=${TOKEN}`)).status, 401);
    assert.equal((await request(admin.base, `/metrics?token=${TOKEN}`)).status, 401);
  });

  test('with no admin.token configured, everything is open', async () => {
    const open = await startAdmin(s, metrics, { token: '' });
    try {
      assert.equal((await request(open.base, '/metrics')).status, 200);
      assert.equal((await request(open.base, '/status.json')).status, 200);
    } finally {
      await open.server.stop();
    }
  });

  test('/metrics serves the Prometheus text format with requests fed to the observer', async () => {
    metrics.onRequestDone(record({ pool: 'default', status: 418 }));
    const res = await request(admin.base, '/metrics', { token: TOKEN });
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type']!, /^text\/plain; version=0\.0\.4/);
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.match(res.text, /^phpgate_requests_total\{pool="default",status="418"\} 1$/m);
    assert.match(res.text, /^phpgate_pool_ready\{pool="heavy"\} 0$/m);
  });

  test('/status.json is the full status (php-fpm ?json&full) plus recent traffic and the server clock', async () => {
    const res = await request(admin.base, '/status.json', { token: TOKEN });
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type']!, /^application\/json/);
    const body = JSON.parse(res.text) as GatewayStatus & { recent: Record<string, number>; now: number };
    assert.equal(body.version, '9.8.7-test');
    assert.equal(body.draining, false);
    assert.equal(typeof body.startedAt, 'number');
    assert.ok(Math.abs(body.now - Date.now()) < 5_000);
    assert.deepEqual(
      body.pools.map((p) => p.name),
      ['default', 'heavy'],
    );
    assert.deepEqual(body.pools[0]!.workers[1], s.current.pools[0]!.workers[1]);
    assert.deepEqual(body.pools[1]!.restarts, { ...NO_RESTARTS, crash: 3 });
    assert.deepEqual(Object.keys(body.recent).sort(), ['p50Ms', 'p99Ms', 'rps', 'windowS']);
  });

  test('/status serves the dashboard as text/html with a strict Content-Security-Policy', async () => {
    const res = await request(admin.base, '/status', { token: TOKEN });
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type']!, /^text\/html/);
    assert.match(res.text, /<canvas id="chart"/);
    const csp = String(res.headers['content-security-policy']);
    assert.match(csp, /default-src 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline/);
    assert.doesNotMatch(res.text, /<(?:script|link|img)[^>]+(?:src|href)=/, 'no external assets');
  });

  test('HEAD answers headers only', async () => {
    const res = await request(admin.base, '/status.json', { method: 'HEAD', token: TOKEN });
    assert.equal(res.status, 200);
    assert.equal(res.text, '');
    assert.ok(Number(res.headers['content-length']) > 0);
    const health = await request(admin.base, '/healthz', { method: 'HEAD' });
    assert.equal(health.status, 200);
    assert.equal(health.text, '');
  });

  test('methods other than GET and HEAD are 405 with Allow', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      const res = await request(admin.base, '/metrics', { method, token: TOKEN });
      assert.equal(res.status, 405, method);
      assert.equal(res.headers.allow, 'GET, HEAD');
    }
    assert.equal((await request(admin.base, '/readyz', { method: 'POST' })).status, 405);
  });

  test('unknown paths are 404, near misses included', async () => {
    for (const path of ['/', '/status/', '/metrics/x', '/status.json.bak', '/index.php', '/healthz/']) {
      assert.equal((await request(admin.base, path, { token: TOKEN })).status, 404, path);
    }
  });

  test('a status source that throws is answered 500 and logged, and the listener keeps serving', async () => {
    const broken: StatusSource = {
      status() {
        throw new Error('status exploded');
      },
    };
    const b = await startAdmin(broken, new Metrics(broken));
    try {
      for (const path of ['/status.json', '/metrics', '/readyz']) {
        assert.equal((await request(b.base, `${path}?token=${TOKEN}`, { token: TOKEN })).status, 500, path);
      }
      assert.equal((await request(b.base, '/healthz')).status, 200);
      const errors = b.lines.filter((l) => l.msg === 'admin request failed');
      assert.equal(errors.length, 3);
      assert.equal(errors[0]!.path, '/status.json');
      assert.doesNotMatch(JSON.stringify(b.lines), new RegExp(TOKEN), 'the token never reaches the log');
    } finally {
      await b.server.stop();
    }
  });

  test('stop() closes idle keep-alive connections instead of waiting for them', async () => {
    const b = await startAdmin(s, metrics);
    const agent = new http.Agent({ keepAlive: true });
    try {
      await new Promise<void>((resolve, reject) => {
        http
          .get(`${b.base}/healthz`, { agent }, (res) => {
            res.resume();
            res.on('end', resolve);
          })
          .on('error', reject);
      });
      const t0 = Date.now();
      await b.server.stop();
      assert.ok(Date.now() - t0 < 1_000, `stopped in ${Date.now() - t0} ms`);
      assert.equal(b.server.address(), null);
    } finally {
      agent.destroy();
    }
  });

  test('a port already taken makes start() reject, naming the admin listener', async () => {
    const taken = admin.server.address()!.port;
    const { log } = captureLog();
    const clash = new AdminServer({ config: adminConfig({ port: taken }), source: s, metrics, purge: () => null, log });
    await assert.rejects(clash.start(), /admin listener on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
    assert.equal(clash.address(), null);
  });
});

describe('dashboard in headless Chromium', () => {
  // Without a browser a developer machine skips; CI must have one, so there the test runs and fails.
  const skip = chromiumSkip();

  test('shows pools and worker rows, keeps the token out of the address bar, and refreshes every second', { skip, timeout: 60_000 }, async () => {
    const s = new Status([
      pool('default', {
        workers: [
          worker(101),
          worker(102, {
            state: 'busy',
            privateBytes: 12 * 1048576,
            current: { label: '<img src=x onerror="window.pwned=1">/x.php', startedAt: Date.now() - 2_000 },
          }),
        ],
        queued: 3,
        queueLimit: 20,
      }),
      pool('heavy', { workers: [worker(201)], ready: false, failing: true, restarts: { ...NO_RESTARTS, crash: 5, memory: 2 } }),
    ]);
    const metrics = new Metrics(s);
    for (let i = 0; i < 20; i++) metrics.onRequestDone(record({ durationMs: 5 + i }));
    const admin = await startAdmin(s, metrics);
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(`console: ${m.text()}`); // CSP violations land here
      });
      await page.goto(`${admin.base}/status?token=${TOKEN}`, { timeout: 10_000 });

      await page.waitForSelector('#pools [data-pool="default"] tr[data-pid="102"]', { timeout: 5_000 }).catch(async (err: unknown) => {
        throw new Error(`dashboard never showed the pools; #error: ${await page.locator('#error').innerText()}; ${problems.join('; ')}`, {
          cause: err,
        });
      });
      assert.equal(await page.locator('#pools [data-pool]').count(), 2);
      assert.equal(await page.locator('#pools [data-pool="default"] tr[data-pid]').count(), 2);
      assert.equal(await page.locator('#pools [data-pool="heavy"]').getAttribute('data-failing'), 'true');
      assert.match(await page.locator('#pools [data-pool="heavy"] .pool-state').innerText(), /failing/);
      assert.match(await page.locator('#pools [data-pool="heavy"] .restarts').innerText(), /crash 5.*memory 2/);
      assert.match(await page.locator('#pools [data-pool="default"] .queue').innerText(), /3 \/ 20/);
      const busy = page.locator('#pools [data-pool="default"] tr[data-pid="102"]');
      assert.equal(await busy.getAttribute('data-state'), 'busy');
      assert.equal(await busy.locator('.mem').innerText(), '12.0');
      assert.match(await busy.locator('.elapsed').innerText(), /^\d+\.\d s$/);
      // A request URI is client-chosen: it shows as text and never becomes markup.
      assert.equal(await busy.locator('.script').innerText(), '<img src=x onerror="window.pwned=1">/x.php');
      assert.equal(await page.evaluate<unknown>('window.pwned'), undefined);
      assert.equal(await page.locator('#version').innerText(), '9.8.7-test');
      assert.match(await page.locator('#uptime').innerText(), /^1h 2m \d+s$/);
      assert.match(await page.locator('#rps').innerText(), /^\d+\.\d$/);
      assert.ok(!page.url().includes(TOKEN), `token left in the address bar: ${page.url()}`);

      // The page polls with the token it was opened with; the worker flips state and the page follows.
      const firstUpdate = await page.locator('#updated').innerText();
      s.set({
        pools: [
          pool('default', { workers: [worker(101, { state: 'busy', current: { label: 'slow.php', startedAt: Date.now() } }), worker(102)] }),
          s.current.pools[1]!,
        ],
      });
      await page.waitForSelector('#pools [data-pool="default"] tr[data-pid="101"][data-state="busy"]', { timeout: 3_000 });
      await page.waitForFunction(`document.getElementById('updated').textContent !== ${JSON.stringify(firstUpdate)}`, undefined, { timeout: 3_000 });
      assert.equal(await page.locator('#pools [data-pool="default"] tr[data-pid="102"]').getAttribute('data-state'), 'idle');

      // The chart has drawn something.
      // (Page code as a string: this project compiles without DOM types.)
      const inked = await page.evaluate<number>(`(() => {
        const c = document.getElementById('chart');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
        return n;
      })()`);
      assert.ok(inked > 100, `chart pixels drawn: ${inked}`);
      assert.equal(await page.locator('#error').innerText(), '');
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
      await admin.server.stop();
    }
  });
});
