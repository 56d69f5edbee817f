// Map-operation rates from TypeScript through the binding, on the real service map of sock.o:
// single updates and lookups (one syscall each, reused buffers; per-op p50/p99 sampled every 20th
// op), a full iteration, and the batch calls. Rates are medians of several rounds; the batch rows
// are compared with single updates measured in the same run.
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import Table from 'cli-table3';
import { BpfObject } from '../src/datapath/bpf/index.ts';
import { encodeServiceKey, encodeServiceValue } from '../src/datapath/lb-codec.ts';

const SOCK = fileURLToPath(new URL('../build/bpf/sock.o', import.meta.url));
const MAP = 'ferry_services_v1';
const N = 20_000;
const ROUNDS = 5;
const SAMPLE_EVERY = 20;

const sorted = (xs: readonly number[]): number[] => [...xs].sort((a, b) => a - b);
const median = (xs: readonly number[]): number => sorted(xs)[Math.floor(xs.length / 2)]!;
const pct = (xs: readonly number[], p: number): number =>
  sorted(xs)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

interface Row {
  readonly rates: number[];
  readonly latencyNs: number[];
}
const row = (): Row => ({ rates: [], latencyNs: [] });

/** Runs `op` for i in [0, n), recording the rate and every SAMPLE_EVERY-th op's latency. */
function timed(r: Row, n: number, op: (i: number) => void): void {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    if (i % SAMPLE_EVERY === 0) {
      const s = process.hrtime.bigint();
      op(i);
      r.latencyNs.push(Number(process.hrtime.bigint() - s));
    } else op(i);
  }
  r.rates.push(n / ((performance.now() - t0) / 1000));
}

function once(r: Row, n: number, op: () => number): void {
  const t0 = performance.now();
  const done = op();
  if (done !== n) throw new Error(`bench-maps: expected ${n} entries, got ${done}`);
  r.rates.push(n / ((performance.now() - t0) / 1000));
}

const dir = `/sys/fs/bpf/ferry-bench-${randomBytes(4).toString('hex')}`;
fs.mkdirSync(dir);
try {
  using obj = BpfObject.open(SOCK, { pinRoot: dir });
  obj.setMapMaxEntries(MAP, N * 2);
  obj.load();
  const services = obj.map(MAP);
  const keys = Array.from({ length: N }, (_, i) =>
    encodeServiceKey({
      address: `10.96.${i >> 8}.${i & 255}`,
      port: 80,
      protocol: 'TCP',
      scope: 'internal',
      slot: 0,
    }),
  );
  const value = encodeServiceValue({
    backendId: 0,
    count: 1,
    flags: 0,
    serviceId: 1,
    affinityTimeout: 0,
    algorithm: 0,
    kind: 'ClusterIP',
  });
  const values = keys.map(() => value);
  const update = row();
  const lookup = row();
  const del = row();
  const iterate = row();
  const lookupBatch = row();
  const updateBatch = row();
  const deleteBatch = row();
  for (let r = 0; r < ROUNDS; r++) {
    timed(update, N, (i) => services.update(keys[i]!, value));
    timed(lookup, N, (i) => void services.lookup(keys[i]!));
    once(iterate, N, () => {
      let n = 0;
      for (const _ of services.entries()) n++;
      return n;
    });
    once(lookupBatch, N, () => services.lookupBatch().length);
    timed(del, N, (i) => void services.delete(keys[i]!));
    once(updateBatch, N, () => {
      services.updateBatch(keys, values);
      return N;
    });
    once(deleteBatch, N, () => services.deleteBatch(keys));
  }

  const singleUpdate = median(update.rates);
  const table = new Table({
    head: ['operation', 'median rate', 'vs single update', 'per op p50', 'per op p99'],
    style: { head: [], border: [] }, // plain text: the figures are read from logs
  });
  const rows: [string, Row][] = [
    ['update (1 syscall each)', update],
    ['lookup (1 syscall each)', lookup],
    ['delete (1 syscall each)', del],
    ['iterate (next_key + lookup)', iterate],
    [`lookupBatch (all ${N})`, lookupBatch],
    [`updateBatch (${N} in 1 call)`, updateBatch],
    [`deleteBatch (${N} in 1 call)`, deleteBatch],
  ];
  for (const [name, r] of rows) {
    const us = (ns: number): string => `${(ns / 1000).toFixed(2)} µs`;
    table.push([
      name,
      `${(median(r.rates) / 1000).toFixed(0)} k/s`,
      `${(median(r.rates) / singleUpdate).toFixed(2)}x`,
      r.latencyNs.length ? us(median(r.latencyNs)) : '',
      r.latencyNs.length ? us(pct(r.latencyNs, 99)) : '',
    ]);
  }
  console.log(`bench-maps: ${MAP} (hash, sock.o), ${N} entries × ${ROUNDS} rounds, medians`);
  console.log(table.toString());
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
