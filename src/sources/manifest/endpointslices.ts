// What the EndpointSlice controller would write for a Service with a selector, computed from the
// Pods and Nodes in the manifest directory. Pure. Follows the controller's rules: one address type
// per slice, at most 100 endpoints each; ports resolved per Pod (a named targetPort can mean a
// different number in each Pod, and endpoints only share a slice when their ports agree); ready
// only when the Pod is Ready and not terminating (or the Service publishes not-ready addresses);
// serving is the Pod's Ready condition alone, so a terminating Pod can keep serving while it drains.
import { ipFamily } from '../../common/ip.ts';
import {
  LABEL_HEADLESS,
  LABEL_SERVICE_NAME,
  LABEL_ZONE,
  type Endpoint,
  type EndpointHints,
  type EndpointPort,
  type EndpointSlice,
  type IPFamily,
  type Node,
  type Pod,
  type Service,
  type ServicePort,
} from '../../model/k8s.ts';

export const LABEL_MANAGED_BY = 'endpointslice.kubernetes.io/managed-by';
export const MANAGED_BY_STANDALONE = 'ferry-standalone';
export const MAX_ENDPOINTS_PER_SLICE = 100;

/** Whether a slice is one this builder generated (the source replaces those, never user slices). */
export function isGeneratedSlice(slice: EndpointSlice): boolean {
  return slice.metadata.labels?.[LABEL_MANAGED_BY] === MANAGED_BY_STANDALONE;
}

export function selectorMatches(
  selector: Readonly<Record<string, string>>,
  labels: Readonly<Record<string, string>> | undefined,
): boolean {
  for (const [k, v] of Object.entries(selector)) if (labels?.[k] !== v) return false;
  return true;
}

/** Whether the controller manages slices for this Service at all. */
export function hasSelector(service: Service): boolean {
  return (
    (service.spec.type ?? 'ClusterIP') !== 'ExternalName' &&
    service.spec.selector !== undefined &&
    Object.keys(service.spec.selector).length > 0
  );
}

function isPodReady(pod: Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

function podIps(pod: Pod): string[] {
  const ips = pod.status?.podIPs?.map((p) => p.ip) ?? [];
  return ips.length > 0 ? ips : pod.status?.podIP ? [pod.status.podIP] : [];
}

/** The Pod's port number for a Service port, as the controller's FindPort does; undefined if none. */
export function resolveTargetPort(pod: Pod, port: ServicePort): number | undefined {
  const target = port.targetPort ?? port.port;
  if (typeof target === 'number') return target;
  const protocol = port.protocol ?? 'TCP';
  for (const c of pod.spec.containers)
    for (const cp of c.ports ?? [])
      if (cp.name === target && (cp.protocol ?? 'TCP') === protocol) return cp.containerPort;
  return undefined;
}

function endpointPorts(service: Service, pod: Pod): EndpointPort[] {
  const out: EndpointPort[] = [];
  for (const p of service.spec.ports ?? []) {
    const port = resolveTargetPort(pod, p);
    if (port === undefined) continue; // the controller leaves the port out for this Pod
    out.push({
      name: p.name ?? '',
      protocol: p.protocol ?? 'TCP',
      port,
      ...(p.appProtocol !== undefined ? { appProtocol: p.appProtocol } : {}),
    });
  }
  return out;
}

function addressTypes(service: Service): IPFamily[] {
  if (service.spec.ipFamilies && service.spec.ipFamilies.length > 0) return [...service.spec.ipFamilies];
  const fam = service.spec.clusterIP ? ipFamily(service.spec.clusterIP) : undefined;
  return [fam === 6 ? 'IPv6' : 'IPv4'];
}

function sliceLabels(service: Service): Record<string, string> {
  const labels: Record<string, string> = { ...service.metadata.labels };
  labels[LABEL_SERVICE_NAME] = service.metadata.name;
  labels[LABEL_MANAGED_BY] = MANAGED_BY_STANDALONE;
  if (service.spec.clusterIP === 'None') labels[LABEL_HEADLESS] = '';
  else delete labels[LABEL_HEADLESS];
  return labels;
}

/**
 * The hints the controller writes for `spec.trafficDistribution`: each endpoint is hinted for its
 * own zone (PreferClose, PreferSameZone), and for PreferSameNode also for its own node. An
 * endpoint whose zone or node is unknown gets no hint of that kind; what kube-proxy does with a
 * partly hinted slice is the model's business.
 */
function trafficHints(
  service: Service,
  zone: string | undefined,
  node: string | undefined,
): EndpointHints | undefined {
  const mode = service.spec.trafficDistribution;
  if (mode !== 'PreferClose' && mode !== 'PreferSameZone' && mode !== 'PreferSameNode') return undefined;
  const forZones = zone !== undefined ? [{ name: zone }] : undefined;
  const forNodes = mode === 'PreferSameNode' && node ? [{ name: node }] : undefined;
  if (!forZones && !forNodes) return undefined;
  return { ...(forZones ? { forZones } : {}), ...(forNodes ? { forNodes } : {}) };
}

export interface BuildOptions {
  readonly maxEndpointsPerSlice?: number;
}

/** Endpoints of one family that share a port list, each with the Pod it came from (for ordering). */
interface EndpointGroup {
  readonly ports: EndpointPort[];
  readonly endpoints: { readonly pod: string; readonly endpoint: Endpoint }[];
}

/** family → port signature → group */
type Groups = Map<IPFamily, Map<string, EndpointGroup>>;

/**
 * The slices for one Service. `pods` may hold any Pods (they are filtered by namespace and
 * selector here); `nodes` by name gives endpoints their zone.
 */
export function buildEndpointSlices(
  service: Service,
  pods: Iterable<Pod>,
  nodes: ReadonlyMap<string, Node>,
  options: BuildOptions = {},
): EndpointSlice[] {
  if (!hasSelector(service)) return [];
  const families = addressTypes(service);
  const groups: Groups = new Map(families.map((f) => [f, new Map()]));
  for (const pod of pods) if (selects(service, pod)) addPod(groups, service, pod, nodes);
  const max = options.maxEndpointsPerSlice ?? MAX_ENDPOINTS_PER_SLICE;
  const slices: EndpointSlice[] = [];
  for (const family of families) {
    const byPorts = [...groups.get(family)!].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    let n = 0;
    for (const [, group] of byPorts) {
      const endpoints = group.endpoints.sort((a, b) => (a.pod < b.pod ? -1 : a.pod > b.pod ? 1 : 0));
      for (let i = 0; i < endpoints.length; i += max) {
        const chunk = endpoints.slice(i, i + max).map((e) => e.endpoint);
        slices.push(sliceOf(service, family, n++, group.ports, chunk));
      }
    }
    // Like the controller, an empty placeholder says "this Service has no endpoints" explicitly.
    if (n === 0) slices.push(sliceOf(service, family, 0, [], []));
  }
  return slices;
}

/** A Pod of the Service's namespace and selector that has an address and has not finished. */
function selects(service: Service, pod: Pod): boolean {
  if ((pod.metadata.namespace ?? 'default') !== (service.metadata.namespace ?? 'default')) return false;
  if (!selectorMatches(service.spec.selector!, pod.metadata.labels)) return false;
  const phase = pod.status?.phase;
  if (phase === 'Succeeded' || phase === 'Failed') return false;
  return podIps(pod).length > 0; // not scheduled or not started: no address to send to
}

/** The Pod's endpoint in each family it has an address of, grouped by its port list. */
function addPod(groups: Groups, service: Service, pod: Pod, nodes: ReadonlyMap<string, Node>): void {
  const ips = podIps(pod);
  const serving = isPodReady(pod);
  const terminating = pod.metadata.deletionTimestamp !== undefined;
  const ready = service.spec.publishNotReadyAddresses === true || (serving && !terminating);
  const ports = endpointPorts(service, pod);
  const signature = JSON.stringify(ports);
  const nodeName = pod.spec.nodeName;
  const zone = nodeName ? nodes.get(nodeName)?.metadata.labels?.[LABEL_ZONE] : undefined;
  const hints = trafficHints(service, zone, nodeName);
  for (const [family, byPorts] of groups) {
    const ip = ips.find((a) => ipFamily(a) === (family === 'IPv4' ? 4 : 6));
    if (ip === undefined) continue;
    let group = byPorts.get(signature);
    if (!group) byPorts.set(signature, (group = { ports, endpoints: [] }));
    group.endpoints.push({
      pod: pod.metadata.name,
      endpoint: {
        addresses: [ip],
        conditions: { ready, serving, terminating },
        ...(nodeName ? { nodeName } : {}),
        ...(zone !== undefined ? { zone } : {}),
        ...(hints ? { hints } : {}),
        targetRef: {
          kind: 'Pod',
          namespace: service.metadata.namespace ?? 'default',
          name: pod.metadata.name,
          ...(pod.metadata.uid ? { uid: pod.metadata.uid } : {}),
        },
      },
    });
  }
}

function sliceOf(service: Service, family: IPFamily, n: number, ports: EndpointPort[], endpoints: Endpoint[]): EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: `${service.metadata.name}-${family.toLowerCase()}-${n}`,
      namespace: service.metadata.namespace ?? 'default',
      labels: sliceLabels(service),
      ownerReferences: [
        {
          apiVersion: 'v1',
          kind: 'Service',
          name: service.metadata.name,
          ...(service.metadata.uid ? { uid: service.metadata.uid } : {}),
          controller: true,
        },
      ],
    },
    addressType: family,
    endpoints,
    ports,
  };
}
