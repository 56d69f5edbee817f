// Differential check against the real kube-proxy: the same Services and EndpointSlices on a real
// API server, observed by kube-proxy (iptables mode, then nftables mode) on node-1 and by Ferry on node-2. From a
// client pod on each node, every frontend is probed with real connections and the outcome written
// into a reachability table {case → set of backends | refused | dropped}; the tables must match.
//
// Backends and Local-policy Services are named relative to the client's node ("same-p1",
// "other-p2", "local-same"), since the two clients stand on different nodes. Where Ferry chose a
// different failure on purpose — Local policy with no local endpoint: kube-proxy drops and the
// client times out, Ferry fails connect() at once with EHOSTUNREACH — both read "dropped".
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { stringify } from 'yaml';
import { createLab, target, type Lab } from '../../src/lab/lab.ts';
import { bridgeLoopback, type LoopbackBridge } from '../../src/lab/loopback-bridge.ts';
import { startNodeAgent, ferryOnNode } from '../../src/lab/agents.ts';
import type { LabNode, LabPod } from '../../src/lab/types.ts';
import { k8sBinDir, missingBinaries, startControlPlane, type ControlPlane } from './control-plane.ts';
import { startKubeProxy, waitForRules, type KubeProxyPeer } from './kube-proxy-peer.ts';

const missing = [...missingBinaries(), ...(existsSync(`${k8sBinDir()}/kube-proxy`) ? [] : ['kube-proxy'])];
const skip = missing.length ? `k8s binaries not built (${missing.join(', ')}): run hack/k8s/build.sh` : false;

type Condition = 'ready' | 'unready' | 'terminating';
interface Case {
  readonly name: string;
  readonly ip: string;
  /** Service port → backend port (slice port), by port name. */
  readonly ports: readonly { readonly name: string; readonly port: number; readonly backend: number }[];
  readonly endpoints: readonly { readonly pod: string; readonly condition: Condition }[];
  readonly spec?: Record<string, unknown>;
  /** Only how many backends a client saw matters (sessionAffinity: one). */
  readonly countOnly?: boolean;
}

const CASES: readonly Case[] = [
  {
    name: 'basic',
    ip: '10.96.40.1',
    ports: [{ name: 'http', port: 80, backend: 7000 }],
    endpoints: [
      { pod: 'n1-p1', condition: 'ready' },
      { pod: 'n2-p1', condition: 'ready' },
    ],
  },
  {
    name: 'multiport',
    ip: '10.96.40.2',
    ports: [
      { name: 'a', port: 80, backend: 7000 },
      { name: 'b', port: 81, backend: 7001 },
    ],
    endpoints: [
      { pod: 'n1-p2', condition: 'ready' },
      { pod: 'n2-p2', condition: 'ready' },
    ],
  },
  {
    name: 'no-endpoints',
    ip: '10.96.40.3',
    ports: [{ name: 'http', port: 80, backend: 7000 }],
    endpoints: [],
  },
  {
    name: 'unready-only',
    ip: '10.96.40.4',
    ports: [{ name: 'http', port: 80, backend: 7000 }],
    endpoints: [
      { pod: 'n1-p1', condition: 'unready' },
      { pod: 'n2-p1', condition: 'unready' },
    ],
  },
  // Endpoint sets are the same on both nodes (pod k on each), so relative names compare.
  {
    name: 'terminating-only',
    ip: '10.96.40.5',
    ports: [{ name: 'http', port: 80, backend: 7000 }],
    endpoints: [
      { pod: 'n1-p2', condition: 'terminating' },
      { pod: 'n2-p2', condition: 'terminating' },
    ],
  },
  {
    name: 'ready-and-terminating',
    ip: '10.96.40.6',
    ports: [{ name: 'http', port: 80, backend: 7000 }],
    endpoints: [
      { pod: 'n1-p1', condition: 'ready' },
      { pod: 'n2-p1', condition: 'ready' },
      { pod: 'n1-p2', condition: 'terminating' },
      { pod: 'n2-p2', condition: 'terminating' },
    ],
  },
  {
    name: 'local-n1',
    ip: '10.96.40.7',
    ports: [{ name: 'http', port: 80, backend: 7000 }],
    endpoints: [{ pod: 'n1-p1', condition: 'ready' }],
    spec: { internalTrafficPolicy: 'Local' },
  },
  {
    name: 'local-n2',
    ip: '10.96.40.8',
    ports: [{ name: 'http', port: 80, backend: 7000 }],
    endpoints: [{ pod: 'n2-p1', condition: 'ready' }],
    spec: { internalTrafficPolicy: 'Local' },
  },
  {
    name: 'affinity',
    ip: '10.96.40.9',
    ports: [{ name: 'http', port: 80, backend: 7000 }],
    endpoints: [
      { pod: 'n1-p2', condition: 'ready' },
      { pod: 'n2-p2', condition: 'ready' },
    ],
    spec: { sessionAffinity: 'ClientIP' },
    countOnly: true,
  },
];

function conditions(c: Condition): Record<string, boolean> {
  if (c === 'ready') return { ready: true, serving: true, terminating: false };
  if (c === 'unready') return { ready: false, serving: false, terminating: false };
  return { ready: false, serving: true, terminating: true };
}

function manifests(lab: Lab): string {
  const docs: object[] = [];
  for (const n of lab.nodes)
    docs.push({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: `node-${n.index}`, labels: { 'topology.kubernetes.io/zone': `zone-${n.index}` } },
    });
  for (const c of CASES) {
    docs.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: c.name, namespace: 'default' },
      spec: {
        type: 'ClusterIP',
        clusterIP: c.ip,
        ports: c.ports.map((p) => ({ name: p.name, port: p.port, protocol: 'TCP' })),
        ...c.spec,
      },
    });
    docs.push({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: `${c.name}-1`,
        namespace: 'default',
        labels: {
          'kubernetes.io/service-name': c.name,
          'endpointslice.kubernetes.io/managed-by': 'ferry-test',
        },
      },
      addressType: 'IPv4',
      endpoints: c.endpoints.map((e) => {
        const pod = lab.pod(e.pod);
        return {
          addresses: [pod.ipv4],
          conditions: conditions(e.condition),
          nodeName: `node-${pod.nodeIndex}`,
          zone: `zone-${pod.nodeIndex}`,
          targetRef: { kind: 'Pod', namespace: 'default', name: e.pod },
        };
      }),
      ports: c.ports.map((p) => ({ name: p.name, port: p.backend, protocol: 'TCP' })),
    });
  }
  return docs.map((d) => stringify(d)).join('---\n');
}

/** A backend's name as seen from a client on `node`: same-pK / other-pK. */
function relative(backend: string, node: LabNode): string {
  const m = /^n(\d+)-(p\d+)$/.exec(backend);
  if (!m) return backend;
  return `${Number(m[1]) === node.index ? 'same' : 'other'}-${m[2]}`;
}

function relativeCase(name: string, node: LabNode): string {
  const m = /^local-n(\d+)$/.exec(name);
  return m ? `local-${Number(m[1]) === node.index ? 'same' : 'other'}` : name;
}

type Table = Record<string, string>;
/** How each failed cell failed (errno counts), printed when the tables differ. */
const details: string[] = [];

async function reachability(lab: Lab, client: LabPod): Promise<Table> {
  const node = lab.node(client.nodeIndex);
  const table: Table = {};
  for (const c of CASES) {
    for (const p of c.ports) {
      const key = `${relativeCase(c.name, node)}:${p.port}`;
      const first = await lab.probe(client, target(c.ip, p.port), { count: 2, timeoutMs: 1500 });
      const s = first.summaries[0]!;
      if (s.ok === 0) {
        const errors = Object.keys(s.errors);
        table[key] = errors.length > 0 && errors.every((e) => e === 'ECONNREFUSED') ? 'refused' : 'dropped';
        details.push(`${client.name} ${key}: ${JSON.stringify(s.errors)}`);
        continue;
      }
      const many = await lab.probe(client, target(c.ip, p.port), { count: 24, timeoutMs: 1500 });
      const seen = Object.keys(many.summaries[0]!.backends)
        .map((b) => relative(b, node))
        .sort();
      table[key] = c.countOnly ? `${seen.length} backend(s)` : seen.join(',');
    }
  }
  return table;
}

for (const mode of ['iptables', 'nftables'] as const)
  describe(
    `differential: Ferry and kube-proxy (${mode}) agree on reachability`,
    { skip, concurrency: false },
    () => {
      let cp: ControlPlane;
      let lab: Lab;
      const bridges: LoopbackBridge[] = [];
      let kubeProxy: KubeProxyPeer | undefined;

      before(async () => {
        cp = await startControlPlane();
        lab = await createLab({ nodes: 2, podsPerNode: 3 });
        const port = Number(new URL(cp.server).port);
        for (const n of lab.nodes) bridges.push(await bridgeLoopback(lab, n, { remotePort: port }));
        for (const p of lab.pods)
          if (p.index !== 3) await lab.startEchoServer(p, { tcp: [7000, 7001], udp: [], http: [] });
        const applied = await cp.kubectl(['apply', '-f', '-'], { input: manifests(lab) });
        assert.equal(applied.code, 0, applied.stderr);
        // A real node has a default route, so a packet to a VIP without rules reaches the FORWARD
        // chain (where kube-proxy REJECTs for a Service without endpoints); lab nodes only route the
        // lab, so give node-1 a route for the Service range. Ferry needs none: it works in connect().
        const route = await lab.exec(lab.node(1), ['ip', 'route', 'add', '10.96.0.0/16', 'dev', 'eth0']);
        assert.equal(route.code, 0, route.stderr);
        kubeProxy = await startKubeProxy(lab, lab.node(1), { kubeconfig: cp.kubeconfig, mode });
        await startNodeAgent(lab, lab.node(2), {
          manifests: '/nonexistent',
          extraArgs: ['--source', 'kubernetes', '--kubeconfig', cp.kubeconfig],
          readyTimeoutMs: 60_000,
        });
        // Both have programmed every frontend (kube-proxy: the VIP is in its ruleset, REJECT rules included).
        await waitForRules(
          kubeProxy,
          CASES.map((c) => c.ip),
        );
        const listed = await ferryOnNode(lab, lab.node(2), ['service', 'list', '-o', 'json']);
        for (const c of CASES) assert.ok(listed.includes(c.ip), `Ferry on node-2 lacks ${c.name} (${c.ip})`);
      });

      after(async () => {
        await kubeProxy?.[Symbol.asyncDispose]();
        for (const b of bridges) await b[Symbol.asyncDispose]();
        await lab?.down();
        await cp?.stop();
      });

      test('the same table from a pod on each node', async () => {
        const viaKubeProxy = await reachability(lab, lab.pod('n1-p3'));
        const viaFerry = await reachability(lab, lab.pod('n2-p3'));
        const show = (t: Table): string =>
          Object.entries(t)
            .map(([k, v]) => `  ${k.padEnd(26)} ${v}`)
            .join('\n');
        const message = `kube-proxy ${mode} (node-1):\n${show(viaKubeProxy)}\nFerry (node-2):\n${show(viaFerry)}\nfailures:\n  ${details.join('\n  ')}`;
        assert.deepEqual(viaFerry, viaKubeProxy, message);
        // The table is not vacuous: it holds each kind of outcome.
        const outcomes = new Set(Object.values(viaFerry));
        for (const kind of ['refused', 'dropped', 'other-p1,same-p1', '1 backend(s)'])
          assert.ok(outcomes.has(kind), `no "${kind}" cell:\n${message}`);
      });
    },
  );
