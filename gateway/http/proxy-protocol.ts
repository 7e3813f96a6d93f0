/**
 * The PROXY protocol (HAProxy's, v1 text and v2 binary) that L4 load balancers put in front of a connection to
 * say who the client is. Parsing only: the listener decides whom to believe (server.trusted_proxies).
 * https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
 */
import net, { type Socket } from 'node:net';
import type { ProxiedPeer } from './client-address.js';

/** v2 starts with these 12 bytes; v1 with "PROXY ". */
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** The spec's bound on a v1 line, CRLF included. */
const V1_MAX = 107;
/** v2's length field allows 64 KiB of TLVs; nobody sends that much, and a connection must not make us hold it. */
const V2_MAX_BODY = 4096;

export type ProxyHeader =
  /** `peer` null: LOCAL (the balancer's own health check) or UNKNOWN: the connection's own address stands. */
  { readonly complete: true; readonly peer: ProxiedPeer | null; readonly length: number } | { readonly complete: false };

export class ProxyProtocolError extends Error {}

const INCOMPLETE: ProxyHeader = { complete: false };

/** Parses the header at the start of `buf`; incomplete when more bytes are needed; throws when it is not one. */
export function parseProxyHeader(buf: Buffer): ProxyHeader {
  if (buf.length === 0) return INCOMPLETE;
  if (buf[0] === 0x0d) return parseV2(buf);
  if (buf[0] === 0x50 /* P */) return parseV1(buf);
  throw new ProxyProtocolError('no PROXY protocol header');
}

function startsWithPrefix(buf: Buffer, prefix: Buffer): boolean {
  const n = Math.min(buf.length, prefix.length);
  return buf.subarray(0, n).equals(prefix.subarray(0, n));
}

function parseV1(buf: Buffer): ProxyHeader {
  if (!startsWithPrefix(buf, V1_PREFIX)) throw new ProxyProtocolError('no PROXY protocol header');
  const end = buf.indexOf('\r\n', 0, 'latin1');
  if (end < 0) {
    if (buf.length >= V1_MAX) throw new ProxyProtocolError('PROXY v1 line longer than 107 bytes');
    return INCOMPLETE;
  }
  if (end + 2 > V1_MAX) throw new ProxyProtocolError('PROXY v1 line longer than 107 bytes');
  const fields = buf.toString('latin1', 0, end).split(' ');
  const length = end + 2;
  if (fields[1] === 'UNKNOWN') return { complete: true, peer: null, length };
  if (fields.length !== 6 || (fields[1] !== 'TCP4' && fields[1] !== 'TCP6')) {
    throw new ProxyProtocolError('malformed PROXY v1 line');
  }
  const address = fields[2]!;
  const port = Number(fields[4]);
  const valid = fields[1] === 'TCP4' ? net.isIPv4(address) : net.isIPv6(address);
  if (!valid || !/^\d{1,5}$/.test(fields[4]!) || port > 65535) throw new ProxyProtocolError('malformed PROXY v1 address');
  return { complete: true, peer: { address, port }, length };
}

function parseV2(buf: Buffer): ProxyHeader {
  if (!startsWithPrefix(buf, V2_SIGNATURE)) throw new ProxyProtocolError('no PROXY protocol header');
  if (buf.length < 16) return INCOMPLETE;
  const versionCommand = buf[12]!;
  if (versionCommand >> 4 !== 2) throw new ProxyProtocolError('unsupported PROXY protocol version');
  const bodyLength = buf.readUInt16BE(14);
  if (bodyLength > V2_MAX_BODY) throw new ProxyProtocolError('PROXY v2 header too long');
  const length = 16 + bodyLength;
  if (buf.length < length) return INCOMPLETE;
  const command = versionCommand & 0x0f;
  if (command === 0x0) return { complete: true, peer: null, length }; // LOCAL
  if (command !== 0x1) throw new ProxyProtocolError('unknown PROXY v2 command');
  const family = buf[13]! >> 4;
  const body = buf.subarray(16, length);
  if (family === 0x1 && body.length >= 12) {
    return { complete: true, peer: { address: `${body[0]}.${body[1]}.${body[2]}.${body[3]}`, port: body.readUInt16BE(8) }, length };
  }
  if (family === 0x2 && body.length >= 36) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(body.readUInt16BE(i).toString(16));
    return { complete: true, peer: { address: compressIPv6(groups), port: body.readUInt16BE(32) }, length };
  }
  if (family === 0x0 || family === 0x3) return { complete: true, peer: null, length }; // UNSPEC, UNIX: no IP to take
  throw new ProxyProtocolError('malformed PROXY v2 address block');
}

/** The canonical text form (RFC 5952): the longest run of zero groups becomes "::". */
function compressIPv6(groups: string[]): string {
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return groups.join(':');
  return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLen).join(':')}`;
}

/**
 * Reads the PROXY header off a fresh connection, giving back whatever followed it (the TLS handshake or the
 * request) to the socket for the HTTP server to read. Rejects on a malformed header, a close, or `timeoutMs`.
 */
export function readProxyHeader(socket: Socket, timeoutMs: number): Promise<ProxiedPeer | null> {
  return new Promise((resolve, reject) => {
    let buffered: Buffer = Buffer.alloc(0);
    const finish = (err: Error | null, peer: ProxiedPeer | null = null): void => {
      clearTimeout(timer);
      socket.removeListener('readable', onReadable);
      socket.removeListener('close', onClose);
      if (err === null) resolve(peer);
      else reject(err);
    };
    const onClose = (): void => finish(new ProxyProtocolError('connection closed before its PROXY header'));
    const onReadable = (): void => {
      let chunk: Buffer | null;
      while ((chunk = socket.read() as Buffer | null) !== null) {
        buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
        let header: ProxyHeader;
        try {
          header = parseProxyHeader(buffered);
        } catch (err) {
          finish(err as Error);
          return;
        }
        if (!header.complete) continue;
        if (buffered.length > header.length) socket.unshift(buffered.subarray(header.length));
        finish(null, header.peer);
        return;
      }
    };
    const timer = setTimeout(() => finish(new ProxyProtocolError('no PROXY header within the header timeout')), timeoutMs);
    socket.on('readable', onReadable);
    socket.once('close', onClose);
  });
}
