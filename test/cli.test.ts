/**
 * The command line as a user meets it: --help, check, configuration errors with file:line:col and exit 2,
 * a missing php-cgi, and the embedded default serving the bundled example site.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../config/load.js';
import { PHP_USER_ENV, request } from './support/gateway.js';
import { eventually, freePort, running } from './support/proc.js';

const root = fileURLToPath(new URL('..', import.meta.url));
// tsx by absolute URL: the example-site test runs from a directory outside the repo.
const cli = [process.execPath, '--import', import.meta.resolve('tsx'), path.join(root, 'gateway/cli.ts')];

function run(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cli[0]!, [...cli.slice(1), ...args], {
    cwd: root,
    env: { ...process.env, ...PHP_USER_ENV, ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-cli-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function writeConfig(name: string, text: string): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, text);
  return file;
}

describe('phpgate command line', () => {
  test('--help lists every flag and the check command', () => {
    const r = run(['--help']);
    assert.equal(r.status, 0);
    for (const flag of [
      '--config',
      '--port',
      '--host',
      '--docroot',
      '--workers',
      '--help',
      '--version',
      'check',
      'PHPGATE_PORT',
      'PHPGATE_DOCROOT',
      'PHPGATE_WORKERS',
      'PHPGATE_HOST',
    ]) {
      assert.ok(r.stdout.includes(flag), `--help mentions ${flag}`);
    }
  });

  test('check accepts a valid file and exits 0', () => {
    fs.mkdirSync(path.join(tmp, 'public'), { recursive: true });
    const file = writeConfig('good.yaml', 'php:\n  docroot: ./public\n  worker_count: 2\n');
    const r = run(['check', '--config', file]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /ok/);
  });

  test("check asks php-cgi about each pool's php.ini settings, as php-fpm -t would", () => {
    fs.mkdirSync(path.join(tmp, 'public'), { recursive: true });
    const bad = writeConfig(
      'bad-ini.yaml',
      'php:\n  docroot: ./public\n  ini: { memory_limit: abc }\npools:\n  - name: reports\n    patterns: ["/r/*"]\n    ini: { extension: nosuch_ext }\n',
    );
    const r = run(['check', '--config', bad]);
    assert.equal(r.status, 2, r.stdout);
    assert.match(r.stderr, /bad-ini\.yaml: php: PHP Warning: {2}Invalid "memory_limit" setting/);
    assert.match(r.stderr, /bad-ini\.yaml: pools\.reports: PHP Warning: {2}PHP Startup: Unable to load dynamic library 'nosuch_ext'/);
    const missing = writeConfig('no-php.yaml', 'php:\n  docroot: ./public\n  binary: /nonexistent/php-cgi\n');
    const m = run(['check', '--config', missing]);
    assert.equal(m.status, 2);
    assert.match(m.stderr, /php\.binary \/nonexistent\/php-cgi not found/);
  });

  test('without --config, a gateway.yaml in the current directory is used, and the first log line names it', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'here-'));
    fs.mkdirSync(path.join(dir, 'www'));
    fs.writeFileSync(path.join(dir, 'www', 'index.html'), 'from ./gateway.yaml\n');
    const port = await freePort();
    fs.writeFileSync(
      path.join(dir, 'gateway.yaml'),
      `server: { host: 127.0.0.1, port: ${port} }\nadmin: { port: 0 }\nphp: { docroot: ./www, worker_count: 1, socket_dir: ./sock }\n`,
    );
    const c = spawnSync(cli[0]!, [...cli.slice(1), 'check'], {
      cwd: dir,
      env: { ...process.env, ...PHP_USER_ENV },
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(c.status, 0, c.stderr);
    assert.equal(c.stdout.trim(), `${path.join(dir, 'gateway.yaml')}: ok`);
    let output = '';
    const proc = spawn(cli[0]!, cli.slice(1), { cwd: dir, env: { ...process.env, ...PHP_USER_ENV }, stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout.on('data', (b: Buffer) => (output += b.toString()));
    const exited = new Promise((r) => proc.once('exit', r));
    try {
      await eventually('the gateway listens', () => output.includes('phpgate listening'), 20_000);
      const first = JSON.parse(output.split('\n')[0]!) as { msg: string; config: string };
      assert.match(first.msg, /^phpgate starting with .*gateway\.yaml$/);
      assert.equal((await request(`http://127.0.0.1:${port}`, '/')).text, 'from ./gateway.yaml\n');
    } finally {
      proc.kill('SIGTERM');
      await exited;
    }
  });

  test("the repository's gateway.example.yaml (the full configuration contract) passes check", () => {
    const r = run(['check', '--config', path.join(root, 'gateway.example.yaml')]);
    assert.equal(r.status, 0, r.stderr);
  });

  test('a wrong config is refused with file:line:col and exit code 2', () => {
    const file = writeConfig('bad.yaml', 'server:\n  port: 8080\nphp:\n  docroot: ./public\n  worker_cont: 2\n');
    for (const args of [
      ['check', '--config', file],
      ['--config', file],
    ]) {
      const r = run(args);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /bad\.yaml:5:3: .*worker_cont/);
      assert.match(r.stderr, /worker_count/, 'names what is allowed');
    }
  });

  test('a wrong type and a missing docroot are both reported with their positions', () => {
    const file = writeConfig('bad2.yaml', 'server:\n  port: "eighty"\nphp:\n  docroot: ./nowhere\n');
    const r = run(['check', '--config', file]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /bad2\.yaml:2:9: /);
    assert.match(r.stderr, /bad2\.yaml:4:12: .*nowhere/);
  });

  test('an unknown flag is a usage error (exit 2)', () => {
    const r = run(['--prot', '80']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--help/);
  });

  test('a missing php-cgi says how to install it and exits 1', async () => {
    const r = run(['--port', String(await freePort())], {
      PHPGATE_PHP_BINARY: 'php-cgi-that-does-not-exist',
      PHPGATE_SOCKET_DIR: path.join(tmp, 'sock-missing'),
    });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /apt-get install -y php-cgi/);
  });
});

interface CliGateway {
  proc: ReturnType<typeof spawn>;
  base: string;
  output(): string;
  stop(): Promise<void>;
}

/** Runs `phpgate` as a user would, from a directory outside the repo, and waits until it listens. */
async function startCli(socketDir: string, workers: number): Promise<CliGateway> {
  const port = await freePort();
  let output = '';
  const proc = spawn(cli[0]!, [...cli.slice(1), '--port', String(port), '--host', '127.0.0.1', '--workers', String(workers)], {
    cwd: tmp, // not the repo: the example site must be found from the package itself
    env: { ...process.env, PHPGATE_SOCKET_DIR: socketDir, PHPGATE_ADMIN_PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout.on('data', (c: Buffer) => (output += c.toString()));
  proc.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const deadline = Date.now() + 20_000;
  while (!output.includes('phpgate listening')) {
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`gateway did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    proc,
    base: `http://127.0.0.1:${port}`,
    output: () => output,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

describe('embedded default: the bundled example site', () => {
  let gw: CliGateway;
  let base = '';
  before(async () => {
    gw = await startCli(path.join(tmp, 'sock-example'), 2);
    base = gw.base;
  });
  after(() => gw.stop());

  test('serves the page, the JSON endpoint, the form post and the upload', async () => {
    const page = await request(base, '/');
    assert.equal(page.status, 200);
    assert.match(page.text, /phpgate/);
    const api = await request(base, '/api.php?x=1');
    assert.equal(api.status, 200);
    assert.match(String(api.headers['content-type']), /application\/json/);
    assert.deepEqual((JSON.parse(api.text) as { query: unknown }).query, { x: '1' });
    const form = await request(base, '/form.php', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'name=Ada+%3Cb%3E&message=hi',
    });
    assert.equal(form.status, 200);
    assert.ok(form.text.includes('Ada &lt;b&gt;'), 'posted value shown, escaped');
    const boundary = 'phpgateboundary';
    const upload = await request(base, '/upload.php', {
      method: 'POST',
      headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` },
      body: `--${boundary}\r\nContent-Disposition: form-data; name="files[]"; filename="a.txt"\r\nContent-Type: text/plain\r\n\r\nhello upload\r\n--${boundary}--\r\n`,
    });
    assert.equal(upload.status, 200);
    assert.ok(upload.text.includes('a.txt'));
    const css = await request(base, '/style.css');
    assert.equal(css.status, 200);
    assert.match(String(css.headers['content-type']), /text\/css/);
  });

  test('SIGTERM stops the gateway and its php-cgi processes, exit code 0', async () => {
    const pidFile = fs.readdirSync(path.join(tmp, 'sock-example')).find((n) => n.endsWith('.sock.pid'));
    const masterPid = Number(fs.readFileSync(path.join(tmp, 'sock-example', pidFile!), 'utf8'));
    const exited = new Promise<number | null>((r) => gw.proc.once('exit', (code) => r(code)));
    gw.proc.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.equal(running(masterPid), false, 'the php-cgi master was stopped with the gateway');
  });
});

describe('a gateway killed without stopping its pools', () => {
  test('killed together with its watcher, it leaves php-cgi behind, and the next gateway on that socket dir stops it', async () => {
    const socketDir = path.join(tmp, 'sock-stale');
    const first = await startCli(socketDir, 1);
    const pidFile = fs.readdirSync(socketDir).find((n) => n.endsWith('.sock.pid'));
    assert.ok(pidFile, 'the master pid is recorded in the socket dir');
    const masterPid = Number(fs.readFileSync(path.join(socketDir, pidFile), 'utf8').split('\n')[0]);
    // The watcher (php/group-watcher.ts) would end the master with the gateway: stopped first and killed after,
    // as when both die at once (the OOM killer taking the whole service), it cannot.
    const children = fs.readFileSync(`/proc/${first.proc.pid}/task/${first.proc.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
    const watcher = children.find((p) => fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').startsWith('/bin/sh\0-c'));
    assert.ok(watcher !== undefined, 'the gateway runs a watcher');
    process.kill(watcher, 'SIGSTOP');
    const exited = new Promise((r) => first.proc.once('exit', r));
    first.proc.kill('SIGKILL');
    await exited;
    process.kill(watcher, 'SIGKILL');
    assert.ok(running(masterPid), 'neither the gateway nor its watcher could stop the master');
    const second = await startCli(socketDir, 1);
    try {
      await eventually('the stale master stopped', () => !running(masterPid), 5000);
      assert.match(second.output(), /left behind/);
    } finally {
      await second.stop();
    }
  });
});

describe('SIGUSR1: log files are reopened (logrotate), never a Node inspector', () => {
  test('after the log is moved, new lines go to a new file of the same name; the moved one keeps the old lines', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'usr1-'));
    const logFile = path.join(dir, 'gw.log');
    const port = await freePort();
    const docroot = path.join(root, 'test', 'fixtures', 'site');
    fs.writeFileSync(
      path.join(dir, 'gateway.yaml'),
      `server: { host: 127.0.0.1, port: ${port} }\nadmin: { port: 0 }\nphp: { docroot: ${JSON.stringify(docroot)}, worker_count: 1, socket_dir: ${JSON.stringify(path.join(dir, 'sock'))} }\nlogging: { file: ${JSON.stringify(logFile)}, access: true }\n`,
    );
    let output = '';
    const proc = spawn(cli[0]!, [...cli.slice(1), '--config', path.join(dir, 'gateway.yaml')], {
      cwd: dir,
      env: { ...process.env, ...PHP_USER_ENV },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc.stdout.on('data', (c: Buffer) => (output += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise((r) => proc.once('exit', r));
    const logHas = (text: string) => (): boolean => fs.existsSync(logFile) && fs.readFileSync(logFile, 'utf8').includes(text);
    try {
      await eventually('the gateway logs to its file', logHas('phpgate listening'), 20_000);
      assert.equal((await request(`http://127.0.0.1:${port}`, '/static.txt?before')).status, 200);
      await eventually('the first access line', logHas('before'), 5_000);
      fs.renameSync(logFile, `${logFile}.1`);
      proc.kill('SIGUSR1');
      await eventually('a new file after SIGUSR1', logHas('log files reopened'), 5_000);
      assert.equal((await request(`http://127.0.0.1:${port}`, '/static.txt?after')).status, 200);
      await eventually('the next access line in the new file', logHas('after'), 5_000);
      const moved = fs.readFileSync(`${logFile}.1`, 'utf8');
      assert.ok(moved.includes('before') && !moved.includes('static.txt?after'), 'the moved file keeps only the lines before the signal');
      assert.doesNotMatch(output, /Debugger listening|inspector/i);
      assert.equal(proc.exitCode, null, 'still running');
    } finally {
      proc.kill('SIGTERM');
      await exited;
    }
  });
});

describe('two instances on one host', () => {
  test('each configuration has its own socket dir and pid file (reload reaches the right one); a second on a used port is refused in one line', async () => {
    const dirs: string[] = [];
    const procs: ReturnType<typeof spawn>[] = [];
    const logs: string[] = [];
    const start = async (name: string, port: number): Promise<string> => {
      const dir = fs.mkdtempSync(path.join(tmp, `${name}-`));
      fs.chmodSync(dir, 0o755);
      fs.mkdirSync(path.join(dir, 'www'));
      fs.writeFileSync(path.join(dir, 'www', 'index.html'), `${name}\n`);
      const file = path.join(dir, 'gateway.yaml');
      fs.writeFileSync(file, `server: { host: 127.0.0.1, port: ${port} }\nadmin: { port: 0 }\nphp: { docroot: ./www, worker_count: 1 }\n`);
      dirs.push(loadConfig({ file }).php.socket_dir);
      const i = logs.push('') - 1;
      const proc = spawn(cli[0]!, [...cli.slice(1), '--config', file], {
        cwd: dir,
        env: { ...process.env, ...PHP_USER_ENV },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      proc.stdout.on('data', (b: Buffer) => (logs[i] += b.toString()));
      proc.stderr.on('data', (b: Buffer) => (logs[i] += b.toString()));
      procs.push(proc);
      await eventually(`${name} listens`, () => logs[i]!.includes('phpgate listening'), 20_000);
      return file;
    };
    const [pa, pb] = [await freePort(), await freePort()];
    try {
      const a = await start('a', pa);
      await start('b', pb);
      assert.notEqual(dirs[0], dirs[1], 'one socket dir per configuration file');
      for (const [i, d] of dirs.entries()) assert.equal(fs.readFileSync(path.join(d, 'phpgate.pid'), 'utf8'), String(procs[i]!.pid));
      assert.equal(run(['reload', '--config', a]).status, 0);
      await eventually('a reloads', () => logs[0]!.includes('reloaded: new requests go to the new pools'));
      assert.ok(!logs[1]!.includes('reloaded'), 'b was not signalled');
      const c = path.join(fs.mkdtempSync(path.join(tmp, 'c-')), 'gateway.yaml');
      fs.mkdirSync(path.join(path.dirname(c), 'www'));
      fs.writeFileSync(c, `server: { host: 127.0.0.1, port: ${pa} }\nadmin: { port: 0 }\nphp: { docroot: ./www, worker_count: 1 }\n`);
      const r = run(['--config', c]);
      assert.equal(r.status, 1);
      assert.equal(
        r.stderr.trim(),
        `phpgate: 127.0.0.1:${pa} is already in use (another phpgate or server listens there): stop it, or set server.port`,
      );
      dirs.push(loadConfig({ file: c }).php.socket_dir);
    } finally {
      for (const p of procs) p.kill('SIGTERM');
      await Promise.all(procs.map((p) => (p.exitCode !== null ? Promise.resolve() : new Promise((res) => p.once('exit', res)))));
      for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
    }
  });
});
