// Addresses → identities for one node: the identities of every pod address, of this node's own
// addresses (`host`) and of every ipBlock prefix (`world` refined by the prefixes containing it),
// and the LPM entries the datapath's ipcache holds — pod addresses as /32 or /128, the node's
// own the same, each ipBlock cidr and except as its prefix. An address no entry covers is `world`.
import { cidrContains, formatCidr, parseCidr, parseIp, type Cidr } from './deps.ts';
import type { PolicyCluster } from './api.ts';
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

export interface LpmEntry {
  readonly cidr: string; // canonical, e.g. 10.244.1.5/32 or 10.0.0.0/8
  readonly identity: number;
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

/** The facts of every LPM entry of a node: its prefixes, pod addresses and own addresses. */
function entryFacts(cluster: PolicyCluster, node: string): Map<string, IdentityFacts> {
  const prefixes = ipBlockPrefixes(cluster);
  const names = egressPortNames(cluster);
  const facts = new Map<string, IdentityFacts>();
  for (const cidr of prefixes) {
    // Every address whose longest match is this prefix is in exactly the prefixes containing it.
    // (a longer prefix holding the network address need not hold them: it is not counted).
    const outer = prefixes.filter((c) => c.prefix <= cidr.prefix && cidrContains(c, cidr.address));
    facts.set(formatCidr(cidr), { kind: 'world', prefixes: new Set(outer.map(formatCidr)), namedPorts: [] });
  }
  for (const n of cluster.nodes.filter((x) => x.name === node)) {
    for (const a of n.addresses)
      if (parseIp(a))
        facts.set(hostCidr(a), { kind: 'host', prefixes: containing(prefixes, a), namedPorts: [] });
  }
  const claimed = new Set<string>();
  for (const pod of cluster.pods) {
    const common = {
      kind: 'pod' as const,
      namespace: pod.namespace,
      labels: pod.labels,
      namespaceLabels: namespaceLabels(cluster, pod.namespace),
    };
    const namedPorts = relevantNamedPorts(pod.ports, names);
    // A pod's address wins over the node's if both claim it (policy selects pods by labels), and
    // an address two pods claim stays with the first, as evaluate's podAt reads it.
    for (const a of pod.ips) {
      if (!parseIp(a) || claimed.has(hostCidr(a))) continue;
      claimed.add(hostCidr(a));
      facts.set(hostCidr(a), { ...common, prefixes: containing(prefixes, a), namedPorts });
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
  const keyOf = new Map([...facts].map(([cidr, f]) => [cidr, identityKey(f)]));
  const worldFacts: IdentityFacts = { kind: 'world', prefixes: new Set(), namedPorts: [] };
  const ids = allocator.assign([identityKey(worldFacts), ...keyOf.values()]);
  const identities = new Map<number, IdentityInfo>();
  const add = (key: string, f: IdentityFacts): void => {
    const id = ids.get(key)!;
    if (!identities.has(id)) identities.set(id, { id, key, ...f });
  };
  add(identityKey(worldFacts), worldFacts);
  for (const [cidr, f] of facts) add(keyOf.get(cidr)!, f);
  const lpm = [...facts.keys()].map((cidr) => ({ cidr, identity: ids.get(keyOf.get(cidr)!)! }));
  return { identities, lpm };
}

/** The identity the ipcache gives an address: the longest prefix that contains it, else `world`. */
export function lpmLookup(lpm: readonly LpmEntry[], address: string): number {
  const ip = parseIp(address);
  if (!ip) return IDENTITY_WORLD;
  let best: { prefix: number; identity: number } | undefined;
  for (const e of lpm) {
    const cidr = parseCidr(e.cidr)!;
    if (cidrContains(cidr, ip) && (best === undefined || cidr.prefix > best.prefix))
      best = { prefix: cidr.prefix, identity: e.identity };
  }
  return best?.identity ?? IDENTITY_WORLD;
}
