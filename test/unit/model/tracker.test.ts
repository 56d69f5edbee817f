import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ServiceModel } from '../../../src/model/index.ts';
import { ep, slice, svc } from './fixtures.ts';

function model(): ServiceModel {
  return new ServiceModel({ nodeName: 'node-1', nodeAddresses: ['172.30.0.1'] });
}

test('no-op updates (same content, new resourceVersion) record nothing', () => {
  const m = model();
  const s1 = svc('web', {});
  m.apply({ kind: 'Service', previous: undefined, current: s1 });
  m.sync();
  const s2 = { ...s1, metadata: { ...s1.metadata, resourceVersion: '42' } };
  assert.equal(m.apply({ kind: 'Service', previous: s1, current: s2 }), false);
  assert.equal(m.pending, 0);
  const { diff, changedServices } = m.sync();
  assert.deepEqual([diff, changedServices], [{ upsert: [], remove: [] }, []]);
});

test('one endpoint change recomputes one service and yields a minimal diff', () => {
  const m = model();
  for (let i = 0; i < 50; i++) {
    m.apply({ kind: 'Service', previous: undefined, current: svc(`s${i}`, { clusterIP: `10.96.1.${i}` }) });
    m.apply({ kind: 'EndpointSlice', previous: undefined, current: slice(`s${i}`, `s${i}-a`, [ep(`10.244.1.${i}`)]) });
  }
  const first = m.sync();
  assert.equal(first.full, true);
  assert.equal(first.diff.upsert.length, 50);
  const before = slice('s7', 's7-a', [ep('10.244.1.7')]);
  const after = slice('s7', 's7-a', [ep('10.244.1.7'), ep('10.244.2.7', 'node-2')]);
  m.apply({ kind: 'EndpointSlice', previous: before, current: after });
  const second = m.sync();
  assert.deepEqual(second.changedServices, ['default/s7']);
  assert.equal(second.full, false);
  assert.deepEqual(second.diff.remove, []);
  assert.equal(second.diff.upsert.length, 1);
  assert.deepEqual(second.diff.upsert[0]!.backends.map((b) => b.address), ['10.244.1.7', '10.244.2.7']);
});

test('deleting a service removes its frontends; deleting its last slice turns it into REJECT', () => {
  const m = model();
  const a = svc('a', { clusterIP: '10.96.0.1' });
  const b = svc('b', { clusterIP: '10.96.0.2' });
  const sb = slice('b', 'b-a', [ep('10.244.1.2')]);
  m.apply({ kind: 'Service', previous: undefined, current: a });
  m.apply({ kind: 'Service', previous: undefined, current: b });
  m.apply({ kind: 'EndpointSlice', previous: undefined, current: sb });
  m.sync();
  m.apply({ kind: 'Service', previous: a, current: undefined });
  m.apply({ kind: 'EndpointSlice', previous: sb, current: undefined });
  const { diff } = m.sync();
  assert.deepEqual(diff.remove.map((f) => f.address), ['10.96.0.1']);
  assert.deepEqual(diff.upsert.map((f) => [f.address, f.action]), [['10.96.0.2', 'reject']]);
});

test('a change of the own Node (address) makes the next sync full; other nodes do not matter', () => {
  const m = new ServiceModel({ nodeName: 'node-1' });
  m.apply({ kind: 'Service', previous: undefined, current: svc('np', { type: 'NodePort', ports: [{ port: 80, nodePort: 30080 }] }) });
  m.sync();
  assert.equal(m.apply({ kind: 'Node', previous: undefined, current: { metadata: { name: 'node-2' }, status: { addresses: [{ type: 'InternalIP', address: '172.30.0.2' }] } } }), false);
  assert.equal(m.apply({ kind: 'Node', previous: undefined, current: { metadata: { name: 'node-1' }, status: { addresses: [{ type: 'InternalIP', address: '172.30.0.1' }] } } }), true);
  const { full, diff } = m.sync();
  assert.equal(full, true);
  assert.deepEqual(diff.upsert.filter((f) => f.kind === 'NodePort').map((f) => `${f.address}:${f.port}/${f.scope}`).sort(), [
    '172.30.0.1:30080/external',
    '172.30.0.1:30080/internal',
  ]);
});

test('two services claiming one frontend: the first keeps it, the second is warned about', () => {
  const m = model();
  m.apply({ kind: 'Service', previous: undefined, current: svc('a', { clusterIP: '10.96.0.1' }) });
  m.apply({ kind: 'Service', previous: undefined, current: svc('b', { clusterIP: '10.96.0.1' }) });
  const { diff, warnings } = m.sync();
  assert.deepEqual(diff.upsert.map((f) => f.service), ['default/a']);
  assert.match(warnings.join('\n'), /default\/b: frontend 10.96.0.1:80\/TCP \(internal\) already belongs to default\/a/);
});

test('synced gate: nothing is programmed until every awaited source has listed, then all at once', () => {
  const m = new ServiceModel({ nodeName: 'node-1', nodeAddresses: ['172.30.0.1'], awaitSources: ['Service', 'EndpointSlice'] });
  m.apply({ kind: 'Service', previous: undefined, current: svc('web', { clusterIP: '10.96.0.5' }) });
  // Services listed, slices not yet: programming now would turn web into REJECT for a moment.
  m.sourceSynced('Service');
  assert.equal(m.synced, false);
  assert.deepEqual(m.sync().diff, { upsert: [], remove: [] });
  assert.equal(m.table().frontends.size, 0);
  m.apply({ kind: 'EndpointSlice', previous: undefined, current: slice('web', 'web-a', [ep('10.244.1.5')]) });
  m.sourceSynced('EndpointSlice');
  assert.equal(m.synced, true);
  const { diff, full } = m.sync();
  assert.equal(full, true);
  assert.deepEqual(diff.upsert.map((f) => [f.address, f.action, f.backends.map((b) => b.address)]), [['10.96.0.5', 'forward', ['10.244.1.5']]]);
});

test('a frontend two Services define passes to the survivor when its owner is deleted', () => {
  const m = model();
  const a = svc('a', { clusterIP: '10.96.0.10', externalIPs: ['192.0.2.10'] });
  const b = svc('b', { clusterIP: '10.96.0.11', externalIPs: ['192.0.2.10'] });
  m.apply({ kind: 'Service', previous: undefined, current: a });
  m.apply({ kind: 'Service', previous: undefined, current: b });
  const first = m.sync();
  assert.ok(first.warnings.some((w) => w.includes('192.0.2.10') && w.includes('default/a')));
  m.apply({ kind: 'Service', previous: a, current: undefined });
  const { diff } = m.sync();
  const shared = [...m.table().frontends.values()].filter((f) => f.address === '192.0.2.10');
  assert.ok(shared.length > 0, 'b serves the shared externalIP');
  assert.ok(diff.upsert.some((f) => f.address === '192.0.2.10'), 'the hand-over is in the diff');
  assert.ok(!diff.remove.some((f) => f.address === '192.0.2.10'));
});
