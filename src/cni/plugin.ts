// The CNI commands. Each one parses and checks everything first (spec.ts), so a malformed call
// fails before it touches the IPAM store or the kernel.
import { closeSync, openSync, statfsSync } from 'node:fs';
import { interfaceNameProblem } from './ifname.ts';
import { HostLocalIpam } from './ipam.ts';
import { CLONE_NEWNET, namespaceType } from './libc.ts';
import {
  CNI_VERSION,
  CniCode,
  CniError,
  SUPPORTED_VERSIONS,
  formatResult,
  parseNetConf,
  peekVersion,
  type CniEnv,
  type CniResult,
  type NetConf,
} from './spec.ts';
import {
  GATEWAY_IPV4,
  GATEWAY_IPV6,
  GATEWAY_MAC,
  addPodInterface,
  delPodInterface,
  hostIfnameFor,
  inspectPodInterface,
  ownerTag,
} from './wiring.ts';

const NSFS_MAGIC = 0x6e736673;

/** What the command prints on success (nothing for DEL, STATUS and GC). */
export type CommandOutput = Readonly<Record<string, unknown>> | undefined;

/** Runs one CNI command; throws CniError for every failure the spec knows how to report. */
export async function runCommand(env: CniEnv, stdin: string): Promise<CommandOutput> {
  if (env.command === 'VERSION')
    return { cniVersion: peekVersion(stdin), supportedVersions: SUPPORTED_VERSIONS };
  const conf = parseNetConf(stdin, env.command);
  const ipam = new HostLocalIpam(conf.ipam);
  switch (env.command) {
    case 'ADD':
      return add(env, conf, ipam);
    case 'DEL':
      await del(env, ipam);
      return undefined;
    case 'CHECK':
      await check(env, conf, ipam);
      return undefined;
    case 'STATUS': {
      const why = await ipam.unavailable();
      if (why) throw new CniError(CniCode.notAvailable, `network ${conf.name}: cannot allocate: ${why}`);
      return undefined;
    }
    case 'GC':
      await gc(conf, ipam);
      return undefined;
  }
}

/** ADD and CHECK need a real network namespace; DEL tolerates a missing one. */
function checkNetns(path: string): 'ok' | 'missing' {
  let type: number;
  try {
    type = statfsSync(path).type;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw new CniError(CniCode.invalidEnvironment, `CNI_NETNS: ${path}: ${(error as Error).message}`);
  }
  // Every namespace file is on nsfs; only the ioctl tells a network namespace from a mount one.
  if (type !== NSFS_MAGIC || namespaceTypeOf(path) !== CLONE_NEWNET)
    throw new CniError(CniCode.invalidEnvironment, `CNI_NETNS: ${path}: not a network namespace`);
  return 'ok';
}

function namespaceTypeOf(path: string): number | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    return namespaceType(fd);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function requireNetns(path: string): void {
  if (checkNetns(path) === 'missing')
    throw new CniError(CniCode.unknownContainer, `CNI_NETNS: ${path}: does not exist`);
}

async function add(env: CniEnv, conf: NetConf, ipam: HostLocalIpam): Promise<CommandOutput> {
  requireNetns(env.netns);
  const hostIfname = hostIfnameFor(env.containerId, env.ifname);
  const who = { containerId: env.containerId, ifname: env.ifname };
  const allocations = await ipam.allocate(who);
  let configured: readonly string[];
  try {
    ({ addresses: configured } = await addPodInterface({
      netnsPath: env.netns,
      ifname: env.ifname,
      hostIfname,
      addresses: allocations.map((a) => a.address),
      owner: ownerTag(env.containerId),
      ...(conf.mtu === undefined ? {} : { mtu: conf.mtu }),
    }));
  } catch (error) {
    await ipam.release(who);
    // No look before the leap (it cost three processes per ADD): `ip link add` refuses an existing
    // name on either end atomically, before anything is created.
    if (/File exists/.test((error as Error).message))
      throw new CniError(
        CniCode.interfaceExists,
        `ADD ${env.containerId}: interface ${env.ifname} in ${env.netns} or ${hostIfname} on the host already exists`,
      );
    throw new CniError(
      CniCode.ioFailure,
      `ADD ${env.containerId}: wiring ${env.ifname}: ${(error as Error).message}`,
      '',
      {
        cause: error,
      },
    );
  }
  const prev = conf.prevResult;
  const base = prev?.interfaces?.length ?? 0;
  const ours: CniResult = {
    cniVersion: conf.cniVersion,
    interfaces: [
      { name: hostIfname, mac: GATEWAY_MAC },
      { name: env.ifname, sandbox: env.netns },
    ],
    ips: configured.map((address) => ({
      address,
      gateway: address.includes(':') ? GATEWAY_IPV6 : GATEWAY_IPV4,
      interface: base + 1,
    })),
    routes: [
      ...(configured.some((a) => !a.includes(':')) ? [{ dst: '0.0.0.0/0', gw: GATEWAY_IPV4 }] : []),
      ...(configured.some((a) => a.includes(':')) ? [{ dst: '::/0', gw: GATEWAY_IPV6 }] : []),
    ],
  };
  // Chained after another plugin: keep what it reported and add ours behind it.
  const merged: CniResult = {
    cniVersion: conf.cniVersion,
    interfaces: [...(prev?.interfaces ?? []), ...ours.interfaces!],
    ips: [...(prev?.ips ?? []), ...ours.ips!],
    routes: [...(prev?.routes ?? []), ...ours.routes!],
    dns: prev?.dns ?? {},
  };
  return formatResult(merged, conf.cniVersion) as unknown as CommandOutput;
}

async function del(env: CniEnv, ipam: HostLocalIpam): Promise<void> {
  const wireable = interfaceNameProblem(env.ifname) === undefined;
  const podNs = wireable && env.netns && checkNetnsLenient(env.netns) ? env.netns : undefined;
  // Unwire first, then free the address, so it is never handed out while still routed here.
  await delPodInterface({
    hostIfname: hostIfnameFor(env.containerId, env.ifname),
    // Only an interface this container's ADD made: a runtime's cleanup DEL after a failed ADD
    // names the netns and ifname of a pod another container owns.
    ...(podNs ? { netnsPath: podNs, ifname: env.ifname, owner: ownerTag(env.containerId) } : {}),
  }).catch((error: unknown) => {
    throw new CniError(CniCode.ioFailure, `DEL ${env.containerId}: ${(error as Error).message}`, '', {
      cause: error,
    });
  });
  await ipam.release({ containerId: env.containerId, ifname: env.ifname });
}

function checkNetnsLenient(path: string): boolean {
  try {
    return checkNetns(path) === 'ok';
  } catch {
    return false;
  }
}

async function check(env: CniEnv, conf: NetConf, ipam: HostLocalIpam): Promise<void> {
  requireNetns(env.netns);
  const fail = (what: string): CniError =>
    new CniError(CniCode.checkFailed, `CHECK ${env.containerId}/${env.ifname}: ${what}`);
  const held = ipam.lookup({ containerId: env.containerId, ifname: env.ifname });
  if (held.length === 0) throw fail('no addresses allocated');
  const want = held.map((a) => `${a.address}/${a.address.includes(':') ? 128 : 32}`).sort();
  const prevIps = (conf.prevResult?.ips ?? []).map((i) => i.address);
  for (const w of want)
    if (conf.prevResult && !prevIps.includes(w)) throw fail(`prevResult does not list ${w}`);
  const state = await inspectPodInterface({
    hostIfname: hostIfnameFor(env.containerId, env.ifname),
    netnsPath: env.netns,
    ifname: env.ifname,
  });
  if (!state.host.exists || !state.host.up) throw fail(`host interface ${state.host.ifname} missing or down`);
  if (!state.host.proxyArp) throw fail(`proxy ARP is off on ${state.host.ifname}`);
  const pod = state.pod!;
  if (!pod.exists || !pod.up) throw fail(`interface missing or down in ${env.netns}`);
  // No alias at all is an interface wired by a ferry-cni from before owner tags: its host end (named
  // after this container id) already proves whose it is, and CHECK must not fail it on upgrade.
  if (pod.owner !== undefined && pod.owner !== ownerTag(env.containerId))
    throw fail(`interface in ${env.netns} belongs to ${pod.owner ?? 'no ferry-cni container'}`);
  const have = [...pod.addresses].sort();
  if (have.join(',') !== want.join(','))
    throw fail(`addresses are [${have.join(', ')}], expected [${want.join(', ')}]`);
  for (const w of want) {
    if (!state.host.routes.includes(w)) throw fail(`host route to ${w} via ${state.host.ifname} is missing`);
    const gw = w.includes(':') ? GATEWAY_IPV6 : GATEWAY_IPV4;
    if (!pod.defaultGateways.includes(gw)) throw fail(`default route via ${gw} is missing`);
  }
}

async function gc(conf: NetConf, ipam: HostLocalIpam): Promise<void> {
  if (conf.validAttachments === undefined)
    throw new CniError(
      CniCode.invalidConfig,
      'network configuration: cni.dev/valid-attachments: missing for GC',
    );
  const freed = await ipam.releaseExcept(conf.validAttachments);
  // The address is already free; a leftover veth would only hold a stale host route, so remove it.
  const seen = new Set<string>();
  for (const a of freed) {
    const hostIfname = hostIfnameFor(a.containerId, a.ifname);
    if (seen.has(hostIfname)) continue;
    seen.add(hostIfname);
    await delPodInterface({ hostIfname }).catch(() => undefined);
  }
}

export { CNI_VERSION };
