/**
 * A route's `access:` list, nginx's allow/deny: the rules are tried in order and the first whose address or range
 * holds the client decides; a client no rule names is allowed.
 *
 * As nginx does, each family has its own ordered list: IPv4 rules (and `all`) for IPv4 clients, IPv6 rules (and
 * `all`) for IPv6 clients. An IPv4-mapped IPv6 client (::ffff:a.b.c.d) is checked against the IPv4 list only, and
 * anything that is not an address (no TCP peer) against the `all` rules only, as nginx treats a unix socket's.
 *
 * Compiled once: consecutive IPv4 rules with the same action become one sorted, merged range table searched in
 * O(log n), so a long allow list costs little more than a short one. `allows()` parses the address by hand into
 * numbers and allocates nothing.
 */

export interface AccessRule {
  readonly allow?: string;
  readonly deny?: string;
}

export interface AccessList {
  /** The client's address (ClientInfo.address: plain IPv4, or IPv6) may pass. */
  allows(address: string): boolean;
}

/** A run of consecutive same-action IPv4 rules: sorted, non-overlapping inclusive ranges. */
interface V4Run {
  readonly allow: boolean;
  readonly starts: Uint32Array;
  readonly ends: Uint32Array;
}

/** A run of consecutive same-action IPv6 rules: per rule 4 network words then 4 mask words. */
interface V6Run {
  readonly allow: boolean;
  readonly words: Uint32Array;
}

const ALL = 'all';

/** Parsed IPv6 groups of the address being checked (allows() is synchronous, so one scratch array serves all). */
const groups = new Uint16Array(8);

/** Throws on a target that is not `all`, an address or a CIDR: the config checks (`accessTarget`) come first. */
export function compileAccess(rules: readonly AccessRule[]): AccessList {
  if (rules.length === 0) return { allows: () => true };
  const v4: { allow: boolean; start: number; end: number }[] = [];
  const v6: { allow: boolean; net: Uint32Array; mask: Uint32Array }[] = [];
  const other: boolean[] = [];
  for (const rule of rules) {
    const allow = rule.allow !== undefined;
    const target = rule.allow ?? rule.deny;
    if (target === undefined || (rule.allow !== undefined && rule.deny !== undefined)) {
      throw new Error('an access rule is one of { allow: TARGET } or { deny: TARGET }');
    }
    if (target === ALL) {
      v4.push({ allow, start: 0, end: 0xffffffff });
      v6.push({ allow, net: new Uint32Array(4), mask: new Uint32Array(4) });
      other.push(allow);
      continue;
    }
    const slash = target.indexOf('/');
    const addr = slash < 0 ? target : target.slice(0, slash);
    const bitsText = slash < 0 ? null : target.slice(slash + 1);
    const v4addr = parseV4(addr, 0, addr.length);
    if (v4addr >= 0) {
      const bits = prefixBits(bitsText, 32, target);
      // nginx masks the host bits off ("low address bits are meaningless"); so do we.
      const size = 2 ** (32 - bits);
      const start = Math.floor(v4addr / size) * size;
      v4.push({ allow, start, end: start + size - 1 });
      continue;
    }
    if (!parseV6(addr, zoneless(addr))) throw new Error(`access: not "all", an address or a CIDR: ${JSON.stringify(target)}`);
    const bits = prefixBits(bitsText, 128, target);
    const net = new Uint32Array(4);
    const mask = new Uint32Array(4);
    for (let w = 0; w < 4; w++) {
      const wordBits = Math.max(0, Math.min(32, bits - 32 * w));
      mask[w] = wordBits === 0 ? 0 : (0xffffffff << (32 - wordBits)) >>> 0;
      net[w] = ((groups[2 * w]! * 0x10000 + groups[2 * w + 1]!) & mask[w]!) >>> 0;
    }
    v6.push({ allow, net, mask });
  }
  return new CompiledAccess(v4Runs(v4), v6Runs(v6), other);
}

class CompiledAccess implements AccessList {
  readonly #v4: readonly V4Run[];
  readonly #v6: readonly V6Run[];
  /** The `all` rules' actions: the first decides for a client without an address. */
  readonly #other: readonly boolean[];

  constructor(v4: readonly V4Run[], v6: readonly V6Run[], other: readonly boolean[]) {
    this.#v4 = v4;
    this.#v6 = v6;
    this.#other = other;
  }

  allows(address: string): boolean {
    const v4 = parseV4(address, 0, address.length);
    if (v4 >= 0) return this.#allowsV4(v4);
    if (!parseV6(address, zoneless(address))) return this.#other[0] ?? true;
    if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff) {
      return this.#allowsV4(groups[6]! * 0x10000 + groups[7]!);
    }
    const w0 = groups[0]! * 0x10000 + groups[1]!;
    const w1 = groups[2]! * 0x10000 + groups[3]!;
    const w2 = groups[4]! * 0x10000 + groups[5]!;
    const w3 = groups[6]! * 0x10000 + groups[7]!;
    for (const run of this.#v6) {
      const x = run.words;
      for (let i = 0; i < x.length; i += 8) {
        if (
          (w0 & x[i + 4]!) >>> 0 === x[i] &&
          (w1 & x[i + 5]!) >>> 0 === x[i + 1] &&
          (w2 & x[i + 6]!) >>> 0 === x[i + 2] &&
          (w3 & x[i + 7]!) >>> 0 === x[i + 3]
        ) {
          return run.allow;
        }
      }
    }
    return true;
  }

  #allowsV4(addr: number): boolean {
    for (const run of this.#v4) {
      // The last range starting at or below addr is the only one that can hold it (ranges do not overlap).
      const starts = run.starts;
      let lo = 0;
      let hi = starts.length - 1;
      let found = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >>> 1;
        if (starts[mid]! <= addr) {
          found = mid;
          lo = mid + 1;
        } else {
          hi = mid - 1;
        }
      }
      if (found >= 0 && run.ends[found]! >= addr) return run.allow;
    }
    return true;
  }
}

function v4Runs(rules: readonly { allow: boolean; start: number; end: number }[]): V4Run[] {
  const runs: V4Run[] = [];
  let i = 0;
  while (i < rules.length) {
    const allow = rules[i]!.allow;
    const ranges: { start: number; end: number }[] = [];
    for (; i < rules.length && rules[i]!.allow === allow; i++) ranges.push(rules[i]!);
    ranges.sort((a, b) => a.start - b.start);
    const merged: { start: number; end: number }[] = [];
    for (const r of ranges) {
      const last = merged[merged.length - 1];
      if (last !== undefined && r.start <= last.end + 1) last.end = Math.max(last.end, r.end);
      else merged.push({ start: r.start, end: r.end });
    }
    runs.push({ allow, starts: Uint32Array.from(merged, (r) => r.start), ends: Uint32Array.from(merged, (r) => r.end) });
  }
  return runs;
}

function v6Runs(rules: readonly { allow: boolean; net: Uint32Array; mask: Uint32Array }[]): V6Run[] {
  const runs: V6Run[] = [];
  let i = 0;
  while (i < rules.length) {
    const allow = rules[i]!.allow;
    const start = i;
    while (i < rules.length && rules[i]!.allow === allow) i++;
    const words = new Uint32Array((i - start) * 8);
    for (let k = start; k < i; k++) {
      words.set(rules[k]!.net, (k - start) * 8);
      words.set(rules[k]!.mask, (k - start) * 8 + 4);
    }
    runs.push({ allow, words });
  }
  return runs;
}

function prefixBits(text: string | null, max: number, target: string): number {
  if (text === null) return max;
  const bits = /^\d{1,3}$/.test(text) ? Number(text) : NaN;
  if (!(bits <= max)) throw new Error(`access: the prefix length of ${JSON.stringify(target)} is not 0 to ${max}`);
  return bits;
}

/** Where the address ends: a scope (fe80::1%eth0) names an interface, not part of the address. */
function zoneless(s: string): number {
  const pct = s.indexOf('%');
  return pct < 0 ? s.length : pct;
}

/** Dotted-quad s[start, end) as an unsigned 32-bit number, or -1. */
function parseV4(s: string, start: number, end: number): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return -1;
    } else if (c === 46 && digits > 0 && dots < 3) {
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else {
      return -1;
    }
  }
  return dots === 3 && digits > 0 ? value * 256 + octet : -1;
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** IPv6 text s[0, end) into `groups`; false when it is not an IPv6 address. */
function parseV6(s: string, end: number): boolean {
  let n = 0;
  let gap = -1;
  let i = 0;
  if (end >= 2 && s.charCodeAt(0) === 58 && s.charCodeAt(1) === 58) {
    gap = 0;
    i = 2;
  } else if (end === 0 || s.charCodeAt(0) === 58) {
    return false;
  }
  while (i < end) {
    if (n === 8) return false;
    const start = i;
    let value = 0;
    while (i < end && i - start < 5) {
      const h = hexDigit(s.charCodeAt(i));
      if (h < 0) break;
      value = value * 16 + h;
      i++;
    }
    if (i < end && s.charCodeAt(i) === 46) {
      // A dotted IPv4 tail (::ffff:1.2.3.4) fills the last two groups.
      const v4 = n <= 6 ? parseV4(s, start, end) : -1;
      if (v4 < 0) return false;
      groups[n++] = Math.floor(v4 / 0x10000);
      groups[n++] = v4 & 0xffff;
      break;
    }
    if (i === start || i - start > 4) return false;
    groups[n++] = value;
    if (i === end) break;
    if (s.charCodeAt(i) !== 58) return false;
    i++;
    if (i < end && s.charCodeAt(i) === 58) {
      if (gap >= 0) return false;
      gap = n;
      i++;
    } else if (i === end) {
      return false; // one trailing colon
    }
  }
  if (gap < 0) return n === 8;
  if (n === 8) return false; // "::" stands for at least one group
  const tail = n - gap;
  for (let k = 0; k < tail; k++) groups[7 - k] = groups[n - 1 - k]!;
  for (let k = gap; k < 8 - tail; k++) groups[k] = 0;
  return true;
}
