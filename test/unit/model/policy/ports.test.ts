// Port ranges as prefixes of the 16-bit space: exhaustively for small ranges and for random
// ones, the prefixes are aligned, disjoint, cover exactly [lo, hi], and are as few as possible.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  flattenRanges,
  prefixContains,
  rangeToPrefixes,
  type PortPrefix,
} from '../../../../src/model/policy/ports.ts';

function covered(prefixes: readonly PortPrefix[]): number[] {
  return prefixes.flatMap((p) => {
    const size = 2 ** (16 - p.prefixLen);
    assert.equal(p.value % size, 0, `prefix ${p.value}/${p.prefixLen} is not aligned`);
    return Array.from({ length: size }, (_, i) => p.value + i);
  });
}

/** The fewest aligned blocks for [lo, hi], by dynamic programming: an independent count. */
function minimalCount(lo: number, hi: number): number {
  let count = 0;
  for (let start = lo; start <= hi; count++) {
    let best = 1;
    for (let size = 1; size <= 0x10000; size *= 2)
      if (start % size === 0 && start + size - 1 <= hi) best = size;
    start += best;
  }
  return count;
}

function assertExact(lo: number, hi: number): void {
  const prefixes = rangeToPrefixes(lo, hi);
  const ports = covered(prefixes);
  assert.equal(ports.length, hi - lo + 1, `[${lo}, ${hi}] covered ${ports.length} ports`);
  assert.deepEqual(
    ports,
    Array.from({ length: hi - lo + 1 }, (_, i) => lo + i),
  );
  assert.equal(prefixes.length, minimalCount(lo, hi), `[${lo}, ${hi}] is not minimal`);
}

test('every range inside 0..64 and around 65535 becomes exactly its prefixes', () => {
  for (let lo = 0; lo <= 64; lo++) for (let hi = lo; hi <= 64; hi++) assertExact(lo, hi);
  for (let lo = 65500; lo <= 65535; lo++) for (let hi = lo; hi <= 65535; hi++) assertExact(lo, hi);
});

test('random ranges: exact cover, minimal, never more than 30 prefixes', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 65535 }), (a, b) => {
      const [lo, hi] = a <= b ? [a, b] : [b, a];
      assertExact(lo, hi);
      assert.ok(rangeToPrefixes(lo, hi).length <= 30);
    }),
    { numRuns: 300 },
  );
});

test('known shapes: one port is a /16, the whole space a /0, 1-65535 the worst case but one', () => {
  assert.deepEqual(rangeToPrefixes(80, 80), [{ value: 80, prefixLen: 16 }]);
  assert.deepEqual(rangeToPrefixes(0, 65535), [{ value: 0, prefixLen: 0 }]);
  assert.deepEqual(rangeToPrefixes(32768, 65535), [{ value: 32768, prefixLen: 1 }]);
  assert.equal(rangeToPrefixes(1, 65535).length, 16);
  assert.equal(rangeToPrefixes(1, 65534).length, 30);
  assert.ok(
    prefixContains({ value: 80, prefixLen: 12 }, 95) && !prefixContains({ value: 80, prefixLen: 12 }, 96),
  );
  assert.throws(() => rangeToPrefixes(10, 9), RangeError);
  assert.throws(() => rangeToPrefixes(0, 65536), RangeError);
});

test('overlapping credited ranges flatten to disjoint ones, each port credited to the first rule covering it', () => {
  const order = (a: number, b: number): number => a - b;
  const out = flattenRanges(
    [
      { lo: 10, hi: 20, credit: 2 },
      { lo: 15, hi: 30, credit: 1 },
      { lo: 40, hi: 40, credit: 3 },
      { lo: 31, hi: 35, credit: 1 },
    ],
    order,
  );
  assert.deepEqual(out, [
    { lo: 10, hi: 14, credit: 2 },
    { lo: 15, hi: 35, credit: 1 },
    { lo: 40, hi: 40, credit: 3 },
  ]);
});
