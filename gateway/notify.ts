/**
 * The service manager's readiness protocol (systemd's sd_notify, for a `Type=notify` unit): READY=1 once the
 * gateway listens and its pools' workers are up, RELOADING=1 … READY=1 around a reload (SIGHUP), STOPPING=1 when
 * a stop begins, with a STATUS= line saying what happened.
 *
 * The protocol is one datagram per message on the unix socket named by $NOTIFY_SOCKET. node has no unix datagram
 * sockets, so each message is sent by systemd's own `systemd-notify`, which does two things a hand-made sender
 * could not: run as root, it sends in the name of its parent (this process, the unit's main process), so the unit
 * can keep `NotifyAccess=main` and PHP running in the same cgroup can never speak for the gateway; and it waits
 * until the manager has taken the message (a barrier), so a message from a short-lived process is not dropped.
 * Messages go out one at a time, in order.
 */
import { spawn } from 'node:child_process';
import type { Logger } from '../core/log.js';

/** Where systemd says to send notifications; the one environment variable of its protocol that matters here. */
export const NOTIFY_SOCKET_ENV = 'NOTIFY_SOCKET';

/** systemd-notify waits for the manager's barrier for 5 s itself; past this it is stuck, and is stopped. */
const SEND_TIMEOUT_MS = 10_000;

export class ServiceNotifier {
  readonly #log: Logger;
  readonly #env: NodeJS.ProcessEnv;
  /** The previous message's sending: the next one waits for it, so RELOADING=1 never overtakes READY=1. */
  #last: Promise<void> = Promise.resolve();
  #missing = false;

  /** A notifier when the process runs under a manager that asked for notifications (NOTIFY_SOCKET set), else null. */
  static fromEnv(env: NodeJS.ProcessEnv, log: Logger): ServiceNotifier | null {
    const socket = env[NOTIFY_SOCKET_ENV];
    return socket === undefined || socket === '' ? null : new ServiceNotifier(env, log);
  }

  private constructor(env: NodeJS.ProcessEnv, log: Logger) {
    this.#env = env;
    this.#log = log;
  }

  ready(status: string): Promise<void> {
    return this.#send(['READY=1', `STATUS=${status}`]);
  }

  /** MONOTONIC_USEC: the clock systemd (253+) matches a reload's start against; older ones ignore it. */
  reloading(): Promise<void> {
    return this.#send(['RELOADING=1', `MONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`, 'STATUS=reloading']);
  }

  stopping(): Promise<void> {
    return this.#send(['STOPPING=1', 'STATUS=stopping: lame duck, then draining']);
  }

  #send(fields: string[]): Promise<void> {
    // One message after another, and never a rejection: a message that cannot go must not stop the next ones.
    const next = this.#last.then(() => this.#spawn(fields)).catch((err: unknown) => this.#log.warn({ err }, `systemd-notify failed: ${fields[0]!}`));
    this.#last = next;
    return next;
  }

  #spawn(fields: string[]): Promise<void> {
    if (this.#missing) return Promise.resolve();
    return new Promise((resolve) => {
      // Fields are arguments, never a shell line; a status text with a newline would start another field.
      const args = fields.map((f) => f.replace(/[\r\n]+/g, ' '));
      const child = spawn('systemd-notify', args, { env: this.#env, stdio: ['ignore', 'ignore', 'pipe'], timeout: SEND_TIMEOUT_MS });
      let stderr = '';
      let failed = false;
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
      child.once('error', (err: NodeJS.ErrnoException) => {
        failed = true;
        // Not found: said once, and not tried again (systemd is not the manager, or its tools are not installed).
        if (err.code === 'ENOENT') this.#missing = true;
        this.#log.warn({ err }, `${NOTIFY_SOCKET_ENV} is set but systemd-notify could not run: the service manager is not told ${fields[0]!}`);
        resolve();
      });
      child.once('close', (code, signal) => {
        if (!failed && code !== 0) this.#log.warn({ code, signal, stderr: stderr.trim() }, `systemd-notify ${fields[0]!} failed`);
        resolve();
      });
    });
  }
}
