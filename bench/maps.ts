// Map-operation rates from TypeScript through the binding: single updates (one syscall each,
// reused buffers), lookups, and entries/s for a full iteration. Medians of several rounds.
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { BpfObject } from '../src/datapath/bpf/index.ts';
import { encodeServiceKey, encodeServiceValue } from '../src/datapath/lb-codec.ts';

const SOCK = fileURLToPath(new URL('../build/bpf/sock.o', import.meta.url));
const N = 20_000;
const ROUNDS = 5;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

const dir = `/sys/fs/bpf/ferry-bench-${randomBytes(4).toString('hex')}`;
fs.mkdirSync(dir);
try {
  const obj = BpfObject.open(SOCK, { pinRoot: dir });
  obj.setMapMaxEntries('ferry_services_v1', N * 2);
  obj.load();
  const services = obj.map('ferry_services_v1');
  const keys = Array.from({ length: N }, (_, i) =>
    encodeServiceKey({ address: `10.96.${i >> 8}.${i & 255}`, port: 80, protocol: 'TCP', scope: 'internal', slot: 0 }),
  );
  const value = encodeServiceValue({ backendId: 0, count: 1, flags: 0, serviceId: 1, affinityTimeout: 0, algorithm: 0, kind: 'ClusterIP' });
  const updateRates: number[] = [];
  const lookupRates: number[] = [];
  const iterateRates: number[] = [];
  const batchRates: number[] = [];
  const lookupBatchRates: number[] = [];
  const values = keys.map(() => value);
  const singleNs: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    let t0 = performance.now();
    for (let i = 0; i < N; i++) {
      const s = r === 0 && i % 20 === 0 ? process.hrtime.bigint() : 0n;
      services.update(keys[i]!, value);
      if (s) singleNs.push(Number(process.hrtime.bigint() - s));
    }
    updateRates.push(N / ((performance.now() - t0) / 1000));
    t0 = performance.now();
    for (let i = 0; i < N; i++) services.lookup(keys[i]!);
    lookupRates.push(N / ((performance.now() - t0) / 1000));
    t0 = performance.now();
    let n = 0;
    for (const _ of services.entries()) n++;
    iterateRates.push(n / ((performance.now() - t0) / 1000));
    t0 = performance.now();
    const batched = services.lookupBatch().length;
    lookupBatchRates.push(batched / ((performance.now() - t0) / 1000));
    for (const k of keys) services.delete(k);
    t0 = performance.now();
    services.updateBatch(keys, values);
    batchRates.push(N / ((performance.now() - t0) / 1000));
    if (services.deleteBatch(keys) !== N) throw new Error('deleteBatch did not delete every key');
  }
  obj.close();
  const fmt = (x: number): string => `${(x / 1000).toFixed(0)} k/s`;
  console.log(`bench-maps: ${N} entries × ${ROUNDS} rounds, ferry_services_v1 (hash, ${path.basename(SOCK)})`);
  console.log(`  update (single syscall)   median ${fmt(median(updateRates))}   per op p50 ${(median(singleNs) / 1000).toFixed(2)} µs  p99 ${(pct(singleNs, 99) / 1000).toFixed(2)} µs`);
  console.log(`  lookup (single syscall)   median ${fmt(median(lookupRates))}`);
  console.log(`  iterate (next_key+lookup) median ${fmt(median(iterateRates))}`);
  console.log(`  lookup batch (all entries)  median ${fmt(median(lookupBatchRates))}`);
  console.log(`  update (one batch of ${N})  median ${fmt(median(batchRates))}   ${(median(batchRates) / median(updateRates)).toFixed(1)}x single updates`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
