// The `ip` commands that build a lab's fabric, nodes and client, derived from its plan (pure).
// Commands are written as text and split on blanks: every token is a name or an address from the
// plan, and ipBatch checks each one before it reaches ip.
import { FABRIC } from './plan.ts';
import type { LabNode, LabState } from './types.ts';

export type IpCommand = readonly string[];

function words(text: string): IpCommand {
  return text.split(' ');
}

/**
 * No DAD on any lab interface, set before eth0 goes up: while an interface's link-local address is
 * tentative the kernel sends no neighbour solicitations on it, and the first IPv6 packets across
 * the fabric would vanish. (DAD is skipped only when both `all` and the interface say 0.)
 */
export const NO_DAD = {
  'net.ipv6.conf.all.accept_dad': 0,
  'net.ipv6.conf.default.accept_dad': 0,
  'net.ipv6.conf.eth0.accept_dad': 0,
} as const;

/** Forwarding for pods, no reverse-path filter (pod sources arrive on the fabric), no DAD. */
export const NODE_SYSCTLS = {
  ...NO_DAD,
  'net.ipv4.ip_forward': 1,
  'net.ipv6.conf.all.forwarding': 1,
  'net.ipv4.conf.all.rp_filter': 0,
  'net.ipv4.conf.default.rp_filter': 0,
} as const;

/**
 * In the fabric namespace: the bridge, and one veth per node and for the client whose far end is
 * created directly in that namespace as eth0 (so no veth ever exists in the root namespace).
 */
export function fabricCommands(s: LabState): IpCommand[] {
  const br = s.fabric.bridge;
  const cmds = [
    words('link set lo up'),
    // No STP (ports forward at once) and no multicast snooping (ND must flood without a querier).
    words(`link add ${br} mtu ${s.mtu} type bridge stp_state 0 mcast_snooping 0`),
    words(`link set ${br} up`),
  ];
  const ports = [...s.nodes.map((n) => [n.name, n.netns] as const), ['client', s.client.netns] as const];
  for (const [port, peerNetns] of ports) {
    cmds.push(
      words(`link add ${port} mtu ${s.mtu} type veth peer name eth0 mtu ${s.mtu} netns ${peerNetns}`),
      words(`link set ${port} master ${br}`),
      words(`link set ${port} up`),
    );
  }
  return cmds;
}

/** In a node's namespace: fabric and external addresses, and native routes to the other nodes' pods. */
export function nodeCommands(s: LabState, node: LabNode): IpCommand[] {
  const cmds = [
    words('link set lo up'),
    words('link set eth0 up'),
    words(`addr add ${node.ipv4}/${FABRIC.ipv4Prefix} dev eth0`),
    words(`addr add ${node.externalIpv4}/${FABRIC.externalIpv4Prefix} dev eth0`),
    words(`addr add ${node.ipv6}/${FABRIC.ipv6Prefix} dev eth0 nodad`),
    words(`addr add ${node.externalIpv6}/${FABRIC.externalIpv6Prefix} dev eth0 nodad`),
  ];
  for (const other of s.nodes) {
    if (other.index === node.index) continue;
    cmds.push(
      words(`route add ${other.podCidrV4} via ${other.ipv4} dev eth0`),
      words(`route add ${other.podCidrV6} via ${other.ipv6} dev eth0`),
    );
  }
  return cmds;
}

/** In the client's namespace: its addresses only; it reaches nodes on-link, and nothing else. */
export function clientCommands(s: LabState): IpCommand[] {
  const c = s.client;
  return [
    words('link set lo up'),
    words('link set eth0 up'),
    words(`addr add ${c.ipv4}/${FABRIC.externalIpv4Prefix} dev eth0`),
    words(`addr add ${c.ipv6}/${FABRIC.externalIpv6Prefix} dev eth0 nodad`),
  ];
}
