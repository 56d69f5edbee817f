// Packet-flow tables in the shape of kube-proxy's proxier tests: for a node and a set of objects,
// {source, destination, port, protocol} → the backends that may answer, REJECT, DROP, or NONE (no
// frontend at all). Each case names the rule it pins down; many are ones a naive version gets wrong.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ServiceModel, resolve, type EndpointSlice, type Service, type FlowQuery } from '../../../src/model/index.ts';
import { ep, slice, svc } from './fixtures.ts';

type Expect = string[] | 'REJECT' | 'DROP' | 'NONE';
interface Flow {
  from: FlowQuery['source'];
  to: string;
  port: number;
  proto?: 'TCP' | 'UDP';
  expect: Expect;
}
interface Case {
  rule: string;
  node?: { name: string; zone?: string };
  services: Service[];
  slices: EndpointSlice[];
  flows: Flow[];
}

const NODE_IPS = ['172.30.0.1', 'fd00:172:30::1'];

function run(c: Case): void {
  const nodeName = c.node?.name ?? 'node-1';
  const model = new ServiceModel({ nodeName, nodeAddresses: NODE_IPS });
  model.apply({
    kind: 'Node',
    previous: undefined,
    current: {
      metadata: { name: nodeName, labels: { 'topology.kubernetes.io/zone': c.node?.zone ?? 'zone-a' } },
    },
  });
  for (const s of c.services) model.apply({ kind: 'Service', previous: undefined, current: s });
  for (const s of c.slices) model.apply({ kind: 'EndpointSlice', previous: undefined, current: s });
  model.sync();
  assert.deepEqual(model.errors(), [], `${c.rule}: fixture objects must be valid`);
  for (const f of c.flows) {
    const got = resolve(model.table(), { source: f.from, destination: f.to, port: f.port, protocol: f.proto ?? 'TCP' });
    const shown = typeof got === 'string' ? got : got.map((b) => (b.address.includes(':') ? `[${b.address}]:${b.port}` : `${b.address}:${b.port}`)).sort();
    const want = typeof f.expect === 'string' ? f.expect : [...f.expect].sort();
    assert.deepEqual(shown, want, `${c.rule}: ${f.from} → ${f.to}:${f.port}/${f.proto ?? 'TCP'}`);
  }
}

const cases: Case[] = [
  {
    rule: 'ClusterIP forwards to ready endpoints; nil conditions mean ready',
    services: [svc('web', {})],
    slices: [slice('web', 'web-a', [ep('10.244.1.10'), ep('10.244.2.10', 'node-2', { ready: false }), ep('10.244.3.10', 'node-3', {})])],
    flows: [{ from: 'pod', to: '10.96.0.10', port: 80, expect: ['10.244.1.10:8080', '10.244.3.10:8080'] }],
  },
  {
    rule: 'ClusterIP is internal only: traffic from outside finds no frontend',
    services: [svc('web', {})],
    slices: [slice('web', 'web-a', [ep('10.244.1.10')])],
    flows: [{ from: 'external', to: '10.96.0.10', port: 80, expect: 'NONE' }],
  },
  {
    rule: 'KEP-1669: with no ready endpoint, serving+terminating ones are used',
    services: [svc('web', {})],
    slices: [
      slice('web', 'web-a', [
        ep('10.244.1.10', 'node-1', { ready: false, serving: true, terminating: true }),
        ep('10.244.2.10', 'node-2', { ready: false, serving: false, terminating: true }),
      ]),
    ],
    flows: [{ from: 'pod', to: '10.96.0.10', port: 80, expect: ['10.244.1.10:8080'] }],
  },
  {
    rule: 'terminating endpoints are not used while a ready one exists',
    services: [svc('web', {})],
    slices: [slice('web', 'web-a', [ep('10.244.1.10', 'node-1', { ready: false, serving: true, terminating: true }), ep('10.244.2.10', 'node-2')])],
    flows: [{ from: 'pod', to: '10.96.0.10', port: 80, expect: ['10.244.2.10:8080'] }],
  },
  {
    rule: 'no serving endpoint at all → REJECT (connection refused), not DROP',
    services: [svc('web', { type: 'NodePort', ports: [{ port: 80, targetPort: 8080, nodePort: 30080 }] })],
    slices: [slice('web', 'web-a', [ep('10.244.1.10', 'node-1', { ready: false, serving: false, terminating: true })])],
    flows: [
      { from: 'pod', to: '10.96.0.10', port: 80, expect: 'REJECT' },
      { from: 'external', to: '172.30.0.1', port: 30080, expect: 'REJECT' },
    ],
  },
  {
    rule: 'a service without any slice is rejected',
    services: [svc('empty', {})],
    slices: [],
    flows: [{ from: 'pod', to: '10.96.0.10', port: 80, expect: 'REJECT' }],
  },
  {
    rule: 'iTP=Local uses only local endpoints; none local → DROP (endpoints exist elsewhere)',
    node: { name: 'node-3' },
    services: [svc('web', { internalTrafficPolicy: 'Local' })],
    slices: [slice('web', 'web-a', [ep('10.244.1.10', 'node-1'), ep('10.244.2.10', 'node-2')])],
    flows: [{ from: 'pod', to: '10.96.0.10', port: 80, expect: 'DROP' }],
  },
  {
    rule: 'iTP=Local falls back to a LOCAL serving+terminating endpoint even though a remote one is ready',
    services: [svc('web', { internalTrafficPolicy: 'Local' })],
    slices: [
      slice('web', 'web-a', [
        ep('10.244.1.10', 'node-1', { ready: false, serving: true, terminating: true }),
        ep('10.244.2.10', 'node-2'),
      ]),
    ],
    flows: [{ from: 'pod', to: '10.96.0.10', port: 80, expect: ['10.244.1.10:8080'] }],
  },
  {
    rule: 'eTP=Local: outside traffic to a NodePort on a node without local endpoints is dropped, pod traffic still reaches cluster endpoints',
    node: { name: 'node-3' },
    services: [svc('web', { type: 'NodePort', externalTrafficPolicy: 'Local', ports: [{ port: 80, targetPort: 8080, nodePort: 30080 }] })],
    slices: [slice('web', 'web-a', [ep('10.244.1.10', 'node-1'), ep('10.244.2.10', 'node-2')])],
    flows: [
      { from: 'external', to: '172.30.0.1', port: 30080, expect: 'DROP' },
      { from: 'pod', to: '172.30.0.1', port: 30080, expect: ['10.244.1.10:8080', '10.244.2.10:8080'] },
      { from: 'pod', to: '10.96.0.10', port: 80, expect: ['10.244.1.10:8080', '10.244.2.10:8080'] },
    ],
  },
  {
    rule: 'eTP=Local with a local endpoint serves outside traffic from it only',
    services: [svc('web', { type: 'NodePort', externalTrafficPolicy: 'Local', ports: [{ port: 80, targetPort: 8080, nodePort: 30080 }] })],
    slices: [slice('web', 'web-a', [ep('10.244.1.10', 'node-1'), ep('10.244.2.10', 'node-2')])],
    flows: [{ from: 'external', to: '172.30.0.1', port: 30080, expect: ['10.244.1.10:8080'] }],
  },
  {
    rule: 'zone hints: only endpoints hinted for this node’s zone',
    services: [svc('web', { trafficDistribution: 'PreferClose' })],
    slices: [
      slice('web', 'web-a', [
        ep('10.244.1.10', 'node-1', { zone: 'zone-a', zones: ['zone-a'] }),
        ep('10.244.2.10', 'node-2', { zone: 'zone-b', zones: ['zone-b'] }),
      ]),
    ],
    flows: [{ from: 'pod', to: '10.96.0.10', port: 80, expect: ['10.244.1.10:8080'] }],
  },
  {
    rule: 'hints missing on one ready endpoint → topology ignored, all endpoints used',
    services: [svc('web', { trafficDistribution: 'PreferClose' })],
    slices: [
      slice('web', 'web-a', [
        ep('10.244.1.10', 'node-1', { zones: ['zone-a'] }),
        ep('10.244.2.10', 'node-2', { zones: ['zone-b'] }),
        ep('10.244.3.10', 'node-3'),
      ]),
    ],
    flows: [{ from: 'pod', to: '10.96.0.10', port: 80, expect: ['10.244.1.10:8080', '10.244.2.10:8080', '10.244.3.10:8080'] }],
  },
  {
    rule: 'hints present but none for this zone → all endpoints',
    node: { name: 'node-1', zone: 'zone-c' },
    services: [svc('web', {})],
    slices: [slice('web', 'web-a', [ep('10.244.1.10', 'node-1', { zones: ['zone-a'] }), ep('10.244.2.10', 'node-2', { zones: ['zone-b'] })])],
    flows: [{ from: 'pod', to: '10.96.0.10', port: 80, expect: ['10.244.1.10:8080', '10.244.2.10:8080'] }],
  },
  {
    rule: 'node hints (PreferSameNode) win over zone hints',
    services: [svc('web', { trafficDistribution: 'PreferSameNode' })],
    slices: [
      slice('web', 'web-a', [
        ep('10.244.1.10', 'node-1', { zones: ['zone-a'], nodes: ['node-1'] }),
        ep('10.244.1.11', 'node-2', { zones: ['zone-a'], nodes: ['node-2'] }),
      ]),
    ],
    flows: [{ from: 'pod', to: '10.96.0.10', port: 80, expect: ['10.244.1.10:8080'] }],
  },
  {
    rule: 'an endpoint in two slices is used once',
    services: [svc('web', {})],
    slices: [slice('web', 'web-a', [ep('10.244.1.10'), ep('10.244.2.10', 'node-2')]), slice('web', 'web-b', [ep('10.244.1.10')])],
    flows: [{ from: 'pod', to: '10.96.0.10', port: 80, expect: ['10.244.1.10:8080', '10.244.2.10:8080'] }],
  },
  {
    rule: 'a named targetPort resolves per slice: different pods, different numbers',
    services: [svc('web', { ports: [{ name: 'http', port: 80, targetPort: 'http' }] })],
    slices: [
      slice('web', 'web-a', [ep('10.244.1.10')], [{ name: 'http', port: 8080 }]),
      slice('web', 'web-b', [ep('10.244.2.10', 'node-2')], [{ name: 'http', port: 9090 }]),
      slice('web', 'web-c', [ep('10.244.3.10', 'node-3')], [{ name: 'metrics', port: 9100 }]),
    ],
    flows: [{ from: 'pod', to: '10.96.0.10', port: 80, expect: ['10.244.1.10:8080', '10.244.2.10:9090'] }],
  },
  {
    rule: 'two ports on one VIP, matched by name and protocol; UDP separate from TCP',
    services: [
      svc('dns', {
        ports: [
          { name: 'dns', port: 53, protocol: 'UDP', targetPort: 5353 },
          { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 5353 },
          { name: 'metrics', port: 9153, targetPort: 9153 },
        ],
      }),
    ],
    slices: [
      slice('dns', 'dns-a', [ep('10.244.1.10')], [
        { name: 'dns', port: 5353, protocol: 'UDP' },
        { name: 'dns-tcp', port: 5354, protocol: 'TCP' },
        { name: 'metrics', port: 9153 },
      ]),
    ],
    flows: [
      { from: 'pod', to: '10.96.0.10', port: 53, proto: 'UDP', expect: ['10.244.1.10:5353'] },
      { from: 'pod', to: '10.96.0.10', port: 53, proto: 'TCP', expect: ['10.244.1.10:5354'] },
      { from: 'pod', to: '10.96.0.10', port: 9153, expect: ['10.244.1.10:9153'] },
      { from: 'pod', to: '10.96.0.10', port: 9154, expect: 'NONE' },
    ],
  },
  {
    rule: 'a slice without the service-name label is not used',
    services: [svc('web', {})],
    slices: [slice('web', 'web-a', [ep('10.244.1.10')], [{ port: 8080 }], { labels: { app: 'web' } })],
    flows: [{ from: 'pod', to: '10.96.0.10', port: 80, expect: 'REJECT' }],
  },
  {
    rule: 'a slice claimed by another proxy (service-proxy-name) is not used',
    services: [svc('web', {})],
    slices: [
      slice('web', 'web-a', [ep('10.244.1.10')], [{ port: 8080 }], {
        labels: { 'kubernetes.io/service-name': 'web', 'service.kubernetes.io/service-proxy-name': 'other' },
      }),
    ],
    flows: [{ from: 'pod', to: '10.96.0.10', port: 80, expect: 'REJECT' }],
  },
  {
    rule: 'a slice labelled service.kubernetes.io/headless is not used (kube-proxy filters it out), its sibling is',
    services: [svc('web', {})],
    slices: [
      slice('web', 'web-a', [ep('10.244.1.10')], [{ port: 8080 }], {
        labels: { 'kubernetes.io/service-name': 'web', 'service.kubernetes.io/headless': '' },
      }),
      slice('web', 'web-b', [ep('10.244.1.11')]),
    ],
    flows: [{ from: 'pod', to: '10.96.0.10', port: 80, expect: ['10.244.1.11:8080'] }],
  },
  {
    rule: 'dual-stack: each family uses its own endpoints; only the first address of an endpoint counts',
    services: [svc('web', { clusterIPs: ['10.96.0.10', 'fd00:10:96::a'] })],
    slices: [
      slice('web', 'web-v4', [ep('10.244.1.10')]),
      slice('web', 'web-v6', [ep('fd00:10:244:1::a')]),
    ],
    flows: [
      { from: 'pod', to: '10.96.0.10', port: 80, expect: ['10.244.1.10:8080'] },
      { from: 'pod', to: 'fd00:10:96:0::a', port: 80, expect: ['[fd00:10:244:1::a]:8080'] },
    ],
  },
  {
    rule: 'a service of another proxy, headless and ExternalName services have no frontend',
    services: [
      svc('other', {}, { metadata: { name: 'other', namespace: 'default', labels: { 'service.kubernetes.io/service-proxy-name': 'x' } } }),
      svc('headless', { clusterIP: 'None', clusterIPs: ['None'] }),
      { metadata: { name: 'ext', namespace: 'default' }, spec: { type: 'ExternalName', externalName: 'example.org' } },
    ],
    slices: [slice('other', 'other-a', [ep('10.244.1.10')]), slice('headless', 'headless-a', [ep('10.244.1.11')])],
    flows: [{ from: 'pod', to: '10.96.0.10', port: 80, expect: 'NONE' }],
  },
  {
    rule: 'LoadBalancer: VIP ingress programmed, ipMode Proxy not; source ranges on the LB frontend only',
    services: [
      svc(
        'lb',
        {
          type: 'LoadBalancer',
          loadBalancerSourceRanges: ['198.18.0.0/24'],
          ports: [{ port: 80, targetPort: 8080, nodePort: 30080 }],
        },
        { status: { loadBalancer: { ingress: [{ ip: '198.19.0.1' }, { ip: '198.19.0.2', ipMode: 'Proxy' }] } } },
      ),
    ],
    slices: [slice('lb', 'lb-a', [ep('10.244.1.10')])],
    flows: [
      { from: 'external', to: '198.19.0.1', port: 80, expect: ['10.244.1.10:8080'] },
      { from: 'external', to: '198.19.0.2', port: 80, expect: 'NONE' },
      { from: 'external', to: '172.30.0.1', port: 30080, expect: ['10.244.1.10:8080'] },
      { from: 'external', to: 'fd00:172:30::1', port: 30080, expect: 'NONE' },
    ],
  },
  {
    rule: 'externalIPs get frontends in both scopes',
    services: [svc('ext', { externalIPs: ['198.19.0.9'] })],
    slices: [slice('ext', 'ext-a', [ep('10.244.1.10')])],
    flows: [
      { from: 'external', to: '198.19.0.9', port: 80, expect: ['10.244.1.10:8080'] },
      { from: 'pod', to: '198.19.0.9', port: 80, expect: ['10.244.1.10:8080'] },
    ],
  },
  {
    rule: 'an IPv4-only service does not use IPv6 slices',
    services: [svc('web', {})],
    slices: [slice('web', 'web-a', [ep('fd00:10:244:1::a')], [{ port: 8080 }], { addressType: 'IPv6' })],
    flows: [{ from: 'pod', to: '10.96.0.10', port: 80, expect: 'REJECT' }],
  },
];

for (const c of cases) test(c.rule, () => run(c));

test('a local duplicate wins over an earlier remote copy of the same endpoint', () => {
  const model = new ServiceModel({ nodeName: 'node-1', nodeAddresses: NODE_IPS });
  model.apply({ kind: 'Service', previous: undefined, current: svc('web', { internalTrafficPolicy: 'Local' }) });
  model.apply({ kind: 'EndpointSlice', previous: undefined, current: slice('web', 'web-a', [ep('10.244.1.10', 'node-9')]) });
  model.apply({ kind: 'EndpointSlice', previous: undefined, current: slice('web', 'web-b', [ep('10.244.1.10', 'node-1')]) });
  model.sync();
  const got = resolve(model.table(), { source: 'pod', destination: '10.96.0.10', port: 80, protocol: 'TCP' });
  assert.ok(Array.isArray(got) && got.length === 1 && got[0]!.nodeLocal);
});

test('sessionAffinity ClientIP: default timeout 10800 s, explicit timeout honoured, None is 0', () => {
  const model = new ServiceModel({ nodeName: 'node-1', nodeAddresses: NODE_IPS });
  model.apply({ kind: 'Service', previous: undefined, current: svc('a', { clusterIP: '10.96.0.1', sessionAffinity: 'ClientIP' }) });
  model.apply({
    kind: 'Service',
    previous: undefined,
    current: svc('b', { clusterIP: '10.96.0.2', sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 5 } } }),
  });
  model.apply({ kind: 'Service', previous: undefined, current: svc('c', { clusterIP: '10.96.0.3' }) });
  model.sync();
  const timeout = (ip: string): number | undefined =>
    [...model.table().frontends.values()].find((f) => f.address === ip)?.affinityTimeoutSeconds;
  assert.deepEqual([timeout('10.96.0.1'), timeout('10.96.0.2'), timeout('10.96.0.3')], [10800, 5, 0]);
});

test('eTP=Local LoadBalancer health check counts local ready endpoints', () => {
  const model = new ServiceModel({ nodeName: 'node-1', nodeAddresses: NODE_IPS });
  model.apply({
    kind: 'Service',
    previous: undefined,
    current: svc('lb', { type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: 32000, ports: [{ port: 80, targetPort: 8080, nodePort: 30080 }] }),
  });
  model.apply({
    kind: 'EndpointSlice',
    previous: undefined,
    current: slice('lb', 'lb-a', [ep('10.244.1.10'), ep('10.244.1.11', 'node-1', { ready: false }), ep('10.244.2.10', 'node-2')]),
  });
  model.sync();
  assert.deepEqual(model.table().healthChecks.get('default/lb'), { service: 'default/lb', nodePort: 32000, localEndpoints: 1 });
});

test('nodePortAddresses narrows the node addresses that serve NodePorts', () => {
  const model = new ServiceModel({ nodeName: 'node-1', nodeAddresses: ['172.30.0.1', '198.18.1.1'], nodePortAddresses: ['198.18.0.0/15'] });
  model.apply({ kind: 'Service', previous: undefined, current: svc('np', { type: 'NodePort', ports: [{ port: 80, nodePort: 30080 }] }) });
  model.sync();
  const nodePorts = [...model.table().frontends.values()].filter((f) => f.kind === 'NodePort').map((f) => f.address);
  assert.deepEqual([...new Set(nodePorts)], ['198.18.1.1']);
});

test('health check counts distinct local ready pods over all ports; terminating-only → 0 while traffic still flows', () => {
  const model = new ServiceModel({ nodeName: 'node-1', nodeAddresses: NODE_IPS });
  const ports = [
    { name: 'http', port: 80, targetPort: 8080, nodePort: 30080 },
    { name: 'https', port: 443, targetPort: 8443, nodePort: 30443 },
  ];
  model.apply({
    kind: 'Service',
    previous: undefined,
    current: svc('lb', { type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: 32000, ports }),
  });
  const slicePorts = [{ name: 'http', port: 8080 }, { name: 'https', port: 8443 }];
  const first = slice('lb', 'lb-a', [ep('10.244.1.10'), ep('10.244.2.10', 'node-2')], slicePorts);
  model.apply({ kind: 'EndpointSlice', previous: undefined, current: first });
  model.sync();
  // A naive per-port sum would say 2 (kube-proxy squashes by IP).
  assert.equal(model.table().healthChecks.get('default/lb')?.localEndpoints, 1);
  const terminating = slice('lb', 'lb-a', [ep('10.244.1.10', 'node-1', { ready: false, serving: true, terminating: true }), ep('10.244.2.10', 'node-2')], slicePorts);
  model.apply({ kind: 'EndpointSlice', previous: first, current: terminating });
  model.sync();
  assert.equal(model.table().healthChecks.get('default/lb')?.localEndpoints, 0);
  const flow = resolve(model.table(), { source: 'external', destination: NODE_IPS[0]!, port: 30080, protocol: 'TCP' });
  assert.ok(Array.isArray(flow));
  assert.deepEqual((flow as readonly { address: string; state: string }[]).map((b) => [b.address, b.state]), [['10.244.1.10', 'terminating']]);
});

test('backends are ordered by address value (not text), then port, in both families', () => {
  const model = new ServiceModel({ nodeName: 'node-1', nodeAddresses: NODE_IPS });
  model.apply({ kind: 'Service', previous: undefined, current: svc('v4', { clusterIP: '10.96.0.41' }) });
  model.apply({ kind: 'EndpointSlice', previous: undefined, current: slice('v4', 'v4-a', [ep('10.244.1.10'), ep('10.244.1.9'), ep('9.1.1.1')]) });
  model.apply({ kind: 'Service', previous: undefined, current: svc('v6', { clusterIP: 'fd00::41' }) });
  model.apply({ kind: 'EndpointSlice', previous: undefined, current: slice('v6', 'v6-a', [ep('fd01::a'), ep('FD01::9'), ep('fd01::1:0')]) });
  model.sync();
  const order = (ip: string): unknown => {
    const r = resolve(model.table(), { source: 'pod', destination: ip, port: 80, protocol: 'TCP' });
    return Array.isArray(r) ? r.map((b) => b.address) : r;
  };
  assert.deepEqual(order('10.96.0.41'), ['9.1.1.1', '10.244.1.9', '10.244.1.10']);
  assert.deepEqual(order('fd00::41'), ['fd01::9', 'fd01::a', 'fd01::1:0']);
});
