// The codec layer every datapath map goes through: 16-byte addresses (IPv4-mapped included),
// scalar tables, declarative layouts and the typed map with its iteration cap.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  MemoryMap,
  TypedMap,
  cachedAddressReader,
  decodeId,
  encodeAddress,
  encodeId,
  kindName,
  kindNumber,
  protocolName,
  protocolNumber,
  readAddress,
  struct,
  type Codec,
} from '../../../src/datapath/codec/index.ts';
import { InvalidArgumentError } from '../../../src/common/errors.ts';
import { addr16, addrText, encodeSrcRangeKey } from '../../../src/datapath/nodeport/maps.ts';
import { sweepExpired } from '../../../src/datapath/nodeport/conntrack.ts';

const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.'));

test('address: IPv4 round-trips as ::ffff:a.b.c.d and reads back dotted', () => {
  fc.assert(
    fc.property(v4, (a) => {
      const b = encodeAddress(a);
      assert.equal(b.subarray(0, 12).toString('hex'), '00000000000000000000ffff');
      assert.equal(readAddress(b), a);
    }),
  );
});

test('address: IPv6 round-trips through its canonical text', () => {
  fc.assert(
    fc.property(fc.ipV6(), (a) => {
      const text = readAddress(encodeAddress(a));
      assert.deepEqual(encodeAddress(text), encodeAddress(a));
      assert.equal(readAddress(encodeAddress(text)), text);
    }),
  );
});

test('address: the v4-mapped text form is the IPv4 address, not ::ffff:<hex>', () => {
  assert.equal(encodeAddress('::ffff:10.0.0.1').toString('hex'), '00000000000000000000ffff0a000001');
  assert.equal(readAddress(encodeAddress('::ffff:10.0.0.1')), '10.0.0.1');
  // nodeport/maps.ts's own parser used to read the dotted tail as one hex group: ::ffff:10.
  assert.equal(addrText(addr16('::ffff:10.0.0.1')), '10.0.0.1');
  assert.equal(addrText(addr16('::ffff:a00:1')), '10.0.0.1');
  assert.equal(readAddress(encodeAddress('::')), '::');
});

test('address: bad text is refused with the field named', () => {
  assert.throws(
    () => encodeAddress('10.0.0', 'lb_backend.address'),
    (e: unknown) => {
      assert.ok(e instanceof InvalidArgumentError);
      assert.equal(e.message, 'lb_backend.address: "10.0.0" is not an IP address');
      return true;
    },
  );
  assert.throws(() => addr16('fd00::1::2'), InvalidArgumentError);
  assert.throws(() => encodeSrcRangeKey(1, '::ffff:zz/128'), /not an IP address/);
});

test('address: the cached reader maps zeros to undefined and agrees with readAddress', () => {
  const read = cachedAddressReader(2);
  const buf = Buffer.alloc(48);
  encodeAddress('10.1.2.3').copy(buf, 16);
  encodeAddress('fd00::7').copy(buf, 32);
  assert.equal(read(buf, 0), undefined);
  for (let i = 0; i < 3; i++) {
    assert.equal(read(buf, 16), '10.1.2.3');
    assert.equal(read(buf, 32), 'fd00::7');
  }
});

test('scalars: protocol, kind and id both ways; unknown names refused', () => {
  for (const p of ['TCP', 'UDP', 'SCTP'] as const) assert.equal(protocolName(protocolNumber(p)), p);
  assert.throws(() => protocolNumber('ICMP', 'nodeport_key.protocol'), /nodeport_key.protocol: "ICMP"/);
  for (const k of ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalIP'] as const)
    assert.equal(kindName(kindNumber(k)), k);
  assert.equal(kindName(9), undefined);
  fc.assert(fc.property(fc.nat(0xffffffff), (id) => assert.equal(decodeId(encodeId(id)), id)));
});

const SAMPLE = struct('sample', 32, {
  address: [0, 'addr'],
  port: [16, 'be16'],
  slot: [18, 'u16'],
  id: [20, 'u32'],
  cookie: [24, 'u64'],
});

test('layout: fields land at their offsets in their byte order; pads stay zero', () => {
  const buf = SAMPLE.encode(
    { address: '10.0.0.1', port: 0x1f90, slot: 0x0102, id: 7, cookie: 1n << 40n },
    Buffer.alloc(32, 0xee),
  );
  assert.equal(buf.subarray(16, 18).toString('hex'), '1f90');
  assert.equal(buf.subarray(18, 20).toString('hex'), '0201');
  assert.equal(buf.readUInt32LE(20), 7);
  assert.deepEqual(SAMPLE.decode(buf), {
    address: '10.0.0.1',
    port: 0x1f90,
    slot: 0x0102,
    id: 7,
    cookie: 1n << 40n,
  });
  assert.throws(() => SAMPLE.decode(Buffer.alloc(31)), /struct sample: 31 bytes, expected 32/);
  assert.throws(() => struct('bad', 4, { x: [2, 'u32'] }), /struct bad.x: outside 4 bytes/);
});

const ID: Codec<number> = { encode: encodeId, decode: decodeId };

test('typed map: values in, values out, bytes only at the boundary', () => {
  const raw = new MemoryMap('ferry_test_v1');
  const map = new TypedMap(raw, ID, ID);
  map.set(1, 10);
  map.set(2, 20);
  assert.equal(map.get(2), 20);
  assert.equal(raw.lookup(encodeId(2))?.readUInt32LE(0), 20);
  assert.equal(map.delete(1), true);
  assert.equal(map.get(1), undefined);
  assert.deepEqual([...map.entries()], [[2, 20]]);
});

test('typed map: an iteration that does not end is cut at the cap', () => {
  // A hash map walked while entries are inserted can restart from the first key.
  class Endless extends MemoryMap {
    override *entries(): Generator<[Buffer, Buffer]> {
      for (;;) yield [encodeId(1), encodeId(1)];
    }
  }
  const endless = new Endless('ferry_loop_v1');
  const map = new TypedMap(endless, ID, ID, { iterationCap: 100 });
  assert.throws(() => [...map.entries()], /ferry_loop_v1: iteration passed 100 entries/);
});

test('conntrack sweep: a key walk that does not end is cut at the cap', () => {
  const endless = {
    *keys(): Generator<Buffer> {
      for (;;) yield encodeId(1);
    },
    lookup: (): Buffer | undefined => undefined,
    delete: (): boolean => false,
  };
  assert.throws(
    () => sweepExpired(endless, endless, 0n, 1000),
    /ferry_np_ct_v1: iteration passed 1000 entries/,
  );
});
