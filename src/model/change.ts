// The one shape every source delivers and the model's trackers take in: an object's state before
// and after one event, as kube-proxy's change trackers record it (pkg/proxy/servicechangetracker.go).
// `previous` undefined is an add, `current` undefined a delete.
import type { EndpointSlice, Node, Pod, Service } from './k8s.ts';
import type { NetworkPolicy, PolicyNamespace, PolicyPod } from './policy/api.ts';

/** The object types a change can carry, by kind. */
export interface ChangeObjects {
  readonly Service: Service;
  readonly EndpointSlice: EndpointSlice;
  readonly Node: Node;
  readonly Pod: Pod;
  // What NetworkPolicy reads. Namespaces and Pods arrive already projected to the fields policy
  // uses (policy-pod.ts), so no consumer holds whole Pod objects cluster-wide.
  readonly NetworkPolicy: NetworkPolicy;
  readonly Namespace: PolicyNamespace;
  readonly PolicyPod: PolicyPod;
}

export type ChangeKind = keyof ChangeObjects;

/** The kinds only NetworkPolicy reads; the Service model never sees them. */
export type PolicyChangeKind = 'NetworkPolicy' | 'Namespace' | 'PolicyPod';
export const POLICY_CHANGE_KINDS: ReadonlySet<string> = new Set<PolicyChangeKind>(['NetworkPolicy', 'Namespace', 'PolicyPod']);

/** An object before and after one event, of whatever type (a list-watch delivers these untagged). */
export interface Transition<T> {
  readonly previous: T | undefined;
  readonly current: T | undefined;
}

/**
 * One change of an object of kind K. Distributes over a union of kinds, so `Change<'Service' |
 * 'Node'>` is a union that narrows on `kind`.
 */
export type Change<K extends ChangeKind = ChangeKind> = K extends ChangeKind
  ? { readonly kind: K } & Transition<ChangeObjects[K]>
  : never;

/** A change that also names its object (`namespace/name`, or `name` for a Node), as the manifest source emits it. */
export type KeyedChange<K extends ChangeKind = ChangeKind> = Change<K> & { readonly key: string };
