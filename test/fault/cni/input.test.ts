// Issue #12 defect 18: a host-local range set is one pool (one address per set), and a call whose
// environment is wrong is refused with code 4 (invalid environment) before anything is allocated
// or wired.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { faultTable } from '../support/fault-table.ts';
import { CniNode, ips } from './harness.ts';

const table = faultTable('ferry-cni: range sets and environment checks (issue #12, defect 18)');

test('a range set [[A, B]] gives a pod one IPv4 address, from B once A is full', async (t) => {
  // A /29 has five usable addresses (network, the node's first host and broadcast are skipped).
  const n = new CniNode([
    [{ subnet: '10.244.1.0/29' }, { subnet: '10.244.2.0/29' }],
    [{ subnet: 'fd00:10:244:1::/64' }],
  ]);
  t.after(() => n.cleanup());
  const got: string[][] = [];
  for (let i = 0; i < 6; i++) {
    const add = await n.call('ADD', `set-${i}`, n.netns());
    assert.equal(add.code, 0, JSON.stringify(add.out));
    got.push(ips(add.out));
  }
  for (const [i, addrs] of got.entries()) {
    assert.equal(
      addrs.filter((a) => !a.includes(':')).length,
      1,
      `pod ${i}: one IPv4 address, got ${addrs.join(', ')}`,
    );
    assert.equal(addrs.filter((a) => a.includes(':')).length, 1, `pod ${i}: one IPv6 address`);
  }
  assert.equal(got[4]![0], '10.244.1.6/32');
  assert.equal(got[5]![0], '10.244.2.2/32', 'the second range of the set serves once the first is full');
  assert.equal(n.allocations().size, 12);
  table.row('ipam.ranges = [[A, B], [C6]]', 'one IPv4 (A first, then B) and one IPv6 address per pod');
});

test('a bad environment is code 4 before any allocation or wiring', async (t) => {
  const n = new CniNode();
  t.after(() => n.cleanup());
  const pod = n.netns();
  const env = (over: Record<string, string>): Record<string, string> => ({
    CNI_COMMAND: 'ADD',
    CNI_CONTAINERID: 'env-x',
    CNI_NETNS: pod,
    CNI_IFNAME: 'eth0',
    ...over,
  });
  const cases: [string, Record<string, string>][] = [
    ['CNI_IFNAME=eth.0', env({ CNI_IFNAME: 'eth.0' })],
    // Every namespace file is on nsfs: the plugin's own mount namespace is one, but not a netns.
    ['CNI_NETNS a mount namespace', env({ CNI_NETNS: '/proc/self/ns/mnt' })],
    ['CNI_NETNS a user namespace', env({ CNI_NETNS: '/proc/1/ns/user' })],
    ['CNI_CONTAINERID of 10,000 characters', env({ CNI_CONTAINERID: 'a'.repeat(10_000) })],
    ['CNI_CONTAINERID of 77 characters', env({ CNI_CONTAINERID: 'a'.repeat(77) })],
  ];
  for (const [name, e] of cases) {
    for (const command of ['ADD', 'CHECK']) {
      const r = await n.run({ ...e, CNI_COMMAND: command }, n.conf());
      assert.equal(r.code, 1, `${command} ${name}`);
      assert.equal(r.out!.code, 4, `${command} ${name}: ${JSON.stringify(r.out)}`);
      assert.match(
        String(r.out!.msg),
        /^CNI_(IFNAME|NETNS|CONTAINERID): /,
        `${name}: the message names the variable`,
      );
      assert.equal(n.allocations().size, 0, `${command} ${name}: nothing allocated`);
      assert.deepEqual(n.hostLinks(), [], `${command} ${name}: nothing wired`);
    }
    table.row(name, 'code 4 naming the variable; nothing allocated, nothing wired');
  }
  // The runtime's cleanup DEL after the refused ADD has nothing to undo, and must not fail (a
  // failing DEL is retried for ever); a name no kernel allows is still refused.
  const cleanup = await n.run(env({ CNI_COMMAND: 'DEL', CNI_IFNAME: 'eth.0' }), n.conf());
  assert.equal(cleanup.code, 0, JSON.stringify(cleanup.out));
  const impossible = await n.run(env({ CNI_COMMAND: 'DEL', CNI_IFNAME: 'eth:0' }), n.conf());
  assert.equal(impossible.out?.code, 4, JSON.stringify(impossible.out));
  table.row(
    'cleanup DEL with CNI_IFNAME=eth.0',
    'exit 0, nothing to undo (eth:0, which no kernel allows, is still code 4)',
  );

  // The limits are limits, not a ban: the longest accepted id works end to end.
  const longest = 'b'.repeat(76);
  const ok = await n.run(env({ CNI_CONTAINERID: longest }), n.conf());
  assert.equal(ok.code, 0, JSON.stringify(ok.out));
  assert.equal((await n.run(env({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: longest }), n.conf())).code, 0);
  assert.equal(n.allocations().size, 0);
});
