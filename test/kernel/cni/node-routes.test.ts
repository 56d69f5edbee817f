// The agent's route keeper: Node objects come, change their pod CIDR or address, and go; the
// routes in a "node" netns follow (native mode, then VXLAN), and a burst of changes is coalesced.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { NodeRoutes, routingInfo } from '../../../src/agent/node-routes.ts';
import { ROUTE_PROTOCOL, VXLAN_DEVICE } from '../../../src/agent/routes.ts';
import type { Node } from '../../../src/model/k8s.ts';

function netns(t: TestContext): string {
  const name = `fnr${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', name]);
  t.after(() => execFileSync('ip', ['netns', 'del', name]));
  return `/run/netns/${name}`;
}

function inNs(ns: string, ...argv: string[]): string {
  return execFileSync('nsenter', [`--net=${ns}`, '--', ...argv], { encoding: 'utf8' });
}

function node(name: string, address: string, podCIDR: string, zone = 'a'): Node {
  return {
    metadata: { name, labels: { 'topology.kubernetes.io/zone': zone } },
    spec: { podCIDRs: [podCIDR] },
    status: { addresses: [{ type: 'InternalIP', address }, { type: 'Hostname', address: name }] },
  };
}

/** Our routes in the namespace as "dst via gateway". */
function routes(ns: string): string[] {
  const j = JSON.parse(inNs(ns, 'ip', '-j', 'route', 'show', 'proto', ROUTE_PROTOCOL)) as {
    dst: string;
    gateway?: string;
    dev: string;
  }[];
  return j.map((r) => `${r.dst} via ${r.gateway ?? '-'} dev ${r.dev}`).sort();
}

test('routingInfo reads InternalIPs and podCIDRs, and skips a Node without them', () => {
  assert.deepEqual(routingInfo(node('n1', '172.31.0.1', '10.244.1.0/24')), {
    name: 'n1',
    addresses: ['172.31.0.1'],
    podCIDRs: ['10.244.1.0/24'],
  });
  assert.equal(routingInfo({ metadata: { name: 'bare' } }), undefined);
  assert.deepEqual(routingInfo({ metadata: { name: 'old' }, spec: { podCIDR: '10.9.0.0/24' }, status: { addresses: [{ type: 'InternalIP', address: '10.0.0.9' }] } })?.podCIDRs, ['10.9.0.0/24']);
});

test('routes follow Node objects: added, moved, re-addressed, deleted; then VXLAN', async (t) => {
  const ns = netns(t);
  // No dummy driver on these kernels: a veth pair with both ends in the namespace.
  inNs(ns, 'ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p');
  inNs(ns, 'ip', 'link', 'set', 'eth0p', 'up');
  inNs(ns, 'ip', 'addr', 'add', '172.31.0.1/24', 'dev', 'eth0');
  inNs(ns, 'ip', 'link', 'set', 'eth0', 'up');
  const log = pino({ level: 'silent' });
  const self = node('node-1', '172.31.0.1', '10.244.1.0/24');
  const two = node('node-2', '172.31.0.2', '10.244.2.0/24');
  const three = node('node-3', '172.31.0.3', '10.244.3.0/24');

  const keeper = new NodeRoutes({ self: 'node-1', mode: 'native', log, netnsPath: ns });
  // A re-list delivers every Node at once: one burst, coalesced.
  for (const n of [self, two, three]) keeper.onChange({ kind: 'Node', previous: undefined, current: n });
  await keeper.settled();
  assert.deepEqual(routes(ns), ['10.244.2.0/24 via 172.31.0.2 dev eth0', '10.244.3.0/24 via 172.31.0.3 dev eth0']);
  assert.ok(keeper.status().syncs <= 2, `a burst of 3 changes took ${keeper.status().syncs} syncs`);

  // A heartbeat that changes nothing we route by does not sync again.
  const before = keeper.status().syncs;
  keeper.onChange({ kind: 'Node', previous: two, current: node('node-2', '172.31.0.2', '10.244.2.0/24', 'b') });
  await keeper.settled();
  assert.equal(keeper.status().syncs, before);

  const moved = node('node-2', '172.31.0.2', '10.244.22.0/24');
  keeper.onChange({ kind: 'Node', previous: two, current: moved });
  const readdressed = node('node-3', '172.31.0.33', '10.244.3.0/24');
  keeper.onChange({ kind: 'Node', previous: three, current: readdressed });
  await keeper.settled();
  assert.deepEqual(routes(ns), ['10.244.22.0/24 via 172.31.0.2 dev eth0', '10.244.3.0/24 via 172.31.0.33 dev eth0']);

  keeper.onChange({ kind: 'Node', previous: readdressed, current: undefined });
  await keeper.settled();
  assert.deepEqual(routes(ns), ['10.244.22.0/24 via 172.31.0.2 dev eth0']);
  await keeper.close();

  // The same Nodes over the overlay: the routes move onto the VXLAN device.
  const overlay = new NodeRoutes({ self: 'node-1', mode: 'vxlan', log, netnsPath: ns });
  overlay.onChange({ kind: 'Node', previous: undefined, current: moved });
  await overlay.settled();
  assert.equal(overlay.status().syncs, 0, 'VXLAN waits for its own Node (the underlay address)');
  overlay.onChange({ kind: 'Node', previous: undefined, current: self });
  await overlay.settled();
  const got = routes(ns);
  assert.equal(got.length, 1, got.join('; '));
  assert.match(got[0]!, new RegExp(`^10\\.244\\.22\\.0/24 via 10\\.244\\.22\\.0 dev ${VXLAN_DEVICE.replace('.', '\\.')}$`));
  await overlay.close();
});
