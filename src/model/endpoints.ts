// From EndpointSlices to the endpoints of one service port, and from those to the sets each kind
// of traffic may use. This is kube-proxy's pkg/proxy/endpointslicecache.go and topology.go,
// written over plain data.
import { formatIp, ipFamily, parseIp, type Family } from '../common/ip.ts';
import {
  LABEL_HEADLESS,
  LABEL_SERVICE_NAME,
  LABEL_SERVICE_PROXY_NAME,
  type EndpointSlice,
  type Protocol,
  type ServicePort,
} from './k8s.ts';

export interface EndpointInfo {
  readonly address: string; // canonical
  /** Orders endpoints by address within one family: the IPv4 value, or 32 hex digits for IPv6. */
  readonly sortKey: number | string;
  readonly port: number;
  readonly nodeName: string | undefined;
  readonly zone: string | undefined;
  readonly isLocal: boolean;
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  readonly zoneHints: ReadonlySet<string>;
  readonly nodeHints: ReadonlySet<string>;
}

const NO_HINTS: ReadonlySet<string> = new Set();

/**
 * Slices count for a service only when labelled with its name and carry neither label kube-proxy's
 * informer excludes (cmd/kube-proxy/app/server.go: "!service.kubernetes.io/service-proxy-name",
 * "!service.kubernetes.io/headless" — the same selector serves Services and EndpointSlices).
 */
export function sliceBelongsTo(slice: EndpointSlice, namespace: string, name: string): boolean {
  const labels = slice.metadata.labels ?? {};
  return (
    (slice.metadata.namespace ?? 'default') === namespace &&
    labels[LABEL_SERVICE_NAME] === name &&
    labels[LABEL_SERVICE_PROXY_NAME] === undefined &&
    labels[LABEL_HEADLESS] === undefined
  );
}

/**
 * The endpoints of one service port in one address family.
 * pkg/proxy/endpointslicecache.go addEndpoints: slices are read in name order; a slice port matches
 * by name and protocol (so a named targetPort may resolve to different numbers per slice); only the
 * first address of an endpoint is used; an endpoint seen in several slices is kept once, the first
 * one winning unless a later copy is local; nil ready/serving mean true, nil terminating false.
 */
export function endpointsForPort(
  slices: readonly EndpointSlice[],
  servicePort: ServicePort,
  family: Family,
  nodeName: string,
): EndpointInfo[] {
  const portName = servicePort.name ?? '';
  const protocol: Protocol = servicePort.protocol ?? 'TCP';
  // Keyed by target port, then address: reusing the address string avoids building (and hashing)
  // a fresh composite key per endpoint on every recompute.
  const byPort = new Map<number, Map<string, EndpointInfo>>();
  const ordered = slices.length < 2 ? slices : [...slices].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
  for (const slice of ordered) {
    if (slice.addressType !== (family === 4 ? 'IPv4' : 'IPv6')) continue;
    for (const slicePort of slice.ports ?? []) {
      if ((slicePort.name ?? '') !== portName || (slicePort.protocol ?? 'TCP') !== protocol) continue;
      if (slicePort.port === undefined) continue;
      let byEndpoint = byPort.get(slicePort.port);
      if (byEndpoint === undefined) byPort.set(slicePort.port, (byEndpoint = new Map()));
      for (const endpoint of slice.endpoints ?? []) {
        const first = endpoint.addresses[0];
        if (first === undefined) continue;
        let address: string;
        let sortKey: number | string;
        if (family === 4 && !first.includes(':')) {
          // Dotted quads: validate without allocating (this runs per endpoint per recompute); the
          // parser accepts only canonical text, so the address needs no re-formatting.
          if (ipFamily(first) !== 4) continue;
          address = first;
          sortKey = v4Value(first);
        } else {
          const ip = parseIp(first);
          if (ip === undefined || ip.family !== family) continue;
          address = formatIp(ip);
          sortKey = family === 4 ? v4Value(address) : hex(ip.bytes);
        }
        const isLocal = endpoint.nodeName !== undefined && endpoint.nodeName === nodeName;
        if (!isLocal && byEndpoint.has(address)) continue;
        const c = endpoint.conditions ?? {};
        byEndpoint.set(address, {
          address,
          sortKey,
          port: slicePort.port,
          nodeName: endpoint.nodeName,
          zone: endpoint.zone,
          isLocal,
          ready: c.ready ?? true,
          serving: c.serving ?? true,
          terminating: c.terminating ?? false,
          zoneHints: endpoint.hints?.forZones?.length ? new Set(endpoint.hints.forZones.map((z) => z.name)) : NO_HINTS,
          nodeHints: endpoint.hints?.forNodes?.length ? new Set(endpoint.hints.forNodes.map((n) => n.name)) : NO_HINTS,
        });
      }
    }
  }
  if (byPort.size === 1) return [...byPort.values().next().value!.values()];
  const all: EndpointInfo[] = [];
  for (const byEndpoint of byPort.values()) for (const info of byEndpoint.values()) all.push(info);
  return all;
}

/** The numeric value of an already validated dotted quad. */
function v4Value(text: string): number {
  let value = 0;
  let octet = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      value = value * 256 + octet;
      octet = 0;
    } else {
      octet = octet * 10 + (c - 48);
    }
  }
  return value * 256 + octet;
}

function hex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += (b < 16 ? '0' : '') + b.toString(16);
  return out;
}

/** Address order (numeric for IPv4, byte order for IPv6), then port. */
export function compareEndpoints(a: EndpointInfo, b: EndpointInfo): number {
  if (a.sortKey !== b.sortKey) {
    if (typeof a.sortKey === 'number' && typeof b.sortKey === 'number') return a.sortKey - b.sortKey;
    return String(a.sortKey) < String(b.sortKey) ? -1 : 1;
  }
  return a.port - b.port;
}

export interface TrafficPolicies {
  readonly internalLocal: boolean;
  readonly externalLocal: boolean;
  /** NodePort, LoadBalancer or externalIPs: the external policy matters at all. */
  readonly externallyAccessible: boolean;
}

export interface CategorizedEndpoints {
  /** Ready endpoints allowed by topology, else serving+terminating ones; empty when unused. */
  readonly cluster: readonly EndpointInfo[];
  /** Local ready endpoints, else local serving+terminating ones. */
  readonly local: readonly EndpointInfo[];
  /** Whether the cluster set was computed (pkg/proxy ServicePort.UsesClusterEndpoints). */
  readonly usesCluster: boolean;
  /** Any ready or serving-terminating endpoint anywhere: without one, traffic is rejected. */
  readonly hasAny: boolean;
}

type TopologyMode = '' | 'node' | 'zone';

/**
 * pkg/proxy/topology.go topologyModeFromHints: hints are used only when every ready endpoint has
 * them (all or nothing) and at least one is for this node (or zone); node hints come from
 * trafficDistribution PreferSameNode, zone hints from PreferClose / PreferSameZone / topology-mode Auto
 * (the EndpointSlice controller turns those into hints; kube-proxy reads only the hints).
 */
function topologyMode(endpoints: readonly EndpointInfo[], nodeName: string, zone: string | undefined): TopologyMode {
  let allNodeHints = true;
  let hasForNode = false;
  let allZoneHints = true;
  let hasForZone = false;
  for (const ep of endpoints) {
    if (!ep.ready) continue;
    if (ep.zoneHints.size === 0) allZoneHints = false;
    else if (zone !== undefined && ep.zoneHints.has(zone)) hasForZone = true;
    if (ep.nodeHints.size === 0) allNodeHints = false;
    else if (ep.nodeHints.has(nodeName)) hasForNode = true;
  }
  if (allNodeHints && hasForNode) return 'node';
  if (allZoneHints && hasForZone) return 'zone';
  return '';
}

function availableForTopology(ep: EndpointInfo, mode: TopologyMode, nodeName: string, zone: string | undefined): boolean {
  if (mode === 'node') return ep.nodeHints.has(nodeName);
  if (mode === 'zone') return zone !== undefined && ep.zoneHints.has(zone);
  return true;
}

/** pkg/proxy/topology.go CategorizeEndpoints, including the KEP-1669 terminating fallback. */
export function categorizeEndpoints(
  endpoints: readonly EndpointInfo[],
  policies: TrafficPolicies,
  nodeName: string,
  zone: string | undefined,
): CategorizedEndpoints {
  // ServicePort.UsesClusterEndpoints / UsesLocalEndpoints (pkg/proxy/serviceport.go).
  const usesCluster = !policies.internalLocal || (policies.externallyAccessible && !policies.externalLocal);
  const usesLocal = policies.internalLocal || (policies.externallyAccessible && policies.externalLocal);
  let cluster: EndpointInfo[] = [];
  let hasAny = false;
  if (usesCluster) {
    const mode = topologyMode(endpoints, nodeName, zone);
    cluster = endpoints.filter((ep) => ep.ready && availableForTopology(ep, mode, nodeName, zone));
    // No ready endpoint anywhere (topology would already have been ignored had this node/zone none):
    // fall back to endpoints that are terminating but still serving, regardless of hints, as upstream.
    if (cluster.length === 0) cluster = endpoints.filter((ep) => ep.serving && ep.terminating);
    if (cluster.length > 0) hasAny = true;
  }
  if (!usesLocal) return { cluster, local: [], usesCluster, hasAny };
  let localReady = false;
  let localServingTerminating = false;
  for (const ep of endpoints) {
    if (ep.ready) {
      hasAny = true;
      if (ep.isLocal) localReady = true;
    } else if (ep.serving && ep.terminating) {
      hasAny = true;
      if (ep.isLocal) localServingTerminating = true;
    }
  }
  let local: EndpointInfo[] = [];
  if (localReady) local = endpoints.filter((ep) => ep.isLocal && ep.ready);
  else if (localServingTerminating) local = endpoints.filter((ep) => ep.isLocal && ep.serving && ep.terminating);
  return { cluster, local, usesCluster, hasAny };
}
