/**
 * X-Accel-Redirect, as nginx does it: a PHP script (or an upstream) checks who may have a file and answers with
 * `X-Accel-Redirect: /protected/report.pdf`; its body is dropped and the gateway answers the request with that URI
 * instead (an internal location or any file or script of the site), Range and conditional requests included, while
 * the script's worker is free again. Nextcloud, Moodle, Symfony's BinaryFileResponse and download plugins hand large
 * files back to the web server this way. The headers nginx carries over from the redirecting answer (its
 * `redirect` flag in ngx_http_upstream_headers_in) are carried here too: Content-Type, Content-Disposition,
 * Cache-Control, Expires, Set-Cookie, Accept-Ranges.
 */
import { ErrorCode, PhpgateError } from '../../core/errors.js';
import type { Exchange, InternalRedirects } from '../http/exchange.js';
import { ForwardingSink, type ResponseHead, type ResponseSink, type Source } from '../http/sink.js';

const CARRIED: ReadonlySet<string> = new Set(['content-type', 'content-disposition', 'cache-control', 'expires', 'set-cookie', 'accept-ranges']);

export class AccelRedirectFilter extends ForwardingSink {
  readonly #x: Exchange;
  readonly #internal: InternalRedirects;
  #redirected = false;

  constructor(next: ResponseSink, x: Exchange, internal: InternalRedirects) {
    super(next);
    this.#x = x;
    this.#internal = internal;
  }

  override start(head: ResponseHead, source: Source): boolean {
    const uri = head.accelRedirect;
    if (uri === null) return this.next.start(head, source);
    // The producer's body is dropped (false): the redirect answers instead.
    this.#redirected = true;
    const carried: string[] = [];
    for (let i = 0; i < head.headers.length; i += 2) {
      if (CARRIED.has(head.headers[i]!.toLowerCase())) carried.push(head.headers[i]!, head.headers[i + 1]!);
    }
    try {
      this.#internal.redirect(this.#x, uri, carried, this.next);
    } catch (err) {
      // A bug answering the redirect must cost this response (an error answer), never leave the client waiting.
      this.#x.failed(new PhpgateError(ErrorCode.UpstreamHeaders, `X-Accel-Redirect to ${uri}: ${String(err)}`, { cause: err }));
    }
    return false;
  }

  override error(err: PhpgateError): void {
    if (!this.#redirected) this.next.error(err);
  }
}
