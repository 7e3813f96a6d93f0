/**
 * A route's access list (gateway/gates/access.ts), nginx's allow/deny: order, first match, the default, both
 * families, IPv4-mapped clients, and the compiled range tables checked against a plain rule-by-rule reference
 * built on node's BlockList over random rule lists. Also the config check of a rule's target.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import { accessTarget, INVALID } from '../config/checks.js';
import { compileAccess, type AccessRule } from '../gateway/gates/access.js';

const allow = (t: string): AccessRule => ({ allow: t });
const deny = (t: string): AccessRule => ({ deny: t });

describe('nginx allow/deny semantics', () => {
  test('the first matching rule decides; no rule matching allows', () => {
    const list = compileAccess([deny('192.168.1.1'), allow('192.168.1.0/24'), allow('10.1.1.0/16'), allow('2001:0db8::/32'), deny('all')]);
    assert.equal(list.allows('192.168.1.1'), false);
    assert.equal(list.allows('192.168.1.2'), true);
    assert.equal(list.allows('10.1.200.7'), true, '10.1.1.0/16 is 10.1.0.0/16 (host bits masked, as nginx does)');
    assert.equal(list.allows('10.2.0.1'), false);
    assert.equal(list.allows('2001:db8:1::5'), true);
    assert.equal(list.allows('2001:db9::1'), false);
    assert.equal(list.allows('8.8.8.8'), false);

    const denyOnly = compileAccess([deny('203.0.113.0/24')]);
    assert.equal(denyOnly.allows('203.0.113.9'), false);
    assert.equal(denyOnly.allows('198.51.100.1'), true, 'no rule matches: allowed');
    assert.equal(denyOnly.allows('::1'), true);
    assert.equal(compileAccess([]).allows('1.2.3.4'), true);
  });

  test('an earlier rule wins over a later, wider or narrower, one', () => {
    const list = compileAccess([allow('10.0.0.0/8'), deny('10.0.0.5'), deny('all')]);
    assert.equal(list.allows('10.0.0.5'), true, 'the allow of the /8 came first');
    const other = compileAccess([deny('10.0.0.5'), allow('10.0.0.0/8'), deny('all')]);
    assert.equal(other.allows('10.0.0.5'), false);
    assert.equal(other.allows('10.0.0.6'), true);
  });

  test('allow all and deny all, /0 and /32 boundaries', () => {
    assert.equal(compileAccess([allow('all'), deny('1.2.3.4')]).allows('1.2.3.4'), true);
    assert.equal(compileAccess([deny('all')]).allows('::1'), false);
    const zero = compileAccess([deny('0.0.0.0/0')]);
    assert.equal(zero.allows('255.255.255.255'), false);
    assert.equal(zero.allows('::1'), true, 'an IPv4 rule says nothing about IPv6 clients');
    const edges = compileAccess([allow('255.255.255.255/32'), allow('0.0.0.0'), deny('all')]);
    assert.equal(edges.allows('255.255.255.255'), true);
    assert.equal(edges.allows('0.0.0.0'), true);
    assert.equal(edges.allows('255.255.255.254'), false);
    assert.equal(compileAccess([deny('::/0')]).allows('2001:db8::1'), false);
  });

  test('IPv6 forms: compressed, full, with a dotted tail, upper case, with a zone', () => {
    const list = compileAccess([allow('2001:db8::/48'), allow('fe80::/10'), allow('::1'), deny('all')]);
    for (const a of ['2001:db8::1', '2001:0db8:0000:0000:0000:0000:0000:0001', '2001:DB8:0:FFFF::', 'fe80::1%eth0', '::1', '0:0:0:0:0:0:0:1']) {
      assert.equal(list.allows(a), true, a);
    }
    for (const a of ['2001:db8:1::1', '2001:db9::', '::2', 'fec0::1', '1::']) assert.equal(list.allows(a), false, a);
  });

  test('an IPv4-mapped client (::ffff:a.b.c.d) is checked against the IPv4 rules only, as nginx does', () => {
    const list = compileAccess([allow('127.0.0.1'), allow('::ffff:10.0.0.0/104'), deny('all')]);
    assert.equal(list.allows('::ffff:127.0.0.1'), true);
    assert.equal(list.allows('::FFFF:127.0.0.1'), true);
    assert.equal(list.allows('0:0:0:0:0:ffff:7f00:1'), true, 'the hex spelling of ::ffff:127.0.0.1');
    assert.equal(list.allows('::ffff:10.0.0.1'), false, 'an IPv6 rule never matches a mapped client in nginx');
    assert.equal(compileAccess([deny('192.0.2.0/24')]).allows('::ffff:192.0.2.77'), false);
  });

  test('something that is not an address meets only the `all` rules (nginx: a unix socket client)', () => {
    assert.equal(compileAccess([allow('10.0.0.0/8'), deny('all')]).allows(''), false);
    assert.equal(compileAccess([deny('10.0.0.0/8')]).allows(''), true);
    for (const junk of ['unix:', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1.2.3.4 ', ':::', '1:2:3:4:5:6:7:8:9', '12345::', 'g::1', '::1::2']) {
      assert.equal(compileAccess([allow('all')]).allows(junk), true, junk);
      assert.equal(compileAccess([allow('0.0.0.0/0'), allow('::/0'), deny('all')]).allows(junk), false, junk);
    }
  });

  test('malformed rules are refused when compiled', () => {
    for (const rules of [
      [allow('10.0.0.0/33')],
      [allow('::/129')],
      [deny('nobody')],
      [allow('10.0.0.0/')],
      [{}],
      [{ allow: '1.2.3.4', deny: 'all' }],
    ]) {
      assert.throws(() => compileAccess(rules), /access/, JSON.stringify(rules));
    }
  });
});

/** The meaning, rule by rule, with one BlockList per rule: what the compiled tables must agree with. */
function reference(rules: readonly AccessRule[]): (address: string) => boolean {
  const compiled = rules.map((r) => {
    const target = (r.allow ?? r.deny)!;
    if (target === 'all') return { allow: r.allow !== undefined, family: 'all', list: null };
    const [addr, bits] = target.split('/') as [string, string | undefined];
    const family = net.isIPv4(addr) ? 'ipv4' : 'ipv6';
    const list = new net.BlockList();
    list.addSubnet(addr, bits === undefined ? (family === 'ipv4' ? 32 : 128) : Number(bits), family);
    return { allow: r.allow !== undefined, family, list };
  });
  return (address) => {
    let family: 'ipv4' | 'ipv6' = net.isIPv4(address) ? 'ipv4' : 'ipv6';
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped !== null) {
      address = mapped[1]!;
      family = 'ipv4';
    }
    for (const r of compiled) {
      if (r.family === 'all' || (r.family === family && r.list!.check(address, family))) return r.allow;
    }
    return true;
  };
}

/** mulberry32: a small seeded generator, so a failure can be replayed. */
function seeded(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

describe('compiled range tables', () => {
  test('agree with a rule-by-rule reference on random lists and addresses', () => {
    const rand = seeded(12345);
    // Addresses from a small space so that rules overlap, nest and touch.
    const v4 = (): string => `10.${rand(4)}.${rand(4) * 64 + rand(64)}.${rand(256)}`;
    const v6 = (): string => `2001:db8:${rand(4).toString(16)}::${rand(4).toString(16)}:${rand(65536).toString(16)}`;
    for (let round = 0; round < 300; round++) {
      const rules: AccessRule[] = [];
      const count = 1 + rand(12);
      for (let i = 0; i < count; i++) {
        const kind = rand(10);
        const target =
          kind === 0
            ? 'all'
            : kind < 7
              ? `${v4()}/${[8, 14, 16, 18, 22, 24, 26, 30, 32][rand(9)]!}`
              : `${v6()}/${[32, 44, 48, 96, 112, 128][rand(6)]!}`;
        rules.push(rand(2) === 0 ? allow(target) : deny(target));
      }
      const list = compileAccess(rules);
      const ref = reference(rules);
      for (let k = 0; k < 60; k++) {
        const a = rand(5) === 0 ? v6() : rand(8) === 0 ? `::ffff:${v4()}` : v4();
        assert.equal(list.allows(a), ref(a), `${a} against ${JSON.stringify(rules)}`);
      }
    }
  });
});

test('config: accessTarget takes "all", an address or a CIDR of either family', () => {
  for (const ok of ['all', '10.0.0.0/8', '192.168.1.1', '::1', '2001:db8::/32', '::ffff:10.0.0.0/104', '0.0.0.0/0'])
    assert.equal(accessTarget.parse(ok), ok, ok);
  for (const bad of ['ALL', 'none', '10.0.0.0/33', '::/129', '10.0.0.0/', 'fe80::1%eth0', 'unix:', '', 8, null]) {
    assert.equal(accessTarget.parse(bad), INVALID, String(bad));
  }
});
