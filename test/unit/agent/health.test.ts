// Health in kube-proxy's shape: not before the first sync; healthy while nothing waits too long.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { proxyHealth } from '../../../src/agent/health.ts';

const base = { now: 1_000_000, ready: true, lastUpdated: 990_000, pendingSince: undefined, timeoutMs: 60_000 };

test('unhealthy before the first sync, healthy after it with nothing pending', () => {
  assert.equal(proxyHealth({ ...base, ready: false, lastUpdated: undefined }).healthy, false);
  const ok = proxyHealth(base);
  assert.equal(ok.healthy, true);
  assert.deepEqual(ok.body, { lastUpdated: new Date(990_000).toISOString(), currentTime: new Date(1_000_000).toISOString(), nodeEligible: true });
});

test('an idle agent stays healthy however old its last sync; a change stuck past the timeout is not', () => {
  assert.equal(proxyHealth({ ...base, lastUpdated: 0 }).healthy, true);
  assert.equal(proxyHealth({ ...base, pendingSince: base.now - 59_000 }).healthy, true);
  const stuck = proxyHealth({ ...base, pendingSince: base.now - 61_000 });
  assert.equal(stuck.healthy, false);
  assert.equal(stuck.body.pendingForMs, 61_000);
  assert.match(stuck.body.reason ?? '', /waited 61000 ms/);
});

test('degraded is healthy and says what is missing; nothing degraded adds no field', () => {
  const degraded = proxyHealth({ ...base, degraded: ['10.96.0.1|80|TCP|internal: BPF map ferry_services_v1 is full'] });
  assert.equal(degraded.healthy, true);
  assert.deepEqual(degraded.body.degraded, ['10.96.0.1|80|TCP|internal: BPF map ferry_services_v1 is full']);
  assert.equal('degraded' in proxyHealth({ ...base, degraded: [] }).body, false);
});
