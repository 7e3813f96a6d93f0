/**
 * The project's error classes: one base with a stable code, a few named subclasses, a cause.
 * Lives in core/, the bottom room: every other room imports it, it imports nothing of ours. Subclasses that
 * belong to one room live there (ConfigError in config/, FastCgiProtocolError in php/fastcgi/, the importer's
 * in nginx-compat/). Only gateway/ maps codes to HTTP statuses.
 */

export const ErrorCode = {
  ConfigInvalid: 'PG_ERR_CONFIG_INVALID',
  PhpBinaryMissing: 'PG_ERR_PHP_BINARY_MISSING',
  UpstreamConnect: 'PG_ERR_UPSTREAM_CONNECT',
  UpstreamClosed: 'PG_ERR_UPSTREAM_CLOSED',
  UpstreamTimeout: 'PG_ERR_UPSTREAM_TIMEOUT',
  UpstreamHeaders: 'PG_ERR_UPSTREAM_HEADERS',
  /** Every target of an HTTP upstream is marked down (nginx: "no live upstreams"). */
  UpstreamUnavailable: 'PG_ERR_UPSTREAM_UNAVAILABLE',
  PoolSaturated: 'PG_ERR_POOL_SATURATED',
  PoolClosed: 'PG_ERR_POOL_CLOSED',
  FcgiProtocol: 'PG_ERR_FCGI_PROTOCOL',
  BodyTooLarge: 'PG_ERR_BODY_TOO_LARGE',
  ClientAborted: 'PG_ERR_CLIENT_ABORTED',
  ClientTimeout: 'PG_ERR_CLIENT_TIMEOUT',
  BodySpool: 'PG_ERR_BODY_SPOOL',
  /** A request body sent in chunks too small to be anything but a CPU flood (see gateway/http/body-spool.ts). */
  BodyChunks: 'PG_ERR_BODY_CHUNKS',
  /** One CGI param (a huge header) is over the FastCGI record size php-cgi reads a pair from: nothing was sent. */
  ParamTooLarge: 'PG_ERR_PARAM_TOO_LARGE',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class PhpgateError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** PHP or an HTTP upstream could not be reached, went away mid-request, or answered something unusable. */
export class UpstreamError extends PhpgateError {}
