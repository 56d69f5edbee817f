// The upstream e2e model (test/e2e/network/netpol): namespaces x, y, z, pods a, b, c in each,
// labelled pod=<name>, serving 80 and 81 on TCP and UDP; here spread over two nodes. A helper
// asks both the reference decision and the compiled tables, so every scenario checks both.
import assert from 'node:assert/strict';
import type {
  NetworkPolicy,
  NetworkPolicySpec,
  PolicyCluster,
  PolicyPod,
  PolicyProtocol,
} from '../../../../src/model/policy/api.ts';
import { evaluate, podAt } from '../../../../src/model/policy/evaluate.ts';
import { compileNode, newCompileState, type NodePolicy } from '../../../../src/model/policy/compile.ts';
import { lookupAcross } from '../../../../src/model/policy/lookup.ts';

export const NAMESPACES = ['x', 'y', 'z'] as const;
export const PODS = ['a', 'b', 'c'] as const;

export function pod(ns: string, name: string, extra: Partial<PolicyPod> = {}): PolicyPod {
  const n = NAMESPACES.indexOf(ns as 'x') + 1;
  const p = PODS.indexOf(name as 'a') + 1;
  return {
    namespace: ns,
    name,
    labels: { pod: name },
    ips: [`10.244.${n}.${p}`],
    node: p === 1 ? 'node-1' : 'node-2',
    ports: [
      { name: 'serve-80-tcp', containerPort: 80 },
      { name: 'serve-81-tcp', containerPort: 81 },
      { name: 'serve-80-udp', containerPort: 80, protocol: 'UDP' },
      { name: 'serve-81-udp', containerPort: 81, protocol: 'UDP' },
    ],
    ...extra,
  };
}

export function policy(ns: string, name: string, spec: NetworkPolicySpec): NetworkPolicy {
  return { metadata: { namespace: ns, name }, spec };
}

export function e2eCluster(policies: NetworkPolicy[], overrides: Partial<PolicyCluster> = {}): PolicyCluster {
  return {
    pods: NAMESPACES.flatMap((ns) => PODS.map((p) => pod(ns, p))),
    namespaces: NAMESPACES.map((ns) => ({ name: ns, labels: { ns } })),
    nodes: [
      { name: 'node-1', addresses: ['172.30.0.1'] },
      { name: 'node-2', addresses: ['172.30.0.2'] },
    ],
    policies,
    ...overrides,
  };
}

export function ipOf(cluster: PolicyCluster, key: string): string {
  const found = cluster.pods.find((p) => `${p.namespace}/${p.name}` === key);
  return found?.ips[0] ?? key; // not a pod: the key is an address
}

export function compileAll(cluster: PolicyCluster): Map<string, NodePolicy> {
  return new Map(cluster.nodes.map((n) => [n.name, compileNode(cluster, n.name, newCompileState())]));
}

/** Reference and compiled verdicts for one flow; they must agree, and the reference's is returned. */
export function verdict(
  cluster: PolicyCluster,
  compiled: Map<string, NodePolicy>,
  from: string,
  to: string,
  port: number,
  protocol: PolicyProtocol = 'TCP',
): boolean {
  const src = ipOf(cluster, from);
  const dst = ipOf(cluster, to);
  const reference = evaluate(cluster, { src, dst, protocol, port }).allowed;
  const nodeOf = (a: string): string | undefined => podAt(cluster, a)?.node;
  const tables = lookupAcross(compiled, nodeOf, src, dst, protocol, port);
  assert.equal(
    tables,
    reference,
    `compiled tables and reference disagree on ${from} → ${to} ${protocol}/${port}`,
  );
  return reference;
}

/** The truth table on one port: `from → to` pairs that are allowed, every pair of the nine pods. */
export function allowedPairs(
  cluster: PolicyCluster,
  port: number,
  protocol: PolicyProtocol = 'TCP',
): string[] {
  const compiled = compileAll(cluster);
  const keys = cluster.pods.map((p) => `${p.namespace}/${p.name}`);
  const out: string[] = [];
  for (const from of keys)
    for (const to of keys)
      if (from !== to && verdict(cluster, compiled, from, to, port, protocol)) out.push(`${from}→${to}`);
  return out;
}

/** Every ordered pair of distinct pods, except the ones listed (as `from→to`). */
export function allPairsExcept(
  cluster: PolicyCluster,
  denied: (from: string, to: string) => boolean,
): string[] {
  const keys = cluster.pods.map((p) => `${p.namespace}/${p.name}`);
  return keys.flatMap((from) =>
    keys.filter((to) => to !== from && !denied(from, to)).map((to) => `${from}→${to}`),
  );
}
