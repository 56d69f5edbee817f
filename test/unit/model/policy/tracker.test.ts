// An invalid edit keeps the previous version in force and is reported by object and field; a
// fix clears the report; a delete lifts the isolation; a no-op update changes nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PolicyTracker } from '../../../../src/model/policy/tracker.ts';
import { evaluate } from '../../../../src/model/policy/evaluate.ts';
import { e2eCluster, policy } from './fixtures.ts';

const allowY = policy('x', 'web', {
  podSelector: {},
  ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }],
});
const broken = policy('x', 'web', {
  podSelector: {},
  ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/16', except: ['10.1.0.0/24'] } }] }],
});
const fromY = (t: PolicyTracker): boolean =>
  evaluate(e2eCluster(t.policies()), { src: '10.244.2.1', dst: '10.244.1.1', protocol: 'TCP', port: 80 })
    .allowed;
const fromZ = (t: PolicyTracker): boolean =>
  evaluate(e2eCluster(t.policies()), { src: '10.244.3.1', dst: '10.244.1.1', protocol: 'TCP', port: 80 })
    .allowed;

test('an invalid edit keeps the previous version in force, reported by object and field', () => {
  const t = new PolicyTracker();
  assert.equal(t.update(undefined, allowY), true);
  assert.deepEqual([fromY(t), fromZ(t)], [true, false]);
  assert.equal(t.update(allowY, broken), false);
  assert.deepEqual([fromY(t), fromZ(t)], [true, false], 'the valid version still decides');
  assert.deepEqual(
    t.errors().map((e) => e.message),
    [
      'NetworkPolicy x/web: spec.ingress[0].from[0].ipBlock.except[0]: "10.1.0.0/24" must be a strict subset of `cidr` (10.0.0.0/16)',
    ],
  );
  const fixed = policy('x', 'web', {
    podSelector: {},
    ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'z' } } }] }],
  });
  assert.equal(t.update(broken, fixed), true);
  assert.deepEqual([fromY(t), fromZ(t)], [false, true]);
  assert.deepEqual(t.errors(), []);
});

test('a no-op update changes nothing; a delete lifts the isolation and the report', () => {
  const t = new PolicyTracker();
  t.update(undefined, allowY);
  assert.equal(
    t.update(allowY, { ...allowY, metadata: { ...allowY.metadata, resourceVersion: '7' } }),
    false,
  );
  t.update(allowY, broken);
  assert.equal(t.update(broken, undefined), true);
  assert.deepEqual(t.policies(), []);
  assert.deepEqual(t.errors(), []);
  assert.equal(fromZ(t), true);
  assert.equal(t.update(undefined, allowY), true);
  assert.equal(t.update(allowY, undefined), true);
  assert.equal(t.update(allowY, undefined), false, 'deleting what is not held changes nothing');
});
