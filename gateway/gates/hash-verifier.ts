/**
 * Slow password hashes (bcrypt, MD5-crypt, SHA-crypt) are verified on one worker thread per process, not on the
 * event loop: a bcrypt at cost 10 takes about 80 ms in JavaScript, and a client sending wrong passwords would
 * otherwise stall every other request for that long, each time. With the worker, only logins wait.
 *
 * The thread starts on the first slow verification and holds the process open only while jobs are pending. At
 * most MAX_PENDING jobs wait; past that `verify()` answers null (busy) at once. A thread that fails or exits
 * rejects its pending jobs with the reason (nginx answers 500 when crypt fails) and the next job starts a new one.
 */
import { Worker } from 'node:worker_threads';
import type { HashScheme } from './password-hash.js';

export interface HashJob {
  readonly id: number;
  readonly password: Uint8Array;
  readonly scheme: HashScheme;
  readonly hash: string;
}

export interface HashAnswer {
  readonly id: number;
  readonly ok: boolean;
}

/** At 80 ms a job (bcrypt cost 10) the last one waits about 5 s; beyond that a 503 is the better answer. */
const MAX_PENDING = 64;

/**
 * Run from TypeScript sources (the tests, tsx), the thread needs tsx's loader as well: node 20 does not pass the
 * main thread's module hooks to a worker. Built, the entry is plain JavaScript and tsx is never loaded.
 */
const FROM_SOURCES = import.meta.url.endsWith('.ts');
const BOOT = `const { workerData } = require('node:worker_threads');
(async () => {
  if (workerData.tsx !== null) (await import(workerData.tsx)).register();
  await import(workerData.entry);
})();`;

class HashVerifier {
  #worker: Worker | null = null;
  readonly #pending = new Map<number, { resolve: (ok: boolean) => void; reject: (err: Error) => void }>();
  #nextId = 1;

  /** Whether `password` matches; null when too many verifications already wait (answer 503); rejected when the thread fails. */
  verify(password: Uint8Array, scheme: HashScheme, hash: string): Promise<boolean> | null {
    if (this.#pending.size >= MAX_PENDING) return null;
    let worker: Worker;
    try {
      worker = this.#worker ?? this.#start();
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    const id = this.#nextId++;
    return new Promise<boolean>((resolve, reject) => {
      if (this.#pending.size === 0) worker.ref();
      this.#pending.set(id, { resolve, reject });
      // A copy of exactly the password: a view into Buffer's shared pool would post the whole pool.
      const job: HashJob = { id, password: new Uint8Array(password), scheme, hash };
      worker.postMessage(job);
    });
  }

  #start(): Worker {
    const entry = new URL(FROM_SOURCES ? './hash-worker.ts' : './hash-worker.js', import.meta.url).href;
    const tsx = FROM_SOURCES ? import.meta.resolve('tsx/esm/api') : null;
    const worker = new Worker(BOOT, { eval: true, workerData: { entry, tsx } });
    worker.unref();
    worker.on('message', (answer: HashAnswer) => this.#settle(answer.id, answer.ok));
    const fail = (err: Error): void => {
      if (this.#worker !== worker) return;
      this.#worker = null;
      const pending = [...this.#pending.values()];
      this.#pending.clear();
      for (const job of pending) job.reject(err);
    };
    worker.on('error', (err) => fail(new Error(`the hash worker failed: ${err.message}`)));
    worker.on('exit', (code) => fail(new Error(`the hash worker exited (code ${code})`)));
    this.#worker = worker;
    return worker;
  }

  #settle(id: number, ok: boolean): void {
    const job = this.#pending.get(id);
    if (job === undefined) return;
    this.#pending.delete(id);
    if (this.#pending.size === 0) this.#worker?.unref();
    job.resolve(ok);
  }
}

/** One per process: every BasicAuth shares the thread. */
export const hashVerifier = new HashVerifier();
