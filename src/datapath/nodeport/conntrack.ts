// The TypeScript side of N-S conntrack: a periodic sweep that deletes expired flows (the BPF
// side only ignores them on lookup) and the arithmetic that turns counters into an eviction
// count. Expiry times are bpf_ktime_get_ns values: CLOCK_MONOTONIC, which is also what
// process.hrtime.bigint() reads, so the two compare directly.
import { capped, DEFAULT_ITERATION_CAP } from '../codec/index.ts';
import { CT_ENTRY_SIZE, MAP_CT, MAP_NAT, NAT_ENTRY_SIZE, decodeCtEntry, decodeNatEntry } from './maps.ts';

/** The little a sweep needs of a map (the binding's BpfMap provides it). */
export interface SweepableMap {
  keys(): Iterable<Buffer>;
  lookup(key: Buffer): Buffer | undefined;
  delete(key: Buffer): boolean;
  /** The map's capacity, when known: a walk past twice as many keys is a walk that restarted. */
  readonly maxEntries?: number;
}

export interface SweepResult {
  readonly removedCt: number;
  readonly removedNat: number;
  readonly liveCt: number;
  readonly liveNat: number;
}

/** One pass over the ct and nat maps removing entries whose expiry has passed. */
export function sweepExpired(
  ct: SweepableMap,
  nat: SweepableMap,
  nowNs: bigint = process.hrtime.bigint(),
  iterationCap?: number,
): SweepResult {
  const pass = (m: SweepableMap, name: string, size: number, expires: (b: Buffer) => bigint): [number, number] => {
    let removed = 0;
    let live = 0;
    // Collect first: deleting while walking with get_next_key restarts the walk (and a walk
    // while the datapath inserts can too, hence the cap).
    const cap = iterationCap ?? (m.maxEntries ? 2 * m.maxEntries : DEFAULT_ITERATION_CAP);
    for (const key of [...capped(m.keys(), cap, name)]) {
      const v = m.lookup(key);
      if (!v || v.length < size) continue;
      if (expires(v) < nowNs) {
        if (m.delete(key)) removed++;
      } else {
        live++;
      }
    }
    return [removed, live];
  };
  const [removedCt, liveCt] = pass(ct, MAP_CT, CT_ENTRY_SIZE, (b) => decodeCtEntry(b).expiresNs);
  const [removedNat, liveNat] = pass(nat, MAP_NAT, NAT_ENTRY_SIZE, (b) => decodeNatEntry(b).expiresNs);
  return { removedCt, removedNat, liveCt, liveNat };
}

/**
 * Keeps the running totals that make LRU evictions visible: every entry is created (ct_new
 * counter), then either swept, still live, or evicted by the kernel.
 */
export class ConntrackAccounting {
  #swept = 0n;

  recordSweep(r: SweepResult): void {
    this.#swept += BigInt(r.removedCt);
  }

  get swept(): bigint {
    return this.#swept;
  }

  /** Evictions so far, given the ct_new counter and the live entry count now. */
  evictions(created: bigint, live: number): bigint {
    const e = created - this.#swept - BigInt(live);
    return e > 0n ? e : 0n;
  }
}
