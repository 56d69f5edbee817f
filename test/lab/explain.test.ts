// `ferry explain` against real traffic: for each case the explanation (the datapath's own code run
// with BPF_PROG_RUN on the live maps) must agree with what connections from the same pod actually
// get — served (and by which backends), refused, dropped by a Local policy, stuck by
// sessionAffinity — and asking must not change the answer (no affinity entry is written).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { BpfMap } from '../../src/datapath/bpf/index.ts';
import { createLab, target, type Lab } from '../../src/lab/index.ts';
import { ferryOnNode, startNodeAgent } from '../../src/lab/agents.ts';
import type { SocketExplanation } from '../../src/datapath/explain.ts';
import { readyPod, service, tcp, writeManifests } from './support/manifests.ts';

const VIP = { web: '10.96.24.1', empty: '10.96.24.2', local: '10.96.24.3', sticky: '10.96.24.4' };

describe('ferry explain agrees with real traffic', { concurrency: false }, () => {
  let lab: Lab;
  // A second lab with the same pod names and addresses, as when labs run side by side: --from
  // must still find this lab's pod (the one attached to the node asked), never the other's.
  let twin: Lab;
  let dir: string;

  const explain = async (node: string, from: string, to: string): Promise<SocketExplanation> =>
    JSON.parse(
      await ferryOnNode(lab, lab.node(node), ['explain', '--from', from, '--to', to, '-o', 'json']),
    ) as SocketExplanation;
  const affinityEntries = (node: string): number => {
    using m = BpfMap.openPinned(path.join(lab.node(node).pinDir, 'ferry_affinity_v1'));
    return [...m.keys()].length;
  };

  before(async () => {
    lab = await createLab({ nodes: 2, podsPerNode: 2 });
    twin = await createLab({ nodes: 2, podsPerNode: 2 });
    const docs = [
      readyPod(lab.pod('n1-p1'), { app: 'web', sticky: 'yes' }),
      readyPod(lab.pod('n2-p1'), { app: 'web', sticky: 'yes', far: 'yes' }),
      service('web', VIP.web, { app: 'web' }),
      service('empty', VIP.empty, { app: 'nobody' }),
      service('local', VIP.local, { far: 'yes' }, [tcp()], { internalTrafficPolicy: 'Local' }),
      service('sticky', VIP.sticky, { sticky: 'yes' }, [tcp()], { sessionAffinity: 'ClientIP' }),
    ];
    dir = writeManifests('ferry-explain-', docs);
    await Promise.all(
      [lab.pod('n1-p1'), lab.pod('n2-p1')].map((p) =>
        lab.startEchoServer(p, { tcp: [7000], udp: [], http: [] }),
      ),
    );
    for (const node of lab.nodes)
      await startNodeAgent(lab, node, { manifests: dir, extraArgs: ['--nodeport-interfaces', 'none'] });
  });

  after(async () => {
    await lab?.down();
    await twin?.down();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('served: the backend explained is one real traffic reaches, for several asks', async () => {
    const real = await lab.probe('n1-p2', target(VIP.web, 80), { count: 20 });
    const reached = new Set(Object.keys(real.summaries[0]!.backends).map((n) => lab.pod(n).ipv4));
    assert.equal(reached.size, 2);
    for (let i = 0; i < 6; i++) {
      const e = await explain('n1', 'n1-p2', `${VIP.web}:80`);
      assert.deepEqual(
        [e.found, e.verdict, e.kind, e.backendSlots, e.pickedBy],
        [true, 'TRANSLATED', 'ClusterIP', 2, 'random slot'],
      );
      assert.ok(
        reached.has(e.backend!.address),
        `explained ${e.backend!.address}, traffic reached ${[...reached].join(', ')}`,
      );
      assert.equal(e.backend!.port, 7000);
    }
  });

  test('refused: no endpoints → REJECTED/NO_BACKEND, and connect() is refused', async () => {
    const e = await explain('n1', 'n1-p2', `${VIP.empty}:80`);
    assert.deepEqual([e.verdict, e.reason], ['REJECTED', 'NO_BACKEND']);
    const real = await lab.probe('n1-p2', target(VIP.empty, 80), { count: 1 });
    assert.deepEqual(real.summaries[0]?.errors, { ECONNREFUSED: 1 });
  });

  test('internalTrafficPolicy Local: dropped on the node without an endpoint, served on the one with it', async () => {
    const here = await explain('n1', 'n1-p2', `${VIP.local}:80`);
    assert.deepEqual([here.verdict, here.reason], ['DROPPED', 'NO_LOCAL_BACKEND']);
    assert.deepEqual((await lab.probe('n1-p2', target(VIP.local, 80), { count: 1 })).summaries[0]?.errors, {
      EHOSTUNREACH: 1,
    });
    const there = await explain('n2', 'n2-p2', `${VIP.local}:80`);
    assert.deepEqual(
      [there.verdict, there.backend?.address, there.backend?.local],
      ['TRANSLATED', lab.pod('n2-p1').ipv4, true],
    );
    assert.deepEqual((await lab.probe('n2-p2', target(VIP.local, 80), { count: 2 })).summaries[0]?.backends, {
      'n2-p1': 2,
    });
  });

  test('sessionAffinity: the client that connected is explained its sticky backend; asking writes nothing', async () => {
    const entries = affinityEntries('n2');
    const fresh = await explain('n2', 'n2-p2', `${VIP.sticky}:80`);
    assert.deepEqual(
      [fresh.verdict, fresh.pickedBy, fresh.affinityTimeoutSeconds],
      ['TRANSLATED', 'random slot', 10800],
    );
    assert.equal(affinityEntries('n2'), entries, 'explain must not create an affinity entry');
    const real = await lab.probe('n2-p2', target(VIP.sticky, 80), { count: 5 });
    const backends = Object.keys(real.summaries[0]!.backends);
    assert.equal(backends.length, 1, 'one client, one backend');
    const stuck = await explain('n2', 'n2-p2', `${VIP.sticky}:80`);
    assert.deepEqual([stuck.pickedBy, stuck.backend?.address], ['affinity', lab.pod(backends[0]!).ipv4]);
    // The same pod, asked for by its address, is the same client.
    const byIp = await explain('n2', lab.pod('n2-p2').ipv4, `${VIP.sticky}:80`);
    assert.deepEqual([byIp.pickedBy, byIp.backend?.address], ['affinity', lab.pod(backends[0]!).ipv4]);
  });

  test('an address that is no frontend is left alone', async () => {
    const e = await explain('n1', 'n1-p2', `${lab.pod('n2-p1').ipv4}:7000`);
    assert.equal(e.found, false);
    assert.equal(e.verdict, undefined);
  });
});
