// Identities: every address becomes a number that stands for everything policy can tell about
// it, so a per-endpoint table keyed by number answers exactly what the objects would. For a pod
// address that is its label set, its namespace's labels and name, and two things upstream
// semantics also read: which ipBlock prefixes contain the address (ipBlocks match pod IPs too,
// see evaluate.ts), and the numbers of the named ports some egress rule names (egress resolves a
// name against the destination pod, and pods with equal labels may number it differently).
// Pods that agree on all of it share an identity. Non-pod addresses are `world` or, on this node's
// own addresses, `host`, refined the same way by ipBlock prefixes.
import type { ContainerPort } from './api.ts';

/** The wildcard of a policy table key: any peer, cluster-external included. Never an address's identity. */
export const IDENTITY_ANY = 0;
/** This node's own addresses that no ipBlock prefix contains. */
export const IDENTITY_HOST = 1;
/** Any address that is no pod, not this node, and in no ipBlock prefix. */
export const IDENTITY_WORLD = 2;
/** The first number handed out; below it are reserved. */
export const FIRST_ALLOCATED_IDENTITY = 256;

export type IdentityKind = 'pod' | 'host' | 'world';

export interface IdentityInfo {
  readonly id: number;
  readonly key: string;
  readonly kind: IdentityKind;
  /** For pods: the pod's namespace and labels, and its namespace's labels (with the name label). */
  readonly namespace?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly namespaceLabels?: Readonly<Record<string, string>>;
  /** The ipBlock prefixes (canonical CIDR text) that contain every address of this identity. */
  readonly prefixes: ReadonlySet<string>;
  /** For pods: the container ports whose names some egress rule uses. */
  readonly namedPorts: readonly ContainerPort[];
}

export interface IdentityFacts {
  readonly kind: IdentityKind;
  readonly namespace?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly namespaceLabels?: Readonly<Record<string, string>>;
  readonly prefixes: ReadonlySet<string>;
  readonly namedPorts: readonly ContainerPort[];
}

function sortedPairs(labels: Readonly<Record<string, string>> | undefined): string {
  return JSON.stringify(Object.entries(labels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** The canonical text of the facts: equal facts, equal key, so the allocator gives the same number. */
export function identityKey(f: IdentityFacts): string {
  const ports = f.namedPorts.map((p) => `${p.name}/${p.protocol ?? 'TCP'}=${p.containerPort}`).sort();
  const parts = [
    f.kind,
    f.namespace ?? '',
    sortedPairs(f.labels),
    sortedPairs(f.namespaceLabels),
    JSON.stringify([...f.prefixes].sort()),
    JSON.stringify(ports),
  ];
  return parts.join('|');
}

const HOST_KEY = identityKey({ kind: 'host', prefixes: new Set(), namedPorts: [] });
const WORLD_KEY = identityKey({ kind: 'world', prefixes: new Set(), namedPorts: [] });

/**
 * Numbers for keys, stable across compiles: a key keeps its number while it exists, a new key gets
 * the next unused one. Numbers are not reused, so a flow event or conntrack entry that outlives
 * an identity never names a different label set.
 */
export class IdentityAllocator {
  readonly #ids = new Map<string, number>();
  #next: number;

  constructor(first: number = FIRST_ALLOCATED_IDENTITY) {
    this.#next = first;
  }

  /** Numbers for exactly these keys; keys not passed are forgotten. */
  assign(keys: Iterable<string>): ReadonlyMap<string, number> {
    const out = new Map<string, number>();
    for (const key of keys) {
      if (out.has(key)) continue;
      out.set(key, this.#reserved(key) ?? this.#ids.get(key) ?? this.#next++);
    }
    for (const key of this.#ids.keys()) if (!out.has(key)) this.#ids.delete(key);
    for (const [key, id] of out) if (this.#reserved(key) === undefined) this.#ids.set(key, id);
    return out;
  }

  #reserved(key: string): number | undefined {
    if (key === HOST_KEY) return IDENTITY_HOST;
    if (key === WORLD_KEY) return IDENTITY_WORLD;
    return undefined;
  }
}

/** Named ports a pod has among the (name, protocol) pairs that egress rules name. */
export function relevantNamedPorts(
  ports: readonly ContainerPort[],
  names: ReadonlySet<string>,
): ContainerPort[] {
  return ports.filter((p) => p.name !== undefined && names.has(`${p.name}/${p.protocol ?? 'TCP'}`));
}
