// The compiled tables against the reference decision, for random clusters: for every pair of
// pods (and a few node and outside addresses), on several protocols and ports, lookup() over
// each node's tables gives evaluate()'s verdict, and every rule a table entry credits is one
// evaluate() also names. This is what lets the BPF code be checked against lookup() alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type {
  LabelSelector,
  NetworkPolicy,
  NetworkPolicyPeer,
  NetworkPolicyPort,
  PolicyCluster,
  PolicyPod,
  PolicyProtocol,
} from '../../../../src/model/policy/api.ts';
import { validateNetworkPolicy } from '../../../../src/model/policy/validate.ts';
import { evaluate, podAt, type DirectionDecision } from '../../../../src/model/policy/evaluate.ts';
import {
  compileNode,
  newCompileState,
  NODE_POLICY_ID,
  type CompileState,
  type NodePolicy,
} from '../../../../src/model/policy/compile.ts';
import { lookup, type DirectionLookup } from '../../../../src/model/policy/lookup.ts';

const NS = ['x', 'y', 'z'];
const label = fc.record({
  app: fc.constantFrom('a', 'b', undefined),
  tier: fc.constantFrom('f', 'g', undefined),
});
const labels = label.map(
  (l) => Object.fromEntries(Object.entries(l).filter(([, v]) => v !== undefined)) as Record<string, string>,
);

const selector: fc.Arbitrary<LabelSelector> = fc.record(
  {
    matchLabels: labels,
    matchExpressions: fc.array(
      fc.oneof(
        fc.record({
          key: fc.constantFrom('app', 'tier', 'ns'),
          operator: fc.constantFrom('In' as const, 'NotIn' as const),
          values: fc.uniqueArray(fc.constantFrom('a', 'b', 'f', 'x', 'y'), { minLength: 1, maxLength: 2 }),
        }),
        fc.record({
          key: fc.constantFrom('app', 'tier', 'ns', 'kubernetes.io/metadata.name'),
          operator: fc.constantFrom('Exists' as const, 'DoesNotExist' as const),
        }),
      ),
      { maxLength: 2 },
    ),
  },
  { requiredKeys: [] },
);

const CIDRS: Record<string, string[]> = {
  '10.0.0.0/16': ['10.0.0.0/24', '10.0.1.0/28', '10.0.0.4/30'],
  '10.0.0.0/24': ['10.0.0.0/28', '10.0.0.4/30', '10.0.0.3/32'],
  '10.0.1.0/24': ['10.0.1.0/29', '10.0.1.5/32'],
  '172.30.0.0/16': ['172.30.0.1/32'],
  '0.0.0.0/0': ['10.0.0.0/8', '10.0.0.0/24', '192.0.2.0/25'],
  '192.0.2.0/24': ['192.0.2.0/26'],
  'fd00::/64': ['fd00::/126', 'fd00::8/125'],
  '::/0': ['fd00::/64', 'fd30::1/128'],
};
const ipBlock = fc
  .constantFrom(...Object.keys(CIDRS))
  .chain((cidr) =>
    fc.record({ cidr: fc.constant(cidr), except: fc.subarray(CIDRS[cidr]!) }, { requiredKeys: ['cidr'] }),
  );

const peer: fc.Arbitrary<NetworkPolicyPeer> = fc.oneof(
  fc.record({ podSelector: selector }),
  fc.record({ namespaceSelector: selector }),
  fc.record({ podSelector: selector, namespaceSelector: selector }),
  fc.record({ ipBlock }),
);

const policyPort: fc.Arbitrary<NetworkPolicyPort> = fc.oneof(
  fc.record({ protocol: fc.constantFrom<PolicyProtocol>('TCP', 'UDP', 'SCTP') }, { requiredKeys: [] }),
  fc.record(
    { protocol: fc.constantFrom<PolicyProtocol>('TCP', 'UDP'), port: fc.constantFrom(53, 80, 81, 8080) },
    { requiredKeys: ['port'] },
  ),
  fc.record({ port: fc.constantFrom(50, 80), endPort: fc.constantFrom(81, 90, 8080) }),
  fc.record(
    { protocol: fc.constantFrom<PolicyProtocol>('TCP', 'UDP'), port: fc.constantFrom('web', 'dns') },
    { requiredKeys: ['port'] },
  ),
);

const ports = fc.option(fc.array(policyPort, { maxLength: 2 }), { nil: undefined });
const peers = fc.option(fc.array(peer, { maxLength: 2 }), { nil: undefined });

const policy: fc.Arbitrary<NetworkPolicy> = fc
  .record({
    ns: fc.constantFrom(...NS),
    podSelector: selector,
    policyTypes: fc.constantFrom(
      undefined,
      ['Ingress' as const],
      ['Egress' as const],
      ['Ingress' as const, 'Egress' as const],
    ),
    ingress: fc.option(fc.array(fc.record({ from: peers, ports }), { maxLength: 2 }), { nil: undefined }),
    egress: fc.option(fc.array(fc.record({ to: peers, ports }), { maxLength: 2 }), { nil: undefined }),
  })
  .map(({ ns, podSelector, policyTypes, ingress, egress }) => ({
    metadata: { namespace: ns, name: 'p' },
    spec: { podSelector, policyTypes, ingress, egress },
  }));

const containerPorts = fc.subarray([
  { name: 'web', containerPort: 80 },
  { name: 'web', containerPort: 8080, protocol: 'UDP' as const },
  { name: 'dns', containerPort: 53, protocol: 'UDP' as const },
  { name: 'dns', containerPort: 53 },
  { name: 'alt', containerPort: 81 },
]);
const webElsewhere = [{ name: 'web', containerPort: 8080 }];

const cluster: fc.Arbitrary<PolicyCluster> = fc
  .record({
    pods: fc.uniqueArray(
      fc.record({
        ns: fc.constantFrom(...NS),
        labels,
        ip: fc.constantFrom(
          ...[
            '10.0.0.1',
            '10.0.0.3',
            '10.0.0.5',
            '10.0.0.200',
            '10.0.1.5',
            '10.0.1.9',
            '10.0.2.1',
            '192.0.2.3',
            '172.30.0.1', // a hostNetwork pod: the address stays node-1's
          ],
        ),
        node: fc.constantFrom('node-1', 'node-2'),
        v6: fc.boolean(),
        ports: fc.oneof(containerPorts, fc.constant(webElsewhere)),
      }),
      { minLength: 1, maxLength: 7, selector: (p) => p.ip },
    ),
    namespaces: fc
      .subarray(NS)
      .chain((names) =>
        fc.tuple(...names.map((name) => labels.map((l) => ({ name, labels: { ...l, ns: name } })))),
      ),
    policies: fc.array(policy, { maxLength: 4 }),
  })
  .map(({ pods, namespaces, policies }) => ({
    pods: pods.map((p, i): PolicyPod => ({
      namespace: p.ns,
      name: `pod-${i}`,
      labels: p.labels,
      ips: [p.ip],
      node: p.node,
      ports: p.ports,
    })),
    namespaces,
    nodes: [
      { name: 'node-1', addresses: ['172.30.0.1', 'fd30::1'] },
      { name: 'node-2', addresses: ['172.30.0.2', 'fd30::2'] },
    ],
    // Distinct names, and only what the API server would have admitted.
    policies: policies
      .map((p, i) => ({ ...p, metadata: { ...p.metadata, name: `p${i}` } }))
      .filter((p) => validateNetworkPolicy(p).length === 0),
  }));

const OUTSIDE = [
  '172.30.0.1',
  '172.30.0.2',
  '192.0.2.5',
  '10.0.0.2',
  '203.0.113.9',
  'fd30::1',
  'fd30::2',
  'fd00::9',
  'fd01::1',
];
const FLOWS: [PolicyProtocol, number][] = [
  ['TCP', 53],
  ['UDP', 53],
  ['TCP', 80],
  ['TCP', 81],
  ['UDP', 8080],
  ['TCP', 8080],
  ['SCTP', 80],
  ['TCP', 85],
];

/** A table's credit must be one of the rules evaluate() names for that direction. */
function assertCredit(
  compiled: NodePolicy,
  got: DirectionLookup,
  expected: DirectionDecision,
  what: string,
): void {
  if (got.reason !== 'entry' || !got.entry || got.entry.policy === NODE_POLICY_ID) return;
  const name = [...compiled.policyIds].find(([, id]) => id === got.entry!.policy)?.[0];
  assert.ok(
    expected.allowedBy.some((r) => r.policy === name && r.rule === got.entry!.rule),
    `${what}: table credits ${name} rule ${got.entry.rule}, evaluate names ${JSON.stringify(expected.allowedBy)}`,
  );
}

function checkCluster(c: PolicyCluster, states = new Map<string, CompileState>()): void {
  const stateOf = (node: string): CompileState => {
    const state = states.get(node) ?? newCompileState();
    states.set(node, state);
    return state;
  };
  const nodes = new Map(c.nodes.map((n) => [n.name, compileNode(c, n.name, stateOf(n.name))]));
  const addresses = [...c.pods.flatMap((p) => p.ips), ...OUTSIDE];
  const nodeOf = (a: string): NodePolicy | undefined => {
    const pod = podAt(c, a);
    return pod ? nodes.get(pod.node) : undefined;
  };
  for (const src of addresses) {
    for (const dst of addresses.filter((d) => d.includes(':') === src.includes(':'))) {
      for (const [protocol, port] of FLOWS) {
        const what = `${src} → ${dst} ${protocol}/${port}`;
        const expected = evaluate(c, { src, dst, protocol, port });
        const at = (n: NodePolicy | undefined) =>
          n ? lookup(n, n.lpm, src, dst, protocol, port) : undefined;
        const fromSrc = at(nodeOf(src));
        const fromDst = at(nodeOf(dst));
        const egress = fromSrc?.egress ?? { allowed: true, reason: 'remote', isolatedBy: [] };
        const ingress = fromDst?.ingress ?? { allowed: true, reason: 'remote', isolatedBy: [] };
        assert.equal(egress.allowed, expected.egress.allowed, `egress ${what}`);
        assert.equal(ingress.allowed, expected.ingress.allowed, `ingress ${what}`);
        assert.equal(
          egress.isolatedBy.length,
          expected.egress.reason === 'self' ? 0 : expected.egress.isolatedBy.length,
          `egress isolation ${what}`,
        );
        if (fromSrc) assertCredit(nodeOf(src)!, egress, expected.egress, `egress ${what}`);
        if (fromDst) assertCredit(nodeOf(dst)!, ingress, expected.ingress, `ingress ${what}`);
      }
    }
  }
}

test('lookup() over the compiled tables decides every flow as evaluate() does', () => {
  fc.assert(
    fc.property(cluster, (c) => checkCluster(c)),
    { numRuns: 200 },
  );
});

test('after any earlier compile (numbers carried over), the next compile still decides as evaluate() does', () => {
  fc.assert(
    fc.property(cluster, cluster, (before, after) => {
      const states = new Map<string, CompileState>();
      checkCluster(before, states);
      checkCluster(after, states);
    }),
    { numRuns: 60 },
  );
});

test('the generator reaches the cases that matter: isolation, ipBlocks over pod IPs, named ports, denials', () => {
  const seen = { isolated: 0, denied: 0, allowedByRule: 0, ipBlockPodMatch: 0 };
  fc.assert(
    fc.property(cluster, (c) => {
      for (const a of c.pods) {
        for (const b of c.pods) {
          const d = evaluate(c, { src: a.ips[0]!, dst: b.ips[0]!, protocol: 'TCP', port: 80 });
          if (d.ingress.isolatedBy.length > 0) seen.isolated++;
          if (!d.allowed) seen.denied++;
          if (d.ingress.reason === 'rule') seen.allowedByRule++;
          if (
            d.ingress.allowedBy.some((r) =>
              c.policies
                .find((p) => `${p.metadata.namespace}/${p.metadata.name}` === r.policy)
                ?.spec.ingress?.[r.rule]?.from?.some((f) => f.ipBlock),
            )
          )
            seen.ipBlockPodMatch++;
        }
      }
    }),
    { numRuns: 200, seed: 1 },
  );
  for (const [k, v] of Object.entries(seen)) assert.ok(v > 0, `no generated flow was ${k}`);
});
