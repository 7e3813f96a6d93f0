/**
 * The hash worker's thread (started by hash-verifier.ts): verifies one password at a time, so a bcrypt of tens of
 * milliseconds never stops the gateway's event loop.
 */
import { parentPort } from 'node:worker_threads';
import { verifyPassword } from './password-hash.js';
import type { HashJob, HashAnswer } from './hash-verifier.js';

parentPort?.on('message', (job: HashJob) => {
  const answer: HashAnswer = { id: job.id, ok: verifyPassword(job.password, job.scheme, job.hash) };
  parentPort?.postMessage(answer);
});
