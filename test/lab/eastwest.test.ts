// East-west Service load balancing end to end: three lab nodes, one Ferry agent per node on the
// standalone source, real connections from lab pods through the VIPs (issue 4's list).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLab, target, type Lab, type LabPod, type ProbeReport } from '../../src/lab/index.ts';
import { ferryOnNode, startNodeAgent, type NodeAgent } from '../../src/lab/agents.ts';
import { eventually } from '../support/eventually.ts';
import { readyPod, service, tcp, udp, writeYamlFile } from './support/manifests.ts';

interface Row {
  id: number;
  frontend: string;
  scope: string;
  action: string;
  backends: { id: number; address: string }[];
}

const VIP = {
  web: '10.96.10.1',
  web6: 'fd00:10:96::a:1',
  multi: '10.96.10.2',
  empty: '10.96.10.3',
  named: '10.96.10.4',
  term: '10.96.10.5',
  local: '10.96.10.6',
  even: '10.96.10.7',
  sticky: '10.96.10.8',
  edited: '10.96.10.9',
};

// Every echo pod serves TCP and UDP on 7000 and HTTP on 8080, each under a port name a Service
// may target.
const ECHO_PORTS: readonly object[] = [
  { name: 'echo', containerPort: 7000 },
  { name: 'echo-udp', containerPort: 7000, protocol: 'UDP' },
  { name: 'http', containerPort: 8080 },
];

describe('east-west: socket-layer load balancing in a 3-node lab', { concurrency: false }, () => {
  let lab: Lab;
  let dir: string;
  const agents = new Map<string, NodeAgent>();
  const p = (name: string): LabPod => lab.pod(name);

  const probe = (
    from: string,
    address: string,
    port: number,
    opts: {
      proto?: 'tcp' | 'udp' | 'http';
      count?: number;
      udpMode?: 'connected' | 'unconnected';
      timeoutMs?: number;
    } = {},
  ): Promise<ProbeReport> =>
    lab.probe(from, target(address, port), {
      proto: opts.proto ?? 'tcp',
      count: opts.count ?? 1,
      timeoutMs: opts.timeoutMs ?? 1500,
      ...(opts.udpMode ? { udpMode: opts.udpMode } : {}),
    });

  const backendsOf = (r: ProbeReport): string[] => Object.keys(r.summaries[0]?.backends ?? {}).sort();

  async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs = 10_000): Promise<number> {
    const start = performance.now();
    await eventually(cond, { timeoutMs, intervalMs: 20, what });
    return performance.now() - start;
  }

  before(async () => {
    lab = await createLab({ nodes: 3, podsPerNode: 4 });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-ew-'));
    const pods = [
      ...['n1-p1', 'n2-p1', 'n3-p1'].map((n) =>
        readyPod(p(n), { app: 'web', ...(n !== 'n3-p1' ? { loc: 'yes' } : {}) }, ECHO_PORTS),
      ),
      ...['n1-p4', 'n2-p4', 'n3-p4', 'n1-p2'].map((n) => readyPod(p(n), { app: 'even' }, ECHO_PORTS)),
      readyPod(p('n1-p3'), { app: 'named' }, [{ name: 'alt', containerPort: 7100 }]),
      readyPod(p('n2-p3'), { app: 'named' }, [{ name: 'alt', containerPort: 7200 }]),
      readyPod(p('n3-p2'), { app: 'term' }, ECHO_PORTS, { terminating: true }),
    ];
    writeYamlFile(path.join(dir, 'pods.yaml'), pods);
    writeYamlFile(path.join(dir, 'services.yaml'), [
      service('web', [VIP.web, VIP.web6], { app: 'web' }, [tcp(80, 7000, 'tcp'), udp(53, 7000, 'udp')]),
      service('multi', [VIP.multi], { app: 'web' }, [tcp(80, 7000, 'echo'), tcp(81, 8080, 'http')]),
      service('empty', [VIP.empty], { app: 'nobody' }, [tcp(80)]),
      service('named', [VIP.named], { app: 'named' }, [tcp(80, 'alt')]),
      service('term', [VIP.term], { app: 'term' }, [tcp(80)]),
      service('local', [VIP.local], { loc: 'yes' }, [tcp(80)], { internalTrafficPolicy: 'Local' }),
      service('even', [VIP.even], { app: 'even' }, [tcp(80)]),
      service('sticky', [VIP.sticky], { app: 'even' }, [tcp(80)], {
        sessionAffinity: 'ClientIP',
        sessionAffinityConfig: { clientIP: { timeoutSeconds: 1 } },
      }),
    ]);
    writeYamlFile(path.join(dir, 'broken.yaml'), [
      service('broken', ['10.96.10.99'], { app: 'web' }, [{ port: 70000, targetPort: 7000 }]),
    ]);
    await Promise.all(
      lab.pods.map((lp) =>
        lab.startEchoServer(lp, {
          tcp: [7000, ...(lp.name === 'n1-p3' ? [7100] : lp.name === 'n2-p3' ? [7200] : [])],
          udp: [7000],
          http: [8080],
        }),
      ),
    );
    for (const node of lab.nodes) agents.set(node.name, await startNodeAgent(lab, node, { manifests: dir }));
  });

  after(async () => {
    await lab?.down();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('ClusterIP over TCP and UDP, IPv4 and IPv6, from every node; the application sees the VIP as its peer', async () => {
    for (const from of ['n1-p2', 'n2-p2', 'n3-p3']) {
      for (const [address, proto, port] of [
        [VIP.web, 'tcp', 80],
        [VIP.web6, 'tcp', 80],
        [VIP.web, 'udp', 53],
        [VIP.web6, 'udp', 53],
      ] as const) {
        const r = await probe(from, address, port, { proto, count: 12 });
        assert.deepEqual(r.summaries[0]?.errors ?? {}, {}, `${from} → ${address}:${port}/${proto}`);
        for (const b of backendsOf(r)) assert.ok(['n1-p1', 'n2-p1', 'n3-p1'].includes(b), b);
        for (const a of r.attempts)
          assert.equal(a.peer, target(address, port), `${from}: peer seen by the application`);
      }
    }
    const unconnected = await probe('n2-p2', VIP.web, 53, { proto: 'udp', udpMode: 'unconnected', count: 6 });
    assert.equal(unconnected.summaries[0]?.ok, 6);
    for (const a of unconnected.attempts)
      assert.equal(a.peer, target(VIP.web, 53), 'recvmsg shows the VIP as the sender');
  });

  test('4,000 connections over 4 backends: each gets 25 % ± 4 points', async () => {
    const r = await probe('n2-p2', VIP.even, 80, { count: 4000 });
    const counts = r.summaries[0]!.backends;
    assert.deepEqual(Object.keys(counts).sort(), ['n1-p2', 'n1-p4', 'n2-p4', 'n3-p4']);
    for (const [b, n] of Object.entries(counts)) {
      const share = (100 * n) / 4000;
      assert.ok(Math.abs(share - 25) <= 4, `${b} got ${share.toFixed(1)} %`);
    }
  });

  test('a service with no endpoints: connect() itself fails with ECONNREFUSED', async () => {
    const r = await probe('n1-p2', VIP.empty, 80, { count: 3, timeoutMs: 5000 });
    assert.deepEqual(r.summaries[0]?.errors, { ECONNREFUSED: 3 });
    for (const a of r.attempts)
      assert.ok((a.latencyUs ?? 0) < 1_000_000, 'refused at once, not after a timeout');
  });

  test('two ports on one VIP; a named targetPort resolving to different numbers on different pods', async () => {
    const echo = await probe('n3-p3', VIP.multi, 80, { count: 6 });
    const http = await probe('n3-p3', VIP.multi, 81, { proto: 'http', count: 6 });
    assert.equal(echo.summaries[0]?.ok, 6);
    assert.equal(http.summaries[0]?.ok, 6);
    const named = await probe('n3-p3', VIP.named, 80, { count: 40 });
    assert.deepEqual(backendsOf(named), ['n1-p3', 'n2-p3'], 'both pods answer, on 7100 and 7200');
    const locals = new Set(named.attempts.map((a) => a.serverLocal?.split(':').pop()));
    assert.deepEqual([...locals].sort(), ['7100', '7200']);
  });

  test('terminating fallback: with only a terminating (serving) endpoint, it still serves', async () => {
    const r = await probe('n1-p2', VIP.term, 80, { count: 3 });
    assert.deepEqual(r.summaries[0]?.backends, { 'n3-p2': 3 });
  });

  test('internalTrafficPolicy Local: only the node-local endpoint; none local fails at once', async () => {
    const n1 = await probe('n1-p2', VIP.local, 80, { count: 8 });
    assert.deepEqual(n1.summaries[0]?.backends, { 'n1-p1': 8 });
    const n2 = await probe('n2-p2', VIP.local, 80, { count: 8 });
    assert.deepEqual(n2.summaries[0]?.backends, { 'n2-p1': 8 });
    const n3 = await probe('n3-p3', VIP.local, 80, { count: 2 });
    assert.deepEqual(n3.summaries[0]?.errors, { EHOSTUNREACH: 2 });
  });

  test('sessionAffinity ClientIP sticks to one backend and lets go after its timeout', async () => {
    const burst = await probe('n2-p3', VIP.sticky, 80, { count: 30 });
    assert.equal(
      backendsOf(burst).length,
      1,
      `affinity held: ${JSON.stringify(burst.summaries[0]?.backends)}`,
    );
    const seen = new Set<string>(backendsOf(burst));
    for (let i = 0; i < 6 && seen.size < 2; i++) {
      await sleep(1200);
      for (const b of backendsOf(await probe('n2-p3', VIP.sticky, 80))) seen.add(b);
    }
    assert.ok(seen.size >= 2, 'after the timeout a new backend can be chosen');
  });

  test('a malformed Service is reported by name and field; the good ones keep working', async () => {
    const status = JSON.parse(
      await ferryOnNode(lab, lab.node('n1'), ['status', '-o', 'json', '--run-dir', agents.get('n1')!.runDir]),
    ) as {
      agent: { ready: boolean; invalidObjects: { object: string; field: string }[] };
      sourceIssues: { object?: string; field?: string }[];
      programs: { attached: string[] };
    };
    assert.ok(status.agent.ready);
    assert.equal(status.programs.attached.length, 10);
    // The standalone source refuses the port before the model sees it; either layer must name it.
    const named = [...status.agent.invalidObjects, ...status.sourceIssues].map((e) => [e.object, e.field]);
    assert.deepEqual(named, [['Service default/broken', 'spec.ports[0].port']]);
    assert.equal((await probe('n1-p2', VIP.web, 80)).summaries[0]?.ok, 1);
  });

  test('manifest changes reach the datapath; a deleted service stops translating', async () => {
    const svcFile = path.join(dir, 'edited.yaml');
    writeYamlFile(svcFile, [service('edited', [VIP.edited], { app: 'web' }, [tcp(80)])]);
    const added = await waitFor(
      'new service',
      async () => (await probe('n3-p3', VIP.edited, 80)).summaries[0]?.ok === 1,
    );
    writeYamlFile(svcFile, [service('edited', [VIP.edited], { app: 'even' }, [tcp(80)])]);
    const even = ['n1-p2', 'n1-p4', 'n2-p4', 'n3-p4'];
    const changed = await waitFor('new selector', async () => {
      const r = await probe('n3-p3', VIP.edited, 80, { count: 8 });
      return backendsOf(r).length > 0 && backendsOf(r).every((b) => even.includes(b));
    });
    fs.rmSync(svcFile);
    // Timed by traffic (the CLI's start-up would dominate a map poll): the first connection that no longer reaches a backend.
    let gone: ProbeReport | undefined;
    const removed = await waitFor('deletion seen by traffic', async () => {
      gone = await probe('n3-p3', VIP.edited, 80, { timeoutMs: 300 });
      return gone.summaries[0]?.ok === 0;
    });
    // Every node's agent must have dropped it: the next test compares node-1's maps across restarts.
    await waitFor(
      'deletion on every node',
      async () => {
        for (const node of lab.nodes) {
          const rows = JSON.parse(await ferryOnNode(lab, node, ['service', 'list', '-o', 'json'])) as Row[];
          if (rows.some((r) => r.frontend.startsWith(`${VIP.edited}:`))) return false;
        }
        return true;
      },
      20_000,
    );
    // The VIP is in the service CIDR and no frontend has it now: the socket layer refuses the
    // connect() itself, so no SYN leaves and no ICMP (rate-limited, lock-dropped) is waited for.
    // 20 in a row, each refused and each at once: the kernel's ICMP rate limit would show here.
    const after = await probe('n3-p3', VIP.edited, 80, { count: 20, timeoutMs: 2_000 });
    assert.equal(after.summaries[0]?.ok, 0, 'no backend answers a deleted service');
    assert.equal(after.attempts.length, 20);
    for (const a of after.attempts) {
      assert.equal(a.errno, 'ECONNREFUSED', `attempt ${a.seq}: ${JSON.stringify(a)}`);
      assert.ok(a.latencyUs < 100_000, `attempt ${a.seq} refused at once, not after ${(a.latencyUs / 1000).toFixed(1)} ms`);
    }
    const slowest = Math.max(...after.attempts.map((a) => a.latencyUs)) / 1000;
    console.log(
      `# deleted service: ${after.attempts.length} connects refused with ${JSON.stringify(after.summaries[0]?.errors)}, slowest ${slowest.toFixed(2)} ms (first miss: ${JSON.stringify(gone?.summaries[0]?.errors)})`,
    );
    console.log(
      `# manifest → datapath (file watch + sync + probe): add ${added.toFixed(0)} ms, change ${changed.toFixed(0)} ms, delete ${removed.toFixed(0)} ms`,
    );
  });

  test('the agent killed with SIGKILL 10 times under load: no failed connection, no orphaned or duplicated entries', async () => {
    const node = lab.node('n1');
    const list = async (): Promise<Row[]> =>
      JSON.parse(await ferryOnNode(lab, node, ['service', 'list', '-o', 'json'])) as Row[];
    const before = await list();
    const client = lab.probe('n1-p2', target(VIP.even, 80), { count: 3000, timeoutMs: 2000, intervalMs: 2 });
    for (let i = 0; i < 10; i++) {
      await agents.get('n1')!.process.kill('SIGKILL');
      await sleep(50);
      agents.set('n1', await startNodeAgent(lab, node, { manifests: dir }));
    }
    const r = await client;
    assert.deepEqual(r.summaries[0]?.errors, {}, 'every connection made while the agent restarted succeeded');
    assert.equal(r.summaries[0]?.ok, 3000);
    const afterRows = await list();
    assert.deepEqual(
      afterRows,
      before,
      'same frontends, same ids, same backends: nothing orphaned or duplicated',
    );
    const status = JSON.parse(
      await ferryOnNode(lab, node, ['status', '-o', 'json', '--run-dir', agents.get('n1')!.runDir]),
    ) as {
      maps: { name: string; entries: number }[];
    };
    const entries = (name: string): number => status.maps.find((m) => m.name === name)!.entries;
    const slots = before.reduce((n, row) => n + 1 + row.backends.length, 0);
    assert.equal(entries('ferry_services_v1'), slots, 'one master + one slot per backend, nothing else');
    assert.equal(
      entries('ferry_backends_v1'),
      new Set(before.flatMap((row) => row.backends.map((b) => b.id))).size,
    );
    assert.equal(entries('ferry_revnat_v1'), new Set(before.map((row) => row.id)).size);
  });
});
