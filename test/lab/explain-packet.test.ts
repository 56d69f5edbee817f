// `ferry explain --path packet` against real north-south traffic: for each case the explanation
// (np_decide, the tc/XDP programs' own decision code, run with BPF_PROG_RUN on the live maps) must
// agree with what the external client actually gets — the Maglev backend for a given source
// port, then the same flow found established in conntrack; eTP=Local dropped where no endpoint
// is; a source range that excludes the client; a Service without endpoints; an address that is no
// frontend — and asking must change nothing (no conntrack entry, no counter).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { BpfMap } from '../../src/datapath/bpf/index.ts';
import { createLab, target, type Lab } from '../../src/lab/index.ts';
import { ferryOnNode, startNodeAgent } from '../../src/lab/agents.ts';
import { MAP_CT, MAP_STATS, NP_STAT_NAMES, sumPerCpu } from '../../src/datapath/nodeport/maps.ts';
import type { PacketExplanation } from '../../src/datapath/explain-packet.ts';
import { nodePortService, readyPod, writeManifests } from './support/manifests.ts';

const LB_IP = '198.19.0.70';

// Runs in the client: one connection from a fixed source port; prints the answering pod's name.
const CONNECT_FROM = `
const net = require('node:net');
const [host, port, localPort] = process.argv.slice(1);
const s = net.connect({ host, port: Number(port), localPort: Number(localPort) });
s.setEncoding('utf8');
s.once('data', (d) => { console.log(/^pod=(\\S+)/.exec(d)[1]); s.end(); setImmediate(() => process.exit(0)); });
s.once('error', (e) => { console.log('error ' + e.code); process.exit(1); });
setTimeout(() => { console.log('timeout'); process.exit(1); }, 3000);
`;

describe('ferry explain --path packet agrees with real north-south traffic', { concurrency: false }, () => {
  let lab: Lab;
  let dir: string;

  const explain = async (node: string, from: string, to: string): Promise<PacketExplanation> =>
    JSON.parse(
      await ferryOnNode(lab, lab.node(node), [
        'explain',
        '--path',
        'packet',
        '--from',
        from,
        '--to',
        to,
        '-o',
        'json',
      ]),
    ) as PacketExplanation;
  const connectFrom = async (to: string, port: number, localPort: number): Promise<string> =>
    (
      await lab.exec('client', [process.execPath, '-e', CONNECT_FROM, to, String(port), String(localPort)])
    ).stdout.trim();
  /** What a new flow would leave on a node: conntrack entries, and the counters of new flows
   * (DNAT, CT_NEW, SNAT, drops) — not PASS/CT_HIT/REVNAT, which other traffic moves. */
  const state = (node: string): { ct: string[]; counters: string[] } => {
    using ct = BpfMap.openPinned(path.join(lab.node(node).pinDir, MAP_CT));
    using stats = BpfMap.openPinned(path.join(lab.node(node).pinDir, MAP_STATS));
    const keys = new Set([
      'dnat',
      'ct_new',
      'snat',
      'drop_no_local_backend',
      'drop_source_range',
      'drop_snat_ports_exhausted',
      'drop_no_backend',
      'ct_create_fail',
    ]);
    const counters = NP_STAT_NAMES.flatMap((name, i) =>
      keys.has(name)
        ? [
            `${name}=${sumPerCpu(Buffer.concat(stats.lookupPerCpu(Buffer.from(new Uint32Array([i]).buffer)) ?? []))}`,
          ]
        : [],
    );
    return { ct: [...ct.keys()].map((k) => k.toString('hex')), counters };
  };

  before(async () => {
    lab = await createLab({ nodes: 2, podsPerNode: 2 });
    const docs = [
      readyPod(lab.pod('n1-p1'), { app: 'web', here: 'n1' }),
      readyPod(lab.pod('n1-p2'), { app: 'web' }),
      readyPod(lab.pod('n2-p1'), { app: 'web' }),
      readyPod(lab.pod('n2-p2'), { app: 'web' }),
      nodePortService(
        'maglev',
        '10.96.23.1',
        { app: 'web' },
        30301,
        {},
        {
          metadata: {
            name: 'maglev',
            namespace: 'default',
            annotations: { 'ferry.dev/lb-algorithm': 'maglev' },
          },
        },
      ),
      nodePortService('local', '10.96.23.2', { here: 'n1' }, 30302, { externalTrafficPolicy: 'Local' }),
      nodePortService(
        'fenced',
        '10.96.23.3',
        { app: 'web' },
        30303,
        { type: 'LoadBalancer', loadBalancerSourceRanges: ['203.0.113.0/24'] },
        { status: { loadBalancer: { ingress: [{ ip: LB_IP }] } } },
      ),
      nodePortService('empty', '10.96.23.4', { app: 'nobody' }, 30304),
    ];
    dir = writeManifests('ferry-explain-ns-', docs);
    await Promise.all(lab.pods.map((p) => lab.startEchoServer(p, { tcp: [7000], udp: [], http: [] })));
    for (const node of lab.nodes) await startNodeAgent(lab, node, { manifests: dir });
    await lab.addClientRoute(`${LB_IP}/32`, lab.node('n1'));
  });

  after(async () => {
    await lab?.down();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('Maglev: the backend explained for a source port is the one that answers; then the flow is found established', async () => {
    const node = lab.node('n1');
    const frontend = `${node.externalIpv4}:30301`;
    const answered = new Set<string>();
    for (const port of [41001, 41002, 41003, 41004, 41005, 41006]) {
      const before = state('n1');
      const e = await explain('n1', `${lab.client.ipv4}:${port}`, frontend);
      assert.deepEqual(
        [e.found, e.kind, e.maglev, e.verdict, e.pickedBy, e.backendSlots],
        [true, 'NodePort', true, 'FORWARDED', 'maglev', 4],
      );
      const after = state('n1');
      assert.deepEqual(after.counters, before.counters, 'explaining counted nothing');
      // (The agent's sweep may remove expired entries meanwhile; nothing may be added.)
      assert.deepEqual(
        after.ct.filter((k) => !before.ct.includes(k)),
        [],
        'explaining created no conntrack entry',
      );
      // Maglev is the same table on every node: node-2 explains the same backend for this flow.
      const other = await explain('n2', `${lab.client.ipv4}:${port}`, `${lab.node('n2').externalIpv4}:30301`);
      assert.equal(other.backend?.address, e.backend?.address);
      const reached = await connectFrom(node.externalIpv4, 30301, port);
      assert.equal(
        lab.pod(reached).ipv4,
        e.backend?.address,
        `source port ${port}: explained ${e.backend?.address}, reached ${reached}`,
      );
      answered.add(reached);
      const again = await explain('n1', `${lab.client.ipv4}:${port}`, frontend);
      assert.equal(
        again.established?.backend,
        e.backend?.address,
        'the finished flow is still in conntrack (closing timeout)',
      );
      assert.equal(again.established?.snat, !e.backend?.local);
    }
    assert.ok(answered.size >= 2, `six source ports spread over the backends: ${[...answered].join(', ')}`);
  });

  test('eTP=Local: dropped on the node without an endpoint, forwarded to the local one where it is', async () => {
    const there = await explain('n2', lab.client.ipv4, `${lab.node('n2').externalIpv4}:30302`);
    assert.deepEqual([there.verdict, there.reason], ['DROPPED', 'NO_LOCAL_BACKEND']);
    assert.equal(
      (await lab.probe('client', target(lab.node('n2').externalIpv4, 30302), { count: 1, timeoutMs: 500 }))
        .summaries[0]?.ok,
      0,
    );
    const here = await explain('n1', lab.client.ipv4, `${lab.node('n1').externalIpv4}:30302`);
    assert.deepEqual(
      [here.verdict, here.backend?.address, here.backend?.local, here.pickedBy],
      ['FORWARDED', lab.pod('n1-p1').ipv4, true, 'random slot'],
    );
  });

  test('loadBalancerSourceRanges: a client outside the ranges is dropped on the LB IP, one inside is forwarded', async () => {
    const out = await explain('n1', lab.client.ipv4, `${LB_IP}:80`);
    assert.deepEqual(
      [out.found, out.kind, out.verdict, out.reason],
      [true, 'LoadBalancer', 'DROPPED', 'SOURCE_RANGE'],
    );
    assert.equal(
      (await lab.probe('client', target(LB_IP, 80), { count: 1, timeoutMs: 500 })).summaries[0]?.ok,
      0,
    );
    const inside = await explain('n1', '203.0.113.9', `${LB_IP}:80`);
    assert.equal(inside.verdict, 'FORWARDED');
  });

  test('a Service without endpoints is rejected, and the client is refused', async () => {
    const e = await explain('n1', lab.client.ipv4, `${lab.node('n1').externalIpv4}:30304`);
    assert.deepEqual([e.verdict, e.reason], ['REJECTED', 'NO_BACKEND']);
    assert.deepEqual(
      (await lab.probe('client', target(lab.node('n1').externalIpv4, 30304), { count: 1 })).summaries[0]
        ?.errors,
      { ECONNREFUSED: 1 },
    );
  });

  test('an address or port that is no frontend is left alone', async () => {
    assert.equal((await explain('n1', lab.client.ipv4, `${lab.node('n1').externalIpv4}:30399`)).found, false);
    assert.equal((await explain('n1', lab.client.ipv4, `${lab.pod('n2-p1').ipv4}:7000`)).found, false);
  });
});
