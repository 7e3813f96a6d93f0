/**
 * A real gateway (startGateway) in a child process of its own, for tests that measure the gateway's memory and CPU
 * apart from the clients' (gatewayProcess below forks this file). Asked over IPC, it collects garbage twice and
 * reports process.memoryUsage() and process.cpuUsage().
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startGateway, type RunningGateway } from './gateway.js';

export interface Usage {
  readonly rss: number;
  readonly heapUsed: number;
  readonly external: number;
  readonly arrayBuffers: number;
  /** heapUsed + external: what the process holds in JS objects and Buffers (external includes arrayBuffers). */
  readonly held: number;
  /** User + system CPU time so far, in ms. */
  readonly cpuMs: number;
}

type ToChild = { start: { yaml: string; docroot?: string } } | { usage: { gc: boolean } } | { stop: true };
type FromChild = { port: number } | { usage: Usage } | { error: string };

export interface GatewayProcess {
  readonly port: number;
  readonly pid: number;
  /** Memory and CPU now; `gc`: after two full collections (what is really retained). */
  usage(gc?: boolean): Promise<Usage>;
  stop(): Promise<void>;
}

/** Forks a gateway child running `yaml` (see startGateway) and waits until it listens. */
export async function gatewayProcess(yaml: string, opts: { docroot?: string } = {}): Promise<GatewayProcess> {
  const child = fork(fileURLToPath(import.meta.url), [], {
    execArgv: ['--import', import.meta.resolve('tsx'), '--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const next = (): Promise<FromChild> =>
    new Promise((resolve, reject) => {
      const onExit = (code: number | null): void => reject(new Error(`gateway child exited (${code})`));
      child.once('exit', onExit);
      child.once('message', (m) => {
        child.removeListener('exit', onExit);
        resolve(m as FromChild);
      });
    });
  const ask = async (m: ToChild): Promise<FromChild> => {
    const answer = next();
    child.send(m);
    const a = await answer;
    if ('error' in a) throw new Error(a.error);
    return a;
  };
  let started: FromChild;
  try {
    started = await ask({ start: { yaml, ...(opts.docroot === undefined ? {} : { docroot: opts.docroot }) } });
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    port: (started as { port: number }).port,
    pid: child.pid!,
    usage: async (gc = true) => ((await ask({ usage: { gc } })) as { usage: Usage }).usage,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.send({ stop: true });
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function usageNow(gc: boolean): Usage {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (gc && collect !== undefined) {
    collect();
    collect();
  }
  const m = process.memoryUsage();
  const c = process.cpuUsage();
  return {
    rss: m.rss,
    heapUsed: m.heapUsed,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    held: m.heapUsed + m.external,
    cpuMs: (c.user + c.system) / 1000,
  };
}

// The child's side: only when forked with an IPC channel.
if (process.send !== undefined && process.argv[1] === fileURLToPath(import.meta.url)) {
  let g: RunningGateway | null = null;
  const reply = (m: FromChild): void => void process.send!(m);
  process.on('message', (m: ToChild) => {
    if ('start' in m) {
      startGateway(m.start.yaml, m.start.docroot === undefined ? {} : { docroot: m.start.docroot }).then(
        (running) => {
          g = running;
          reply({ port: running.port });
        },
        (err: unknown) => reply({ error: String(err) }),
      );
    } else if ('usage' in m) {
      reply({ usage: usageNow(m.usage.gc) });
    } else {
      const done = (): never => process.exit(0);
      void (g === null ? Promise.resolve() : g.stop()).then(done, done);
    }
  });
  process.on('disconnect', () => {
    // The test died: the gateway goes with it (its php-cgi groups end with it, see gateway/processes.ts's watcher).
    void (g === null ? Promise.resolve() : g.stop()).finally(() => process.exit(0));
  });
}
