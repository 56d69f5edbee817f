// The CNI 1.1.0 contract, pure: the CNI_* environment and the network configuration on stdin are
// parsed and checked here, before anything touches the disk or the kernel, so a malformed call
// changes nothing. Errors carry the spec's numeric codes (SPEC.md "Error" section).
import { FerryError } from '../common/errors.ts';
import { interfaceNameProblem, linuxInterfaceNameProblem } from './ifname.ts';
import { cidrContains, formatIp, parseCidr, parseIp, type Cidr } from '../common/ip.ts';

export const CNI_VERSION = '1.1.0';
export const SUPPORTED_VERSIONS: readonly string[] = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];

/** Well-known error codes from the spec; 100+ are ours. */
export const CniCode = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidEnvironment: 4,
  ioFailure: 5,
  decodeFailure: 6,
  invalidConfig: 7,
  tryAgainLater: 11,
  notAvailable: 50,
  limitedConnectivity: 51,
  interfaceExists: 100,
  poolExhausted: 101,
  checkFailed: 102,
} as const;

export class CniError extends FerryError {
  readonly cniCode: number;
  readonly details: string;
  constructor(cniCode: number, message: string, details = '', options?: ErrorOptions) {
    super('FERRY_E_CNI', message, options);
    this.cniCode = cniCode;
    this.details = details;
  }

  /** The error object the spec wants on stdout. */
  toJson(cniVersion: string): { cniVersion: string; code: number; msg: string; details?: string } {
    return {
      cniVersion,
      code: this.cniCode,
      msg: this.message,
      ...(this.details ? { details: this.details } : {}),
    };
  }
}

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'STATUS' | 'GC' | 'VERSION';
const COMMANDS: readonly CniCommand[] = ['ADD', 'DEL', 'CHECK', 'STATUS', 'GC', 'VERSION'];

export interface CniEnv {
  readonly command: CniCommand;
  readonly containerId: string;
  readonly netns: string;
  readonly ifname: string;
  readonly args: string;
  readonly path: readonly string[];
}

// SPEC.md: "must only contain alphanumeric characters, underscore, dot and hyphen" — which also
// rules out '/', so a container ID can never walk out of the IPAM data directory.
const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
/** containerd's identifier limit (pkg/identifiers: 76), the tightest of the common runtimes. */
export const MAX_CONTAINER_ID = 76;

/** The interface-name rule (see ifname.ts); kept under this name for the spec's tests. */
export const checkIfname = interfaceNameProblem;

export function parseEnv(env: NodeJS.ProcessEnv): CniEnv {
  const command = env.CNI_COMMAND ?? '';
  if (!(COMMANDS as readonly string[]).includes(command))
    throw new CniError(CniCode.invalidEnvironment, `CNI_COMMAND: unknown command ${JSON.stringify(command)}`);
  const cmd = command as CniCommand;
  const perContainer = cmd === 'ADD' || cmd === 'DEL' || cmd === 'CHECK';
  const containerId = env.CNI_CONTAINERID ?? '';
  const netns = env.CNI_NETNS ?? '';
  const ifname = env.CNI_IFNAME ?? '';
  if (perContainer) {
    if (!containerId) throw new CniError(CniCode.invalidEnvironment, 'CNI_CONTAINERID: missing');
    if (containerId.length > MAX_CONTAINER_ID)
      throw new CniError(
        CniCode.invalidEnvironment,
        `CNI_CONTAINERID: longer than ${MAX_CONTAINER_ID} characters (${containerId.length})`,
      );
    if (!CONTAINER_ID.test(containerId))
      throw new CniError(
        CniCode.invalidEnvironment,
        `CNI_CONTAINERID: only letters, digits, '_', '.' and '-' are allowed: ${JSON.stringify(containerId)}`,
      );
    // A DEL for a name the kernel allows but Ferry never wires (eth.0) has nothing to undo and
    // succeeds: a runtime retries a failing DEL (the cleanup after the refused ADD) for ever.
    const bad = cmd === 'DEL' ? linuxInterfaceNameProblem(ifname) : checkIfname(ifname);
    if (bad) throw new CniError(CniCode.invalidEnvironment, `CNI_IFNAME: ${bad}`);
    if (cmd !== 'DEL' && !netns) throw new CniError(CniCode.invalidEnvironment, 'CNI_NETNS: missing');
    if (netns && !netns.startsWith('/'))
      throw new CniError(
        CniCode.invalidEnvironment,
        `CNI_NETNS: not an absolute path: ${JSON.stringify(netns)}`,
      );
  }
  return {
    command: cmd,
    containerId,
    netns,
    ifname,
    args: env.CNI_ARGS ?? '',
    path: (env.CNI_PATH ?? '').split(':').filter((p) => p !== ''),
  };
}

export interface Attachment {
  readonly containerId: string;
  readonly ifname: string;
}

export interface IpamConfig {
  /** host-local range sets: each is ranges of one family, tried in order; one address per set. */
  readonly rangeSets: readonly (readonly Cidr[])[];
  readonly dataDir: string;
  /** The `ips` capability (runtimeConfig.ips): exact addresses the runtime asks for, canonical text. */
  readonly requested?: readonly string[];
}

export interface NetConf {
  readonly cniVersion: string;
  readonly name: string;
  readonly type: string;
  readonly mtu: number | undefined;
  readonly ipam: IpamConfig;
  readonly prevResult: CniResult | undefined;
  /** GC only: the attachments the runtime still knows; anything else is reclaimed. */
  readonly validAttachments: readonly Attachment[] | undefined;
}

export interface CniInterface {
  readonly name: string;
  readonly mac?: string;
  readonly mtu?: number;
  readonly sandbox?: string;
}
export interface CniIp {
  readonly address: string;
  readonly gateway?: string;
  readonly interface?: number;
}
export interface CniRoute {
  readonly dst: string;
  readonly gw?: string;
}
export interface CniResult {
  readonly cniVersion: string;
  readonly interfaces?: readonly CniInterface[];
  readonly ips?: readonly CniIp[];
  readonly routes?: readonly CniRoute[];
  readonly dns?: Readonly<Record<string, unknown>>;
}

export const DEFAULT_DATA_DIR = '/var/lib/ferry/cni/networks';
// Network names become a directory name; keep them to the spec's character set.
const NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function invalid(field: string, problem: string): CniError {
  return new CniError(CniCode.invalidConfig, `network configuration: ${field}: ${problem}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads just enough of the config to answer in the caller's version, even when the rest is bad. */
export function peekVersion(stdin: string): string {
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
    return typeof v === 'string' && SUPPORTED_VERSIONS.includes(v) ? v : CNI_VERSION;
  } catch {
    return CNI_VERSION;
  }
}

/**
 * Parses the configuration (SPEC.md section 3 / the plugin's own keys). IPAM range sets come from
 * `ipam.ranges` (a list of CIDRs, or of `[{subnet}, ...]` range sets as host-local writes them) or from a
 * top-level `podCIDRs`, which is where Kubernetes mode puts the Node's spec.podCIDRs.
 */
export function parseNetConf(stdin: string, command: CniCommand): NetConf {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch (error) {
    throw new CniError(CniCode.decodeFailure, `network configuration: not JSON: ${(error as Error).message}`);
  }
  if (!isObject(raw)) throw new CniError(CniCode.decodeFailure, 'network configuration: not a JSON object');
  const version = raw.cniVersion;
  if (typeof version !== 'string') throw invalid('cniVersion', 'missing or not a string');
  if (!SUPPORTED_VERSIONS.includes(version))
    throw new CniError(
      CniCode.incompatibleVersion,
      `network configuration: cniVersion: ${JSON.stringify(version)} is not supported`,
      `supported: ${SUPPORTED_VERSIONS.join(', ')}`,
    );
  if ((command === 'STATUS' || command === 'GC') && compareVersion(version, '1.1.0') < 0)
    throw new CniError(
      CniCode.incompatibleVersion,
      `${command} needs cniVersion 1.1.0, config has ${version}`,
    );
  const name = raw.name;
  if (typeof name !== 'string' || !NETWORK_NAME.test(name))
    throw invalid('name', `missing or not letters, digits, '_', '.', '-': ${JSON.stringify(name)}`);
  const type = raw.type;
  if (typeof type !== 'string' || type === '') throw invalid('type', 'missing');
  let mtu: number | undefined;
  if (raw.mtu !== undefined) {
    if (typeof raw.mtu !== 'number' || !Number.isInteger(raw.mtu) || raw.mtu < 576 || raw.mtu > 65535)
      throw invalid('mtu', `not an integer in 576..65535: ${JSON.stringify(raw.mtu)}`);
    mtu = raw.mtu;
  }
  return {
    cniVersion: version,
    name,
    type,
    mtu,
    ipam: parseIpam(raw, name),
    prevResult: parsePrevResult(raw.prevResult),
    validAttachments: parseAttachments(raw['cni.dev/valid-attachments']),
  };
}

function parseIpam(raw: Record<string, unknown>, network: string): IpamConfig {
  const ipam = raw.ipam === undefined ? {} : raw.ipam;
  if (!isObject(ipam)) throw invalid('ipam', 'not an object');
  const sets = ipam.ranges ?? raw.podCIDRs;
  if (!Array.isArray(sets) || sets.length === 0)
    throw invalid('ipam.ranges', 'missing or empty (give ipam.ranges or podCIDRs)');
  const all: Cidr[] = [];
  const rangeSets = sets.map((set: unknown, i): readonly Cidr[] => {
    // host-local's shape: a range set is a list of ranges, one address per set; a bare CIDR (or
    // {subnet}) is a set of one, which is what podCIDRs and the short form give.
    const members: unknown[] = Array.isArray(set) ? set : [set];
    if (members.length === 0) throw invalid(`ipam.ranges[${i}]`, 'an empty range set');
    const cidrs: Cidr[] = [];
    members.forEach((m, j) => {
      const field = Array.isArray(set) ? `ipam.ranges[${i}][${j}]` : `ipam.ranges[${i}]`;
      const t = isObject(m) ? m.subnet : m;
      const c = typeof t === 'string' ? parseCidr(t) : undefined;
      if (!c) throw invalid(field, `not a CIDR: ${JSON.stringify(t)}`);
      const hostBits = (c.address.family === 4 ? 32 : 128) - c.prefix;
      if (hostBits < 2) throw invalid(field, `too small to hold a pod: ${t as string}`);
      if (all.some((o) => cidrContains(o, c.address) || cidrContains(c, o.address)))
        throw invalid(field, `overlaps another range: ${t as string}`);
      const family = cidrs[0]?.address.family ?? c.address.family;
      if (c.address.family !== family)
        throw invalid(field, `IPv${c.address.family} in a range set of IPv${family}`);
      all.push(c);
      cidrs.push(c);
    });
    return cidrs;
  });
  // Ferry's pod model is one /32 and one /128 per interface (and the `ips` capability asks for at
  // most one per family), so a second range set of a family would be a second address of it.
  for (let i = 1; i < rangeSets.length; i++) {
    const family = rangeSets[i]![0]!.address.family;
    if (rangeSets.slice(0, i).some((s) => s[0]!.address.family === family))
      throw invalid(`ipam.ranges[${i}]`, `a second IPv${family} range set (one address per family)`);
  }
  const base = ipam.dataDir ?? DEFAULT_DATA_DIR;
  if (typeof base !== 'string' || !base.startsWith('/'))
    throw invalid('ipam.dataDir', 'not an absolute path');
  const requested = parseRequestedIps(raw.runtimeConfig, all);
  return {
    rangeSets,
    dataDir: `${base.replace(/\/+$/, '')}/${network}`,
    ...(requested.length === 0 ? {} : { requested }),
  };
}

/**
 * The CNI `ips` capability convention: runtimeConfig.ips lists addresses (optionally with a prefix)
 * the runtime wants for this attachment, at most one per family, each inside a configured range.
 */
function parseRequestedIps(runtimeConfig: unknown, ranges: readonly Cidr[]): string[] {
  if (runtimeConfig === undefined) return [];
  if (!isObject(runtimeConfig)) throw invalid('runtimeConfig', 'not an object');
  const ips = runtimeConfig.ips;
  if (ips === undefined) return [];
  if (!Array.isArray(ips)) throw invalid('runtimeConfig.ips', 'not a list');
  const out: string[] = [];
  const families = new Set<number>();
  ips.forEach((v: unknown, i) => {
    const text = typeof v === 'string' ? v.split('/')[0]! : undefined;
    const ip = text === undefined ? undefined : parseIp(text);
    if (!ip) throw invalid(`runtimeConfig.ips[${i}]`, `not an IP address: ${JSON.stringify(v)}`);
    if (families.has(ip.family)) throw invalid(`runtimeConfig.ips[${i}]`, `a second IPv${ip.family} address`);
    if (!ranges.some((r) => r.address.family === ip.family && cidrContains(r, ip)))
      throw invalid(`runtimeConfig.ips[${i}]`, `${formatIp(ip)} is outside every ipam range`);
    families.add(ip.family);
    out.push(formatIp(ip));
  });
  return out;
}

function parsePrevResult(v: unknown): CniResult | undefined {
  if (v === undefined) return undefined;
  if (!isObject(v)) throw invalid('prevResult', 'not an object');
  for (const key of ['interfaces', 'ips', 'routes'] as const)
    if (v[key] !== undefined && !Array.isArray(v[key])) throw invalid(`prevResult.${key}`, 'not a list');
  return v as unknown as CniResult;
}

function parseAttachments(v: unknown): readonly Attachment[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw invalid('cni.dev/valid-attachments', 'not a list');
  return v.map((a: unknown, i) => {
    if (!isObject(a) || typeof a.containerID !== 'string' || typeof a.ifname !== 'string')
      throw invalid(`cni.dev/valid-attachments[${i}]`, 'needs string containerID and ifname');
    return { containerId: a.containerID, ifname: a.ifname };
  });
}

export function compareVersion(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}

/** Shapes a result for the version the runtime asked for (pre-1.0 results tag each IP's family). */
export function formatResult(result: CniResult, cniVersion: string): CniResult {
  const legacy = compareVersion(cniVersion, '1.0.0') < 0;
  return {
    ...result,
    cniVersion,
    ips: (result.ips ?? []).map((ip) =>
      legacy ? { version: ip.address.includes(':') ? '6' : '4', ...ip } : ip,
    ),
  };
}
