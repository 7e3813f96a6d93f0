/**
 * The kill of a child a worker let go of (its client aborted). php-cgi ignores FCGI_ABORT_REQUEST, so a script
 * that never writes again runs on until it is killed; but a child that finished the aborted script goes back to
 * accept() and may already serve another connection of the pool. It is killed only when sure it serves nobody.
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
  /** Whether a connection of the pool is open to a child not known yet (its handshake has not told the pid). */
  identifying(): boolean;
}

/** While some connection's child is unknown, the kill waits, checking this often, at most this long. */
const IDENTIFY_RETRY_MS = 10;
const IDENTIFY_WAIT_MS = 15_000; // a worker's connect and handshake timeouts

/**
 * SIGKILLs `pid` unless it serves one of the owner's connections again. A connection whose handshake has not told
 * its child yet may be this one's, and killing on that guess ended another client's request: so the kill waits
 * until every connection's child is known.
 */
export function killAbandoned(owner: ChildOwner, pid: number, waitedMs = 0): void {
  if (owner.servedBy(pid)) return;
  if (owner.identifying()) {
    if (waitedMs < IDENTIFY_WAIT_MS) setTimeout(() => killAbandoned(owner, pid, waitedMs + IDENTIFY_RETRY_MS), IDENTIFY_RETRY_MS).unref();
    else
      owner.log.warn(
        { pool: owner.poolName, workerPid: pid },
        'a child left by an aborted request was not killed: which connection it serves stayed unknown',
      );
    return;
  }
  const master = owner.masterPid;
  if (master !== null && parentOf(pid) === master) signalPid(pid, 'SIGKILL');
}
