// The Kubernetes objects Ferry reads, trimmed to the fields it uses. Shapes follow the API's JSON
// (k8s.io/api core/v1 and discovery/v1), so the same types serve manifests on disk and the API
// server's watch events. Everything is optional where the API allows it to be absent, because
// defaulting is part of kube-proxy's semantics and lives in the model, not in the parser.

export type Protocol = 'TCP' | 'UDP' | 'SCTP';
export type IPFamily = 'IPv4' | 'IPv6';

export interface OwnerReference {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly uid?: string;
  readonly controller?: boolean;
}

export interface ObjectMeta {
  readonly name: string;
  readonly namespace?: string;
  readonly uid?: string;
  readonly resourceVersion?: string;
  readonly generation?: number;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly creationTimestamp?: string;
  readonly deletionTimestamp?: string;
  readonly ownerReferences?: readonly OwnerReference[];
}

// ---- Service (core/v1) ----

export interface ServicePort {
  readonly name?: string;
  readonly protocol?: Protocol; // default TCP
  readonly port: number;
  readonly targetPort?: number | string; // default: port; a string names a container port
  readonly nodePort?: number;
  readonly appProtocol?: string;
}

export type ServiceType = 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';

export interface ServiceSpec {
  readonly type?: ServiceType; // default ClusterIP
  readonly clusterIP?: string; // "None" = headless
  readonly clusterIPs?: readonly string[];
  readonly ipFamilies?: readonly IPFamily[];
  readonly ipFamilyPolicy?: 'SingleStack' | 'PreferDualStack' | 'RequireDualStack';
  readonly ports?: readonly ServicePort[];
  readonly selector?: Readonly<Record<string, string>>;
  readonly externalIPs?: readonly string[];
  readonly externalName?: string;
  readonly loadBalancerIP?: string;
  readonly loadBalancerSourceRanges?: readonly string[];
  readonly externalTrafficPolicy?: 'Cluster' | 'Local'; // default Cluster
  readonly internalTrafficPolicy?: 'Cluster' | 'Local'; // default Cluster
  readonly healthCheckNodePort?: number;
  readonly sessionAffinity?: 'None' | 'ClientIP';
  readonly sessionAffinityConfig?: { readonly clientIP?: { readonly timeoutSeconds?: number } };
  readonly trafficDistribution?: string; // PreferClose | PreferSameZone | PreferSameNode
  readonly publishNotReadyAddresses?: boolean;
  readonly allocateLoadBalancerNodePorts?: boolean;
}

export interface LoadBalancerIngress {
  readonly ip?: string;
  readonly hostname?: string;
  readonly ipMode?: 'VIP' | 'Proxy'; // Proxy: the LB proxies, so the VIP is not programmed
}

export interface Service {
  readonly apiVersion?: string;
  readonly kind?: 'Service';
  readonly metadata: ObjectMeta;
  readonly spec: ServiceSpec;
  readonly status?: { readonly loadBalancer?: { readonly ingress?: readonly LoadBalancerIngress[] } };
}

// ---- EndpointSlice (discovery/v1) ----

export interface EndpointConditions {
  readonly ready?: boolean | null; // nil = true (kube-proxy)
  readonly serving?: boolean | null; // nil = true
  readonly terminating?: boolean | null; // nil = false
}

export interface EndpointHints {
  readonly forZones?: readonly { readonly name: string }[];
  readonly forNodes?: readonly { readonly name: string }[];
}

export interface Endpoint {
  readonly addresses: readonly string[];
  readonly conditions?: EndpointConditions;
  readonly hostname?: string;
  readonly nodeName?: string;
  readonly zone?: string;
  readonly hints?: EndpointHints;
  readonly targetRef?: {
    readonly kind?: string;
    readonly namespace?: string;
    readonly name?: string;
    readonly uid?: string;
  };
}

export interface EndpointPort {
  readonly name?: string;
  readonly protocol?: Protocol;
  readonly port?: number;
  readonly appProtocol?: string;
}

export interface EndpointSlice {
  readonly apiVersion?: string;
  readonly kind?: 'EndpointSlice';
  readonly metadata: ObjectMeta; // labels['kubernetes.io/service-name'] ties it to its Service
  readonly addressType: 'IPv4' | 'IPv6' | 'FQDN';
  readonly endpoints?: readonly Endpoint[];
  readonly ports?: readonly EndpointPort[];
}

// ---- Node (core/v1) ----

export interface NodeAddress {
  readonly type: 'InternalIP' | 'ExternalIP' | 'Hostname' | 'InternalDNS' | 'ExternalDNS';
  readonly address: string;
}

export interface Node {
  readonly apiVersion?: string;
  readonly kind?: 'Node';
  readonly metadata: ObjectMeta; // labels['topology.kubernetes.io/zone'] is the node's zone
  readonly spec?: { readonly podCIDR?: string; readonly podCIDRs?: readonly string[] };
  readonly status?: { readonly addresses?: readonly NodeAddress[] };
}

// ---- Pod (core/v1), for the standalone EndpointSlice builder and the lab kubelet ----

export interface ContainerPort {
  readonly name?: string;
  readonly containerPort: number;
  readonly protocol?: Protocol;
}

export interface Container {
  readonly name: string;
  readonly image?: string;
  readonly command?: readonly string[];
  readonly args?: readonly string[];
  readonly ports?: readonly ContainerPort[];
}

export interface PodCondition {
  readonly type: string; // Ready, ContainersReady, PodScheduled …
  readonly status: 'True' | 'False' | 'Unknown';
}

export interface Pod {
  readonly apiVersion?: string;
  readonly kind?: 'Pod';
  readonly metadata: ObjectMeta;
  readonly spec: {
    readonly nodeName?: string;
    readonly hostNetwork?: boolean;
    readonly containers: readonly Container[];
  };
  readonly status?: {
    readonly phase?: string;
    readonly podIP?: string;
    readonly podIPs?: readonly { readonly ip: string }[];
    readonly conditions?: readonly PodCondition[];
  };
}

export type KubeObject = Service | EndpointSlice | Node | Pod;

/** `namespace/name`, the identity kube-proxy keys services by. */
export type NamespacedName = string;

export const LABEL_SERVICE_NAME = 'kubernetes.io/service-name';
export const LABEL_SERVICE_PROXY_NAME = 'service.kubernetes.io/service-proxy-name';
export const LABEL_HEADLESS = 'service.kubernetes.io/headless';
export const LABEL_ZONE = 'topology.kubernetes.io/zone';
/** Ferry's per-Service choice of backend selection for north-south traffic: `random` | `maglev`. */
export const ANNOTATION_LB_ALGORITHM = 'ferry.dev/lb-algorithm';
