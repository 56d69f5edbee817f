// What NetworkPolicy keeps of the cluster's objects: a Pod becomes a PolicyPod (labels, addresses,
// node, named container ports), a Namespace its labels, a Node its addresses, a NetworkPolicy its
// name and spec. Both sources project at their boundary, so the agent holds these few fields per
// pod cluster-wide instead of whole Pod objects (managedFields, status, container specs …).
import { canonicalIp } from '../common/ip.ts';
import type { ObjectMeta, Node, Pod } from './k8s.ts';
import type { ContainerPort, NetworkPolicy, PolicyNamespace, PolicyNode, PolicyPod } from './policy/api.ts';

/** core/v1 Namespace, as far as policy reads it. */
export interface Namespace {
  readonly apiVersion?: string;
  readonly kind?: 'Namespace';
  readonly metadata: ObjectMeta;
}

/** A pod in a terminal phase has no address of its own any more: its IP may already be another pod's. */
const TERMINAL_PHASES = new Set(['Succeeded', 'Failed']);

function canonicalIps(ips: Iterable<string>): string[] {
  const out = new Set<string>();
  for (const ip of ips) {
    const c = canonicalIp(ip);
    if (c !== undefined) out.add(c);
  }
  return [...out];
}

/** The pod's own addresses: podIPs, else the older single podIP; none for hostNetwork or finished pods. */
function podAddresses(pod: Pod): string[] {
  // A hostNetwork pod's address is its node's; policy sees that address as the node (host), never as the pod.
  if (pod.spec?.hostNetwork) return [];
  const status = pod.status;
  if (!status || TERMINAL_PHASES.has(status.phase ?? '')) return [];
  const listed = status.podIPs?.map((p) => p.ip) ?? [];
  return canonicalIps(listed.length > 0 ? listed : status.podIP ? [status.podIP] : []);
}

/** Only named ports matter to policy (a numeric policy port needs no container port to match). */
function namedPorts(pod: Pod): ContainerPort[] {
  const out: ContainerPort[] = [];
  for (const c of pod.spec?.containers ?? [])
    for (const p of c.ports ?? [])
      if (p.name) out.push({ name: p.name, containerPort: p.containerPort, ...(p.protocol ? { protocol: p.protocol } : {}) });
  return out;
}

export function policyPodOf(pod: Pod): PolicyPod {
  return {
    namespace: pod.metadata.namespace ?? 'default',
    name: pod.metadata.name,
    labels: { ...(pod.metadata.labels ?? {}) },
    ips: podAddresses(pod),
    node: pod.spec?.nodeName ?? '',
    ports: namedPorts(pod),
  };
}

export function policyNamespaceOf(namespace: Namespace): PolicyNamespace {
  return { name: namespace.metadata.name, labels: { ...(namespace.metadata.labels ?? {}) } };
}

/** The node's IP addresses (InternalIP and ExternalIP): traffic from them is the node's own (kubelet probes). */
export function policyNodeOf(node: Node): PolicyNode {
  const ips = (node.status?.addresses ?? []).filter((a) => a.type === 'InternalIP' || a.type === 'ExternalIP').map((a) => a.address);
  return { name: node.metadata.name, addresses: canonicalIps(ips) };
}

/** The policy without what the API server adds for itself (managedFields, annotations, status). */
export function slimPolicyOf(policy: NetworkPolicy): NetworkPolicy {
  const m = policy.metadata;
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: {
      name: m.name,
      namespace: m.namespace ?? 'default',
      ...(m.uid !== undefined ? { uid: m.uid } : {}),
      ...(m.resourceVersion !== undefined ? { resourceVersion: m.resourceVersion } : {}),
    },
    spec: policy.spec,
  };
}
