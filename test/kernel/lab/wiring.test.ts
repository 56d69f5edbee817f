// The pod wiring library on real namespaces: a "host" and a "pod" netns, wired, inspected, used
// for TCP/UDP both ways over both families, then unwired.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  addPodInterface,
  delPodInterface,
  GATEWAY_IPV4,
  GATEWAY_IPV6,
  GATEWAY_MAC,
  hostIfnameFor,
  inspectPodInterface,
} from '../../../src/cni/wiring.ts';
import { InvalidArgumentError } from '../../../src/common/errors.ts';
import { execIn, LabProcess } from '../../../src/lab/exec.ts';
import { ipBatch, run } from '../../../src/common/run.ts';
import { hostPort, parseProbeOutput } from '../../../src/lab/tools/protocol.ts';
import type { LabFabric } from '../../../src/lab/types.ts';

const tool = (name: string): string =>
  fileURLToPath(new URL(`../../../src/lab/tools/${name}.ts`, import.meta.url));

// A bare namespace with no cgroup: the "fabric" kind of lab host runs commands without one.
function bare(netns: string): LabFabric {
  return { kind: 'fabric', name: netns, netns, netnsPath: `/run/netns/${netns}`, bridge: '' };
}

test('pod wiring: veth, addresses, gateways, routes; traffic both ways; clean delete', async (t) => {
  const prefix = 'fl' + randomBytes(3).toString('hex');
  const host = bare(`${prefix}-host`);
  const pod = bare(`${prefix}-pod`);
  await run('ip', ['netns', 'add', host.netns]);
  t.after(() => run('ip', ['netns', 'del', host.netns], { allowFailure: true }));
  await run('ip', ['netns', 'add', pod.netns]);
  t.after(() => run('ip', ['netns', 'del', pod.netns], { allowFailure: true }));
  // The host needs an address of its own to talk from; the pod only ever sees it via the gateway.
  await ipBatch(
    [
      ['link', 'set', 'lo', 'up'],
      ['addr', 'add', '10.99.0.1/32', 'dev', 'lo'],
      ['addr', 'add', 'fd00:99::1/128', 'dev', 'lo'],
    ],
    { netns: host.netns },
  );
  await ipBatch([['link', 'set', 'lo', 'up']], { netns: pod.netns });

  const hostIfname = hostIfnameFor('container-1', 'eth0');
  assert.match(hostIfname, /^fp[0-9a-f]{11}$/);
  assert.equal(hostIfnameFor('container-1', 'eth0'), hostIfname, 'derivable');
  assert.notEqual(hostIfnameFor('container-2', 'eth0'), hostIfname);

  const spec = {
    netnsPath: pod.netnsPath,
    ifname: 'eth0',
    hostIfname,
    hostNetnsPath: host.netnsPath,
    addresses: ['10.244.7.11/24', 'fd00:10:244:7::11/64'],
    mtu: 1400,
  };
  const added = await addPodInterface(spec);
  assert.deepEqual(added.addresses, ['10.244.7.11/32', 'fd00:10:244:7::11/128'], 'pod gets host prefixes');

  const ref = { hostIfname, hostNetnsPath: host.netnsPath, netnsPath: pod.netnsPath, ifname: 'eth0' };
  const state = await inspectPodInterface(ref);
  assert.equal(state.host.exists, true);
  assert.equal(state.host.up, true);
  assert.equal(state.host.mac, GATEWAY_MAC);
  assert.equal(state.host.proxyArp, true);
  assert.equal(state.host.gatewayIpv6, true);
  assert.deepEqual([...state.host.routes].sort(), ['10.244.7.11/32', 'fd00:10:244:7::11/128']);
  assert.ok(state.pod);
  assert.equal(state.pod.exists, true);
  assert.equal(state.pod.up, true);
  assert.equal(state.pod.mtu, 1400);
  assert.deepEqual([...state.pod.addresses].sort(), ['10.244.7.11/32', 'fd00:10:244:7::11/128']);
  assert.deepEqual([...state.pod.defaultGateways].sort(), [GATEWAY_IPV4, GATEWAY_IPV6].sort());

  // The host's link-local gateway address is the EUI-64 of the fixed MAC.
  const hostAddrs = await run('ip', ['-n', host.netns, '-6', 'addr', 'show', 'dev', hostIfname]);
  assert.match(hostAddrs.stdout, new RegExp(`inet6 ${GATEWAY_IPV6}/64`));
  // Usable at once: a tentative (in-DAD) gateway address would make the host drop its first packets.
  assert.doesNotMatch(hostAddrs.stdout, /tentative/);

  await t.test('traffic: host → pod and pod → host, TCP and UDP, IPv4 and IPv6', async () => {
    await using podServer = new LabProcess(pod, [
      process.execPath,
      tool('echo-server'),
      '--name',
      'the-pod',
      '--tcp',
      '7000',
      '--udp',
      '7000',
    ]);
    await using hostServer = new LabProcess(host, [
      process.execPath,
      tool('echo-server'),
      '--name',
      'the-host',
      '--tcp',
      '7000',
      '--udp',
      '7000',
    ]);
    await podServer.waitForLine((l) => l.startsWith('{"ready"'));
    await hostServer.waitForLine((l) => l.startsWith('{"ready"'));
    const cases = [
      { from: host, to: '10.244.7.11', backend: 'the-pod', seenAs: '10.99.0.1' },
      { from: host, to: 'fd00:10:244:7::11', backend: 'the-pod', seenAs: 'fd00:99::1' },
      { from: pod, to: '10.99.0.1', backend: 'the-host', seenAs: '10.244.7.11' },
      { from: pod, to: 'fd00:99::1', backend: 'the-host', seenAs: 'fd00:10:244:7::11' },
    ];
    for (const proto of ['tcp', 'udp']) {
      for (const c of cases) {
        const result = await execIn(c.from, [
          process.execPath,
          tool('probe'),
          '--proto',
          proto,
          '--timeout',
          '3000',
          hostPort(c.to, 7000),
        ]);
        const [attempt] = parseProbeOutput(result.stdout).attempts;
        const what = `${proto} ${c.from.name} → ${c.to}`;
        assert.ok(attempt, `${what}: no output; stderr ${result.stderr}`);
        assert.equal(attempt.ok, true, `${what}: ${JSON.stringify(attempt)}`);
        assert.equal(attempt.backend, c.backend, what);
        assert.equal(
          attempt.seenAs?.replace(/^\[?([^\]]*)\]?:[0-9]+$/, '$1'),
          c.seenAs,
          `${what}: source address`,
        );
      }
    }
  });

  await t.test('a second add for the same pod interface fails and leaves no host veth behind', async () => {
    const other = hostIfnameFor('container-9', 'eth0');
    await assert.rejects(addPodInterface({ ...spec, hostIfname: other }));
    const left = await inspectPodInterface({ hostIfname: other, hostNetnsPath: host.netnsPath });
    assert.equal(left.host.exists, false);
  });

  await t.test('bad input is refused before anything is created', async () => {
    await assert.rejects(addPodInterface({ ...spec, addresses: ['not-an-ip/32'] }), InvalidArgumentError);
    await assert.rejects(addPodInterface({ ...spec, addresses: [] }), InvalidArgumentError);
    await assert.rejects(addPodInterface({ ...spec, hostIfname: 'way-too-long-name' }), InvalidArgumentError);
    await assert.rejects(addPodInterface({ ...spec, ifname: 'eth 0' }), InvalidArgumentError);
    await assert.rejects(addPodInterface({ ...spec, mtu: 20 }), InvalidArgumentError);
  });

  await t.test('delete removes both ends and their routes; deleting again is fine', async () => {
    await delPodInterface(ref);
    const gone = await inspectPodInterface(ref);
    assert.equal(gone.host.exists, false);
    assert.deepEqual(gone.host.routes, []);
    assert.equal(gone.pod?.exists, false);
    await delPodInterface(ref);
  });
});
