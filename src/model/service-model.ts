// The stateful heart of the sync, in kube-proxy's shape (pkg/proxy/servicechangetracker.go,
// endpointschangetracker.go): sources record {previous, current} changes into the trackers, equal
// ones are dropped, and a sync drains the set of touched services, recomputes only those, and
// returns the minimal diff against the table it computed last time (frontend-table.ts).
import type { InvalidObjectError } from '../common/errors.ts';
import type { Change } from './change.ts';
import { EndpointsChangeTracker } from './endpoints-change-tracker.ts';
import { essence } from './essence.ts';
import type { FrontendDiff, FrontendTable } from './frontend.ts';
import { ServiceFrontendTable } from './frontend-table.ts';
import { computeServiceFrontends, type NodeContext, type ServiceFrontends } from './frontends.ts';
import type { NamespacedName, Node } from './k8s.ts';
import { nodeContextFrom, type NodeContextOptions } from './node-context.ts';
import { ObjectErrors } from './object-errors.ts';
import { ServiceChangeTracker } from './service-change-tracker.ts';
import { validateNode } from './validate.ts';

export { nodeContextFrom } from './node-context.ts';

/** What the model takes in: Pods shape no frontend. */
export type ModelChange = Change<'Service' | 'EndpointSlice' | 'Node'>;

export interface ServiceModelOptions extends NodeContextOptions {
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

export class ServiceModel {
  readonly #options: ServiceModelOptions;
  readonly #pending = new Set<NamespacedName>();
  readonly #errors = new ObjectErrors();
  readonly #services: ServiceChangeTracker;
  readonly #endpoints: EndpointsChangeTracker;
  readonly #table = new ServiceFrontendTable();
  #context: NodeContext;
  #full = true;
  readonly #unsynced: Set<SourceKind>;

  constructor(options: ServiceModelOptions) {
    this.#options = options;
    const validation = options.nodePortRange ? { nodePortRange: options.nodePortRange } : {};
    this.#services = new ServiceChangeTracker(this.#pending, this.#errors, validation);
    this.#endpoints = new EndpointsChangeTracker(this.#pending, this.#errors);
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
        return this.#services.update(change.previous, change.current);
      case 'EndpointSlice':
        return this.#endpoints.update(change.previous, change.current);
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
    return this.#errors.all();
  }

  table(): FrontendTable {
    return this.#table.view();
  }

  services(): NamespacedName[] {
    return [...this.#services.names()];
  }

  /** Drains the recorded changes and returns the minimal diff that takes the last table to the new one. */
  sync(): ModelSync {
    // A partial view would remove frontends of services not listed yet: hold everything back.
    if (!this.synced) return { diff: { upsert: [], remove: [] }, changedServices: [], full: false, warnings: [] };
    const full = this.#full;
    const names = full ? new Set([...this.#services.names(), ...this.#table.names()]) : new Set(this.#pending);
    this.#pending.clear();
    this.#full = false;
    const warnings: string[] = [];
    const ordered = [...names].sort();
    const diff = this.#table.update(ordered, (name) => this.#compute(name), warnings);
    return { diff, changedServices: ordered, full, warnings };
  }

  #compute(name: NamespacedName): ServiceFrontends | undefined {
    const service = this.#services.get(name);
    return service ? computeServiceFrontends(service, this.#endpoints.slicesOf(name), this.#context) : undefined;
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
    const context = nodeContextFrom(current, this.#options);
    if (JSON.stringify(context) === JSON.stringify(this.#context)) return false;
    this.#context = context;
    this.#full = true; // addresses, zone: every service may change
    return true;
  }
}
