// A real CNI runtime (cnitool, built from the Go module proxy by scripts/build-cnitool.sh) adds,
// checks and deletes a pod with ferry-cni, alone and chained between Debian's reference plugins.
// cnitool and every plugin it calls run inside a "node" netns this test creates, so portmap's
// iptables rules land there, never in the root namespace.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const REFERENCE = '/usr/lib/cni';

function netns(t: TestContext, prefix: string): string {
  const name = `${prefix}${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', name]);
  t.after(() => execFileSync('ip', ['netns', 'del', name]));
  return `/run/netns/${name}`;
}

function setup(t: TestContext, conflist: (dataDir: string, name: string) => object) {
  const cnitool = execFileSync(`${root}scripts/build-cnitool.sh`, { encoding: 'utf8' }).trim();
  const node = netns(t, 'fcn');
  execFileSync('nsenter', [`--net=${node}`, 'ip', 'link', 'set', 'lo', 'up']);
  execFileSync('nsenter', [`--net=${node}`, 'ip', 'addr', 'add', '172.30.0.1/32', 'dev', 'lo']);
  const dir = mkdtempSync(`${tmpdir()}/ferry-cnitool-`);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const name = `ferry-test-${randomBytes(3).toString('hex')}`;
  // cnitool keeps its result cache under /var/lib/cni/results; ours is removed whatever happens.
  t.after(() => {
    const results = '/var/lib/cni/results';
    if (existsSync(results))
      for (const f of readdirSync(results))
        if (f.startsWith(`${name}-`)) rmSync(`${results}/${f}`, { force: true });
  });
  const bin = `${dir}/bin`;
  execFileSync('mkdir', ['-p', bin, `${dir}/net.d`]);
  symlinkSync(`${root}bin/ferry-cni`, `${bin}/ferry-cni`);
  writeFileSync(`${dir}/net.d/10-ferry.conflist`, JSON.stringify(conflist(`${dir}/ipam`, name)));
  const pod = netns(t, 'fcp');
  const tool = (cmd: string, extraEnv: Record<string, string> = {}) =>
    spawnSync('nsenter', [`--net=${node}`, '--', cnitool, cmd, name, pod], {
      encoding: 'utf8',
      env: {
        PATH: process.env.PATH,
        FERRY_LOG_LEVEL: 'silent',
        NETCONFPATH: `${dir}/net.d`,
        CNI_PATH: `${bin}:${REFERENCE}`,
        CNI_IFNAME: 'eth0',
        ...extraEnv,
      },
    });
  const ping = (addr: string): boolean =>
    spawnSync('nsenter', [`--net=${node}`, 'ping', '-c1', '-W1', addr]).status === 0;
  return { tool, ping, node, pod, dataDir: `${dir}/ipam/${name}` };
}

test('cnitool: add, check, del with ferry-cni alone', async (t) => {
  const s = setup(t, (dataDir, name) => ({
    cniVersion: '1.1.0',
    name,
    plugins: [{ type: 'ferry-cni', ipam: { ranges: ['10.244.1.0/24', 'fd00:10:244:1::/64'], dataDir } }],
  }));
  const add = s.tool('add');
  assert.equal(add.status, 0, add.stdout + add.stderr);
  const result = JSON.parse(add.stdout) as { ips: { address: string }[] };
  assert.deepEqual(
    result.ips.map((i) => i.address),
    ['10.244.1.2/32', 'fd00:10:244:1::2/128'],
  );
  assert.ok(s.ping('10.244.1.2'));
  const check = s.tool('check');
  assert.equal(check.status, 0, check.stdout + check.stderr);
  execFileSync('nsenter', [`--net=${s.pod}`, 'ip', 'addr', 'add', '10.244.1.77/32', 'dev', 'eth0']);
  const broken = s.tool('check');
  assert.notEqual(broken.status, 0, 'cnitool check reports the changed address');
  assert.match(broken.stdout + broken.stderr, /addresses/);
  const del = s.tool('del');
  assert.equal(del.status, 0, del.stdout + del.stderr);
  assert.ok(!s.ping('10.244.1.2'));
  assert.deepEqual(
    readdirSync(s.dataDir).filter((f) => f !== 'lock'),
    [],
  );
});

test('cnitool: chained loopback → ferry-cni → portmap; the portmap DNAT lands in the node netns and leaves with DEL', async (t) => {
  const s = setup(t, (dataDir, name) => ({
    cniVersion: '1.0.0',
    name,
    plugins: [
      { type: 'loopback' },
      { type: 'ferry-cni', ipam: { ranges: ['10.244.1.0/24', 'fd00:10:244:1::/64'], dataDir } },
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
    ],
  }));
  const cap = {
    CAP_ARGS: JSON.stringify({ portMappings: [{ hostPort: 18080, containerPort: 8080, protocol: 'tcp' }] }),
  };
  const add = s.tool('add', cap);
  assert.equal(add.status, 0, add.stdout + add.stderr);
  const result = JSON.parse(add.stdout) as { interfaces: { name: string }[]; ips: { address: string }[] };
  assert.ok(
    result.interfaces.some((i) => i.name === 'lo'),
    'loopback result carried through',
  );
  assert.ok(result.ips.some((i) => i.address === '10.244.1.2/32'));
  const rules = execFileSync('nsenter', [`--net=${s.node}`, 'iptables-save', '-t', 'nat'], {
    encoding: 'utf8',
  });
  assert.match(rules, /18080/, 'portmap wrote its DNAT in the node netns');
  // No `cnitool check` on this chain: Debian's portmap (1.1.x) checks its IPv6 DNAT chain against
  // the IPv4 rules and always fails a dual-stack CHECK; ferry-cni's own CHECK is tested above.
  const del = s.tool('del', cap);
  assert.equal(del.status, 0, del.stdout + del.stderr);
  assert.doesNotMatch(
    execFileSync('nsenter', [`--net=${s.node}`, 'iptables-save', '-t', 'nat'], { encoding: 'utf8' }),
    /18080/,
  );
  assert.ok(!s.ping('10.244.1.2'));
});
