// Pod-to-pod between two "node" netns joined by a veth (the underlay), pods wired by
// bin/ferry-cni, node routes by syncNodeRoutes in native and then VXLAN mode.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { syncNodeRoutes, VXLAN_DEVICE, type NodeRoutingInfo } from '../../../src/agent/routes.ts';

const root = fileURLToPath(new URL('../../../', import.meta.url));

function netns(t: TestContext, prefix: string): string {
  const name = `${prefix}${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', name]);
  t.after(() => execFileSync('ip', ['netns', 'del', name]));
  return `/run/netns/${name}`;
}

function inNs(ns: string, ...argv: string[]): string {
  return execFileSync('nsenter', [`--net=${ns}`, '--', ...argv], { encoding: 'utf8' });
}

function ping(ns: string, addr: string): boolean {
  return spawnSync('nsenter', [`--net=${ns}`, 'ping', '-c1', '-W1', addr]).status === 0;
}

function txPackets(ns: string, dev: string): number {
  const j = JSON.parse(inNs(ns, 'ip', '-j', '-s', 'link', 'show', 'dev', dev)) as {
    stats64: { tx: { packets: number } };
  }[];
  return j[0]!.stats64.tx.packets;
}

test('pods on two nodes reach each other over native routes and over VXLAN', async (t) => {
  const dataDir = mkdtempSync(`${tmpdir()}/ferry-routes-`);
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const n = [netns(t, 'frn'), netns(t, 'frn')];
  const pods = [netns(t, 'frp'), netns(t, 'frp')];
  const tag = randomBytes(2).toString('hex');
  execFileSync('ip', [
    'link',
    'add',
    `fu${tag}a`,
    'netns',
    n[0]!,
    'type',
    'veth',
    'peer',
    'name',
    `fu${tag}b`,
    'netns',
    n[1]!,
  ]);
  const nodes: NodeRoutingInfo[] = [1, 2].map((i) => ({
    name: `node-${i}`,
    addresses: [`172.31.0.${i}`, `fd00:172:31::${i}`],
    podCIDRs: [`10.244.${i}.0/24`, `fd00:10:244:${i}::/64`],
  }));
  for (const [i, ns] of n.entries()) {
    const dev = `fu${tag}${i === 0 ? 'a' : 'b'}`;
    inNs(ns, 'ip', 'link', 'set', 'lo', 'up');
    inNs(ns, 'ip', 'link', 'set', dev, 'name', 'eth0');
    // A fresh link's own link-local address sits in DAD for a second or two, and meanwhile the
    // first forwarded IPv6 packet's neighbour solicitation is lost; a real node's link is long up.
    inNs(ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.eth0.accept_dad=0');
    inNs(ns, 'ip', 'link', 'set', 'eth0', 'up');
    inNs(ns, 'ip', 'addr', 'add', `172.31.0.${i + 1}/24`, 'dev', 'eth0');
    inNs(ns, 'ip', 'addr', 'add', `fd00:172:31::${i + 1}/64`, 'dev', 'eth0', 'nodad');
    inNs(ns, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1');
    const conf = JSON.stringify({
      cniVersion: '1.1.0',
      name: 'routes',
      type: 'ferry-cni',
      ipam: { ranges: nodes[i]!.podCIDRs, dataDir: `${dataDir}/node-${i + 1}` },
    });
    const add = spawnSync('nsenter', [`--net=${ns}`, '--', `${root}bin/ferry-cni`], {
      input: conf,
      encoding: 'utf8',
      env: {
        PATH: process.env.PATH,
        FERRY_LOG_LEVEL: 'silent',
        CNI_COMMAND: 'ADD',
        CNI_CONTAINERID: `p${i}`,
        CNI_NETNS: pods[i]!,
        CNI_IFNAME: 'eth0',
      },
    });
    assert.equal(add.status, 0, add.stdout);
  }
  const sync = (mode: 'native' | 'vxlan', list = nodes) =>
    Promise.all(n.map((ns, i) => syncNodeRoutes(ns, list, mode, { self: `node-${i + 1}` })));

  assert.ok(!ping(pods[0]!, '10.244.2.2'), 'no route yet');
  assert.deepEqual(
    (await sync('native')).map((r) => r.routes),
    [2, 2],
  );
  assert.ok(ping(pods[0]!, '10.244.2.2'), 'native IPv4');
  assert.ok(ping(pods[1]!, 'fd00:10:244:1::2'), 'native IPv6');
  assert.deepEqual(
    (await sync('native')).map((r) => r.removed),
    [0, 0],
    'a repeated sync changes nothing',
  );

  await sync('vxlan');
  const before = txPackets(n[0]!, VXLAN_DEVICE);
  assert.ok(ping(pods[0]!, '10.244.2.2'), 'VXLAN IPv4');
  assert.ok(ping(pods[0]!, 'fd00:10:244:2::2'), 'VXLAN IPv6');
  assert.ok(txPackets(n[0]!, VXLAN_DEVICE) >= before + 2, 'the packets went through the tunnel');

  // node-2 leaves: node-1 drops its routes.
  const left = await syncNodeRoutes(n[0]!, [nodes[0]!], 'vxlan', { self: 'node-1' });
  assert.equal(left.removed, 2);
  assert.ok(!ping(pods[0]!, '10.244.2.2'));
});
