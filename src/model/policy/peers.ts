// What one rule of one policy matches, shared by the reference decision (evaluate.ts) and the
// compiler (compile.ts) so the two cannot read a rule differently: the defaulting of protocol
// and policyTypes, peers (podSelector alone = the policy's namespace; with namespaceSelector =
// both; ipBlock = by address, minus its excepts) and ports (numbers, endPort ranges, names).
import { cidrContains, formatCidr, parseCidr, parseIp } from '../../common/ip.ts';
import type {
  ContainerPort,
  Direction,
  NetworkPolicy,
  NetworkPolicyPeer,
  NetworkPolicyPort,
  PolicyProtocol,
  PolicyType,
} from './api.ts';
import { matchesSelector } from './selector.ts';

/**
 * policyTypes as the API server defaults them (pkg/apis/networking/v1/defaults.go): an empty or
 * missing list means Ingress, plus Egress when spec.egress has at least one rule. `egress: []`
 * therefore does not isolate egress unless policyTypes says so, exactly as upstream.
 */
export function policyTypes(policy: NetworkPolicy): readonly PolicyType[] {
  const given = policy.spec.policyTypes ?? [];
  if (given.length > 0) return given;
  return (policy.spec.egress?.length ?? 0) > 0 ? ['Ingress', 'Egress'] : ['Ingress'];
}

export function hasType(policy: NetworkPolicy, direction: Direction): boolean {
  return policyTypes(policy).includes(direction === 'ingress' ? 'Ingress' : 'Egress');
}

export interface RuleView {
  readonly index: number;
  /** Undefined or empty: every peer, cluster-external addresses included. */
  readonly peers: readonly NetworkPolicyPeer[] | undefined;
  /** Undefined or empty: every port of every protocol. */
  readonly ports: readonly NetworkPolicyPort[] | undefined;
}

/** The rules of a policy in one direction, or none when its policyTypes leave that direction out. */
export function rulesOf(policy: NetworkPolicy, direction: Direction): readonly RuleView[] {
  if (!hasType(policy, direction)) return [];
  if (direction === 'ingress')
    return (policy.spec.ingress ?? []).map((r, index) => ({ index, peers: r.from, ports: r.ports }));
  return (policy.spec.egress ?? []).map((r, index) => ({ index, peers: r.to, ports: r.ports }));
}

export function policyNamespace(policy: NetworkPolicy): string {
  return policy.metadata.namespace ?? 'default';
}

/** A peer endpoint as a selector sees it: a pod's labels and namespace, or none for an address. */
export interface PeerSubject {
  readonly pod?: { readonly namespace: string; readonly labels: Readonly<Record<string, string>> };
  readonly namespaceLabels?: Readonly<Record<string, string>>;
}

/** Whether a selector peer (podSelector and/or namespaceSelector) selects a pod. */
export function selectorPeerMatches(
  policy: NetworkPolicy,
  peer: NetworkPolicyPeer,
  subject: PeerSubject,
): boolean {
  if (!subject.pod) return false;
  if (peer.namespaceSelector) {
    if (!matchesSelector(peer.namespaceSelector, subject.namespaceLabels ?? {})) return false;
  } else if (subject.pod.namespace !== policyNamespace(policy)) {
    return false; // podSelector alone: only the policy's own namespace
  }
  return peer.podSelector ? matchesSelector(peer.podSelector, subject.pod.labels) : true;
}

/** Whether an address is in an ipBlock: inside cidr and outside every except. */
export function ipBlockContains(block: NonNullable<NetworkPolicyPeer['ipBlock']>, address: string): boolean {
  const ip = parseIp(address);
  const cidr = parseCidr(block.cidr);
  if (!ip || !cidr || !cidrContains(cidr, ip)) return false;
  return !(block.except ?? []).some((e) => {
    const except = parseCidr(e);
    return except !== undefined && cidrContains(except, ip);
  });
}

/**
 * The same question for an identity, which knows the ipBlock prefixes holding its addresses
 * (identity.ts): in the block's cidr and in none of its excepts.
 */
export function ipBlockMatchesPrefixes(
  block: NonNullable<NetworkPolicyPeer['ipBlock']>,
  prefixes: ReadonlySet<string>,
): boolean {
  const canonical = (text: string): string | undefined => {
    const cidr = parseCidr(text);
    return cidr ? formatCidr(cidr) : undefined;
  };
  const cidr = canonical(block.cidr);
  if (cidr === undefined || !prefixes.has(cidr)) return false;
  return !(block.except ?? []).some((e) => {
    const except = canonical(e);
    return except !== undefined && prefixes.has(except);
  });
}

export function portProtocol(port: NetworkPolicyPort): PolicyProtocol {
  return port.protocol ?? 'TCP';
}

/**
 * The number a named port has on the destination pod: the container port of that name and of the
 * policy port's protocol. Each pod resolves it itself, so one policy can mean 80 on one pod and
 * 8080 on another; no such port (or no pod) matches nothing.
 */
export function resolveNamedPort(
  ports: readonly ContainerPort[] | undefined,
  name: string,
  protocol: PolicyProtocol,
): number | undefined {
  return ports?.find((p) => p.name === name && (p.protocol ?? 'TCP') === protocol)?.containerPort;
}

/** The port range a policy port allows on a destination, or undefined when it allows nothing there. */
export function portRange(
  port: NetworkPolicyPort,
  destinationPorts: readonly ContainerPort[] | undefined,
): readonly [number, number] | undefined {
  if (port.port === undefined) return [0, 65535];
  if (typeof port.port === 'string') {
    const n = resolveNamedPort(destinationPorts, port.port, portProtocol(port));
    return n === undefined ? undefined : [n, n];
  }
  return [port.port, port.endPort ?? port.port];
}
