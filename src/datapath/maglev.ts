// Maglev consistent hashing (Eisenbud et al., NSDI 2016, §3.4): each backend gets a permutation
// of the M table positions from two hashes of its name; backends take turns claiming their next
// free position until the table is full. Every node computes the same table from the same
// backend names, so a flow hashes to the same backend everywhere, and removing one backend moves
// only the flows it held (plus a few). The table holds backend ids (per node) at those positions.
import { InvalidArgumentError } from '../common/errors.ts';

/** Table size; prime, mirrored by NP_MAGLEV_M in bpf/lib/maglev.h. */
export const MAGLEV_M = 1021;

export interface MaglevBackend {
  /** Stable across nodes: `address:port`. */
  readonly name: string;
  /** This node's id for the backend. */
  readonly id: number;
}

function fnv1a(s: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // final avalanche so that similar names spread
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  return h >>> 0;
}

/** Backend ids by table position (length m); all zero when there are no backends. */
export function maglevTable(backends: readonly MaglevBackend[], m = MAGLEV_M): Uint32Array {
  const table = new Uint32Array(m);
  const n = backends.length;
  if (n === 0) return table;
  if (n > m) throw new InvalidArgumentError(`maglev: ${n} backends exceed table size ${m}`);
  // Sort by name so that input order cannot change the table.
  const sorted = [...backends].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const offset = sorted.map((b) => fnv1a(b.name, 0x5bd1e995) % m);
  const skip = sorted.map((b) => (fnv1a(b.name, 0x27d4eb2f) % (m - 1)) + 1);
  const next = new Array<number>(n).fill(0);
  const filled = new Uint8Array(m);
  let count = 0;
  for (;;) {
    for (let i = 0; i < n; i++) {
      let c = ((offset[i] ?? 0) + (next[i] ?? 0) * (skip[i] ?? 1)) % m;
      while (filled[c]) {
        next[i] = (next[i] ?? 0) + 1;
        c = ((offset[i] ?? 0) + (next[i] ?? 0) * (skip[i] ?? 1)) % m;
      }
      table[c] = sorted[i]?.id ?? 0;
      filled[c] = 1;
      next[i] = (next[i] ?? 0) + 1;
      if (++count === m) return table;
    }
  }
}

/** struct np_maglev_table value bytes. */
export function encodeMaglevTable(table: Uint32Array): Buffer {
  const b = Buffer.alloc(table.length * 4);
  table.forEach((id, i) => b.writeUInt32LE(id, i * 4));
  return b;
}

const rol = (w: number, s: number): number => ((w << s) | (w >>> (32 - s))) >>> 0;

/**
 * The flow hash of bpf/lib/maglev.h (maglev_flow_hash), for tests and `ferry` tools that
 * predict a flow's backend: 16-byte source address words and ports read as the BPF program
 * reads them (little-endian loads of network-order bytes).
 */
export function flowHash(src16: Buffer, sportBe: number, dportBe: number, proto: number): number {
  const w = (i: number): number => src16.readUInt32LE(i * 4);
  const le16 = (v: number): number => ((v & 0xff) << 8) | (v >>> 8);
  let a = (0xdeadbeef + w(0)) >>> 0;
  let b = (0xdeadbeef + w(1)) >>> 0;
  let c = (0xdeadbeef + w(2)) >>> 0;
  c = ((c ^ b) - rol(b, 14)) >>> 0;
  a = ((a ^ c) - rol(c, 11)) >>> 0;
  b = ((b ^ a) - rol(a, 25)) >>> 0;
  a = (a + w(3)) >>> 0;
  b = (b + (((le16(sportBe) << 16) | le16(dportBe)) >>> 0)) >>> 0;
  c = (c + proto) >>> 0;
  c = ((c ^ b) - rol(b, 14)) >>> 0;
  a = ((a ^ c) - rol(c, 11)) >>> 0;
  b = ((b ^ a) - rol(a, 25)) >>> 0;
  c = ((c ^ b) - rol(b, 16)) >>> 0;
  a = ((a ^ c) - rol(c, 4)) >>> 0;
  b = ((b ^ a) - rol(a, 14)) >>> 0;
  c = ((c ^ b) - rol(b, 24)) >>> 0;
  return c;
}
