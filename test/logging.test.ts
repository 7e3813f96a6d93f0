/**
 * The logs an nginx + php-fpm operator expects, through the real gateway and real php-cgi: the access line's fields,
 * the request id (a trusted proxy's or the gateway's own) reaching PHP, upstreams and the log, PHP's stderr as one
 * entry per request, and logging.format json | combined | pretty written by the real command line to a file that
 * SIGUSR1 reopens.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { dump, PHP_USER_ENV, request, startGateway, type RunningGateway } from './support/gateway.js';
import { nginxFpmMissing, nginxMainConfig, startNginxFpmConfig } from './support/nginx-fpm.js';
import { eventually, freePort } from './support/proc.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = [process.execPath, '--import', import.meta.resolve('tsx'), path.join(root, 'gateway/cli.ts')];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-logging-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A docroot of its own: the scripts these tests need, beside the shared fixture site's. */
const docroot = path.join(tmp, 'site');
fs.mkdirSync(docroot);
fs.copyFileSync(path.join(root, 'test/fixtures/site/dump.php'), path.join(docroot, 'dump.php'));
fs.copyFileSync(path.join(root, 'test/fixtures/site/_dump.inc.php'), path.join(docroot, '_dump.inc.php'));
fs.writeFileSync(path.join(docroot, 'hello.php'), '<?php echo "hello";\n');
fs.writeFileSync(path.join(docroot, 'static.txt'), 'static\n');
// A warning, then a fatal error: two stderr writes of one request.
fs.writeFileSync(
  path.join(docroot, 'warn-fatal.php'),
  '<?php\necho "before\\n";\n$a = [];\necho $a["phpgate_missing_key"];\nphpgate_fixture_undefined_function();\n',
);
fs.writeFileSync(path.join(docroot, 'notice.php'), '<?php\ntrigger_error("phpgate-notice", E_USER_NOTICE);\necho "ok";\n');
fs.writeFileSync(
  path.join(docroot, 'noisy.php'),
  '<?php\nfor ($i = 0; $i < 400; $i++) error_log("phpgate-noisy line $i " . str_repeat("x", 60));\necho "ok";\n',
);

/** PHP logs its errors to FastCGI stderr and shows none in the page, whatever the machine's php.ini says. */
const PHP_INI = 'ini: { log_errors: "1", display_errors: "0", error_reporting: "E_ALL" }';

const ID = /^[0-9a-f]{20}$/;

type Entry = Record<string, unknown> & { msg?: string };

describe('the access line (json)', () => {
  let g: RunningGateway;
  before(async () => {
    g = await startGateway(`php:\n  worker_count: 1\n  ${PHP_INI}\n`, { docroot });
  });
  after(() => g.stop());

  const accessFor = (uri: string): Entry[] => g.logs().filter((l) => l['log'] === 'access' && l['uri'] === uri);

  test('carries client, method, uri, protocol, status, bytes, duration, upstream time, pool, worker, cache, host, referer, user agent and a request id', async () => {
    const r = await request(g.base, '/hello.php?fields=1', {
      headers: {
        Host: 'shop.example',
        Referer: 'https://ref.example/from',
        'User-Agent': 'phpgate-test/1.0',
        Cookie: 'secret=1',
        Authorization: 'Bearer t0ken',
      },
    });
    assert.equal(r.status, 200);
    await eventually('the access line', () => accessFor('/hello.php?fields=1').length === 1, 5_000);
    const e = accessFor('/hello.php?fields=1')[0]!;
    assert.equal(e['remoteAddr'], '127.0.0.1');
    assert.equal(e['method'], 'GET');
    assert.equal(e['protocol'], 'HTTP/1.1');
    assert.equal(e['status'], 200);
    assert.equal(e['bodyBytes'], r.body.length);
    assert.ok((e['bytes'] as number) > r.body.length, 'bytes counts the head too');
    assert.equal(typeof e['durationMs'], 'number');
    assert.equal(typeof e['upstreamMs'], 'number');
    assert.ok((e['upstreamMs'] as number) <= (e['durationMs'] as number));
    assert.equal(e['pool'], 'default');
    assert.ok((e['workerPid'] as number) > 0);
    assert.equal(e['cache'], null);
    assert.equal(e['host'], 'shop.example');
    assert.equal(e['referer'], 'https://ref.example/from');
    assert.equal(e['userAgent'], 'phpgate-test/1.0');
    assert.match(String(e['requestId']), ID);
    const line = JSON.stringify(e);
    assert.ok(!line.includes('secret=1') && !line.includes('t0ken'), 'no cookie, no authorization');
  });

  test('two requests get two ids', async () => {
    await request(g.base, '/static.txt?id=1');
    await request(g.base, '/static.txt?id=2');
    await eventually('both lines', () => accessFor('/static.txt?id=1').length + accessFor('/static.txt?id=2').length === 2, 5_000);
    assert.notEqual(accessFor('/static.txt?id=1')[0]!['requestId'], accessFor('/static.txt?id=2')[0]!['requestId']);
  });

  test('a warning then a fatal error: exactly one stderr entry for the request, at error level, with its id, method, uri, pool and worker', async () => {
    const r = await request(g.base, '/warn-fatal.php?x=1');
    assert.equal(r.status, 500);
    await eventually('the access line', () => accessFor('/warn-fatal.php?x=1').length === 1, 5_000);
    const access = accessFor('/warn-fatal.php?x=1')[0]!;
    const entries = g.logs().filter((l) => l['log'] === 'php' && l['uri'] === '/warn-fatal.php?x=1');
    assert.equal(entries.length, 1, JSON.stringify(entries));
    const e = entries[0]!;
    assert.equal(e['level'], 50);
    assert.match(String(e.msg), /PHP Warning: .*phpgate_missing_key/);
    assert.match(String(e.msg), /PHP Fatal error: .*phpgate_fixture_undefined_function/);
    assert.equal(e['requestId'], access['requestId']);
    assert.equal(e['method'], 'GET');
    assert.equal(e['pool'], 'default');
    assert.equal(e['workerPid'], access['workerPid']);
    // No line of PHP's stderr is logged on its own besides.
    assert.equal(g.logs().filter((l) => l['log'] !== 'php' && /phpgate_missing_key/.test(String(l.msg))).length, 0);
  });

  test('a notice alone is an info entry; a flood of stderr is one entry cut at 8 KiB with a marker', async () => {
    await request(g.base, '/notice.php');
    await request(g.base, '/noisy.php');
    await eventually('both entries', () => g.logs().filter((l) => l['log'] === 'php' && /notice|noisy/.test(String(l['uri']))).length === 2, 5_000);
    const notice = g.logs().find((l) => l['log'] === 'php' && l['uri'] === '/notice.php')!;
    assert.equal(notice['level'], 30);
    assert.match(String(notice.msg), /PHP Notice: +phpgate-notice/);
    const noisy = g.logs().find((l) => l['log'] === 'php' && l['uri'] === '/noisy.php')!;
    assert.equal(noisy['level'], 40);
    assert.ok(String(noisy.msg).length < 8 * 1024 + 200, `${String(noisy.msg).length} characters`);
    assert.match(String(noisy.msg), /more bytes of stderr not logged\]$/);
    assert.ok((noisy['stderrTruncated'] as number) > 0);
  });
});

describe('the request id', () => {
  test("a trusted proxy's X-Request-Id is the log's id and reaches PHP and an upstream; a client's is not believed", async () => {
    let seen: string | undefined;
    const upstream = http.createServer((req, res) => {
      seen = req.headers['x-request-id'] as string | undefined;
      res.end('up');
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const port = (upstream.address() as { port: number }).port;
    const g = await startGateway(
      `server:\n  trusted_proxies: ["127.0.0.1"]\nphp:\n  worker_count: 1\nupstreams:\n  - { pattern: "/api/*", targets: ["http://127.0.0.1:${port}"] }\n`,
      { docroot },
    );
    try {
      const d = dump(await request(g.base, '/dump.php?proxied', { headers: { 'X-Request-Id': 'lb-7f3a-0001' } }));
      assert.equal(d.server['HTTP_X_REQUEST_ID'], 'lb-7f3a-0001');
      await request(g.base, '/api/x', { headers: { 'X-Request-Id': 'lb-7f3a-0002' } });
      assert.equal(seen, 'lb-7f3a-0002');
      await request(g.base, '/api/y');
      assert.match(String(seen), ID, 'without one, the upstream gets the id the gateway made');
      await eventually('access lines', () => g.logs().filter((l) => l['log'] === 'access').length >= 3, 5_000);
      const idOf = (uri: string): unknown => g.logs().find((l) => l['log'] === 'access' && l['uri'] === uri)?.['requestId'];
      assert.equal(idOf('/dump.php?proxied'), 'lb-7f3a-0001');
      assert.equal(idOf('/api/x'), 'lb-7f3a-0002');
      assert.equal(idOf('/api/y'), seen);
    } finally {
      await g.stop();
      upstream.close();
    }
  });

  test("from a client that is no trusted proxy: the id is the gateway's; PHP sees the header as sent (as behind nginx), or with request_id_to_php the log's id", async () => {
    const plain = await startGateway(`php:\n  worker_count: 1\n`, { docroot });
    try {
      const d = dump(await request(plain.base, '/dump.php?client-id', { headers: { 'X-Request-Id': 'chosen-by-client' } }));
      assert.equal(d.server['HTTP_X_REQUEST_ID'], 'chosen-by-client');
      assert.equal(dump(await request(plain.base, '/dump.php?no-id')).server['HTTP_X_REQUEST_ID'], undefined, 'no header: no variable, as nginx');
      await eventually('access line', () => plain.logs().some((l) => l['log'] === 'access' && l['uri'] === '/dump.php?client-id'), 5_000);
      const logged = plain.logs().find((l) => l['log'] === 'access' && l['uri'] === '/dump.php?client-id')!;
      assert.match(String(logged['requestId']), ID);
    } finally {
      await plain.stop();
    }
    const always = await startGateway(`php:\n  worker_count: 1\nlogging:\n  request_id_to_php: true\n`, { docroot });
    try {
      const a = dump(await request(always.base, '/dump.php?a', { headers: { 'X-Request-Id': 'chosen-by-client' } }));
      const b = dump(await request(always.base, '/dump.php?b'));
      await eventually('access lines', () => always.logs().filter((l) => l['log'] === 'access').length >= 2, 5_000);
      const idOf = (uri: string): unknown => always.logs().find((l) => l['log'] === 'access' && l['uri'] === uri)?.['requestId'];
      assert.equal(a.server['HTTP_X_REQUEST_ID'], idOf('/dump.php?a'));
      assert.equal(b.server['HTTP_X_REQUEST_ID'], idOf('/dump.php?b'));
      assert.match(String(a.server['HTTP_X_REQUEST_ID']), ID);
    } finally {
      await always.stop();
    }
  });
});

/** The real command line with `logging` as given, writing to `dir/gw.log`; stopped by pid at the end. */
async function withCli(
  name: string,
  logging: string,
  extra: string,
  fn: (o: { port: number; logFile: string; proc: ReturnType<typeof spawn> }) => Promise<void>,
): Promise<void> {
  const dir = fs.mkdtempSync(path.join(tmp, `${name}-`));
  const logFile = path.join(dir, 'gw.log');
  const port = await freePort();
  fs.writeFileSync(
    path.join(dir, 'gateway.yaml'),
    `server: { host: 127.0.0.1, port: ${port} }\nadmin: { port: 0 }\n` +
      `php: { docroot: ${JSON.stringify(docroot)}, worker_count: 1, socket_dir: ${JSON.stringify(path.join(dir, 'sock'))}${extra} }\n` +
      `logging: { file: ${JSON.stringify(logFile)}, ${logging} }\n`,
  );
  const proc = spawn(cli[0]!, [...cli.slice(1), '--config', path.join(dir, 'gateway.yaml')], {
    cwd: dir,
    env: { ...process.env, ...PHP_USER_ENV },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise((r) => proc.once('exit', r));
  try {
    await eventually('the gateway listens', () => fs.existsSync(logFile) && fs.readFileSync(logFile, 'utf8').includes('phpgate listening'), 20_000);
    await fn({ port, logFile, proc });
  } catch (err) {
    throw new Error(`${(err as Error).message}\nstderr: ${stderr}\nlog:\n${fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : ''}`, {
      cause: err,
    });
  } finally {
    proc.kill('SIGTERM');
    await exited;
  }
}

const lines = (file: string): string[] =>
  fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '');

/** The keys of a JSON object line at its top level, duplicates included (JSON.parse keeps only the last). */
function topLevelKeys(line: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '"') {
      let j = i + 1;
      while (line[j] !== '"') j += line[j] === '\\' ? 2 : 1;
      if (depth === 1 && line[j + 1] === ':') keys.push(line.slice(i + 1, j));
      i = j;
    } else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
  }
  return keys;
}

/** nginx's combined format: `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"` */
const COMBINED = /^(\S+) - (\S+) \[(\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] "([^"]*)" (\d{3}) (\d+) "([^"]*)" "([^"]*)"$/;
/** nginx's error log: `2026/12/06 07:00:00 [warn] 1234#0: message` */
const ERROR_LOG = /^\d{4}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2} \[(debug|info|notice|warn|error|crit)\] \d+#\d+: \S/;

describe('logging.format, through the command line and a log file', () => {
  test("json: ISO-8601 times, the access fields, and no key twice in any line (pino's pid and a php-cgi pid)", async () => {
    await withCli('json', 'format: json', ', max_requests: 1', async ({ port, logFile }) => {
      for (let i = 0; i < 3; i++) assert.equal((await request(`http://127.0.0.1:${port}`, `/hello.php?json=${i}`)).status, 200);
      await eventually(
        'a recycled worker and the access lines',
        () => /recycling worker/.test(fs.readFileSync(logFile, 'utf8')) && /json=2/.test(fs.readFileSync(logFile, 'utf8')),
        10_000,
      );
      for (const line of lines(logFile)) {
        const keys = topLevelKeys(line);
        assert.deepEqual(keys, [...new Set(keys)], `a key twice in ${line}`);
        assert.match(String((JSON.parse(line) as Entry)['time']), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      }
      const recycled = lines(logFile)
        .map((l) => JSON.parse(l) as Entry)
        .find((e) => /recycling worker/.test(String(e.msg)))!;
      assert.ok((recycled['workerPid'] as number) > 0, 'the child as workerPid');
      assert.notEqual(recycled['workerPid'], recycled['pid']);
    });
  });

  test("combined: access lines in nginx's combined layout, other lines as nginx's error log; SIGUSR1 after a move starts a new file in the same format", async () => {
    await withCli('combined', 'format: combined', '', async ({ port, logFile, proc }) => {
      const base = `http://127.0.0.1:${port}`;
      await request(base, '/hello.php?a=1&b="q"', { headers: { Referer: 'http://ref.example/', 'User-Agent': 'Mozilla/5.0 (phpgate "test")' } });
      await request(base, '/static.txt', { headers: { Authorization: `Basic ${Buffer.from('alice:pw').toString('base64')}` } });
      await eventually('two access lines', () => lines(logFile).filter((l) => COMBINED.test(l)).length === 2, 5_000);
      const [first, second] = lines(logFile).filter((l) => COMBINED.test(l));
      const m = COMBINED.exec(first!)!;
      assert.equal(m[1], '127.0.0.1');
      assert.equal(m[2], '-');
      assert.equal(m[4], 'GET /hello.php?a=1&b=\\x22q\\x22 HTTP/1.1', 'a quote in the request line escaped as nginx does');
      assert.equal(m[5], '200');
      assert.equal(m[6], String('hello'.length));
      assert.equal(m[7], 'http://ref.example/');
      assert.equal(m[8], 'Mozilla/5.0 (phpgate \\x22test\\x22)');
      const s = COMBINED.exec(second!)!;
      assert.equal(s[2], 'alice');
      assert.equal(s[6], 'static\n'.length.toString());
      assert.equal(s[7], '-');
      assert.equal(s[8], '-');
      for (const line of lines(logFile).filter((l) => !COMBINED.test(l))) assert.match(line, ERROR_LOG);
      assert.ok(lines(logFile).some((l) => / \[info\] \d+#0: phpgate listening/.test(l)));

      fs.renameSync(logFile, `${logFile}.1`);
      proc.kill('SIGUSR1');
      await eventually(
        'a new file after SIGUSR1',
        () => fs.existsSync(logFile) && /log files reopened/.test(fs.readFileSync(logFile, 'utf8')),
        5_000,
      );
      await request(base, '/static.txt?after');
      await eventually(
        'the access line in the new file',
        () => lines(logFile).some((l) => COMBINED.test(l) && l.includes('/static.txt?after')),
        5_000,
      );
      for (const line of lines(logFile)) assert.ok(COMBINED.test(line) || ERROR_LOG.test(line), line);
      assert.ok(!fs.readFileSync(`${logFile}.1`, 'utf8').includes('/static.txt?after'));
    });
  });

  test('pretty: one readable line per entry, no JSON', async () => {
    await withCli('pretty', 'format: pretty', `, ${PHP_INI}`, async ({ port, logFile }) => {
      await request(`http://127.0.0.1:${port}`, '/hello.php?pretty', { headers: { 'User-Agent': 'curl/8' } });
      await request(`http://127.0.0.1:${port}`, '/warn-fatal.php?pretty');
      await eventually('two access lines', () => lines(logFile).filter((l) => / GET \/(hello|warn-fatal)\.php\?pretty /.test(l)).length === 2, 5_000);
      for (const line of lines(logFile)) {
        assert.match(line, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} /, line);
        assert.ok(!line.trimStart().startsWith('{'), `JSON in pretty: ${line}`);
      }
      const access = lines(logFile).find((l) => l.includes('/hello.php?pretty'))!;
      assert.match(access, / 200 GET \/hello\.php\?pretty HTTP\/1\.1 [\d.]+ms 5B pool=default workerPid=\d+ upstream=[\d.]+ms client=127\.0\.0\.1 /);
      assert.match(access, /ua="curl\/8"$/);
      const php = lines(logFile).find((l) => / ERROR PHP Warning/.test(l))!;
      assert.match(php, /\\x0APHP Fatal error/, "the entry's two lines stay one log line");
      assert.match(php, / log=php requestId=[0-9a-f]{20} method=GET uri=\/warn-fatal\.php\?pretty pool=default workerPid=\d+$/);
    });
  });

  const missing = nginxFpmMissing('the combined format against nginx');
  test("combined: the same requests make the same lines as nginx's access_log combined (but the time)", { skip: missing }, async () => {
    const nginx = await startNginxFpmConfig(({ runDir, port }) =>
      nginxMainConfig(runDir, `  server {\n    listen 127.0.0.1:${port};\n    root ${docroot};\n    access_log ${runDir}/access.log combined;\n  }`),
    );
    const asked: Array<[string, { method?: string; headers?: Record<string, string> }]> = [
      ['/static.txt?q=1&r=%20', { headers: { Referer: 'http://ref.example/a?b', 'User-Agent': 'Mozilla/5.0 (X11; "quoted" \\ back)' } }],
      ['/static.txt', { method: 'HEAD', headers: { 'User-Agent': Buffer.from('ua café').toString('latin1') } }],
      ['/static.txt', { headers: { Authorization: `Basic ${Buffer.from('bob:secret').toString('base64')}` } }],
    ];
    try {
      await withCli('versus-nginx', 'format: combined', '', async ({ port, logFile }) => {
        for (const [target, o] of asked) {
          await request(`http://127.0.0.1:${nginx.port}`, target, o);
          await request(`http://127.0.0.1:${port}`, target, o);
        }
        const ours = (): string[] => lines(logFile).filter((l) => COMBINED.test(l));
        await eventually('our access lines', () => ours().length === asked.length, 5_000);
        const nginxFile = path.join(nginx.runDir, 'access.log');
        // Only the lines of these requests: the harness's readiness probe is in nginx's log too.
        const theirs = (): string[] => lines(nginxFile).filter((l) => l.includes(' /static.txt'));
        await eventually('nginx access lines', () => fs.existsSync(nginxFile) && theirs().length === asked.length, 5_000);
        const timeless = (l: string): string => l.replace(/\[[^\]]+\]/, '[TIME]');
        assert.deepEqual(ours().map(timeless), theirs().map(timeless));
      });
    } finally {
      await nginx.stop();
    }
  });
});
