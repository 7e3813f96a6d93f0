/**
 * The kill of a child a worker let go of (its client aborted). php-cgi ignores FCGI_ABORT_REQUEST, so a script
 * that never writes again runs on until it is killed; but a child that finished the aborted script goes back to
 * accept() and may already serve another connection of the pool. It is killed only while no known connection is
 * its; one that is still being handshaken may be, and its handshake's answer may already be on its way, so the
 * kill is remembered and a handshake that names a killed child is thrown away (the worker connects again) rather
 * than given a request the dead child would never answer.
 */
import type { Logger } from '../core/log.js';
import { parentOf, signalPid } from './process.js';

/** What the kill asks of the pool that owned the child (a WorkerHost is one). */
export interface ChildOwner {
  readonly poolName: string;
  readonly log: Logger;
  /** The current master's pid: the child must still be its child (never a reused pid). */
  readonly masterPid: number | null;
  /** Whether one of the pool's connections is bound to this child now. */
  servedBy(pid: number): boolean;
  /** This child was killed: a handshake that reports it must not make a worker ready. */
  killed(pid: number): void;
}

/** SIGKILLs `pid` unless it serves one of the owner's connections again. */
export function killAbandoned(owner: ChildOwner, pid: number): void {
  if (owner.servedBy(pid)) return;
  const master = owner.masterPid;
  if (master === null || parentOf(pid) !== master) return;
  owner.killed(pid);
  signalPid(pid, 'SIGKILL');
}

/** How long a killed child's pid is remembered: longer than a handshake may take (connect + handshake timeouts). */
const KILLED_MEMORY_MS = 20_000;

/** The children a pool killed lately, for the handshake check (a pid is reused only after the kernel wraps around). */
export class KilledChildren {
  readonly #at = new Map<number, number>();

  add(pid: number): void {
    const now = Date.now();
    for (const [p, at] of this.#at) if (now - at > KILLED_MEMORY_MS) this.#at.delete(p);
    this.#at.set(pid, now);
  }

  /**
   * What a handshake's child is to the pool: its master's child ('ours'), one killed since ('killed'), or anything
   * else ('foreign': the socket led elsewhere, e.g. PHP swapped it for another pool's, whose php-cgi runs as another user).
   */
  judge(pid: number, master: number | null): 'ours' | 'killed' | 'foreign' {
    const at = this.#at.get(pid);
    if (at !== undefined && Date.now() - at <= KILLED_MEMORY_MS) return 'killed';
    return master !== null && parentOf(pid) === master ? 'ours' : 'foreign';
  }
}
