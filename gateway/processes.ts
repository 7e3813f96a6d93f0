/**
 * server.processes: several gateway processes on one port (node:cluster), so the gateway's own work (HTTP, TLS,
 * static files, cache hits) uses more than one core. Each process is a whole gateway with its share of the PHP
 * workers (the pools are partitioned, so php.worker_count stays the machine's total) and its own sockets.
 *
 * The primary only supervises: it forks the processes, restarts one that dies, forwards SIGHUP (reload) and
 * SIGTERM/SIGINT (graceful stop), and relays cache purges from the process that runs the admin listener.
 */
import cluster, { type Worker as ClusterWorker } from 'node:cluster';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { GatewayConfig, PoolConfig } from '../config/types.js';
import type { Logger } from '../core/log.js';
import type { ServiceNotifier } from './notify.js';

/** Environment of a gateway process: its index among `count`. */
export const PROCESS_INDEX_ENV = 'PHPGATE_PROCESS_INDEX';
export const PROCESS_COUNT_ENV = 'PHPGATE_PROCESS_COUNT';
/** One id for all the processes of one gateway instance: a purge it sent through Redis is not applied again. */
export const INSTANCE_ID_ENV = 'PHPGATE_INSTANCE_ID';

/** A process that dies this soon after its start is failing to start, not crashing under load. */
const RESTART_MIN_UPTIME_MS = 5_000;
const RESTART_BACKOFF_MAX_MS = 30_000;
/** Beyond drain_ms, how long the primary waits for its processes before killing them. */
const STOP_GRACE_MS = 5_000;

/** Messages between the primary and the gateway processes. */
export type ProcessMessage = { readonly type: 'purge'; readonly pattern: string };

export function processCount(setting: number | 'auto'): number {
  return setting === 'auto' ? Math.max(1, os.availableParallelism()) : setting;
}

/** This process's place when it runs as one of several, or null when it is the only one. */
export function processSlot(): { index: number; count: number } | null {
  if (!cluster.isWorker) return null;
  const index = Number(process.env[PROCESS_INDEX_ENV]);
  const count = Number(process.env[PROCESS_COUNT_ENV]);
  return Number.isInteger(index) && Number.isInteger(count) && count > 1 ? { index, count } : null;
}

/**
 * One process's configuration: its share of every pool's workers (at least one), its own socket directory, and
 * the admin listener in process 0 only (one port cannot take several listeners that answer differently).
 */
export function configForProcess(c: Readonly<GatewayConfig>, index: number, count: number): Readonly<GatewayConfig> {
  const share = (total: number): number => Math.max(1, Math.floor(total / count) + (index < total % count ? 1 : 0));
  return {
    ...c,
    admin: index === 0 ? c.admin : { ...c.admin, port: 0 },
    php: { ...c.php, worker_count: share(c.php.worker_count), socket_dir: path.join(c.php.socket_dir, `p${index}`) },
    pools: c.pools.map((p): PoolConfig => ({ ...p, worker_count: share(p.worker_count) })),
  };
}

interface Slot {
  worker: ClusterWorker | null;
  startedAt: number;
  failures: number;
  timer: NodeJS.Timeout | null;
}

/**
 * The primary: forks `count` gateway processes running this same command line and supervises them until a stop
 * signal. Resolves with the exit code: 0 after a clean stop, or the code of a process that could not start.
 */
export function runPrimary(o: {
  config: Readonly<GatewayConfig>;
  count: number;
  pidFile: string;
  log: Logger;
  /** Checks the file again before a reload is forwarded (an invalid one is refused here, once). */
  validate: () => string | null;
  /** The service manager (systemd): told when every process listens and when the stop begins (not of reloads). */
  notifier: ServiceNotifier | null;
}): Promise<number> {
  const { count, log } = o;
  const slots: Slot[] = Array.from({ length: count }, () => ({ worker: null, startedAt: 0, failures: 0, timer: null }));
  const instance = randomUUID();
  let stopping = false;
  let listening = 0;
  let started = false;
  return new Promise((resolve) => {
    const fork = (index: number): void => {
      const slot = slots[index]!;
      slot.timer = null;
      slot.startedAt = Date.now();
      const worker = cluster.fork({ [PROCESS_INDEX_ENV]: String(index), [PROCESS_COUNT_ENV]: String(count), [INSTANCE_ID_ENV]: instance });
      slot.worker = worker;
      worker.once('listening', () => {
        if (started) {
          log.info({ process: index, processPid: worker.process.pid }, 'gateway process replaced');
          return;
        }
        listening++;
        if (listening === count) {
          started = true;
          fs.writeFileSync(o.pidFile, String(process.pid), { mode: 0o600 });
          log.info({ processes: count }, 'phpgate running as several processes');
          void o.notifier?.ready(`${count} gateway processes listening`);
        }
      });
      worker.on('message', (m: ProcessMessage) => {
        if (m.type !== 'purge') return;
        // Every other process drops the same entries (the sender already did).
        for (const s of slots) if (s.worker !== null && s.worker !== worker && s.worker.isConnected()) s.worker.send(m);
      });
      worker.once('exit', (code, signal) => {
        slot.worker = null;
        if (stopping) {
          if (slots.every((s) => s.worker === null)) finish(0);
          return;
        }
        if (!started) {
          // A process that cannot start (port taken, bad PHP binary) would fail the same way again: stop all.
          log.fatal({ process: index, code, signal }, 'a gateway process could not start');
          stopAll();
          exitCode = code === 0 || code === null ? 1 : code;
          return;
        }
        const quick = Date.now() - slot.startedAt < RESTART_MIN_UPTIME_MS;
        slot.failures = quick ? slot.failures + 1 : 0;
        const delay = Math.min(RESTART_BACKOFF_MAX_MS, quick ? 500 * 2 ** slot.failures : 0);
        log.error({ process: index, code, signal, restartInMs: delay }, 'a gateway process exited; starting another');
        slot.timer = setTimeout(() => fork(index), delay);
      });
    };

    let exitCode = 0;
    const finish = (code: number): void => {
      fs.rmSync(o.pidFile, { force: true });
      process.off('SIGTERM', onStop);
      process.off('SIGINT', onStop);
      process.off('SIGHUP', onReload);
      process.off('SIGUSR1', onReopen);
      resolve(exitCode !== 0 ? exitCode : code);
    };
    const stopAll = (): void => {
      if (stopping) return;
      stopping = true;
      void o.notifier?.stopping();
      for (const s of slots) {
        if (s.timer !== null) clearTimeout(s.timer);
        s.timer = null;
        s.worker?.process.kill('SIGTERM');
      }
      if (slots.every((s) => s.worker === null)) {
        finish(0);
        return;
      }
      // Each process serves through its lame duck, then drains for up to drain_ms itself; one that hangs past that is killed.
      setTimeout(
        () => {
          for (const s of slots) s.worker?.process.kill('SIGKILL');
        },
        o.config.server.timeouts.lame_duck_ms + o.config.server.timeouts.drain_ms + STOP_GRACE_MS,
      ).unref();
    };
    const onStop = (signal: NodeJS.Signals): void => {
      log.info({ signal }, 'stopping every gateway process');
      stopAll();
    };
    const onReload = (): void => {
      if (stopping) return;
      const invalid = o.validate();
      if (invalid !== null) {
        log.error(`reload refused, the running configuration stays: ${invalid}`);
        return;
      }
      // Each process reads the file itself and replaces its pools beside the old ones, as a single process does.
      for (const s of slots) s.worker?.process.kill('SIGHUP');
    };
    // SIGUSR1 (logrotate): each process reopens its own log file; the primary's own was reopened by the CLI's handler.
    const onReopen = (): void => {
      for (const s of slots) s.worker?.process.kill('SIGUSR1');
    };
    process.on('SIGTERM', onStop);
    process.on('SIGINT', onStop);
    process.on('SIGHUP', onReload);
    process.on('SIGUSR1', onReopen);
    for (const what of perProcess(o.config)) log.warn({ processes: count }, `${what} counts per gateway process`);
    for (let i = 0; i < count; i++) fork(i);
  });
}

/** Limits that each process keeps on its own: said at start, since N processes allow N times as much. */
function perProcess(c: Readonly<GatewayConfig>): string[] {
  const out: string[] = [];
  if (c.rate_limit.rules.length > 0 && c.rate_limit.store === 'memory')
    out.push('rate_limit with store "memory" (use a redis:// store to count across processes)');
  if (c.server.limits.connections_per_ip > 0) out.push('server.limits.connections_per_ip');
  return out;
}

/** The instance id the primary gave this process, or null when it runs alone (each Gateway then makes its own). */
export function instanceIdOfCluster(): string | null {
  if (!cluster.isWorker) return null;
  const id = process.env[INSTANCE_ID_ENV];
  return id === undefined || id === '' ? null : id;
}

/** In a gateway process: a purge done here reaches the others through the primary. */
export function broadcastPurge(pattern: string): void {
  if (cluster.isWorker && process.send !== undefined) process.send({ type: 'purge', pattern } satisfies ProcessMessage);
}

/** In a gateway process: purges relayed from another process. */
export function onPurgeFromOthers(purge: (pattern: string) => void): void {
  if (!cluster.isWorker) return;
  process.on('message', (m: ProcessMessage) => {
    if (m !== null && typeof m === 'object' && m.type === 'purge' && typeof m.pattern === 'string') purge(m.pattern);
  });
}
