// Rebuilding allocations from what the pinned datapath serves: by name where known, else by the
// exact set of ports an address serves; the rest is reserved.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Service, ServiceSpec } from '../../../src/model/k8s.ts';
import { liveAllocationsFrom, recoverAllocations } from '../../../src/sources/manifest/recovery.ts';

function svc(name: string, spec: ServiceSpec): Service {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec };
}
const services = (...list: Service[]): Map<string, Service> =>
  new Map(list.map((s) => [`default/${s.metadata.name}`, s]));

test('live addresses go back by name, then by their port set; unmatched ones are reserved', () => {
  const r = recoverAllocations(
    {
      frontends: [
        { clusterIP: '10.96.1.1', port: 80, protocol: 'TCP', service: 'default/named' },
        { clusterIP: '10.96.1.2', port: 443, protocol: 'TCP', nodePort: 30100 },
        { clusterIP: '10.96.1.2', port: 53, protocol: 'UDP' },
        { clusterIP: '10.96.1.3', port: 9999, protocol: 'TCP' },
      ],
      nodePorts: [30100, 30200],
    },
    services(
      svc('named', { ports: [{ port: 8080 }] }),
      svc('web', { type: 'NodePort', ports: [{ port: 53, protocol: 'UDP' }, { port: 443 }] }),
      svc('other', { ports: [{ port: 80 }] }),
    ),
    {},
  );
  assert.deepEqual(r.state['default/named'], { clusterIPs: ['10.96.1.1'], nodePorts: {} });
  assert.deepEqual(r.state['default/web'], { clusterIPs: ['10.96.1.2'], nodePorts: { '443/TCP': 30100 } });
  assert.equal(r.state['default/other'], undefined);
  assert.deepEqual(r.reservedIps, ['10.96.1.3']);
  assert.deepEqual(r.reservedPorts, [30200]);
});

test('holdings from the state file win; their addresses are not offered again', () => {
  const r = recoverAllocations(
    { frontends: [{ clusterIP: '10.96.1.1', port: 80, protocol: 'TCP' }], nodePorts: [] },
    services(svc('a', { ports: [{ port: 80 }] }), svc('b', { ports: [{ port: 80 }] })),
    { 'default/a': { clusterIPs: ['10.96.1.1'], nodePorts: {} } },
  );
  assert.equal(r.state['default/b'], undefined);
  assert.deepEqual(r.reservedIps, []);
});

test('read-back frontends: a NodePort is linked to the one ClusterIP port with the same backends', () => {
  const live = liveAllocationsFrom([
    { kind: 'ClusterIP', address: '10.96.1.2', port: 443, protocol: 'TCP', backendIds: [7, 3] },
    { kind: 'ClusterIP', address: '10.96.1.2', port: 53, protocol: 'UDP', backendIds: [] },
    { kind: 'NodePort', address: '172.30.0.1', port: 30100, protocol: 'TCP', backendIds: [3, 7] },
    { kind: 'NodePort', address: '172.30.0.1', port: 30101, protocol: 'UDP', backendIds: [] },
  ]);
  assert.deepEqual(live.frontends, [
    { clusterIP: '10.96.1.2', port: 443, protocol: 'TCP', nodePort: 30100 },
    { clusterIP: '10.96.1.2', port: 53, protocol: 'UDP' },
  ]);
  assert.deepEqual(live.nodePorts, [30100, 30101]);
});

test('Services with the same ports get back the address that forwards to their own pods', () => {
  const pods: Record<string, string[]> = { 'default/a': ['10.244.1.1', '10.244.1.2'], 'default/b': ['10.244.2.1'] };
  const r = recoverAllocations(
    {
      frontends: [
        // Sorted first, but it is b's: by port set alone, a (first by key) would take it.
        { clusterIP: '10.96.1.1', port: 80, protocol: 'TCP', backendIPs: ['10.244.2.1'] },
        { clusterIP: '10.96.1.2', port: 80, protocol: 'TCP', backendIPs: ['10.244.1.2'] },
      ],
      nodePorts: [],
    },
    services(svc('a', { ports: [{ port: 80 }] }), svc('b', { ports: [{ port: 80 }] })),
    {},
    (s) => pods[`default/${s.metadata.name}`] ?? [],
  );
  assert.deepEqual(r.state['default/a']?.clusterIPs, ['10.96.1.2']);
  assert.deepEqual(r.state['default/b']?.clusterIPs, ['10.96.1.1']);
});

test('read-back frontends carry their backend addresses', () => {
  const live = liveAllocationsFrom(
    [{ kind: 'ClusterIP', address: '10.96.1.2', port: 80, protocol: 'TCP', backendIds: [3, 7] }],
    (id) => (id === 3 ? '10.244.1.3' : undefined),
  );
  assert.deepEqual(live.frontends, [{ clusterIP: '10.96.1.2', port: 80, protocol: 'TCP', backendIPs: ['10.244.1.3'] }]);
});
