// Property test of ferry-cni (issue #12, "What it must show"): random batches of concurrent ADD,
// DEL, CHECK and GC calls, by real bin/ferry-cni processes, for a handful of containers that share
// fewer pod netns than there are containers (so ADDs collide on a netns's eth0, as a restarted
// sandbox does). Two runtime behaviours: one sends a cleanup DEL right after a failed ADD (what
// containerd and CRI-O do), one does not. After every batch, against a model of what succeeded:
//   - no address is allocated twice, on disk or on the pods' interfaces;
//   - nothing is leaked: every allocation and every host veth belongs to a live container, and a
//     netns without a live owner has no eth0;
//   - an interface is only removed by its owner's DEL (or by a GC that no longer lists its owner):
//     every live container's eth0 is there, tagged with it, holding its addresses.
// FERRY_PROPERTY_RUNS sets the number of runs (default 12: some 15 s on a busy machine).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { faultTable } from '../support/fault-table.ts';
import { CniNode, ips, type PluginRun } from './harness.ts';

const table = faultTable('ferry-cni: property test (issue #12)');
const RUNS = Number(process.env.FERRY_PROPERTY_RUNS ?? 12);
const CONTAINERS = 4;
const PODS = 3;

type Op =
  | { readonly kind: 'ADD'; readonly c: number; readonly cleanupOnFail: boolean }
  | { readonly kind: 'DEL'; readonly c: number }
  | { readonly kind: 'CHECK'; readonly c: number }
  | { readonly kind: 'GC' };

const container = fc.integer({ min: 0, max: CONTAINERS - 1 });
const perContainerOp: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('ADD' as const), c: container, cleanupOnFail: fc.boolean() }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('DEL' as const), c: container }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('CHECK' as const), c: container }) },
);
// A batch runs concurrently: one call per container at a time (a runtime serialises its own calls
// for one container), and GC alone, as a runtime issues it with its list of live attachments.
const batch: fc.Arbitrary<readonly Op[]> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.uniqueArray(perContainerOp, {
      minLength: 1,
      maxLength: 3,
      selector: (o) => (o as { c: number }).c,
    }),
  },
  { weight: 1, arbitrary: fc.constant([{ kind: 'GC' } as const]) },
);
const scenario = fc.record({
  podOf: fc.array(fc.integer({ min: 0, max: PODS - 1 }), { minLength: CONTAINERS, maxLength: CONTAINERS }),
  batches: fc.array(batch, { minLength: 1, maxLength: 8 }),
});

const id = (c: number): string => `prop-c${c}`;
const strip = (cidr: string): string => cidr.split('/')[0]!;

interface Live {
  readonly ips: readonly string[];
  readonly result: Record<string, unknown>;
}

function assertInvariants(
  n: CniNode,
  pods: readonly string[],
  podOf: readonly number[],
  live: ReadonlyMap<number, Live>,
  when: string,
): void {
  // No address twice, none leaked: the disk holds exactly the live containers' addresses.
  const disk = n.allocations();
  const want = new Map<string, string>();
  for (const [c, l] of live)
    for (const a of l.ips) {
      assert.ok(!want.has(strip(a)), `${when}: ${strip(a)} handed to ${id(c)} and ${want.get(strip(a))}`);
      want.set(strip(a), `${id(c)}/eth0`);
    }
  assert.deepEqual(new Map([...disk].sort()), new Map([...want].sort()), `${when}: allocations on disk`);
  assert.equal(n.hostLinks().length, live.size, `${when}: one host veth per live container`);
  // Only the owner removes an interface: each live container's eth0 is there and is its own.
  const ownerOf = new Map<number, number>();
  for (const [c] of live) {
    assert.ok(!ownerOf.has(podOf[c]!), `${when}: two live containers in pod ${podOf[c]}`);
    ownerOf.set(podOf[c]!, c);
  }
  for (const [p, netns] of pods.entries()) {
    const link = n.podLink(netns);
    const c = ownerOf.get(p);
    if (c === undefined) {
      assert.equal(
        link,
        undefined,
        `${when}: pod ${p} has no live owner but an eth0 (${JSON.stringify(link)})`,
      );
      continue;
    }
    assert.ok(link, `${when}: ${id(c)}'s eth0 in pod ${p} is gone`);
    assert.equal(link.owner, `ferry-cni:${id(c)}`, `${when}: pod ${p}'s eth0 owner`);
    assert.deepEqual(
      [...link.addresses].sort(),
      [...live.get(c)!.ips].sort(),
      `${when}: ${id(c)}'s addresses`,
    );
  }
}

let calls = 0;

async function runScenario(podOf: readonly number[], batches: readonly (readonly Op[])[]): Promise<void> {
  const n = new CniNode();
  try {
    const pods = Array.from({ length: PODS }, () => n.netns());
    const live = new Map<number, Live>();
    for (const [b, ops] of batches.entries()) {
      const before = new Map(live);
      const touched = (p: number): number => ops.filter((o) => o.kind !== 'GC' && podOf[o.c] === p).length;
      const results = await Promise.all(
        ops.map(async (op): Promise<[Op, PluginRun, PluginRun | undefined]> => {
          if (op.kind === 'GC') {
            const valid = [...before.keys()].map((c) => ({ containerID: id(c), ifname: 'eth0' }));
            calls++;
            return [
              op,
              await n.run({ CNI_COMMAND: 'GC' }, n.conf({ 'cni.dev/valid-attachments': valid })),
              undefined,
            ];
          }
          const netns = pods[podOf[op.c]!]!;
          if (op.kind === 'CHECK') {
            const prev = before.get(op.c);
            calls++;
            return [
              op,
              await n.call('CHECK', id(op.c), netns, prev ? { prevResult: prev.result } : {}),
              undefined,
            ];
          }
          const r = await n.call(op.kind, id(op.c), netns);
          const cleanup =
            op.kind === 'ADD' && r.code !== 0 && op.cleanupOnFail
              ? await n.call('DEL', id(op.c), netns)
              : undefined;
          calls += cleanup ? 2 : 1;
          return [op, r, cleanup];
        }),
      );
      for (const [op, r, cleanup] of results) {
        const what = `batch ${b} ${op.kind}${op.kind === 'GC' ? '' : ` ${id(op.c)}`}`;
        switch (op.kind) {
          case 'GC':
            assert.equal(r.code, 0, `${what}: ${JSON.stringify(r.out)}`);
            break;
          case 'DEL':
            assert.equal(r.code, 0, `${what}: ${JSON.stringify(r.out)}`);
            live.delete(op.c);
            break;
          case 'CHECK':
            // Whatever else runs meanwhile, a live container's CHECK passes and a dead one's fails.
            assert.equal(r.code, before.has(op.c) ? 0 : 1, `${what}: ${JSON.stringify(r.out)}`);
            break;
          case 'ADD': {
            const p = podOf[op.c]!;
            const podFree = ![...before.keys()].some((c) => podOf[c] === p);
            if (r.code === 0) {
              assert.ok(!before.has(op.c), `${what}: a second ADD of a live container succeeded`);
              live.set(op.c, { ips: ips(r.out), result: r.out! });
            } else {
              // The only reason an ADD may fail here: the container or the netns's eth0 is taken.
              assert.equal(r.out!.code, 100, `${what}: ${JSON.stringify(r.out)}`);
              // An uncontended ADD of a new container into a free netns must succeed.
              assert.ok(
                before.has(op.c) || !podFree || touched(p) > 1,
                `${what}: failed uncontended: ${JSON.stringify(r.out)}`,
              );
              if (cleanup) {
                assert.equal(cleanup.code, 0, `${what}: cleanup DEL: ${JSON.stringify(cleanup.out)}`);
                live.delete(op.c); // the runtime's DEL for it: it is gone, and only its own interface went with it
              }
            }
            break;
          }
        }
      }
      assertInvariants(n, pods, podOf, live, `after batch ${b}`);
    }
    // Everything the runtime still knows is DELeted: nothing may be left behind.
    const dels = await Promise.all([...live.keys()].map((c) => n.call('DEL', id(c), pods[podOf[c]!]!)));
    for (const d of dels) assert.equal(d.code, 0, JSON.stringify(d.out));
    assertInvariants(n, pods, podOf, new Map(), 'after the final DELs');
  } finally {
    n.cleanup();
  }
}

test('concurrent ADD/DEL/CHECK/GC: no address twice, none leaked, interfaces removed only by their owner', async () => {
  await fc.assert(
    fc.asyncProperty(scenario, async ({ podOf, batches }) => runScenario(podOf, batches)),
    { numRuns: RUNS },
  );
  assert.ok(calls > 0);
  table.row(
    `${RUNS} random runs (${calls} concurrent calls, ${CONTAINERS} containers in ${PODS} netns)`,
    'no address twice, no leak, no interface removed by a non-owner',
  );
});
