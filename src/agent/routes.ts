// Routes between nodes, kept in step with the Node objects by the agent. Native mode routes each
// other node's pod CIDRs via that node's address of the same family (nodes share a link, as in
// the lab). VXLAN mode (Flannel's shape) routes them over one VXLAN device: the next hop is the
// peer's pod-CIDR network address, pinned to a MAC derived from the peer's name, whose forwarding
// entry points at the peer's node address; no learning, no multicast. Every route carries our own
// protocol number, so a sync can find and remove the ones for nodes that left.
import { createHash } from 'node:crypto';
import { InvalidArgumentError } from '../common/errors.ts';
import { formatIp, parseCidr, parseIp, type Family } from '../common/ip.ts';
import { ipBatch, ipJson, run } from '../common/run.ts';

export interface NodeRoutingInfo {
  readonly name: string;
  /** The node's own addresses (InternalIP), one per family at most used. */
  readonly addresses: readonly string[];
  readonly podCIDRs: readonly string[];
}

export type RoutingMode = 'native' | 'vxlan';

export interface SyncOptions {
  /** This node's name: its own pod CIDRs are local and get no route. */
  readonly self: string;
  readonly vxlanId?: number;
  readonly vxlanPort?: number;
}

/** `proto 0xfe` (254 is "static"…): 249 is unassigned in /etc/iproute2/rt_protos. */
export const ROUTE_PROTOCOL = '249';
export const VXLAN_DEVICE = 'ferry.vxlan';

/** The VXLAN device's MAC for a node: stable, locally administered, unicast. */
export function vtepMac(nodeName: string): string {
  const h = createHash('sha256').update(nodeName).digest();
  h[0] = (h[0]! & 0xfe) | 0x02;
  return [...h.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** The EUI-64 link-local address for a MAC. */
export function linkLocalFor(mac: string): string {
  const b = mac.split(':').map((x) => parseInt(x, 16));
  const eui = [b[0]! ^ 0x02, b[1]!, b[2]!, 0xff, 0xfe, b[3]!, b[4]!, b[5]!];
  const groups = [0, 2, 4, 6].map((i) => ((eui[i]! << 8) | eui[i + 1]!).toString(16));
  return `fe80::${groups.join(':')}`;
}

interface Desired {
  readonly dst: string;
  readonly family: Family;
  readonly via: string;
  readonly vtep?: { readonly mac: string; readonly underlay: string };
}

function addressOf(node: NodeRoutingInfo, family: Family): string | undefined {
  for (const a of node.addresses) {
    const ip = parseIp(a);
    if (ip?.family === family) return formatIp(ip);
  }
  return undefined;
}

/** Pure: the routes this node wants for its peers. */
export function desiredRoutes(nodes: readonly NodeRoutingInfo[], mode: RoutingMode, self: string): Desired[] {
  const me = nodes.find((n) => n.name === self);
  if (!me)
    throw new InvalidArgumentError(`syncNodeRoutes: self: node ${JSON.stringify(self)} is not in the list`);
  const out: Desired[] = [];
  for (const node of nodes) {
    if (node.name === self) continue;
    for (const [i, text] of node.podCIDRs.entries()) {
      const cidr = parseCidr(text);
      if (!cidr)
        throw new InvalidArgumentError(`Node ${node.name}: spec.podCIDRs[${i}]: not a CIDR: ${text}`);
      const family = cidr.address.family;
      const dst = `${formatIp(cidr.address)}/${cidr.prefix}`;
      if (mode === 'native') {
        const via = addressOf(node, family);
        if (via) out.push({ dst, family, via });
      } else {
        // The underlay is IPv4 when both nodes have it, else IPv6; one tunnel carries both families.
        const underlay = addressOf(node, 4) ?? addressOf(node, 6);
        const mac = vtepMac(node.name);
        // IPv6 next hops are the peer VTEP's link-local address: a global one inside the routed
        // prefix is refused while the native route to that prefix still exists (mode switch).
        const via = family === 4 ? formatIp(cidr.address) : linkLocalFor(mac);
        if (underlay) out.push({ dst, family, via, vtep: { mac, underlay } });
      }
    }
  }
  return out;
}

interface IpRoute {
  readonly dst: string;
}

async function ourRoutes(netnsPath: string | undefined): Promise<string[]> {
  const [v4, v6] = await Promise.all([
    ipJson<IpRoute[]>(['-4', 'route', 'show', 'proto', ROUTE_PROTOCOL], netnsPath),
    ipJson<IpRoute[]>(['-6', 'route', 'show', 'proto', ROUTE_PROTOCOL], netnsPath),
  ]);
  return [...v4, ...v6].map((r) => r.dst);
}

/**
 * Makes the routes to other nodes' pod CIDRs match `nodes` in the namespace at `netnsPath` (the
 * caller's own when undefined): adds or replaces what is missing, removes what is no longer wanted.
 */
export async function syncNodeRoutes(
  netnsPath: string | undefined,
  nodes: readonly NodeRoutingInfo[],
  mode: RoutingMode,
  options: SyncOptions,
): Promise<{ readonly routes: number; readonly removed: number }> {
  const want = desiredRoutes(nodes, mode, options.self);
  const where = netnsPath === undefined ? {} : { netnsPath };
  let commands: string[][];
  if (mode === 'vxlan') {
    // The device first, then its forwarding entries, then the neighbours and routes through it.
    await ipBatch(await vxlanDeviceCommands(netnsPath, nodes, options), where);
    await writeFdb(netnsPath, want);
    commands = want.flatMap(vxlanRouteCommands);
  } else {
    commands = want.map((r) => ['route', 'replace', r.dst, 'via', r.via, 'proto', ROUTE_PROTOCOL]);
  }
  const wanted = new Set(want.map((r) => r.dst));
  const stale = (await ourRoutes(netnsPath)).filter((dst) => !wanted.has(dst));
  for (const dst of stale) commands.push(['route', 'del', dst, 'proto', ROUTE_PROTOCOL]);
  await ipBatch(commands, where);
  return { routes: want.length, removed: stale.length };
}

/** The VXLAN device, when it is not there yet: created with this node's underlay address and MAC. */
async function vxlanDeviceCommands(
  netnsPath: string | undefined,
  nodes: readonly NodeRoutingInfo[],
  options: SyncOptions,
): Promise<string[][]> {
  const me = nodes.find((n) => n.name === options.self)!;
  const local = addressOf(me, 4) ?? addressOf(me, 6);
  if (!local) throw new InvalidArgumentError(`Node ${me.name}: status.addresses: no address for the VXLAN underlay`);
  const existing = await ipJson<unknown[]>(['link', 'show', 'dev', VXLAN_DEVICE], netnsPath).catch(() => []);
  if (existing.length > 0) return [];
  const vni = String(options.vxlanId ?? 1);
  const port = String(options.vxlanPort ?? 4789);
  return [
    ['link', 'add', VXLAN_DEVICE, 'type', 'vxlan', 'id', vni, 'local', local, 'dstport', port, 'nolearning'],
    ['link', 'set', VXLAN_DEVICE, 'address', vtepMac(me.name), 'up'],
  ];
}

function vxlanRouteCommands(r: Desired): string[][] {
  return [
    ['neigh', 'replace', r.via, 'lladdr', r.vtep!.mac, 'dev', VXLAN_DEVICE, 'nud', 'permanent'],
    ['route', 'replace', r.dst, 'via', r.via, 'dev', VXLAN_DEVICE, ...(r.family === 4 ? ['onlink'] : []), 'proto', ROUTE_PROTOCOL],
  ];
}

/** Forwarding entries are `bridge fdb`, not an `ip` object; the device must exist first. */
async function writeFdb(netnsPath: string | undefined, want: readonly Desired[]): Promise<void> {
  if (want.length === 0) return;
  const fdb = want.map((r) => `fdb replace ${r.vtep!.mac} dev ${VXLAN_DEVICE} dst ${r.vtep!.underlay} self permanent`);
  const enter = netnsPath === undefined ? [] : ['nsenter', `--net=${netnsPath}`, '--'];
  const argv = [...enter, 'bridge', '-batch', '-'];
  await run(argv[0]!, argv.slice(1), { input: fdb.join('\n') + '\n' });
}
