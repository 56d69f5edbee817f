// What the API server does to a Service on create/update that a manifest on disk cannot do for
// itself: pick the IP families, allocate ClusterIPs, NodePorts and the health-check NodePort, and
// refuse a Service that asks for something another Service holds. User-chosen values are honoured.
// The allocator works on the whole set of Services at once and is deterministic: Services that
// already hold allocations keep them, newcomers are served in key order, and a refused update
// leaves the Service's last accepted version in force, as a rejected `kubectl apply` would.
import { isDeepStrictEqual } from 'node:util';
import { FerryError } from '../../common/errors.ts';
import { canonicalIp, ipFamily, type Family } from '../../common/ip.ts';
import type { IPFamily, Service, ServicePort, ServiceSpec } from '../../model/k8s.ts';
import { nodePortBandOffset, type PortRange, type ServiceIpRange } from './ranges.ts';

/** A Service the allocator refused; names the Service, the field and, for a collision, the holder. */
export class AllocationError extends FerryError {
  readonly object: string;
  readonly field: string;
  constructor(object: string, field: string, problem: string) {
    super('FERRY_E_ALLOCATION', `${object}: ${field}: ${problem}`);
    this.object = object;
    this.field = field;
  }
}

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

const FAMILY_NAME: Readonly<Record<Family, IPFamily>> = { 4: 'IPv4', 6: 'IPv6' };

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

  /** Families and policy as upstream's `initIPFamilyFields` settles them. */
  #families(
    object: string,
    spec: ServiceSpec,
    requested: readonly string[],
  ): { families: Family[]; policy: NonNullable<ServiceSpec['ipFamilyPolicy']> } {
    const given = spec.ipFamilies ?? [];
    const policy =
      spec.ipFamilyPolicy ??
      (given.length === 2 || requested.length === 2 ? 'RequireDualStack' : 'SingleStack');
    const families: Family[] = [];
    const max = Math.max(given.length, requested.length);
    for (let i = 0; i < max; i++) {
      const fromIp = requested[i] !== undefined ? ipFamily(requested[i]!) : undefined;
      const named = given[i];
      const fromName: Family | undefined = named === 'IPv4' ? 4 : named === 'IPv6' ? 6 : undefined;
      if (named !== undefined && fromName === undefined)
        throw new AllocationError(object, `spec.ipFamilies[${i}]`, `unknown family ${JSON.stringify(named)}`);
      if (fromIp !== undefined && fromName !== undefined && fromIp !== fromName)
        throw new AllocationError(
          object,
          `spec.clusterIPs[${i}]`,
          `${requested[i]} is not of family ${named}`,
        );
      families.push((fromName ?? fromIp)!);
    }
    if (families.length === 2 && families[0] === families[1])
      throw new AllocationError(object, 'spec.ipFamilies', 'the two families must differ');
    if (families.length === 2 && policy === 'SingleStack')
      throw new AllocationError(object, 'spec.ipFamilyPolicy', 'SingleStack allows one family');
    families.forEach((f, i) => {
      if (!this.#ranges.has(f))
        throw new AllocationError(
          object,
          `spec.ipFamilies[${i}]`,
          `${FAMILY_NAME[f]} is not configured on this cluster`,
        );
    });
    if (families.length === 0) families.push(this.#primary);
    if (policy !== 'SingleStack' && families.length === 1) {
      const other: Family = families[0] === 4 ? 6 : 4;
      if (this.#ranges.has(other)) families.push(other);
      else if (policy === 'RequireDualStack')
        throw new AllocationError(
          object,
          'spec.ipFamilyPolicy',
          'RequireDualStack on a single-stack cluster',
        );
    }
    return { families, policy };
  }

  #allocate(key: string, input: Service): Service {
    const object = `Service ${key}`;
    const spec = input.spec;
    if ((spec.type ?? 'ClusterIP') === 'ExternalName') {
      this.#release(key);
      return input;
    }
    const held = this.#holdings.get(key);
    const takenIps = new Set<string>();
    const takenPorts = new Set<number>();
    const ipFree = (ip: string): boolean =>
      !takenIps.has(ip) && !this.#reserved.has(ip) && (this.#ipOwner.get(ip) ?? key) === key;
    const portFree = (p: number): boolean =>
      !takenPorts.has(p) && !this.#reserved.has(p) && (this.#portOwner.get(p) ?? key) === key;
    const heldPort = (p: number | undefined): number | undefined =>
      p !== undefined && !takenPorts.has(p) ? p : undefined;

    // ClusterIPs
    const headless = spec.clusterIP === 'None' || spec.clusterIPs?.[0] === 'None';
    const requested = headless
      ? []
      : spec.clusterIPs && spec.clusterIPs.length > 0
        ? spec.clusterIPs
        : spec.clusterIP
          ? [spec.clusterIP]
          : [];
    if (!headless && spec.clusterIP && spec.clusterIPs?.length && spec.clusterIPs[0] !== spec.clusterIP)
      throw new AllocationError(object, 'spec.clusterIPs[0]', `must equal spec.clusterIP ${spec.clusterIP}`);
    const canonical = requested.map((ip, i) => {
      const c = canonicalIp(ip);
      if (!c)
        throw new AllocationError(
          object,
          `spec.clusterIPs[${i}]`,
          `${JSON.stringify(ip)} is not an IP address`,
        );
      return c;
    });
    const { families, policy } = this.#families(object, spec, canonical);
    const clusterIPs: string[] = [];
    if (!headless) {
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
          const keep = held?.clusterIPs.find((ip) => ipFamily(ip) === family);
          const ip = keep ?? this.#nextIp(range, ipFree);
          if (ip === undefined)
            throw new AllocationError(object, field, `service range ${range.text} is exhausted`);
          clusterIPs.push(ip);
        }
        takenIps.add(clusterIPs[i]!);
      });
    }

    // NodePorts: ports that share a port number share a NodePort (TCP and UDP 53 → one NodePort).
    const wantNodePorts = needsNodePorts(spec);
    const nodePorts: Record<string, number> = {};
    const byPortNumber = new Map<number, number>();
    const ports = (spec.ports ?? []).map((p, i) => {
      const field = `spec.ports[${i}].nodePort`;
      if (p.nodePort !== undefined && p.nodePort !== 0) {
        this.#checkRequestedPort(object, field, p.nodePort, key);
        nodePorts[portKey(p)] = p.nodePort;
        byPortNumber.set(p.port, p.nodePort);
        takenPorts.add(p.nodePort);
        return p;
      }
      if (!wantNodePorts) return p;
      const nodePort =
        byPortNumber.get(p.port) ??
        heldPort(held?.nodePorts[portKey(p)]) ??
        this.#nextPort((n) => portFree(n) && this.#portOwner.get(n) !== key);
      if (nodePort === undefined) throw new AllocationError(object, field, `node port range is exhausted`);
      nodePorts[portKey(p)] = nodePort;
      byPortNumber.set(p.port, nodePort);
      takenPorts.add(nodePort);
      return { ...p, nodePort };
    });

    let healthCheckNodePort: number | undefined;
    if (spec.healthCheckNodePort !== undefined && spec.healthCheckNodePort !== 0) {
      this.#checkRequestedPort(object, 'spec.healthCheckNodePort', spec.healthCheckNodePort, key);
      healthCheckNodePort = spec.healthCheckNodePort;
    } else if (needsHealthCheckPort(spec)) {
      healthCheckNodePort =
        heldPort(held?.healthCheckNodePort) ??
        this.#nextPort((n) => portFree(n) && this.#portOwner.get(n) !== key);
      if (healthCheckNodePort === undefined)
        throw new AllocationError(object, 'spec.healthCheckNodePort', 'node port range is exhausted');
    }

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
