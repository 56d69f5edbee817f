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
  const r = new Attribution(live, state);
  const byName = r.byName(services, state);
  const byPorts = r.byPorts(services, state, podIPsOf, true) + r.byPorts(services, state, podIPsOf, false);
  const merged: Record<string, Holding> = { ...state };
  for (const [key, h] of r.claimed) merged[key] = h;
  const attributedPorts = new Set([...r.claimed.values()].flatMap((h) => Object.values(h.nodePorts)));
  const reservedIps = [...r.unclaimed.keys()];
  const reservedPorts = live.nodePorts.filter((p) => !r.heldPorts.has(p) && !attributedPorts.has(p));
  return {
    state: merged,
    reservedIps,
    reservedPorts,
    summary:
      `${byName} ClusterIPs attributed by name, ${byPorts} by their ports, ` +
      `${reservedIps.length} ClusterIPs and ${reservedPorts.length} node ports reserved (live, owner unknown)`,
  };
}

/** The live ClusterIPs no holding in the state file covers, and the passes that attribute them. */
class Attribution {
  /** Node ports the state file already gives someone: never attributed again. */
  readonly heldPorts = new Set<number>();
  /** Live ClusterIP → its frontends, until a Service claims it. */
  readonly unclaimed = new Map<string, LiveFrontend[]>();
  readonly claimed = new Map<string, { clusterIPs: string[]; nodePorts: Record<string, number> }>();

  constructor(live: LiveAllocations, state: AllocationState) {
    const held = new Set<string>();
    for (const h of Object.values(state)) {
      for (const ip of h.clusterIPs) held.add(ip);
      for (const p of Object.values(h.nodePorts)) this.heldPorts.add(p);
      if (h.healthCheckNodePort !== undefined) this.heldPorts.add(h.healthCheckNodePort);
    }
    for (const f of live.frontends) {
      const ip = canonicalIp(f.clusterIP);
      if (ip === undefined || held.has(ip)) continue;
      const list = this.unclaimed.get(ip);
      if (list) list.push(f);
      else this.unclaimed.set(ip, [f]);
    }
  }

  /** The live addresses whose frontends name a Service that holds nothing yet; returns how many. */
  byName(services: ReadonlyMap<string, Service>, state: AllocationState): number {
    let n = 0;
    for (const [ip, frontends] of this.#sorted()) {
      const named = frontends.find((f) => f.service !== undefined)?.service;
      if (named !== undefined && services.has(named) && state[named] === undefined) {
        this.#claim(named, ip, frontends);
        n++;
      }
    }
    return n;
  }

  /**
   * Live addresses serving exactly a Service's port set go to it, in key order, up to one per
   * family its policy allows; with `sameBackends`, only where every live backend is one of its pods.
   */
  byPorts(
    services: ReadonlyMap<string, Service>,
    state: AllocationState,
    podIPsOf: (service: Service) => Iterable<string>,
    sameBackends: boolean,
  ): number {
    let n = 0;
    for (const key of [...services.keys()].sort()) {
      const service = services.get(key)!;
      if (state[key] !== undefined || !wantsDynamicIp(service)) continue;
      const want = servicePorts(service);
      const pods = new Set([...podIPsOf(service)].map((ip) => canonicalIp(ip) ?? ip));
      if (sameBackends && pods.size === 0) continue;
      const maxIps = (service.spec.ipFamilyPolicy ?? 'SingleStack') === 'SingleStack' ? 1 : 2;
      for (const [ip, frontends] of this.#sorted()) {
        if (portSet(frontends.map((f) => `${f.port}/${f.protocol}`)) !== want) continue;
        // Only ready pods are backends, so a live set is a non-empty subset of the selected pods.
        const backends = frontends.flatMap((f) => f.backendIPs ?? []).map((ip) => canonicalIp(ip) ?? ip);
        if (sameBackends && (backends.length === 0 || !backends.every((ip) => pods.has(ip)))) continue;
        const mine = this.claimed.get(key)?.clusterIPs ?? [];
        if (mine.length >= maxIps || mine.some((c) => ipFamily(c) === ipFamily(ip))) continue;
        this.#claim(key, ip, frontends);
        n++;
      }
    }
    return n;
  }

  #sorted(): [string, LiveFrontend[]][] {
    return [...this.unclaimed].sort(([a], [b]) => (a < b ? -1 : 1));
  }

  #claim(key: string, ip: string, frontends: readonly LiveFrontend[]): void {
    let h = this.claimed.get(key);
    if (!h) this.claimed.set(key, (h = { clusterIPs: [], nodePorts: {} }));
    if (h.clusterIPs.some((c) => ipFamily(c) === ipFamily(ip))) return;
    h.clusterIPs.push(ip);
    for (const f of frontends)
      if (f.nodePort !== undefined && !this.heldPorts.has(f.nodePort))
        h.nodePorts[`${f.port}/${f.protocol}`] = f.nodePort;
    this.unclaimed.delete(ip);
  }
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
