// The event codec against the C layout of bpf/lib/events.h (and the enums of reasons.h): sizes,
// offsets, enum names in C order, and a record built byte by byte the way the BPF side writes it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  decodeEvent,
  decodeEventsConfig,
  encodeEvent,
  encodeEventsConfig,
  EVENT_COUNTERS,
  EVENT_FLAGS,
  EVENT_OFFSETS,
  EVENT_SIZE,
  EVENTS_CONFIG_SIZE,
  ORIGINS,
  REASONS,
  VERDICTS,
  CT_STATES,
  type RawEvent,
} from '../../../src/datapath/events/codec.ts';

const read = (file: string): string => fs.readFileSync(fileURLToPath(new URL(`../../../bpf/lib/${file}`, import.meta.url)), 'utf8');
const header = read('events.h') + read('reasons.h');

/** `NAME = value` pairs of one C enum, in order. */
function cEnum(name: string): [string, number][] {
  const body = new RegExp(`enum ${name}(?: : \\w+)? \\{([^}]*)\\}`).exec(header)?.[1];
  assert.ok(body, `enum ${name} in events.h or reasons.h`);
  return [...body.matchAll(/^\s*(FERRY_\w+)\s*=\s*(\d+)/gm)].map((m) => [m[1]!, Number(m[2])]);
}

const snake = (s: string): string => s.toUpperCase().replaceAll('-', '_');

test('every C enum is mirrored with its names at the same values', () => {
  for (const [c, v] of cEnum('ferry_origin')) assert.equal(snake(ORIGINS[v]!), c.replace('FERRY_ORIGIN_', ''), c);
  for (const [c, v] of cEnum('ferry_verdict')) assert.equal(VERDICTS[v], c.replace('FERRY_VERDICT_', ''), c);
  const reasons = cEnum('ferry_reason');
  assert.equal(reasons.length, REASONS.length, 'no reason missing on either side');
  for (const [c, v] of reasons) assert.equal(REASONS[v], c.replace('FERRY_REASON_', ''), c);
  for (const [c, v] of cEnum('ferry_ct_state')) assert.equal(snake(CT_STATES[v]!), c.replace('FERRY_CT_', ''), c);
  const counters = cEnum('ferry_ev_counter').filter(([c]) => c !== 'FERRY_EV_COUNTER_MAX');
  assert.equal(counters.length, EVENT_COUNTERS.length);
  for (const [c, v] of counters) assert.equal(snake(EVENT_COUNTERS[v]!.replace(/([A-Z])/g, '_$1')), c.replace('FERRY_EV_', ''), c);
  for (const [name, bit] of EVENT_FLAGS) {
    const m = new RegExp(`#define FERRY_(?:NAT|EV_F)_${name.toUpperCase()} (0x[0-9a-f]+)`).exec(header);
    assert.ok(m, `flag ${name} in events.h`);
    assert.equal(Number(m[1]), bit, name);
  }
});

test('struct ferry_event: 112 bytes, fields at the offsets the C struct gives them', () => {
  assert.equal(EVENT_SIZE, 112);
  assert.match(header, /sizeof\(struct ferry_event\) == 112/);
  // The C field order, with sizes: a running offset must land on each codec offset.
  const body = /struct ferry_event \{([^}]*)\}/.exec(header)![1]!;
  const sizes: Record<string, number> = { __u64: 8, __u32: 4, __be16: 2, __u8: 1 };
  let offset = 0;
  const fields: Record<string, number> = {};
  for (const m of body.matchAll(/^\s*(__\w+) (\w+)(\[(\d+)\])?;/gm)) {
    const size = sizes[m[1]!]! * (m[4] ? Number(m[4]) : 1);
    offset = Math.ceil(offset / sizes[m[1]!]!) * sizes[m[1]!]!;
    fields[m[2]!] = offset;
    offset += size;
  }
  assert.equal(offset, 112);
  const camel = (s: string): string => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  for (const [c, off] of Object.entries(fields)) {
    if (c === 'pad') continue;
    assert.equal(EVENT_OFFSETS[camel(c) as keyof typeof EVENT_OFFSETS], off, c);
  }
});

const sample: RawEvent = {
  tsNs: 123_456_789_000n,
  sockCookie: 0x1_0000_0001n,
  cgroupId: 4242n,
  netnsCookie: 7n,
  src: '10.244.1.3',
  dst: '10.96.0.10',
  xlated: '10.244.2.7',
  srcPort: 40312,
  dstPort: 80,
  xlatedPort: 7000,
  protocol: 6,
  origin: 'connect',
  verdict: 'TRANSLATED',
  reason: 'NONE',
  ctState: 'none',
  flags: ['affinity'],
  serviceId: 12,
  backendId: 34,
  ifindex: 0,
  netnsInum: 4026532000,
};

test('a record written the way the BPF side writes it decodes field by field', () => {
  const buf = Buffer.alloc(112);
  buf.writeBigUInt64LE(123_456_789_000n, 0);
  buf.writeBigUInt64LE(0x1_0000_0001n, 8);
  buf.writeBigUInt64LE(4242n, 16);
  buf.writeBigUInt64LE(7n, 24);
  buf.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 244, 1, 3], 32);
  buf.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 96, 0, 10], 48);
  buf.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 244, 2, 7], 64);
  buf.writeUInt16BE(40312, 80);
  buf.writeUInt16BE(80, 82);
  buf.writeUInt16BE(7000, 84);
  buf.set([6, 1, 1, 0, 0, 0x10], 86);
  buf.writeUInt32LE(12, 92);
  buf.writeUInt32LE(34, 96);
  buf.writeUInt32LE(4026532000, 104);
  assert.deepEqual(decodeEvent(buf), sample);
  assert.deepEqual(encodeEvent(sample), buf);
});

test('IPv6, zero addresses and unknown enum values decode without failing', () => {
  const e = decodeEvent(
    encodeEvent({ ...sample, src: undefined, dst: 'fd00:10:96::a', xlated: undefined, verdict: 'DROPPED', reason: 'FAMILY_MISMATCH', flags: [] }),
  );
  assert.deepEqual([e.src, e.dst, e.xlated, e.reason], [undefined, 'fd00:10:96::a', undefined, 'FAMILY_MISMATCH']);
  const buf = encodeEvent(sample);
  buf[87] = 9;
  buf[88] = 7;
  buf[89] = 200;
  const odd = decodeEvent(buf);
  assert.deepEqual([odd.origin, odd.verdict, odd.reason], ['UNKNOWN_9', 'UNKNOWN_7', 'UNKNOWN_200']);
  assert.throws(() => decodeEvent(Buffer.alloc(100)), /100 bytes/);
});

test('struct ferry_events_config: 24 bytes, verdict mask bit = 1 << verdict', () => {
  assert.equal(EVENTS_CONFIG_SIZE, 24);
  const buf = encodeEventsConfig({ verdicts: ['DROPPED', 'REJECTED'], sampleEvery: 10, ratePerSec: 500, burst: 50 });
  assert.equal(buf.length, 24);
  assert.equal(buf.readUInt32LE(0), 1, 'FERRY_EV_CFG_SET');
  assert.equal(buf.readUInt32LE(4), (1 << 3) | (1 << 4));
  assert.deepEqual(decodeEventsConfig(buf), { set: true, verdicts: ['DROPPED', 'REJECTED'], sampleEvery: 10, ratePerSec: 500, burst: 50 });
  assert.equal(encodeEventsConfig({ verdicts: [], sampleEvery: 1, ratePerSec: 0, burst: 1 }).readUInt32LE(4), 0, 'events off');
});
