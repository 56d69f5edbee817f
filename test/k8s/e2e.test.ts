// End to end on a real control plane: Pods applied with kubectl run on lab kubelets (network from
// ferry-cni), the real EndpointSlice controller builds the slices, and the Ferry agents (Kubernetes
// mode) carry requests through the VIPs: ClusterIP with named, multiple ports; NodePort with
// externalTrafficPolicy Local; scaling, readiness flips and deletes; Service type changes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { missingBinaries } from './control-plane.ts';
import { eventually, startLabCluster, type LabCluster } from './lab-cluster.ts';
import { READY_ANNOTATION } from '../../src/lab/kubelet.ts';
import type { Flow } from '../../src/observe/flow.ts';

const FERRY = fileURLToPath(new URL('../../bin/ferry', import.meta.url));
const run = promisify(execFile);

const missing = missingBinaries();
const skip = missing.length ? `k8s binaries not built (${missing.join(', ')}): run hack/k8s/build.sh` : false;

const VIP = '10.96.50.1';
const LB_IP = '198.19.0.61';

function pod(name: string, node: number, labels: Record<string, string>, ports = true): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', labels },
    spec: {
      nodeName: `node-${node}`,
      containers: [
        {
          name: 'echo',
          image: 'lab/echo',
          ports: ports
            ? [
                { name: 'web', containerPort: 7000 },
                { name: 'alt', containerPort: 7001 },
              ]
            : [],
        },
      ],
    },
  };
}

const same = (a: Record<string, number>): string => Object.keys(a).sort().join(',');

describe('Kubernetes mode end to end', { skip, concurrency: false }, () => {
  let c: LabCluster;

  before(async () => {
    c = await startLabCluster(2);
    await c.apply([
      pod('web-1', 1, { app: 'web', solo: 'one' }),
      pod('web-2', 2, { app: 'web' }),
      pod('client-1', 1, { role: 'client' }, false),
      pod('client-2', 2, { role: 'client' }, false),
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'web', namespace: 'default' },
        spec: {
          clusterIP: VIP,
          selector: { app: 'web' },
          ports: [
            { name: 'http', port: 80, targetPort: 'web' },
            { name: 'alt', port: 81, targetPort: 'alt' },
          ],
        },
      },
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'solo', namespace: 'default' },
        spec: {
          type: 'NodePort',
          externalTrafficPolicy: 'Local',
          selector: { solo: 'one' },
          ports: [{ port: 80, targetPort: 7000, nodePort: 30400 }],
        },
      },
    ]);
  });

  after(async () => {
    await c?.[Symbol.asyncDispose]();
  });

  test('ClusterIP, named and multiple ports: both backends, from a pod on each node', async () => {
    for (const from of ['client-1', 'client-2'])
      for (const port of [80, 81])
        await eventually(`${from} → ${VIP}:${port} reaches web-1 and web-2`, 30_000, async () => {
          const r = await c.probe(from, VIP, port);
          return same(r.backends) === 'web-1,web-2' ? r : undefined;
        });
  });

  test('flows name the client pod even though it backs no Service (the agent watches its own Pods)', async () => {
    await c.probe('client-1', VIP, 80, { count: 2 });
    const flows = await eventually('a flow from client-1 to web', 10_000, async () => {
      const { stdout } = await run(FERRY, [
        'observe',
        '--run-dir',
        c.agents[0]!.runDir,
        '--last',
        '500',
        '-o',
        'json',
        '--service',
        'default/web',
      ]);
      const all = stdout
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as Flow);
      return all.some((f) => f.source.pod === 'client-1') ? all : undefined;
    });
    const f = flows.find((x) => x.source.pod === 'client-1')!;
    assert.deepEqual([f.source.namespace, f.verdict, f.service?.name], ['default', 'TRANSLATED', 'web']);
    assert.ok(['web-1', 'web-2'].includes(f.backend?.pod ?? ''), JSON.stringify(f));
  });

  test('NodePort with externalTrafficPolicy Local: only the node with the backend serves, and it sees the client', async () => {
    const node1 = c.lab.node(1).externalIpv4;
    const served = await eventually('node-1 serves solo', 20_000, async () => {
      const r = await c.probe('client', node1, 30400, { count: 4 });
      return r.ok === 4 ? r : undefined;
    });
    assert.deepEqual(served.backends, { 'web-1': 4 });
    assert.deepEqual(served.seenAs, [c.lab.client.ipv4], 'no SNAT under externalTrafficPolicy Local');
    const dropped = await c.probe('client', c.lab.node(2).externalIpv4, 30400, { count: 2, timeoutMs: 500 });
    assert.equal(dropped.ok, 0);
  });

  test('scaling up and down, and a readiness flip, reach the datapath', async () => {
    await c.apply([pod('web-3', 2, { app: 'web' })]);
    await eventually('web-3 joins', 30_000, async () =>
      same((await c.probe('client-1', VIP, 80, { count: 24 })).backends) === 'web-1,web-2,web-3'
        ? true
        : undefined,
    );
    await c.kubectl(['delete', 'pod', 'web-2', '--wait=false']);
    await eventually('web-2 leaves', 30_000, async () =>
      same((await c.probe('client-1', VIP, 80, { count: 16 })).backends) === 'web-1,web-3' ? true : undefined,
    );
    await c.kubectl(['annotate', 'pod', 'web-1', `${READY_ANNOTATION}=false`, '--overwrite']);
    await eventually('unready web-1 leaves', 30_000, async () =>
      same((await c.probe('client-2', VIP, 80, { count: 12 })).backends) === 'web-3' ? true : undefined,
    );
    await c.kubectl(['annotate', 'pod', 'web-1', `${READY_ANNOTATION}=true`, '--overwrite']);
    await eventually('ready web-1 returns', 30_000, async () =>
      same((await c.probe('client-2', VIP, 80, { count: 16 })).backends) === 'web-1,web-3' ? true : undefined,
    );
  });

  test('Service type changes: ClusterIP → NodePort → LoadBalancer', async () => {
    await c.kubectl([
      'patch',
      'service',
      'web',
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { type: 'NodePort' } }),
    ]);
    const nodePort = Number(
      await c.kubectl(['get', 'service', 'web', '-o', 'jsonpath={.spec.ports[0].nodePort}']),
    );
    assert.ok(nodePort >= 30000 && nodePort <= 32767, `nodePort ${nodePort}`);
    await eventually(`NodePort ${nodePort} served on node-2`, 30_000, async () =>
      (await c.probe('client', c.lab.node(2).externalIpv4, nodePort, { count: 3 })).ok === 3
        ? true
        : undefined,
    );
    await c.kubectl([
      'patch',
      'service',
      'web',
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { type: 'LoadBalancer' } }),
    ]);
    await c.kubectl([
      'patch',
      'service',
      'web',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status: { loadBalancer: { ingress: [{ ip: LB_IP }] } } }),
    ]);
    await c.lab.addClientRoute(`${LB_IP}/32`, c.lab.node(1));
    await eventually('LoadBalancer IP served', 30_000, async () =>
      (await c.probe('client', LB_IP, 80, { count: 3 })).ok === 3 ? true : undefined,
    );
    // And the ClusterIP kept working through the changes.
    assert.equal((await c.probe('client-1', VIP, 80, { count: 4 })).ok, 4);
  });
});
