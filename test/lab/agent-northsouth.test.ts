// North-south through the agent: the same `ferry agent` that serves east-west installs the tc
// programs on each node's external interface, and the external client reaches NodePorts and a
// LoadBalancer IP (the packet-level details are in test/lab/nodeport.test.ts).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createLab, target, type Lab } from '../../src/lab/index.ts';
import { startNodeAgent } from '../../src/lab/agents.ts';
import { nodePortService, readyPod, writeManifests } from './support/manifests.ts';

const LB_IP = '198.19.0.40';

describe('north-south through the agent', { concurrency: false }, () => {
  let lab: Lab;
  let dir: string;

  before(async () => {
    lab = await createLab({ nodes: 2, podsPerNode: 1 });
    const docs = [
      readyPod(lab.pod('n1-p1'), { app: 'web', here: 'n1' }),
      readyPod(lab.pod('n2-p1'), { app: 'web' }),
      nodePortService('cluster', '10.96.20.1', { app: 'web' }, 30090),
      nodePortService('local', '10.96.20.2', { here: 'n1' }, 30091, { externalTrafficPolicy: 'Local' }),
      nodePortService(
        'lb',
        '10.96.20.3',
        { app: 'web' },
        30092,
        { type: 'LoadBalancer' },
        { status: { loadBalancer: { ingress: [{ ip: LB_IP }] } } },
      ),
    ];
    dir = writeManifests('ferry-ns-', docs);
    await Promise.all(lab.pods.map((p) => lab.startEchoServer(p, { tcp: [7000], udp: [], http: [] })));
    for (const node of lab.nodes) await startNodeAgent(lab, node, { manifests: dir });
    await lab.addClientRoute(`${LB_IP}/32`, lab.node('n1'));
  });

  after(async () => {
    await lab?.down();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a NodePort on every node reaches backends on both nodes (eTP=Cluster)', async () => {
    for (const node of lab.nodes) {
      const r = await lab.probe('client', target(node.externalIpv4, 30090), { count: 20, timeoutMs: 2000 });
      assert.deepEqual(r.summaries[0]?.errors, {}, `via ${node.name}`);
      assert.deepEqual(
        Object.keys(r.summaries[0]?.backends ?? {}).sort(),
        ['n1-p1', 'n2-p1'],
        `via ${node.name}`,
      );
    }
  });

  test('eTP=Local serves only where the backend runs, and the backend sees the client itself', async () => {
    const served = await lab.probe('client', target(lab.node('n1').externalIpv4, 30091), { count: 4 });
    assert.deepEqual(served.summaries[0]?.backends, { 'n1-p1': 4 });
    for (const a of served.attempts)
      assert.match(a.seenAs ?? '', new RegExp(`^${lab.client.ipv4.replace(/\./g, '\\.')}:`));
    const dropped = await lab.probe('client', target(lab.node('n2').externalIpv4, 30091), {
      count: 2,
      timeoutMs: 500,
    });
    assert.equal(dropped.summaries[0]?.ok, 0);
  });

  test('a LoadBalancer IP routed to a node is served', async () => {
    const r = await lab.probe('client', target(LB_IP, 80), { count: 10 });
    assert.equal(r.summaries[0]?.ok, 10);
  });
});
