// Byte layouts of the events contract (bpf/lib/events.h): the 112-byte flow record of the ring
// buffer ferry_events_v1, the agent-written ferry_events_config_v1 and the per-CPU
// ferry_events_counters_v1. Every C enum is mirrored here with its names, in C order; a value
// this build does not know (a newer BPF object) decodes to `UNKNOWN_<n>` instead of failing.
import { cachedAddressReader, encodeAddress, protocolText } from '../codec/index.ts';
import { named, REASONS, VERDICTS, type Reason, type Verdict } from './reasons.ts';

export { protocolText, REASONS, VERDICTS, type Reason, type Verdict };

export const ORIGINS = ['unknown', 'connect', 'sendmsg', 'bind', 'tc-ingress', 'tc-egress', 'xdp'] as const;
export type Origin = (typeof ORIGINS)[number] | `UNKNOWN_${number}`;

/** enum ferry_ct_state. */
export const CT_STATES = ['none', 'new', 'established', 'reply'] as const;
export type CtState = (typeof CT_STATES)[number] | `UNKNOWN_${number}`;

/** FERRY_NAT_* | FERRY_EV_F_* bits of ferry_event.flags. */
export const EVENT_FLAGS = [
  ['dnat', 0x1],
  ['snat', 0x2],
  ['revnat', 0x4],
  ['dsr', 0x8],
  ['affinity', 0x10],
  ['maglev', 0x20],
] as const;
export type EventFlag = (typeof EVENT_FLAGS)[number][0];

/** enum ferry_ev_counter: indexes of ferry_events_counters_v1 (FERRY_EV_COUNTER_MAX = 8 slots). */
export const EVENT_COUNTERS = ['emitted', 'lostRingFull', 'rateLimited', 'sampledOut', 'filtered'] as const;
export type EventCounterName = (typeof EVENT_COUNTERS)[number];
export type EventCounters = Readonly<Record<EventCounterName, number>>;
export const EVENT_COUNTER_SLOTS = 8;

export const EVENTS_MAP = 'ferry_events_v1';
export const EVENTS_CONFIG_MAP = 'ferry_events_config_v1';
export const EVENTS_COUNTERS_MAP = 'ferry_events_counters_v1';

/** One ring-buffer record, decoded but not enriched. */
export interface RawEvent {
  /** bpf_ktime_get_boot_ns of the decision. */
  readonly tsNs: bigint;
  readonly sockCookie: bigint;
  readonly cgroupId: bigint;
  readonly netnsCookie: bigint;
  /** Canonical IP text, undefined when the record holds zeros (unknown). */
  readonly src: string | undefined;
  readonly dst: string | undefined;
  readonly xlated: string | undefined;
  readonly srcPort: number;
  readonly dstPort: number;
  readonly xlatedPort: number;
  readonly protocol: number;
  readonly origin: Origin;
  readonly verdict: Verdict;
  readonly reason: Reason;
  readonly ctState: CtState;
  readonly flags: readonly EventFlag[];
  readonly serviceId: number;
  readonly backendId: number;
  readonly ifindex: number;
  readonly netnsInum: number;
}

/* struct ferry_event (112 bytes), offsets:
 *   0 ts_ns u64 | 8 sock_cookie u64 | 16 cgroup_id u64 | 24 netns_cookie u64
 *  32 src[16] | 48 dst[16] | 64 xlated[16]
 *  80 src_port be16 | 82 dst_port be16 | 84 xlated_port be16
 *  86 protocol | 87 origin | 88 verdict | 89 reason | 90 ct_state | 91 flags
 *  92 service_id u32 | 96 backend_id u32 | 100 ifindex u32 | 104 netns_inum u32 | 108 pad u32 */
export const EVENT_SIZE = 112;
export const EVENT_OFFSETS = {
  tsNs: 0,
  sockCookie: 8,
  cgroupId: 16,
  netnsCookie: 24,
  src: 32,
  dst: 48,
  xlated: 64,
  srcPort: 80,
  dstPort: 82,
  xlatedPort: 84,
  protocol: 86,
  origin: 87,
  verdict: 88,
  reason: 89,
  ctState: 90,
  flags: 91,
  serviceId: 92,
  backendId: 96,
  ifindex: 100,
  netnsInum: 104,
} as const;

// The same few addresses (VIPs, backends, pods) recur in every event: remember their text.
const readAddress = cachedAddressReader();

const NO_FLAGS: readonly EventFlag[] = Object.freeze([]);

function decodeFlags(bits: number): readonly EventFlag[] {
  if (bits === 0) return NO_FLAGS;
  const out: EventFlag[] = [];
  for (const [name, bit] of EVENT_FLAGS) if (bits & bit) out.push(name);
  return out;
}

/** Decodes one ring-buffer sample; throws on a short record (a layout mismatch, never data). */
export function decodeEvent(buf: Buffer): RawEvent {
  if (buf.length < EVENT_SIZE) throw new RangeError(`ferry_event: ${buf.length} bytes, expected ${EVENT_SIZE}`);
  const o = EVENT_OFFSETS;
  return {
    tsNs: buf.readBigUInt64LE(o.tsNs),
    sockCookie: buf.readBigUInt64LE(o.sockCookie),
    cgroupId: buf.readBigUInt64LE(o.cgroupId),
    netnsCookie: buf.readBigUInt64LE(o.netnsCookie),
    src: readAddress(buf, o.src),
    dst: readAddress(buf, o.dst),
    xlated: readAddress(buf, o.xlated),
    srcPort: buf.readUInt16BE(o.srcPort),
    dstPort: buf.readUInt16BE(o.dstPort),
    xlatedPort: buf.readUInt16BE(o.xlatedPort),
    protocol: buf[o.protocol]!,
    origin: named(ORIGINS, buf[o.origin]!),
    verdict: named(VERDICTS, buf[o.verdict]!) as Verdict,
    reason: named(REASONS, buf[o.reason]!),
    ctState: named(CT_STATES, buf[o.ctState]!),
    flags: decodeFlags(buf[o.flags]!),
    serviceId: buf.readUInt32LE(o.serviceId),
    backendId: buf.readUInt32LE(o.backendId),
    ifindex: buf.readUInt32LE(o.ifindex),
    netnsInum: buf.readUInt32LE(o.netnsInum),
  };
}

function indexOf(names: readonly string[], name: string, what: string): number {
  const m = /^UNKNOWN_(\d+)$/.exec(name);
  if (m) return Number(m[1]);
  const i = names.indexOf(name);
  if (i < 0) throw new RangeError(`ferry_event.${what}: unknown name ${name}`);
  return i;
}

function writeAddress(buf: Buffer, offset: number, address: string | undefined, what: string): void {
  if (address !== undefined) encodeAddress(address, `ferry_event.${what}`).copy(buf, offset);
}

/** The inverse of decodeEvent, for tests and fixtures (the datapath is the only real writer). */
export function encodeEvent(e: RawEvent): Buffer {
  const buf = Buffer.alloc(EVENT_SIZE);
  const o = EVENT_OFFSETS;
  buf.writeBigUInt64LE(e.tsNs, o.tsNs);
  buf.writeBigUInt64LE(e.sockCookie, o.sockCookie);
  buf.writeBigUInt64LE(e.cgroupId, o.cgroupId);
  buf.writeBigUInt64LE(e.netnsCookie, o.netnsCookie);
  writeAddress(buf, o.src, e.src, 'src');
  writeAddress(buf, o.dst, e.dst, 'dst');
  writeAddress(buf, o.xlated, e.xlated, 'xlated');
  buf.writeUInt16BE(e.srcPort, o.srcPort);
  buf.writeUInt16BE(e.dstPort, o.dstPort);
  buf.writeUInt16BE(e.xlatedPort, o.xlatedPort);
  buf[o.protocol] = e.protocol;
  buf[o.origin] = indexOf(ORIGINS, e.origin, 'origin');
  buf[o.verdict] = indexOf(VERDICTS, e.verdict, 'verdict');
  buf[o.reason] = indexOf(REASONS, e.reason, 'reason');
  buf[o.ctState] = indexOf(CT_STATES, e.ctState, 'ct_state');
  let flags = 0;
  for (const f of e.flags) flags |= EVENT_FLAGS.find(([n]) => n === f)![1];
  buf[o.flags] = flags;
  buf.writeUInt32LE(e.serviceId, o.serviceId);
  buf.writeUInt32LE(e.backendId, o.backendId);
  buf.writeUInt32LE(e.ifindex, o.ifindex);
  buf.writeUInt32LE(e.netnsInum, o.netnsInum);
  return buf;
}

/* struct ferry_events_config { u32 flags; u32 verdict_mask; u32 sample_every; u32 rate_per_sec;
 *                              u32 burst; u32 pad; } (24 bytes) */
export const EVENTS_CONFIG_SIZE = 24;
export const EV_CFG_SET = 0x1;

export interface EventsConfig {
  /** Which verdicts produce events; empty = events off (the counters keep counting). */
  readonly verdicts: readonly Exclude<Verdict, `UNKNOWN_${number}`>[];
  /** 1 = every translation/forward; N = one in N. Drops and rejects are never sampled. */
  readonly sampleEvery: number;
  /** Per-CPU events per second; 0 = unlimited. */
  readonly ratePerSec: number;
  /** Per-CPU bucket size. */
  readonly burst: number;
}

export function encodeEventsConfig(c: EventsConfig): Buffer {
  const buf = Buffer.alloc(EVENTS_CONFIG_SIZE);
  let mask = 0;
  for (const v of c.verdicts) mask |= 1 << VERDICTS.indexOf(v);
  buf.writeUInt32LE(EV_CFG_SET, 0);
  buf.writeUInt32LE(mask >>> 0, 4);
  buf.writeUInt32LE(c.sampleEvery, 8);
  buf.writeUInt32LE(c.ratePerSec, 12);
  buf.writeUInt32LE(c.burst, 16);
  return buf;
}

export function decodeEventsConfig(buf: Buffer): EventsConfig & { readonly set: boolean } {
  const mask = buf.readUInt32LE(4);
  return {
    set: (buf.readUInt32LE(0) & EV_CFG_SET) !== 0,
    verdicts: (['TRANSLATED', 'FORWARDED', 'DROPPED', 'REJECTED'] as const).filter((v) => mask & (1 << VERDICTS.indexOf(v))),
    sampleEvery: buf.readUInt32LE(8),
    ratePerSec: buf.readUInt32LE(12),
    burst: buf.readUInt32LE(16),
  };
}

/** Sums per-CPU u64 slots (one 8-byte value per possible CPU) of one counter. */
export function sumPerCpu(slots: readonly Buffer[]): number {
  let n = 0n;
  for (const s of slots) n += s.readBigUInt64LE(0);
  return Number(n);
}
