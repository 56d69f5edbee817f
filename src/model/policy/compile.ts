// Policy compiled into the datapath's table shapes for one node: the address map (identities and
// LPM entries, address-map.ts) and, for each local pod that some policy isolates, one table keyed
// by (peer identity or ANY, direction, protocol, port prefix) whose entries allow, each naming
// the policy and rule that allowed. Selector peers become label identities, ipBlock peers CIDR
// identities, a rule without peers ANY; overlapping rules are flattened so each port of each key
// is credited to one rule, and ranges become port prefixes (ports.ts). A miss in an isolated direction is the deny. A pod that no
// policy selects gets no table: the datapath's one lookup (endpoint → table) misses and passes.
// The same rule-reading code as the reference decision (peers.ts) builds the entries, and the
// unit tests check lookup() over these tables against evaluate() for random clusters.
import type {
  Direction,
  NetworkPolicy,
  NetworkPolicyPort,
  PolicyCluster,
  PolicyPod,
  PolicyProtocol,
} from './api.ts';
import { PROTOCOLS, podKey, policyKey } from './api.ts';
import { buildAddressMap, type AddressMap } from './address-map.ts';
import { IDENTITY_ANY, IDENTITY_HOST, IdentityAllocator, type IdentityInfo } from './identity.ts';
import {
  hasType,
  ipBlockMatchesPrefixes,
  portProtocol,
  portRange,
  resolveNamedPort,
  rulesOf,
  selectorPeerMatches,
  type RuleView,
} from './peers.ts';
import { selects } from './evaluate.ts';
import { flattenRanges, rangeToPrefixes, type CreditedRange } from './ports.ts';
import { canonicalAddress } from './addresses.ts';

export const PROTOCOL_NUMBER: Readonly<Record<PolicyProtocol, number>> = { TCP: 6, UDP: 17, SCTP: 132 };
/** The policy id of the entries that let the pod's own node in (kubelet probes); no object has it. */
export const NODE_POLICY_ID = 0;

export interface PolicyEntry {
  readonly identity: number; // IDENTITY_ANY, a label identity or a CIDR identity
  readonly direction: Direction;
  readonly protocol: number; // IANA number
  readonly port: number; // first port of the prefix
  readonly prefixLen: number; // 0-16
  readonly policy: number; // policy id, NODE_POLICY_ID for the node's own entries
  readonly rule: number; // index into that policy's spec.ingress / spec.egress
}

export interface EndpointTable {
  readonly pod: string; // namespace/name
  /** Policy ids that isolate the pod, per direction; empty = that direction is not isolated. */
  readonly isolatedBy: Readonly<Record<Direction, readonly number[]>>;
  readonly entries: ReadonlyMap<string, PolicyEntry>;
  /**
   * Set when the entries did not fit the endpoint's map: the table is then empty, so every
   * direction a policy isolates denies everything but the pod itself (fail closed, never half a
   * policy); a direction no policy isolates needs no entries and stays open.
   */
  readonly failedClosed?: { readonly needed: number; readonly capacity: number };
}

export interface CompileOptions {
  /** The per-endpoint policy map's size (max_entries); unset = unbounded. */
  readonly maxEntriesPerEndpoint?: number;
}

export interface NodePolicy extends AddressMap {
  readonly node: string;
  /** Every local pod address → its pod, isolated or not. */
  readonly local: ReadonlyMap<string, string>;
  /** Tables of the local pods that some policy isolates; no entry = not isolated. */
  readonly tables: ReadonlyMap<string, EndpointTable>;
  readonly policyIds: ReadonlyMap<string, number>;
  /** Local pods whose policy did not fit, by name, for the agent to report. */
  readonly failedClosed: readonly string[];
}

export function entryKey(
  identity: number,
  direction: Direction,
  protocol: number,
  port: number,
  prefixLen: number,
): string {
  return `${identity}|${direction}|${protocol}|${port}/${prefixLen}`;
}

/** Numbers that survive recompiles: pass the same allocators each time. */
export interface CompileState {
  readonly identities: IdentityAllocator;
  readonly policies: IdentityAllocator;
}

export function newCompileState(): CompileState {
  return { identities: new IdentityAllocator(), policies: new IdentityAllocator(1) };
}

interface Credit {
  readonly policy: number;
  readonly rule: number;
}

// The node's own entries lose to any rule, so a flow a rule allows is credited to that rule.
const creditOrder = (a: Credit, b: Credit): number => rank(a) - rank(b) || a.rule - b.rule;
const rank = (c: Credit): number => (c.policy === NODE_POLICY_ID ? Number.MAX_SAFE_INTEGER : c.policy);

type Ranges = Map<string, CreditedRange<Credit>[]>; // `${identity}|${protocol}` → ranges

function addRange(
  out: Ranges,
  identity: number,
  protocol: PolicyProtocol,
  range: readonly [number, number],
  credit: Credit,
): void {
  const key = `${identity}|${PROTOCOL_NUMBER[protocol]}`;
  const list = out.get(key) ?? [];
  list.push({ lo: range[0], hi: range[1], credit });
  out.set(key, list);
}

interface Context {
  readonly cluster: PolicyCluster;
  readonly map: AddressMap;
  readonly podIdentities: readonly IdentityInfo[];
  /** A rule's peers → identities, once per compile (by policy, direction, rule). */
  readonly peers: Map<string, number[] | typeof IDENTITY_ANY>;
  /** Entries by what they depend on: the isolating policies and, for named ingress ports, the pod's ports. */
  readonly entries: Map<string, ReadonlyMap<string, PolicyEntry>>;
}

/** The identities a rule's peers match, or ANY for a rule with no peers. */
function peerIdentities(
  ctx: Context,
  policy: NetworkPolicy,
  direction: Direction,
  rule: RuleView,
): number[] | typeof IDENTITY_ANY {
  if (!rule.peers?.length) return IDENTITY_ANY;
  const key = `${policyKey(policy)}|${direction}|${rule.index}`;
  const cached = ctx.peers.get(key);
  if (cached !== undefined) return cached;
  const out = new Set<number>();
  for (const peer of rule.peers) {
    for (const info of ctx.map.identities.values()) {
      const hit = peer.ipBlock
        ? info.kind === 'cidr' && ipBlockMatchesPrefixes(peer.ipBlock, info.prefixes)
        : info.kind === 'pod' &&
          selectorPeerMatches(policy, peer, {
            pod: { namespace: info.namespace!, labels: info.labels! },
            namespaceLabels: info.namespaceLabels,
          });
      if (hit) out.add(info.id);
    }
  }
  ctx.peers.set(key, [...out]);
  return [...out];
}

/** One policy port of one rule into ranges per (identity, protocol). */
function addPort(
  ctx: Context,
  out: Ranges,
  endpoint: PolicyPod,
  direction: Direction,
  targets: number[] | typeof IDENTITY_ANY,
  port: NetworkPolicyPort | undefined,
  credit: Credit,
): void {
  const protocols = port ? [portProtocol(port)] : PROTOCOLS;
  if (port && typeof port.port === 'string' && direction === 'egress') {
    // The name means what the destination pod says: resolved per peer identity, never for ANY.
    const name = port.port;
    const peers =
      targets === IDENTITY_ANY ? ctx.podIdentities : targets.map((id) => ctx.map.identities.get(id)!);
    for (const info of peers) {
      const n = resolveNamedPort(info.namedPorts, name, portProtocol(port));
      if (n !== undefined) addRange(out, info.id, portProtocol(port), [n, n], credit);
    }
    return;
  }
  const range = port ? portRange(port, endpoint.ports) : ([0, 65535] as const);
  if (range === undefined) return;
  for (const id of targets === IDENTITY_ANY ? [IDENTITY_ANY] : targets) {
    for (const protocol of protocols) addRange(out, id, protocol, range, credit);
  }
}

function directionRanges(
  ctx: Context,
  endpoint: PolicyPod,
  direction: Direction,
  policies: readonly NetworkPolicy[],
  ids: ReadonlyMap<string, number>,
): Ranges {
  const out: Ranges = new Map();
  for (const policy of policies) {
    for (const rule of rulesOf(policy, direction)) {
      const credit = { policy: ids.get(policyKey(policy))!, rule: rule.index };
      const targets = peerIdentities(ctx, policy, direction, rule);
      for (const port of rule.ports?.length ? rule.ports : [undefined])
        addPort(ctx, out, endpoint, direction, targets, port, credit);
    }
  }
  if (direction === 'ingress') {
    // Kubelet probes: the pod's own node (this node, IDENTITY_HOST) always reaches it.
    const node = { policy: NODE_POLICY_ID, rule: 0 };
    for (const protocol of PROTOCOLS) addRange(out, IDENTITY_HOST, protocol, [0, 65535], node);
  }
  return out;
}

function toEntries(ranges: Ranges, direction: Direction, into: Map<string, PolicyEntry>): void {
  for (const [key, list] of ranges) {
    const [identity, protocol] = key.split('|').map(Number) as [number, number];
    for (const r of flattenRanges(list, creditOrder)) {
      for (const p of rangeToPrefixes(r.lo, r.hi)) {
        const entry = {
          identity,
          direction,
          protocol,
          port: p.value,
          prefixLen: p.prefixLen,
          policy: r.credit.policy,
          rule: r.credit.rule,
        };
        into.set(entryKey(identity, direction, protocol, p.value, p.prefixLen), entry);
      }
    }
  }
}

function buildTable(
  ctx: Context,
  pod: PolicyPod,
  ids: ReadonlyMap<string, number>,
): EndpointTable | undefined {
  const selecting = ctx.cluster.policies.filter((p) => selects(p, pod));
  const isolating = (d: Direction): NetworkPolicy[] => selecting.filter((p) => hasType(p, d));
  const ingress = isolating('ingress');
  const egress = isolating('egress');
  if (ingress.length === 0 && egress.length === 0) return undefined;
  const idsOf = (list: NetworkPolicy[]): number[] =>
    list.map((p) => ids.get(policyKey(p))!).sort((a, b) => a - b);
  const isolatedBy = { ingress: idsOf(ingress), egress: idsOf(egress) };
  // Pods isolated by the same policies share one entries map (and the datapath can share the
  // inner map): ingress reads the pod itself only through its named ports.
  const signature = JSON.stringify([isolatedBy, ingress.length > 0 ? pod.ports : []]);
  let entries = ctx.entries.get(signature);
  if (!entries) {
    const built = new Map<string, PolicyEntry>();
    if (ingress.length > 0) toEntries(directionRanges(ctx, pod, 'ingress', ingress, ids), 'ingress', built);
    if (egress.length > 0) toEntries(directionRanges(ctx, pod, 'egress', egress, ids), 'egress', built);
    ctx.entries.set(signature, built);
    entries = built;
  }
  return { pod: podKey(pod), isolatedBy, entries };
}

/**
 * This node's pod addresses → pod, read as evaluate's podAt reads them: an address two pods claim
 * (a stale object) is the first's, and a node's address is no pod's (hostNetwork pods).
 */
function localAddresses(cluster: PolicyCluster, node: string): Map<string, string> {
  const nodeAddresses = new Set(cluster.nodes.flatMap((n) => n.addresses.map(canonicalAddress)));
  const owner = new Map<string, PolicyPod>();
  for (const pod of cluster.pods) {
    for (const a of pod.ips.map(canonicalAddress))
      if (!nodeAddresses.has(a) && !owner.has(a)) owner.set(a, pod);
  }
  return new Map([...owner].filter(([, pod]) => pod.node === node).map(([a, pod]) => [a, podKey(pod)]));
}

/** Compiles the cluster's policy for the pods of one node. */
export function compileNode(
  cluster: PolicyCluster,
  node: string,
  state: CompileState = newCompileState(),
  options: CompileOptions = {},
): NodePolicy {
  const map = buildAddressMap(cluster, node, state.identities);
  const policyIds = state.policies.assign(cluster.policies.map(policyKey));
  const ctx: Context = {
    cluster,
    map,
    podIdentities: [...map.identities.values()].filter((i) => i.kind === 'pod'),
    peers: new Map(),
    entries: new Map(),
  };
  const local = localAddresses(cluster, node);
  const tables = new Map<string, EndpointTable>();
  const failedClosed: string[] = [];
  const capacity = options.maxEntriesPerEndpoint ?? Infinity;
  const endpoints = new Set(local.values());
  for (const pod of cluster.pods.filter((p) => p.node === node && endpoints.has(podKey(p)))) {
    const table = buildTable(ctx, pod, policyIds);
    if (!table) continue;
    if (table.entries.size > capacity) {
      failedClosed.push(table.pod);
      tables.set(table.pod, {
        ...table,
        entries: new Map(),
        failedClosed: { needed: table.entries.size, capacity },
      });
    } else {
      tables.set(table.pod, table);
    }
  }
  return { node, ...map, local, tables, policyIds, failedClosed };
}
