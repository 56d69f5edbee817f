// The stateful heart of the sync, in kube-proxy's shape (pkg/proxy/servicechangetracker.go,
// endpointschangetracker.go): sources record {previous, current} changes, equal ones are dropped,
// and a sync drains the set of touched services, recomputes only those, and returns the minimal
// diff against the table it computed last time.
import type { InvalidObjectError } from '../common/errors.ts';
import { canonicalIp, ipFamily } from '../common/ip.ts';
import type { Change } from './change.ts';
import type { Frontend, FrontendDiff, FrontendTable, HealthCheck } from './frontend.ts';
import { computeServiceFrontends, serviceName, type NodeContext, type ServiceFrontends } from './frontends.ts';
import { LABEL_SERVICE_NAME, LABEL_ZONE, type EndpointSlice, type NamespacedName, type Node, type Service } from './k8s.ts';
import { validateEndpointSlice, validateNode, validateService } from './validate.ts';

/** What the model takes in: Pods shape no frontend. */
export type ModelChange = Change<'Service' | 'EndpointSlice' | 'Node'>;

export interface ServiceModelOptions {
  readonly nodeName: string;
  /** Overrides the node's addresses from its Node object (the lab, or --node-addresses). */
  readonly nodeAddresses?: readonly string[];
  /** kube-proxy --nodeport-addresses. */
  readonly nodePortAddresses?: readonly string[];
  /**
   * Sources whose initial list must be complete before sync() yields anything (kube-proxy's
   * isInitialized: servicesSynced && endpointSlicesSynced, pkg/proxy/iptables/proxier.go). Report
   * each with sourceSynced(kind). Unset: no gate (the caller gates, as the agent's start() does).
   */
  readonly awaitSources?: readonly SourceKind[];
  /** kube-apiserver --service-node-port-range, when known (the standalone source knows its own). */
  readonly nodePortRange?: { readonly min: number; readonly max: number };
}

export type SourceKind = ModelChange['kind'];

export interface ModelSync {
  readonly diff: FrontendDiff;
  readonly changedServices: readonly NamespacedName[];
  readonly full: boolean;
  readonly warnings: readonly string[];
}

function objectKey(meta: { name: string; namespace?: string }): string {
  return `${meta.namespace ?? 'default'}/${meta.name}`;
}

/** The fields that decide behaviour; resourceVersion, managedFields and the like are not among them. */
function essence(object: Service | EndpointSlice | Node): string {
  const { metadata, ...rest } = object as unknown as { metadata: Record<string, unknown> } & Record<string, unknown>;
  return JSON.stringify([
    metadata.name,
    metadata.namespace,
    metadata.labels,
    metadata.annotations,
    metadata.deletionTimestamp,
    rest,
  ]);
}

function sameFrontend(a: Frontend | undefined, b: Frontend | undefined): boolean {
  return a !== undefined && b !== undefined && JSON.stringify(a) === JSON.stringify(b);
}

/** The node context from a Node object: primary InternalIP per family (else ExternalIP), zone label. */
export function nodeContextFrom(node: Node | undefined, options: ServiceModelOptions): NodeContext {
  let addresses = options.nodeAddresses ? [...options.nodeAddresses] : [];
  if (!options.nodeAddresses) {
    const all = node?.status?.addresses ?? [];
    for (const type of ['InternalIP', 'ExternalIP'] as const) {
      for (const family of [4, 6]) {
        if (addresses.some((a) => ipFamily(a) === family)) continue;
        const found = all.find((a) => a.type === type && ipFamily(a.address) === family);
        if (found) addresses.push(canonicalIp(found.address)!);
      }
    }
  }
  addresses = addresses.map((a) => canonicalIp(a) ?? a);
  const zone = node?.metadata.labels?.[LABEL_ZONE];
  return {
    name: options.nodeName,
    ...(zone !== undefined ? { zone } : {}),
    addresses,
    ...(options.nodePortAddresses ? { nodePortAddresses: options.nodePortAddresses } : {}),
  };
}

export class ServiceModel {
  readonly #options: ServiceModelOptions;
  /** Last valid version of each service: an invalid edit keeps the previous one, as a rejected apply would. */
  readonly #services = new Map<NamespacedName, Service>();
  readonly #slices = new Map<string, EndpointSlice>();
  readonly #slicesByService = new Map<NamespacedName, Map<string, EndpointSlice>>();
  #node: Node | undefined;
  #context: NodeContext;
  readonly #pending = new Set<NamespacedName>();
  #full = true;
  readonly #computed = new Map<NamespacedName, ServiceFrontends>();
  readonly #table = new Map<string, Frontend>();
  readonly #owner = new Map<string, NamespacedName>();
  /**
   * frontend key → every Service whose computed frontends include it. Two Services may define one
   * frontend (a shared externalIP:port); one owns it, and when it lets go the next claimant in
   * name order takes it over instead of the frontend vanishing.
   */
  readonly #claims = new Map<string, Set<NamespacedName>>();
  readonly #healthChecks = new Map<NamespacedName, HealthCheck>();
  readonly #errors = new Map<string, InvalidObjectError[]>();
  readonly #unsynced: Set<SourceKind>;

  constructor(options: ServiceModelOptions) {
    this.#options = options;
    this.#context = nodeContextFrom(undefined, options);
    this.#unsynced = new Set(options.awaitSources ?? []);
  }

  /** A source finished its initial list. */
  sourceSynced(kind: SourceKind): void {
    this.#unsynced.delete(kind);
  }

  /** Every awaited source has listed: until then sync() returns an empty diff and keeps all changes. */
  get synced(): boolean {
    return this.#unsynced.size === 0;
  }

  get node(): NodeContext {
    return this.#context;
  }

  /** Records one change; returns whether it can affect the datapath (no-ops are dropped here). */
  apply(change: ModelChange): boolean {
    const { previous, current } = change;
    if (previous && current && essence(previous) === essence(current)) return false;
    switch (change.kind) {
      case 'Service':
        return this.#applyService(change.previous, change.current);
      case 'EndpointSlice':
        return this.#applySlice(change.previous, change.current);
      case 'Node':
        return this.#applyNode(change.current ?? undefined, change.previous);
    }
  }

  /** Changes recorded and not yet synced. */
  get pending(): number {
    return this.#full ? Infinity : this.#pending.size;
  }

  /** Makes the next sync recompute everything (after a datapath failure, at start). */
  markFull(): void {
    this.#full = true;
  }

  errors(): InvalidObjectError[] {
    return [...this.#errors.values()].flat();
  }

  table(): FrontendTable {
    return { frontends: this.#table, healthChecks: this.#healthChecks };
  }

  services(): NamespacedName[] {
    return [...this.#services.keys()];
  }

  /** Drains the recorded changes and returns the minimal diff that takes the last table to the new one. */
  sync(): ModelSync {
    // A partial view would remove frontends of services not listed yet: hold everything back.
    if (!this.synced) return { diff: { upsert: [], remove: [] }, changedServices: [], full: false, warnings: [] };
    const full = this.#full;
    const names = full
      ? new Set([...this.#services.keys(), ...this.#computed.keys()])
      : new Set(this.#pending);
    this.#pending.clear();
    this.#full = false;
    const touched = new Map<string, Frontend | undefined>(); // key → frontend before this sync
    const warnings: string[] = [];
    const ordered = [...names].sort();
    for (const name of ordered) {
      const before = this.#computed.get(name);
      const service = this.#services.get(name);
      const after = service
        ? computeServiceFrontends(service, [...(this.#slicesByService.get(name)?.values() ?? [])], this.#context)
        : undefined;
      if (after !== undefined && after.warnings.length > 0) warnings.push(...after.warnings);
      for (const f of before?.frontends ?? []) {
        const claimants = this.#claims.get(f.key);
        claimants?.delete(name);
        if (claimants?.size === 0) this.#claims.delete(f.key);
        if (this.#owner.get(f.key) !== name) continue;
        if (!touched.has(f.key)) touched.set(f.key, this.#table.get(f.key));
        this.#table.delete(f.key);
        this.#owner.delete(f.key);
      }
      for (const f of after?.frontends ?? []) {
        let claimants = this.#claims.get(f.key);
        if (!claimants) this.#claims.set(f.key, (claimants = new Set()));
        claimants.add(name);
        const owner = this.#owner.get(f.key);
        if (owner !== undefined && owner !== name) {
          warnings.push(`${name}: frontend ${f.address}:${f.port}/${f.protocol} (${f.scope}) already belongs to ${owner}`);
          continue;
        }
        if (!touched.has(f.key)) touched.set(f.key, this.#table.get(f.key));
        this.#table.set(f.key, f);
        this.#owner.set(f.key, name);
      }
      if (after) this.#computed.set(name, after);
      else this.#computed.delete(name);
      if (after?.healthCheck) this.#healthChecks.set(name, after.healthCheck);
      else this.#healthChecks.delete(name);
    }
    for (const key of touched.keys()) {
      if (this.#owner.has(key)) continue;
      const claimants = this.#claims.get(key);
      if (!claimants || claimants.size === 0) continue;
      const heir = [...claimants].sort()[0]!;
      const f = this.#computed.get(heir)?.frontends.find((x) => x.key === key);
      if (!f) continue;
      this.#table.set(key, f);
      this.#owner.set(key, heir);
    }
    const upsert: Frontend[] = [];
    const remove: Frontend[] = [];
    // In service-name order, then each service's own frontend order: deterministic without a sort.
    for (const [key, before] of touched) {
      const now = this.#table.get(key);
      if (now === undefined) {
        if (before) remove.push(before);
      } else if (!sameFrontend(before, now)) {
        upsert.push(now);
      }
    }
    return { diff: { upsert, remove }, changedServices: ordered, full, warnings };
  }

  #applyService(previous: Service | undefined, current: Service | undefined): boolean {
    const name = serviceName((current ?? previous)!);
    if (!current) {
      this.#errors.delete(`Service ${name}`);
      if (!this.#services.delete(name)) return false;
      this.#pending.add(name);
      return true;
    }
    const problems = validateService(current, this.#options.nodePortRange ? { nodePortRange: this.#options.nodePortRange } : {});
    if (problems.length > 0) {
      this.#errors.set(`Service ${name}`, problems);
      return false;
    }
    this.#errors.delete(`Service ${name}`);
    const held = this.#services.get(name);
    if (held && essence(held) === essence(current)) return false;
    this.#services.set(name, current);
    this.#pending.add(name);
    return true;
  }

  #applySlice(previous: EndpointSlice | undefined, current: EndpointSlice | undefined): boolean {
    const key = objectKey((current ?? previous)!.metadata);
    if (current) {
      const problems = validateEndpointSlice(current);
      if (problems.length > 0) {
        this.#errors.set(`EndpointSlice ${key}`, problems); // the last valid version stays in force
        return false;
      }
    }
    this.#errors.delete(`EndpointSlice ${key}`);
    const held = this.#slices.get(key);
    if (held) this.#unindex(key, held);
    if (!current) return held !== undefined;
    this.#slices.set(key, current);
    const owner = current.metadata.labels?.[LABEL_SERVICE_NAME];
    if (!owner) return held !== undefined;
    const svc = `${current.metadata.namespace ?? 'default'}/${owner}`;
    let map = this.#slicesByService.get(svc);
    if (!map) this.#slicesByService.set(svc, (map = new Map()));
    map.set(key, current);
    this.#pending.add(svc);
    return true;
  }

  #unindex(key: string, slice: EndpointSlice): void {
    this.#slices.delete(key);
    const owner = slice.metadata.labels?.[LABEL_SERVICE_NAME];
    if (!owner) return;
    const svc = `${slice.metadata.namespace ?? 'default'}/${owner}`;
    const map = this.#slicesByService.get(svc);
    map?.delete(key);
    if (map?.size === 0) this.#slicesByService.delete(svc);
    this.#pending.add(svc);
  }

  #applyNode(current: Node | undefined, previous: Node | undefined): boolean {
    const name = (current ?? previous)?.metadata.name;
    if (name !== this.#options.nodeName) return false; // only the own Node shapes this table
    if (current) {
      const problems = validateNode(current);
      if (problems.length > 0) {
        this.#errors.set(`Node ${name}`, problems);
        return false;
      }
      this.#errors.delete(`Node ${name}`);
    }
    this.#node = current;
    const context = nodeContextFrom(this.#node, this.#options);
    if (JSON.stringify(context) === JSON.stringify(this.#context)) return false;
    this.#context = context;
    this.#full = true; // addresses, zone: every service may change
    return true;
  }
}
