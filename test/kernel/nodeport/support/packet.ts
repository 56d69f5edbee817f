// A small packet builder and parser for BPF_PROG_RUN tables: Ethernet + IPv4/IPv6 +
// TCP/UDP/ICMP(v6), with checksums computed on build and verified on parse.
import { isIPv4 } from 'node:net';

export type L4 = 'tcp' | 'udp' | 'icmp';

export interface PacketSpec {
  readonly src: string;
  readonly dst: string;
  readonly proto: L4;
  readonly sport?: number;
  readonly dport?: number;
  /** TCP flag letters: S, A, F, R, P. */
  readonly flags?: string;
  readonly seq?: number;
  readonly ack?: number;
  readonly payload?: Buffer;
  /** ICMP type/code and the quoted packet (an IP packet without Ethernet). */
  readonly icmpType?: number;
  readonly icmpCode?: number;
  readonly quote?: Buffer;
  /** For a UDP packet: leave the checksum zero ("none"). */
  readonly noUdpChecksum?: boolean;
}

export const CLIENT_MAC = Buffer.from('020000000001', 'hex');
export const NODE_MAC = Buffer.from('020000000002', 'hex');

function sum16(buf: Buffer, seed = 0): number {
  let s = seed;
  for (let i = 0; i + 1 < buf.length; i += 2) s += buf.readUInt16BE(i);
  if (buf.length % 2) s += (buf[buf.length - 1] ?? 0) << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

export function checksum(buf: Buffer, seed = 0): number {
  return ~sum16(buf, seed) & 0xffff;
}

export function ipBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  const [head = '', tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = ip.includes('::') ? (tail ? tail.split(':') : []) : [];
  const groups = ip.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(Number.parseInt(g, 16), i * 2));
  return b;
}

export function ipText(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  const s = groups.join(':');
  // compress the longest zero run
  const m = [...s.matchAll(/(?:^|:)0(?::0)+(?::|$)/g)].sort((a, b2) => b2[0].length - a[0].length)[0];
  return m ? `${s.slice(0, m.index)}::${s.slice((m.index ?? 0) + m[0].length)}` : s;
}

const PROTO: Record<L4, [number, number]> = { tcp: [6, 6], udp: [17, 17], icmp: [1, 58] };

function pseudo(src: Buffer, dst: Buffer, proto: number, len: number): number {
  const p = Buffer.alloc(src.length === 4 ? 12 : 40);
  if (src.length === 4) {
    src.copy(p, 0);
    dst.copy(p, 4);
    p[9] = proto;
    p.writeUInt16BE(len, 10);
  } else {
    src.copy(p, 0);
    dst.copy(p, 16);
    p.writeUInt32BE(len, 32);
    p[39] = proto;
  }
  return sum16(p);
}

function tcpFlags(f: string): number {
  let v = 0;
  for (const c of f) v |= { F: 1, S: 2, R: 4, P: 8, A: 16 }[c] ?? 0;
  return v;
}

/** The L3 packet (no Ethernet). */
export function ipPacket(s: PacketSpec): Buffer {
  const src = ipBytes(s.src);
  const dst = ipBytes(s.dst);
  const v6 = src.length === 16;
  const proto = (PROTO[s.proto] as [number, number])[v6 ? 1 : 0];
  const payload = s.payload ?? Buffer.alloc(0);
  let l4: Buffer;
  if (s.proto === 'tcp') {
    l4 = Buffer.concat([Buffer.alloc(20), payload]);
    l4.writeUInt16BE(s.sport ?? 0, 0);
    l4.writeUInt16BE(s.dport ?? 0, 2);
    l4.writeUInt32BE(s.seq ?? 1000, 4);
    l4.writeUInt32BE(s.ack ?? 0, 8);
    l4[12] = 5 << 4;
    l4[13] = tcpFlags(s.flags ?? 'S');
    l4.writeUInt16BE(65535, 14);
    l4.writeUInt16BE(checksum(l4, pseudo(src, dst, proto, l4.length)), 16);
  } else if (s.proto === 'udp') {
    l4 = Buffer.concat([Buffer.alloc(8), payload]);
    l4.writeUInt16BE(s.sport ?? 0, 0);
    l4.writeUInt16BE(s.dport ?? 0, 2);
    l4.writeUInt16BE(l4.length, 4);
    if (!s.noUdpChecksum) l4.writeUInt16BE(checksum(l4, pseudo(src, dst, proto, l4.length)) || 0xffff, 6);
  } else {
    l4 = Buffer.concat([Buffer.alloc(8), s.quote ?? payload]);
    l4[0] = s.icmpType ?? 8;
    l4[1] = s.icmpCode ?? 0;
    l4.writeUInt16BE(checksum(l4, v6 ? pseudo(src, dst, proto, l4.length) : 0), 2);
  }
  if (!v6) {
    const ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip.writeUInt16BE(20 + l4.length, 2);
    ip[8] = 64;
    ip[9] = proto;
    src.copy(ip, 12);
    dst.copy(ip, 16);
    ip.writeUInt16BE(checksum(ip), 10);
    return Buffer.concat([ip, l4]);
  }
  const ip = Buffer.alloc(40);
  ip[0] = 0x60;
  ip.writeUInt16BE(l4.length, 4);
  ip[6] = proto;
  ip[7] = 64;
  src.copy(ip, 8);
  dst.copy(ip, 24);
  return Buffer.concat([ip, l4]);
}

export function packet(s: PacketSpec): Buffer {
  const l3 = ipPacket(s);
  const eth = Buffer.alloc(14);
  NODE_MAC.copy(eth, 0);
  CLIENT_MAC.copy(eth, 6);
  eth.writeUInt16BE(isIPv4(s.src) ? 0x0800 : 0x86dd, 12);
  return Buffer.concat([eth, l3]);
}

export interface Parsed {
  readonly ethDst: string;
  readonly ethSrc: string;
  readonly src: string;
  readonly dst: string;
  readonly proto: L4 | number;
  readonly sport: number;
  readonly dport: number;
  readonly flags: string;
  readonly seq: number;
  readonly ack: number;
  readonly ttl: number;
  readonly icmpType: number;
  readonly icmpCode: number;
  /** The quoted packet of an ICMP error, parsed (no Ethernet). */
  readonly quote: Omit<Parsed, 'quote' | 'ethDst' | 'ethSrc'> | undefined;
  /** IPv4 header checksum and L4 checksum verify (quoted packets: IP header only). */
  readonly checksumsOk: boolean;
  readonly length: number;
}

function flagText(v: number): string {
  return ['F', 'S', 'R', 'P', 'A'].filter((_, i) => v & (1 << i)).join('');
}

function parseL3(b: Buffer, quoted: boolean): Omit<Parsed, 'ethDst' | 'ethSrc'> {
  const v6 = (b[0] ?? 0) >> 4 === 6;
  const hl = v6 ? 40 : ((b[0] ?? 0) & 15) * 4;
  const protoNum = v6 ? (b[6] ?? 0) : (b[9] ?? 0);
  const src = v6 ? b.subarray(8, 24) : b.subarray(12, 16);
  const dst = v6 ? b.subarray(24, 40) : b.subarray(16, 20);
  const l4 = b.subarray(hl, quoted ? b.length : v6 ? 40 + b.readUInt16BE(4) : b.readUInt16BE(2));
  const proto: L4 | number =
    protoNum === 6 ? 'tcp' : protoNum === 17 ? 'udp' : protoNum === 1 || protoNum === 58 ? 'icmp' : protoNum;
  let ok = v6 || checksum(b.subarray(0, hl)) === 0;
  if (!quoted) {
    if (proto === 'tcp' || (proto === 'udp' && l4.readUInt16BE(6) !== 0) || (proto === 'icmp' && v6))
      ok &&= checksum(l4, pseudo(src, dst, protoNum, l4.length)) === 0;
    else if (proto === 'icmp') ok &&= checksum(l4) === 0;
  }
  const icmp = proto === 'icmp';
  return {
    src: ipText(Buffer.from(src)),
    dst: ipText(Buffer.from(dst)),
    proto,
    sport: icmp ? 0 : l4.readUInt16BE(0),
    dport: icmp ? 0 : l4.readUInt16BE(2),
    flags: proto === 'tcp' && l4.length >= 14 ? flagText(l4[13] ?? 0) : '',
    seq: proto === 'tcp' && l4.length >= 8 ? l4.readUInt32BE(4) : 0,
    ack: proto === 'tcp' && l4.length >= 12 ? l4.readUInt32BE(8) : 0,
    ttl: v6 ? (b[7] ?? 0) : (b[8] ?? 0),
    icmpType: icmp ? (l4[0] ?? 0) : 0,
    icmpCode: icmp ? (l4[1] ?? 0) : 0,
    quote:
      icmp && !quoted && l4.length > 8 && (v6 ? [1, 2, 3] : [3, 11]).includes(l4[0] ?? 0)
        ? parseL3(l4.subarray(8), true)
        : undefined,
    checksumsOk: ok,
    length: b.length,
  };
}

export function parse(frame: Buffer): Parsed {
  return {
    ethDst: frame.subarray(0, 6).toString('hex'),
    ethSrc: frame.subarray(6, 12).toString('hex'),
    ...parseL3(frame.subarray(14), false),
  };
}
