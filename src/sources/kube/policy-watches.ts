// What NetworkPolicy reads from the API server: list-watches of networkpolicies, namespaces and pods,
// all cluster-wide (a peer may be any pod in any namespace). Each object is projected as it arrives
// (model/policy-pod.ts), so the store holds a few fields per pod, not whole Pods, and a change that
// moves nothing policy reads (a Pod's status heartbeat, a condition flip) is not delivered at all.
import { isDeepStrictEqual } from 'node:util';
import type { Change, PolicyChangeKind } from '../../model/change.ts';
import type { Pod } from '../../model/k8s.ts';
import { policyNamespaceOf, policyPodOf, slimPolicyOf, type Namespace } from '../../model/policy-pod.ts';
import type { NetworkPolicy, PolicyNamespace, PolicyPod } from '../../model/policy/api.ts';
import { ListWatch, type KubeApi, type ListWatchChange, type ListWatchStatus, type ObjectWithMeta } from './list-watch.ts';

export type PolicyChange = Change<PolicyChangeKind>;

export const POLICY_PATHS = {
  NetworkPolicy: '/apis/networking.k8s.io/v1/networkpolicies',
  Namespace: '/api/v1/namespaces',
  PolicyPod: '/api/v1/pods',
} as const;

/** A projection with the metadata the list-watch keys and diffs by. */
interface Projected<P> {
  readonly metadata: ObjectWithMeta['metadata'];
  readonly value: P;
}

function projecting<P>(project: (raw: never) => P): (raw: ObjectWithMeta) => Projected<P> {
  return (raw) => {
    const { name, namespace, resourceVersion } = raw.metadata;
    return {
      metadata: { name, ...(namespace !== undefined ? { namespace } : {}), ...(resourceVersion !== undefined ? { resourceVersion } : {}) },
      value: project(raw as never),
    };
  };
}

/** The transition of the projected values, or undefined when the projection did not move. */
function unwrap<P>(c: ListWatchChange<Projected<P>>): ListWatchChange<P> | undefined {
  const previous = c.previous?.value;
  const current = c.current?.value;
  if (previous !== undefined && current !== undefined && isDeepStrictEqual(previous, current)) return undefined;
  return { previous, current };
}

export interface PolicyWatchOptions {
  readonly onPolicyChange: (change: PolicyChange) => void;
  readonly inactivityMs?: number;
}

export class PolicyWatches {
  readonly #policies: ListWatch<NetworkPolicy>;
  readonly #namespaces: ListWatch<Projected<PolicyNamespace>>;
  readonly #pods: ListWatch<Projected<PolicyPod>>;
  /** Resolves when all three have listed once. */
  readonly synced: Promise<void>;

  constructor(api: KubeApi, options: PolicyWatchOptions) {
    const common = options.inactivityMs ? { inactivityMs: options.inactivityMs } : {};
    const deliver = options.onPolicyChange;
    this.#policies = new ListWatch<NetworkPolicy>(api, {
      ...common,
      path: POLICY_PATHS.NetworkPolicy,
      project: (raw) => slimPolicyOf(raw as NetworkPolicy),
      onChange: (c) => {
        // A resourceVersion bump alone (an annotation edit) changes no rule.
        if (c.previous && c.current && isDeepStrictEqual(c.previous.spec, c.current.spec)) return;
        deliver({ kind: 'NetworkPolicy', ...c });
      },
    });
    this.#namespaces = new ListWatch<Projected<PolicyNamespace>>(api, {
      ...common,
      path: POLICY_PATHS.Namespace,
      project: projecting((raw: Namespace) => policyNamespaceOf(raw)),
      onChange: (c) => {
        const t = unwrap(c);
        if (t) deliver({ kind: 'Namespace', ...t });
      },
    });
    this.#pods = new ListWatch<Projected<PolicyPod>>(api, {
      ...common,
      path: POLICY_PATHS.PolicyPod,
      project: projecting((raw: Pod) => policyPodOf(raw)),
      onChange: (c) => {
        const t = unwrap(c);
        if (t) deliver({ kind: 'PolicyPod', ...t });
      },
    });
    this.synced = Promise.all([this.#policies.synced, this.#namespaces.synced, this.#pods.synced]).then(() => undefined);
  }

  status(): ListWatchStatus[] {
    return [this.#policies.status(), this.#namespaces.status(), this.#pods.status()];
  }

  async close(): Promise<void> {
    await Promise.all([this.#policies.close(), this.#namespaces.close(), this.#pods.close()]);
  }
}
