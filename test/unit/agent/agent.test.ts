import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, type DatapathResult, type DatapathWriter } from '../../../src/agent/agent.ts';
import { logger } from '../../../src/common/log.ts';
import type { Frontend, FrontendDiff } from '../../../src/model/frontend.ts';
import { ep, slice, svc } from '../model/fixtures.ts';

class FakeWriter implements DatapathWriter {
  calls: string[] = [];
  failNext = 0;
  programmed = new Map<string, Frontend>();
  readBack(): void {
    this.calls.push('readBack');
  }
  reconcile(desired: Iterable<Frontend>): DatapathResult {
    this.calls.push('reconcile');
    if (this.failNext-- > 0) return this.#fail();
    this.programmed = new Map([...desired].map((f) => [f.key, f]));
    return { upserted: this.programmed.size, removed: 0, failed: [], orphansRemoved: 0 };
  }
  apply(diff: FrontendDiff): DatapathResult {
    this.calls.push(`apply +${diff.upsert.length} -${diff.remove.length}`);
    if (this.failNext-- > 0) return this.#fail();
    for (const f of diff.remove) this.programmed.delete(f.key);
    for (const f of diff.upsert) this.programmed.set(f.key, f);
    return { upserted: diff.upsert.length, removed: diff.remove.length, failed: [], orphansRemoved: 0 };
  }
  #fail(): DatapathResult {
    return { upserted: 0, removed: 0, failed: [{ frontend: 'x', error: new Error('map full') }], orphansRemoved: 0 };
  }
}

const log = logger('test', {});
log.level = 'silent';

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 300 && !cond(); i++) await sleep(10);
  assert.ok(cond(), `timed out waiting for ${what}`);
}

test('start adopts the maps once, reconciles fully, then applies only diffs', async () => {
  const writer = new FakeWriter();
  const agent = new Agent({ nodeName: 'node-1', nodeAddresses: ['172.30.0.1'], writer, log, runner: { minIntervalMs: 5 } });
  const web = svc('web', {});
  agent.onChange({ kind: 'Service', previous: undefined, current: web });
  agent.onChange({ kind: 'EndpointSlice', previous: undefined, current: slice('web', 'web-a', [ep('10.244.1.10')]) });
  assert.deepEqual(writer.calls, [], 'nothing is written before start');
  await agent.start();
  assert.ok(agent.ready);
  assert.deepEqual(writer.calls, ['readBack', 'reconcile']);
  agent.onChange({ kind: 'EndpointSlice', previous: slice('web', 'web-a', [ep('10.244.1.10')]), current: slice('web', 'web-a', [ep('10.244.1.11')]) });
  await until(() => writer.calls.length === 3, 'incremental sync');
  assert.equal(writer.calls[2], 'apply +1 -0');
  assert.equal(agent.status().lastSync?.ok, true);
  assert.ok((agent.status().lastSync?.programmingLatencyMs ?? -1) >= 0);
  await agent.stop();
});

test('a failed sync is retried as a full sync until the maps match the model', async () => {
  const writer = new FakeWriter();
  const agent = new Agent({ nodeName: 'node-1', nodeAddresses: ['172.30.0.1'], writer, log, runner: { minIntervalMs: 5, retryBaseMs: 10 } });
  await agent.start();
  writer.failNext = 2;
  agent.onChange({ kind: 'Service', previous: undefined, current: svc('web', {}) });
  await until(() => agent.status().lastSync?.ok === true && writer.programmed.size === 1, 'recovery');
  assert.deepEqual(writer.calls.slice(2), ['apply +1 -0', 'reconcile', 'reconcile']);
  assert.equal(agent.status().failedSyncs, 2);
  await agent.stop();
});

test('an invalid object is reported in status and does not stop the others', async () => {
  const writer = new FakeWriter();
  const agent = new Agent({ nodeName: 'node-1', nodeAddresses: ['172.30.0.1'], writer, log, runner: { minIntervalMs: 5 } });
  agent.onChange({ kind: 'Service', previous: undefined, current: svc('good', { clusterIP: '10.96.0.1' }) });
  agent.onChange({ kind: 'Service', previous: undefined, current: svc('bad', { clusterIP: '10.96.0.2', ports: [{ port: -1 }] }) });
  await agent.start();
  assert.deepEqual([...writer.programmed.values()].map((f) => f.service), ['default/good']);
  assert.equal(agent.status().invalidObjects[0]?.object, 'Service default/bad');
  assert.equal(agent.status().invalidObjects[0]?.field, 'spec.ports[0].port');
  await agent.stop();
});

test('a first sync that cannot program one frontend makes the agent ready and degraded, naming it; a later success clears it', async () => {
  const writer = new FakeWriter();
  writer.failNext = 1;
  const agent = new Agent({ nodeName: 'node-1', nodeAddresses: ['172.30.0.1'], writer, log, runner: { minIntervalMs: 5, retryBaseMs: 5 } });
  agent.onChange({ kind: 'Service', previous: undefined, current: svc('web', {}) });
  let resolved = false;
  void agent.whenReady().then(() => (resolved = true));
  await agent.start();
  assert.ok(agent.ready, 'degraded is ready');
  await until(() => resolved, 'whenReady');
  assert.deepEqual(agent.status().degraded, ['x: map full']);
  assert.equal(agent.pendingSince(), undefined, 'a reported failure is not a pending change');
  await until(() => agent.status().degraded.length === 0, 'the retry succeeding');
  await agent.stop();
});

test('whenReady of an agent that never became ready keeps no timer alive', async () => {
  const writer = new FakeWriter();
  writer.readBack = () => {
    throw new Error('maps unreadable');
  };
  const agent = new Agent({ nodeName: 'node-1', writer, log, runner: { minIntervalMs: 5, retryBaseMs: 1000 } });
  void agent.whenReady();
  await agent.start();
  assert.equal(agent.ready, false);
  await agent.stop();
  // An active handle left by a readiness poll would keep the process from exiting on SIGTERM.
  const timers = process.getActiveResourcesInfo().filter((r) => r === 'Timeout');
  assert.deepEqual(timers, []);
});
