// The node a model computes for, from its Node object and the agent's overrides.
import { canonicalIp, ipFamily } from '../common/ip.ts';
import type { NodeContext } from './frontends.ts';
import { LABEL_ZONE, type Node } from './k8s.ts';

export interface NodeContextOptions {
  readonly nodeName: string;
  /** Overrides the node's addresses from its Node object (the lab, or --node-addresses). */
  readonly nodeAddresses?: readonly string[];
  /** kube-proxy --nodeport-addresses. */
  readonly nodePortAddresses?: readonly string[];
}

/** The node context from a Node object: primary InternalIP per family (else ExternalIP), zone label. */
export function nodeContextFrom(node: Node | undefined, options: NodeContextOptions): NodeContext {
  const addresses = (options.nodeAddresses ? [...options.nodeAddresses] : primaryAddresses(node)).map(
    (a) => canonicalIp(a) ?? a,
  );
  const zone = node?.metadata.labels?.[LABEL_ZONE];
  return {
    name: options.nodeName,
    ...(zone !== undefined ? { zone } : {}),
    addresses,
    ...(options.nodePortAddresses ? { nodePortAddresses: options.nodePortAddresses } : {}),
  };
}

function primaryAddresses(node: Node | undefined): string[] {
  const addresses: string[] = [];
  const all = node?.status?.addresses ?? [];
  for (const type of ['InternalIP', 'ExternalIP'] as const) {
    for (const family of [4, 6]) {
      if (addresses.some((a) => ipFamily(a) === family)) continue;
      const found = all.find((a) => a.type === type && ipFamily(a.address) === family);
      if (found) addresses.push(canonicalIp(found.address)!);
    }
  }
  return addresses;
}
