/** The one place error codes become HTTP statuses, and the short plain error pages nginx users know. */
import { STATUS_CODES, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { ErrorCode } from '../../core/errors.js';
import type { ParsedTarget } from './uri.js';

export function statusForError(code: ErrorCode): number {
  switch (code) {
    case ErrorCode.UpstreamTimeout:
      return 504;
    case ErrorCode.PoolSaturated:
    case ErrorCode.PoolClosed:
      return 503;
    case ErrorCode.BodyTooLarge:
      return 413;
    case ErrorCode.ClientTimeout:
      return 408;
    case ErrorCode.BodyChunks:
      return 400;
    case ErrorCode.BodySpool:
      return 500; // nginx, when it cannot write client_body_temp
    case ErrorCode.ParamTooLarge:
      return 431;
    default:
      return 502;
  }
}

const pages = new Map<number, Buffer>();

function page(status: number): Buffer {
  let body = pages.get(status);
  if (body === undefined) {
    const title = `${status} ${STATUS_CODES[status] ?? ''}`.trim();
    body = Buffer.from(
      `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n<hr><center>phpgate</center>\r\n</body>\r\n</html>\r\n`,
    );
    pages.set(status, body);
  }
  return body;
}

export function sendError(req: IncomingMessage, res: ServerResponse, status: number, extra?: OutgoingHttpHeaders): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = page(status);
  res.writeHead(status, { 'Content-Type': 'text/html', 'Content-Length': body.length, ...extra });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** Whoever answers the gateway's own errors (with the configured error pages). */
export interface ErrorResponder {
  /** `target` null: no error page (the request is itself an error page, or could not be parsed). */
  answerError(req: IncomingMessage, res: ServerResponse, status: number, target: ParsedTarget | null, headers?: OutgoingHttpHeaders): void;
}
