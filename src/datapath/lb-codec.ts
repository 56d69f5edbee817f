// Byte layouts of the load-balancing maps, each next to the C struct it mirrors (bpf/lib/lb.h,
// bpf/lib/sock_lb.h). Multi-byte fields the kernel compares against packet or socket data (ports)
// are network order; ids and counters are host order (little-endian here).
import { formatIp, parseIp, type IpAddress } from '../common/ip.ts';
import type { Protocol } from '../model/k8s.ts';
import type { BackendState, FrontendKind, Scope } from '../model/frontend.ts';

export const IPPROTO: Readonly<Record<'TCP' | 'UDP', number>> = { TCP: 6, UDP: 17 };
export const SCOPE: Readonly<Record<Scope, number>> = { internal: 0, external: 1 };
export const ALG = { random: 0, maglev: 1 } as const;
export const SVC_F_REJECT = 0x1;
export const SVC_F_DROP = 0x2;
export const BACKEND_F_LOCAL = 0x1;

export function protocolName(n: number): Protocol {
  return n === 17 ? 'UDP' : n === 6 ? 'TCP' : 'SCTP';
}

function writeAddress(buf: Buffer, offset: number, address: string): void {
  const ip = parseIp(address);
  if (!ip) throw new Error(`not an IP address: ${address}`);
  buf.set(ip.bytes, offset);
}

function readAddress(buf: Buffer, offset: number): string {
  const bytes = new Uint8Array(buf.subarray(offset, offset + 16));
  const mapped = bytes.subarray(0, 12).every((b, i) => b === (i >= 10 ? 0xff : 0));
  const ip: IpAddress = { family: mapped ? 4 : 6, bytes };
  return formatIp(ip);
}

/* struct lb_service_key { u8 address[16]; be16 port; u8 protocol; u8 scope; u16 slot; u8 pad[2]; } */
export interface ServiceKey {
  readonly address: string;
  readonly port: number;
  readonly protocol: Protocol;
  readonly scope: Scope;
  readonly slot: number;
}
export const SERVICE_KEY_SIZE = 24;
export function encodeServiceKey(k: ServiceKey, buf: Buffer = Buffer.alloc(SERVICE_KEY_SIZE)): Buffer {
  buf.fill(0);
  writeAddress(buf, 0, k.address);
  buf.writeUInt16BE(k.port, 16);
  buf.writeUInt8(IPPROTO[k.protocol as 'TCP' | 'UDP'], 18);
  buf.writeUInt8(SCOPE[k.scope], 19);
  buf.writeUInt16LE(k.slot, 20);
  return buf;
}
export function decodeServiceKey(buf: Buffer): ServiceKey {
  return {
    address: readAddress(buf, 0),
    port: buf.readUInt16BE(16),
    protocol: protocolName(buf.readUInt8(18)),
    scope: buf.readUInt8(19) === 1 ? 'external' : 'internal',
    slot: buf.readUInt16LE(20),
  };
}

/* struct lb_service { u32 backend_id; u16 count; u16 flags; u32 service_id; u32 affinity_timeout;
 *                     u8 algorithm; u8 kind; u8 pad[2]; } — slot 0 uses all but backend_id, slot n only backend_id */
export interface ServiceValue {
  readonly backendId: number;
  readonly count: number;
  readonly flags: number;
  readonly serviceId: number;
  readonly affinityTimeout: number;
  readonly algorithm: number;
  readonly kind: FrontendKind;
}
export const SERVICE_VALUE_SIZE = 20;
export const KINDS: readonly FrontendKind[] = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalIP'];
export function encodeServiceValue(v: ServiceValue, buf: Buffer = Buffer.alloc(SERVICE_VALUE_SIZE)): Buffer {
  buf.fill(0);
  buf.writeUInt32LE(v.backendId, 0);
  buf.writeUInt16LE(v.count, 4);
  buf.writeUInt16LE(v.flags, 6);
  buf.writeUInt32LE(v.serviceId, 8);
  buf.writeUInt32LE(v.affinityTimeout, 12);
  buf.writeUInt8(v.algorithm, 16);
  buf.writeUInt8(KINDS.indexOf(v.kind), 17);
  return buf;
}
export function decodeServiceValue(buf: Buffer): ServiceValue {
  return {
    backendId: buf.readUInt32LE(0),
    count: buf.readUInt16LE(4),
    flags: buf.readUInt16LE(6),
    serviceId: buf.readUInt32LE(8),
    affinityTimeout: buf.readUInt32LE(12),
    algorithm: buf.readUInt8(16),
    kind: KINDS[buf.readUInt8(17)] ?? 'ClusterIP',
  };
}

/* map key of ferry_backends_v1 and ferry_revnat_v1: u32 id */
export function encodeId(id: number): Buffer {
  const buf = Buffer.alloc(4);
  buf.writeUInt32LE(id, 0);
  return buf;
}
export function decodeId(buf: Buffer): number {
  return buf.readUInt32LE(0);
}

/* struct lb_backend { u8 address[16]; be16 port; u8 protocol; u8 state; u8 flags; u8 pad[3]; } */
export interface BackendValue {
  readonly address: string;
  readonly port: number;
  readonly protocol: Protocol;
  readonly state: BackendState;
  readonly nodeLocal: boolean;
}
export const BACKEND_VALUE_SIZE = 24;
export function encodeBackend(b: BackendValue): Buffer {
  const buf = Buffer.alloc(BACKEND_VALUE_SIZE);
  writeAddress(buf, 0, b.address);
  buf.writeUInt16BE(b.port, 16);
  buf.writeUInt8(IPPROTO[b.protocol as 'TCP' | 'UDP'], 18);
  buf.writeUInt8(b.state === 'terminating' ? 1 : 0, 19);
  buf.writeUInt8(b.nodeLocal ? BACKEND_F_LOCAL : 0, 20);
  return buf;
}
export function decodeBackend(buf: Buffer): BackendValue {
  return {
    address: readAddress(buf, 0),
    port: buf.readUInt16BE(16),
    protocol: protocolName(buf.readUInt8(18)),
    state: buf.readUInt8(19) === 1 ? 'terminating' : 'active',
    nodeLocal: (buf.readUInt8(20) & BACKEND_F_LOCAL) !== 0,
  };
}

/* struct lb_revnat { u8 address[16]; be16 port; u8 pad[2]; } */
export interface RevNatValue {
  readonly address: string;
  readonly port: number;
}
export const REVNAT_VALUE_SIZE = 20;
export function encodeRevNat(v: RevNatValue): Buffer {
  const buf = Buffer.alloc(REVNAT_VALUE_SIZE);
  writeAddress(buf, 0, v.address);
  buf.writeUInt16BE(v.port, 16);
  return buf;
}
export function decodeRevNat(buf: Buffer): RevNatValue {
  return { address: readAddress(buf, 0), port: buf.readUInt16BE(16) };
}

/* struct nodeport_key { be16 port; u8 protocol; u8 pad; } → u8 1 */
export const NODEPORT_KEY_SIZE = 4;
export function encodeNodePortKey(port: number, protocol: Protocol): Buffer {
  const buf = Buffer.alloc(NODEPORT_KEY_SIZE);
  buf.writeUInt16BE(port, 0);
  buf.writeUInt8(IPPROTO[protocol as 'TCP' | 'UDP'], 2);
  return buf;
}
export function decodeNodePortKey(buf: Buffer): { port: number; protocol: Protocol } {
  return { port: buf.readUInt16BE(0), protocol: protocolName(buf.readUInt8(2)) };
}
export const NODEPORT_VALUE = Buffer.from([1]);

/* enum sock_reason (bpf/lib/sock_lb.h): indexes of ferry_sock_counters_v1 */
export const SOCK_REASONS = [
  'translated',
  'reject_no_backend',
  'drop_policy',
  'drop_missing_backend',
  'affinity_hit',
  'revnat',
  'bind_refused',
  'revnat_update_fail',
] as const;

/* struct sock_revnat_key { u64 cookie; u8 address[16]; be16 port; u8 pad[6]; } (bpf/lib/sock_lb.h) */
export interface SockRevNatKey {
  readonly cookie: bigint;
  readonly address: string; // the backend the socket was sent to
  readonly port: number;
}
export const SOCK_REVNAT_KEY_SIZE = 32;
export function encodeSockRevNatKey(k: SockRevNatKey): Buffer {
  const buf = Buffer.alloc(SOCK_REVNAT_KEY_SIZE);
  buf.writeBigUInt64LE(k.cookie, 0);
  writeAddress(buf, 8, k.address);
  buf.writeUInt16BE(k.port, 24);
  return buf;
}
export function decodeSockRevNatKey(buf: Buffer): SockRevNatKey {
  return { cookie: buf.readBigUInt64LE(0), address: readAddress(buf, 8), port: buf.readUInt16BE(24) };
}

/* struct sock_revnat { u8 address[16]; be16 port; u8 pad[2]; u32 service_id; } */
export interface SockRevNatValue {
  readonly address: string; // the frontend shown to the application
  readonly port: number;
  readonly serviceId: number;
}
export const SOCK_REVNAT_VALUE_SIZE = 24;
export function encodeSockRevNat(v: SockRevNatValue): Buffer {
  const buf = Buffer.alloc(SOCK_REVNAT_VALUE_SIZE);
  writeAddress(buf, 0, v.address);
  buf.writeUInt16BE(v.port, 16);
  buf.writeUInt32LE(v.serviceId, 20);
  return buf;
}
export function decodeSockRevNat(buf: Buffer): SockRevNatValue {
  return { address: readAddress(buf, 0), port: buf.readUInt16BE(16), serviceId: buf.readUInt32LE(20) };
}

/* struct affinity_key { u64 client; u32 service_id; u32 pad; } — client = netns cookie */
export interface AffinityKey {
  readonly client: bigint;
  readonly serviceId: number;
}
export const AFFINITY_KEY_SIZE = 16;
export function encodeAffinityKey(k: AffinityKey): Buffer {
  const buf = Buffer.alloc(AFFINITY_KEY_SIZE);
  buf.writeBigUInt64LE(k.client, 0);
  buf.writeUInt32LE(k.serviceId, 8);
  return buf;
}
export function decodeAffinityKey(buf: Buffer): AffinityKey {
  return { client: buf.readBigUInt64LE(0), serviceId: buf.readUInt32LE(8) };
}

/* struct affinity { u64 last_used_ns; u32 backend_id; u16 slot; u16 pad; } — slot is a hint, 0 = unknown */
export interface AffinityValue {
  readonly lastUsedNs: bigint; // bpf_ktime_get_boot_ns
  readonly backendId: number;
  readonly slot: number;
}
export const AFFINITY_VALUE_SIZE = 16;
export function encodeAffinity(v: AffinityValue): Buffer {
  const buf = Buffer.alloc(AFFINITY_VALUE_SIZE);
  buf.writeBigUInt64LE(v.lastUsedNs, 0);
  buf.writeUInt32LE(v.backendId, 8);
  buf.writeUInt16LE(v.slot, 12);
  return buf;
}
export function decodeAffinity(buf: Buffer): AffinityValue {
  return { lastUsedNs: buf.readBigUInt64LE(0), backendId: buf.readUInt32LE(8), slot: buf.readUInt16LE(12) };
}
