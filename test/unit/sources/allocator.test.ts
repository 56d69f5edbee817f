// The standalone "API server": ClusterIPs per family, NodePorts, health-check NodePorts; user
// choices honoured, collisions refused naming both Services, releases on delete.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Service, ServiceSpec } from '../../../src/model/k8s.ts';
import { ServiceAllocator } from '../../../src/sources/manifest/allocator.ts';
import {
  DEFAULT_NODE_PORT_RANGE,
  parseServiceCidrs,
  ServiceIpRange,
} from '../../../src/sources/manifest/ranges.ts';

const dual = (): ServiceAllocator =>
  new ServiceAllocator(parseServiceCidrs(['10.96.0.0/16', 'fd00:10:96::/108']), DEFAULT_NODE_PORT_RANGE);

function svc(name: string, spec: ServiceSpec): Service {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec };
}

function services(...list: Service[]): Map<string, Service> {
  return new Map(list.map((s) => [`default/${s.metadata.name}`, s]));
}

test('range layout mirrors upstream: network and .1 skipped, IPv4 broadcast excluded, upper band first', () => {
  const r = new ServiceIpRange('10.96.0.0/16');
  assert.equal(r.addressAt(r.reservedIndex), '10.96.0.1');
  assert.equal(r.size, 65534);
  assert.equal(r.addressAt(r.size - 1), '10.96.255.254');
  assert.equal(r.indexOf('10.96.0.0'), undefined);
  assert.equal(r.indexOf('10.96.255.255'), undefined);
  assert.equal(r.dynamicStart, 256);
  const r6 = new ServiceIpRange('fd00:10:96::/108');
  assert.equal(r6.addressAt(r6.size - 1), 'fd00:10:96::f:ffff', 'IPv6 has no broadcast address');
  assert.equal(new ServiceIpRange('10.0.0.0/28').dynamicStart, 0);
});

test('ClusterIPs: primary family by default, both for PreferDualStack, requested ones honoured', () => {
  const a = dual();
  const r = a.reconcile(
    services(
      svc('single', { ports: [{ port: 80 }] }),
      svc('dual', { ipFamilyPolicy: 'PreferDualStack', ports: [{ port: 80 }] }),
      svc('v6first', { ipFamilies: ['IPv6', 'IPv4'], ports: [{ port: 80 }] }),
      svc('mine', { clusterIP: '10.96.0.10', ports: [{ port: 80 }] }),
      svc('headless', { clusterIP: 'None', selector: { app: 'x' } }),
      svc('ext', { type: 'ExternalName', externalName: 'example.com' }),
    ),
  );
  assert.deepEqual(r.errors, new Map());
  const spec = (n: string): ServiceSpec => r.services.get(`default/${n}`)!.spec;
  // Key order among newcomers: dual, ext, headless, mine, single, v6first.
  assert.deepEqual(spec('dual').clusterIPs, ['10.96.1.1', 'fd00:10:96::101']);
  assert.deepEqual(spec('dual').ipFamilies, ['IPv4', 'IPv6']);
  assert.equal(spec('dual').ipFamilyPolicy, 'PreferDualStack');
  assert.deepEqual(spec('single').clusterIPs, ['10.96.1.2']);
  assert.equal(spec('single').clusterIP, '10.96.1.2');
  assert.deepEqual(spec('single').ipFamilies, ['IPv4']);
  assert.equal(spec('single').ipFamilyPolicy, 'SingleStack');
  assert.deepEqual(spec('v6first').clusterIPs, ['fd00:10:96::102', '10.96.1.3']);
  assert.equal(spec('v6first').ipFamilyPolicy, 'RequireDualStack', 'two families imply RequireDualStack');
  assert.deepEqual(spec('mine').clusterIPs, ['10.96.0.10']);
  assert.deepEqual(spec('headless').clusterIPs, ['None']);
  assert.deepEqual(spec('headless').ipFamilies, ['IPv4']);
  assert.equal(spec('ext').clusterIP, undefined);
});

test('refusals name the field and, for collisions, the other Service; the holder keeps its address', () => {
  const a = new ServiceAllocator(parseServiceCidrs(['10.96.0.0/16']), DEFAULT_NODE_PORT_RANGE);
  const r = a.reconcile(
    services(
      svc('a', { clusterIP: '10.96.0.10' }),
      svc('b', { clusterIP: '10.96.0.10' }),
      svc('out', { clusterIP: '10.97.0.1' }),
      svc('kube', { clusterIP: '10.96.0.1' }),
      svc('req', { ipFamilyPolicy: 'RequireDualStack' }),
      svc('v6', { ipFamilies: ['IPv6'] }),
      svc('np1', { type: 'NodePort', ports: [{ port: 80, nodePort: 30080 }] }),
      svc('np2', { type: 'NodePort', ports: [{ port: 81, nodePort: 30080 }] }),
      svc('np3', { type: 'NodePort', ports: [{ port: 81, nodePort: 29999 }] }),
    ),
  );
  const messages = Object.fromEntries([...r.errors].map(([k, e]) => [k, e.message]));
  assert.deepEqual(messages, {
    'default/b':
      'Service default/b: spec.clusterIPs[0]: 10.96.0.10 is already allocated to Service default/a',
    'default/out':
      'Service default/out: spec.clusterIPs[0]: 10.97.0.1 is not in the service range 10.96.0.0/16',
    'default/kube':
      'Service default/kube: spec.clusterIPs[0]: 10.96.0.1 is reserved for Service default/kubernetes',
    'default/req': 'Service default/req: spec.ipFamilyPolicy: RequireDualStack on a single-stack cluster',
    'default/v6': 'Service default/v6: spec.ipFamilies[0]: IPv6 is not configured on this cluster',
    'default/np2':
      'Service default/np2: spec.ports[0].nodePort: 30080 is already allocated to Service default/np1',
    'default/np3':
      'Service default/np3: spec.ports[0].nodePort: 29999 is not in the node port range 30000-32767',
  });
  assert.ok(r.errors.get('default/b') instanceof Error);
  assert.equal(r.errors.get('default/b')!.code, 'FERRY_E_ALLOCATION');
  assert.deepEqual([...r.services.keys()].sort(), ['default/a', 'default/np1']);

  // Once a is gone, b gets the address it asked for.
  const r2 = a.reconcile(services(svc('b', { clusterIP: '10.96.0.10' })));
  assert.deepEqual(r2.errors, new Map());
  assert.equal(r2.services.get('default/b')!.spec.clusterIP, '10.96.0.10');
  assert.deepEqual(Object.keys(a.state()), ['default/b'], 'everything else released');
});

test('NodePorts: allocated for NodePort/LoadBalancer from the upper band, shared by TCP and UDP of one port', () => {
  const a = dual();
  const r = a.reconcile(
    services(
      svc('dns', {
        type: 'NodePort',
        ports: [
          { name: 'udp', port: 53, protocol: 'UDP' },
          { name: 'tcp', port: 53, protocol: 'TCP' },
          { name: 'metrics', port: 9153, nodePort: 30999 },
        ],
      }),
      svc('lb', { type: 'LoadBalancer', externalTrafficPolicy: 'Local', ports: [{ port: 443 }] }),
      svc('lb-noports', {
        type: 'LoadBalancer',
        allocateLoadBalancerNodePorts: false,
        ports: [{ port: 80 }],
      }),
      svc('cip', { ports: [{ port: 80 }] }),
    ),
  );
  assert.deepEqual(r.errors, new Map());
  const spec = (n: string): ServiceSpec => r.services.get(`default/${n}`)!.spec;
  assert.deepEqual(
    spec('dns').ports!.map((p) => p.nodePort),
    [30086, 30086, 30999],
  );
  assert.equal(spec('lb').ports![0]!.nodePort, 30087);
  assert.equal(spec('lb').healthCheckNodePort, 30088);
  assert.equal(spec('lb-noports').ports![0]!.nodePort, undefined);
  assert.equal(spec('lb-noports').healthCheckNodePort, undefined);
  assert.equal(spec('cip').ports![0]!.nodePort, undefined);

  // NodePort → ClusterIP releases the ports; eTP Local → Cluster releases the health-check port.
  const r2 = a.reconcile(
    services(
      svc('dns', { ports: [{ name: 'udp', port: 53, protocol: 'UDP' }] }),
      svc('lb', { type: 'LoadBalancer', ports: [{ port: 443 }] }),
      svc('new', { type: 'NodePort', ports: [{ port: 1 }, { port: 2 }] }),
    ),
  );
  assert.equal(r2.services.get('default/lb')!.spec.ports![0]!.nodePort, 30087, 'kept across updates');
  assert.equal(r2.services.get('default/lb')!.spec.healthCheckNodePort, undefined);
  assert.deepEqual(
    r2.services.get('default/new')!.spec.ports!.map((p) => p.nodePort),
    [30086, 30088],
    'released ports are reused',
  );
});

test('a refused update keeps the last accepted version in force', () => {
  const a = new ServiceAllocator(parseServiceCidrs(['10.96.0.0/16']), DEFAULT_NODE_PORT_RANGE);
  a.reconcile(services(svc('a', { clusterIP: '10.96.0.10' }), svc('b', {})));
  const before = a
    .reconcile(services(svc('a', { clusterIP: '10.96.0.10' }), svc('b', {})))
    .services.get('default/b');
  const r = a.reconcile(
    services(svc('a', { clusterIP: '10.96.0.10' }), svc('b', { clusterIP: '10.96.0.10' })),
  );
  assert.match(r.errors.get('default/b')!.message, /already allocated to Service default\/a/);
  assert.deepEqual(r.services.get('default/b'), before);
});

test('restored state is honoured and wins over newcomers asking for the same address', () => {
  const first = dual();
  first.reconcile(
    services(svc('web', { type: 'NodePort', ipFamilyPolicy: 'PreferDualStack', ports: [{ port: 80 }] })),
  );
  const saved = JSON.parse(JSON.stringify(first.state())) as ReturnType<ServiceAllocator['state']>;
  const again = new ServiceAllocator(
    parseServiceCidrs(['10.96.0.0/16', 'fd00:10:96::/108']),
    DEFAULT_NODE_PORT_RANGE,
    saved,
  );
  const r = again.reconcile(
    services(
      svc('aaa', { clusterIP: '10.96.1.1' }),
      svc('web', { type: 'NodePort', ipFamilyPolicy: 'PreferDualStack', ports: [{ port: 80 }] }),
    ),
  );
  assert.deepEqual(r.services.get('default/web')!.spec.clusterIPs, ['10.96.1.1', 'fd00:10:96::101']);
  assert.equal(r.services.get('default/web')!.spec.ports![0]!.nodePort, 30086);
  assert.match(
    r.errors.get('default/aaa')!.message,
    /10\.96\.1\.1 is already allocated to Service default\/web/,
  );
});

test('fixed requests are served before dynamic picks whatever the key order (KEP-3070 bands)', () => {
  const a = dual();
  const range = parseServiceCidrs(['10.96.0.0/16'])[0]!;
  const firstDynamic = range.addressAt(range.dynamicStart);
  const r = a.reconcile(
    services(
      svc('aaa', { type: 'NodePort', ports: [{ port: 80 }] }),
      svc('bbb', { clusterIP: firstDynamic, type: 'NodePort', ports: [{ port: 80, nodePort: 30086 }] }),
    ),
  );
  assert.deepEqual([...r.errors.keys()], []);
  assert.equal(r.services.get('default/bbb')!.spec.clusterIP, firstDynamic);
  assert.notEqual(r.services.get('default/aaa')!.spec.clusterIP, firstDynamic);
  assert.notEqual(r.services.get('default/aaa')!.spec.ports![0]!.nodePort, 30086);
});

test('reserved addresses and ports are never picked dynamically, but can be requested', () => {
  const range = parseServiceCidrs(['10.96.0.0/16'])[0]!;
  const first = range.addressAt(range.dynamicStart);
  const a = new ServiceAllocator([range], DEFAULT_NODE_PORT_RANGE, {}, { ips: [first], ports: [30086] });
  const r = a.reconcile(
    services(
      svc('dyn', { type: 'NodePort', ports: [{ port: 80 }] }),
      svc('zzz', { clusterIP: first, ports: [{ port: 80 }] }),
    ),
  );
  assert.deepEqual([...r.errors.keys()], []);
  assert.notEqual(r.services.get('default/dyn')!.spec.clusterIP, first);
  assert.notEqual(r.services.get('default/dyn')!.spec.ports![0]!.nodePort, 30086);
  assert.equal(r.services.get('default/zzz')!.spec.clusterIP, first);
});
