// `ferry observe` end to end: each socket-layer verdict and reason is provoked by real traffic from
// lab pods and then found through the agent's API with the right filter; filters combine, `--not`
// negates, every output format parses, `--follow` streams, and a flood of new connections keeps
// being served while the events it could not carry are counted (and announced), not hidden.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createLab, target, type Lab, type LabPod, type ProbeReport } from '../../src/lab/index.ts';
import { agentRunDir, startNodeAgent, type NodeAgent } from '../../src/lab/agents.ts';
import { parseTable, TABLE_COLUMNS } from '../../src/observe/format.ts';
import type { Flow } from '../../src/observe/flow.ts';
import type { ObserveStatus } from '../../src/observe/api.ts';
import { eventually } from '../support/eventually.ts';
import { readyPod, service, tcp, writeYamlFile } from './support/manifests.ts';

const FERRY = fileURLToPath(new URL('../../bin/ferry', import.meta.url));
const run = promisify(execFile);

const VIP = {
  web: '10.96.30.1',
  sticky: '10.96.30.2',
  empty: '10.96.30.3',
  local: '10.96.30.4',
  web6: 'fd00:10:96::3:1',
};
const NODE_PORT = 30777;

describe('ferry observe in a 2-node lab', { concurrency: false }, () => {
  let lab: Lab;
  let dir: string;
  const agents = new Map<string, NodeAgent>();

  const probe = (
    from: string,
    address: string,
    port: number,
    opts: { proto?: 'tcp' | 'udp'; count?: number; udpMode?: 'connected' | 'unconnected' } = {},
  ): Promise<ProbeReport> =>
    lab.probe(from, target(address, port), {
      proto: opts.proto ?? 'tcp',
      count: opts.count ?? 1,
      timeoutMs: 1500,
      ...(opts.udpMode ? { udpMode: opts.udpMode } : {}),
    });

  const observe = async (node: string, ...args: string[]): Promise<string> => {
    const { stdout } = await run(FERRY, ['observe', '--run-dir', agentRunDir(lab.node(node)), ...args], {
      maxBuffer: 64 << 20,
    });
    return stdout;
  };
  const flows = async (node: string, ...args: string[]): Promise<Flow[]> =>
    (await observe(node, '-o', 'json', '--last', '10000', ...args))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Flow);
  const status = async (node: string): Promise<ObserveStatus> =>
    JSON.parse(await observe(node, '--status')) as ObserveStatus;

  /** Flows arrive through the ring buffer a moment after the syscall returned. */
  const flowsUntil = (node: string, args: string[], want: (f: Flow[]) => boolean): Promise<Flow[]> =>
    eventually(async () => {
      const got = await flows(node, ...args);
      assert.ok(
        want(got),
        `ferry observe ${args.join(' ')}: never saw what was wanted; last answer: ${JSON.stringify(got.slice(-3))}`,
      );
      return got;
    });

  before(async () => {
    lab = await createLab({ nodes: 2, podsPerNode: 3 });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-observe-'));
    const p = (n: string): LabPod => lab.pod(n);
    writeYamlFile(path.join(dir, 'pods.yaml'), [
      readyPod(p('n1-p1'), { app: 'web' }),
      readyPod(p('n2-p1'), { app: 'web', loc: 'n2' }),
      readyPod(p('n1-p2'), { role: 'client' }),
      readyPod(p('n1-p3'), { role: 'client' }),
      readyPod(p('n2-p2'), { role: 'client' }),
    ]);
    const tcpNamed = (port: number): object => tcp(port, 7000, `tcp-${port}`);
    writeYamlFile(path.join(dir, 'services.yaml'), [
      service('web', [VIP.web, VIP.web6], { app: 'web' }, [
        tcpNamed(80),
        { name: 'dns', port: 53, targetPort: 7000, protocol: 'UDP' },
      ]),
      service('sticky', [VIP.sticky], { app: 'web' }, [tcpNamed(80)], {
        sessionAffinity: 'ClientIP',
        sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } },
      }),
      service('empty', [VIP.empty], { app: 'nobody' }, [tcpNamed(80)]),
      service('local', [VIP.local], { loc: 'n2' }, [tcpNamed(80)], { internalTrafficPolicy: 'Local' }),
      service(
        'np',
        ['10.96.30.5'],
        { app: 'web' },
        [{ port: 80, targetPort: 7000, protocol: 'TCP', nodePort: NODE_PORT }],
        { type: 'NodePort' },
      ),
    ]);
    await Promise.all(lab.pods.map((lp) => lab.startEchoServer(lp, { tcp: [7000], udp: [7000], http: [] })));
    for (const node of lab.nodes)
      agents.set(
        node.name,
        await startNodeAgent(lab, node, {
          manifests: dir,
          extraArgs: ['--nodeport-interfaces', 'none', '--flows-buffer', '4096'],
        }),
      );
  });

  after(async () => {
    await lab?.down();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('TRANSLATED: a connect from a pod names the pod, the Service, the backend pod and its address', async () => {
    const r = await probe('n1-p2', VIP.web, 80, { count: 4 });
    assert.equal(r.summaries[0]!.ok, 4);
    const got = await flowsUntil(
      'n1',
      ['--service', 'default/web', '--from-pod', 'n1-p2', '--verdict', 'TRANSLATED'],
      (f) => f.length >= 4,
    );
    const backendPods = new Map([
      [lab.pod('n1-p1').ipv4, 'n1-p1'],
      [lab.pod('n2-p1').ipv4, 'n2-p1'],
    ]);
    for (const f of got) {
      assert.equal(f.node, 'node-1');
      assert.equal(f.origin, 'connect');
      assert.equal(f.protocol, 'TCP');
      assert.deepEqual(
        [f.source.namespace, f.source.pod, f.source.ip],
        ['default', 'n1-p2', lab.pod('n1-p2').ipv4],
      );
      assert.deepEqual([f.destination.ip, f.destination.port], [VIP.web, 80]);
      assert.deepEqual(
        [f.service?.namespace, f.service?.name, f.service?.portName],
        ['default', 'web', 'tcp-80'],
      );
      assert.equal(f.backend?.port, 7000);
      assert.equal(f.backend?.pod, backendPods.get(f.backend!.ip!), 'the backend pod matches its address');
      assert.ok(f.socket && BigInt(f.socket.cookie) > 0n);
      assert.ok(Math.abs(Date.parse(f.time) - Date.now()) < 60_000, `wall-clock time ${f.time}`);
    }
    const answered = r.attempts.map((a) => a.backend).sort();
    assert.deepEqual(
      got
        .slice(-4)
        .map((f) => f.backend!.pod)
        .sort(),
      answered,
      'the flows name the backends that answered',
    );
  });

  test('TRANSLATED over IPv6 and unconnected UDP (sendmsg)', async () => {
    assert.equal((await probe('n1-p3', VIP.web6, 80)).summaries[0]!.ok, 1);
    assert.equal(
      (await probe('n1-p3', VIP.web, 53, { proto: 'udp', udpMode: 'unconnected' })).summaries[0]!.ok,
      1,
    );
    const v6 = await flowsUntil('n1', ['--ip', VIP.web6, '--from-pod', 'n1-p3'], (f) => f.length >= 1);
    assert.equal(v6[0]!.source.ip, lab.pod('n1-p3').ipv6);
    assert.equal(v6[0]!.backend?.ip?.includes(':'), true);
    const udp = await flowsUntil(
      'n1',
      ['--protocol', 'udp', '--origin', 'sendmsg', '--from-pod', 'n1-p3'],
      (f) => f.length >= 1,
    );
    assert.deepEqual(
      [udp[0]!.destination.port, udp[0]!.service?.portName, udp[0]!.verdict],
      [53, 'dns', 'TRANSLATED'],
    );
  });

  test('affinity: the first pick is fresh, the next ones carry the affinity flag and the same backend', async () => {
    const r = await probe('n1-p3', VIP.sticky, 80, { count: 4 });
    assert.equal(new Set(r.attempts.map((a) => a.backend)).size, 1);
    const got = await flowsUntil('n1', ['--service', 'sticky', '--from-pod', 'n1-p3'], (f) => f.length >= 4);
    assert.deepEqual(
      got.map((f) => f.flags.includes('affinity')),
      [false, true, true, true],
    );
    assert.equal(new Set(got.map((f) => f.backend?.pod)).size, 1);
    assert.equal(got[0]!.backend?.pod, r.attempts[0]!.backend);
  });

  test('REJECTED / NO_BACKEND: a Service without endpoints refuses, and the flow says why', async () => {
    const r = await probe('n1-p2', VIP.empty, 80);
    assert.deepEqual(r.summaries[0]!.errors, { ECONNREFUSED: 1 });
    const got = await flowsUntil(
      'n1',
      ['--verdict', 'REJECTED', '--drop-reason', 'no-backend'],
      (f) => f.length >= 1,
    );
    assert.deepEqual(
      [got[0]!.service?.name, got[0]!.source.pod, got[0]!.backend],
      ['empty', 'n1-p2', undefined],
    );
  });

  test('DROPPED / NO_LOCAL_BACKEND: internalTrafficPolicy Local with no backend on this node', async () => {
    const r = await probe('n1-p2', VIP.local, 80);
    assert.deepEqual(r.summaries[0]!.errors, { EHOSTUNREACH: 1 });
    const got = await flowsUntil('n1', ['--drop-reason', 'NO_LOCAL_BACKEND'], (f) => f.length >= 1);
    assert.deepEqual(
      [got[0]!.verdict, got[0]!.service?.name, got[0]!.source.pod],
      ['DROPPED', 'local', 'n1-p2'],
    );
    // The same Service from the node that has its backend is translated, and that is node-2's flow.
    assert.equal((await probe('n2-p2', VIP.local, 80)).summaries[0]!.ok, 1);
    const n2 = await flowsUntil('n2', ['--service', 'local'], (f) => f.length >= 1);
    assert.deepEqual([n2[0]!.verdict, n2[0]!.node, n2[0]!.backend?.pod], ['TRANSLATED', 'node-2', 'n2-p1']);
  });

  test('DROPPED / NODEPORT_RESERVED: a bind to an allocated NodePort is refused and named', async () => {
    const script = `require('net').createServer().on('error',e=>{console.log(e.code);process.exit(0)}).listen(${NODE_PORT},'0.0.0.0',()=>{console.log('bound');process.exit(0)})`;
    const res = await lab.exec('n1-p3', [process.execPath, '-e', script]);
    assert.equal(res.stdout.trim(), 'EADDRINUSE');
    const got = await flowsUntil('n1', ['--drop-reason', 'NODEPORT_RESERVED'], (f) => f.length >= 1);
    const f = got.at(-1)!;
    assert.deepEqual(
      [f.origin, f.verdict, f.destination.port, f.service?.name, f.source.pod],
      ['bind', 'DROPPED', NODE_PORT, 'np', 'n1-p3'],
    );
  });

  test('filters combine with AND, values with OR, --not negates the next filter only', async () => {
    const all = await flows('n1');
    const drops = await flows('n1', '--verdict', 'DROPPED');
    assert.ok(drops.length >= 2 && drops.every((f) => f.verdict === 'DROPPED'));
    const notLocal = await flows('n1', '--verdict', 'DROPPED', '--not', '--drop-reason', 'NO_LOCAL_BACKEND');
    assert.ok(notLocal.length >= 1);
    assert.ok(notLocal.every((f) => f.verdict === 'DROPPED' && f.reason !== 'NO_LOCAL_BACKEND'));
    assert.equal(notLocal.length, drops.filter((f) => f.reason !== 'NO_LOCAL_BACKEND').length);
    const notDropped = await flows('n1', '--not', '--verdict', 'DROPPED');
    assert.equal(notDropped.length + drops.length, all.length, '--not splits the flows exactly');
    const either = await flows('n1', '--service', 'empty,local');
    assert.deepEqual(new Set(either.map((f) => f.service?.name)), new Set(['empty', 'local']));
    const repeated = await flows('n1', '--service', 'empty', '--service', 'local');
    assert.equal(repeated.length, either.length, 'a repeated flag is the same as a comma list');
    const none = await flows('n1', '--service', 'empty', '--verdict', 'TRANSLATED');
    assert.equal(none.length, 0, 'AND: the empty Service never translates');
    const byNs = await flows('n1', '--namespace', 'default', '--port', '7000', '--protocol', 'TCP');
    assert.ok(byNs.length > 0 && byNs.every((f) => f.backend?.port === 7000 && f.protocol === 'TCP'));
    const byIp = await flows('n1', '--ip', `${lab.pod('n1-p1').ipv4}/32`, '--node', 'node-1');
    assert.ok(
      byIp.length > 0 && byIp.every((f) => f.backend?.pod === 'n1-p1'),
      JSON.stringify(byIp.filter((f) => f.backend?.pod !== 'n1-p1')),
    );
    assert.equal((await flows('n1', '--node', 'node-2')).length, 0);
    await assert.rejects(observe('n1', '--verdict', 'MAYBE'), /verdict/);
    await assert.rejects(observe('n1', '--not'), /--not/);
  });

  test('every format parses: compact lines, json objects, an aligned table', async () => {
    const json = await flows('n1', '--last', '5');
    assert.equal(json.length, 5);
    const compact = (await observe('n1', '--last', '5')).trim().split('\n');
    assert.equal(compact.length, 5);
    for (const [i, line] of compact.entries()) {
      const f = json[i]!;
      assert.match(
        line,
        /^[A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2}\.\d{3} \[node-1\] \S.* -> \S+\/(TCP|UDP)( \(\S+\))?( => .*)? (TRANSLATED|DROPPED|REJECTED)( [A-Z_]+)? \(\S+\)$/,
      );
      assert.ok(line.includes(f.verdict) && line.includes(`[${f.node}]`));
    }
    const rows = parseTable(await observe('n1', '--last', '5', '-o', 'table'));
    assert.equal(rows.length, 5);
    for (const [i, row] of rows.entries()) {
      assert.deepEqual(Object.keys(row), [...TABLE_COLUMNS]);
      assert.equal(row.TIME, json[i]!.time);
      assert.equal(row.VERDICT, json[i]!.verdict);
      assert.equal(row.REASON, json[i]!.reason ?? '-');
    }
    // Two agents merged: both nodes appear, ordered by time.
    const merged = (
      await run(FERRY, [
        'observe',
        '-o',
        'json',
        '--last',
        '10000',
        '--run-dir',
        `${agentRunDir(lab.node('n1'))},${agentRunDir(lab.node('n2'))}`,
      ])
    ).stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Flow);
    assert.deepEqual(new Set(merged.map((f) => f.node)), new Set(['node-1', 'node-2']));
    assert.deepEqual(
      merged.map((f) => f.time),
      [...merged.map((f) => f.time)].sort(),
    );
    // The lab's agents by lab name; --node narrows to one agent (and filters).
    const byLab = async (...args: string[]): Promise<Flow[]> =>
      (await run(FERRY, ['observe', '-o', 'json', '--last', '10000', '--lab', lab.name, ...args])).stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Flow);
    assert.equal((await byLab()).length, merged.length);
    const n2 = await byLab('--node', 'node-2');
    assert.ok(n2.length > 0 && n2.every((f) => f.node === 'node-2'));
  });

  test('--follow streams new flows as they happen, filtered', async () => {
    const child = spawn(
      FERRY,
      [
        'observe',
        '--run-dir',
        agentRunDir(lab.node('n2')),
        '--follow',
        '--last',
        '0',
        '-o',
        'json',
        '--from-pod',
        'n2-p2',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      const seen: Flow[] = [];
      let buf = '';
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          seen.push(JSON.parse(buf.slice(0, nl)) as Flow);
          buf = buf.slice(nl + 1);
        }
      });
      // The subscription barrier is a flow, not a sleep: refused connects from n2-p2 to the Service
      // without endpoints (which n2-p2 never tried before) until the follower prints one.
      const isMarker = (f: Flow): boolean => f.service?.name === 'empty';
      await eventually(
        async () => {
          if (!seen.some(isMarker)) await probe('n2-p2', VIP.empty, 80);
          assert.ok(seen.some(isMarker), 'the follower streams flows');
        },
        { intervalMs: 200 },
      );
      // History goes out before the first new flow, so by now it would be here (n2-p2 → local).
      assert.deepEqual(seen.filter((f) => !isMarker(f)), [], '--last 0: no history');
      await probe('n2-p2', VIP.web, 80, { count: 3 });
      await probe('n2-p1', VIP.web, 80, { count: 2 }); // filtered out
      // The end marker: flows stream in the order they happened, so once it is here, the two from
      // n2-p1 would be here too had the filter let them through.
      await probe('n2-p2', VIP.local, 80);
      await eventually(() => assert.ok(seen.some((f) => f.service?.name === 'local'), 'the end marker streams'));
      assert.deepEqual(
        seen.filter((f) => !isMarker(f)).map((f) => [f.source.pod, f.service?.name, f.node]),
        [
          ['n2-p2', 'web', 'node-2'],
          ['n2-p2', 'web', 'node-2'],
          ['n2-p2', 'web', 'node-2'],
          ['n2-p2', 'local', 'node-2'],
        ],
      );
    } finally {
      child.kill();
    }
  });

  test('a flood of new connections is served; what the rate limit holds back is counted and announced', async () => {
    // Restart node-1's agent with a tiny events budget (it adopts the running datapath).
    await agents.get('n1')!.process.kill();
    agents.set(
      'n1',
      await startNodeAgent(lab, lab.node('n1'), {
        manifests: dir,
        extraArgs: ['--nodeport-interfaces', 'none', '--events-rate', '20', '--events-burst', '20'],
      }),
    );
    const follower = spawn(
      FERRY,
      ['observe', '--run-dir', agentRunDir(lab.node('n1')), '--follow', '--last', '0', '-o', 'json'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    let streamed = 0;
    follower.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    follower.stdout.on('data', (d: Buffer) => (streamed += d.toString().split('\n').length - 1));
    try {
      // The follower's loss notices count from when it subscribed, so it must be subscribed before
      // the flood: connect until it prints a flow (the barrier), each connect served.
      await eventually(
        async () => {
          if (streamed === 0)
            assert.equal((await probe('n1-p2', VIP.web, 80)).summaries[0]!.ok, 1, 'served before the flood');
          assert.ok(streamed > 0, 'the follower streams flows');
        },
        { intervalMs: 200 },
      );
      const before = (await status('n1')).events!;
      const N = 1500;
      const results = await Promise.all(
        ['n1-p2', 'n1-p3'].map((from) => probe(from, VIP.web, 80, { count: N / 2 })),
      );
      for (const r of results)
        assert.equal(r.summaries[0]!.ok, N / 2, 'every connection of the flood is served');
      // The datapath counts as it decides; the agent's reader catches up a moment later.
      const afterFlood = await eventually(async () => {
        const now = await status('n1');
        const read = now.reader.received;
        const emitted = now.events!.emitted - before.emitted;
        assert.ok(read >= emitted, `the agent read what was emitted (${read} of ${emitted})`);
        return now;
      });
      const e = afterFlood.events!;
      const emitted = e.emitted - before.emitted;
      const limited = e.rateLimited - before.rateLimited;
      const lostRing = e.lostRingFull - before.lostRingFull;
      // Each connect is one decision: either an event or a counted loss (both probe pods' recvmsg
      // and getpeername calls emit nothing).
      assert.equal(
        emitted + limited + lostRing,
        N,
        `emitted ${emitted} + rate limited ${limited} + ring full ${lostRing}`,
      );
      assert.ok(limited > N / 2, `the tiny budget held most back (${limited})`);
      await eventually(() => assert.match(stderr, /EVENTS LOST \(.*\): rateLimited \d+/));
      // `ferry status` shows the same counters from the pins, with no agent API involved.
      const { stdout } = await run(FERRY, [
        'status',
        '--pin-dir',
        lab.node('n1').pinDir,
        '--run-dir',
        agentRunDir(lab.node('n1')),
        '-o',
        'json',
      ]);
      const st = JSON.parse(stdout) as { events?: { rateLimited: number } };
      assert.ok((st.events?.rateLimited ?? 0) >= e.rateLimited);
    } finally {
      follower.kill();
    }
  });
});
