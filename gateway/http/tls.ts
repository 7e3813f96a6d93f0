/**
 * TLS for the main listener: the certificate chain and key from server.tls, read and checked at start (and on
 * reload), so a wrong path or a key that does not match the certificate is one clear line, not a crash later.
 * HTTP/1.1 over TLS for now; HTTP/2 (ALPN) arrives with the edge work.
 */
import fs from 'node:fs';
import tls from 'node:tls';
import { ErrorCode, PhpgateError } from '../../core/errors.js';
import type { TlsConfig } from '../../config/types.js';

export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
}

export function loadTls(c: TlsConfig): TlsMaterial {
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = fs.readFileSync(c.cert);
    key = fs.readFileSync(c.key);
  } catch (err) {
    throw new PhpgateError(
      ErrorCode.ConfigInvalid,
      `server.tls: cannot read ${(err as NodeJS.ErrnoException).path ?? 'the certificate or key'}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  try {
    // Builds the context once to check it: a key that does not match the certificate fails here.
    tls.createSecureContext({ cert, key });
  } catch (err) {
    throw new PhpgateError(
      ErrorCode.ConfigInvalid,
      `server.tls: ${c.cert} and ${c.key} are not a usable certificate and key (${(err as Error).message}); check that the key belongs to the certificate`,
      { cause: err },
    );
  }
  return { cert, key };
}
