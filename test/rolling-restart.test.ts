/**
 * A rolling restart behind a real HAProxy loses no request: three phpgate processes started as a deployment
 * starts them (the CLI, each with its own gateway.yaml, port and php-cgi pool), HAProxy in front with the
 * configuration an operator writes (health check on /readyz, inter 1s fall 2 rise 2, round robin, defaults
 * otherwise), keep-alive clients through it the whole time, and each instance in turn stopped with SIGTERM,
 * started again and taken back by HAProxy. Every answer must be PHP's answer to that very request.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PHP_USER_ENV } from './support/gateway.js';
import { haproxyMissing, startHaproxy, type RunningHaproxy } from './support/haproxy.js';
import { eventually, eventuallyAsync, freePort } from './support/proc.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = [process.execPath, '--import', import.meta.resolve('tsx'), path.join(root, 'gateway/cli.ts')];
const skip = haproxyMissing('the rolling-restart test');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phpgate-rolling-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Bounded load: this many keep-alive clients, each sending its next request when the last one is answered. */
const CLIENTS = 6;

interface Instance {
  readonly name: string;
  readonly port: number;
  readonly config: string;
  proc: ChildProcess | null;
  log: string;
}

/** Starts the instance's CLI and waits for its "listening" line. */
async function startInstance(inst: Instance): Promise<void> {
  inst.log = '';
  const proc = spawn(cli[0]!, [...cli.slice(1), '--config', inst.config], {
    cwd: path.dirname(inst.config),
    env: { ...process.env, ...PHP_USER_ENV },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  inst.proc = proc;
  proc.stdout.on('data', (b: Buffer) => (inst.log += b.toString()));
  proc.stderr.on('data', (b: Buffer) => (inst.log += b.toString()));
  await eventually(`${inst.name} listens`, () => inst.log.includes('phpgate listening') || proc.exitCode !== null, 30_000);
  assert.equal(proc.exitCode, null, `${inst.name} exited at start:\n${inst.log}`);
}

/** SIGTERM, as systemd or an operator sends it, and the exit (code 0) after the lame duck and the drain. */
async function stopInstance(inst: Instance): Promise<void> {
  const proc = inst.proc!;
  if (proc.exitCode === null && proc.signalCode === null) {
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    proc.kill('SIGTERM');
    assert.equal(await exited, 0, `${inst.name} exit code\n${inst.log}`);
  }
  inst.proc = null;
}

interface Failure {
  readonly at: string;
  readonly what: string;
}

/** Keep-alive clients through HAProxy until stopped; every answer checked against its own request. */
class Load {
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
  readonly #base: string;
  readonly #loops: Array<Promise<void>> = [];
  #running = true;
  phase = 'start';
  sent = 0;
  readonly failures: Failure[] = [];
  /** Answers per instance name, per phase: shows who served while another restarted. */
  readonly served = new Map<string, Map<string, number>>();

  constructor(base: string) {
    this.#base = base;
    for (let i = 0; i < CLIENTS; i++) this.#loops.push(this.#loop());
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
    this.#agent.destroy();
  }

  async #loop(): Promise<void> {
    while (this.#running) {
      const token = randomBytes(8).toString('hex');
      const phase = this.phase;
      this.sent++;
      try {
        const { status, body } = await this.#get(`/app.php?t=${token}`);
        const m = /^token=([0-9a-f]+) instance=(\w+)$/.exec(body);
        if (status !== 200 || m === null || m[1] !== token) {
          this.failures.push({ at: phase, what: `${status} ${JSON.stringify(body.slice(0, 200))}` });
        } else {
          const per = this.served.get(phase) ?? new Map<string, number>();
          per.set(m[2]!, (per.get(m[2]!) ?? 0) + 1);
          this.served.set(phase, per);
        }
      } catch (err) {
        this.failures.push({ at: phase, what: (err as Error).message });
      }
    }
  }

  #get(target: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = http.get(`${this.#base}${target}`, { agent: this.#agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      });
      req.setTimeout(10_000, () => req.destroy(new Error('no answer in 10 s')));
      req.on('error', reject);
    });
  }
}

describe('rolling restart behind HAProxy', { skip }, () => {
  test('SIGTERM, restart and re-admission of each of three instances in turn: no request fails', { timeout: 90_000 }, async () => {
    const www = path.join(tmp, 'www');
    fs.mkdirSync(www);
    // A few milliseconds of PHP per request, so SIGTERM lands while requests are running.
    fs.writeFileSync(
      path.join(www, 'app.php'),
      "<?php usleep(3000); header('Content-Type: text/plain'); echo 'token=', $_GET['t'] ?? '', ' instance=', getenv('INSTANCE');",
    );
    const instances: Instance[] = [];
    for (const name of ['web1', 'web2', 'web3']) {
      const dir = path.join(tmp, name);
      fs.mkdirSync(dir);
      const port = await freePort();
      const config = path.join(dir, 'gateway.yaml');
      // What a deployment's file says; the lame duck, the drain and /readyz on the main port are the defaults.
      fs.writeFileSync(
        config,
        `server: { host: 127.0.0.1, port: ${port} }\nadmin: { port: 0 }\nphp:\n  docroot: ../www\n  worker_count: 2\n  env: { INSTANCE: ${name} }\n`,
      );
      instances.push({ name, port, config, proc: null, log: '' });
    }
    let haproxy: RunningHaproxy | null = null;
    let load: Load | null = null;
    const upAs = async (name: string, status: string): Promise<boolean> => (await haproxy!.serverStatus()).get(name) === status;
    try {
      await Promise.all(instances.map(startInstance));
      haproxy = await startHaproxy(instances.map((i) => ({ name: i.name, port: i.port })));
      for (const i of instances) await eventuallyAsync(`HAProxy sees ${i.name} UP`, () => upAs(i.name, 'UP'), 10_000);
      load = new Load(haproxy.base);
      await new Promise((r) => setTimeout(r, 1000));
      const seenDown = new Set<string>();
      for (const inst of instances) {
        load.phase = `restart ${inst.name}`;
        // Watch HAProxy take it out during the lame duck (the port still serves then).
        const watch = setInterval(() => {
          void haproxy!.serverStatus().then((s) => {
            if (s.get(inst.name)?.startsWith('DOWN') === true && inst.proc !== null) seenDown.add(inst.name);
          });
        }, 200);
        try {
          await stopInstance(inst);
        } finally {
          clearInterval(watch);
        }
        await startInstance(inst);
        await eventuallyAsync(`HAProxy takes ${inst.name} back`, () => upAs(inst.name, 'UP'), 15_000);
      }
      load.phase = 'after';
      await new Promise((r) => setTimeout(r, 1000));
      await load.stop();
      const { sent, failures, served } = load;
      load = null;
      const report = JSON.stringify({
        sent,
        failures: failures.slice(0, 20),
        served: Object.fromEntries([...served].map(([k, v]) => [k, Object.fromEntries(v)])),
      });
      process.stdout.write(`# rolling restart: ${report}\n`);
      assert.deepEqual(failures, [], `${failures.length} of ${sent} requests failed\n${report}\nhaproxy:\n${haproxy.log()}`);
      assert.ok(sent > 300, `a real load went through (${sent} requests)`);
      assert.deepEqual([...seenDown].sort(), ['web1', 'web2', 'web3'], 'HAProxy took each instance out before it closed its port');
      for (const inst of instances) {
        // While one restarts, the other two serve; once back, it serves again.
        const during = served.get(`restart ${inst.name}`);
        for (const other of instances.filter((o) => o !== inst))
          assert.ok((during?.get(other.name) ?? 0) > 0, `${other.name} served while ${inst.name} restarted`);
      }
      assert.deepEqual([...(served.get('after')?.keys() ?? [])].sort(), ['web1', 'web2', 'web3'], 'all three serve after the restart');
    } finally {
      await load?.stop();
      await haproxy?.stop();
      // Cleanup after a failure: an odd exit code here would only hide the failure already on its way.
      await Promise.all(instances.filter((i) => i.proc !== null).map((i) => stopInstance(i).catch(() => undefined)));
    }
  });
});
