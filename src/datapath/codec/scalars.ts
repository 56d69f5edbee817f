// The small enumerations every map shares (protocol numbers, frontend kinds) and the u32 id key of
// the backend and reverse-NAT maps: one table each, read in both directions.
import { InvalidArgumentError } from '../../common/errors.ts';
import type { Protocol } from '../../model/k8s.ts';
import type { FrontendKind } from '../../model/frontend.ts';

export const IPPROTO: Readonly<Record<Protocol, number>> = { TCP: 6, UDP: 17, SCTP: 132 };

const IPPROTO_TEXT: Readonly<Record<number, string>> = {
  1: 'ICMP',
  6: 'TCP',
  17: 'UDP',
  58: 'ICMPv6',
  132: 'SCTP',
};

/** IPPROTO_* of a Service protocol; `what` names the object and field in the error. */
export function protocolNumber(protocol: string, what = 'protocol'): number {
  const n = (IPPROTO as Readonly<Record<string, number>>)[protocol];
  if (n === undefined) throw new InvalidArgumentError(`${what}: "${protocol}" is not TCP, UDP or SCTP`);
  return n;
}

/** The Service protocol of an IPPROTO_* the load balancer keys on (anything else reads as SCTP). */
export function protocolName(n: number): Protocol {
  return n === 17 ? 'UDP' : n === 6 ? 'TCP' : 'SCTP';
}

/** Any IPPROTO_* as text, for flows (ICMP included). */
export function protocolText(n: number): string {
  return IPPROTO_TEXT[n] ?? `IPPROTO_${n}`;
}

/** Indexed by LB_KIND_* (bpf/lib/lb.h). */
export const KINDS: readonly FrontendKind[] = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalIP'];

export function kindNumber(kind: FrontendKind): number {
  const n = KINDS.indexOf(kind);
  if (n < 0) throw new InvalidArgumentError(`kind: "${kind}" is not a frontend kind`);
  return n;
}

export function kindName(n: number): FrontendKind | undefined {
  return KINDS[n];
}

export const ID_SIZE = 4;

/* map key of ferry_backends_v1 and ferry_revnat_v1: u32 id */
export function encodeId(id: number): Buffer {
  const buf = Buffer.alloc(ID_SIZE);
  buf.writeUInt32LE(id, 0);
  return buf;
}

export function decodeId(buf: Buffer): number {
  return buf.readUInt32LE(0);
}

/** Sums a per-CPU u64 value (one 8-byte slot per possible CPU, as one buffer or one per CPU). */
export function sumPerCpu(value: Buffer | readonly Buffer[]): bigint {
  let s = 0n;
  for (const b of Buffer.isBuffer(value) ? [value] : value)
    for (let i = 0; i + 8 <= b.length; i += 8) s += b.readBigUInt64LE(i);
  return s;
}
