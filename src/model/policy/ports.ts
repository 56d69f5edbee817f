// Port ranges as prefixes of the 16-bit port space, the shape an LPM key can hold: an endPort
// range costs a few entries (at most 30 for any range), not one per port. And the flattening of
// overlapping ranges from several rules into disjoint ones, each credited to one rule, so the
// longest-prefix match the datapath does has a single answer per port.

export interface PortPrefix {
  readonly value: number; // the first port of the block; its low 16 - prefixLen bits are zero
  readonly prefixLen: number; // 0 (every port) to 16 (one port)
}

/** The minimal list of aligned blocks that cover exactly [lo, hi] (0 ≤ lo ≤ hi ≤ 65535), ascending. */
export function rangeToPrefixes(lo: number, hi: number): PortPrefix[] {
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 0 || hi > 0xffff || lo > hi) {
    throw new RangeError(`not a port range: [${lo}, ${hi}]`);
  }
  const out: PortPrefix[] = [];
  let start = lo;
  while (start <= hi) {
    // The largest block that starts at `start` (alignment) and does not pass `hi` (size).
    let size = start === 0 ? 0x10000 : start & -start;
    while (size > hi - start + 1) size >>= 1;
    out.push({ value: start, prefixLen: 16 - Math.log2(size) });
    start += size;
  }
  return out;
}

export function prefixContains(prefix: PortPrefix, port: number): boolean {
  const shift = 16 - prefix.prefixLen;
  return port >>> shift === prefix.value >>> shift;
}

export interface CreditedRange<R> {
  readonly lo: number;
  readonly hi: number;
  readonly credit: R;
}

/**
 * Overlapping credited ranges → disjoint ranges, each port credited to the `first` (by `order`)
 * range covering it; neighbours with the same credit are merged so prefixes stay few.
 */
export function flattenRanges<R>(
  ranges: readonly CreditedRange<R>[],
  order: (a: R, b: R) => number,
): CreditedRange<R>[] {
  const cuts = [...new Set(ranges.flatMap((r) => [r.lo, r.hi + 1]))].sort((a, b) => a - b);
  const out: CreditedRange<R>[] = [];
  for (let i = 0; i + 1 < cuts.length; i++) {
    const lo = cuts[i]!;
    const hi = cuts[i + 1]! - 1;
    let best: R | undefined;
    for (const r of ranges) {
      if (r.lo <= lo && r.hi >= hi && (best === undefined || order(r.credit, best) < 0)) best = r.credit;
    }
    if (best === undefined) continue;
    const last = out[out.length - 1];
    if (last && last.hi + 1 === lo && order(last.credit, best) === 0)
      out[out.length - 1] = { lo: last.lo, hi, credit: best };
    else out.push({ lo, hi, credit: best });
  }
  return out;
}
