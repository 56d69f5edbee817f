// Pod network wiring, shared by the lab and the ferry-cni plugin: a veth pair per pod in the
// Calico/Cilium shape. The pod holds only its own /32 and /128 and sends everything to a
// link-local gateway (169.254.1.1, fe80::ecee:eeff:feee:eeee) that is the host end of its veth,
// whose MAC is fixed to ee:ee:ee:ee:ee:ee; the host routes each pod address to that veth. No
// bridge and no per-node gateway address, so a pod's wiring never depends on its neighbours'.
import { createHash } from 'node:crypto';
import { FerryError, InvalidArgumentError } from '../common/errors.ts';
import { formatIp, parseCidr, parseIp } from '../common/ip.ts';
import { ipBatch, ipJson, run } from '../common/run.ts';
import { interfaceNameProblem } from './ifname.ts';

export const GATEWAY_MAC = 'ee:ee:ee:ee:ee:ee';
export const GATEWAY_IPV4 = '169.254.1.1';
/** The host veth's link-local address: the EUI-64 of GATEWAY_MAC, what the kernel would derive. */
export const GATEWAY_IPV6 = 'fe80::ecee:eeff:feee:eeee';

export interface PodInterfaceSpec {
  /** The pod's network namespace (a path: /run/netns/NAME or /proc/PID/ns/net). */
  readonly netnsPath: string;
  /** Interface name inside the pod, e.g. eth0. */
  readonly ifname: string;
  /** Host end of the veth; see hostIfnameFor. */
  readonly hostIfname: string;
  /** The pod's addresses as CIDRs; each is installed as a host address (/32, /128). */
  readonly addresses: readonly string[];
  readonly mtu?: number;
  /** The host's namespace (a lab node); the caller's own namespace when absent. */
  readonly hostNetnsPath?: string;
  /**
   * Who owns the pair (see ownerTag), written as the alias of both ends: the pod end's name is
   * chosen by the runtime and shared by every container of the netns, so it alone says nothing
   * about whose it is.
   */
  readonly owner?: string;
}

export interface PodInterfaceRef {
  readonly hostIfname: string;
  readonly hostNetnsPath?: string;
  readonly netnsPath?: string;
  readonly ifname?: string;
  /** The pod end is only ever deleted by name when its alias is this owner tag. */
  readonly owner?: string;
}

/** The alias that marks an interface as the CNI attachment of one container. */
export function ownerTag(containerId: string): string {
  return `ferry-cni:${containerId}`;
}

/** What inspectPodInterface found; a CNI CHECK compares it with what ADD configured. */
export interface PodInterfaceState {
  readonly host: {
    readonly ifname: string;
    readonly exists: boolean;
    readonly up: boolean;
    readonly mac: string | undefined;
    readonly proxyArp: boolean;
    /** The gateway link-local address is on the host veth and usable (not in DAD). */
    readonly gatewayIpv6: boolean;
    /** Host routes (address/prefix) that point at the host veth. */
    readonly routes: readonly string[];
  };
  readonly pod:
    | {
        readonly ifname: string;
        readonly exists: boolean;
        readonly up: boolean;
        readonly mtu: number | undefined;
        readonly mac: string | undefined;
        /** The owner tag ADD wrote (ownerTag), if any. */
        readonly owner: string | undefined;
        /** Global addresses on the interface, address/prefix. */
        readonly addresses: readonly string[];
        readonly defaultGateways: readonly string[];
      }
    | undefined;
}

/** The host-side name for a pod's interface: stable, derivable by anyone who knows the pod, ≤ 15 chars. */
export function hostIfnameFor(containerId: string, ifname: string): string {
  return 'fp' + createHash('sha256').update(`${containerId}/${ifname}`).digest('hex').slice(0, 11);
}

interface HostAddress {
  readonly family: 4 | 6;
  readonly text: string;
  readonly host: string; // address/32 or /128
}

function hostAddresses(addresses: readonly string[]): HostAddress[] {
  return addresses.map((cidrText, i) => {
    const slash = cidrText.indexOf('/');
    const ip = parseIp(slash < 0 ? cidrText : cidrText.slice(0, slash));
    if (!ip || (slash >= 0 && !parseCidr(cidrText)))
      throw new InvalidArgumentError(
        `pod interface: addresses[${i}]: not an address or CIDR: ${JSON.stringify(cidrText)}`,
      );
    const text = formatIp(ip);
    return { family: ip.family, text, host: `${text}/${ip.family === 4 ? 32 : 128}` };
  });
}

function checkName(field: string, name: string): void {
  const problem = interfaceNameProblem(name);
  if (problem) throw new InvalidArgumentError(`pod interface: ${field}: ${problem}`);
}

/** The spec's addresses as host routes; a bad name, MTU or address fails before anything is made. */
function checkSpec(spec: PodInterfaceSpec): HostAddress[] {
  checkName('ifname', spec.ifname);
  checkName('hostIfname', spec.hostIfname);
  if (spec.mtu !== undefined && !(Number.isInteger(spec.mtu) && spec.mtu >= 68 && spec.mtu <= 65535)) {
    throw new InvalidArgumentError(`pod interface: mtu: out of range: ${spec.mtu}`);
  }
  const addresses = hostAddresses(spec.addresses);
  if (addresses.length === 0) throw new InvalidArgumentError('pod interface: addresses: empty');
  return addresses;
}

/** The veth pair and the host end: gateway address, owner tag, a host route per pod address. */
function hostEndCommands(spec: PodInterfaceSpec, addresses: readonly HostAddress[]): string[][] {
  const mtu = spec.mtu === undefined ? [] : ['mtu', String(spec.mtu)];
  // The gateway link-local address is added by hand with nodad rather than generated: a generated
  // one sits in DAD ("tentative") for a second or more, and while it does the host sends no
  // neighbour solicitation on the link, so the first IPv6 packets to the pod are lost.
  return [
    [
      'link',
      'add',
      spec.hostIfname,
      ...mtu,
      'type',
      'veth',
      'peer',
      'name',
      spec.ifname,
      ...mtu,
      'netns',
      spec.netnsPath,
    ],
    ['link', 'set', spec.hostIfname, 'address', GATEWAY_MAC, 'addrgenmode', 'none'],
    ...(spec.owner === undefined ? [] : [['link', 'set', spec.hostIfname, 'alias', spec.owner]]),
    ['link', 'set', spec.hostIfname, 'up'],
    ['addr', 'add', `${GATEWAY_IPV6}/64`, 'dev', spec.hostIfname, 'nodad'],
    ...addresses.map((a) => [
      'route',
      'add',
      a.host,
      'dev',
      spec.hostIfname,
      ...(a.family === 4 ? ['scope', 'link'] : []),
    ]),
  ];
}

/** The pod end: owner tag, addresses, and a default route per family through the gateway. */
function podEndCommands(spec: PodInterfaceSpec, addresses: readonly HostAddress[]): string[][] {
  const pod: string[][] = [
    ...(spec.owner === undefined ? [] : [['link', 'set', spec.ifname, 'alias', spec.owner]]),
    ['link', 'set', spec.ifname, 'up'],
  ];
  for (const a of addresses)
    pod.push(['addr', 'add', a.host, 'dev', spec.ifname, ...(a.family === 6 ? ['nodad'] : [])]);
  // Permanent neighbour entries for the gateway: no ARP/ND round trip, and no wait for the host
  // veth's link-local address to leave DAD. proxy_arp stays on as the fallback the model expects.
  if (addresses.some((a) => a.family === 4)) {
    pod.push(
      ['route', 'add', `${GATEWAY_IPV4}/32`, 'dev', spec.ifname, 'scope', 'link'],
      ['route', 'add', 'default', 'via', GATEWAY_IPV4, 'dev', spec.ifname],
      ['neigh', 'replace', GATEWAY_IPV4, 'lladdr', GATEWAY_MAC, 'dev', spec.ifname, 'nud', 'permanent'],
    );
  }
  if (addresses.some((a) => a.family === 6)) {
    pod.push(
      ['route', 'add', 'default', 'via', GATEWAY_IPV6, 'dev', spec.ifname],
      ['neigh', 'replace', GATEWAY_IPV6, 'lladdr', GATEWAY_MAC, 'dev', spec.ifname, 'nud', 'permanent'],
    );
  }
  return pod;
}

/**
 * Creates the veth pair, addresses the pod end and routes in both directions. On failure the
 * host end is deleted again (which removes the pod end with it), so a failed ADD leaves nothing.
 */
export async function addPodInterface(
  spec: PodInterfaceSpec,
): Promise<{ readonly addresses: readonly string[] }> {
  const addresses = checkSpec(spec);
  await ipBatch(hostEndCommands(spec, addresses), {
    netnsPath: spec.hostNetnsPath,
    sysctlsAfter: { [`net.ipv4.conf.${spec.hostIfname}.proxy_arp`]: 1 },
  });
  try {
    await ipBatch(podEndCommands(spec, addresses), { netnsPath: spec.netnsPath });
  } catch (error) {
    await delPodInterface({ hostIfname: spec.hostIfname, hostNetnsPath: spec.hostNetnsPath }).catch(
      () => undefined,
    );
    throw error;
  }
  return { addresses: addresses.map((a) => a.host) };
}

/**
 * Deletes the veth pair (and with it every route through it). Idempotent: a missing link is fine.
 * The host end's name is derived from the owner, so it is the caller's; the pod end's is not, and
 * is removed by name only when it carries the caller's owner tag.
 */
export async function delPodInterface(ref: PodInterfaceRef): Promise<void> {
  checkName('hostIfname', ref.hostIfname);
  const argv = ['link', 'del', ref.hostIfname];
  const result =
    ref.hostNetnsPath === undefined
      ? await run('ip', argv, { allowFailure: true })
      : await run('nsenter', [`--net=${ref.hostNetnsPath}`, '--', 'ip', ...argv], { allowFailure: true });
  if (result.code !== 0 && !/Cannot find device|does not exist/.test(result.stderr)) {
    throw new FerryError(
      'FERRY_E_NETLINK',
      `pod interface ${ref.hostIfname}: delete: ${result.stderr.trim()}`,
    );
  }
  // The host end may already be gone (its namespace was torn down) while the pod end survives.
  // Deleting a veth end removes its peer, so the pod side needs a look only when the host end was
  // missing (a veth delete waits for the kernel's RCU grace period: each one costs milliseconds).
  if (
    result.code !== 0 &&
    ref.netnsPath !== undefined &&
    ref.ifname !== undefined &&
    ref.owner !== undefined
  ) {
    checkName('ifname', ref.ifname);
    const link = (await optionalJson<IpLink[]>(['link', 'show', 'dev', ref.ifname], ref.netnsPath))?.[0];
    if (link?.ifalias !== ref.owner) return; // another container's interface, or none
    await run('nsenter', [`--net=${ref.netnsPath}`, '--', 'ip', 'link', 'del', ref.ifname], {
      allowFailure: true,
    });
  }
}

interface IpLink {
  readonly ifname: string;
  readonly flags?: readonly string[];
  readonly mtu?: number;
  readonly address?: string;
  readonly ifalias?: string;
}
interface IpAddrInfo {
  readonly family: string;
  readonly local: string;
  readonly prefixlen: number;
  readonly scope: string;
}
interface IpRoute {
  readonly dst: string;
  readonly gateway?: string;
  readonly dev?: string;
}

async function optionalJson<T>(
  args: readonly string[],
  netnsPath: string | undefined,
): Promise<T | undefined> {
  try {
    return await ipJson<T>(args, netnsPath);
  } catch {
    return undefined;
  }
}

/** Reads back what the wiring configured, from both ends. */
export async function inspectPodInterface(ref: PodInterfaceRef): Promise<PodInterfaceState> {
  checkName('hostIfname', ref.hostIfname);
  const [hostLinks, hostAddrs, hostRoutes4, hostRoutes6, proxyArp] = await Promise.all([
    optionalJson<IpLink[]>(['link', 'show', 'dev', ref.hostIfname], ref.hostNetnsPath),
    optionalJson<{ addr_info?: (IpAddrInfo & { tentative?: boolean })[] }[]>(
      ['-6', 'addr', 'show', 'dev', ref.hostIfname],
      ref.hostNetnsPath,
    ),
    optionalJson<IpRoute[]>(['-4', 'route', 'show', 'dev', ref.hostIfname], ref.hostNetnsPath),
    optionalJson<IpRoute[]>(['-6', 'route', 'show', 'dev', ref.hostIfname], ref.hostNetnsPath),
    readSysctl(`net.ipv4.conf.${ref.hostIfname}.proxy_arp`, ref.hostNetnsPath),
  ]);
  const hostLink = hostLinks?.[0];
  const routes = [...(hostRoutes4 ?? []), ...(hostRoutes6 ?? [])]
    .filter((r) => r.gateway === undefined && !r.dst.startsWith('fe80:') && r.dst !== 'default')
    .map((r) => (r.dst.includes('/') ? r.dst : `${r.dst}/${r.dst.includes(':') ? 128 : 32}`));
  const host = {
    ifname: ref.hostIfname,
    exists: hostLink !== undefined,
    up: hostLink?.flags?.includes('UP') ?? false,
    mac: hostLink?.address,
    proxyArp: proxyArp === '1',
    gatewayIpv6: (hostAddrs?.[0]?.addr_info ?? []).some((a) => a.local === GATEWAY_IPV6 && !a.tentative),
    routes,
  };
  if (ref.netnsPath === undefined || ref.ifname === undefined) return { host, pod: undefined };
  checkName('ifname', ref.ifname);
  const [links, addrs, r4, r6] = await Promise.all([
    optionalJson<IpLink[]>(['link', 'show', 'dev', ref.ifname], ref.netnsPath),
    optionalJson<{ addr_info?: IpAddrInfo[] }[]>(['addr', 'show', 'dev', ref.ifname], ref.netnsPath),
    optionalJson<IpRoute[]>(['-4', 'route', 'show', 'default'], ref.netnsPath),
    optionalJson<IpRoute[]>(['-6', 'route', 'show', 'default'], ref.netnsPath),
  ]);
  const link = links?.[0];
  return {
    host,
    pod: {
      ifname: ref.ifname,
      exists: link !== undefined,
      up: link?.flags?.includes('UP') ?? false,
      mtu: link?.mtu,
      mac: link?.address,
      owner: link?.ifalias,
      addresses: (addrs?.[0]?.addr_info ?? [])
        .filter((a) => a.scope === 'global')
        .map((a) => `${a.local}/${a.prefixlen}`),
      defaultGateways: [...(r4 ?? []), ...(r6 ?? [])]
        .filter((r) => r.dev === ref.ifname && r.gateway !== undefined)
        .map((r) => r.gateway!),
    },
  };
}

async function readSysctl(key: string, netnsPath: string | undefined): Promise<string | undefined> {
  const argv = ['-n', key];
  const result =
    netnsPath === undefined
      ? await run('sysctl', argv, { allowFailure: true })
      : await run('nsenter', [`--net=${netnsPath}`, '--', 'sysctl', ...argv], { allowFailure: true });
  return result.code === 0 ? result.stdout.trim() : undefined;
}
