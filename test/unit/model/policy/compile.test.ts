// The shapes the datapath will hold: identities stable across recompiles, reserved host and
// world, LPM entries for pod addresses and ipBlock prefixes, ranges as few prefix entries, and
// no table at all for a pod no policy selects.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { e2eCluster, pod, policy } from './fixtures.ts';
import { compileNode, newCompileState, PROTOCOL_NUMBER } from '../../../../src/model/policy/compile.ts';
import { lpmLookup } from '../../../../src/model/policy/address-map.ts';
import {
  IDENTITY_ANY,
  IDENTITY_HOST,
  IDENTITY_WORLD,
  FIRST_ALLOCATED_IDENTITY,
} from '../../../../src/model/policy/identity.ts';
import { lookup } from '../../../../src/model/policy/lookup.ts';

test('identities: equal label sets share one, a recompile keeps every unchanged one, a new set gets a new number', () => {
  const state = newCompileState();
  const c = e2eCluster([]);
  const first = compileNode(c, 'node-1', state);
  const idOf = (n: typeof first, ip: string): number => lpmLookup(n.lpm, ip).identity;
  assert.ok(idOf(first, '10.244.1.1') >= FIRST_ALLOCATED_IDENTITY);
  assert.notEqual(idOf(first, '10.244.1.1'), idOf(first, '10.244.2.1'), 'x/a and y/a differ by namespace');
  const twin = { ...c, pods: [...c.pods, pod('x', 'a', { name: 'a-twin', ips: ['10.244.1.9'] })] };
  const second = compileNode(twin, 'node-1', state);
  assert.equal(
    idOf(second, '10.244.1.9'),
    idOf(second, '10.244.1.1'),
    'same labels, same namespace: one identity',
  );
  for (const ip of c.pods.map((p) => p.ips[0]!))
    assert.equal(idOf(second, ip), idOf(first, ip), `${ip} kept its identity`);
  const relabelled = {
    ...twin,
    pods: twin.pods.map((p) => (p.name === 'a-twin' ? { ...p, labels: { pod: 'new' } } : p)),
  };
  const third = compileNode(relabelled, 'node-1', state);
  assert.ok(
    idOf(third, '10.244.1.9') > Math.max(...first.lpm.map((e) => e.identity)),
    'a new label set gets a number never used before',
  );
  assert.equal(idOf(third, '10.244.1.1'), idOf(first, '10.244.1.1'));
});

test('reserved identities: this node is host, an unknown address world, other nodes world too', () => {
  const n = compileNode(e2eCluster([]), 'node-1');
  assert.equal(lpmLookup(n.lpm, '172.30.0.1').identity, IDENTITY_HOST);
  assert.equal(lpmLookup(n.lpm, '172.30.0.2').identity, IDENTITY_WORLD);
  assert.equal(lpmLookup(n.lpm, '8.8.8.8').identity, IDENTITY_WORLD);
  assert.ok(![...n.identities.keys()].includes(IDENTITY_ANY));
});

test('LPM: pod addresses as /32 and /128, ipBlock cidrs and excepts as their prefixes, longest wins', () => {
  const c = e2eCluster(
    [
      policy('x', 'cidr', {
        podSelector: {},
        ingress: [{ from: [{ ipBlock: { cidr: '192.0.2.0/24', except: ['192.0.2.128/25'] } }] }],
      }),
    ],
    {},
  );
  const v6 = { ...c, pods: [...c.pods, pod('z', 'c', { name: 'six', ips: ['fd00::6', '10.244.3.9'] })] };
  const n = compileNode(v6, 'node-2');
  const cidrs = n.lpm.map((e) => e.cidr);
  for (const expected of ['10.244.1.1/32', 'fd00::6/128', '192.0.2.0/24', '192.0.2.128/25', '172.30.0.2/32'])
    assert.ok(cidrs.includes(expected), expected);
  const inner = lpmLookup(n.lpm, '192.0.2.200');
  const outer = lpmLookup(n.lpm, '192.0.2.7');
  assert.deepEqual([inner.identity, outer.identity], [IDENTITY_WORLD, IDENTITY_WORLD]);
  assert.ok(inner.cidrIdentity !== undefined && outer.cidrIdentity !== undefined);
  assert.notEqual(inner.cidrIdentity, outer.cidrIdentity, 'in the except and outside it are told apart');
  assert.equal(lpmLookup(n.lpm, '8.8.8.8').cidrIdentity, undefined);
  assert.equal(
    lpmLookup(n.lpm, 'fd00::6').identity,
    lpmLookup(n.lpm, '10.244.3.9').identity,
    'both families of one pod, one identity when no ipBlock tells them apart',
  );
});

test('an endPort range costs a few prefix entries; an unisolated pod has no table', () => {
  const c = e2eCluster([
    policy('x', 'range', {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [
        {
          ports: [
            { port: 80, endPort: 85 },
            { port: 1024, endPort: 65535, protocol: 'UDP' },
          ],
        },
      ],
    }),
  ]);
  const n = compileNode(c, 'node-1');
  assert.deepEqual([...n.tables.keys()], ['x/a']);
  const entries = [...n.tables.get('x/a')!.entries.values()].filter((e) => e.identity === IDENTITY_ANY);
  const tcp = entries
    .filter((e) => e.protocol === PROTOCOL_NUMBER.TCP)
    .map((e) => `${e.port}/${e.prefixLen}`);
  const udp = entries
    .filter((e) => e.protocol === PROTOCOL_NUMBER.UDP)
    .map((e) => `${e.port}/${e.prefixLen}`);
  assert.deepEqual(tcp.sort(), ['80/14', '84/15']);
  assert.equal(udp.length, 6, '1024-65535 is six prefixes');
  assert.equal(lookup(n, n.lpm, '10.244.2.2', '10.244.2.1', 'TCP', 9).ingress.reason, 'not-isolated');
  assert.equal(n.local.get('10.244.2.1'), 'y/a');
  assert.equal(n.tables.get('y/a'), undefined);
});

test('lookup reads exact identity before ANY, and the longest port prefix within each', () => {
  const c = e2eCluster([
    policy('x', 'any', {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [{ ports: [{ port: 1, endPort: 1000 }] }],
    }),
    policy('x', 'from-y', {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }], ports: [{ port: 80 }] }],
    }),
  ]);
  const n = compileNode(c, 'node-1');
  const fromY = lookup(n, n.lpm, '10.244.2.1', '10.244.1.1', 'TCP', 80);
  assert.equal(fromY.ingress.entry?.identity, lpmLookup(n.lpm, '10.244.2.1').identity);
  assert.equal(fromY.ingress.entry?.prefixLen, 16);
  const fromYOther = lookup(n, n.lpm, '10.244.2.1', '10.244.1.1', 'TCP', 81);
  assert.equal(
    fromYOther.ingress.entry?.identity,
    IDENTITY_ANY,
    'a miss on the exact identity falls back to ANY',
  );
  assert.equal(lookup(n, n.lpm, '10.244.2.1', '10.244.1.1', 'TCP', 1001).ingress.reason, 'denied');
});

test('an endpoint whose entries do not fit its map fails closed in the isolated directions, reported by name', () => {
  const c = e2eCluster([
    policy('x', 'many', {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [{ ports: [{ port: 1, endPort: 65534 }] }],
    }),
    policy('x', 'few', { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{ ports: [{ port: 80 }] }] }),
  ]);
  // x/a needs 30 prefixes (1-65534) on TCP, plus the node's own 3; x/b needs 1 + 3.
  const n = compileNode(c, 'node-1', newCompileState(), { maxEntriesPerEndpoint: 10 });
  assert.deepEqual(n.failedClosed, ['x/a']);
  assert.deepEqual(n.tables.get('x/a')?.failedClosed, { needed: 33, capacity: 10 });
  const probe = (src: string, dst: string, port: number) => lookup(n, n.lpm, src, dst, 'TCP', port);
  assert.equal(probe('10.244.2.2', '10.244.1.1', 80).ingress.reason, 'failed-closed');
  assert.equal(
    probe('172.30.0.1', '10.244.1.1', 80).ingress.allowed,
    false,
    'not even the node: nothing of the policy is in force',
  );
  assert.equal(
    probe('10.244.1.1', '10.244.2.2', 80).egress.reason,
    'not-isolated',
    'egress is not isolated and needs no entries',
  );
  assert.equal(probe('10.244.1.1', '10.244.1.1', 80).allowed, true, 'the pod still reaches itself');
  const m = compileNode(c, 'node-2', newCompileState(), { maxEntriesPerEndpoint: 10 });
  assert.deepEqual(m.failedClosed, []);
  assert.equal(lookup(m, m.lpm, '10.244.2.2', '10.244.1.2', 'TCP', 80).ingress.reason, 'entry');
});

test('an ipBlock over pod addresses gives them a CIDR identity and leaves their label identities as they were', () => {
  const state = newCompileState();
  const before = compileNode(e2eCluster([]), 'node-1', state);
  const wide = policy('x', 'egress', {
    podSelector: {},
    egress: [{ to: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['169.254.169.254/32'] } }] }],
  });
  const after = compileNode(e2eCluster([wide]), 'node-1', state);
  for (const ip of ['10.244.1.1', '10.244.2.3', '10.244.3.2']) {
    assert.equal(lpmLookup(after.lpm, ip).identity, lpmLookup(before.lpm, ip).identity, ip);
    assert.equal(lpmLookup(before.lpm, ip).cidrIdentity, undefined);
    assert.notEqual(lpmLookup(after.lpm, ip).cidrIdentity, undefined);
  }
  assert.equal(lookup(after, after.lpm, '10.244.1.1', '10.244.2.3', 'TCP', 80).egress.reason, 'entry');
  assert.equal(lookup(after, after.lpm, '10.244.1.1', '169.254.169.254', 'TCP', 80).egress.reason, 'denied');
});
