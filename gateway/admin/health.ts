/**
 * /healthz and /readyz, as load balancers and orchestrators probe them. Answered by the admin listener and, with
 * admin.health_on_main, by the main port too; never behind the admin token (a probe cannot send one), and so
 * saying nothing beyond pool names and why they cannot serve.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayStatus, StatusSource } from '../http/status.js';

export const HealthPath = {
  /** Liveness: the process answers HTTP. Nothing else is checked, so a restart is never triggered by PHP trouble. */
  Live: '/healthz',
  /** Readiness: not draining and every pool has a worker that can take a request. */
  Ready: '/readyz',
} as const;
export type HealthPath = (typeof HealthPath)[keyof typeof HealthPath];

export const HEALTH_CONTENT_TYPE = 'text/plain; charset=utf-8';

export interface HealthAnswer {
  readonly status: number;
  /** Plain text (HEALTH_CONTENT_TYPE): `ok`, `ready`, or one line per problem. */
  readonly body: string;
}

const LIVE: HealthAnswer = { status: 200, body: 'ok' };
const READY: HealthAnswer = { status: 200, body: 'ready' };

/** The answer for `path` (the path alone, no query), or null when it is not a health path. */
export function healthAnswer(path: string, source: StatusSource): HealthAnswer | null {
  switch (path) {
    case HealthPath.Live:
      return LIVE;
    case HealthPath.Ready: {
      const problems = readinessProblems(source.status());
      return problems.length === 0 ? READY : { status: 503, body: problems.join('\n') };
    }
    default:
      return null;
  }
}

/** Why the gateway should not get traffic now, one short line each; empty when it should. */
export function readinessProblems(s: GatewayStatus): string[] {
  const problems: string[] = [];
  if (s.draining) problems.push('draining');
  for (const p of s.pools) {
    if (p.ready) continue;
    problems.push(
      p.problem !== null
        ? `pool "${p.name}": no live worker (${p.problem})`
        : p.failing
          ? `pool "${p.name}": no live worker (php-cgi keeps failing to start)`
          : `pool "${p.name}": no live worker yet (${p.starting} starting)`,
    );
  }
  return problems;
}

/** A health answer on the main port: plain text, never cached. */
export function sendHealth(req: IncomingMessage, res: ServerResponse, h: HealthAnswer): void {
  res.writeHead(h.status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(h.body), 'Cache-Control': 'no-store' });
  res.end(req.method === 'HEAD' ? undefined : h.body);
}
