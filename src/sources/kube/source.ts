// The Kubernetes-mode source: list-watches of Services, EndpointSlices and Nodes, delivered as
// `{kind, previous, current}` changes. The first sync may start only once all three have listed
// and the agent's own Node is known (kube-proxy waits the same way before its first sync).
// With onPolicyChange, NetworkPolicies, Namespaces and Pods are watched cluster-wide as well
// (policy-watches.ts); they do not gate that first sync: nothing is enforced from them yet, and a
// cluster whose RBAC lacks them must keep its Services.
import type { Change } from '../../model/change.ts';
import type { EndpointSlice, Node, Pod, Service } from '../../model/k8s.ts';
import { KubeClient, type KubeClientOptions } from './client.ts';
import { ListWatch, type KubeApi, type ListWatchStatus } from './list-watch.ts';
import { PolicyWatches, type PolicyChange } from './policy-watches.ts';

export type { PolicyChange } from './policy-watches.ts';

export type KubeChange = Change<'Service' | 'EndpointSlice' | 'Node'>;

export interface KubeSourceOptions extends KubeClientOptions {
  readonly nodeName: string;
  readonly onChange: (change: KubeChange) => void;
  readonly inactivityMs?: number;
  /** Also watch the Pods bound to this node, so flow events can name client pods that back no
   * Service (observability only: never gates the first sync). Needs list/watch on pods. */
  readonly watchLocalPods?: boolean;
  /** Watch what NetworkPolicy reads (needs list/watch on networkpolicies, namespaces, pods). */
  readonly onPolicyChange?: (change: PolicyChange) => void;
}

export interface KubeSourceStatus {
  readonly synced: boolean;
  readonly ownNodeSeen: boolean;
  readonly watches: readonly ListWatchStatus[];
}

// Services and slices a non-default proxy owns are skipped by the model, not filtered here, so a
// label change moves them in and out through ordinary change events.
export class KubeSource {
  readonly #services: ListWatch<Service>;
  readonly #slices: ListWatch<EndpointSlice>;
  readonly #nodes: ListWatch<Node>;
  readonly #pods: ListWatch<Pod> | undefined;
  readonly #policy: PolicyWatches | undefined;
  readonly #nodeName: string;
  #ownNodeSeen = false;
  #resolveOwnNode!: () => void;
  /** Resolves when every watch has listed once and the own Node exists. */
  readonly ready: Promise<void>;
  /** Resolves when the policy watches have listed once (never, without onPolicyChange). */
  readonly policySynced: Promise<void>;

  constructor(api: KubeApi, options: KubeSourceOptions) {
    this.#nodeName = options.nodeName;
    const ownNode = new Promise<void>((resolve) => (this.#resolveOwnNode = resolve));
    const common = options.inactivityMs ? { inactivityMs: options.inactivityMs } : {};
    this.#services = new ListWatch<Service>(api, {
      ...common,
      path: '/api/v1/services',
      onChange: (c) => options.onChange({ kind: 'Service', ...c }),
    });
    this.#slices = new ListWatch<EndpointSlice>(api, {
      ...common,
      path: '/apis/discovery.k8s.io/v1/endpointslices',
      onChange: (c) => options.onChange({ kind: 'EndpointSlice', ...c }),
    });
    this.#nodes = new ListWatch<Node>(api, {
      ...common,
      path: '/api/v1/nodes',
      onChange: (c) => {
        if (c.current?.metadata.name === this.#nodeName && !this.#ownNodeSeen) {
          this.#ownNodeSeen = true;
          this.#resolveOwnNode();
        }
        options.onChange({ kind: 'Node', ...c });
      },
    });
    this.#pods = options.watchLocalPods
      ? new ListWatch<Pod>(api, {
          ...common,
          path: '/api/v1/pods',
          fieldSelector: `spec.nodeName=${this.#nodeName}`,
          onChange: () => undefined,
        })
      : undefined;
    this.#policy = options.onPolicyChange ? new PolicyWatches(api, { ...common, onPolicyChange: options.onPolicyChange }) : undefined;
    this.policySynced = this.#policy?.synced ?? new Promise<void>(() => undefined);
    this.ready = Promise.all([this.#services.synced, this.#slices.synced, this.#nodes.synced, ownNode]).then(
      () => undefined,
    );
  }

  static connect(options: KubeSourceOptions): KubeSource {
    return new KubeSource(KubeClient.fromOptions(options), options);
  }

  /** The Pods bound to this node (empty unless watchLocalPods). */
  pods(): readonly Pod[] {
    return this.#pods?.list() ?? [];
  }

  status(): KubeSourceStatus {
    const watches = [this.#services.status(), this.#slices.status(), this.#nodes.status()];
    return {
      synced: watches.every((w) => w.synced) && this.#ownNodeSeen,
      ownNodeSeen: this.#ownNodeSeen,
      watches: [...watches, ...(this.#pods ? [this.#pods.status()] : []), ...(this.#policy?.status() ?? [])],
    };
  }

  async close(): Promise<void> {
    await Promise.all([
      this.#services.close(),
      this.#slices.close(),
      this.#nodes.close(),
      this.#pods?.close(),
      this.#policy?.close(),
    ]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
