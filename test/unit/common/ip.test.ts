import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalIp, cidrContains, formatCidr, parseCidr, parseIp } from '../../../src/common/ip.ts';

test('canonical text for IPv4 and IPv6', () => {
  const cases: [string, string | undefined][] = [
    ['10.96.0.1', '10.96.0.1'],
    ['010.96.0.1', undefined],
    ['256.1.1.1', undefined],
    ['1.2.3', undefined],
    ['FD00:10:96:0:0:0:0:1', 'fd00:10:96::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['1:0:0:1:0:0:0:1', '1:0:0:1::1'],
    ['::ffff:10.1.2.3', '10.1.2.3'],
    ['fe80::1%eth0', undefined],
    ['1:2:3:4:5:6:7:8:9', undefined],
    ['1::2::3', undefined],
    ['12345::', undefined],
    ['', undefined],
  ];
  for (const [input, want] of cases) assert.equal(canonicalIp(input), want, input);
});

test('CIDRs clear host bits and test membership per family', () => {
  assert.equal(formatCidr(parseCidr('10.244.1.77/24')!), '10.244.1.0/24');
  assert.equal(formatCidr(parseCidr('fd00:10:244:1::5/64')!), 'fd00:10:244:1::/64');
  assert.equal(parseCidr('10.0.0.0/33'), undefined);
  assert.equal(parseCidr('10.0.0.0'), undefined);
  const net = parseCidr('198.18.0.0/15')!;
  assert.ok(cidrContains(net, parseIp('198.19.255.1')!));
  assert.ok(!cidrContains(net, parseIp('198.20.0.1')!));
  assert.ok(!cidrContains(parseCidr('::/0')!, parseIp('1.2.3.4')!), 'an IPv6 range never holds an IPv4 address');
  assert.ok(cidrContains(parseCidr('0.0.0.0/0')!, parseIp('1.2.3.4')!));
});
