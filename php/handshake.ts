/**
 * The handshake: the first request on every new connection runs a tiny PHP file the gateway owns (outside
 * every docroot) that answers getmypid(). From then on the gateway knows which child serves which connection
 * and supervises by pid (memory, timeout kill, recycle).
 */
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCode, UpstreamError, type PhpgateError } from '../config/errors.js';
import type { FcgiConnection, FcgiResponseHandler } from './fastcgi/connection.js';

const SCRIPT = '<?php\n// phpgate handshake: tells the gateway which php-cgi child holds this connection.\necho getmypid();\n';

/** Writes the handshake script into the (private) socket directory and returns its path. */
export function writeHandshakeScript(socketDir: string): string {
  fs.mkdirSync(socketDir, { recursive: true, mode: 0o700 });
  const file = path.join(socketDir, 'phpgate-handshake.php');
  fs.writeFileSync(file, SCRIPT, { mode: 0o600 });
  return file;
}

export function handshakeParams(script: string): Array<[string, string]> {
  return [
    ['GATEWAY_INTERFACE', 'CGI/1.1'],
    ['REQUEST_METHOD', 'GET'],
    ['SERVER_PROTOCOL', 'HTTP/1.1'],
    ['SCRIPT_FILENAME', script],
    ['SCRIPT_NAME', '/phpgate-handshake.php'],
    ['REQUEST_URI', '/phpgate-handshake.php'],
    ['QUERY_STRING', ''],
    ['CONTENT_TYPE', ''],
    ['CONTENT_LENGTH', ''],
    ['REDIRECT_STATUS', '200'],
  ];
}

/** Runs the handshake on a fresh connection; resolves with the child's pid. */
export function handshake(conn: FcgiConnection, script: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new UpstreamError(ErrorCode.UpstreamTimeout, `handshake got no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const handler: FcgiResponseHandler = {
      onStdout(chunk) {
        chunks.push(Buffer.from(chunk));
        return true;
      },
      onStderr() {
        // A notice from php.ini at startup is the master's business; the answer is on stdout.
      },
      onEnd() {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString('latin1');
        const body = text.slice(text.search(/\r?\n\r?\n/) + 1).trim();
        const pid = Number(body);
        if (Number.isInteger(pid) && pid > 0) resolve(pid);
        else reject(new UpstreamError(ErrorCode.UpstreamHeaders, `handshake answered ${JSON.stringify(text.slice(0, 200))}`));
      },
      onError(err: PhpgateError) {
        clearTimeout(timer);
        reject(err);
      },
    };
    conn.begin(handshakeParams(script), handler, true);
  });
}
