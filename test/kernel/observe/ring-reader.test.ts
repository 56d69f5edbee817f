// The in-place ring-buffer reader against the kernel's own producer: the binding's test program
// writes one 8-byte record per BPF_PROG_RUN into a one-page ring (255 records of 16 bytes), so a
// few thousand runs wrap the ring many times; a full ring refuses records instead of corrupting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { BpfObject } from '../../../src/datapath/bpf/index.ts';
import { MappedRingReader, MmappedRing } from '../../../src/datapath/events/ring-reader.ts';

const COUNTER = fileURLToPath(new URL('../../../build/bpf/test/counter.o', import.meta.url));

function load(t: import('node:test').TestContext): BpfObject {
  const dir = `/sys/fs/bpf/ferry-test-${randomBytes(4).toString('hex')}`;
  fs.mkdirSync(dir);
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const obj = BpfObject.open(COUNTER, { pinRoot: dir });
  obj.load();
  t.after(() => obj.close());
  return obj;
}

/** Runs the XDP program on a frame of `len` bytes: it records {len, first byte}. */
function emit(obj: BpfObject, len: number, first: number): void {
  const frame = Buffer.alloc(len);
  frame[0] = first;
  obj.program('count_and_stamp').run({ data: frame });
}

test('records come out in order, intact, across many wraps of the ring', (t) => {
  const obj = load(t);
  using ring = new MmappedRing(obj.map('events'));
  const seen: [number, number][] = [];
  const collect = (r: Buffer): void => void seen.push([r.readUInt32LE(0), r.readUInt32LE(4)]);
  const sent: [number, number][] = [];
  for (let i = 0; i < 3000; i++) {
    const len = 14 + (i % 200);
    emit(obj, len, i & 0xff);
    sent.push([len, i & 0xff]);
    if (i % 97 === 0) ring.consume(collect); // uneven batches: wraps land mid-batch
  }
  ring.consume(collect);
  assert.equal(seen.length, 3000);
  assert.deepEqual(seen, sent);
  assert.equal(ring.consume(collect), 0, 'nothing left, nothing read twice');
});

test('a full ring refuses what does not fit; the reader frees the room again', (t) => {
  const obj = load(t);
  using ring = new MmappedRing(obj.map('events'));
  for (let i = 0; i < 300; i++) emit(obj, 20, i & 0xff);
  const got: number[] = [];
  // 4096 / (8 + 8) = 256 slots, but the kernel refuses the one that would fill the ring exactly.
  assert.equal(ring.consume((r) => void got.push(r.readUInt32LE(4))), 255);
  assert.deepEqual(got, Array.from({ length: 255 }, (_, i) => i), 'the first ones, in order; the rest were refused');
  emit(obj, 20, 7);
  assert.deepEqual(
    (() => {
      const again: number[] = [];
      ring.consume((r) => void again.push(r.readUInt32LE(4)));
      return again;
    })(),
    [7],
  );
});

test('the event-loop reader: woken through the map fd, closes cleanly', async (t) => {
  const obj = load(t);
  const got: number[] = [];
  const reader = new MappedRingReader(obj.map('events'), (r) => void got.push(r.readUInt32LE(4)), { intervalMs: 5000 });
  t.after(() => reader.close());
  for (let i = 0; i < 5; i++) emit(obj, 20, i);
  for (let i = 0; i < 100 && got.length < 5; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(got, [0, 1, 2, 3, 4], 'delivered by the poll wake-up, well before the 5 s timer');
  assert.equal(reader.received, 5);
  reader.close();
  reader.close();
  assert.equal(reader.consume(), 0);
});
