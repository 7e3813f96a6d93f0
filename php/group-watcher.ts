/**
 * php-cgi masters call setsid(), so nothing ends them when their gateway dies without stopping them (SIGKILL, the
 * OOM killer, a crash): they and their children would hold memory and sockets until a later gateway reaps them.
 *
 * So each gateway process starts one small /bin/sh beside its masters. Its stdin is a pipe whose only writer is
 * the gateway (node opens pipes close-on-exec, so php-cgi never inherits it); the gateway writes `+ PGID` for each
 * master it starts and `- PGID` before (on a stop) or as soon as (on a crash) that master is gone. The kernel
 * closes the pipe however the gateway ends: at EOF the watcher TERMs, then KILLs, every group still listed. A
 * clean stop leaves the list empty, so it kills nothing. Lines are read in order, so a `-` always lands before
 * the EOF that follows it: no group that was let go is ever signalled.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import type { Logger } from '../core/log.js';

/** Signals that reach the gateway's whole process group (a terminal's ^C, a hangup) must not end the watcher. */
const SCRIPT = `trap '' INT HUP QUIT TERM PIPE
groups=' '
while read -r op pg; do
  case $op in
    +) groups="$groups$pg " ;;
    -) case $groups in *" $pg "*) groups="\${groups%% $pg *} \${groups#* $pg }" ;; esac ;;
  esac
done
[ "$groups" = ' ' ] && exit 0
for pg in $groups; do kill -TERM -$pg 2>/dev/null; done
sleep 0.5
for pg in $groups; do kill -KILL -$pg 2>/dev/null; done
exit 0
`;

/** Below this many restarts in a row the watcher is started again; past it, something is wrong with /bin/sh. */
const MAX_RESPAWNS = 5;

class GroupWatcher {
  #proc: ChildProcess | null = null;
  readonly #groups = new Set<number>();
  #log: Logger | null = null;
  #respawns = 0;

  /** `pgid` (a php-cgi master's pid) is to end with this process. */
  add(pgid: number, log: Logger): void {
    this.#log = log;
    this.#groups.add(pgid);
    this.#send(`+ ${pgid}\n`);
  }

  /** `pgid` stopped, or is being stopped, by the gateway itself: the watcher must forget it. */
  remove(pgid: number): void {
    if (this.#groups.delete(pgid)) this.#send(`- ${pgid}\n`);
  }

  /** The watcher's pid (tests), or null before the first master. */
  get pid(): number | null {
    return this.#proc?.pid ?? null;
  }

  #send(line: string): void {
    const proc = this.#proc ?? this.#start();
    proc?.stdin?.write(line);
  }

  #start(): ChildProcess | null {
    if (this.#respawns > MAX_RESPAWNS) return null;
    // A session of its own: a SIGKILL to the gateway's whole process group (a supervisor or a harness that kills the
    // group it started) must not take the watcher along, or the masters it watches would outlive both.
    const proc = spawn('/bin/sh', ['-c', SCRIPT], { stdio: ['pipe', 'ignore', 'inherit'], detached: true });
    this.#proc = proc;
    // Neither the process nor its pipe may keep the gateway's event loop alive: they end with it.
    proc.unref();
    // A pipe the child_process module opened is a net.Socket, which can be unref'd.
    const stdin = proc.stdin as Socket;
    stdin.unref();
    // EPIPE when the watcher died: its 'exit' below starts another with the whole list.
    stdin.on('error', (err) => this.#log?.debug({ err }, 'php-cgi group watcher pipe closed'));
    proc.once('error', (err) => {
      this.#log?.error({ err }, 'cannot start /bin/sh to watch the php-cgi masters: they would outlive a killed gateway');
      this.#respawns = MAX_RESPAWNS + 1;
    });
    proc.once('exit', (code, signal) => {
      if (this.#proc === proc) this.#proc = null;
      if (this.#groups.size === 0) return;
      this.#respawns++;
      this.#log?.warn({ code, signal }, 'the php-cgi group watcher exited; starting another');
      const next = this.#start();
      for (const pgid of this.#groups) next?.stdin?.write(`+ ${pgid}\n`);
    });
    return proc;
  }
}

/** One per gateway process: it is that process's death that must end its masters. */
export const groupWatcher = new GroupWatcher();
