// Identities: every address becomes numbers that stand for everything policy can tell about it,
// so a per-endpoint table keyed by number answers exactly what the objects would. Two numbers,
// because two things can select an address:
// - its label identity: for a pod its labels, its namespace's labels and name, and the numbers
//   of the named ports some egress rule names (egress resolves a name against the destination
//   pod, and pods with equal labels may number it differently); `host` for this node's own
//   addresses, `world` for the rest. Pods that agree on all of it share one.
// - its CIDR identity: which ipBlock prefixes contain it (ipBlocks match pod IPs too, see
//   evaluate.ts) and, for a pod, the same named-port numbers; none for an address no prefix
//   holds. Kept apart so that a policy with a wide ipBlock (0.0.0.0/0 except the metadata
//   address, say) renumbers no pod: label identities of unchanged label sets stay as they were.
// The one remaining coupling: the first egress rule that names a port makes that name's numbers
// part of the label identity of pods that have it, so such a change does renumber them.
import type { ContainerPort } from './api.ts';

/** The wildcard of a policy table key: any peer, cluster-external included. Never an address's identity. */
export const IDENTITY_ANY = 0;
/** This node's own addresses. */
export const IDENTITY_HOST = 1;
/** Any address that is no pod and not this node. */
export const IDENTITY_WORLD = 2;
/** The first number handed out; below it are reserved. */
export const FIRST_ALLOCATED_IDENTITY = 256;

export type IdentityKind = 'pod' | 'host' | 'world' | 'cidr';

export interface IdentityFacts {
  readonly kind: IdentityKind;
  /** For pods: the pod's namespace and labels, and its namespace's labels (with the name label). */
  readonly namespace?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly namespaceLabels?: Readonly<Record<string, string>>;
  /** For `cidr`: the ipBlock prefixes (canonical CIDR text) containing its addresses; else empty. */
  readonly prefixes: ReadonlySet<string>;
  /** For pods (and their CIDR identities): the container ports whose names some egress rule uses. */
  readonly namedPorts: readonly ContainerPort[];
}

export interface IdentityInfo extends IdentityFacts {
  readonly id: number;
  readonly key: string;
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
