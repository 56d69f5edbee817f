// Model benchmark: full computation for 10,000 services × 10 endpoints, then the incremental sync
// after one endpoint change in that set, plus the heap the model holds. Prints figures only.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ServiceModel, type EndpointSlice, type Service } from '../src/model/index.ts';

// An exact heap delta needs a forced collection; `make bench-model` passes no flags, so expose gc here.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const SERVICES = 10_000;
const ENDPOINTS = 10;
const RUNS = 5;
const INCREMENTAL = 200;

function service(i: number): Service {
  return {
    metadata: { name: `svc-${i}`, namespace: 'default' },
    spec: {
      clusterIPs: [`10.96.${i >> 8}.${i & 255}`],
      ports: [{ name: 'http', port: 80, targetPort: 'http' }],
    },
  };
}

function slice(i: number, extra = 0): EndpointSlice {
  const endpoints = Array.from({ length: ENDPOINTS + extra }, (_, e) => ({
    addresses: [`10.${100 + (e % 100)}.${i >> 8}.${i & 255}`],
    nodeName: `node-${e % 3}`,
    conditions: { ready: true },
  }));
  return {
    metadata: {
      name: `svc-${i}-a`,
      namespace: 'default',
      labels: { 'kubernetes.io/service-name': `svc-${i}` },
    },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints,
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const services = Array.from({ length: SERVICES }, (_, i) => service(i));
const slices = Array.from({ length: SERVICES }, (_, i) => slice(i));

// Baseline in the same run (so a loaded machine shows as a ratio): the floor any implementation
// pays — one plain object per endpoint and one map entry per service, nothing decided.
const baseTimes: number[] = [];
for (let r = 0; r < RUNS; r++) {
  gc();
  const start = performance.now();
  const table = new Map<string, unknown[]>();
  for (let i = 0; i < SERVICES; i++) {
    const out = [];
    for (const e of slices[i]!.endpoints ?? [])
      out.push({ address: e.addresses[0], port: 8080, nodeName: e.nodeName });
    table.set(`${services[i]!.spec.clusterIPs![0]}|80|TCP`, out);
  }
  baseTimes.push(performance.now() - start);
  if (table.size !== SERVICES) throw new Error('baseline lost entries');
}

function buildModel(): ServiceModel {
  const m = new ServiceModel({ nodeName: 'node-1', nodeAddresses: ['172.30.0.1'] });
  for (const s of services) m.apply({ kind: 'Service', previous: undefined, current: s });
  for (const s of slices) m.apply({ kind: 'EndpointSlice', previous: undefined, current: s });
  return m;
}

// What one model retains, measured in its own call so that no earlier model can still be
// reachable (a loop variable from the previous iteration stayed alive and hid the whole heap).
function retainedHeap(): number {
  gc();
  const before = process.memoryUsage().heapUsed;
  const m = buildModel();
  m.sync();
  gc();
  const retained = process.memoryUsage().heapUsed - before;
  if (m.sync().diff.upsert.length !== 0)
    throw new Error('a second sync of an unchanged model wrote frontends');
  return retained;
}
const heapDeltas = Array.from({ length: 3 }, retainedHeap).sort((a, b) => a - b);

const fullTimes: number[] = [];
const applyTimes: number[] = [];
let model: ServiceModel | undefined;
for (let r = 0; r < RUNS; r++) {
  // eslint-disable-next-line no-useless-assignment -- dropping the reference lets gc() free the last run's model
  model = undefined;
  gc();
  const start = performance.now();
  const m = buildModel();
  model = m;
  const applied = performance.now();
  const { diff } = m.sync();
  fullTimes.push(performance.now() - start);
  applyTimes.push(applied - start);
  if (diff.upsert.length !== SERVICES)
    throw new Error(`expected ${SERVICES} frontends, got ${diff.upsert.length}`);
}

const incTimes: number[] = [];
const live = model!;
for (let k = 0; k < INCREMENTAL; k++) {
  const i = (k * 37) % SERVICES;
  const previous = slices[i]!;
  const current = slice(i, k % 2 === 0 ? 1 : 0);
  const start = performance.now();
  live.apply({ kind: 'EndpointSlice', previous, current });
  const { diff } = live.sync();
  incTimes.push(performance.now() - start);
  slices[i] = current;
  if (diff.upsert.length > 1) throw new Error('incremental sync touched more than one frontend');
}

fullTimes.sort((a, b) => a - b);
incTimes.sort((a, b) => a - b);
console.log(`model: ${SERVICES} services × ${ENDPOINTS} endpoints`);
applyTimes.sort((a, b) => a - b);
baseTimes.sort((a, b) => a - b);
const full = percentile(fullTimes, 50);
const base = percentile(baseTimes, 50);
console.log(
  `  full computation     median ${full.toFixed(1)} ms   (goal < 200 ms, ${RUNS} runs; of which recording + validating ${percentile(applyTimes, 50).toFixed(1)} ms)`,
);
console.log(
  `  baseline (copy only) median ${base.toFixed(1)} ms   full/baseline ×${(full / base).toFixed(1)}`,
);
console.log(
  `  incremental sync     median ${(percentile(incTimes, 50) * 1000).toFixed(1)} µs   p99 ${(percentile(incTimes, 99) * 1000).toFixed(1)} µs   (goal < 100 µs, ${INCREMENTAL} changes)`,
);
const mib = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1);
console.log(
  `  model heap           median ${mib(percentile(heapDeltas, 50))} MiB   range ${mib(heapDeltas[0]!)}–${mib(heapDeltas.at(-1)!)} MiB (3 models, each built alone between forced gcs; the input objects excluded)`,
);
