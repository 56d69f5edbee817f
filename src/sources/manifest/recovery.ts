// Rebuilding allocations from the datapath. The pinned maps outlive the agent and hold every live
// VIP, so when allocations.json is lost or corrupt they are the truth about which ClusterIPs and
// NodePorts clients are using. The maps carry no Service names (unless the caller knows them), so
// a live address is given back to the Service whose ports it serves; what cannot be attributed is
// reserved, never handed to another Service.
import { canonicalIp, ipFamily } from '../../common/ip.ts';
import type { Service } from '../../model/k8s.ts';
import type { AllocationState, Holding } from './allocator.ts';

/** One ClusterIP frontend found in the pinned datapath. */
export interface LiveFrontend {
  readonly clusterIP: string;
  readonly port: number;
  /** `TCP`, `UDP` or `SCTP`. */
  readonly protocol: string;
  /** The NodePort that serves the same Service port, when the datapath links them. */
  readonly nodePort?: number;
  /** `namespace/name` of the Service, when the caller knows it. */
  readonly service?: string;
  /** The backend addresses it forwards to: tells apart Services whose ports are the same. */
  readonly backendIPs?: readonly string[];
}

/** What the pinned datapath holds, read before the source opens. */
export interface LiveAllocations {
  readonly frontends: readonly LiveFrontend[];
  /** Every node port in the datapath, linked to a ClusterIP or not. */
  readonly nodePorts: readonly number[];
}

export interface Recovery {
  /** Holdings attributed to Services (merged over the state file's). */
  readonly state: AllocationState;
  /** Live but attributed to nobody: reserve. */
  readonly reservedIps: readonly string[];
  readonly reservedPorts: readonly number[];
  /** For the status: how many addresses were attributed by name, by ports, and reserved. */
  readonly summary: string;
}

const portSet = (ports: Iterable<string>): string => [...new Set(ports)].sort().join(',');

function servicePorts(service: Service): string {
  return portSet((service.spec.ports ?? []).map((p) => `${p.port}/${p.protocol ?? 'TCP'}`));
}

function wantsDynamicIp(service: Service): boolean {
  const spec = service.spec;
  if ((spec.type ?? 'ClusterIP') === 'ExternalName') return false;
  const ips = spec.clusterIPs ?? (spec.clusterIP ? [spec.clusterIP] : []);
  return ips.length === 0 || ips.every((ip) => ip === '');
}

/**
 * Gives live addresses back to the Services that hold them: by name where known, then to the
 * Service whose ports are the ones the address serves and whose pods (`podIPsOf`) include every
 * backend it forwards to, and only then to the first Service (in key order) with the same port set.
 * The backend pass keeps Services with identical ports from trading addresses. Services holding
 * something in `state` keep it; their addresses are not offered again.
 */
export function recoverAllocations(
  live: LiveAllocations,
  services: ReadonlyMap<string, Service>,
  state: AllocationState,
  podIPsOf: (service: Service) => Iterable<string> = () => [],
): Recovery {
  const held = new Set<string>();
  const heldPorts = new Set<number>();
  for (const h of Object.values(state)) {
    for (const ip of h.clusterIPs) held.add(ip);
    for (const p of Object.values(h.nodePorts)) heldPorts.add(p);
    if (h.healthCheckNodePort !== undefined) heldPorts.add(h.healthCheckNodePort);
  }
  const groups = new Map<string, LiveFrontend[]>();
  for (const f of live.frontends) {
    const ip = canonicalIp(f.clusterIP);
    if (ip === undefined || held.has(ip)) continue;
    const list = groups.get(ip);
    if (list) list.push(f);
    else groups.set(ip, [f]);
  }
  const out = new Map<string, { clusterIPs: string[]; nodePorts: Record<string, number> }>();
  const claim = (key: string, ip: string, frontends: readonly LiveFrontend[]): void => {
    let h = out.get(key);
    if (!h) out.set(key, (h = { clusterIPs: [], nodePorts: {} }));
    if (h.clusterIPs.some((c) => ipFamily(c) === ipFamily(ip))) return;
    h.clusterIPs.push(ip);
    for (const f of frontends)
      if (f.nodePort !== undefined && !heldPorts.has(f.nodePort))
        h.nodePorts[`${f.port}/${f.protocol}`] = f.nodePort;
    groups.delete(ip);
  };
  let byName = 0;
  let byPorts = 0;
  for (const [ip, frontends] of [...groups].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const named = frontends.find((f) => f.service !== undefined)?.service;
    if (named !== undefined && services.has(named) && state[named] === undefined) {
      claim(named, ip, frontends);
      byName++;
    }
  }
  const byPortsPass = (sameBackends: boolean): void => {
    for (const key of [...services.keys()].sort()) {
      const service = services.get(key)!;
      if (state[key] !== undefined || !wantsDynamicIp(service)) continue;
      const want = servicePorts(service);
      const pods = new Set([...podIPsOf(service)].map((ip) => canonicalIp(ip) ?? ip));
      if (sameBackends && pods.size === 0) continue;
      const maxIps = (service.spec.ipFamilyPolicy ?? 'SingleStack') === 'SingleStack' ? 1 : 2;
      for (const [ip, frontends] of [...groups].sort(([a], [b]) => (a < b ? -1 : 1))) {
        if (portSet(frontends.map((f) => `${f.port}/${f.protocol}`)) !== want) continue;
        // Only ready pods are backends, so a live set is a non-empty subset of the selected pods.
        const backends = frontends.flatMap((f) => f.backendIPs ?? []).map((ip) => canonicalIp(ip) ?? ip);
        if (sameBackends && (backends.length === 0 || !backends.every((ip) => pods.has(ip)))) continue;
        const mine = out.get(key)?.clusterIPs ?? [];
        if (mine.length >= maxIps || mine.some((c) => ipFamily(c) === ipFamily(ip))) continue;
        claim(key, ip, frontends);
        byPorts++;
      }
    }
  };
  byPortsPass(true);
  byPortsPass(false);
  const merged: Record<string, Holding> = { ...state };
  for (const [key, h] of out) merged[key] = h;
  const attributedPorts = new Set([...out.values()].flatMap((h) => Object.values(h.nodePorts)));
  const reservedIps = [...groups.keys()];
  const reservedPorts = live.nodePorts.filter((p) => !heldPorts.has(p) && !attributedPorts.has(p));
  return {
    state: merged,
    reservedIps,
    reservedPorts,
    summary:
      `${byName} ClusterIPs attributed by name, ${byPorts} by their ports, ` +
      `${reservedIps.length} ClusterIPs and ${reservedPorts.length} node ports reserved (live, owner unknown)`,
  };
}

/** The fields of a frontend read back from the pinned maps that recovery needs. */
export interface ReadBackFrontend {
  readonly address: string;
  readonly port: number;
  readonly protocol: string;
  readonly kind: string;
  readonly backendIds: readonly number[];
}

/**
 * LiveAllocations from the frontends in the pinned maps (ServiceWriter.readBack()). A NodePort is
 * linked to the ClusterIP port that forwards to exactly the same backends with the same protocol,
 * when exactly one does; otherwise it is only reserved. The maps carry no Service names.
 */
export function liveAllocationsFrom(
  frontends: readonly ReadBackFrontend[],
  backendAddress: (id: number) => string | undefined = () => undefined,
): LiveAllocations {
  const backends = (f: ReadBackFrontend): string =>
    `${f.protocol}|${[...f.backendIds].sort((a, b) => a - b).join(',')}`;
  const clusterIps = new Map<string, ReadBackFrontend>();
  for (const f of frontends)
    if (f.kind === 'ClusterIP') clusterIps.set(`${f.address}|${f.port}|${f.protocol}`, f);
  const byBackends = new Map<string, ReadBackFrontend[]>();
  for (const f of clusterIps.values()) {
    if (f.backendIds.length === 0) continue;
    const list = byBackends.get(backends(f));
    if (list) list.push(f);
    else byBackends.set(backends(f), [f]);
  }
  const nodePorts = new Set<number>();
  const linked = new Map<ReadBackFrontend, number>();
  for (const f of frontends) {
    if (f.kind !== 'NodePort') continue;
    nodePorts.add(f.port);
    const candidates = f.backendIds.length > 0 ? (byBackends.get(backends(f)) ?? []) : [];
    if (candidates.length === 1) linked.set(candidates[0]!, f.port);
  }
  return {
    frontends: [...clusterIps.values()].map((f) => {
      const nodePort = linked.get(f);
      const backendIPs = f.backendIds.map(backendAddress).filter((a): a is string => a !== undefined);
      return {
        clusterIP: f.address,
        port: f.port,
        protocol: f.protocol,
        ...(nodePort !== undefined ? { nodePort } : {}),
        ...(backendIPs.length > 0 ? { backendIPs } : {}),
      };
    }),
    nodePorts: [...nodePorts].sort((a, b) => a - b),
  };
}
