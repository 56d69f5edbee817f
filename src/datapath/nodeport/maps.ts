// Byte layouts of the north-south maps, mirroring bpf/lib/ct.h, nat.h, maglev.h and
// nodeport_parse.h, declared on the codec layer (../codec/). Addresses are 16 bytes, IPv4 as
// ::ffff:a.b.c.d; ports are network order.
import { InvalidArgumentError } from '../../common/errors.ts';
import { parseIp } from '../../common/ip.ts';
import { encodeAddress, readAddress, struct } from '../codec/index.ts';

export { IPPROTO, sumPerCpu } from '../codec/index.ts';
export { NP_STAT_NAMES, type NpStat } from '../events/reasons.ts';

export const MAP_CT = 'ferry_np_ct_v1';
export const MAP_NAT = 'ferry_np_nat_v1';
export const MAP_MAGLEV = 'ferry_np_maglev_v1';
export const MAP_SRC_RANGES = 'ferry_np_src_ranges_v1';
export const MAP_STATS = 'ferry_np_stats_v1';

/** 16-byte map form of an IP address. */
export function addr16(ip: string): Buffer {
  return encodeAddress(ip);
}

export function addrText(b: Buffer): string {
  return readAddress(b, 0);
}

/** struct np_tuple (40 bytes). */
export const TUPLE = struct('np_tuple', 40, {
  src: [0, 'addr'],
  dst: [16, 'addr'],
  sport: [32, 'be16'],
  dport: [34, 'be16'],
  proto: [36, 'u8'],
});
export interface Tuple {
  readonly src: string;
  readonly dst: string;
  readonly sport: number;
  readonly dport: number;
  readonly proto: number;
}
export const TUPLE_SIZE = TUPLE.size;

export function encodeTuple(t: Tuple): Buffer {
  return TUPLE.encode(t);
}

export function decodeTuple(b: Buffer): Tuple {
  return TUPLE.decode(b);
}

export const CT_F = { snat: 0x1, local: 0x2, closing: 0x4, reply: 0x8 } as const;

/** struct np_ct_entry (56 bytes). */
export const CT_ENTRY = struct('np_ct_entry', 56, {
  backend: [0, 'addr'],
  backendPort: [16, 'be16'],
  natPort: [18, 'be16'],
  backendId: [20, 'u32'],
  serviceId: [24, 'u32'],
  flags: [28, 'u8'],
  createdNs: [32, 'u64'],
  expiresNs: [40, 'u64'],
  packets: [48, 'u64'],
});
export interface CtEntry {
  readonly backend: string;
  readonly backendPort: number;
  readonly natPort: number;
  readonly backendId: number;
  readonly serviceId: number;
  readonly flags: number;
  readonly createdNs: bigint;
  readonly expiresNs: bigint;
  readonly packets: bigint;
}
export const CT_ENTRY_SIZE = CT_ENTRY.size;

export function decodeCtEntry(b: Buffer): CtEntry {
  return CT_ENTRY.decode(b);
}

/** struct np_nat_entry (48 bytes). */
export const NAT_ENTRY = struct('np_nat_entry', 48, {
  client: [0, 'addr'],
  frontend: [16, 'addr'],
  clientPort: [32, 'be16'],
  frontendPort: [34, 'be16'],
  flags: [36, 'u8'],
  expiresNs: [40, 'u64'],
});
export interface NatEntry {
  readonly client: string;
  readonly frontend: string;
  readonly clientPort: number;
  readonly frontendPort: number;
  readonly flags: number;
  readonly expiresNs: bigint;
}
export const NAT_ENTRY_SIZE = NAT_ENTRY.size;

export function decodeNatEntry(b: Buffer): NatEntry {
  return NAT_ENTRY.decode(b);
}

/** struct np_src_range_key (24 bytes): LPM prefix length, then service id and address. */
const SRC_RANGE_KEY = struct('np_src_range_key', 24, {
  prefixlen: [0, 'u32'],
  serviceId: [4, 'u32'],
  address: [8, 'addr'],
});

/** The key of the sentinel (prefix undefined) or of a client prefix of one service. */
export function encodeSrcRangeKey(serviceId: number, cidr?: string): Buffer {
  // The sentinel: prefix 32 covers the service id alone, address :: (what the C side looks up).
  if (cidr === undefined) return SRC_RANGE_KEY.encode({ prefixlen: 32, serviceId, address: '::' });
  const [ip = '', lenText = ''] = cidr.split('/');
  const len = Number(lenText);
  const v4 = !ip.includes(':');
  if (!Number.isInteger(len) || lenText === '' || len < 0 || len > (v4 ? 32 : 128))
    throw new InvalidArgumentError(`source range ${cidr}: bad prefix length`);
  if (!parseIp(ip)) throw new InvalidArgumentError(`source range ${cidr}: "${ip}" is not an IP address`);
  return SRC_RANGE_KEY.encode({ prefixlen: 32 + (v4 ? 96 : 0) + len, serviceId, address: ip });
}

/** The entries that express one service's loadBalancerSourceRanges (empty → none). */
export function srcRangeEntries(serviceId: number, cidrs: readonly string[]): Array<[Buffer, Buffer]> {
  if (cidrs.length === 0) return [];
  return [
    [encodeSrcRangeKey(serviceId), Buffer.from([0])],
    ...cidrs.map((c): [Buffer, Buffer] => [encodeSrcRangeKey(serviceId, c), Buffer.from([1])]),
  ];
}
