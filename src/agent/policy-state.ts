// What the agent knows for NetworkPolicy: the policies in force (PolicyTracker keeps the last valid
// version of each, so an invalid edit is reported by object and field and the previous version
// stays), and the pods, namespaces and nodes their selectors and peers read, as one PolicyCluster
// view. The Service model never sees these kinds. Nothing here reaches the kernel yet: this is the
// state the policy compile will start from.
import type { InvalidObjectError } from '../common/errors.ts';
import { isDeepStrictEqual } from 'node:util';
import type { Change, PolicyChangeKind } from '../model/change.ts';
import { policyNodeOf } from '../model/policy-pod.ts';
import type { PolicyCluster, PolicyNamespace, PolicyNode, PolicyPod } from '../model/policy/api.ts';
import { PolicyTracker } from '../model/policy/tracker.ts';

/** A change PolicyState takes: the policy kinds, and Nodes (the node's own addresses are always allowed). */
export type PolicyStateChange = Change<PolicyChangeKind | 'Node'>;

export interface PolicyStateStatus {
  readonly policies: number;
  readonly pods: number;
  readonly namespaces: number;
  readonly nodes: number;
  /** Bumped by every change to what is in force, so a consumer can tell that it must recompute. */
  readonly generation: number;
}

/** Sets one entry of a keyed map from a transition; returns whether the map changed. */
function record<T>(map: Map<string, T>, key: string, current: T | undefined): boolean {
  if (current === undefined) return map.delete(key);
  if (isDeepStrictEqual(map.get(key), current)) return false;
  map.set(key, current);
  return true;
}

export class PolicyState {
  readonly #tracker = new PolicyTracker();
  readonly #pods = new Map<string, PolicyPod>();
  readonly #namespaces = new Map<string, PolicyNamespace>();
  readonly #nodes = new Map<string, PolicyNode>();
  #generation = 0;

  /** Records one change; returns whether what is in force changed (false for a refused or no-op one). */
  apply(change: PolicyStateChange): boolean {
    const changed = this.#apply(change);
    if (changed) this.#generation++;
    return changed;
  }

  #apply(change: PolicyStateChange): boolean {
    switch (change.kind) {
      case 'NetworkPolicy':
        return this.#tracker.update(change.previous, change.current);
      case 'Namespace': {
        const object = (change.current ?? change.previous)!;
        return record(this.#namespaces, object.name, change.current);
      }
      case 'PolicyPod': {
        const object = (change.current ?? change.previous)!;
        return record(this.#pods, `${object.namespace}/${object.name}`, change.current);
      }
      case 'Node': {
        const object = (change.current ?? change.previous)!;
        return record(this.#nodes, object.metadata.name, change.current && policyNodeOf(change.current));
      }
    }
  }

  /** Everything a decision depends on, now. A namespace with pods and no object still has its name label (api.ts). */
  cluster(): PolicyCluster {
    return {
      policies: this.#tracker.policies(),
      pods: [...this.#pods.values()],
      namespaces: [...this.#namespaces.values()],
      nodes: [...this.#nodes.values()],
    };
  }

  /** Refused policy versions, each naming object and field; the previous version of each is in force. */
  errors(): InvalidObjectError[] {
    return this.#tracker.errors();
  }

  status(): PolicyStateStatus {
    return {
      policies: this.#tracker.policies().length,
      pods: this.#pods.size,
      namespaces: this.#namespaces.size,
      nodes: this.#nodes.size,
      generation: this.#generation,
    };
  }
}
