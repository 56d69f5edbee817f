// East-west benchmark, in one run:
//  1. agent work from a change to maps updated (model + writer on real pinned maps), p50/p99, and
//     the memory the agent's state takes at 10,000 services × 10 endpoints;
//  2. connect()+close latency from a lab pod through a ClusterIP vs straight to the pod IP, with
//     100 and with 10,000 services programmed by a real agent (the ratio is the socket-LB cost).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ServiceModel, type EndpointSlice, type Service } from '../src/model/index.ts';
import { BpfObject } from '../src/datapath/bpf/index.ts';
import { ServiceWriter } from '../src/datapath/service-writer.ts';
import { LB_MAP_NAMES, SOCK_OBJECT } from '../src/datapath/socket-lb.ts';
import { createLab, type Lab } from '../src/lab/index.ts';
import { ferryOnNode, startNodeAgent } from '../src/lab/agents.ts';
import { connectLoop, pct } from './support/connect-loop.ts';

const SERVICES = 10_000;
const ENDPOINTS = 10;
const CHANGES = 300;
const CONNECTS = 3000;
/** Direct and VIP alternate in rounds, so drift on a busy machine lands on both sides of the ratio. */
const ROUNDS = 4;
const WARMUP = 100;

function service(i: number): Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: `svc-${i}`, namespace: 'default' },
    spec: {
      clusterIP: `10.96.${100 + (i >> 8)}.${i & 255}`,
      clusterIPs: [`10.96.${100 + (i >> 8)}.${i & 255}`],
      ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }],
    },
  };
}

function slice(i: number, shift = 0): EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: `svc-${i}-a`,
      namespace: 'default',
      labels: { 'kubernetes.io/service-name': `svc-${i}` },
    },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: Array.from({ length: ENDPOINTS }, (_, e) => ({
      addresses: [`10.${200 + ((e + shift) % 50)}.${i >> 8}.${i & 255}`],
      nodeName: `node-${e % 3}`,
      conditions: { ready: true },
    })),
  };
}

async function agentWork(): Promise<void> {
  const dir = `/sys/fs/bpf/ferry-bench-${randomBytes(4).toString('hex')}`;
  fs.mkdirSync(dir);
  try {
    const obj = BpfObject.open(SOCK_OBJECT, { pinRoot: dir });
    obj.setMapMaxEntries(LB_MAP_NAMES.services, SERVICES * (ENDPOINTS + 2));
    obj.setMapMaxEntries(LB_MAP_NAMES.backends, SERVICES * ENDPOINTS * 2);
    obj.setMapMaxEntries(LB_MAP_NAMES.revnat, SERVICES * 2);
    obj.load();
    const writer = new ServiceWriter({
      services: obj.map(LB_MAP_NAMES.services),
      backends: obj.map(LB_MAP_NAMES.backends),
      revnat: obj.map(LB_MAP_NAMES.revnat),
      nodeports: obj.map(LB_MAP_NAMES.nodeports),
    });
    const services = Array.from({ length: SERVICES }, (_, i) => service(i));
    const slices = Array.from({ length: SERVICES }, (_, i) => slice(i));
    globalThis.gc?.();
    const rssBefore = process.memoryUsage().rss;
    const model = new ServiceModel({ nodeName: 'node-1', nodeAddresses: ['172.30.0.1'] });
    let t0 = performance.now();
    for (const s of services) model.apply({ kind: 'Service', previous: undefined, current: s });
    for (const s of slices) model.apply({ kind: 'EndpointSlice', previous: undefined, current: s });
    writer.readBack();
    const first = writer.reconcile(model.table().frontends.values());
    void model.sync();
    writer.reconcile(model.table().frontends.values());
    const fullMs = performance.now() - t0;
    globalThis.gc?.();
    const rssAfter = process.memoryUsage().rss;
    void first;
    const times: number[] = [];
    for (let k = 0; k < CHANGES; k++) {
      const i = (k * 7919) % SERVICES;
      const next = slice(i, k + 1);
      t0 = performance.now();
      model.apply({ kind: 'EndpointSlice', previous: slices[i], current: next });
      const { diff } = model.sync();
      const result = writer.apply(diff);
      times.push(performance.now() - t0);
      if (result.failed.length) throw result.failed[0]!.error;
      slices[i] = next;
    }
    obj.close();
    console.log(`agent work, ${SERVICES} services × ${ENDPOINTS} endpoints on real BPF maps`);
    console.log(`  first full sync into empty maps    ${fullMs.toFixed(0)} ms`);
    console.log(
      `  change → maps updated              p50 ${(pct(times, 50) * 1000).toFixed(0)} µs   p99 ${(pct(times, 99) * 1000).toFixed(0)} µs   (goal p99 < 1 ms, ${CHANGES} endpoint changes)`,
    );
    console.log(
      `  agent state (model + writer)       ${((rssAfter - rssBefore) / 2 ** 20).toFixed(0)} MiB RSS growth`,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function connectLatency(lab: Lab, host: string, port: number): Promise<number[]> {
  const r = await connectLoop(lab, 'n1-p1', host, port, CONNECTS / ROUNDS + WARMUP);
  if (Object.keys(r.errors).length)
    throw new Error(`connect loop to ${host}:${port}: failures ${JSON.stringify(r.errors)}`);
  return r.latenciesUs.slice(WARMUP); // the first connections warm caches
}

function writeManifests(dir: string, count: number, backend: string): void {
  for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f));
  const target: object[] = [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'target', namespace: 'default' },
      spec: {
        clusterIP: '10.96.0.50',
        clusterIPs: ['10.96.0.50'],
        ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }],
      },
    },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: 'target-a',
        namespace: 'default',
        labels: { 'kubernetes.io/service-name': 'target' },
      },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      endpoints: [{ addresses: [backend], nodeName: 'node-2', conditions: { ready: true } }],
    },
  ];
  fs.writeFileSync(
    path.join(dir, 'target.json'),
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: target }),
  );
  const chunk = 1000;
  for (let start = 0; start < count; start += chunk) {
    const items: object[] = [];
    for (let i = start; i < Math.min(count, start + chunk); i++) items.push(service(i), slice(i));
    fs.writeFileSync(
      path.join(dir, `bulk-${start}.json`),
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items }),
    );
  }
}

async function datapathLatency(): Promise<void> {
  const lab = await createLab({ nodes: 2, podsPerNode: 1 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-ew-'));
  try {
    const backend = lab.pod('n2-p1');
    await lab.startEchoServer(backend, { tcp: [], udp: [], http: [8080] });
    const rows: string[] = [];
    for (const count of [100, SERVICES]) {
      writeManifests(dir, count, backend.ipv4);
      const t0 = performance.now();
      const agent = await startNodeAgent(lab, lab.node('n1'), {
        manifests: dir,
        readyTimeoutMs: 600_000,
        extraArgs: [
          '--map-size-services',
          String(SERVICES * (ENDPOINTS + 2)),
          '--map-size-backends',
          String(SERVICES * ENDPOINTS * 2),
        ],
      });
      const readyMs = performance.now() - t0;
      const listed = JSON.parse(
        await ferryOnNode(lab, lab.node('n1'), ['service', 'list', '-o', 'json']),
      ) as unknown[];
      const rss =
        Number(
          /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${agent.process.pid}/status`, 'utf8'))?.[1] ?? 0,
        ) / 1024;
      const direct: number[] = [];
      const vip: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        direct.push(...(await connectLatency(lab, backend.ipv4, 8080)));
        vip.push(...(await connectLatency(lab, '10.96.0.50', 80)));
      }
      rows.push(
        `  ${String(count).padStart(6)} services (${listed.length} frontends)  direct p50 ${pct(direct, 50).toFixed(0)} µs p99 ${pct(direct, 99).toFixed(0)} µs | VIP p50 ${pct(vip, 50).toFixed(0)} µs p99 ${pct(vip, 99).toFixed(0)} µs | ratio p50 ${(pct(vip, 50) / pct(direct, 50)).toFixed(2)}x p99 ${(pct(vip, 99) / pct(direct, 99)).toFixed(2)}x | agent ready in ${(readyMs / 1000).toFixed(1)} s, RSS ${rss.toFixed(0)} MiB`,
      );
      await agent.process.kill('SIGTERM');
      await agent.process.exited();
      await sleep(100);
    }
    console.log(
      `connect()+close from a lab pod, ${CONNECTS} connections each in ${ROUNDS} interleaved rounds (goal: VIP ≤ 1.05 × direct at 10k)`,
    );
    for (const r of rows) console.log(r);
  } finally {
    await lab.down();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await agentWork();
await datapathLatency();
