import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ConntrackAccounting,
  sweepExpired,
  type SweepableMap,
} from '../../../src/datapath/nodeport/conntrack.ts';
import { nodeportConstants } from '../../../src/datapath/nodeport/config.ts';
import {
  addr16,
  addrText,
  decodeTuple,
  encodeSrcRangeKey,
  encodeTuple,
  srcRangeEntries,
} from '../../../src/datapath/nodeport/maps.ts';

function fakeMap(entries: Array<[string, Buffer]>): SweepableMap & { size(): number } {
  const m = new Map(entries);
  return {
    keys: () => [...m.keys()].map((k) => Buffer.from(k, 'hex')),
    lookup: (k) => m.get(k.toString('hex')),
    delete: (k) => m.delete(k.toString('hex')),
    size: () => m.size,
  };
}

function ctValue(expiresNs: bigint): Buffer {
  const b = Buffer.alloc(56);
  b.writeBigUInt64LE(expiresNs, 40);
  return b;
}

function natValue(expiresNs: bigint): Buffer {
  const b = Buffer.alloc(48);
  b.writeBigUInt64LE(expiresNs, 40);
  return b;
}

test('conntrack sweep deletes expired entries only; evictions are what is neither swept nor live', () => {
  const ct = fakeMap([
    ['01', ctValue(100n)],
    ['02', ctValue(300n)],
    ['03', ctValue(50n)],
  ]);
  const nat = fakeMap([
    ['0a', natValue(100n)],
    ['0b', natValue(500n)],
  ]);
  const r = sweepExpired(ct, nat, 200n);
  assert.deepEqual(r, { removedCt: 2, removedNat: 1, liveCt: 1, liveNat: 1 });
  assert.equal(ct.size(), 1);
  const acc = new ConntrackAccounting();
  acc.recordSweep(r);
  // 10 flows created, 2 swept, 1 live → 7 evicted by the LRU
  assert.equal(acc.evictions(10n, r.liveCt), 7n);
});

test('tuple and address codecs round-trip both families', () => {
  for (const t of [
    { src: '198.18.0.10', dst: '198.19.0.10', sport: 40000, dport: 80, proto: 6 },
    { src: 'fd00:198:18::10', dst: 'fd00:172:30::1', sport: 1, dport: 30080, proto: 17 },
  ])
    assert.deepEqual(decodeTuple(encodeTuple(t)), t);
  assert.equal(addrText(addr16('::')), '::');
  assert.equal(addr16('10.0.0.1').toString('hex'), '00000000000000000000ffff0a000001');
});

test('source ranges: a deny sentinel per service plus one allow entry per prefix', () => {
  assert.deepEqual(srcRangeEntries(7, []), []);
  const e = srcRangeEntries(7, ['198.18.0.0/24', 'fd00::/64']);
  assert.equal(e.length, 3);
  assert.equal(e[0]?.[0].readUInt32LE(0), 32);
  assert.equal(e[0]?.[1][0], 0);
  assert.equal(e[1]?.[0].readUInt32LE(0), 32 + 96 + 24);
  assert.equal(e[2]?.[0].readUInt32LE(0), 32 + 64);
  assert.throws(() => encodeSrcRangeKey(7, '10.0.0.0/33'), /bad prefix length/);
});

test('nodeport config: node addresses by family, SNAT defaults to the first, bad ranges refused', () => {
  const c = nodeportConstants({ nodeAddresses: ['172.30.0.1', 'fd00:172:30::1', '198.18.1.1'] });
  assert.equal(c.cfg_node_addr4?.toString('hex'), 'ac1e0001c6120101' + '00'.repeat(8));
  assert.equal(c.cfg_snat_addr4?.toString('hex'), 'ac1e0001');
  assert.equal(c.cfg_node_addr6?.subarray(0, 16).toString('hex'), 'fd000172003000000000000000000001');
  assert.equal(c.cfg_fib_redirect?.[0], 1);
  assert.throws(() => nodeportConstants({ nodeAddresses: [], snatPortMin: 70000 }), /snatPortMin/);
});
