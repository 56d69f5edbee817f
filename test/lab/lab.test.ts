// The lab end to end on the real kernel: 3 nodes × 4 pods, traffic between every pod and a pod on
// every other node (TCP, UDP; IPv4, IPv6), then teardown — normal, and after a crash — with the
// root namespace byte-for-byte as it was.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createLab, openLab, target, ECHO_PORTS, type Lab } from '../../src/lab/lab.ts';
import { randomLabName } from '../../src/lab/plan.ts';
import { run, inParallel } from '../../src/common/run.ts';
import { readState, statePath } from '../../src/lab/system.ts';
import { destroyLab, isEmptyResidue, labNamesOnMachine, labResidue } from '../../src/lab/teardown.ts';
import type { LabPod } from '../../src/lab/types.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FERRY = `${ROOT}bin/ferry`;

/** Everything the lab must never touch in the root namespace, as text. */
async function rootSnapshot(): Promise<Record<string, string>> {
  const commands: Record<string, string[]> = {
    link: ['ip', '-d', 'link'],
    addr: ['ip', 'addr'],
    route4: ['ip', 'route'],
    route6: ['ip', '-6', 'route'],
    rule4: ['ip', 'rule'],
    rule6: ['ip', '-6', 'rule'],
    qdisc: ['tc', 'qdisc'],
  };
  const out: Record<string, string> = {};
  for (const [key, [file, ...args]] of Object.entries(commands)) out[key] = (await run(file!, args)).stdout;
  return out;
}

/** The address part of `ip:port` / `[ip6]:port`. */
function addressOf(hostPortText: string | undefined): string | undefined {
  return hostPortText?.replace(/^\[?([^\]]*)\]?:[0-9]+$/, '$1');
}

async function isAlive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  return stat !== undefined && !/^\S+ \(.*\) Z /.test(stat); // a zombie is dead
}

async function waitFor(what: string, predicate: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const rootBefore = await rootSnapshot();

test('lab: 3 nodes × 4 pods, real traffic, clean teardown', async (t) => {
  const lab: Lab = await createLab({ nodes: 3, podsPerNode: 4 });
  t.after(() => lab.down());

  // First, before anything warms neighbour caches: the very first packets across the fabric
  // arrive (an interface still in IPv6 DAD sends no neighbour solicitations, and they would not).
  await t.test('the first packets after bring-up get through, IPv4 and IPv6', async () => {
    const to = lab.pod('n2-p1');
    const report = await lab.probe('n1-p1', [target(to.ipv6, 7999), target(to.ipv4, 7999)], {
      proto: 'udp',
      timeoutMs: 1000,
    });
    // No server yet: the destination pod's ICMP port unreachable proves the round trip.
    assert.deepEqual(
      report.attempts.map((a) => a.errno),
      ['ECONNREFUSED', 'ECONNREFUSED'],
    );
    const n3 = lab.node(3);
    const fromClient = await lab.probe(lab.client, [target(n3.externalIpv6, 7999)], {
      proto: 'udp',
      timeoutMs: 1000,
    });
    assert.equal(fromClient.attempts[0]?.errno, 'ECONNREFUSED', 'client → node over IPv6');
  });

  await t.test('topology: names, addresses, cgroups, state file', async () => {
    assert.equal(lab.nodes.length, 3);
    assert.equal(lab.pods.length, 12);
    const state = await readState(lab.name);
    assert.equal(state?.status, 'ready');
    assert.equal(state?.pods.length, 12);
    for (const pod of lab.pods) {
      assert.equal(pod.netns, `${lab.name}-n${pod.nodeIndex}-p${pod.index}`);
      assert.equal(pod.ipv4, `10.244.${pod.nodeIndex}.${10 + pod.index}`);
      assert.equal(pod.ipv6, `fd00:10:244:${pod.nodeIndex}::${10 + pod.index}`);
      assert.ok(pod.hostIfname.length <= 15);
    }
    const pod = lab.pod('n2-p3');
    const addrs = await lab.exec(pod, ['ip', '-br', 'addr', 'show', 'dev', 'eth0']);
    assert.match(addrs.stdout, /10\.244\.2\.13\/32/);
    assert.match(addrs.stdout, /fd00:10:244:2::13\/128/);
    // Wired by bin/ferry-cni as a runtime would: its on-disk IPAM records the pod's addresses.
    const ipamDir = `${lab.state.runDir}/cni/${lab.node(2).name}/ferry-lab`;
    for (const address of [pod.ipv4, pod.ipv6])
      assert.equal((await readFile(`${ipamDir}/${address}`, 'utf8')).split('\n')[0], pod.containerId);
    // A pod's processes run in its node's cgroup, joined before exec.
    const cgroup = await lab.exec(pod, ['cat', '/proc/self/cgroup']);
    assert.match(cgroup.stdout, new RegExp(`^0::/${lab.name}/node-2$`, 'm'));
    const nodeRoutes = await lab.exec(lab.node(1), ['ip', 'route']);
    assert.match(nodeRoutes.stdout, /10\.244\.2\.0\/24 via 172\.30\.0\.2 dev eth0/);
    assert.match(nodeRoutes.stdout, /10\.244\.3\.0\/24 via 172\.30\.0\.3 dev eth0/);
  });

  const servers = await Promise.all(lab.pods.map((p) => lab.startEchoServer(p)));
  assert.equal(servers.length, 12);

  await t.test('every pod reaches a pod on every other node: TCP and UDP over IPv4 and IPv6', async () => {
    const jobs: (() => Promise<void>)[] = [];
    for (const from of lab.pods) {
      // One pod per other node, varying which one so every pod is also a target.
      const targets: LabPod[] = lab.nodes
        .filter((n) => n.index !== from.nodeIndex)
        .map((n) => lab.pod({ node: n.index, index: ((from.index + n.index) % 4) + 1 }));
      for (const proto of ['tcp', 'udp'] as const) {
        jobs.push(async () => {
          const addresses = targets.flatMap((to) => [
            { to, family: 4, address: to.ipv4, source: from.ipv4 },
            { to, family: 6, address: to.ipv6, source: from.ipv6 },
          ]);
          const report = await lab.probe(
            from,
            addresses.map((a) => target(a.address, ECHO_PORTS.tcp)),
            { proto, timeoutMs: 3000 },
          );
          assert.equal(
            report.attempts.length,
            addresses.length,
            `${from.name} ${proto}: one attempt per target`,
          );
          for (const [i, a] of addresses.entries()) {
            const attempt = report.attempts[i]!;
            const what = `${proto} IPv${a.family} ${from.name} → ${a.to.name}`;
            assert.equal(attempt.ok, true, `${what}: ${JSON.stringify(attempt)}`);
            assert.equal(attempt.backend, a.to.name, `${what}: answering pod`);
            assert.equal(addressOf(attempt.peer), a.address, `${what}: peer`);
            // Native routing: the server sees the client pod's own address.
            assert.equal(addressOf(attempt.seenAs), a.source, `${what}: source address`);
          }
        });
      }
    }
    await inParallel(4, jobs);
  });

  await t.test('same node, HTTP, unconnected UDP, node → pod, client → node', async () => {
    const a = lab.pod('n1-p1');
    const b = lab.pod('n1-p2');
    const same = await lab.probe(a, [target(b.ipv4, ECHO_PORTS.tcp), target(b.ipv6, ECHO_PORTS.tcp)]);
    assert.deepEqual(
      same.attempts.map((x) => [x.ok, x.backend]),
      [
        [true, 'n1-p2'],
        [true, 'n1-p2'],
      ],
    );
    const http = await lab.probe(a, [target(lab.pod('n3-p4').ipv6, ECHO_PORTS.http)], {
      proto: 'http',
      count: 2,
    });
    assert.deepEqual(http.summaries[0]?.backends, { 'n3-p4': 2 });
    const udp = await lab.probe(a, [target(lab.pod('n2-p1').ipv4, ECHO_PORTS.udp)], {
      proto: 'udp',
      udpMode: 'unconnected',
    });
    assert.equal(udp.attempts[0]?.backend, 'n2-p1');
    assert.equal(udp.attempts[0]?.peer, `${lab.pod('n2-p1').ipv4}:${ECHO_PORTS.udp}`, 'recvmsg source');
    const fromNode = await lab.probe(lab.node(3), [target(lab.pod('n1-p3').ipv4, ECHO_PORTS.tcp)]);
    assert.equal(fromNode.attempts[0]?.backend, 'n1-p3');
    await using nodeServer = await lab.startEchoServer(lab.node(2), { tcp: [7100], udp: [], http: [] });
    assert.ok(nodeServer.pid > 0);
    const n2 = lab.node(2);
    const fromClient = await lab.probe(lab.client, [
      target(n2.externalIpv4, 7100),
      target(n2.externalIpv6, 7100),
    ]);
    // A route from the client to a node for a range outside its subnet: the node itself answers
    // when the address is its own (as a node with a LoadBalancer IP would).
    await lab.addClientRoute('203.0.113.0/24', n2);
    await lab.exec(n2, ['ip', 'addr', 'add', '203.0.113.7/32', 'dev', 'lo']);
    const routed = await lab.probe(lab.client, target('203.0.113.7', 7100));
    assert.equal(routed.attempts[0]?.backend, 'n2', JSON.stringify(routed.attempts[0]));
    assert.deepEqual(
      fromClient.attempts.map((x) => [x.ok, x.backend, addressOf(x.seenAs)]),
      [
        [true, 'n2', lab.client.ipv4],
        [true, 'n2', lab.client.ipv6],
      ],
    );
  });

  await t.test('failures carry the kernel errno; nothing outside the lab is reachable', async () => {
    const from = lab.pod('n1-p1');
    const to = lab.pod('n2-p2');
    const tcp = await lab.probe(from, [target(to.ipv4, 7999), target(to.ipv6, 7999)], { proto: 'tcp' });
    assert.deepEqual(
      tcp.attempts.map((x) => x.errno),
      ['ECONNREFUSED', 'ECONNREFUSED'],
    );
    const udp = await lab.probe(from, [target(to.ipv4, 7999)], { proto: 'udp' });
    assert.equal(udp.attempts[0]?.errno, 'ECONNREFUSED', 'connected UDP sees the ICMP port unreachable');
    // The machine's own address and a public one: the lab has no path out.
    const out = await lab.probe(from, ['192.0.2.2:22', '1.1.1.1:53'], { proto: 'tcp', timeoutMs: 500 });
    for (const attempt of out.attempts) assert.equal(attempt.ok, false, JSON.stringify(attempt));
  });

  await t.test('pods come and go at run time', async () => {
    const added = await lab.addPod(2);
    assert.equal(added.name, 'n2-p5');
    assert.equal(added.ipv4, '10.244.2.15');
    await using server = await lab.startEchoServer(added);
    const reached = await lab.probe(lab.pod('n3-p1'), [target(added.ipv6, ECHO_PORTS.tcp)]);
    assert.equal(reached.attempts[0]?.backend, 'n2-p5');
    await server.kill();
    await lab.removePod(added);
    assert.equal((await readState(lab.name))?.pods.length, 12);
    const netns = await run('ip', ['netns', 'list']);
    assert.doesNotMatch(netns.stdout, new RegExp(`${lab.name}-n2-p5`));
  });

  await t.test('another process can use the lab through its state file (ferry lab exec)', async () => {
    const reopened = await openLab(lab.name);
    assert.deepEqual(
      reopened.pods.map((p) => p.ipv4),
      lab.pods.map((p) => p.ipv4),
    );
    const result = await run(FERRY, [
      'lab',
      'exec',
      `${lab.name}-n3-p2`,
      '--',
      'ip',
      '-br',
      'addr',
      'show',
      'dev',
      'eth0',
    ]);
    assert.match(result.stdout, /10\.244\.3\.12\/32/);
    const failing = await run(FERRY, ['lab', 'exec', '--lab', lab.name, 'n1', '--', 'sh', '-c', 'exit 7'], {
      allowFailure: true,
    });
    assert.equal(failing.code, 7);
  });

  await t.test('down removes every trace and leaves the root namespace as it was', async () => {
    const pids = servers.map((s) => s.pid);
    await lab.down();
    for (const pid of pids) assert.equal(await isAlive(pid), false, `server ${pid} killed`);
    assert.deepEqual(await labResidue(lab.name), { netns: [], cgroups: [], pinDirs: [], stateFiles: [] });
    assert.deepEqual(await rootSnapshot(), rootBefore);
  });
});

/** A child process that builds a lab; `then` runs in it after bring-up. */
function childBuildingLab(name: string, then: string): ReturnType<typeof spawn> {
  const code = `
    import { createLab } from ${JSON.stringify(`${ROOT}src/lab/lab.ts`)};
    const lab = await createLab({ name: ${JSON.stringify(name)}, nodes: 3, podsPerNode: 4 });
    ${then}
    setInterval(() => {}, 1000);
  `;
  return spawn(process.execPath, ['--input-type=module', '-e', code], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, FERRY_LOG_LEVEL: 'silent' },
  });
}

test('teardown after a crash in the middle of bring-up, without a state file', async (t) => {
  const name = randomLabName();
  t.after(() => destroyLab(name));
  const child = childBuildingLab(name, '');
  // Kill it once namespaces exist but before the lab is ready.
  await waitFor('namespaces', async () => (await labResidue(name)).netns.length > 0);
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const residue = await labResidue(name);
  assert.ok(residue.netns.length > 0 && residue.cgroups.length > 0, JSON.stringify(residue));
  assert.equal((await readState(name))?.status, 'creating', 'killed before bring-up finished');
  // Lose the state file too: the leftovers are still found by their names.
  await rm(statePath(name), { force: true });
  assert.ok((await labNamesOnMachine()).includes(name), 'down --all would find it');
  await run(FERRY, ['lab', 'down', name], { env: { ...process.env, FERRY_LOG_LEVEL: 'silent' } });
  assert.ok(isEmptyResidue(await labResidue(name)), JSON.stringify(await labResidue(name)));
  assert.deepEqual(await rootSnapshot(), rootBefore);
});

test('teardown after the owner was killed with servers still running in pods', async (t) => {
  const name = randomLabName();
  t.after(() => destroyLab(name));
  const child = childBuildingLab(
    name,
    `
    const server = await lab.startEchoServer('n2-p1');
    console.log(JSON.stringify({ serverPid: server.pid }));
  `,
  );
  let stdout = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (s: string) => (stdout += s));
  await waitFor('the server', async () => stdout.includes('serverPid'), 20_000);
  const { serverPid } = JSON.parse(stdout.trim().split('\n').at(-1)!) as { serverPid: number };
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  assert.equal(await isAlive(serverPid), true, 'the server outlives its owner (it holds the pod netns)');
  assert.equal((await readState(name))?.status, 'ready');
  await destroyLab(name);
  await waitFor('server death', async () => !(await isAlive(serverPid)), 2000);
  assert.ok(isEmptyResidue(await labResidue(name)), JSON.stringify(await labResidue(name)));
  assert.deepEqual(await rootSnapshot(), rootBefore);
});

test('ferry lab up / status / down from the command line', async (t) => {
  const name = randomLabName();
  t.after(() => destroyLab(name));
  const env = { ...process.env, FERRY_LOG_LEVEL: 'silent' };
  const up = await run(FERRY, ['lab', 'up', '--nodes', '2', '--pods', '1', '--name', name, '--json'], {
    env,
  });
  const state = JSON.parse(up.stdout) as {
    name: string;
    status: string;
    pods: { name: string; ipv4: string }[];
  };
  assert.equal(state.name, name);
  assert.equal(state.status, 'ready');
  assert.deepEqual(
    state.pods.map((p) => [p.name, p.ipv4]),
    [
      ['n1-p1', '10.244.1.11'],
      ['n2-p1', '10.244.2.11'],
    ],
  );
  const list = JSON.parse((await run(FERRY, ['lab', 'status', '--json'], { env })).stdout) as {
    name: string;
  }[];
  assert.ok(list.some((l) => l.name === name));
  const described = await run(FERRY, ['lab', 'status', name], { env });
  assert.match(described.stdout, /10\.244\.2\.11/);
  await run(FERRY, ['lab', 'down', name], { env });
  assert.ok(isEmptyResidue(await labResidue(name)));
  const gone = await run(FERRY, ['lab', 'status', name], { env, allowFailure: true });
  assert.equal(gone.code, 1);
  assert.match(gone.stdout, new RegExp(`no lab ${name}`));
  const bad = await run(FERRY, ['lab', 'up', '--name', 'Not-A-Lab'], { env, allowFailure: true });
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /lab name/);
  assert.deepEqual(await rootSnapshot(), rootBefore);
});
