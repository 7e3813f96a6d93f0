/** The FastCGI stream's one error class. */
import { ErrorCode, UpstreamError } from '../../core/errors.js';

/**
 * The FastCGI stream broke its own rules (bad version, impossible lengths, a record nobody asked for), or reading
 * it failed: nothing after this point on the connection can be trusted. An UpstreamError like every other way PHP
 * can fail a request; its code is always PG_ERR_FCGI_PROTOCOL.
 */
export class FastCgiProtocolError extends UpstreamError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.FcgiProtocol, message, options);
  }
}
