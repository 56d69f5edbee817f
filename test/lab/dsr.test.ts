// Direct server return end to end: agents in `--nodeport-mode dsr`, the external client connects
// to a NodePort on node-1 whose only backend runs on node-2. The backend sees the client's own
// address, and the replies leave node-2 straight to the client: node-1 reverse-translated nothing
// and its egress saw none of them — read from each node's own counters, not assumed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { BpfMap } from '../../src/datapath/bpf/index.ts';
import { NP_STAT_NAMES, sumPerCpu, type NpStat } from '../../src/datapath/nodeport/maps.ts';
import { createLab, target, type Lab, type LabNode } from '../../src/lab/index.ts';
import { startNodeAgent } from '../../src/lab/agents.ts';
import { nodePortService, readyPod, writeManifests } from './support/manifests.ts';

function stat(node: LabNode, name: NpStat): bigint {
  using map = BpfMap.openPinned(path.join(node.pinDir, 'ferry_np_stats_v1'));
  const k = Buffer.alloc(4);
  k.writeUInt32LE(NP_STAT_NAMES.indexOf(name));
  return sumPerCpu(map.lookup(k) ?? Buffer.alloc(8));
}

/** Packets that left the node's external interface. */
async function txPackets(lab: Lab, node: LabNode): Promise<number> {
  const out = await lab.exec(node, ['ip', '-j', '-s', 'link', 'show', 'dev', 'eth0']);
  return (JSON.parse(out.stdout) as { stats64: { tx: { packets: number } } }[])[0]!.stats64.tx.packets;
}

describe('north-south DSR through the agent', { concurrency: false }, () => {
  let lab: Lab;
  let dir: string;

  before(async () => {
    lab = await createLab({ nodes: 2, podsPerNode: 1 });
    const backend = lab.pod('n2-p1');
    const docs = [
      readyPod(backend, { app: 'far' }),
      nodePortService('far', '10.96.21.1', { app: 'far' }, 30095),
    ];
    dir = writeManifests('ferry-dsr-', docs);
    await lab.startEchoServer(backend, { tcp: [7000], udp: [], http: [] });
    for (const node of lab.nodes)
      await startNodeAgent(lab, node, { manifests: dir, extraArgs: ['--nodeport-mode', 'dsr'] });
  });

  after(async () => {
    await lab?.down();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('replies go from the backend node to the client, never back through the ingress node', async () => {
    const [n1, n2] = [lab.node('n1'), lab.node('n2')];
    const txBefore = await txPackets(lab, n1);
    const r = await lab.probe('client', target(n1.externalIpv4, 30095), { count: 10, timeoutMs: 2000 });
    assert.deepEqual(r.summaries[0]?.errors, {});
    assert.deepEqual(r.summaries[0]?.backends, { 'n2-p1': 10 });
    // The client's own address reached the backend (no SNAT on the way).
    for (const a of r.attempts)
      assert.match(a.seenAs ?? '', new RegExp(`^${lab.client.ipv4.replace(/\./g, '\\.')}:`));
    // Ingress node: every flow sent on with the option, no reply translated there.
    assert.ok(stat(n1, 'dsr') >= 10n, `node-1 dsr ${stat(n1, 'dsr')}`);
    assert.equal(stat(n1, 'revnat'), 0n, 'node-1 translated replies: they came back through it');
    assert.equal(stat(n1, 'snat'), 0n);
    // Backend node: the option arrived and the replies were translated there.
    assert.ok(stat(n2, 'dsr_backend') >= 10n, `node-2 dsr_backend ${stat(n2, 'dsr_backend')}`);
    assert.ok(stat(n2, 'revnat') >= 10n, `node-2 revnat ${stat(n2, 'revnat')}`);
    // node-1's interface carried only client → backend packets: at most one out per packet in.
    const sent = (await txPackets(lab, n1)) - txBefore;
    assert.ok(
      sent <= Number(stat(n1, 'dsr')) + 4,
      `node-1 sent ${sent} packets for ${stat(n1, 'dsr')} forwarded`,
    );
  });
});
