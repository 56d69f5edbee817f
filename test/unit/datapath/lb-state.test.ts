// The writer's parts share one state object: what publishing and collecting leave in memory must be
// exactly what adopting the maps rebuilds (a restarted agent sees the same frontends, ids and
// backends), and the maps must hold nothing the state does not account for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemoryMap } from '../../../src/datapath/codec/map.ts';
import { ServiceWriter } from '../../../src/datapath/service-writer.ts';
import { frontendKey, type Frontend } from '../../../src/model/frontend.ts';

const maps = (): { services: MemoryMap; backends: MemoryMap; revnat: MemoryMap; nodeports: MemoryMap } => ({
  services: new MemoryMap('ferry_services_v1'),
  backends: new MemoryMap('ferry_backends_v1'),
  revnat: new MemoryMap('ferry_revnat_v1'),
  nodeports: new MemoryMap('ferry_nodeports_v1'),
});

// Small pools, so frontends share addresses (one service id), backends (reference counts) and
// node ports (NodePort marks) across steps.
const frontendArb = fc
  .record({
    vip: fc.integer({ min: 1, max: 4 }),
    port: fc.constantFrom(80, 443),
    scope: fc.constantFrom('internal' as const, 'external' as const),
    kind: fc.constantFrom('ClusterIP' as const, 'NodePort' as const),
    action: fc.constantFrom('forward' as const, 'forward' as const, 'drop' as const, 'reject' as const),
    backends: fc.uniqueArray(fc.integer({ min: 1, max: 6 }), { maxLength: 4 }),
  })
  .map(({ vip, port, scope, kind, action, backends }): Frontend => {
    const address = kind === 'NodePort' ? '172.30.0.1' : `10.96.0.${vip}`;
    const frontPort = kind === 'NodePort' ? 30000 + vip : port;
    return {
      key: frontendKey(address, frontPort, 'TCP', scope),
      service: `default/s${vip}`,
      portName: '',
      kind,
      address,
      port: frontPort,
      protocol: 'TCP',
      scope,
      action,
      backends: backends.map((b) => ({
        address: `10.244.0.${b}`,
        port: 8080,
        protocol: 'TCP' as const,
        // A backend entry is shared by address, so its state and locality are the address's.
        state: b % 3 === 0 ? ('terminating' as const) : ('active' as const),
        nodeLocal: b % 2 === 0,
      })),
      affinityTimeoutSeconds: 0,
      sourceRanges: [],
      algorithm: 'random',
    };
  });

const stepArb = fc.record({ upsert: fc.array(frontendArb, { maxLength: 4 }), removeVips: fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 2 }) });

test('after any sequence of diffs, reading the maps back rebuilds the same state, and a reconcile to the same set changes nothing', () => {
  fc.assert(
    fc.property(fc.array(stepArb, { minLength: 1, maxLength: 8 }), (steps) => {
      const m = maps();
      const writer = new ServiceWriter(m);
      for (const step of steps) {
        const live = [...writer.programmed().keys()];
        const remove = step.removeVips.filter((i) => i < live.length).map((i) => ({ key: live[i]! }) as Frontend);
        const upsert = [...new Map(step.upsert.map((f) => [f.key, f])).values()];
        writer.apply({ upsert, remove: remove.filter((r) => !upsert.some((u) => u.key === r.key)) });
      }
      const adopted = new ServiceWriter(m);
      const found = adopted.readBack();
      assert.deepEqual(
        new Map(found.map((p) => [p.key, p])),
        new Map(writer.programmed()),
        'the same frontends, service ids and backend ids',
      );
      for (const p of found) for (const id of p.backendIds) assert.deepEqual(adopted.backend(id), writer.backend(id));
      const referenced = new Set(found.flatMap((p) => p.backendIds));
      assert.equal(m.backends.size, referenced.size, 'no backend entry outlives its last reference');
      const nodePorts = new Set(found.filter((p) => p.kind === 'NodePort').map((p) => p.port));
      assert.equal(m.nodeports.size, nodePorts.size, 'one NodePort mark per port in use');
      // What the first writer meant to program, reconstructed from its own view.
      const desired = [...writer.programmed().values()].map((p) => ({ key: p.key }));
      const again = adopted.reconcile(
        steps
          .flatMap((s) => s.upsert)
          .reverse()
          .filter((f, i, all) => desired.some((d) => d.key === f.key) && all.findIndex((g) => g.key === f.key) === i),
      );
      assert.equal(again.orphansRemoved, 0, 'nothing in the maps belonged to no frontend');
      assert.equal(again.upserted, 0, 'the adopted maps already hold every frontend as desired');
      assert.equal(again.removed, 0);
      assert.deepEqual(again.failed, []);
      assert.equal(m.nodeports.size, nodePorts.size, 'the adopted NodePort marks are still referenced');
      assert.equal(m.backends.size, referenced.size);
    }),
    { numRuns: 200 },
  );
});
