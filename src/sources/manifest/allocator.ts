// What the API server does to a Service on create/update that a manifest on disk cannot do for
// itself: pick the IP families, allocate ClusterIPs, NodePorts and the health-check NodePort, and
// refuse a Service that asks for something another Service holds. User-chosen values are honoured.
// The allocator works on the whole set of Services at once and is deterministic: Services that
// already hold allocations keep them, newcomers are served in key order, and a refused update
// leaves the Service's last accepted version in force, as a rejected `kubectl apply` would.
import { isDeepStrictEqual } from 'node:util';
import { canonicalIp, ipFamily, type Family } from '../../common/ip.ts';
import type { Service, ServicePort, ServiceSpec } from '../../model/k8s.ts';
import { AllocationError } from './allocation-error.ts';
import { FAMILY_NAME, settleFamilies } from './families.ts';
import { nodePortBandOffset, type PortRange, type ServiceIpRange } from './ranges.ts';

export { AllocationError } from './allocation-error.ts';

/** What one Service holds; `nodePorts` is keyed `port/protocol` so it survives port reordering. */
export interface Holding {
  readonly clusterIPs: readonly string[];
  readonly nodePorts: Readonly<Record<string, number>>;
  readonly healthCheckNodePort?: number;
}

/** The persisted form: Service key (`namespace/name`) → holding. */
export type AllocationState = Readonly<Record<string, Holding>>;

export interface ReconcileResult {
  /** Services as the API server would store them, allocations filled in. */
  readonly services: ReadonlyMap<string, Service>;
  /** Refused Services (a previously accepted version may still be in `services`). */
  readonly errors: ReadonlyMap<string, AllocationError>;
}

function portKey(p: ServicePort): string {
  return `${p.port}/${p.protocol ?? 'TCP'}`;
}

function needsNodePorts(spec: ServiceSpec): boolean {
  const type = spec.type ?? 'ClusterIP';
  return type === 'NodePort' || (type === 'LoadBalancer' && spec.allocateLoadBalancerNodePorts !== false);
}

function needsHealthCheckPort(spec: ServiceSpec): boolean {
  return spec.type === 'LoadBalancer' && spec.externalTrafficPolicy === 'Local';
}

/** Whether the Service names a ClusterIP or a NodePort of its own (allocated before dynamic picks). */
function requestsFixedValues(spec: ServiceSpec): boolean {
  const ips = spec.clusterIPs ?? (spec.clusterIP ? [spec.clusterIP] : []);
  if (ips.some((ip) => ip !== '' && ip !== 'None')) return true;
  if ((spec.ports ?? []).some((p) => p.nodePort !== undefined && p.nodePort !== 0)) return true;
  return spec.healthCheckNodePort !== undefined && spec.healthCheckNodePort !== 0;
}

/** One Service's allocation in progress: what it held, and what this attempt has taken so far. */
interface Attempt {
  readonly key: string;
  readonly object: string;
  readonly spec: ServiceSpec;
  readonly held: Holding | undefined;
  readonly takenIps: Set<string>;
  readonly takenPorts: Set<number>;
}

export class ServiceAllocator {
  readonly #ranges: ReadonlyMap<Family, ServiceIpRange>;
  readonly #primary: Family;
  readonly #ports: PortRange;
  readonly #holdings = new Map<string, Holding>();
  readonly #ipOwner = new Map<string, string>();
  readonly #portOwner = new Map<number, string>();
  /** Live in the datapath but not attributable to any Service (rebuilt state): never handed out. */
  readonly #reserved = new Set<string | number>();
  /** key → the input and output of the last accepted version. */
  readonly #accepted = new Map<string, { readonly input: Service; readonly output: Service }>();

  /**
   * @param ranges the Service CIDRs, primary family first.
   * @param state holdings restored from disk; entries that no longer fit the ranges are dropped.
   * @param reserved addresses and node ports in use by nobody known (e.g. live in the datapath after
   *   the state file was lost): never allocated dynamically, still grantable on explicit request.
   */
  constructor(
    ranges: readonly ServiceIpRange[],
    ports: PortRange,
    state: AllocationState = {},
    reserved: { readonly ips?: Iterable<string>; readonly ports?: Iterable<number> } = {},
  ) {
    this.#ranges = new Map(ranges.map((r) => [r.family, r]));
    this.#primary = ranges[0]!.family;
    this.#ports = ports;
    for (const [key, h] of Object.entries(state)) {
      const clusterIPs = (h.clusterIPs ?? []).filter((ip) => this.#allocatableIndex(ip) !== undefined);
      const fits = (p: number | undefined): boolean => p !== undefined && this.#inPortRange(p);
      const nodePorts = Object.fromEntries(Object.entries(h.nodePorts ?? {}).filter(([, p]) => fits(p)));
      const hc = fits(h.healthCheckNodePort) ? { healthCheckNodePort: h.healthCheckNodePort! } : {};
      if (clusterIPs.some((ip) => this.#ipOwner.has(ip))) continue; // a corrupt state; first wins
      this.#setHolding(key, { clusterIPs, nodePorts, ...hc });
    }
    for (const ip of reserved.ips ?? []) {
      const c = canonicalIp(ip);
      if (c !== undefined && !this.#ipOwner.has(c)) this.#reserved.add(c);
    }
    for (const p of reserved.ports ?? []) if (!this.#portOwner.has(p)) this.#reserved.add(p);
  }

  /** The holdings to persist. */
  state(): AllocationState {
    return Object.fromEntries([...this.#holdings].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  /**
   * Brings allocations in line with the full current set of Services (`namespace/name` → Service):
   * releases what deleted Services held (unless `keepAbsent`), allocates for new ones, re-checks
   * changed ones.
   */
  reconcile(
    services: ReadonlyMap<string, Service>,
    options: { readonly keepAbsent?: boolean } = {},
  ): ReconcileResult {
    // keepAbsent: the caller cannot tell "deleted" from "hidden by a broken file"; releasing then
    // would hand a Service new addresses the moment its file is fixed.
    if (!options.keepAbsent)
      for (const key of [...this.#holdings.keys()]) if (!services.has(key)) this.#release(key);
    for (const key of [...this.#accepted.keys()]) if (!services.has(key)) this.#accepted.delete(key);
    // Holders first (they keep what they have), then every Service that asks for fixed values,
    // then the dynamic ones: a fixed request must never lose to a dynamic pick that happened to
    // sort first (the API server's static/dynamic bands, KEP-3070, do the same job).
    const band = (key: string): number =>
      this.#holdings.has(key) ? 0 : requestsFixedValues(services.get(key)!.spec) ? 1 : 2;
    const keys = [...services.keys()].sort((a, b) => band(a) - band(b) || (a < b ? -1 : a > b ? 1 : 0));
    const errors = new Map<string, AllocationError>();
    for (const key of keys) {
      const input = services.get(key)!;
      const last = this.#accepted.get(key);
      if (last && isDeepStrictEqual(last.input, input)) continue;
      try {
        this.#accepted.set(key, { input, output: this.#allocate(key, input) });
      } catch (err) {
        if (!(err instanceof AllocationError)) throw err;
        errors.set(key, err);
      }
    }
    return { services: new Map([...this.#accepted].map(([k, v]) => [k, v.output])), errors };
  }

  #inPortRange(p: number): boolean {
    return p >= this.#ports.first && p <= this.#ports.last;
  }

  #allocatableIndex(ip: string): number | undefined {
    const fam = ipFamily(ip);
    const range = fam === undefined ? undefined : this.#ranges.get(fam);
    const index = range?.indexOf(ip);
    return index === undefined || index === range!.reservedIndex ? undefined : index;
  }

  #setHolding(key: string, h: Holding): void {
    this.#release(key);
    for (const ip of h.clusterIPs) this.#reserved.delete(ip);
    for (const p of Object.values(h.nodePorts)) this.#reserved.delete(p);
    if (h.healthCheckNodePort !== undefined) this.#reserved.delete(h.healthCheckNodePort);
    this.#holdings.set(key, h);
    for (const ip of h.clusterIPs) this.#ipOwner.set(ip, key);
    for (const p of Object.values(h.nodePorts)) this.#portOwner.set(p, key);
    if (h.healthCheckNodePort !== undefined) this.#portOwner.set(h.healthCheckNodePort, key);
  }

  #release(key: string): void {
    const h = this.#holdings.get(key);
    if (!h) return;
    this.#holdings.delete(key);
    for (const ip of h.clusterIPs) if (this.#ipOwner.get(ip) === key) this.#ipOwner.delete(ip);
    for (const p of [...Object.values(h.nodePorts), h.healthCheckNodePort])
      if (p !== undefined && this.#portOwner.get(p) === key) this.#portOwner.delete(p);
  }

  #allocate(key: string, input: Service): Service {
    const spec = input.spec;
    if ((spec.type ?? 'ClusterIP') === 'ExternalName') {
      this.#release(key);
      return input;
    }
    const attempt: Attempt = {
      key,
      object: `Service ${key}`,
      spec,
      held: this.#holdings.get(key),
      takenIps: new Set(),
      takenPorts: new Set(),
    };
    const { headless, families, policy, clusterIPs } = this.#allocateClusterIPs(attempt);
    const { ports, nodePorts } = this.#allocateNodePorts(attempt);
    const healthCheckNodePort = this.#allocateHealthCheckPort(attempt);
    this.#setHolding(key, {
      clusterIPs,
      nodePorts,
      ...(healthCheckNodePort !== undefined ? { healthCheckNodePort } : {}),
    });
    const out: ServiceSpec = {
      ...spec,
      clusterIP: headless ? 'None' : clusterIPs[0]!,
      clusterIPs: headless ? ['None'] : clusterIPs,
      ipFamilies: families.map((f) => FAMILY_NAME[f]),
      ipFamilyPolicy: policy,
      ...(spec.ports ? { ports } : {}),
      ...(healthCheckNodePort !== undefined ? { healthCheckNodePort } : {}),
    };
    return { ...input, spec: out };
  }

  /** The requested addresses, canonical; throws for one that is not an address. */
  #requestedIPs(a: Attempt, headless: boolean): string[] {
    const { spec, object } = a;
    const requested = headless
      ? []
      : spec.clusterIPs && spec.clusterIPs.length > 0
        ? spec.clusterIPs
        : spec.clusterIP
          ? [spec.clusterIP]
          : [];
    if (!headless && spec.clusterIP && spec.clusterIPs?.length && spec.clusterIPs[0] !== spec.clusterIP)
      throw new AllocationError(object, 'spec.clusterIPs[0]', `must equal spec.clusterIP ${spec.clusterIP}`);
    return requested.map((ip, i) => {
      const c = canonicalIp(ip);
      if (!c)
        throw new AllocationError(
          object,
          `spec.clusterIPs[${i}]`,
          `${JSON.stringify(ip)} is not an IP address`,
        );
      return c;
    });
  }

  /** One address per family: the requested one if free, else the held one, else the next free. */
  #allocateClusterIPs(a: Attempt): {
    headless: boolean;
    families: Family[];
    policy: NonNullable<ServiceSpec['ipFamilyPolicy']>;
    clusterIPs: string[];
  } {
    const { spec, object, key } = a;
    const headless = spec.clusterIP === 'None' || spec.clusterIPs?.[0] === 'None';
    const canonical = this.#requestedIPs(a, headless);
    const { families, policy } = settleFamilies(object, spec, canonical, this.#ranges, this.#primary);
    const clusterIPs: string[] = [];
    if (headless) return { headless, families, policy, clusterIPs };
    const ipFree = (ip: string): boolean =>
      !a.takenIps.has(ip) && !this.#reserved.has(ip) && (this.#ipOwner.get(ip) ?? key) === key;
    families.forEach((family, i) => {
      const range = this.#ranges.get(family)!;
      const field = `spec.clusterIPs[${i}]`;
      const want = canonical[i];
      if (want !== undefined) {
        const index = range.indexOf(want);
        if (index === undefined)
          throw new AllocationError(object, field, `${want} is not in the service range ${range.text}`);
        if (index === range.reservedIndex)
          throw new AllocationError(object, field, `${want} is reserved for Service default/kubernetes`);
        const owner = this.#ipOwner.get(want);
        if (owner !== undefined && owner !== key)
          throw new AllocationError(object, field, `${want} is already allocated to Service ${owner}`);
        clusterIPs.push(want);
      } else {
        const keep = a.held?.clusterIPs.find((ip) => ipFamily(ip) === family);
        const ip = keep ?? this.#nextIp(range, ipFree);
        if (ip === undefined)
          throw new AllocationError(object, field, `service range ${range.text} is exhausted`);
        clusterIPs.push(ip);
      }
      a.takenIps.add(clusterIPs[i]!);
    });
    return { headless, families, policy, clusterIPs };
  }

  /** A free node port for a dynamic pick: not taken in this attempt, reserved, or held by anyone. */
  #nextFreePort(a: Attempt): number | undefined {
    return this.#nextPort(
      (n) => !a.takenPorts.has(n) && !this.#reserved.has(n) && this.#portOwner.get(n) === undefined,
    );
  }

  /** A port this Service held, unless this attempt already used it. */
  #heldPort(a: Attempt, p: number | undefined): number | undefined {
    return p !== undefined && !a.takenPorts.has(p) ? p : undefined;
  }

  // Ports that share a port number share a NodePort (TCP and UDP 53 → one NodePort).
  #allocateNodePorts(a: Attempt): { ports: ServicePort[]; nodePorts: Record<string, number> } {
    const wantNodePorts = needsNodePorts(a.spec);
    const nodePorts: Record<string, number> = {};
    const byPortNumber = new Map<number, number>();
    const ports = (a.spec.ports ?? []).map((p, i) => {
      const field = `spec.ports[${i}].nodePort`;
      if (p.nodePort !== undefined && p.nodePort !== 0) {
        this.#checkRequestedPort(a.object, field, p.nodePort, a.key);
        nodePorts[portKey(p)] = p.nodePort;
        byPortNumber.set(p.port, p.nodePort);
        a.takenPorts.add(p.nodePort);
        return p;
      }
      if (!wantNodePorts) return p;
      const nodePort =
        byPortNumber.get(p.port) ?? this.#heldPort(a, a.held?.nodePorts[portKey(p)]) ?? this.#nextFreePort(a);
      if (nodePort === undefined) throw new AllocationError(a.object, field, `node port range is exhausted`);
      nodePorts[portKey(p)] = nodePort;
      byPortNumber.set(p.port, nodePort);
      a.takenPorts.add(nodePort);
      return { ...p, nodePort };
    });
    return { ports, nodePorts };
  }

  #allocateHealthCheckPort(a: Attempt): number | undefined {
    const requested = a.spec.healthCheckNodePort;
    if (requested !== undefined && requested !== 0) {
      this.#checkRequestedPort(a.object, 'spec.healthCheckNodePort', requested, a.key);
      return requested;
    }
    if (!needsHealthCheckPort(a.spec)) return undefined;
    const port = this.#heldPort(a, a.held?.healthCheckNodePort) ?? this.#nextFreePort(a);
    if (port === undefined)
      throw new AllocationError(a.object, 'spec.healthCheckNodePort', 'node port range is exhausted');
    return port;
  }

  #checkRequestedPort(object: string, field: string, port: number, key: string): void {
    if (!this.#inPortRange(port))
      throw new AllocationError(
        object,
        field,
        `${port} is not in the node port range ${this.#ports.first}-${this.#ports.last}`,
      );
    // Within one Service a NodePort may repeat (TCP and UDP of one port); whether that is valid
    // is the model's question.
    const owner = this.#portOwner.get(port);
    if (owner !== undefined && owner !== key)
      throw new AllocationError(object, field, `${port} is already allocated to Service ${owner}`);
  }

  /** First free index of the dynamic band, then of the static band (upstream picks at random). */
  #nextIp(range: ServiceIpRange, free: (ip: string) => boolean): string | undefined {
    const scan = (from: number, to: number): string | undefined => {
      for (let i = from; i < to; i++) {
        if (i === range.reservedIndex) continue;
        const ip = range.addressAt(i);
        if (free(ip)) return ip;
      }
      return undefined;
    };
    return scan(range.dynamicStart, range.size) ?? scan(0, range.dynamicStart);
  }

  #nextPort(free: (p: number) => boolean): number | undefined {
    const start = this.#ports.first + nodePortBandOffset(this.#ports);
    for (let p = start; p <= this.#ports.last; p++) if (free(p)) return p;
    for (let p = this.#ports.first; p < start; p++) if (free(p)) return p;
    return undefined;
  }
}
