// bin/ferry-cni run as a runtime runs it (CNI_* environment, config on stdin), from inside a
// "node" netns this test creates, wiring pods in pod netns it also creates. Nothing touches root.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { addForeignEth0, runPlugin, type PluginRun } from '../../support/cni-plugin.ts';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';

interface Fixture {
  readonly node: string; // netns path the plugin runs in
  readonly dataDir: string;
  readonly conf: (extra?: Record<string, unknown>) => string;
  readonly pod: () => string;
}

function netns(t: TestContext, prefix: string): string {
  const name = `${prefix}${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', name]);
  t.after(() => execFileSync('ip', ['netns', 'del', name]));
  return `/run/netns/${name}`;
}

function fixture(t: TestContext, ranges = ['10.244.1.0/24', 'fd00:10:244:1::/64']): Fixture {
  const node = netns(t, 'fcn');
  // The node needs its own addresses, as a real node has, to source its probes from.
  for (const args of [
    ['link', 'set', 'lo', 'up'],
    // No dummy driver in this kernel: the node's addresses sit on lo, which is enough as a source.
    ['addr', 'add', '172.30.0.1/32', 'dev', 'lo'],
    ['addr', 'add', 'fd00:172:30::1/128', 'dev', 'lo'],
  ])
    execFileSync('nsenter', [`--net=${node}`, 'ip', ...args]);
  const dataDir = mkdtempSync(`${tmpdir()}/ferry-cni-`);
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const conf = (extra: Record<string, unknown> = {}): string =>
    JSON.stringify({
      cniVersion: '1.1.0',
      name: 'ferry',
      type: 'ferry-cni',
      ipam: { ranges, dataDir },
      ...extra,
    });
  return { node, dataDir, conf, pod: () => netns(t, 'fcp') };
}

function cni(f: Fixture, env: Record<string, string>, stdin: string): Promise<PluginRun> {
  return runPlugin(f.node, env, stdin);
}

function envFor(cmd: string, id: string, netnsPath: string, ifname = 'eth0'): Record<string, string> {
  return { CNI_COMMAND: cmd, CNI_CONTAINERID: id, CNI_NETNS: netnsPath, CNI_IFNAME: ifname };
}

function inNode(f: Fixture, ...argv: string[]): { ok: boolean; out: string } {
  try {
    return {
      ok: true,
      out: execFileSync('nsenter', [`--net=${f.node}`, ...argv], { encoding: 'utf8', stdio: 'pipe' }),
    };
  } catch {
    return { ok: false, out: '' };
  }
}

function hostLinks(f: Fixture): string[] {
  return (JSON.parse(inNode(f, 'ip', '-j', 'link', 'show').out) as { ifname: string }[])
    .map((l) => l.ifname)
    .filter((n) => n.startsWith('fp'));
}

function allocations(f: Fixture): string[] {
  return existsSync(`${f.dataDir}/ferry`)
    ? readdirSync(`${f.dataDir}/ferry`).filter((n) => n !== 'lock')
    : [];
}

function ips(out: Record<string, unknown> | undefined): string[] {
  return ((out?.ips ?? []) as { address: string }[]).map((i) => i.address);
}

test('ADD wires a dual-stack pod that is reachable; CHECK passes; DEL removes it and is idempotent', async (t) => {
  const f = fixture(t);
  const pod = f.pod();
  const add = await cni(f, envFor('ADD', 'pod-a', pod), f.conf());
  assert.equal(add.code, 0, JSON.stringify(add.out));
  assert.equal(add.out!.cniVersion, '1.1.0');
  assert.deepEqual(ips(add.out), ['10.244.1.2/32', 'fd00:10:244:1::2/128']);
  assert.ok(inNode(f, 'ping', '-c1', '-W1', '10.244.1.2').ok, 'IPv4 reachable at once');
  assert.ok(inNode(f, 'ping', '-c1', '-W1', 'fd00:10:244:1::2').ok, 'IPv6 reachable at once');
  const check = await cni(f, envFor('CHECK', 'pod-a', pod), f.conf({ prevResult: add.out }));
  assert.equal(check.code, 0, JSON.stringify(check.out));

  const again = await cni(f, envFor('ADD', 'pod-a', pod), f.conf());
  assert.equal(again.code, 1);
  assert.equal(again.out!.code, 100, 'ADD on an existing interface fails');
  assert.equal(allocations(f).length, 2, 'and allocates nothing more');

  for (let i = 0; i < 2; i++) {
    const del = await cni(f, envFor('DEL', 'pod-a', pod), f.conf());
    assert.equal(del.code, 0, JSON.stringify(del.out));
    assert.equal(del.out, undefined);
  }
  assert.deepEqual(hostLinks(f), []);
  assert.deepEqual(allocations(f), []);
  assert.ok(!inNode(f, 'ping', '-c1', '-W1', '10.244.1.2').ok);
  const gone = await cni(f, envFor('DEL', 'pod-a', '/run/netns/does-not-exist'), f.conf());
  assert.equal(gone.code, 0, 'DEL of a pod whose netns is gone succeeds');
});

test('ADD fails with code 100 when the pod already has an interface of that name, and leaves nothing', async (t) => {
  const f = fixture(t);
  const pod = f.pod();
  addForeignEth0(pod);
  const add = await cni(f, envFor('ADD', 'pod-x', pod), f.conf());
  assert.equal(add.code, 1);
  assert.equal(add.out!.code, 100, JSON.stringify(add.out));
  assert.deepEqual(hostLinks(f), []);
  assert.deepEqual(allocations(f), []);
});

test('CHECK detects a changed address and a removed route', async (t) => {
  const f = fixture(t);
  const pod = f.pod();
  const add = await cni(f, envFor('ADD', 'pod-c', pod), f.conf());
  assert.equal(add.code, 0);
  // A second address stands in for a changed one: deleting the pod's only IPv4 address would take
  // the kernel's routes with it, which is a different failure.
  execFileSync('nsenter', [`--net=${pod}`, 'ip', 'addr', 'add', '10.244.1.99/32', 'dev', 'eth0']);
  const changed = await cni(f, envFor('CHECK', 'pod-c', pod), f.conf({ prevResult: add.out }));
  assert.equal(changed.code, 1);
  assert.equal(changed.out!.code, 102);
  assert.match(String(changed.out!.msg), /addresses/);
  execFileSync('nsenter', [`--net=${pod}`, 'ip', 'addr', 'del', '10.244.1.99/32', 'dev', 'eth0']);
  assert.equal((await cni(f, envFor('CHECK', 'pod-c', pod), f.conf({ prevResult: add.out }))).code, 0);
  execFileSync('nsenter', [`--net=${pod}`, 'ip', '-6', 'route', 'del', 'default']);
  const noRoute = await cni(f, envFor('CHECK', 'pod-c', pod), f.conf({ prevResult: add.out }));
  assert.equal(noRoute.code, 1);
  assert.match(String(noRoute.out!.msg), /default route/);
});

test('malformed calls get the spec code, a message, and change nothing', async (t) => {
  const f = fixture(t);
  const pod = f.pod();
  const notNetns = `${f.dataDir}/plain-file`;
  writeFileSync(notNetns, '');
  const cases: [string, Record<string, string>, string, number][] = [
    ['bad JSON', envFor('ADD', 'x', pod), '{"cniVersion":', 6],
    ['unsupported version', envFor('ADD', 'x', pod), f.conf({ cniVersion: '0.1.0' }), 1],
    ['missing netns', envFor('ADD', 'x', '/run/netns/ferry-nope-1'), f.conf(), 3],
    ['bogus netns (a plain file)', envFor('ADD', 'x', notNetns), f.conf(), 4],
    ['over-long ifname', envFor('ADD', 'x', pod, 'eth0123456789abc'), f.conf(), 4],
    ['path trick in container id', envFor('ADD', '../../x', pod), f.conf(), 4],
    ['unknown command', envFor('FROB', 'x', pod), f.conf(), 4],
    [
      'no ranges',
      envFor('ADD', 'x', pod),
      JSON.stringify({ cniVersion: '1.1.0', name: 'ferry', type: 'ferry-cni' }),
      7,
    ],
  ];
  for (const [name, env, stdin, code] of cases) {
    const r = await cni(f, env, stdin);
    assert.equal(r.code, 1, name);
    assert.equal(r.out!.code, code, `${name}: ${JSON.stringify(r.out)}`);
    assert.ok(String(r.out!.msg).length > 0, name);
    assert.deepEqual(hostLinks(f), [], `${name}: no link`);
    assert.deepEqual(allocations(f), [], `${name}: no allocation`);
  }
});

test('VERSION, STATUS (ready, then 50 when exhausted) and GC of leaked attachments', async (t) => {
  const f = fixture(t, ['10.244.9.0/29']);
  const version = await cni(f, { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}');
  assert.deepEqual(version.out, {
    cniVersion: '1.0.0',
    supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'],
  });
  assert.equal((await cni(f, { CNI_COMMAND: 'STATUS' }, f.conf())).code, 0);
  const pods = Array.from({ length: 5 }, () => f.pod());
  for (const [i, p] of pods.entries())
    assert.equal((await cni(f, envFor('ADD', `g${i}`, p), f.conf())).code, 0);
  const full = await cni(f, { CNI_COMMAND: 'STATUS' }, f.conf());
  assert.equal(full.code, 1);
  assert.equal(full.out!.code, 50);
  const sixth = await cni(f, envFor('ADD', 'g5', f.pod()), f.conf());
  assert.equal(sixth.out!.code, 101);
  assert.match(String(sixth.out!.msg), /exhausted/);
  assert.equal(hostLinks(f).length, 5);

  const gc = await cni(
    f,
    { CNI_COMMAND: 'GC' },
    f.conf({ 'cni.dev/valid-attachments': [{ containerID: 'g1', ifname: 'eth0' }] }),
  );
  assert.equal(gc.code, 0, JSON.stringify(gc.out));
  assert.equal(allocations(f).length, 1);
  assert.equal(hostLinks(f).length, 1);
  assert.equal((await cni(f, { CNI_COMMAND: 'STATUS' }, f.conf())).code, 0);
  assert.equal(
    (await cni(f, envFor('CHECK', 'g1', pods[1]!), f.conf())).code,
    0,
    'the valid pod is untouched',
  );
});

test('chained after loopback: prevResult is kept and extended', async (t) => {
  const f = fixture(t);
  const pod = f.pod();
  const prevResult = {
    cniVersion: '1.1.0',
    interfaces: [{ name: 'lo', sandbox: pod }],
    ips: [{ address: '127.0.0.1/8', interface: 0 }],
  };
  const add = await cni(f, envFor('ADD', 'pod-ch', pod), f.conf({ prevResult }));
  assert.equal(add.code, 0, JSON.stringify(add.out));
  const ifs = add.out!.interfaces as { name: string }[];
  assert.equal(ifs[0]!.name, 'lo');
  assert.deepEqual(ips(add.out), ['127.0.0.1/8', '10.244.1.2/32', 'fd00:10:244:1::2/128']);
  assert.equal((add.out!.ips as { interface: number }[])[1]!.interface, 2, 'points at the pod interface');
  assert.equal((await cni(f, envFor('DEL', 'pod-ch', pod), f.conf())).code, 0);
});

test('50 concurrent ADDs get 50 distinct reachable addresses; DELs return them all', async (t) => {
  const f = fixture(t);
  const pods = Array.from({ length: 50 }, () => f.pod());
  const adds = await Promise.all(pods.map((p, i) => cni(f, envFor('ADD', `many-${i}`, p), f.conf())));
  for (const a of adds) assert.equal(a.code, 0, JSON.stringify(a.out));
  const v4 = adds.map((a) => ips(a.out)[0]!.split('/')[0]!);
  const v6 = adds.map((a) => ips(a.out)[1]!.split('/')[0]!);
  assert.equal(new Set(v4).size, 50);
  assert.equal(new Set(v6).size, 50);
  for (const addr of [...v4, ...v6]) assert.ok(inNode(f, 'ping', '-c1', '-W1', addr).ok, `${addr} reachable`);
  const dels = await Promise.all(pods.map((p, i) => cni(f, envFor('DEL', `many-${i}`, p), f.conf())));
  for (const d of dels) assert.equal(d.code, 0);
  assert.deepEqual(allocations(f), []);
  assert.deepEqual(hostLinks(f), []);
});
