// Validation of the objects Ferry programs. The API server validates in a cluster, but the
// standalone source reads hand-written YAML, and a bad object must cost only itself: each problem
// becomes an InvalidObjectError naming the object and the field, and the object is not programmed.
import type { InvalidObjectError } from '../common/errors.ts';
import { Problems } from './problems.ts';
import { ipFamily, parseCidr } from '../common/ip.ts';
import type { EndpointSlice, Node, Service, ServicePort } from './k8s.ts';

const PROTOCOLS = new Set(['TCP', 'UDP', 'SCTP']);
const TYPES = new Set(['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName']);
const POLICIES = new Set(['Cluster', 'Local']);
// RFC 1123 label, as the API server requires for port names and object names.
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function isPort(value: unknown): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535;
}

function checkMeta(p: Problems, meta: { name?: unknown; namespace?: unknown } | undefined, namespaced: boolean): void {
  if (!meta || typeof meta.name !== 'string' || meta.name === '') p.add('metadata.name', 'required');
  else if (meta.name.length > 253 || !SUBDOMAIN.test(meta.name)) p.add('metadata.name', `"${meta.name}" is not a valid DNS subdomain`);
  if (namespaced && meta?.namespace !== undefined && (typeof meta.namespace !== 'string' || !DNS_LABEL.test(meta.namespace))) {
    p.add('metadata.namespace', `"${String(meta.namespace)}" is not a valid DNS label`);
  }
}

export function describeService(service: Service): string {
  return `Service ${service.metadata?.namespace ?? 'default'}/${service.metadata?.name ?? '?'}`;
}

/** Cluster settings validation needs; the API server's own flags, which Ferry may be told. */
export interface ServiceValidationOptions {
  /**
   * kube-apiserver --service-node-port-range (default there 30000-32767). Unset: only 1-65535 is
   * checked, since a Ferry agent in a cluster does not know the range and the API server enforced it.
   */
  readonly nodePortRange?: { readonly min: number; readonly max: number };
}

// Label keys: optional DNS-subdomain prefix and "/", then a name of up to 63 characters.
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

function isLabelKey(key: string): boolean {
  const slash = key.lastIndexOf('/');
  const name = slash < 0 ? key : key.slice(slash + 1);
  const prefix = slash < 0 ? undefined : key.slice(0, slash);
  if (prefix !== undefined && (prefix.length > 253 || !SUBDOMAIN.test(prefix))) return false;
  return name.length <= 63 && LABEL_NAME.test(name);
}

function isLabelValue(value: string): boolean {
  return value === '' || (value.length <= 63 && LABEL_NAME.test(value));
}

type ServiceSpecOf = Service['spec'];
type NodePortRange = ServiceValidationOptions['nodePortRange'];

export function validateService(service: Service, options: ServiceValidationOptions = {}): InvalidObjectError[] {
  const p = new Problems(describeService(service));
  checkMeta(p, service.metadata, true);
  const spec = service.spec;
  if (!spec || typeof spec !== 'object') {
    p.add('spec', 'required');
    return p.list;
  }
  const type = spec.type ?? 'ClusterIP';
  if (!TYPES.has(type)) p.add('spec.type', `unsupported value "${type}"`);
  if (type === 'ExternalName') {
    if (!spec.externalName) p.add('spec.externalName', 'required for type ExternalName');
    return p.list;
  }
  const headless = checkClusterIPs(p, spec);
  const nodePorts = checkPorts(p, spec, headless, options.nodePortRange);
  checkSelector(p, spec);
  checkExternalAddresses(p, spec);
  checkPolicies(p, spec);
  checkHealthCheckNodePort(p, spec, nodePorts, options.nodePortRange);
  checkIngress(p, service);
  return p.list;
}

/** One address per family, clusterIP agreeing with clusterIPs; returns whether the service is headless. */
function checkClusterIPs(p: Problems, spec: ServiceSpecOf): boolean {
  const ips = spec.clusterIPs ?? (spec.clusterIP !== undefined ? [spec.clusterIP] : []);
  const headless = ips[0] === 'None';
  const families = new Set<number>();
  ips.forEach((ip, i) => {
    if (ip === 'None' && i === 0 && ips.length === 1) return;
    const family = ipFamily(ip);
    if (family === undefined) p.add(`spec.clusterIPs[${i}]`, `"${ip}" is not a valid IP address`);
    else if (families.has(family)) p.add(`spec.clusterIPs[${i}]`, `a second IPv${family} address is not allowed`);
    else families.add(family);
  });
  if (spec.clusterIP !== undefined && spec.clusterIPs?.length && spec.clusterIP !== spec.clusterIPs[0]) {
    p.add('spec.clusterIP', 'must equal spec.clusterIPs[0]');
  }
  if (!headless && ips.length === 0) p.add('spec.clusterIPs', 'required (no address was allocated)');
  return headless;
}

/** Why a node port is refused by the configured range, if it is. */
function outsideRange(port: number, range: NodePortRange): string | undefined {
  if (range === undefined || (port >= range.min && port <= range.max)) return undefined;
  return `${port} is outside the node port range ${range.min}-${range.max}`;
}

/** The port list; returns the `nodePort/protocol` pairs taken, for the health check's own port. */
function checkPorts(p: Problems, spec: ServiceSpecOf, headless: boolean, range: NodePortRange): Set<string> {
  const ports = spec.ports ?? [];
  if (!Array.isArray(ports)) p.add('spec.ports', 'must be a list');
  if (!headless && Array.isArray(ports) && ports.length === 0) p.add('spec.ports', 'required');
  const seen = { names: new Set<string>(), frontPorts: new Set<string>(), nodePorts: new Set<string>() };
  const list = Array.isArray(ports) ? ports : [];
  list.forEach((port, i) => checkPort(p, port, `spec.ports[${i}]`, list.length, spec.type ?? 'ClusterIP', range, seen));
  return seen.nodePorts;
}

function checkPort(
  p: Problems,
  port: ServicePort,
  f: string,
  portCount: number,
  type: string,
  range: NodePortRange,
  seen: { readonly names: Set<string>; readonly frontPorts: Set<string>; readonly nodePorts: Set<string> },
): void {
  const protocol = port.protocol ?? 'TCP';
  if (!PROTOCOLS.has(protocol)) p.add(`${f}.protocol`, `unsupported value "${protocol}" (TCP, UDP or SCTP)`);
  if (!isPort(port.port)) p.add(`${f}.port`, `${String(port.port)} is not a port (1-65535)`);
  if (portCount > 1 && !port.name) p.add(`${f}.name`, 'required when a service has several ports');
  if (port.name !== undefined) {
    if (!DNS_LABEL.test(port.name) || port.name.length > 63) p.add(`${f}.name`, `"${port.name}" is not a valid DNS label`);
    if (seen.names.has(port.name)) p.add(`${f}.name`, `duplicate port name "${port.name}"`);
    seen.names.add(port.name);
  }
  const front = `${port.port}/${protocol}`;
  if (seen.frontPorts.has(front)) p.add(`${f}.port`, `duplicate port ${front}`);
  seen.frontPorts.add(front);
  const target = port.targetPort;
  if (typeof target === 'number' && !isPort(target)) p.add(`${f}.targetPort`, `${target} is not a port (1-65535)`);
  if (typeof target === 'string' && (!/^[a-z0-9-]{1,15}$/.test(target) || !/[a-z]/.test(target))) {
    p.add(`${f}.targetPort`, `"${target}" is not a valid port name (IANA_SVC_NAME)`);
  }
  if (port.nodePort === undefined) return;
  const outside = isPort(port.nodePort) ? outsideRange(port.nodePort, range) : undefined;
  if (type === 'ClusterIP') p.add(`${f}.nodePort`, 'may not be set for type ClusterIP');
  else if (!isPort(port.nodePort)) p.add(`${f}.nodePort`, `${String(port.nodePort)} is not a port (1-65535)`);
  else if (outside) p.add(`${f}.nodePort`, outside);
  else {
    // The API server refuses one nodePort twice for a protocol (pkg/apis/core/validation).
    const key = `${port.nodePort}/${protocol}`;
    if (seen.nodePorts.has(key)) p.add(`${f}.nodePort`, `duplicate nodePort ${key}`);
    seen.nodePorts.add(key);
  }
}

function checkSelector(p: Problems, spec: ServiceSpecOf): void {
  if (spec.selector === undefined) return;
  if (typeof spec.selector !== 'object' || spec.selector === null || Array.isArray(spec.selector)) {
    p.add('spec.selector', 'must be a map of labels');
    return;
  }
  for (const [k, v] of Object.entries(spec.selector)) {
    if (!isLabelKey(k)) p.add(`spec.selector.${k}`, `"${k}" is not a valid label key`);
    else if (typeof v !== 'string') p.add(`spec.selector.${k}`, 'must be a string');
    else if (!isLabelValue(v)) p.add(`spec.selector.${k}`, `"${v}" is not a valid label value`);
  }
}

function checkExternalAddresses(p: Problems, spec: ServiceSpecOf): void {
  (spec.externalIPs ?? []).forEach((ip, i) => {
    if (ipFamily(ip) === undefined) p.add(`spec.externalIPs[${i}]`, `"${ip}" is not a valid IP address`);
  });
  if ((spec.loadBalancerSourceRanges?.length ?? 0) > 0 && (spec.type ?? 'ClusterIP') !== 'LoadBalancer') {
    p.add('spec.loadBalancerSourceRanges', 'may only be used when type is LoadBalancer');
  }
  (spec.loadBalancerSourceRanges ?? []).forEach((cidr, i) => {
    if (!parseCidr(String(cidr).trim())) p.add(`spec.loadBalancerSourceRanges[${i}]`, `"${cidr}" is not a valid CIDR`);
  });
}

/** Traffic policies and session affinity. */
function checkPolicies(p: Problems, spec: ServiceSpecOf): void {
  for (const field of ['externalTrafficPolicy', 'internalTrafficPolicy'] as const) {
    const v = spec[field];
    if (v !== undefined && !POLICIES.has(v)) p.add(`spec.${field}`, `unsupported value "${v}" (Cluster or Local)`);
  }
  if (spec.sessionAffinity !== undefined && spec.sessionAffinity !== 'None' && spec.sessionAffinity !== 'ClientIP') {
    p.add('spec.sessionAffinity', `unsupported value "${spec.sessionAffinity}" (None or ClientIP)`);
  }
  const timeout = spec.sessionAffinityConfig?.clientIP?.timeoutSeconds;
  if (timeout === undefined) return;
  if (spec.sessionAffinity !== 'ClientIP') p.add('spec.sessionAffinityConfig', 'only allowed with sessionAffinity ClientIP');
  if (!Number.isInteger(timeout) || timeout < 1 || timeout > 86400) {
    p.add('spec.sessionAffinityConfig.clientIP.timeoutSeconds', `${timeout} is not within 1-86400`);
  }
}

function checkHealthCheckNodePort(p: Problems, spec: ServiceSpecOf, nodePorts: Set<string>, range: NodePortRange): void {
  const port = spec.healthCheckNodePort;
  if (port === undefined) return;
  const outside = isPort(port) ? outsideRange(port, range) : undefined;
  if ((spec.type ?? 'ClusterIP') !== 'LoadBalancer' || spec.externalTrafficPolicy !== 'Local') {
    p.add('spec.healthCheckNodePort', 'may only be set when type is LoadBalancer and externalTrafficPolicy is Local');
  } else if (!isPort(port)) {
    p.add('spec.healthCheckNodePort', `${port} is not a port (1-65535)`);
  } else if (outside) {
    p.add('spec.healthCheckNodePort', outside);
  } else if ([...nodePorts].some((k) => k.startsWith(`${port}/`))) {
    p.add('spec.healthCheckNodePort', `${port} is already a nodePort of this service`);
  }
}

function checkIngress(p: Problems, service: Service): void {
  (service.status?.loadBalancer?.ingress ?? []).forEach((ingress, i) => {
    if (ingress.ip !== undefined && ipFamily(ingress.ip) === undefined) {
      p.add(`status.loadBalancer.ingress[${i}].ip`, `"${ingress.ip}" is not a valid IP address`);
    }
    if (ingress.ipMode !== undefined && ingress.ipMode !== 'VIP' && ingress.ipMode !== 'Proxy') {
      p.add(`status.loadBalancer.ingress[${i}].ipMode`, `unsupported value "${ingress.ipMode}" (VIP or Proxy)`);
    }
  });
}

export function validateEndpointSlice(slice: EndpointSlice): InvalidObjectError[] {
  const p = new Problems(`EndpointSlice ${slice.metadata?.namespace ?? 'default'}/${slice.metadata?.name ?? '?'}`);
  checkMeta(p, slice.metadata, true);
  if (!['IPv4', 'IPv6', 'FQDN'].includes(slice.addressType)) p.add('addressType', `unsupported value "${slice.addressType}"`);
  (slice.ports ?? []).forEach((port, i) => {
    if (port.port !== undefined && !isPort(port.port)) p.add(`ports[${i}].port`, `${port.port} is not a port (1-65535)`);
    if (port.protocol !== undefined && !PROTOCOLS.has(port.protocol)) p.add(`ports[${i}].protocol`, `unsupported value "${port.protocol}"`);
  });
  if (slice.addressType === 'FQDN') return p.list;
  const family = slice.addressType === 'IPv4' ? 4 : 6;
  (slice.endpoints ?? []).forEach((ep, i) => {
    if (!Array.isArray(ep.addresses) || ep.addresses.length === 0) {
      p.add(`endpoints[${i}].addresses`, 'at least one address is required');
      return;
    }
    ep.addresses.forEach((a, j) => {
      if (ipFamily(a) !== family) p.add(`endpoints[${i}].addresses[${j}]`, `"${a}" is not an ${slice.addressType} address`);
    });
  });
  return p.list;
}

export function validateNode(node: Node): InvalidObjectError[] {
  const p = new Problems(`Node ${node.metadata?.name ?? '?'}`);
  checkMeta(p, node.metadata, false);
  (node.status?.addresses ?? []).forEach((a, i) => {
    if ((a.type === 'InternalIP' || a.type === 'ExternalIP') && ipFamily(a.address) === undefined) {
      p.add(`status.addresses[${i}].address`, `"${a.address}" is not a valid IP address`);
    }
  });
  (node.spec?.podCIDRs ?? []).forEach((c, i) => {
    if (!parseCidr(c)) p.add(`spec.podCIDRs[${i}]`, `"${c}" is not a valid CIDR`);
  });
  return p.list;
}
