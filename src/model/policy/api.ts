// The NetworkPolicy API (networking.k8s.io/v1) and the few Pod and Namespace fields policy needs,
// shaped like the API's JSON so manifests and watch events share them. Fields the API server
// defaults (protocol TCP, policyTypes) stay optional here: defaulting is semantics, and lives in
// evaluate.ts, so that a policy read from a file means what the same policy means in a cluster.

export type PolicyProtocol = 'TCP' | 'UDP' | 'SCTP';
export type PolicyType = 'Ingress' | 'Egress';
export type Direction = 'ingress' | 'egress';

export const PROTOCOLS: readonly PolicyProtocol[] = ['TCP', 'UDP', 'SCTP'];

/** The immutable label every namespace carries, whether or not a Namespace object exists. */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

export interface LabelSelectorRequirement {
  readonly key: string;
  readonly operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  readonly values?: readonly string[];
}

/** meta/v1 LabelSelector: every matchLabels pair AND every expression; `{}` selects everything. */
export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: readonly LabelSelectorRequirement[];
}

export interface IPBlock {
  readonly cidr: string;
  readonly except?: readonly string[];
}

/** One peer: podSelector and namespaceSelector together mean both; ipBlock stands alone. */
export interface NetworkPolicyPeer {
  readonly podSelector?: LabelSelector;
  readonly namespaceSelector?: LabelSelector;
  readonly ipBlock?: IPBlock;
}

export interface NetworkPolicyPort {
  readonly protocol?: PolicyProtocol; // default TCP
  readonly port?: number | string; // absent: every port; a string names a container port
  readonly endPort?: number; // with a numeric port: the range [port, endPort]
}

export interface NetworkPolicyIngressRule {
  readonly ports?: readonly NetworkPolicyPort[];
  readonly from?: readonly NetworkPolicyPeer[];
}

export interface NetworkPolicyEgressRule {
  readonly ports?: readonly NetworkPolicyPort[];
  readonly to?: readonly NetworkPolicyPeer[];
}

export interface NetworkPolicySpec {
  readonly podSelector: LabelSelector;
  readonly policyTypes?: readonly PolicyType[];
  readonly ingress?: readonly NetworkPolicyIngressRule[];
  readonly egress?: readonly NetworkPolicyEgressRule[];
}

export interface NetworkPolicy {
  readonly apiVersion?: string;
  readonly kind?: 'NetworkPolicy';
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly uid?: string;
    readonly resourceVersion?: string;
  };
  readonly spec: NetworkPolicySpec;
}

export interface ContainerPort {
  readonly name?: string;
  readonly protocol?: PolicyProtocol; // default TCP
  readonly containerPort: number;
}

/** A Pod as policy sees it: identity (labels, namespace), addresses, node, named ports. */
export interface PolicyPod {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly ips: readonly string[];
  readonly node: string;
  readonly ports: readonly ContainerPort[];
}

export interface PolicyNamespace {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface PolicyNode {
  readonly name: string;
  readonly addresses: readonly string[];
}

/** Everything a decision depends on. A namespace with pods but no object still has its name label. */
export interface PolicyCluster {
  readonly pods: readonly PolicyPod[];
  readonly namespaces: readonly PolicyNamespace[];
  readonly nodes: readonly PolicyNode[];
  readonly policies: readonly NetworkPolicy[];
}

export function policyKey(policy: NetworkPolicy): string {
  return `${policy.metadata.namespace ?? 'default'}/${policy.metadata.name}`;
}

export function podKey(pod: PolicyPod): string {
  return `${pod.namespace}/${pod.name}`;
}

/** The labels a namespace is selected by: its own, plus the immutable name label. */
export function namespaceLabels(
  cluster: Pick<PolicyCluster, 'namespaces'>,
  name: string,
): Readonly<Record<string, string>> {
  const ns = cluster.namespaces.find((n) => n.name === name);
  return { ...(ns?.labels ?? {}), [NAMESPACE_NAME_LABEL]: name };
}
