// The per-node frontend table: what one node's datapath must hold. The model computes it from
// Services, EndpointSlices and the node itself; the datapath only encodes it. Everything a BPF
// program needs to decide is already resolved here (policies, topology, readiness), so the C code
// never re-implements kube-proxy's rules.
import type { NamespacedName, Protocol } from './k8s.ts';

export type FrontendKind = 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalIP';

/**
 * Who the entry serves. `internal`: traffic from pods and the node itself (the socket layer looks
 * up only these). `external`: traffic arriving from outside the node (tc/XDP look up only these).
 * ClusterIP frontends are internal only; NodePort, LoadBalancer and ExternalIP frontends appear in
 * both scopes, since eTP=Local restricts only the external one (pkg/proxy: traffic from pods to an
 * external address of an eTP=Local service still goes to cluster endpoints).
 */
export type Scope = 'internal' | 'external';

/**
 * `forward`: pick a backend. `reject`: the service has no endpoints at all → refuse (ECONNREFUSED
 * at the socket layer, RST / ICMP unreachable on the packet path), as kube-proxy's REJECT rules.
 * `drop`: endpoints exist but the traffic policy leaves none for this node/scope (kube-proxy drops).
 */
export type FrontendAction = 'forward' | 'reject' | 'drop';

export type BackendState = 'active' | 'terminating';

export interface Backend {
  readonly address: string; // canonical IP text (IPv6 compressed, lower case)
  readonly port: number;
  readonly protocol: Protocol;
  /** `terminating` backends keep existing flows (conntrack) but the model only lists them when used as fallback. */
  readonly state: BackendState;
  readonly nodeName?: string;
  readonly zone?: string;
  /** On the node this table is computed for. */
  readonly nodeLocal: boolean;
}

export interface Frontend {
  /** Unique within a node's table: `${address}|${port}|${protocol}|${scope}`; see frontendKey(). */
  readonly key: string;
  readonly service: NamespacedName;
  readonly portName: string; // '' for an unnamed port
  readonly kind: FrontendKind;
  readonly address: string; // canonical IP text
  readonly port: number;
  readonly protocol: Protocol;
  readonly scope: Scope;
  readonly action: FrontendAction;
  /** Ordered deterministically (by address, then port); empty unless action is `forward`. */
  readonly backends: readonly Backend[];
  /** sessionAffinity ClientIP timeout in seconds; 0 = no affinity. */
  readonly affinityTimeoutSeconds: number;
  /** loadBalancerSourceRanges as canonical CIDRs; only on LoadBalancer frontends; empty = allow all. */
  readonly sourceRanges: readonly string[];
  readonly algorithm: 'random' | 'maglev';
}

export interface HealthCheck {
  readonly service: NamespacedName;
  readonly nodePort: number;
  /** Ready endpoints on this node; the health server answers 200 when > 0, else 503. */
  readonly localEndpoints: number;
}

export interface FrontendTable {
  readonly frontends: ReadonlyMap<string, Frontend>;
  /** healthCheckNodePort listeners for eTP=Local LoadBalancer services. */
  readonly healthChecks: ReadonlyMap<NamespacedName, HealthCheck>;
}

/** The minimal change that takes a datapath from one table to another, grouped for atomic publishing. */
export interface FrontendDiff {
  /** New frontends and frontends whose backends, action or parameters changed. */
  readonly upsert: readonly Frontend[];
  /** Frontends that no longer exist. */
  readonly remove: readonly Frontend[];
}

export function frontendKey(address: string, port: number, protocol: Protocol, scope: Scope): string {
  return `${address}|${port}|${protocol}|${scope}`;
}
