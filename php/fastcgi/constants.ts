/**
 * FastCGI 1.0 wire constants, named as in the specification
 * (https://fastcgi-archives.github.io/FastCGI_Specification.html, section 8).
 * Every number the codec puts on or reads off the wire is defined here.
 */

/** FCGI_VERSION_1: the only protocol version that exists. */
export const VERSION_1 = 1;

/** FCGI_HEADER_LEN: every record starts with this many bytes. */
export const HEADER_LEN = 8;

/** contentLength is a 16-bit field. */
export const MAX_CONTENT_LEN = 65535;

/** The spec recommends 8-byte aligned records; we always pad to this. */
export const RECORD_ALIGN = 8;

/** Largest content length that is still a multiple of RECORD_ALIGN, so split records need no padding. */
export const MAX_ALIGNED_CONTENT_LEN = MAX_CONTENT_LEN - (MAX_CONTENT_LEN % RECORD_ALIGN); // 65528

/** Body sizes of the fixed-layout records (FCGI_BeginRequestBody, FCGI_EndRequestBody). */
export const BEGIN_REQUEST_BODY_LEN = 8;
export const END_REQUEST_BODY_LEN = 8;

/** Name-value pair lengths: one byte when below this, else four bytes with the high bit set. */
export const NV_SHORT_LEN_LIMIT = 0x80;
export const NV_LONG_LEN_FLAG = 0x80000000;
/** Largest length a four-byte (31-bit) name-value length can express. */
export const NV_MAX_LEN = 0x7fffffff;
export const NV_SHORT_LEN_SIZE = 1;
export const NV_LONG_LEN_SIZE = 4;

export const RecordType = {
  BeginRequest: 1,
  AbortRequest: 2,
  EndRequest: 3,
  Params: 4,
  Stdin: 5,
  Stdout: 6,
  Stderr: 7,
  Data: 8,
  GetValues: 9,
  GetValuesResult: 10,
  UnknownType: 11,
} as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

export const Role = {
  Responder: 1,
  Authorizer: 2,
  Filter: 3,
} as const;
export type Role = (typeof Role)[keyof typeof Role];

/** Bits of FCGI_BeginRequestBody.flags. */
export const Flags = {
  KeepConn: 1,
} as const;
export type Flags = (typeof Flags)[keyof typeof Flags];

/** FCGI_EndRequestBody.protocolStatus values. */
export const ProtocolStatus = {
  RequestComplete: 0,
  CantMpxConn: 1,
  Overloaded: 2,
  UnknownRole: 3,
} as const;
export type ProtocolStatus = (typeof ProtocolStatus)[keyof typeof ProtocolStatus];
