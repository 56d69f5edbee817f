// North-south load balancing end to end: the external client reaches NodePort, LoadBalancer and
// external IPs through every node's tc (or XDP) programs. XDP runs in generic mode here: native
// XDP_TX on a veth whose peer sits in a bridge did not deliver in this lab (see the report). The maps are programmed directly
// (test/kernel/nodeport/support) until the agent and ServiceWriter exist.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLab, target, ECHO_PORTS, type Lab } from '../../src/lab/index.ts';
import type { LabNode } from '../../src/lab/types.ts';
import { openPinnedMap, type TestMap } from '../kernel/nodeport/support/loader.ts';
import { writeService, type TestBackend, type TestService } from '../kernel/nodeport/support/services.ts';
import { MAP_MAGLEV, srcRangeEntries } from '../../src/datapath/nodeport/maps.ts';
import { encodeMaglevTable, maglevTable } from '../../src/datapath/maglev.ts';
import { eventually } from '../support/eventually.ts';

// Runs in the client: connect (from a fixed local port if given), print the greeting, then after
// `pauseMs` send a line and print its echo; closes with RST so the port is free at once.
const CLIENT_SCRIPT = `
const net = require('node:net');
const [host, port, localPort, pauseMs] = process.argv.slice(1);
const s = net.connect({ host, port: Number(port), ...(Number(localPort) ? { localPort: Number(localPort) } : {}) });
let buf = '';
let sent = false;
s.setEncoding('utf8');
s.on('data', (d) => {
  buf += d;
  const lines = buf.split('\\n');
  buf = lines.pop();
  for (const l of lines) {
    console.log(l);
    if (!sent) { sent = true; setTimeout(() => s.write('still-here\\n'), Number(pauseMs)); }
    else if (l === 'still-here') { s.once('close', () => process.exit(0)); s.resetAndDestroy(); }
  }
});
s.on('error', (e) => { console.log('error ' + e.code); process.exit(1); });
setTimeout(() => { console.log('timeout'); process.exit(1); }, Number(pauseMs) + 5000);
`;

const LB_IP = '198.19.0.10';
const LB_IP_RANGED_OK = '198.19.0.11';
const LB_IP_RANGED_NO = '198.19.0.12';
const LB_IP_EMPTY = '198.19.0.13';
const EXT_IP = '198.19.0.20';

interface NodeMaps {
  readonly services: TestMap & Disposable;
  readonly backends: TestMap & Disposable;
  readonly ranges: TestMap & Disposable;
}

for (const xdp of ['off', 'generic'] as const) {
  describe(`nodeport lab (xdp ${xdp})`, { timeout: 180_000 }, () => {
    let lab: Lab;
    const maps = new Map<string, NodeMaps>();

    const backendsFor = (node: LabNode): TestBackend[] =>
      lab.nodes.map((n, i) => {
        const pod = lab.podsOn(n)[0];
        assert.ok(pod);
        return { id: 100 + i, address: pod.ipv4, port: ECHO_PORTS.tcp, local: n.name === node.name };
      });

    const onEveryNode = (make: (node: LabNode) => TestService): void => {
      for (const node of lab.nodes) {
        const m = maps.get(node.name);
        assert.ok(m);
        writeService(m.services, m.backends, make(node));
      }
    };

    before(async () => {
      lab = await createLab({ nodes: 2, podsPerNode: 1 });
      for (const node of lab.nodes) {
        const r = await lab.exec(node, [
          process.execPath,
          '--disable-warning=ExperimentalWarning',
          'test/kernel/nodeport/support/attach.ts',
          '--ifname',
          node.ifname,
          '--pin',
          node.pinDir,
          '--node-addrs',
          `${node.externalIpv4},${node.ipv4}`,
          '--snat4',
          node.ipv4,
          '--xdp',
          xdp,
        ]);
        assert.equal(r.code, 0, r.stderr);
        maps.set(node.name, {
          services: openPinnedMap(`${node.pinDir}/ferry_services_v1`, 24, 20),
          backends: openPinnedMap(`${node.pinDir}/ferry_backends_v1`, 4, 24),
          ranges: openPinnedMap(`${node.pinDir}/ferry_np_src_ranges_v1`, 24, 1),
        });
      }
      // XDP cannot resolve a neighbour for SNATed packets (bpf_redirect_neigh is tc-only): let
      // the nodes learn each other's and the client's MACs first, as a busy node would have.
      for (const a of lab.nodes) {
        for (const peer of [...lab.nodes.filter((b) => b !== a).map((b) => b.ipv4), lab.client.ipv4]) {
          const ping = await lab.exec(a, ['ping', '-c1', '-W1', peer]);
          assert.equal(ping.code, 0, `ping ${peer} from ${a.name}: ${ping.stderr}`);
        }
      }
      for (const pod of lab.pods) await lab.startEchoServer(pod, { udp: [], http: [] });
      await lab.addClientRoute('198.19.0.0/24', 1);
      // every Service of the table, on every node
      onEveryNode((node) => ({ id: 1, address: '0.0.0.0', port: 30070, backends: backendsFor(node) }));
      onEveryNode((node) => {
        const local = backendsFor(node).filter((b) => b.local);
        return {
          id: 2,
          address: '0.0.0.0',
          port: 30071,
          backends: local,
          action: local.length && node.index === 1 ? 'forward' : 'drop',
        };
      });
      onEveryNode((node) => ({ id: 3, address: LB_IP, port: 80, backends: backendsFor(node) }));
      onEveryNode((node) => ({ id: 4, address: EXT_IP, port: 80, backends: backendsFor(node) }));
      onEveryNode((node) => ({ id: 5, address: LB_IP_RANGED_OK, port: 80, backends: backendsFor(node) }));
      onEveryNode((node) => ({ id: 6, address: LB_IP_RANGED_NO, port: 80, backends: backendsFor(node) }));
      onEveryNode(() => ({ id: 7, address: LB_IP_EMPTY, port: 80, backends: [], action: 'reject' }));
      onEveryNode((node) => ({ id: 8, address: '0.0.0.0', port: 30072, backends: backendsFor(node) }));
      onEveryNode((node) => ({
        id: 9,
        address: '0.0.0.0',
        port: 30073,
        backends: backendsFor(node),
        maglev: true,
      }));
      for (const m of maps.values()) {
        for (const [k, v] of srcRangeEntries(5, ['198.18.0.0/24'])) m.ranges.update(k, v);
        for (const [k, v] of srcRangeEntries(6, ['203.0.113.0/24'])) m.ranges.update(k, v);
      }
    });
    after(async () => {
      for (const m of maps.values()) for (const x of Object.values(m)) (x as Disposable)[Symbol.dispose]();
      await lab?.down();
    });

    test('NodePort on every node reaches backends on all nodes', async () => {
      for (const node of lab.nodes) {
        const r = await lab.probe('client', target(node.externalIpv4, 30070), { count: 16 });
        const s = r.summaries[0];
        assert.equal(s?.ok, 16, JSON.stringify(s));
        assert.deepEqual(
          Object.keys(s?.backends ?? {}).sort(),
          lab.pods.map((p) => p.name).sort(),
          `via ${node.name}`,
        );
      }
    });

    test('eTP=Local: served only where a local backend is, with the client address preserved', async () => {
      const r1 = await lab.probe('client', target(lab.node(1).externalIpv4, 30071), { count: 4 });
      assert.equal(r1.summaries[0]?.ok, 4);
      for (const a of r1.attempts) {
        assert.equal(a.backend, lab.podsOn(1)[0]?.name);
        assert.equal(a.seenAs?.split(':')[0], lab.client.ipv4);
      }
      const r2 = await lab.probe('client', target(lab.node(2).externalIpv4, 30071), {
        count: 2,
        timeoutMs: 500,
      });
      assert.equal(r2.summaries[0]?.ok, 0);
    });

    test('LoadBalancer IP and external IP', async () => {
      for (const ip of [LB_IP, EXT_IP]) {
        const r = await lab.probe('client', target(ip, 80), { count: 8 });
        assert.equal(r.summaries[0]?.ok, 8, `${ip}: ${JSON.stringify(r.summaries[0])}`);
      }
    });

    test('loadBalancerSourceRanges: the client subnet allowed on one VIP, dropped on another', async () => {
      const ok = await lab.probe('client', target(LB_IP_RANGED_OK, 80), { count: 3 });
      assert.equal(ok.summaries[0]?.ok, 3);
      const no = await lab.probe('client', target(LB_IP_RANGED_NO, 80), { count: 2, timeoutMs: 500 });
      assert.equal(no.summaries[0]?.ok, 0);
      assert.ok(!no.attempts.some((a) => a.errno === 'ECONNREFUSED'), 'dropped, not refused');
    });

    test('a long-lived connection survives a backend-set change; new connections follow it', async () => {
      const node = lab.node(1);
      // only the remote backend first, so the flow is SNATed and crosses nodes
      onEveryNode((n) => ({
        id: 8,
        address: '0.0.0.0',
        port: 30072,
        backends: backendsFor(n).filter((b) => b.address === lab.podsOn(2)[0]?.ipv4),
      }));
      const p = lab.spawn('client', [
        process.execPath,
        '-e',
        CLIENT_SCRIPT,
        node.externalIpv4,
        '30072',
        '0',
        '1500',
      ]);
      const greeting = await p.waitForLine((l) => l.startsWith('pod=') || l.startsWith('error'));
      assert.match(greeting, new RegExp(`^pod=${lab.podsOn(2)[0]?.name} `));
      onEveryNode((n) => ({
        id: 8,
        address: '0.0.0.0',
        port: 30072,
        backends: backendsFor(n).filter((b) => b.address === lab.podsOn(1)[0]?.ipv4),
      }));
      const echoed = await p.waitForLine(
        (l) => l === 'still-here' || l === 'timeout' || l.startsWith('error'),
      );
      assert.equal(echoed, 'still-here', 'the old connection kept working after the change');
      const fresh = await lab.probe('client', target(node.externalIpv4, 30072), { count: 3 });
      assert.deepEqual(fresh.summaries[0]?.backends, { [lab.podsOn(1)[0]?.name ?? '']: 3 });
    });

    test('Maglev: a flow (same client address and port) reaches the same backend via every node', async () => {
      for (const node of lab.nodes) {
        const m = maps.get(node.name);
        assert.ok(m);
        using maglev = openPinnedMap(`${node.pinDir}/${MAP_MAGLEV}`, 4, 4 * 1021);
        const table = maglevTable(
          backendsFor(node).map((b) => ({ name: `${b.address}:${b.port}`, id: b.id })),
        );
        const k = Buffer.alloc(4);
        k.writeUInt32LE(9);
        maglev.update(k, encodeMaglevTable(table));
      }
      const seen = new Map<number, Set<string>>();
      for (const localPort of [42001, 42002, 42003, 42004, 42005, 42006]) {
        for (const node of lab.nodes) {
          const once = (): ReturnType<Lab['exec']> =>
            lab.exec('client', [process.execPath, '-e', CLIENT_SCRIPT, node.externalIpv4, '30073', String(localPort), '0']);
          // The previous connection from this port may not be gone from the client's table yet.
          const r = await eventually(
            async () => {
              const attempt = await once();
              assert.doesNotMatch(attempt.stdout, /EADDRINUSE/, `client port ${localPort} still in use`);
              return attempt;
            },
            { timeoutMs: 5000, intervalMs: 300 },
          );
          const pod = /^pod=(\S+)/.exec(r.stdout)?.[1];
          assert.ok(pod, r.stdout + r.stderr);
          seen.set(localPort, (seen.get(localPort) ?? new Set()).add(pod));
        }
      }
      for (const [port, pods] of seen)
        assert.equal(pods.size, 1, `client port ${port} reached ${[...pods].join(', ')}`);
    });

    test('a service without endpoints refuses at once', async () => {
      // ECONNREFUSED is the proof of "at once": a dropped SYN would end in ETIMEDOUT instead.
      const r = await lab.probe('client', target(LB_IP_EMPTY, 80), { count: 2, timeoutMs: 1500 });
      assert.deepEqual(
        r.attempts.map((a) => a.errno),
        ['ECONNREFUSED', 'ECONNREFUSED'],
      );
    });
  });
}
