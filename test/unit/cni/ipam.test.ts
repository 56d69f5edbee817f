// Host-local IPAM on a temporary directory: skipping reserved addresses, persistence, exhaustion,
// release, GC, range sets, a leftover lock file and concurrent allocators in separate processes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { HostLocalIpam, rangeAddresses, rangeCapacity } from '../../../src/cni/ipam.ts';
import { CniCode, CniError } from '../../../src/cni/spec.ts';
import { parseCidr } from '../../../src/common/ip.ts';

const root = fileURLToPath(new URL('../../../', import.meta.url));

function tempDir(t: import('node:test').TestContext): string {
  const dir = mkdtempSync(`${tmpdir()}/ferry-ipam-`);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function ipam(dir: string, ...ranges: string[]): HostLocalIpam {
  return new HostLocalIpam({ rangeSets: ranges.map((r) => [parseCidr(r)!]), dataDir: dir });
}

test('ranges skip network, first host and broadcast', () => {
  const v4 = [...rangeAddresses(parseCidr('10.0.0.0/29')!)];
  assert.deepEqual(v4, ['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6']);
  assert.equal(rangeCapacity(parseCidr('10.0.0.0/24')!), 253n);
  const v6 = rangeAddresses(parseCidr('fd00::/64')!);
  assert.equal(v6.next().value, 'fd00::2');
});

test('requested addresses (the ips capability) are honoured, refused when taken or reserved', async (t) => {
  const dir = tempDir(t);
  const rangeSets = ['10.0.0.0/24', 'fd00:1::/64'].map((r) => [parseCidr(r)!]);
  const want = (...requested: string[]): HostLocalIpam => new HostLocalIpam({ rangeSets, dataDir: dir, requested });
  const got = await want('10.0.0.77').allocate({ containerId: 'c1', ifname: 'eth0' });
  // The family without a request falls back to the lowest free address.
  assert.deepEqual(got.map((x) => x.cidr), ['10.0.0.77/24', 'fd00:1::2/64']);
  await assert.rejects(
    want('10.0.0.77').allocate({ containerId: 'c2', ifname: 'eth0' }),
    (e: CniError) => e.cniCode === CniCode.tryAgainLater && /10\.0\.0\.77 is already allocated/.test(e.message),
  );
  for (const reserved of ['10.0.0.0', '10.0.0.1', '10.0.0.255'])
    await assert.rejects(
      want(reserved).allocate({ containerId: 'c3', ifname: 'eth0' }),
      (e: CniError) => e.cniCode === CniCode.invalidConfig && e.message.includes(reserved),
    );
  // Nothing half-allocated by the refusals.
  assert.deepEqual(readdirSync(dir).filter((f) => f !== 'lock').sort(), ['10.0.0.77', 'fd00:1::2']);
});

test('allocates one address per range, persists, refuses a second ADD, releases', async (t) => {
  const dir = tempDir(t);
  const a = ipam(dir, '10.0.0.0/24', 'fd00:1::/64');
  const got = await a.allocate({ containerId: 'c1', ifname: 'eth0' });
  assert.deepEqual(
    got.map((x) => x.cidr),
    ['10.0.0.2/24', 'fd00:1::2/64'],
  );
  const b = ipam(dir, '10.0.0.0/24', 'fd00:1::/64'); // a new process sees the same state
  assert.deepEqual(
    b.lookup({ containerId: 'c1', ifname: 'eth0' }).map((x) => x.address),
    ['10.0.0.2', 'fd00:1::2'],
  );
  await assert.rejects(
    b.allocate({ containerId: 'c1', ifname: 'eth0' }),
    (e: CniError) => e.cniCode === CniCode.interfaceExists,
  );
  const c2 = await b.allocate({ containerId: 'c2', ifname: 'eth0' });
  assert.deepEqual(
    c2.map((x) => x.address),
    ['10.0.0.3', 'fd00:1::3'],
  );
  assert.equal((await b.release({ containerId: 'c1', ifname: 'eth0' })).length, 2);
  assert.equal((await b.release({ containerId: 'c1', ifname: 'eth0' })).length, 0, 'idempotent');
  const c3 = await b.allocate({ containerId: 'c3', ifname: 'eth0' });
  assert.equal(c3[0]!.address, '10.0.0.2', 'a released address is reused');
});

test('exhaustion is code 101 and allocates nothing; STATUS reason appears', async (t) => {
  const dir = tempDir(t);
  const a = ipam(dir, '10.0.0.0/29', 'fd00::/64');
  for (let i = 0; i < 5; i++) await a.allocate({ containerId: `c${i}`, ifname: 'eth0' });
  assert.match((await a.unavailable()) ?? '', /exhausted/);
  const before = readdirSync(dir).sort();
  await assert.rejects(
    a.allocate({ containerId: 'x', ifname: 'eth0' }),
    (e: CniError) => e.cniCode === CniCode.poolExhausted && /10\.0\.0\.0\/29/.test(e.message),
  );
  assert.deepEqual(readdirSync(dir).sort(), before, 'no half allocation (no IPv6 taken)');
  await a.release({ containerId: 'c0', ifname: 'eth0' });
  assert.equal(await a.unavailable(), undefined);
});

test('GC frees everything not in the valid list', async (t) => {
  const dir = tempDir(t);
  const a = ipam(dir, '10.0.0.0/24');
  for (const id of ['a', 'b', 'c']) await a.allocate({ containerId: id, ifname: 'eth0' });
  const freed = await a.releaseExcept([{ containerId: 'b', ifname: 'eth0' }]);
  assert.deepEqual(freed.map((f) => f.containerId).sort(), ['a', 'c']);
  assert.deepEqual(
    a.list().map((x) => x.containerId),
    ['b'],
  );
});

test('a range set gives one address, from its first range with room', async (t) => {
  const dir = tempDir(t);
  const a = new HostLocalIpam({
    rangeSets: [[parseCidr('10.0.0.0/29')!, parseCidr('10.0.1.0/29')!], [parseCidr('fd00:1::/64')!]],
    dataDir: dir,
  });
  const cidrs: string[][] = [];
  for (let i = 0; i < 7; i++) cidrs.push((await a.allocate({ containerId: `c${i}`, ifname: 'eth0' })).map((x) => x.cidr));
  for (const got of cidrs) assert.equal(got.filter((c) => !c.includes(':')).length, 1, 'one IPv4 address per pod');
  assert.deepEqual(cidrs[4]![0], '10.0.0.6/29', 'the first range is used up first');
  assert.deepEqual(cidrs[5]![0], '10.0.1.2/29', 'then the next range of the set');
  assert.deepEqual(a.lookup({ containerId: 'c5', ifname: 'eth0' }).map((x) => x.cidr).sort(), ['10.0.1.2/29', 'fd00:1::7/64']);
});

test('a leftover lock file from a dead process does not block', async (t) => {
  const dir = tempDir(t);
  writeFileSync(`${dir}/lock`, '999999999');
  const got = await ipam(dir, '10.0.0.0/24').allocate({ containerId: 'c', ifname: 'eth0' });
  assert.equal(got.length, 1);
});

test('40 allocators in separate processes never share an address', async (t) => {
  const dir = tempDir(t);
  const script = `
    import { HostLocalIpam } from ${JSON.stringify(`${root}src/cni/ipam.ts`)};
    import { parseCidr } from ${JSON.stringify(`${root}src/common/ip.ts`)};
    const a = new HostLocalIpam({ rangeSets: [[parseCidr('10.9.0.0/24')], [parseCidr('fd00:9::/64')]], dataDir: ${JSON.stringify(dir)} });
    const got = await a.allocate({ containerId: process.argv[1], ifname: 'eth0' });
    console.log(got.map((g) => g.address).join(' '));`;
  const run = promisify(execFile);
  const outs = await Promise.all(
    Array.from({ length: 40 }, (_, i) =>
      run(`${root}scripts/node`, ['--input-type=module', '-e', script, `c${i}`]),
    ),
  );
  const v4 = outs.map((o) => o.stdout.trim().split(' ')[0]);
  const v6 = outs.map((o) => o.stdout.trim().split(' ')[1]);
  assert.equal(new Set(v4).size, 40);
  assert.equal(new Set(v6).size, 40);
  assert.equal(ipam(dir, '10.9.0.0/24').list().length, 80);
});
