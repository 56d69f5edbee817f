// The standalone EndpointSlice controller: conditions from Pod readiness and termination, ports
// resolved per Pod, one address type per slice, at most N endpoints per slice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Node, Pod, Service } from '../../../src/model/k8s.ts';
import { buildEndpointSlices } from '../../../src/sources/manifest/endpointslices.ts';

function pod(
  name: string,
  opts: {
    ip?: string[];
    ready?: boolean;
    node?: string;
    labels?: Record<string, string>;
    deleting?: boolean;
    httpPort?: number;
    phase?: string;
    ns?: string;
  } = {},
): Pod {
  return {
    metadata: {
      name,
      namespace: opts.ns ?? 'default',
      uid: `uid-${name}`,
      labels: opts.labels ?? { app: 'web' },
      ...(opts.deleting ? { deletionTimestamp: '2026-11-22T12:00:00Z' } : {}),
    },
    spec: {
      ...(opts.node ? { nodeName: opts.node } : {}),
      containers: [
        {
          name: 'c',
          ports: [
            { name: 'http', containerPort: opts.httpPort ?? 8080 },
            { name: 'dns', containerPort: 5353, protocol: 'UDP' },
          ],
        },
      ],
    },
    status: {
      ...(opts.phase ? { phase: opts.phase } : {}),
      podIPs: (opts.ip ?? ['10.244.1.11']).map((ip) => ({ ip })),
      conditions: [{ type: 'Ready', status: opts.ready === false ? 'False' : 'True' }],
    },
  };
}

const web: Service = {
  metadata: { name: 'web', namespace: 'default', labels: { tier: 'front' } },
  spec: {
    selector: { app: 'web' },
    clusterIP: '10.96.1.1',
    ipFamilies: ['IPv4'],
    ports: [
      { name: 'http', port: 80, targetPort: 'http' },
      { name: 'dns', port: 53, protocol: 'UDP', targetPort: 'dns' },
      { name: 'admin', port: 9000 },
    ],
  },
};

const nodes = new Map<string, Node>([
  ['node-1', { metadata: { name: 'node-1', labels: { 'topology.kubernetes.io/zone': 'zone-a' } } }],
]);

test('conditions follow readiness and termination; nodeName, zone and targetRef are filled in', () => {
  const slices = buildEndpointSlices(
    web,
    [
      pod('b-ready', { ip: ['10.244.1.12'], node: 'node-1' }),
      pod('a-notready', { ip: ['10.244.1.11'], ready: false, node: 'node-2' }),
      pod('c-terminating', { ip: ['10.244.1.13'], deleting: true }),
      pod('d-terminating-notready', { ip: ['10.244.1.14'], deleting: true, ready: false }),
      pod('other-app', { labels: { app: 'db' } }),
      pod('other-ns', { ns: 'shop' }),
      pod('finished', { phase: 'Succeeded' }),
      pod('no-ip', { ip: [] }),
    ],
    nodes,
  );
  assert.equal(slices.length, 1);
  const s = slices[0]!;
  assert.equal(s.metadata.name, 'web-ipv4-0');
  assert.deepEqual(s.metadata.labels, {
    tier: 'front',
    'kubernetes.io/service-name': 'web',
    'endpointslice.kubernetes.io/managed-by': 'ferry-standalone',
  });
  assert.equal(s.addressType, 'IPv4');
  assert.deepEqual(s.ports, [
    { name: 'http', protocol: 'TCP', port: 8080 },
    { name: 'dns', protocol: 'UDP', port: 5353 },
    { name: 'admin', protocol: 'TCP', port: 9000 },
  ]);
  assert.deepEqual(
    s.endpoints!.map((e) => [e.targetRef!.name, e.addresses[0], e.conditions]),
    [
      ['a-notready', '10.244.1.11', { ready: false, serving: false, terminating: false }],
      ['b-ready', '10.244.1.12', { ready: true, serving: true, terminating: false }],
      ['c-terminating', '10.244.1.13', { ready: false, serving: true, terminating: true }],
      ['d-terminating-notready', '10.244.1.14', { ready: false, serving: false, terminating: true }],
    ],
  );
  const b = s.endpoints![1]!;
  assert.equal(b.nodeName, 'node-1');
  assert.equal(b.zone, 'zone-a');
  assert.deepEqual(b.targetRef, { kind: 'Pod', namespace: 'default', name: 'b-ready', uid: 'uid-b-ready' });
  assert.equal(s.endpoints![0]!.zone, undefined, 'node-2 has no Node object');

  const published = buildEndpointSlices(
    { ...web, spec: { ...web.spec, publishNotReadyAddresses: true } },
    [pod('x', { ready: false })],
    nodes,
  );
  assert.equal(published[0]!.endpoints![0]!.conditions!.ready, true);
});

test('a named targetPort resolving differently per Pod splits the slices, each with its own numbers', () => {
  const slices = buildEndpointSlices(
    web,
    [
      pod('p1', { ip: ['10.244.1.11'], httpPort: 8080 }),
      pod('p2', { ip: ['10.244.1.12'], httpPort: 9090 }),
      pod('p3', { ip: ['10.244.1.13'], httpPort: 8080 }),
    ],
    nodes,
  );
  const view = slices.map((s) => ({
    name: s.metadata.name,
    http: s.ports!.find((p) => p.name === 'http')!.port,
    pods: s.endpoints!.map((e) => e.targetRef!.name),
  }));
  assert.deepEqual(view, [
    { name: 'web-ipv4-0', http: 8080, pods: ['p1', 'p3'] },
    { name: 'web-ipv4-1', http: 9090, pods: ['p2'] },
  ]);

  // A Pod without the named port gets a slice whose port list lacks it, as the controller does.
  const bare: Pod = { ...pod('bare'), spec: { containers: [{ name: 'c' }] } };
  const s2 = buildEndpointSlices(web, [bare], nodes);
  assert.deepEqual(s2[0]!.ports, [{ name: 'admin', protocol: 'TCP', port: 9000 }]);
});

test("dual-stack: one slice per family, each with that family's address; placeholders when empty", () => {
  const dual: Service = {
    ...web,
    spec: { ...web.spec, ipFamilies: ['IPv6', 'IPv4'], clusterIP: 'fd00:10:96::1' },
  };
  const slices = buildEndpointSlices(
    dual,
    [pod('p', { ip: ['10.244.1.11', 'fd00:10:244:1::11'] }), pod('v4only', { ip: ['10.244.1.12'] })],
    nodes,
  );
  assert.deepEqual(
    slices.map((s) => [s.metadata.name, s.addressType, s.endpoints!.map((e) => e.addresses[0])]),
    [
      ['web-ipv6-0', 'IPv6', ['fd00:10:244:1::11']],
      ['web-ipv4-0', 'IPv4', ['10.244.1.11', '10.244.1.12']],
    ],
  );
  const empty = buildEndpointSlices(dual, [], nodes);
  assert.deepEqual(
    empty.map((s) => [s.metadata.name, s.endpoints, s.ports]),
    [
      ['web-ipv6-0', [], []],
      ['web-ipv4-0', [], []],
    ],
  );
  assert.deepEqual(
    buildEndpointSlices({ ...web, spec: { ...web.spec, selector: {} } }, [pod('p')], nodes),
    [],
  );
});

test('at most maxEndpointsPerSlice endpoints per slice (default 100)', () => {
  const pods = Array.from({ length: 205 }, (_, i) =>
    pod(`p${String(i).padStart(3, '0')}`, { ip: [`10.244.${1 + (i >> 8)}.${i & 255}`] }),
  );
  assert.deepEqual(
    buildEndpointSlices(web, pods, nodes).map((s) => s.endpoints!.length),
    [100, 100, 5],
  );
  assert.deepEqual(
    buildEndpointSlices(web, pods.slice(0, 5), nodes, { maxEndpointsPerSlice: 2 }).map(
      (s) => s.metadata.name,
    ),
    ['web-ipv4-0', 'web-ipv4-1', 'web-ipv4-2'],
  );
});

test('trafficDistribution: endpoints hinted for their zone, and for PreferSameNode their node', () => {
  const pods = [
    pod('in-zone', { node: 'node-1' }),
    pod('unknown-node', { ip: ['10.244.2.11'], node: 'node-2' }),
  ];
  const hints = (mode: string | undefined): unknown[] =>
    buildEndpointSlices(
      { ...web, spec: { ...web.spec, ...(mode ? { trafficDistribution: mode } : {}) } },
      pods,
      nodes,
    )[0]!.endpoints!.map((e) => e.hints);
  assert.deepEqual(hints(undefined), [undefined, undefined]);
  assert.deepEqual(hints('PreferClose'), [{ forZones: [{ name: 'zone-a' }] }, undefined]);
  assert.deepEqual(hints('PreferSameNode'), [
    { forZones: [{ name: 'zone-a' }], forNodes: [{ name: 'node-1' }] },
    { forNodes: [{ name: 'node-2' }] },
  ]);
});
