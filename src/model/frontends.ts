// One Service (plus its slices) → the frontends one node programs. pkg/proxy/servicechangetracker.go
// and serviceport.go decide which addresses a service has; pkg/proxy/iptables/proxier.go syncProxyRules
// decides what each kind of traffic gets (forward, DROP for a Local policy with no local endpoint,
// REJECT when the service has no endpoints at all).
import { canonicalIp, cidrContains, formatCidr, ipFamily, parseCidr, parseIp, type Family } from '../common/ip.ts';
import {
  categorizeEndpoints,
  compareEndpoints,
  endpointsForPort,
  sliceBelongsTo,
  type CategorizedEndpoints,
  type EndpointInfo,
} from './endpoints.ts';
import {
  frontendKey,
  type Backend,
  type Frontend,
  type FrontendAction,
  type FrontendKind,
  type HealthCheck,
  type Scope,
} from './frontend.ts';
import {
  ANNOTATION_LB_ALGORITHM,
  LABEL_HEADLESS,
  LABEL_SERVICE_PROXY_NAME,
  type EndpointSlice,
  type NamespacedName,
  type Protocol,
  type Service,
  type ServicePort,
  type ServiceType,
} from './k8s.ts';

/** What the model needs to know about the node it computes for. */
export interface NodeContext {
  readonly name: string;
  readonly zone?: string;
  /** The node's own addresses (NodePorts listen here unless nodePortAddresses narrows them). */
  readonly addresses: readonly string[];
  /** kube-proxy --nodeport-addresses: CIDRs selecting which node addresses serve NodePorts. */
  readonly nodePortAddresses?: readonly string[];
}

export const DEFAULT_AFFINITY_TIMEOUT_SECONDS = 10800; // core/v1 DefaultClientIPServiceAffinitySeconds

export interface ServiceFrontends {
  readonly frontends: readonly Frontend[];
  readonly healthCheck: HealthCheck | undefined;
  /** Things not programmed and why (e.g. SCTP ports), for logs and status. */
  readonly warnings: readonly string[];
}

export function serviceName(service: Service): string {
  return `${service.metadata.namespace ?? 'default'}/${service.metadata.name}`;
}

/** pkg/proxy/util ShouldSkipService plus the labels kube-proxy's informer filters on. */
export function isProgrammable(service: Service): boolean {
  const labels = service.metadata.labels ?? {};
  if (labels[LABEL_SERVICE_PROXY_NAME] !== undefined || labels[LABEL_HEADLESS] !== undefined) return false;
  if (service.spec.type === 'ExternalName') return false;
  const ips = clusterIPs(service);
  return ips.length > 0;
}

function clusterIPs(service: Service): string[] {
  const list = service.spec.clusterIPs?.length ? service.spec.clusterIPs : service.spec.clusterIP ? [service.spec.clusterIP] : [];
  return list.filter((ip) => ip !== 'None' && ip !== '');
}

function nodePortAddresses(node: NodeContext, family: Family): string[] {
  const own = node.addresses.filter((a) => ipFamily(a) === family).map((a) => canonicalIp(a)!);
  if (!node.nodePortAddresses?.length) return own;
  const cidrs = node.nodePortAddresses.map((c) => parseCidr(c)).filter((c) => c !== undefined);
  return own.filter((a) => cidrs.some((c) => cidrContains(c, parseIp(a)!)));
}

function toBackend(ep: EndpointInfo, protocol: Protocol): Backend {
  // Built field by field: spreading optional fields allocates a temporary per endpoint, and this
  // runs for every endpoint of every service on a full sync.
  const b: { -readonly [K in keyof Backend]: Backend[K] } = {
    address: ep.address,
    port: ep.port,
    protocol,
    state: ep.ready ? 'active' : 'terminating',
    nodeLocal: ep.isLocal,
  };
  if (ep.nodeName !== undefined) b.nodeName = ep.nodeName;
  if (ep.zone !== undefined) b.zone = ep.zone;
  return b;
}

function sortedBackends(eps: readonly EndpointInfo[], protocol: Protocol): Backend[] {
  return [...eps].sort(compareEndpoints).map((ep) => toBackend(ep, protocol));
}

/** What a Service's spec decides for all of its ports (pkg/proxy/serviceport.go). */
interface ServicePolicy {
  readonly name: NamespacedName;
  readonly type: ServiceType;
  readonly internalLocal: boolean;
  readonly externalLocal: boolean;
  readonly externallyAccessible: boolean;
  readonly affinity: number;
  readonly algorithm: Frontend['algorithm'];
  readonly ranges: readonly string[];
}

function policyOf(service: Service): ServicePolicy {
  const spec = service.spec;
  const type = spec.type ?? 'ClusterIP';
  const externallyAccessible = type === 'NodePort' || type === 'LoadBalancer' || (spec.externalIPs?.length ?? 0) > 0;
  return {
    name: serviceName(service),
    type,
    internalLocal: spec.internalTrafficPolicy === 'Local',
    externallyAccessible,
    // eTP only has meaning for externally accessible services (pkg/proxy/serviceport.go ExternalPolicyLocal).
    externalLocal: externallyAccessible && spec.externalTrafficPolicy === 'Local',
    affinity:
      spec.sessionAffinity === 'ClientIP'
        ? (spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? DEFAULT_AFFINITY_TIMEOUT_SECONDS)
        : 0,
    algorithm: service.metadata.annotations?.[ANNOTATION_LB_ALGORITHM] === 'maglev' ? 'maglev' : 'random',
    ranges: canonicalRanges(spec.loadBalancerSourceRanges ?? []),
  };
}

export function computeServiceFrontends(
  service: Service,
  slices: readonly EndpointSlice[],
  node: NodeContext,
): ServiceFrontends {
  if (!isProgrammable(service)) return { frontends: [], healthCheck: undefined, warnings: [] };
  const policy = policyOf(service);
  const own = slices.filter((s) => sliceBelongsTo(s, service.metadata.namespace ?? 'default', service.metadata.name));
  const frontends: Frontend[] = [];
  const warnings: string[] = [];
  // pkg/proxy/endpointschangetracker.go LocalReadyEndpoints: distinct local ready IPs over all ports
  // (a pod behind :80 and :443 counts once); terminating ones never count, so the health check fails
  // on a node left with only terminating endpoints.
  const localReadyIPs = new Set<string>();
  let primaryFamily: Family | undefined;
  for (const clusterIP of clusterIPs(service)) {
    const family = ipFamily(clusterIP);
    if (family === undefined) continue;
    primaryFamily ??= family;
    for (const port of service.spec.ports ?? []) {
      const protocol = port.protocol ?? 'TCP';
      if (protocol === 'SCTP') {
        warnings.push(`${policy.name}: port ${port.name ?? port.port}/SCTP is not programmed (Ferry's datapath serves TCP and UDP)`);
        continue;
      }
      const endpoints = endpointsForPort(own, port, family, node.name);
      const sets = categorizeEndpoints(endpoints, policy, node.name, node.zone);
      if (family === primaryFamily) {
        for (const ep of endpoints) if (ep.isLocal && ep.ready) localReadyIPs.add(ep.address);
      }
      const ctx: PortContext = { policy, port, protocol, family, sets, out: frontends };
      addPortFrontends(ctx, service, canonicalIp(clusterIP)!, node);
    }
  }
  const spec = service.spec;
  const healthCheck =
    policy.type === 'LoadBalancer' && policy.externalLocal && spec.healthCheckNodePort
      ? { service: policy.name, nodePort: spec.healthCheckNodePort, localEndpoints: localReadyIPs.size }
      : undefined;
  return { frontends: dedupe(frontends, warnings), healthCheck, warnings };
}

/** One service port in one family, with its endpoint sets: what every address of it forwards to. */
interface PortContext {
  readonly policy: ServicePolicy;
  readonly port: ServicePort;
  readonly protocol: Protocol;
  readonly family: Family;
  readonly sets: CategorizedEndpoints;
  readonly out: Frontend[];
}

/** The port's frontends at every address it is reachable on: ClusterIP, node ports, externalIPs, LB ingress. */
function addPortFrontends(ctx: PortContext, service: Service, clusterIP: string, node: NodeContext): void {
  const { policy, port, family } = ctx;
  addFrontend(ctx, 'ClusterIP', clusterIP, port.port, 'internal', policy.internalLocal ? ctx.sets.local : ctx.sets.cluster);
  if ((policy.type === 'NodePort' || policy.type === 'LoadBalancer') && port.nodePort) {
    for (const address of nodePortAddresses(node, family)) addExternal(ctx, 'NodePort', address, port.nodePort);
  }
  for (const ip of service.spec.externalIPs ?? []) {
    if (ipFamily(ip) === family) addExternal(ctx, 'ExternalIP', canonicalIp(ip)!, port.port);
  }
  if (policy.type !== 'LoadBalancer') return;
  for (const ingress of service.status?.loadBalancer?.ingress ?? []) {
    // ipMode Proxy: the load balancer proxies to the nodes, so the VIP must not be captured here.
    if (!ingress.ip || ingress.ipMode === 'Proxy' || ipFamily(ingress.ip) !== family) continue;
    addExternal(ctx, 'LoadBalancer', canonicalIp(ingress.ip)!, port.port);
  }
}

/** An externally reachable address: the external scope, and the same address reached from inside. */
function addExternal(ctx: PortContext, kind: FrontendKind, address: string, frontPort: number): void {
  const { sets } = ctx;
  addFrontend(ctx, kind, address, frontPort, 'external', ctx.policy.externalLocal ? sets.local : sets.cluster);
  // Traffic from pods and the node to an external address of an eTP=Local service is
  // short-circuited to the cluster set (proxier.go: "Short-circuit pod traffic to the cluster chain").
  addFrontend(ctx, kind, address, frontPort, 'internal', sets.usesCluster ? sets.cluster : sets.local);
}

function addFrontend(
  ctx: PortContext,
  kind: FrontendKind,
  address: string,
  frontPort: number,
  scope: Scope,
  set: readonly EndpointInfo[],
): void {
  const { policy, protocol } = ctx;
  const action: FrontendAction = !ctx.sets.hasAny ? 'reject' : set.length === 0 ? 'drop' : 'forward';
  ctx.out.push({
    key: frontendKey(address, frontPort, protocol, scope),
    service: policy.name,
    portName: ctx.port.name ?? '',
    kind,
    address,
    port: frontPort,
    protocol,
    scope,
    action,
    backends: action === 'forward' ? sortedBackends(set, protocol) : [],
    affinityTimeoutSeconds: policy.affinity,
    sourceRanges: kind === 'LoadBalancer' ? policy.ranges.filter((r) => ipFamily(r.split('/')[0]!) === ctx.family) : [],
    algorithm: policy.algorithm,
  });
}

function canonicalRanges(ranges: readonly string[]): string[] {
  const out = ranges.map((text) => parseCidr(text.trim())).filter((c) => c !== undefined).map(formatCidr);
  return [...new Set(out)].sort();
}

/** Two ports of one service may claim the same frontend (e.g. the same externalIP twice): first wins. */
function dedupe(frontends: Frontend[], warnings: string[]): Frontend[] {
  const seen = new Map<string, Frontend>();
  for (const f of frontends) {
    if (seen.has(f.key)) {
      if (f.scope === 'internal') warnings.push(`${f.service}: duplicate frontend ${f.address}:${f.port}/${f.protocol} ignored`);
      continue;
    }
    seen.set(f.key, f);
  }
  return [...seen.values()];
}
