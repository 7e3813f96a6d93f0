/**
 * Events of the HTTP servers in this process (the gateway started by startGateway runs here), seen through
 * node:diagnostics_channel: for a test that must act once the gateway has a request, instead of sleeping on it.
 */
import dc from 'node:diagnostics_channel';
import type http from 'node:http';

/**
 * Resolves once a request that `matches` reaches an HTTP/1 server of this process, or rejects after `timeoutMs`
 * naming `what`. Call it before sending the request. node publishes the channel right before it emits 'request',
 * in the same tick: by the time an `await` on this promise resumes, the server's request listener has run.
 */
export function requestArrives(what: string, matches: (req: http.IncomingMessage) => boolean, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const onStart = (message: unknown): void => {
      if (!matches((message as { request: http.IncomingMessage }).request)) return;
      done();
      resolve();
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out waiting for: ${what}`));
    }, timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      dc.unsubscribe('http.server.request.start', onStart);
    };
    dc.subscribe('http.server.request.start', onStart);
  });
}
