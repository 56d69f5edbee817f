// Addresses → identities for one node (identity.ts says why two numbers): the LPM entries the
// datapath's ipcache holds — pod addresses as /32 or /128, this node's own the same (`host`),
// each ipBlock cidr and except as its prefix (`world`) — each with its label identity and, when
// some ipBlock prefix contains it, its CIDR identity. An address no entry covers is `world`.
import { cidrContains, formatCidr, parseCidr, parseIp, type Cidr } from '../../common/ip.ts';
import type { ContainerPort, PolicyCluster } from './api.ts';
import { namespaceLabels } from './api.ts';
import {
  IDENTITY_WORLD,
  IdentityAllocator,
  identityKey,
  relevantNamedPorts,
  type IdentityFacts,
  type IdentityInfo,
} from './identity.ts';
import { rulesOf } from './peers.ts';
import { canonicalAddress } from './addresses.ts';

/** What the ipcache says about an address. */
export interface LpmValue {
  readonly identity: number; // label identity: a pod's, IDENTITY_HOST or IDENTITY_WORLD
  readonly cidrIdentity?: number; // the ipBlock prefixes containing the address, when any does
}

export interface LpmEntry extends LpmValue {
  readonly cidr: string; // canonical, e.g. 10.244.1.5/32 or 10.0.0.0/8
}

interface EntryFacts {
  readonly label: IdentityFacts;
  readonly cidr?: IdentityFacts;
}

export interface AddressMap {
  readonly identities: ReadonlyMap<number, IdentityInfo>;
  readonly lpm: readonly LpmEntry[];
}

/** Every ipBlock cidr and except of every policy, canonical; validated policies parse. */
export function ipBlockPrefixes(cluster: PolicyCluster): Cidr[] {
  const seen = new Map<string, Cidr>();
  for (const policy of cluster.policies) {
    for (const direction of ['ingress', 'egress'] as const) {
      for (const rule of rulesOf(policy, direction)) {
        for (const peer of rule.peers ?? []) {
          for (const text of peer.ipBlock ? [peer.ipBlock.cidr, ...(peer.ipBlock.except ?? [])] : []) {
            const cidr = parseCidr(text);
            if (cidr) seen.set(formatCidr(cidr), cidr);
          }
        }
      }
    }
  }
  return [...seen.values()];
}

/** The `name/protocol` pairs that egress rules name: a pod's numbers for these are part of its identity. */
export function egressPortNames(cluster: PolicyCluster): Set<string> {
  const names = new Set<string>();
  for (const policy of cluster.policies) {
    for (const rule of rulesOf(policy, 'egress')) {
      for (const port of rule.ports ?? [])
        if (typeof port.port === 'string') names.add(`${port.port}/${port.protocol ?? 'TCP'}`);
    }
  }
  return names;
}

function containing(prefixes: readonly Cidr[], address: string): Set<string> {
  const ip = parseIp(address);
  return new Set(ip ? prefixes.filter((c) => cidrContains(c, ip)).map(formatCidr) : []);
}

function hostCidr(address: string): string {
  const ip = parseIp(address)!;
  return `${canonicalAddress(address)}/${ip.family === 4 ? 32 : 128}`;
}

const WORLD: IdentityFacts = { kind: 'world', prefixes: new Set(), namedPorts: [] };
const HOST: IdentityFacts = { kind: 'host', prefixes: new Set(), namedPorts: [] };

/**
 * A pod address's CIDR identity also carries the pod's egress-named ports: a rule "to this
 * ipBlock, port web" matches it by prefix and resolves the name on it, neither of which its label
 * identity can do alone.
 */
function cidrFacts(
  prefixes: ReadonlySet<string>,
  namedPorts: readonly ContainerPort[] = [],
): IdentityFacts | undefined {
  return prefixes.size === 0 ? undefined : { kind: 'cidr', prefixes, namedPorts };
}

/** The facts of every LPM entry of a node: its prefixes, pod addresses and own addresses. */
function entryFacts(cluster: PolicyCluster, node: string): Map<string, EntryFacts> {
  const prefixes = ipBlockPrefixes(cluster);
  const names = egressPortNames(cluster);
  const facts = new Map<string, EntryFacts>();
  for (const cidr of prefixes) {
    // Every address whose longest match is this prefix is in exactly the prefixes containing it
    // (a longer prefix holding the network address need not hold them: it is not counted).
    const outer = prefixes.filter((c) => c.prefix <= cidr.prefix && cidrContains(c, cidr.address));
    facts.set(formatCidr(cidr), { label: WORLD, cidr: cidrFacts(new Set(outer.map(formatCidr))) });
  }
  for (const n of cluster.nodes.filter((x) => x.name === node)) {
    for (const a of n.addresses) {
      if (parseIp(a)) facts.set(hostCidr(a), { label: HOST, cidr: cidrFacts(containing(prefixes, a)) });
    }
  }
  // Any node's address is the node's, never a hostNetwork pod's (see evaluate's podAt).
  const claimed = new Set(cluster.nodes.flatMap((n) => n.addresses.filter((x) => parseIp(x)).map(hostCidr)));
  for (const pod of cluster.pods) {
    const label: IdentityFacts = {
      kind: 'pod',
      namespace: pod.namespace,
      labels: pod.labels,
      namespaceLabels: namespaceLabels(cluster, pod.namespace),
      prefixes: new Set(),
      namedPorts: relevantNamedPorts(pod.ports, names),
    };
    // An address two pods claim stays with the first, as evaluate's podAt reads it.
    for (const a of pod.ips) {
      if (!parseIp(a) || claimed.has(hostCidr(a))) continue;
      claimed.add(hostCidr(a));
      facts.set(hostCidr(a), { label, cidr: cidrFacts(containing(prefixes, a), label.namedPorts) });
    }
  }
  return facts;
}

/** Identities and LPM entries for one node; `allocator` carries numbers from the last compile. */
export function buildAddressMap(
  cluster: PolicyCluster,
  node: string,
  allocator: IdentityAllocator,
): AddressMap {
  const facts = entryFacts(cluster, node);
  const all = [WORLD, HOST, ...[...facts.values()].flatMap((f) => (f.cidr ? [f.label, f.cidr] : [f.label]))];
  const ids = allocator.assign(all.map(identityKey));
  const identities = new Map<number, IdentityInfo>();
  const idOf = (f: IdentityFacts): number => {
    const key = identityKey(f);
    const id = ids.get(key)!;
    if (!identities.has(id)) identities.set(id, { id, key, ...f });
    return id;
  };
  idOf(WORLD);
  idOf(HOST);
  const lpm = [...facts].map(([cidr, f]): LpmEntry => {
    const identity = idOf(f.label);
    return f.cidr ? { cidr, identity, cidrIdentity: idOf(f.cidr) } : { cidr, identity };
  });
  return { identities, lpm };
}

/** What the ipcache gives an address: the longest prefix that contains it, else `world`. */
export function lpmLookup(lpm: readonly LpmEntry[], address: string): LpmValue {
  const ip = parseIp(address);
  let best: { prefix: number; entry: LpmEntry } | undefined;
  for (const e of ip ? lpm : []) {
    const cidr = parseCidr(e.cidr)!;
    if (cidrContains(cidr, ip!) && (best === undefined || cidr.prefix > best.prefix))
      best = { prefix: cidr.prefix, entry: e };
  }
  if (!best) return { identity: IDENTITY_WORLD };
  const { identity, cidrIdentity } = best.entry;
  return cidrIdentity === undefined ? { identity } : { identity, cidrIdentity };
}
