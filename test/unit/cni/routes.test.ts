// The pure half of node routing: which routes a node wants for its peers, in both modes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { desiredRoutes, linkLocalFor, vtepMac } from '../../../src/agent/routes.ts';
import { InvalidArgumentError } from '../../../src/common/errors.ts';

const NODES = [
  {
    name: 'n1',
    addresses: ['172.30.0.1', 'fd00:172:30::1'],
    podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'],
  },
  {
    name: 'n2',
    addresses: ['172.30.0.2', 'fd00:172:30::2'],
    podCIDRs: ['10.244.2.0/24', 'fd00:10:244:2::/64'],
  },
  { name: 'n3', addresses: ['fd00:172:30::3'], podCIDRs: ['10.244.3.0/24', 'fd00:10:244:3::/64'] },
];

test('native: each peer CIDR via the peer address of the same family; none for self', () => {
  assert.deepEqual(
    desiredRoutes(NODES, 'native', 'n1').map((r) => `${r.dst} via ${r.via}`),
    [
      '10.244.2.0/24 via 172.30.0.2',
      'fd00:10:244:2::/64 via fd00:172:30::2',
      // n3 has no IPv4 address: its IPv4 pods are unreachable natively, so no route at all.
      'fd00:10:244:3::/64 via fd00:172:30::3',
    ],
  );
});

test('vxlan: next hop is the peer CIDR network address, pinned to the peer VTEP', () => {
  const r = desiredRoutes(NODES, 'vxlan', 'n1');
  assert.equal(r.length, 4);
  assert.deepEqual(r[0], {
    dst: '10.244.2.0/24',
    family: 4,
    via: '10.244.2.0',
    vtep: { mac: vtepMac('n2'), underlay: '172.30.0.2' },
  });
  assert.equal(r[3]!.vtep!.underlay, 'fd00:172:30::3');
  assert.equal(r[1]!.via, linkLocalFor(vtepMac('n2')), 'IPv6 next hop is the VTEP link-local');
  assert.equal(linkLocalFor('ee:ee:ee:ee:ee:ee'), 'fe80::ecee:eeff:feee:eeee');
  assert.match(vtepMac('n2'), /^[0-9a-f]{1}[26ae](:[0-9a-f]{2}){5}$/, 'locally administered unicast');
  assert.notEqual(vtepMac('n1'), vtepMac('n2'));
});

test('bad input names the node and field', () => {
  assert.throws(() => desiredRoutes(NODES, 'native', 'nx'), InvalidArgumentError);
  const bad = [...NODES, { name: 'n4', addresses: ['172.30.0.4'], podCIDRs: ['10.244.4.0/33'] }];
  assert.throws(() => desiredRoutes(bad, 'native', 'n1'), /Node n4: spec\.podCIDRs\[0\]/);
});
