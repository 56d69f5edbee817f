// Ferry's standalone source: a directory of ordinary Kubernetes manifests stands in for the API
// server. Files become objects (watcher), Services get what the API server would give them
// (allocator), Services with selectors get the slices the EndpointSlice controller would write
// (builder), and the result leaves as `{kind, key, previous, current}` changes, the same shape as
// the Kubernetes source, for the agent to feed into the model's trackers. The whole output is
// recomputed per batch of file changes and diffed against what was last emitted, so only real
// differences are reported, whatever path a file change took to get here.
import { isDeepStrictEqual } from 'node:util';
import { logger } from '../../common/log.ts';
import { POLICY_CHANGE_KINDS, type KeyedChange, type PolicyChangeKind } from '../../model/change.ts';
import type { EndpointSlice, Node, Pod, Service } from '../../model/k8s.ts';
import { policyNamespaceOf, policyPodOf, slimPolicyOf, type Namespace } from '../../model/policy-pod.ts';
import type { NetworkPolicy, PolicyNamespace, PolicyPod } from '../../model/policy/api.ts';
import { ServiceAllocator, type AllocationError, type AllocationState } from './allocator.ts';
import { countKept } from './directory.ts';
import { buildEndpointSlices, hasSelector, selectorMatches } from './endpointslices.ts';
import { formatIssue, identityOf, type ManifestIssue } from './parse.ts';
import {
  DEFAULT_NODE_PORT_RANGE,
  DEFAULT_SERVICE_CIDRS,
  parsePortRange,
  parseServiceCidrs,
  type PortRange,
} from './ranges.ts';
import { recoverAllocations, type LiveAllocations } from './recovery.ts';
import { AllocationStateFile } from './state-file.ts';
import { ManifestWatcher, type ManifestObjectChange } from './watcher.ts';

const log = logger('manifest-source');

export type ManifestChange = KeyedChange<'Service' | 'EndpointSlice' | 'Node'>;
export type ManifestPolicyChange = KeyedChange<PolicyChangeKind>;

export interface ManifestSourceOptions {
  /** Where allocations are kept across restarts (`allocations.json`). */
  readonly stateDir: string;
  readonly onChange: (change: ManifestChange) => void;
  /** NetworkPolicies, Namespaces and Pods as policy sees them (policy-pod.ts); not computed without it. */
  readonly onPolicyChange?: (change: ManifestPolicyChange) => void;
  /** Primary family first. Default 10.96.0.0/16 and fd00:10:96::/108. */
  readonly serviceCidrs?: readonly string[];
  /** `{first, last}` or `"30000-32767"` (the default). */
  readonly nodePortRange?: PortRange | string;
  readonly maxEndpointsPerSlice?: number;
  readonly debounceMs?: number;
  readonly rescanMs?: number;
  /** Use fs.watch as well as the periodic rescan (default true). */
  readonly watch?: boolean;
  /** A changed file is read once it has been quiet this long (default 250 ms). */
  readonly settleMs?: number;
  /** Manifest files larger than this are refused by name, unread (default 4 MiB). */
  readonly maxFileBytes?: number;
  /**
   * What the pinned datapath serves (read at start): live ClusterIPs and NodePorts missing from
   * allocations.json (corrupt, lost) are given back to their Services or reserved, never to another.
   */
  readonly liveAllocations?: LiveAllocations;
}

export interface AllocationsStatus {
  /** `state-file`, or `rebuilt` when the datapath supplied what the state file did not. */
  readonly source: 'state-file' | 'rebuilt';
  /** Why the state file was not used, if so. */
  readonly corruption?: string;
  readonly summary?: string;
}

export interface ManifestSourceStatus {
  readonly dir: string;
  readonly synced: boolean;
  readonly objects: {
    readonly services: number;
    readonly endpointSlices: number;
    readonly nodes: number;
    readonly pods: number;
    readonly networkPolicies: number;
    readonly namespaces: number;
  };
  /** Kinds read but not used yet, with counts. */
  readonly kept: Readonly<Record<string, number>>;
  readonly issues: readonly ManifestIssue[];
  readonly allocations: AllocationsStatus;
}

/**
 * Pods by namespace and `label=value`, so that each Service looks only at the Pods that carry one
 * of its selector's labels instead of every Pod in its namespace.
 */
class PodIndex {
  readonly #byLabel = new Map<string, Pod[]>();

  constructor(pods: Iterable<Pod>) {
    for (const pod of pods) {
      const ns = pod.metadata.namespace ?? 'default';
      for (const [k, v] of Object.entries(pod.metadata.labels ?? {})) {
        const bucket = `${ns}\0${k}=${v}`;
        const list = this.#byLabel.get(bucket);
        if (list) list.push(pod);
        else this.#byLabel.set(bucket, [pod]);
      }
    }
  }

  /** A superset of the Pods the selector matches (the smallest of its labels' buckets). */
  candidates(namespace: string, selector: Readonly<Record<string, string>>): readonly Pod[] {
    let best: readonly Pod[] | undefined;
    for (const [k, v] of Object.entries(selector)) {
      const list = this.#byLabel.get(`${namespace}\0${k}=${v}`) ?? [];
      if (!best || list.length < best.length) best = list;
    }
    return best ?? [];
  }
}

export class ManifestSource {
  readonly #dir: string;
  readonly #options: ManifestSourceOptions;
  /** Made at the first recompute: rebuilding from the datapath needs the Services. */
  #allocator: ServiceAllocator | undefined;
  readonly #stateFile: AllocationStateFile;
  readonly #loaded: AllocationState;
  readonly #ranges: ReturnType<typeof parseServiceCidrs>;
  readonly #ports: PortRange;
  #allocations: AllocationsStatus = { source: 'state-file' };
  readonly #watcher: ManifestWatcher;
  // What the directory says …
  readonly #services = new Map<string, Service>();
  readonly #userSlices = new Map<string, EndpointSlice>();
  readonly #pods = new Map<string, Pod>();
  readonly #nodes = new Map<string, Node>();
  readonly #policies = new Map<string, NetworkPolicy>();
  readonly #namespaces = new Map<string, Namespace>();
  // … and what was last emitted.
  #outServices: ReadonlyMap<string, Service> = new Map();
  #outSlices: ReadonlyMap<string, EndpointSlice> = new Map();
  #outNodes: ReadonlyMap<string, Node> = new Map();
  #outPolicies: ReadonlyMap<string, NetworkPolicy> = new Map();
  #outNamespaces: ReadonlyMap<string, PolicyNamespace> = new Map();
  #outPolicyPods: ReadonlyMap<string, PolicyPod> = new Map();
  #derivedIssues: readonly ManifestIssue[] = [];
  #synced = false;
  #resolveListed!: () => void;
  /** Resolves once the whole directory has been read and its objects emitted. */
  readonly initialListDone: Promise<void>;

  private constructor(dir: string, options: ManifestSourceOptions) {
    this.#dir = dir;
    this.#options = options;
    this.initialListDone = new Promise((resolve) => (this.#resolveListed = resolve));
    const ranges = parseServiceCidrs(options.serviceCidrs ?? DEFAULT_SERVICE_CIDRS);
    const ports =
      typeof options.nodePortRange === 'string'
        ? parsePortRange(options.nodePortRange)
        : (options.nodePortRange ?? DEFAULT_NODE_PORT_RANGE);
    this.#ranges = ranges;
    this.#ports = ports;
    this.#stateFile = new AllocationStateFile(options.stateDir);
    this.#loaded = this.#stateFile.load();
    this.#watcher = ManifestWatcher.open(dir, {
      ...(options.settleMs !== undefined ? { settleMs: options.settleMs } : {}),
      ...(options.maxFileBytes !== undefined ? { maxFileBytes: options.maxFileBytes } : {}),
      onChanges: (changes) => this.#onChanges(changes),
      ...(options.debounceMs !== undefined ? { debounceMs: options.debounceMs } : {}),
      ...(options.rescanMs !== undefined ? { rescanMs: options.rescanMs } : {}),
      ...(options.watch !== undefined ? { watch: options.watch } : {}),
    });
  }

  /** Starts reading `dir`; changes arrive through `options.onChange`. Throws if `dir` is unusable. */
  static open(dir: string, options: ManifestSourceOptions): ManifestSource {
    return new ManifestSource(dir, options);
  }

  get synced(): boolean {
    return this.#synced;
  }

  /** Current problems, each naming file, document, object and field where known. */
  issues(): readonly ManifestIssue[] {
    const a = this.#allocations;
    const state: ManifestIssue[] =
      a.corruption !== undefined
        ? [
            {
              file: this.#stateFile.path,
              message: `corrupt (${a.corruption}); ${a.summary !== undefined ? `rebuilt from the datapath: ${a.summary}` : 'no datapath state given, allocations start empty'}`,
            },
          ]
        : [];
    return [...state, ...this.#watcher.issues(), ...this.#derivedIssues];
  }

  /** `issues()` as lines for `ferry status`. */
  errors(): readonly string[] {
    return this.issues().map(formatIssue);
  }

  /** The Pods in the directory (the lab starts its workloads from them). */
  pods(): readonly Pod[] {
    return [...this.#pods.values()];
  }

  status(): ManifestSourceStatus {
    return {
      dir: this.#dir,
      synced: this.#synced,
      objects: {
        services: this.#outServices.size,
        endpointSlices: this.#outSlices.size,
        nodes: this.#outNodes.size,
        pods: this.#pods.size,
        networkPolicies: this.#policies.size,
        namespaces: this.#namespaces.size,
      },
      kept: countKept(this.#watcher.kept()),
      issues: this.issues(),
      allocations: this.#allocations,
    };
  }

  /** Rescans the directory now and resolves when the result has been emitted. */
  async rescan(): Promise<void> {
    await this.#watcher.rescan();
  }

  async close(): Promise<void> {
    await this.#watcher.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #onChanges(changes: readonly ManifestObjectChange[]): void {
    for (const c of changes) {
      const stores: Readonly<Record<ManifestObjectChange['kind'], Map<string, unknown>>> = {
        Service: this.#services,
        EndpointSlice: this.#userSlices,
        Pod: this.#pods,
        Node: this.#nodes,
        NetworkPolicy: this.#policies,
        Namespace: this.#namespaces,
      };
      const store = stores[c.kind];
      if (c.current === undefined) store.delete(c.key);
      else store.set(c.key, c.current);
    }
    this.#recompute();
    if (!this.#synced) {
      this.#synced = true;
      this.#resolveListed();
    }
  }

  #makeAllocator(): ServiceAllocator {
    const corruption = this.#stateFile.corruption;
    const live = this.#options.liveAllocations;
    if (!live) {
      this.#allocations = { source: 'state-file', ...(corruption !== undefined ? { corruption } : {}) };
      return new ServiceAllocator(this.#ranges, this.#ports, this.#loaded);
    }
    const r = recoverAllocations(live, this.#services, this.#loaded, (service) => this.#podIPsOf(service));
    const rebuilt = Object.keys(r.state).length > Object.keys(this.#loaded).length;
    const used = rebuilt || r.reservedIps.length + r.reservedPorts.length > 0;
    this.#allocations = {
      source: used ? 'rebuilt' : 'state-file',
      ...(corruption !== undefined ? { corruption } : {}),
      ...(used || corruption !== undefined ? { summary: r.summary } : {}),
    };
    if (used)
      log.warn({ file: this.#stateFile.path, summary: r.summary }, 'allocations rebuilt from the datapath');
    return new ServiceAllocator(this.#ranges, this.#ports, r.state, {
      ips: r.reservedIps,
      ports: r.reservedPorts,
    });
  }

  /** The addresses of the pods a Service selects: what its live frontends forward to. */
  *#podIPsOf(service: Service): Iterable<string> {
    const selector = service.spec.selector;
    if (!selector || Object.keys(selector).length === 0) return;
    for (const pod of this.#pods.values()) {
      if ((pod.metadata.namespace ?? 'default') !== (service.metadata.namespace ?? 'default')) continue;
      if (!selectorMatches(selector, pod.metadata.labels)) continue;
      for (const ip of pod.status?.podIPs?.map((p) => p.ip) ?? (pod.status?.podIP ? [pod.status.podIP] : [])) yield ip;
    }
  }

  /** Allocates, derives the slices, and emits what differs from the last output. */
  #recompute(): void {
    const issues: ManifestIssue[] = [];
    const services = this.#allocate(issues);
    const slices = this.#deriveSlices(services, issues);
    this.#derivedIssues = issues;
    const [nodesBefore, servicesBefore, slicesBefore] = [this.#outNodes, this.#outServices, this.#outSlices];
    this.#outNodes = new Map(this.#nodes);
    this.#outServices = services;
    this.#outSlices = slices;
    this.#emit('Node', nodesBefore, this.#outNodes);
    this.#emit('Service', servicesBefore, this.#outServices);
    this.#emit('EndpointSlice', slicesBefore, this.#outSlices);
    this.#emitPolicyView();
  }

  /** What NetworkPolicy reads, projected (policy-pod.ts): namespaces, pods, then the policies. */
  #emitPolicyView(): void {
    if (!this.#options.onPolicyChange) return;
    const [namespaces, pods, policies] = [this.#outNamespaces, this.#outPolicyPods, this.#outPolicies];
    this.#outNamespaces = new Map([...this.#namespaces].map(([k, n]) => [k, policyNamespaceOf(n)]));
    this.#outPolicyPods = new Map([...this.#pods].map(([k, p]) => [k, policyPodOf(p)]));
    this.#outPolicies = new Map([...this.#policies].map(([k, p]) => [k, slimPolicyOf(p)]));
    this.#emit('Namespace', namespaces, this.#outNamespaces);
    this.#emit('PolicyPod', pods, this.#outPolicyPods);
    this.#emit('NetworkPolicy', policies, this.#outPolicies);
  }

  /** The Services with their allocations filled in; refusals and a failed save become issues. */
  #allocate(issues: ManifestIssue[]): ReadonlyMap<string, Service> {
    this.#allocator ??= this.#makeAllocator();
    const { services, errors } = this.#allocator.reconcile(this.#services, {
      keepAbsent: this.#watcher.incomplete,
    });
    for (const [key, err] of errors) issues.push(this.#issueFor('Service', key, err));
    try {
      this.#stateFile.save(this.#allocator.state());
    } catch (err) {
      log.error({ err, file: this.#stateFile.path }, 'saving allocations failed');
      issues.push({
        file: this.#stateFile.path,
        message: `saving allocations failed: ${(err as Error).message}`,
      });
    }
    return services;
  }

  /** The files' own slices plus those built for Services with selectors; a file's slice wins a name clash. */
  #deriveSlices(services: ReadonlyMap<string, Service>, issues: ManifestIssue[]): Map<string, EndpointSlice> {
    const slices = new Map(this.#userSlices);
    const pods = new PodIndex(this.#pods.values());
    const options =
      this.#options.maxEndpointsPerSlice !== undefined ? { maxEndpointsPerSlice: this.#options.maxEndpointsPerSlice } : {};
    for (const [key, service] of services) {
      if (!hasSelector(service)) continue;
      const candidates = pods.candidates(service.metadata.namespace ?? 'default', service.spec.selector!);
      for (const slice of buildEndpointSlices(service, candidates, this.#nodes, options)) {
        const sliceKey = `${slice.metadata.namespace}/${slice.metadata.name}`;
        if (!this.#userSlices.has(sliceKey)) {
          slices.set(sliceKey, slice);
          continue;
        }
        const at = this.#watcher.locate(identityOf('EndpointSlice', slice.metadata.namespace, slice.metadata.name));
        issues.push({
          file: at?.file ?? '.',
          ...(at ? { document: at.document } : {}),
          object: `EndpointSlice ${sliceKey}`,
          message: `has the name of a slice generated for Service ${key}; the file's slice is used`,
        });
      }
    }
    return slices;
  }

  #emit<K extends (ManifestChange | ManifestPolicyChange)['kind'], T>(kind: K, before: ReadonlyMap<string, T>, after: ReadonlyMap<string, T>): void {
    // Deletions first: an address or NodePort released in this batch may already belong to
    // another Service, and its new holder must never be seen while the old one still has it.
    const keys = [...new Set([...before.keys(), ...after.keys()])];
    const gone = keys.filter((k) => !after.has(k));
    for (const key of [...gone, ...keys.filter((k) => after.has(k))]) {
      const previous = before.get(key);
      const current = after.get(key);
      if (isDeepStrictEqual(previous, current)) continue;
      try {
        const change = { kind, key, previous, current };
        if (POLICY_CHANGE_KINDS.has(kind)) this.#options.onPolicyChange?.(change as ManifestPolicyChange);
        else this.#options.onChange(change as ManifestChange);
      } catch (err) {
        log.error({ err, kind, key }, 'change handler failed');
      }
    }
  }

  #issueFor(kind: string, key: string, err: AllocationError): ManifestIssue {
    const [namespace, name] = key.split('/') as [string, string];
    const at = this.#watcher.locate(identityOf(kind, namespace, name));
    return {
      file: at?.file ?? '.',
      ...(at ? { document: at.document } : {}),
      object: err.object,
      field: err.field,
      message: err.message.slice(`${err.object}: ${err.field}: `.length),
    };
  }
}
