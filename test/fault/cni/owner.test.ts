// Issue #12 defect 16: a DEL for a container that does not own the pod's interface must never
// delete it. The runtime's sequence: a working pod (container A) in a netns, a second ADD into the
// same netns and ifname for container B fails, and the runtime's cleanup DEL for B follows.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { faultTable } from '../support/fault-table.ts';
import { CniNode, ips } from './harness.ts';
import { addForeignEth0 } from '../../support/cni-plugin.ts';

const table = faultTable('ferry-cni: interface ownership (issue #12, defect 16)');

test("a cleanup DEL after a failed ADD leaves the working pod's interface and addresses alone", async (t) => {
  const n = new CniNode();
  t.after(() => n.cleanup());
  const pod = n.netns();
  const a = await n.call('ADD', 'owner-a', pod);
  assert.equal(a.code, 0, JSON.stringify(a.out));
  const held = ips(a.out);

  const b = await n.call('ADD', 'intruder-b', pod);
  assert.equal(b.code, 1, 'a second ADD into the same netns/ifname fails');
  assert.equal(b.out!.code, 100, JSON.stringify(b.out));
  const cleanup = await n.call('DEL', 'intruder-b', pod);
  assert.equal(cleanup.code, 0, `the cleanup DEL itself succeeds: ${JSON.stringify(cleanup.out)}`);

  const link = n.podLink(pod);
  assert.ok(link, "the pod's eth0 survives B's DEL");
  assert.deepEqual([...link.addresses].sort(), [...held].sort(), 'with its addresses');
  assert.deepEqual(
    [...n.allocations().values()].sort(),
    ['owner-a/eth0', 'owner-a/eth0'],
    'still allocated to A, nothing for B',
  );
  assert.equal(n.hostLinks().length, 1);
  for (const address of held) assert.ok(n.ping(address), `${address} still reachable`);
  const check = await n.call('CHECK', 'owner-a', pod, { prevResult: a.out });
  assert.equal(check.code, 0, JSON.stringify(check.out));

  // A DEL naming the pod's netns for yet another container that never had an ADD at all.
  assert.equal((await n.call('DEL', 'stranger-c', pod)).code, 0);
  assert.ok(n.podLink(pod), 'a DEL for a container that never ADDed leaves it too');
  const wrongCheck = await n.call('CHECK', 'stranger-c', pod);
  assert.equal(wrongCheck.code, 1, 'CHECK for a non-owner fails');
  table.row(
    "cleanup DEL (container B) after B's ADD into A's netns failed",
    "exit 0; A's eth0, addresses, host veth and allocations untouched",
  );

  // The owner's DEL is the one that removes it, and frees its addresses.
  assert.equal((await n.call('DEL', 'owner-a', pod)).code, 0);
  assert.equal(n.podLink(pod), undefined, "A's DEL removes A's interface");
  assert.deepEqual(n.allocations().size, 0);
  assert.deepEqual(n.hostLinks(), []);
  table.row("owner's DEL", 'removes both veth ends and frees its addresses');
});

test('an interface a CNI ADD did not make (no owner tag) is never deleted by name', async (t) => {
  const n = new CniNode();
  t.after(() => n.cleanup());
  const pod = n.netns();
  // Someone else's eth0 in the pod (another plugin's): the host end for this container does not
  // exist, which is the case where DEL falls back to deleting the pod end by name.
  addForeignEth0(pod);
  assert.equal((await n.call('DEL', 'not-mine', pod)).code, 0);
  assert.ok(n.podLink(pod), 'eth0 survives');
  table.row(
    'DEL where the pod holds an untagged eth0',
    'exit 0; eth0 untouched (only an owner-tagged interface is removed)',
  );
});
