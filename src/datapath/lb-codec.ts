// Byte layouts of the load-balancing maps, each next to the C struct it mirrors (bpf/lib/lb.h,
// bpf/lib/sock_maps.h), declared once on the codec layer (./codec/). Multi-byte fields the kernel
// compares against packet or socket data (ports) are network order; ids and counters are host
// order (little-endian here). The functions below turn the model's words into the C numbers.
import type { Protocol } from '../model/k8s.ts';
import type { BackendState, FrontendKind, Scope } from '../model/frontend.ts';
import { struct, kindName, kindNumber, protocolName, protocolNumber, KINDS } from './codec/index.ts';

export { encodeId, decodeId, protocolName, KINDS } from './codec/index.ts';
export { SOCK_REASONS } from './events/reasons.ts';

export const IPPROTO: Readonly<Record<'TCP' | 'UDP', number>> = { TCP: 6, UDP: 17 };
export const SCOPE: Readonly<Record<Scope, number>> = { internal: 0, external: 1 };
export const ALG = { random: 0, maglev: 1 } as const;
export const SVC_F_REJECT = 0x1;
export const SVC_F_DROP = 0x2;
export const BACKEND_F_LOCAL = 0x1;

/* struct lb_service_key { u8 address[16]; be16 port; u8 protocol; u8 scope; u16 slot; u8 pad[2]; } */
export const SERVICE_KEY = struct('lb_service_key', 24, {
  address: [0, 'addr'],
  port: [16, 'be16'],
  protocol: [18, 'u8'],
  scope: [19, 'u8'],
  slot: [20, 'u16'],
});
export interface ServiceKey {
  readonly address: string;
  readonly port: number;
  readonly protocol: Protocol;
  readonly scope: Scope;
  readonly slot: number;
}
export const SERVICE_KEY_SIZE = SERVICE_KEY.size;
export function encodeServiceKey(k: ServiceKey, buf: Buffer = Buffer.alloc(SERVICE_KEY_SIZE)): Buffer {
  return SERVICE_KEY.encode(
    { ...k, protocol: protocolNumber(k.protocol, 'lb_service_key.protocol'), scope: SCOPE[k.scope] },
    buf,
  );
}
export function decodeServiceKey(buf: Buffer): ServiceKey {
  const k = SERVICE_KEY.decode(buf);
  return { ...k, protocol: protocolName(k.protocol), scope: k.scope === 1 ? 'external' : 'internal' };
}

/* struct lb_service { u32 backend_id; u16 count; u16 flags; u32 service_id; u32 affinity_timeout;
 *                     u8 algorithm; u8 kind; u8 pad[2]; } — slot 0 uses all but backend_id, slot n only backend_id */
export const SERVICE_VALUE = struct('lb_service', 20, {
  backendId: [0, 'u32'],
  count: [4, 'u16'],
  flags: [6, 'u16'],
  serviceId: [8, 'u32'],
  affinityTimeout: [12, 'u32'],
  algorithm: [16, 'u8'],
  kind: [17, 'u8'],
});
export interface ServiceValue {
  readonly backendId: number;
  readonly count: number;
  readonly flags: number;
  readonly serviceId: number;
  readonly affinityTimeout: number;
  readonly algorithm: number;
  readonly kind: FrontendKind;
}
export const SERVICE_VALUE_SIZE = SERVICE_VALUE.size;
export function encodeServiceValue(v: ServiceValue, buf: Buffer = Buffer.alloc(SERVICE_VALUE_SIZE)): Buffer {
  return SERVICE_VALUE.encode({ ...v, kind: kindNumber(v.kind) }, buf);
}
export function decodeServiceValue(buf: Buffer): ServiceValue {
  const v = SERVICE_VALUE.decode(buf);
  return { ...v, kind: kindName(v.kind) ?? KINDS[0]! };
}

/* struct lb_backend { u8 address[16]; be16 port; u8 protocol; u8 state; u8 flags; u8 pad[3]; } */
export const BACKEND_VALUE = struct('lb_backend', 24, {
  address: [0, 'addr'],
  port: [16, 'be16'],
  protocol: [18, 'u8'],
  state: [19, 'u8'],
  flags: [20, 'u8'],
});
export interface BackendValue {
  readonly address: string;
  readonly port: number;
  readonly protocol: Protocol;
  readonly state: BackendState;
  readonly nodeLocal: boolean;
}
export const BACKEND_VALUE_SIZE = BACKEND_VALUE.size;
export function encodeBackend(b: BackendValue): Buffer {
  return BACKEND_VALUE.encode({
    address: b.address,
    port: b.port,
    protocol: protocolNumber(b.protocol, 'lb_backend.protocol'),
    state: b.state === 'terminating' ? 1 : 0,
    flags: b.nodeLocal ? BACKEND_F_LOCAL : 0,
  });
}
export function decodeBackend(buf: Buffer): BackendValue {
  const b = BACKEND_VALUE.decode(buf);
  return {
    address: b.address,
    port: b.port,
    protocol: protocolName(b.protocol),
    state: b.state === 1 ? 'terminating' : 'active',
    nodeLocal: (b.flags & BACKEND_F_LOCAL) !== 0,
  };
}

/* struct lb_revnat { u8 address[16]; be16 port; u8 pad[2]; } */
export const REVNAT_VALUE = struct('lb_revnat', 20, { address: [0, 'addr'], port: [16, 'be16'] });
export interface RevNatValue {
  readonly address: string;
  readonly port: number;
}
export const REVNAT_VALUE_SIZE = REVNAT_VALUE.size;
export function encodeRevNat(v: RevNatValue): Buffer {
  return REVNAT_VALUE.encode(v);
}
export function decodeRevNat(buf: Buffer): RevNatValue {
  return REVNAT_VALUE.decode(buf);
}

/* struct nodeport_key { be16 port; u8 protocol; u8 pad; } → u8 1 */
export const NODEPORT_KEY = struct('nodeport_key', 4, { port: [0, 'be16'], protocol: [2, 'u8'] });
export const NODEPORT_KEY_SIZE = NODEPORT_KEY.size;
export function encodeNodePortKey(port: number, protocol: Protocol): Buffer {
  return NODEPORT_KEY.encode({ port, protocol: protocolNumber(protocol, 'nodeport_key.protocol') });
}
export function decodeNodePortKey(buf: Buffer): { port: number; protocol: Protocol } {
  const k = NODEPORT_KEY.decode(buf);
  return { port: k.port, protocol: protocolName(k.protocol) };
}
export const NODEPORT_VALUE = Buffer.from([1]);

/* struct sock_revnat_key { u64 cookie; u8 address[16]; be16 port; u8 pad[6]; } (bpf/lib/sock_maps.h) */
export const SOCK_REVNAT_KEY = struct('sock_revnat_key', 32, {
  cookie: [0, 'u64'],
  address: [8, 'addr'], // the backend the socket was sent to
  port: [24, 'be16'],
});
export interface SockRevNatKey {
  readonly cookie: bigint;
  readonly address: string;
  readonly port: number;
}
export const SOCK_REVNAT_KEY_SIZE = SOCK_REVNAT_KEY.size;
export function encodeSockRevNatKey(k: SockRevNatKey): Buffer {
  return SOCK_REVNAT_KEY.encode(k);
}
export function decodeSockRevNatKey(buf: Buffer): SockRevNatKey {
  return SOCK_REVNAT_KEY.decode(buf);
}

/* struct sock_revnat { u8 address[16]; be16 port; u8 pad[2]; u32 service_id; } */
export const SOCK_REVNAT_VALUE = struct('sock_revnat', 24, {
  address: [0, 'addr'], // the frontend shown to the application
  port: [16, 'be16'],
  serviceId: [20, 'u32'],
});
export interface SockRevNatValue {
  readonly address: string;
  readonly port: number;
  readonly serviceId: number;
}
export const SOCK_REVNAT_VALUE_SIZE = SOCK_REVNAT_VALUE.size;
export function encodeSockRevNat(v: SockRevNatValue): Buffer {
  return SOCK_REVNAT_VALUE.encode(v);
}
export function decodeSockRevNat(buf: Buffer): SockRevNatValue {
  return SOCK_REVNAT_VALUE.decode(buf);
}

/* struct affinity_key { u64 client; u32 service_id; u32 pad; } — client = netns cookie */
export const AFFINITY_KEY = struct('affinity_key', 16, { client: [0, 'u64'], serviceId: [8, 'u32'] });
export interface AffinityKey {
  readonly client: bigint;
  readonly serviceId: number;
}
export const AFFINITY_KEY_SIZE = AFFINITY_KEY.size;
export function encodeAffinityKey(k: AffinityKey): Buffer {
  return AFFINITY_KEY.encode(k);
}
export function decodeAffinityKey(buf: Buffer): AffinityKey {
  return AFFINITY_KEY.decode(buf);
}

/* struct affinity { u64 last_used_ns; u32 backend_id; u16 slot; u16 pad; } — slot is a hint, 0 = unknown */
export const AFFINITY_VALUE = struct('affinity', 16, {
  lastUsedNs: [0, 'u64'], // bpf_ktime_get_boot_ns
  backendId: [8, 'u32'],
  slot: [12, 'u16'],
});
export interface AffinityValue {
  readonly lastUsedNs: bigint;
  readonly backendId: number;
  readonly slot: number;
}
export const AFFINITY_VALUE_SIZE = AFFINITY_VALUE.size;
export function encodeAffinity(v: AffinityValue): Buffer {
  return AFFINITY_VALUE.encode(v);
}
export function decodeAffinity(buf: Buffer): AffinityValue {
  return AFFINITY_VALUE.decode(buf);
}
