// The upstream e2e NetworkPolicy scenarios (test/e2e/network/netpol/network_policy.go) that the
// pure model can state: each is a truth table over the nine pods of fixtures.ts, checked against
// the reference decision and, inside verdict(), against the compiled tables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allPairsExcept, allowedPairs, compileAll, e2eCluster, pod, policy, verdict } from './fixtures.ts';
import { evaluate } from '../../../../src/model/policy/evaluate.ts';
import { compileNode, newCompileState, NODE_POLICY_ID } from '../../../../src/model/policy/compile.ts';
import { lookup } from '../../../../src/model/policy/lookup.ts';

const ns = (key: string): string => key.split('/')[0]!;

test('default deny ingress: nothing reaches x from anywhere, everything else flows', () => {
  const c = e2eCluster([policy('x', 'deny', { podSelector: {}, policyTypes: ['Ingress'] })]);
  assert.deepEqual(
    allowedPairs(c, 80),
    allPairsExcept(c, (_f, t) => ns(t) === 'x'),
  );
});

test('default deny egress: x reaches nothing, and nothing else changes', () => {
  const c = e2eCluster([policy('x', 'deny', { podSelector: {}, policyTypes: ['Egress'] })]);
  assert.deepEqual(
    allowedPairs(c, 80, 'UDP'),
    allPairsExcept(c, (f) => ns(f) === 'x'),
  );
});

test('allow from the same namespace: podSelector {} alone means the policy namespace', () => {
  const c = e2eCluster([
    policy('x', 'same', { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] }),
  ]);
  assert.deepEqual(
    allowedPairs(c, 81),
    allPairsExcept(c, (f, t) => ns(t) === 'x' && ns(f) !== 'x'),
  );
});

test('namespace selector: only pods of namespaces labelled ns=y reach x/a', () => {
  const c = e2eCluster([
    policy('x', 'from-y', {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }],
    }),
  ]);
  assert.deepEqual(
    allowedPairs(c, 80),
    allPairsExcept(c, (f, t) => t === 'x/a' && ns(f) !== 'y'),
  );
});

test('namespace by its default name label, with no Namespace object at all', () => {
  const c = e2eCluster(
    [
      policy('x', 'from-z', {
        podSelector: { matchLabels: { pod: 'a' } },
        ingress: [
          {
            from: [
              {
                namespaceSelector: {
                  matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['z'] }],
                },
              },
            ],
          },
        ],
      }),
    ],
    { namespaces: [] },
  );
  assert.deepEqual(
    allowedPairs(c, 80),
    allPairsExcept(c, (f, t) => t === 'x/a' && ns(f) !== 'z'),
  );
});

test('podSelector and namespaceSelector in one peer are ANDed; in two peers, ORed', () => {
  const and = e2eCluster([
    policy('x', 'and', {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [
        {
          from: [
            { namespaceSelector: { matchLabels: { ns: 'y' } }, podSelector: { matchLabels: { pod: 'b' } } },
          ],
        },
      ],
    }),
  ]);
  assert.deepEqual(
    allowedPairs(and, 80),
    allPairsExcept(and, (f, t) => t === 'x/a' && f !== 'y/b'),
  );
  const or = e2eCluster([
    policy('x', 'or', {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [
        {
          from: [
            { namespaceSelector: { matchLabels: { ns: 'y' } } },
            { podSelector: { matchLabels: { pod: 'b' } } },
          ],
        },
      ],
    }),
  ]);
  assert.deepEqual(
    allowedPairs(or, 80),
    allPairsExcept(or, (f, t) => t === 'x/a' && ns(f) !== 'y' && f !== 'x/b'),
  );
});

test('matchExpressions NotIn and DoesNotExist select by absence', () => {
  const base = e2eCluster([
    policy('x', 'expr', {
      podSelector: { matchExpressions: [{ key: 'pod', operator: 'NotIn', values: ['a', 'b'] }] },
      ingress: [
        {
          from: [
            {
              podSelector: { matchExpressions: [{ key: 'team', operator: 'DoesNotExist' }] },
              namespaceSelector: {},
            },
          ],
        },
      ],
    }),
  ]);
  const c = {
    ...base,
    pods: base.pods.map((p) =>
      p.namespace === 'y' && p.name === 'a' ? pod('y', 'a', { labels: { pod: 'a', team: 'red' } }) : p,
    ),
  };
  assert.deepEqual(
    allowedPairs(c, 80),
    allPairsExcept(c, (f, t) => t === 'x/c' && f === 'y/a'),
  );
});

test('egress ipBlock with except, over pod IPs: x/a reaches y/a and y/c but not y/b', () => {
  const c = e2eCluster([
    policy('x', 'cidr', {
      podSelector: { matchLabels: { pod: 'a' } },
      policyTypes: ['Egress'],
      egress: [{ to: [{ ipBlock: { cidr: '10.244.2.0/24', except: ['10.244.2.2/32'] } }] }],
    }),
  ]);
  assert.deepEqual(
    allowedPairs(c, 80),
    allPairsExcept(c, (f, t) => f === 'x/a' && (ns(t) !== 'y' || t === 'y/b')),
  );
});

test('ingress ipBlock with except, from addresses outside the cluster', () => {
  const c = e2eCluster([
    policy('x', 'ext', {
      podSelector: {},
      ingress: [{ from: [{ ipBlock: { cidr: '192.0.2.0/24', except: ['192.0.2.128/25'] } }] }],
    }),
  ]);
  const compiled = compileAll(c);
  assert.equal(verdict(c, compiled, '192.0.2.7', 'x/b', 80), true);
  assert.equal(verdict(c, compiled, '192.0.2.200', 'x/b', 80), false);
  assert.equal(verdict(c, compiled, '198.51.100.1', 'x/b', 80), false);
  assert.equal(verdict(c, compiled, 'y/a', 'x/b', 80), false);
  assert.equal(verdict(c, compiled, '192.0.2.200', 'y/b', 80), true, 'y is not isolated');
});

test('named ports resolve against each destination pod: one policy, 80 on one pod and 8080 on another', () => {
  const web = (n: number) => [{ name: 'web', containerPort: n }];
  const policies = [
    policy('y', 'web', { podSelector: {}, ingress: [{ ports: [{ port: 'web' }] }] }),
    policy('z', 'out', { podSelector: {}, policyTypes: ['Egress'], egress: [{ ports: [{ port: 'web' }] }] }),
  ];
  const pods = [
    pod('y', 'a', { ports: web(80) }),
    pod('y', 'b', { ports: web(8080) }),
    pod('z', 'a', { labels: { pod: 'same' }, ports: web(80) }),
    pod('z', 'b', { labels: { pod: 'same' }, ports: web(8080) }),
    pod('x', 'a'),
  ];
  const c = e2eCluster(policies, { pods });
  const k = compileAll(c);
  assert.deepEqual(
    [80, 8080].map((port) => verdict(c, k, 'x/a', 'y/a', port)),
    [true, false],
  );
  assert.deepEqual(
    [80, 8080].map((port) => verdict(c, k, 'x/a', 'y/b', port)),
    [false, true],
  );
  assert.equal(verdict(c, k, 'x/a', 'y/a', 80, 'UDP'), false, 'the name is web/TCP');
  // Egress: z/a and z/b have the same labels yet number "web" differently, and so do their peers.
  assert.deepEqual(
    [80, 8080].map((port) => verdict(c, k, 'z/a', 'y/a', port)),
    [true, false],
  );
  assert.deepEqual(
    [80, 8080].map((port) => verdict(c, k, 'z/a', 'y/b', port)),
    [false, true],
  );
  assert.deepEqual(
    [80, 8080].map((port) => verdict(c, k, 'z/b', 'z/a', port)),
    [true, false],
  );
  assert.equal(verdict(c, k, 'z/a', '192.0.2.1', 80), false, 'an address has no named ports');
});

test('endPort: ports 80-85 TCP are allowed, 79, 86 and UDP are not', () => {
  const c = e2eCluster([
    policy('x', 'range', {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [{ ports: [{ port: 80, endPort: 85 }] }],
    }),
  ]);
  const k = compileAll(c);
  const got = [79, 80, 81, 84, 85, 86].map((port) => verdict(c, k, 'y/b', 'x/a', port));
  assert.deepEqual(got, [false, true, true, true, true, false]);
  assert.equal(verdict(c, k, 'y/b', 'x/a', 80, 'UDP'), false);
});

test('egress with a DNS-style rule: port 53 to anything, port 80 only to namespace y', () => {
  const c = e2eCluster([
    policy('x', 'dns', {
      podSelector: {},
      policyTypes: ['Egress'],
      egress: [
        { ports: [{ port: 53, protocol: 'UDP' }, { port: 53 }] },
        { to: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }], ports: [{ port: 80 }] },
      ],
    }),
  ]);
  const k = compileAll(c);
  assert.equal(
    verdict(c, k, 'x/a', '10.96.0.10', 53, 'UDP'),
    true,
    'the cluster DNS address, outside every pod',
  );
  assert.equal(verdict(c, k, 'x/a', '8.8.8.8', 53, 'TCP'), true);
  assert.equal(verdict(c, k, 'x/a', '8.8.8.8', 80), false);
  assert.equal(verdict(c, k, 'x/a', 'z/b', 53, 'UDP'), true);
  assert.equal(verdict(c, k, 'x/a', 'y/c', 80), true);
  assert.equal(verdict(c, k, 'x/a', 'z/c', 80), false);
  assert.equal(verdict(c, k, 'x/a', 'y/c', 80, 'UDP'), false);
});

test('several policies add up, in no order: each allows its own peers and ports', () => {
  const c = e2eCluster([
    policy('x', 'from-y-80', {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }], ports: [{ port: 80 }] }],
    }),
    policy('x', 'from-z-81', {
      podSelector: {},
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'z' } } }], ports: [{ port: 81 }] }],
    }),
  ]);
  const k = compileAll(c);
  assert.deepEqual(
    ['y/a', 'z/a'].map((f) => [80, 81].map((p) => verdict(c, k, f, 'x/a', p))),
    [
      [true, false],
      [false, true],
    ],
  );
  assert.deepEqual(
    ['y/a', 'z/a'].map((f) => [80, 81].map((p) => verdict(c, k, f, 'x/b', p))),
    [
      [false, false],
      [false, true],
    ],
  );
  const d = evaluate(c, { src: '10.244.3.1', dst: '10.244.1.1', protocol: 'TCP', port: 81 });
  assert.deepEqual(d.ingress.isolatedBy, ['x/from-y-80', 'x/from-z-81']);
  assert.deepEqual(d.ingress.allowedBy, [{ policy: 'x/from-z-81', rule: 0 }]);
});

test('policyTypes defaulting: egress rules imply Egress, egress: [] does not, an absent type ignores its rules', () => {
  const implied = e2eCluster([
    policy('x', 'p', {
      podSelector: { matchLabels: { pod: 'a' } },
      egress: [{ to: [{ podSelector: { matchLabels: { pod: 'b' } } }] }],
    }),
  ]);
  // Ingress is isolated too (always implied), with no ingress rules: x/a accepts nothing.
  assert.deepEqual(
    allowedPairs(implied, 80),
    allPairsExcept(implied, (f, t) => t === 'x/a' || (f === 'x/a' && t !== 'x/b')),
  );
  const emptyEgress = e2eCluster([
    policy('x', 'p', { podSelector: { matchLabels: { pod: 'a' } }, egress: [] }),
  ]);
  assert.deepEqual(
    allowedPairs(emptyEgress, 80),
    allPairsExcept(emptyEgress, (_f, t) => t === 'x/a'),
  );
  const egressOnly = e2eCluster([
    policy('x', 'p', {
      podSelector: { matchLabels: { pod: 'a' } },
      policyTypes: ['Egress'],
      ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'zzz' } } }] }],
    }),
  ]);
  assert.deepEqual(
    allowedPairs(egressOnly, 80),
    allPairsExcept(egressOnly, (f) => f === 'x/a'),
  );
});

test("the pod's own node always reaches it; another node does not; a pod always reaches itself", () => {
  const c = e2eCluster([policy('x', 'deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] })]);
  const k = compileAll(c);
  assert.equal(verdict(c, k, '172.30.0.1', 'x/a', 80), true, 'x/a runs on node-1');
  assert.equal(verdict(c, k, '172.30.0.2', 'x/a', 80), false);
  assert.equal(verdict(c, k, 'x/a', 'x/a', 80), true);
  assert.equal(
    evaluate(c, { src: '172.30.0.1', dst: '10.244.1.1', protocol: 'TCP', port: 80 }).ingress.reason,
    'node',
  );
});

test('compiled tables name the policy and rule that allowed; a pod no policy selects has no table', () => {
  const c = e2eCluster([
    policy('x', 'web', {
      podSelector: { matchLabels: { pod: 'a' } },
      ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'zzz' } } }] }, { ports: [{ port: 80 }] }],
    }),
  ]);
  const n = compileNode(c, 'node-1', newCompileState());
  assert.deepEqual([...n.tables.keys()], ['x/a'], 'y/a and z/a share node-1 but are not isolated');
  const r = lookup(n, n.lpm, '10.244.2.2', '10.244.1.1', 'TCP', 80);
  assert.equal(r.ingress.entry?.policy, n.policyIds.get('x/web'));
  assert.equal(r.ingress.entry?.rule, 1);
  const probe = lookup(n, n.lpm, '172.30.0.1', '10.244.1.1', 'TCP', 9999);
  assert.equal(probe.ingress.entry?.policy, NODE_POLICY_ID);
  assert.equal(lookup(n, n.lpm, '10.244.1.2', '10.244.1.1', 'TCP', 81).ingress.reason, 'denied');
});

test('egress to an ipBlock on a named port: the prefix and the destination pod’s number must both match', () => {
  // Found by the property test: the rule is keyed by the destination's CIDR identity, which must
  // therefore carry the pod's named ports as well as its prefixes.
  const web = (n: number) => [{ name: 'web', containerPort: n }];
  const pods = [
    pod('x', 'a', { ips: ['10.0.0.1'], ports: web(8080) }),
    pod('x', 'b', { ips: ['10.0.0.200'], ports: web(8080) }),
    pod('x', 'c', { ips: ['10.1.0.1'], ports: web(8080) }),
  ];
  const c = e2eCluster(
    [
      policy('x', 'out', {
        podSelector: {},
        policyTypes: ['Egress'],
        egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/16' } }], ports: [{ port: 'web' }] }],
      }),
    ],
    { pods },
  );
  const k = compileAll(c);
  assert.deepEqual(
    [8080, 80].map((port) => verdict(c, k, 'x/a', 'x/b', port)),
    [true, false],
  );
  assert.equal(verdict(c, k, 'x/a', 'x/c', 8080), false, 'outside the block');
  assert.equal(verdict(c, k, 'x/a', '10.0.0.9', 8080), false, 'inside the block but no pod: no named port');
});

test('relabelling a pod or a namespace moves it in or out of isolation and of a peer set', () => {
  const p = policy('x', 'guard', {
    podSelector: { matchLabels: { guarded: 'yes' } },
    ingress: [{ from: [{ namespaceSelector: { matchLabels: { trusted: 'yes' } } }] }],
  });
  const base = e2eCluster([p]);
  const relabel = (ns: string, name: string, labels: Record<string, string>) =>
    base.pods.map((q) => (q.namespace === ns && q.name === name ? { ...q, labels } : q));
  const guarded = { ...base, pods: relabel('x', 'a', { pod: 'a', guarded: 'yes' }) };
  const trusted = {
    ...guarded,
    namespaces: guarded.namespaces.map((n) =>
      n.name === 'y' ? { ...n, labels: { ...n.labels, trusted: 'yes' } } : n,
    ),
  };
  const from = (c: typeof base) => verdict(c, compileAll(c), 'y/b', 'x/a', 80);
  assert.deepEqual([from(base), from(guarded), from(trusted)], [true, false, true]);
  const released = {
    ...trusted,
    pods: trusted.pods.map((q) =>
      q.namespace === 'x' && q.name === 'a' ? { ...q, labels: { pod: 'a' } } : q,
    ),
  };
  assert.equal(
    verdict(released, compileAll(released), 'z/b', 'x/a', 80),
    true,
    'no longer selected: no longer isolated',
  );
});

test('a hostNetwork pod shares its node’s address: that address stays the node’s, neither isolated nor a selected peer', () => {
  const host = pod('x', 'c', { name: 'agent', ips: ['172.30.0.1'], labels: { pod: 'a' }, node: 'node-1' });
  const c = e2eCluster(
    [
      policy('x', 'deny', {
        podSelector: {},
        ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'a' } } }] }],
      }),
    ],
    {},
  );
  const withHost = { ...c, pods: [...c.pods, host] };
  const k = compileAll(withHost);
  assert.equal(verdict(withHost, k, '172.30.0.1', 'x/a', 80), true, 'the node itself (x/a is on node-1)');
  assert.equal(
    verdict(withHost, k, '172.30.0.1', 'x/b', 80),
    false,
    'x/b is on node-2, and pod=a on the address does not count',
  );
  assert.equal(verdict(withHost, k, 'x/b', '172.30.0.1', 80), true, 'nothing isolates the node');
});
