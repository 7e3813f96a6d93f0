/**
 * A server the bench runs as a node process of its own: spawned as the leader of its own process group (detached),
 * so a terminal's Ctrl-C reaches only the bench, which then stops it: SIGTERM, and past a grace SIGKILL to its
 * group. If the bench exits without stopping it (an uncaught error), it is killed then: nothing of ours outlives it.
 */
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';

/** What a case holds of a started server. */
export interface RunningServer {
  port: number;
  pid: number;
  /** True while the process runs. */
  alive(): boolean;
  /** The last few KB of its log (stdout + stderr). */
  logTail(): Promise<string>;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class ServerProcess {
  readonly #dir: string;
  readonly #graceMs: number;
  readonly #afterKill: () => void;
  #child: ChildProcess | null = null;
  #exited: Promise<void> = Promise.resolve();
  #stopped: Promise<void> | undefined;

  /** `dir`: its private temp dir, removed at the end; `afterKill`: what else to clean once it is gone. */
  constructor(dir: string, graceMs: number, afterKill: () => void = () => undefined) {
    this.#dir = dir;
    this.#graceMs = graceMs;
    this.#afterKill = afterKill;
    process.once('exit', () => {
      if (this.alive()) killGroup(this.#child!.pid!);
      afterKill();
      rmSync(dir, { recursive: true, force: true });
    });
  }

  /** The process just spawned (detached) for this server. */
  adopt(child: ChildProcess): void {
    this.#child = child;
    this.#exited = new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.once('error', () => resolve());
    });
  }

  /** Resolves once the process has exited (or could not start). */
  get exited(): Promise<void> {
    return this.#exited;
  }

  readonly alive = (): boolean => this.#child !== null && this.#child.exitCode === null && this.#child.signalCode === null;

  /** SIGTERM, then SIGKILL to its group past the grace; then `afterKill`. The temp dir stays. */
  async kill(): Promise<void> {
    const c = this.#child;
    if (c !== null && this.alive()) {
      c.kill('SIGTERM');
      const timedOut = await Promise.race([this.#exited.then(() => false), sleep(this.#graceMs).then(() => true)]);
      if (timedOut && this.alive()) {
        killGroup(c.pid!);
        await this.#exited;
      }
    }
    this.#afterKill();
  }

  /** Kills it (once) and removes its temp dir. */
  readonly stop = (): Promise<void> => (this.#stopped ??= this.kill().then(() => rm(this.#dir, { recursive: true, force: true })));
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL'); // its group: spawned detached, it leads it
  } catch {
    /* gone already */
  }
}
