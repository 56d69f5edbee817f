// Kubernetes-mode benchmark on a real control plane (test/k8s/control-plane.ts), four lab nodes,
// a proxy on three: kube-proxy iptables on node-1, nftables on node-2, Ferry on node-3; node-4 holds the backends.
// Services are selector-less with hand-written EndpointSlices (one endpoint each), written
// through the API. Printed, in one run:
//  1. network-programming latency at 1,000 and 10,000 services, as kube-proxy's
//     network_programming_duration_seconds defines it: from the EndpointSlice change (its
//     endpoints.kubernetes.io/last-change-trigger-time, set to the moment we write it) to the
//     datapath serving it — observed from a pod on the proxy's node, which connects every
//     millisecond or so until the new backend answers. Each proxy is measured with the other two
//     paused (SIGSTOP), so they do not compete for the CPU; each proxy's own histogram mean is
//     printed beside ours as a cross-check;
//  2. connect()+close latency from a pod on each proxy's node through the last ClusterIP created,
//     at 100, 1,000 and 10,000 services, with direct-to-pod-IP from the same pod as the floor.
//
//   make bench-k8s            SCALES=100,1000,10000 TRIALS=20 CONNECTS=2000 to change the sizes
import https from 'node:https';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  startControlPlane,
  missingBinaries,
  k8sBinDir,
  type ControlPlane,
} from '../test/k8s/control-plane.ts';
import { startKubeProxy, type KubeProxyMode } from '../test/k8s/kube-proxy-peer.ts';
import { createLab, target, type Lab } from '../src/lab/lab.ts';
import { bridgeLoopback, type LoopbackBridge } from '../src/lab/loopback-bridge.ts';
import { kubeNodeName, startNodeAgent } from '../src/lab/agents.ts';
import type { LabProcess } from '../src/lab/exec.ts';
import type { LabNode, LabPod } from '../src/lab/types.ts';
import { connectLoop, pct } from './support/connect-loop.ts';

const SCALES = (process.env.SCALES ?? '100,1000,10000').split(',').map(Number);
const PROGRAMMING_AT = new Set([1000, 10_000]);
const TRIALS = Number(process.env.TRIALS ?? 20);
const CONNECTS = Number(process.env.CONNECTS ?? 2000);
const WARMUP = 100;
const ROUNDS = 4;
const BACKEND_PORT = 7000;
const TRIGGER_TIME = 'endpoints.kubernetes.io/last-change-trigger-time';

const vip = (i: number): string => `10.96.${1 + (i >> 8)}.${i & 255}`;

interface Proxy {
  readonly name: string;
  readonly node: LabNode;
  readonly client: LabPod;
  process: LabProcess;
  /** Name of its network-programming histogram on 127.0.0.1:10249 in the node. */
  readonly metric: string;
}

/** A minimal API client: the bench writes thousands of objects, kubectl per object would dominate. */
class Api {
  readonly #agent: https.Agent;
  readonly #url: URL;
  readonly #token: string;
  constructor(cp: ControlPlane) {
    this.#url = new URL(cp.server);
    this.#token = cp.adminToken;
    this.#agent = new https.Agent({ keepAlive: true, maxSockets: 16, ca: fs.readFileSync(cp.caFile) });
  }
  request(method: string, path: string, body: object, contentType = 'application/json'): Promise<void> {
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: this.#url.hostname,
          port: this.#url.port,
          path,
          method,
          agent: this.#agent,
          headers: { authorization: `Bearer ${this.#token}`, 'content-type': contentType },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () =>
            (res.statusCode ?? 0) < 300
              ? resolve()
              : reject(new Error(`${method} ${path}: ${res.statusCode} ${text.slice(0, 300)}`)),
          );
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });
  }
  close(): void {
    this.#agent.destroy();
  }
}

function serviceObject(i: number): object {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: `svc-${i}`, namespace: 'default' },
    spec: {
      clusterIP: vip(i),
      ports: [{ name: 'http', port: 80, targetPort: BACKEND_PORT, protocol: 'TCP' }],
    },
  };
}

function endpoints(pod: LabPod): object[] {
  return [
    {
      addresses: [pod.ipv4],
      conditions: { ready: true, serving: true, terminating: false },
      nodeName: `node-${pod.nodeIndex}`,
      targetRef: { kind: 'Pod', namespace: 'default', name: pod.name },
    },
  ];
}

function sliceObject(i: number, pod: LabPod): object {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: `svc-${i}-1`,
      namespace: 'default',
      labels: {
        'kubernetes.io/service-name': `svc-${i}`,
        'endpointslice.kubernetes.io/managed-by': 'ferry-bench',
      },
    },
    addressType: 'IPv4',
    endpoints: endpoints(pod),
    ports: [{ name: 'http', port: BACKEND_PORT, protocol: 'TCP' }],
  };
}

async function inParallel(
  from: number,
  to: number,
  width: number,
  work: (i: number) => Promise<void>,
): Promise<void> {
  let next = from;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < to) await work(next++);
    }),
  );
}

// Runs in a pod: connect to host:port again and again until the pod named WANT answers, then
// print the wall-clock time (ms since the epoch, the clock the API write was stamped with).
const WATCH_SCRIPT = `
const net = require('node:net');
const [host, port, want, limitMs] = [process.argv[1], Number(process.argv[2]), process.argv[3], Number(process.argv[4])];
const until = Date.now() + limitMs;
console.log('watching');
function one() {
  if (Date.now() > until) { console.log('timeout'); process.exit(1); }
  const s = net.connect({ host, port });
  let buf = '';
  const again = () => { s.resetAndDestroy(); setTimeout(one, 1); };
  s.setEncoding('utf8');
  s.on('data', (d) => {
    buf += d;
    if (!buf.includes('\\n')) return;
    const t = performance.timeOrigin + performance.now();
    if (buf.startsWith('pod=' + want + ' ')) { console.log('seen ' + t); process.exit(0); }
    again();
  });
  s.once('error', () => setTimeout(one, 1));
}
one();
`;

/** Failed connects seen by connectLatency, by proxy row: reported next to the figures, never hidden. */
const connectErrors = new Map<string, Record<string, number>>();

async function connectLatency(lab: Lab, from: LabPod, host: string, port: number): Promise<number[]> {
  const r = await connectLoop(lab, from, host, port, Math.ceil(CONNECTS / ROUNDS) + WARMUP);
  const key = `${from.name} ${host}`;
  const seen = connectErrors.get(key) ?? {};
  for (const [code, n] of Object.entries(r.errors)) seen[code] = (seen[code] ?? 0) + n;
  connectErrors.set(key, seen);
  return r.latenciesUs.slice(WARMUP);
}

function failures(from: LabPod, host: string): string {
  const e = connectErrors.get(`${from.name} ${host}`) ?? {};
  return Object.keys(e).length ? ` | failed connects ${JSON.stringify(e)}` : '';
}

/** Waits until `from` reaches `address`:80 and the named pod answers. */
async function waitServed(
  lab: Lab,
  from: LabPod,
  address: string,
  pod: string,
  timeoutMs: number,
): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const r = await lab.probe(from, target(address, 80), { count: 1, timeoutMs: 500 });
    if (r.summaries[0]?.backends[pod]) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs)
      throw new Error(
        `${from.name}: ${address}:80 not served by ${pod} after ${timeoutMs} ms: ${JSON.stringify(r.summaries[0])}`,
      );
    await sleep(200);
  }
}

/** count and sum of a histogram in a Prometheus text exposition. */
async function histogram(lab: Lab, node: LabNode, name: string): Promise<{ count: number; sum: number }> {
  const r = await lab.exec(node, ['curl', '-s', 'http://127.0.0.1:10249/metrics']);
  const value = (suffix: string): number =>
    Number(new RegExp(`^${name}_${suffix}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(r.stdout)?.[1] ?? 0);
  return { count: value('count'), sum: value('sum') };
}

async function main(): Promise<void> {
  const missing = [
    ...missingBinaries(),
    ...(fs.existsSync(`${k8sBinDir()}/kube-proxy`) ? [] : ['kube-proxy']),
  ];
  if (missing.length) throw new Error(`k8s binaries missing (${missing.join(', ')}): run hack/k8s/build.sh`);
  const cp = await startControlPlane();
  const api = new Api(cp);
  let lab: Lab | undefined;
  const bridges: LoopbackBridge[] = [];
  const proxies: Proxy[] = [];
  try {
    lab = await createLab({ nodes: 4, podsPerNode: 2 });
    const theLab = lab;
    const port = Number(new URL(cp.server).port);
    for (const n of lab.nodes) bridges.push(await bridgeLoopback(lab, n, { remotePort: port }));
    // Backends live on node-4, which runs no proxy: a SYN arriving at a kube-proxy node walks its
    // nat PREROUTING chain (every Service's rule, for iptables) even when it is addressed to a pod,
    // so a backend there would tax every path, the direct floor included. Every slice starts on A.
    const A = lab.pod('n4-p1');
    const B = lab.pod('n4-p2');
    for (const p of [A, B]) await lab.startEchoServer(p, { tcp: [BACKEND_PORT], udp: [], http: [] });
    for (const n of lab.nodes)
      await api.request('POST', '/api/v1/nodes', {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: kubeNodeName(n), labels: { 'topology.kubernetes.io/zone': `zone-${n.index}` } },
        spec: { podCIDRs: [n.podCidrV4, n.podCidrV6] },
      });

    const kubeProxy = async (i: number, mode: KubeProxyMode): Promise<Proxy> => {
      const node = theLab.node(i);
      // As in the differential test: a node has a route for the Service range (kube-proxy REJECTs in FORWARD).
      await theLab.exec(node, ['ip', 'route', 'add', '10.96.0.0/16', 'dev', 'eth0']);
      const peer = await startKubeProxy(theLab, node, { kubeconfig: cp.kubeconfig, mode });
      return {
        name: `kube-proxy ${mode}`,
        node,
        client: theLab.podsOn(node)[0]!,
        process: peer.process,
        metric: 'kubeproxy_network_programming_duration_seconds',
      };
    };
    proxies.push(await kubeProxy(1, 'iptables'), await kubeProxy(2, 'nftables'));
    const ferryNode = lab.node(3);
    const startFerry = async (): Promise<LabProcess> =>
      (
        await startNodeAgent(theLab, ferryNode, {
          manifests: '/nonexistent',
          readyTimeoutMs: 300_000,
          extraArgs: [
            '--source',
            'kubernetes',
            '--kubeconfig',
            cp.kubeconfig,
            '--nodeport-interfaces',
            'none',
            '--map-size-services',
            '65536',
            '--map-size-backends',
            '65536',
          ],
        })
      ).process;
    proxies.push({
      name: 'Ferry',
      node: ferryNode,
      client: lab.podsOn(ferryNode)[0]!,
      process: await startFerry(),
      metric: 'ferry_network_programming_duration_seconds',
    });

    const onA = new Map<number, boolean>();
    let created = 0;
    const connectRows: string[] = [];
    const clusterIp: {
      scale: number;
      proxy: string;
      p50: number;
      p99: number;
      floor50: number;
      floor99: number;
    }[] = [];
    const programmingRows: string[] = [];
    for (const scale of SCALES) {
      const t0 = performance.now();
      await inParallel(created, scale, 16, async (i) => {
        await api.request('POST', '/api/v1/namespaces/default/services', serviceObject(i));
        await api.request(
          'POST',
          '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices',
          sliceObject(i, A),
        );
        onA.set(i, true);
      });
      created = scale;
      const written = performance.now() - t0;
      const last = scale - 1;
      const synced = await Promise.all(
        proxies.map((p) => waitServed(theLab, p.client, vip(last), A.name, 900_000)),
      );
      console.log(
        `${scale} services: written through the API in ${(written / 1000).toFixed(1)} s; last one served after: ${proxies.map((p, k) => `${p.name} ${(synced[k]! / 1000).toFixed(1)} s`).join(', ')}`,
      );

      for (const p of proxies) {
        // Interleaved rounds, so drift on a busy machine lands on both sides of the ratio alike.
        const direct: number[] = [];
        const through: number[] = [];
        for (let round = 0; round < ROUNDS; round++) {
          direct.push(...(await connectLatency(theLab, p.client, A.ipv4, BACKEND_PORT)));
          through.push(...(await connectLatency(theLab, p.client, vip(last), 80)));
        }
        clusterIp.push({
          scale,
          proxy: p.name,
          p50: pct(through, 50),
          p99: pct(through, 99),
          floor50: pct(direct, 50),
          floor99: pct(direct, 99),
        });
        connectRows.push(
          `  ${String(scale).padStart(6)}  ${p.name.padEnd(20)} direct p50 ${pct(direct, 50).toFixed(0).padStart(4)} µs p99 ${pct(direct, 99).toFixed(0).padStart(5)} µs | ClusterIP p50 ${pct(through, 50).toFixed(0).padStart(4)} µs p99 ${pct(through, 99).toFixed(0).padStart(5)} µs | ratio p50 ${(pct(through, 50) / pct(direct, 50)).toFixed(2)}x p99 ${(pct(through, 99) / pct(direct, 99)).toFixed(2)}x${failures(p.client, vip(last))}`,
        );
      }

      if (!PROGRAMMING_AT.has(scale)) continue;
      for (const p of proxies) {
        const others = proxies.filter((o) => o !== p);
        for (const o of others) process.kill(o.process.pid, 'SIGSTOP');
        try {
          const before = await histogram(theLab, p.node, p.metric);
          const latencies: number[] = [];
          for (let t = 0; t < TRIALS; t++) {
            const i = Math.floor(Math.random() * scale);
            const to = onA.get(i) ? B : A;
            const watcher = theLab.spawn(p.client, [
              process.execPath,
              '-e',
              WATCH_SCRIPT,
              vip(i),
              '80',
              to.name,
              '60000',
            ]);
            await watcher.waitForLine((l) => l === 'watching', 10_000);
            const stamp = new Date();
            await api.request(
              'PATCH',
              `/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/svc-${i}-1`,
              {
                metadata: { annotations: { [TRIGGER_TIME]: stamp.toISOString() } },
                endpoints: endpoints(to),
              },
              'application/merge-patch+json',
            );
            const seen = await watcher.waitForLine((l) => l.startsWith('seen ') || l === 'timeout', 70_000);
            await watcher.kill();
            if (!seen.startsWith('seen ')) throw new Error(`${p.name}: svc-${i} never moved to ${to.name}`);
            latencies.push(Number(seen.slice(5)) - stamp.getTime());
            onA.set(i, to === A);
            await sleep(1200); // past kube-proxy's 1 s minimum sync period, so each change is its own sync
          }
          const after = await histogram(theLab, p.node, p.metric);
          const own =
            after.count > before.count
              ? `${(((after.sum - before.sum) / (after.count - before.count)) * 1000).toFixed(0)} ms over ${after.count - before.count} syncs`
              : 'no samples';
          programmingRows.push(
            `  ${String(scale).padStart(6)}  ${p.name.padEnd(20)} p50 ${pct(latencies, 50).toFixed(0).padStart(5)} ms  p99 ${pct(latencies, 99).toFixed(0).padStart(5)} ms  (its own histogram: mean ${own})`,
          );
        } finally {
          for (const o of others) process.kill(o.process.pid, 'SIGCONT');
        }
        // Let the resumed proxies catch up on the changes they slept through, so that catch-up
        // lands in nobody's measuring window.
        await sleep(5000);
      }
    }
    // Slices written while a proxy was paused do not count against it: they are part of its catch-up.
    console.log(
      `\nnetwork programming latency, EndpointSlice write → the new backend answers through the VIP (${TRIALS} changes, others paused)`,
    );
    for (const r of programmingRows) console.log(r);
    console.log(
      `\nconnect()+close through the last ClusterIP created vs direct to the pod, ${CONNECTS} connections each in ${ROUNDS} interleaved rounds (each after ${WARMUP} warm-up)`,
    );
    for (const r of connectRows) console.log(r);
    // A kube-proxy node's own rules tax every new connection its pods make, pod IPs included
    // (nat PREROUTING sees the SYN first): its "direct" is not a clean floor. Ferry's node has no
    // netfilter rules, and the nodes are otherwise alike, so its direct figure is the floor here.
    console.log(
      `\nClusterIP vs the clean floor (direct from Ferry's node, which has no netfilter rules), p50 / p99`,
    );
    for (const scale of SCALES) {
      const floor = clusterIp.find((r) => r.scale === scale && r.proxy === 'Ferry');
      if (!floor) continue;
      const cells = clusterIp
        .filter((r) => r.scale === scale)
        .map(
          (r) => `${r.proxy} ${(r.p50 / floor.floor50).toFixed(2)}x / ${(r.p99 / floor.floor99).toFixed(2)}x`,
        );
      console.log(`  ${String(scale).padStart(6)}  ${cells.join('   ')}`);
    }
  } finally {
    for (const p of proxies) await p.process.kill().catch(() => undefined);
    for (const b of bridges) await b[Symbol.asyncDispose]();
    await lab?.down();
    api.close();
    await cp.stop();
  }
}

await main();
