// Byte layouts of the north-south maps, mirroring bpf/lib/ct.h, nat.h, maglev.h, nodeport.h and
// nodeport_stats.h. Addresses are 16 bytes, IPv4 as ::ffff:a.b.c.d; ports are network order.
import { isIPv4 } from 'node:net';
import { InvalidArgumentError } from '../../common/errors.ts';

export const MAP_CT = 'ferry_np_ct_v1';
export const MAP_NAT = 'ferry_np_nat_v1';
export const MAP_MAGLEV = 'ferry_np_maglev_v1';
export const MAP_SRC_RANGES = 'ferry_np_src_ranges_v1';
export const MAP_STATS = 'ferry_np_stats_v1';

/** Index → name of ferry_np_stats_v1 slots (enum np_stat). Append only. */
export const NP_STAT_NAMES = [
  'pass',
  'dnat',
  'ct_hit',
  'revnat',
  'ct_new',
  'ct_expired',
  'snat',
  'icmp_xlate',
  'reject_tcp',
  'reject_udp',
  'drop_no_local_backend',
  'drop_source_range',
  'drop_snat_ports_exhausted',
  'drop_no_backend',
  'drop_missed_tail_call',
  'drop_error',
  'ct_create_fail',
  'redirect',
  'dsr',
  'dsr_backend',
] as const;
export type NpStat = (typeof NP_STAT_NAMES)[number];

export const IPPROTO: Readonly<Record<string, number>> = { TCP: 6, UDP: 17, SCTP: 132 };

/** 16-byte map form of an IP address. */
export function addr16(ip: string): Buffer {
  const b = Buffer.alloc(16);
  if (isIPv4(ip)) {
    b.writeUInt16BE(0xffff, 10);
    ip.split('.').forEach((o, i) => (b[12 + i] = Number(o)));
    return b;
  }
  const [head = '', tail] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail === undefined ? [] : tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  if (groups.length !== 8) throw new InvalidArgumentError(`address ${ip}: not an IPv4 or IPv6 address`);
  groups.forEach((g, i) => b.writeUInt16BE(Number.parseInt(g, 16), i * 2));
  return b;
}

export function addrText(b: Buffer): string {
  if (b.subarray(0, 10).every((x) => x === 0) && b.readUInt16BE(10) === 0xffff)
    return [...b.subarray(12)].join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** struct np_tuple (40 bytes). */
export interface Tuple {
  readonly src: string;
  readonly dst: string;
  readonly sport: number;
  readonly dport: number;
  readonly proto: number;
}
export const TUPLE_SIZE = 40;

export function encodeTuple(t: Tuple): Buffer {
  const b = Buffer.alloc(TUPLE_SIZE);
  addr16(t.src).copy(b, 0);
  addr16(t.dst).copy(b, 16);
  b.writeUInt16BE(t.sport, 32);
  b.writeUInt16BE(t.dport, 34);
  b[36] = t.proto;
  return b;
}

export function decodeTuple(b: Buffer): Tuple {
  return {
    src: addrText(b.subarray(0, 16)),
    dst: addrText(b.subarray(16, 32)),
    sport: b.readUInt16BE(32),
    dport: b.readUInt16BE(34),
    proto: b[36] ?? 0,
  };
}

export const CT_F = { snat: 0x1, local: 0x2, closing: 0x4, reply: 0x8 } as const;

/** struct np_ct_entry (56 bytes). */
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
export const CT_ENTRY_SIZE = 56;

export function decodeCtEntry(b: Buffer): CtEntry {
  return {
    backend: addrText(b.subarray(0, 16)),
    backendPort: b.readUInt16BE(16),
    natPort: b.readUInt16BE(18),
    backendId: b.readUInt32LE(20),
    serviceId: b.readUInt32LE(24),
    flags: b[28] ?? 0,
    createdNs: b.readBigUInt64LE(32),
    expiresNs: b.readBigUInt64LE(40),
    packets: b.readBigUInt64LE(48),
  };
}

/** struct np_nat_entry (48 bytes). */
export interface NatEntry {
  readonly client: string;
  readonly frontend: string;
  readonly clientPort: number;
  readonly frontendPort: number;
  readonly flags: number;
  readonly expiresNs: bigint;
}
export const NAT_ENTRY_SIZE = 48;

export function decodeNatEntry(b: Buffer): NatEntry {
  return {
    client: addrText(b.subarray(0, 16)),
    frontend: addrText(b.subarray(16, 32)),
    clientPort: b.readUInt16BE(32),
    frontendPort: b.readUInt16BE(34),
    flags: b[36] ?? 0,
    expiresNs: b.readBigUInt64LE(40),
  };
}

/** struct np_src_range_key (24 bytes): the sentinel (prefix undefined) or a client prefix. */
export function encodeSrcRangeKey(serviceId: number, cidr?: string): Buffer {
  const b = Buffer.alloc(24);
  b.writeUInt32LE(serviceId, 4);
  if (cidr === undefined) {
    b.writeUInt32LE(32, 0);
    return b;
  }
  const [ip = '', lenText = ''] = cidr.split('/');
  const len = Number(lenText);
  const v4 = isIPv4(ip);
  if (!Number.isInteger(len) || len < 0 || len > (v4 ? 32 : 128))
    throw new InvalidArgumentError(`source range ${cidr}: bad prefix length`);
  b.writeUInt32LE(32 + (v4 ? 96 : 0) + len, 0);
  addr16(ip).copy(b, 8);
  return b;
}

/** The entries that express one service's loadBalancerSourceRanges (empty → none). */
export function srcRangeEntries(serviceId: number, cidrs: readonly string[]): Array<[Buffer, Buffer]> {
  if (cidrs.length === 0) return [];
  return [
    [encodeSrcRangeKey(serviceId), Buffer.from([0])],
    ...cidrs.map((c): [Buffer, Buffer] => [encodeSrcRangeKey(serviceId, c), Buffer.from([1])]),
  ];
}

/** Sum a per-CPU u64 counter value buffer. */
export function sumPerCpu(b: Buffer): bigint {
  let s = 0n;
  for (let i = 0; i + 8 <= b.length; i += 8) s += b.readBigUInt64LE(i);
  return s;
}
