// --service-cidrs parsing and the LPM keys of ferry_service_cidrs_v1 (the C side reads them as
// struct sock_cidr_key: host-order prefix length, then the 16-byte address, IPv4 mapped).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryMap } from '../../../src/datapath/codec/index.ts';
import { encodeCidrKey, parseServiceCidrList, writeServiceCidrs } from '../../../src/datapath/service-cidrs.ts';
import { parseCidr } from '../../../src/common/ip.ts';

test('--service-cidrs takes one CIDR per family, canonical, and names the flag otherwise', () => {
  assert.deepEqual(parseServiceCidrList('10.96.0.1/16, fd00:10:96::/108'), ['10.96.0.0/16', 'fd00:10:96::/108']);
  assert.deepEqual(parseServiceCidrList('fd00::/64'), ['fd00::/64']);
  assert.throws(() => parseServiceCidrList('10.96.0.0/16,10.97.0.0/16'), /--service-cidrs: "10.96.0.0\/16" and "10.97.0.0\/16" are both IPv4/);
  assert.throws(() => parseServiceCidrList('fd00::/64,fd01::/64'), /--service-cidrs: .* both IPv6/);
  assert.throws(() => parseServiceCidrList('10.96.0.0'), /--service-cidrs: "10.96.0.0" is not a CIDR/);
  assert.throws(() => parseServiceCidrList('10.96.0.0/33'), /--service-cidrs: "10.96.0.0\/33" is not a CIDR/);
  assert.throws(() => parseServiceCidrList(' , '), /--service-cidrs: .* names no CIDR/);
});

test('an IPv4 CIDR is keyed as ::ffff:a.b.c.d with 96 + its prefix; IPv6 as is', () => {
  const v4 = encodeCidrKey(parseCidr('10.96.0.0/16')!);
  assert.equal(v4.readUInt32LE(0), 112);
  assert.equal(v4.subarray(4).toString('hex'), '00000000000000000000ffff0a600000');
  const v6 = encodeCidrKey(parseCidr('fd00:10:96::/108')!);
  assert.equal(v6.readUInt32LE(0), 108);
  assert.equal(v6.subarray(4, 10).toString('hex'), 'fd0000100096');
});

test('writing the CIDRs replaces the map content; none empties it', () => {
  const map = new MemoryMap('ferry_service_cidrs_v1');
  writeServiceCidrs(map, ['10.96.0.0/16', 'fd00:10:96::/108']);
  assert.equal(map.size, 2);
  writeServiceCidrs(map, ['10.100.0.0/16', 'fd00:10:96::/108']);
  assert.deepEqual([...map.entries()].map(([k]) => k.readUInt32LE(0)).sort(), [108, 112]);
  assert.ok(map.lookup(encodeCidrKey(parseCidr('10.100.0.0/16')!)));
  assert.equal(map.lookup(encodeCidrKey(parseCidr('10.96.0.0/16')!)), undefined);
  writeServiceCidrs(map, []);
  assert.equal(map.size, 0);
});
