// The reference decision: what upstream NetworkPolicy semantics say about one flow, computed
// straight from the objects with no identities, tables or prefixes. It is the oracle the compiled
// tables are checked against (test/unit/model/policy) and what `explain` can show next to the
// datapath's answer.
//
// Upstream leaves open whether an ipBlock also matches pod IPs (the API docs speak of
// "cluster-external" addresses). Here it does, by address, like a selector-free match on any
// source or destination: the upstream e2e suite ("should allow egress access to server in CIDR
// block", "should enforce except clause while egress access to server in CIDR block") puts the
// server pod's IP in the cidr and in the except, and cyclonus's IPPeerMatcher matches an ipBlock
// against the peer's IP whether or not the peer is a pod (pkg/matcher/ippeermatcher.go).
import type { Direction, NetworkPolicy, PolicyCluster, PolicyPod, PolicyProtocol } from './api.ts';
import { namespaceLabels, podKey, policyKey } from './api.ts';
import {
  hasType,
  ipBlockContains,
  policyNamespace,
  portProtocol,
  portRange,
  rulesOf,
  selectorPeerMatches,
  type RuleView,
} from './peers.ts';
import { matchesSelector } from './selector.ts';
import { canonicalAddress } from './addresses.ts';

export interface Flow {
  readonly src: string; // an address: a pod's IP, a node's, or any other
  readonly dst: string;
  readonly protocol: PolicyProtocol;
  readonly port: number;
}

export interface RuleRef {
  readonly policy: string; // namespace/name
  readonly rule: number; // index into spec.ingress or spec.egress
}

/**
 * One direction's decision. `reason` says why: `no-pod` (that side is not a pod, so it has no
 * policy), `not-isolated`, `self`, `node` (ingress from the pod's own node), `rule` or `denied`.
 */
export interface DirectionDecision {
  readonly allowed: boolean;
  readonly reason: 'no-pod' | 'not-isolated' | 'self' | 'node' | 'rule' | 'denied';
  /** The policies that select the pod for this direction, sorted; empty when not isolated. */
  readonly isolatedBy: readonly string[];
  /** Every (policy, rule) that allows the flow, sorted by policy then rule. */
  readonly allowedBy: readonly RuleRef[];
}

export interface Decision {
  /** The source's egress AND the destination's ingress. */
  readonly allowed: boolean;
  readonly egress: DirectionDecision;
  readonly ingress: DirectionDecision;
}

/**
 * The pod an address belongs to, if any. A node's address is never a pod's: a hostNetwork pod
 * shares it, and NetworkPolicy neither isolates such pods nor selects them as peers.
 */
export function podAt(cluster: PolicyCluster, address: string): PolicyPod | undefined {
  const a = canonicalAddress(address);
  if (cluster.nodes.some((n) => n.addresses.some((x) => canonicalAddress(x) === a))) return undefined;
  return cluster.pods.find((p) => p.ips.some((ip) => canonicalAddress(ip) === a));
}

export function selects(policy: NetworkPolicy, pod: PolicyPod): boolean {
  return policyNamespace(policy) === pod.namespace && matchesSelector(policy.spec.podSelector, pod.labels);
}

function isolating(cluster: PolicyCluster, pod: PolicyPod, direction: Direction): NetworkPolicy[] {
  return cluster.policies.filter((p) => selects(p, pod) && hasType(p, direction));
}

/** Whether one rule allows the flow; `peer` is the other end, `destination` the pod whose ports count. */
function ruleAllows(
  cluster: PolicyCluster,
  policy: NetworkPolicy,
  rule: RuleView,
  peer: { readonly address: string; readonly pod: PolicyPod | undefined },
  destination: PolicyPod | undefined,
  flow: Flow,
): boolean {
  const peerOk =
    !rule.peers?.length ||
    rule.peers.some((p) => {
      if (p.ipBlock) return ipBlockContains(p.ipBlock, peer.address);
      const subject = peer.pod
        ? { pod: peer.pod, namespaceLabels: namespaceLabels(cluster, peer.pod.namespace) }
        : {};
      return selectorPeerMatches(policy, p, subject);
    });
  if (!peerOk) return false;
  if (!rule.ports?.length) return true;
  return rule.ports.some((port) => {
    if (portProtocol(port) !== flow.protocol) return false;
    const range = portRange(port, destination?.ports);
    return range !== undefined && flow.port >= range[0] && flow.port <= range[1];
  });
}

function decideDirection(
  cluster: PolicyCluster,
  direction: Direction,
  endpoint: PolicyPod,
  peer: { readonly address: string; readonly pod: PolicyPod | undefined },
  flow: Flow,
): DirectionDecision {
  const policies = isolating(cluster, endpoint, direction).sort((a, b) => cmp(policyKey(a), policyKey(b)));
  const isolatedBy = policies.map(policyKey);
  if (policies.length === 0) return { allowed: true, reason: 'not-isolated', isolatedBy, allowedBy: [] };
  const destination = direction === 'ingress' ? endpoint : peer.pod;
  const allowedBy: RuleRef[] = [];
  for (const policy of policies) {
    for (const rule of rulesOf(policy, direction)) {
      if (ruleAllows(cluster, policy, rule, peer, destination, flow))
        allowedBy.push({ policy: policyKey(policy), rule: rule.index });
    }
  }
  return {
    allowed: allowedBy.length > 0,
    reason: allowedBy.length > 0 ? 'rule' : 'denied',
    isolatedBy,
    allowedBy,
  };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const NO_POD: DirectionDecision = { allowed: true, reason: 'no-pod', isolatedBy: [], allowedBy: [] };

/** Upstream's decision for one flow, with the policies and rules behind each direction. */
export function evaluate(cluster: PolicyCluster, flow: Flow): Decision {
  const srcPod = podAt(cluster, flow.src);
  const dstPod = podAt(cluster, flow.dst);
  const src = { address: flow.src, pod: srcPod };
  const dst = { address: flow.dst, pod: dstPod };
  if (srcPod && dstPod && podKey(srcPod) === podKey(dstPod)) {
    // A pod can always reach itself (Ferry's rule; upstream e2e and cyclonus leave the diagonal
    // out of their tables with ignoreLoopback).
    const self = (d: Direction): DirectionDecision => ({
      ...decideDirection(cluster, d, srcPod, d === 'egress' ? dst : src, flow),
      allowed: true,
      reason: 'self',
    });
    return { allowed: true, egress: self('egress'), ingress: self('ingress') };
  }
  const egress = srcPod ? decideDirection(cluster, 'egress', srcPod, dst, flow) : NO_POD;
  let ingress = dstPod ? decideDirection(cluster, 'ingress', dstPod, src, flow) : NO_POD;
  if (dstPod && !ingress.allowed && isNodeAddress(cluster, dstPod.node, flow.src)) {
    // Kubelet probes: the pod's own node always reaches it, whatever selects the pod.
    ingress = { ...ingress, allowed: true, reason: 'node' };
  }
  return { allowed: egress.allowed && ingress.allowed, egress, ingress };
}

export function isNodeAddress(cluster: PolicyCluster, node: string, address: string): boolean {
  const a = canonicalAddress(address);
  return cluster.nodes.some((n) => n.name === node && n.addresses.some((x) => canonicalAddress(x) === a));
}
