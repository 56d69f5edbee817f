// The decision as the datapath will make it, over compiled tables only (no objects): the source
// address and the destination address through the LPM to identities; for a local source that a
// table isolates for egress, its table by (destination identity, egress, protocol, port); for a
// local destination isolated for ingress, its table by (source identity, ingress, ...). Each
// table is read by the peer's label identity first, then its CIDR identity (when it has one),
// then ANY, each time by the longest port prefix; the first hit allows. The BPF code must
// resolve exactly like this; the unit tests hold it to evaluate(). A new flow is judged here;
// replies and established flows are conntrack's to pass, which this model does not hold.
import type { Direction, PolicyProtocol } from './api.ts';
import { lpmLookup, type LpmEntry, type LpmValue } from './address-map.ts';
import { IDENTITY_ANY } from './identity.ts';
import {
  PROTOCOL_NUMBER,
  entryKey,
  type EndpointTable,
  type NodePolicy,
  type PolicyEntry,
} from './compile.ts';
import { canonicalAddress } from './addresses.ts';

export interface DirectionLookup {
  /** `remote`: that side is not a pod of this node, so this node does not decide it. */
  readonly reason: 'remote' | 'not-isolated' | 'self' | 'entry' | 'denied' | 'failed-closed';
  readonly allowed: boolean;
  readonly isolatedBy: readonly number[];
  /** The entry that allowed, when one did. */
  readonly entry?: PolicyEntry;
}

export interface LookupResult {
  readonly src: LpmValue;
  readonly dst: LpmValue;
  /** The directions this node decides, both allowing. */
  readonly allowed: boolean;
  readonly egress: DirectionLookup;
  readonly ingress: DirectionLookup;
}

/** Label identity, CIDR identity, then ANY; within each, port prefixes from /16 down to /0. */
export function probe(
  table: EndpointTable,
  peer: LpmValue,
  direction: Direction,
  protocol: number,
  port: number,
): PolicyEntry | undefined {
  const ids = peer.cidrIdentity === undefined ? [peer.identity] : [peer.identity, peer.cidrIdentity];
  for (const id of [...ids, IDENTITY_ANY]) {
    for (let len = 16; len >= 0; len--) {
      const value = len === 0 ? 0 : (port >>> (16 - len)) << (16 - len);
      const hit = table.entries.get(entryKey(id, direction, protocol, value, len));
      if (hit) return hit;
    }
  }
  return undefined;
}

function decide(
  table: EndpointTable | undefined,
  peer: LpmValue,
  direction: Direction,
  protocol: number,
  port: number,
): DirectionLookup {
  if (!table || table.isolatedBy[direction].length === 0)
    return { reason: 'not-isolated', allowed: true, isolatedBy: [] };
  const entry = probe(table, peer, direction, protocol, port);
  const isolatedBy = table.isolatedBy[direction];
  if (entry) return { reason: 'entry', allowed: true, isolatedBy, entry };
  return { reason: table.failedClosed ? 'failed-closed' : 'denied', allowed: false, isolatedBy };
}

const REMOTE: DirectionLookup = { reason: 'remote', allowed: true, isolatedBy: [] };

export function lookup(
  tables: Pick<NodePolicy, 'local' | 'tables'>,
  lpm: readonly LpmEntry[],
  src: string,
  dst: string,
  protocol: PolicyProtocol,
  port: number,
): LookupResult {
  const srcId = lpmLookup(lpm, src);
  const dstId = lpmLookup(lpm, dst);
  const srcPod = tables.local.get(canonicalAddress(src));
  const dstPod = tables.local.get(canonicalAddress(dst));
  if (srcPod !== undefined && srcPod === dstPod) {
    const self: DirectionLookup = { reason: 'self', allowed: true, isolatedBy: [] };
    return { src: srcId, dst: dstId, allowed: true, egress: self, ingress: self };
  }
  const proto = PROTOCOL_NUMBER[protocol];
  const egress =
    srcPod === undefined ? REMOTE : decide(tables.tables.get(srcPod), dstId, 'egress', proto, port);
  const ingress =
    dstPod === undefined ? REMOTE : decide(tables.tables.get(dstPod), srcId, 'ingress', proto, port);
  return { src: srcId, dst: dstId, allowed: egress.allowed && ingress.allowed, egress, ingress };
}

/**
 * A flow across the cluster: the source's node decides its egress, the destination's its ingress,
 * as the two tc programs would. `nodeOf` says which node an address is a pod of.
 */
export function lookupAcross(
  nodes: ReadonlyMap<string, NodePolicy>,
  nodeOf: (address: string) => string | undefined,
  src: string,
  dst: string,
  protocol: PolicyProtocol,
  port: number,
): boolean {
  const srcNode = nodeOf(src);
  const dstNode = nodeOf(dst);
  const at = (node: string | undefined): LookupResult | undefined => {
    const n = node === undefined ? undefined : nodes.get(node);
    return n ? lookup(n, n.lpm, src, dst, protocol, port) : undefined;
  };
  const fromSrc = at(srcNode);
  const fromDst = srcNode === dstNode ? fromSrc : at(dstNode);
  return (fromSrc?.egress.allowed ?? true) && (fromDst?.ingress.allowed ?? true);
}
