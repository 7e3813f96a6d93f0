/**
 * The request id the access log, the PHP stderr entries and HTTP upstreams share (nginx's $request_id, or the
 * X-Request-Id a load balancer in front already gave the request).
 *
 * An X-Request-Id header is believed only from a trusted proxy (server.trusted_proxies, as X-Forwarded-For): from
 * anyone else it is a claim that would let a client put chosen ids into the operator's logs. Otherwise the id is
 * made here: a random prefix drawn once per process and a counter — unique across processes and restarts, and no
 * crypto per request.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { TrustedProxies } from './client-address.js';

const PREFIX = randomBytes(6).toString('hex');
let counter = 0;

/** What a proxy's id may look like: printable ASCII without space, quote or backslash, bounded (it goes into every log line). */
const RECEIVED_ID = /^[!#-[\]-~]{1,128}$/;

/** A new id: 12 hex digits of this process, then the count (at least 8 hex digits): 20 characters. */
export function newRequestId(): string {
  counter++;
  return PREFIX + counter.toString(16).padStart(8, '0');
}

/** The request's id: its X-Request-Id when a trusted proxy sent a usable one, else a new one. */
export function requestIdOf(req: IncomingMessage, clients: TrustedProxies): string {
  const sent = req.headers['x-request-id'];
  if (typeof sent === 'string' && RECEIVED_ID.test(sent) && clients.sentByTrusted(req)) return sent;
  return newRequestId();
}
