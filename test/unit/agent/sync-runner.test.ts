import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { SyncRunner, type SyncOutcome } from '../../../src/agent/sync-runner.ts';

const quiet = { minIntervalMs: 40, maxIntervalMs: 0, retryBaseMs: 10, maxBackoffMs: 40 };

test('a burst of requests collapses into one sync', async () => {
  let syncs = 0;
  const runner = new SyncRunner(async () => void syncs++, quiet);
  for (let i = 0; i < 100; i++) runner.request();
  await sleep(120);
  await runner.stop();
  assert.equal(syncs, 1);
});

test('a request during a sync runs one more sync after it, not a concurrent one', async () => {
  let active = 0;
  let maxActive = 0;
  let syncs = 0;
  const runner = new SyncRunner(async () => {
    active++;
    maxActive = Math.max(maxActive, active);
    syncs++;
    await sleep(30);
    active--;
  }, quiet);
  runner.request();
  await sleep(10);
  runner.request(); // lands while the first sync runs
  runner.request();
  await sleep(200);
  await runner.stop();
  assert.equal(maxActive, 1);
  assert.equal(syncs, 2);
});

test('a failed sync is retried with backoff until it succeeds', async () => {
  const outcomes: SyncOutcome[] = [];
  let calls = 0;
  const runner = new SyncRunner(
    async () => {
      calls++;
      if (calls < 3) throw new Error(`boom ${calls}`);
    },
    quiet,
    (o) => outcomes.push(o),
  );
  runner.request();
  await sleep(250);
  await runner.stop();
  assert.deepEqual(
    outcomes.map((o) => [o.ok, o.failures]),
    [
      [false, 1],
      [false, 2],
      [true, 0],
    ],
  );
});

test('the periodic sync runs with no request, and stop() ends it', async () => {
  let syncs = 0;
  const runner = new SyncRunner(async () => void syncs++, { ...quiet, maxIntervalMs: 20 });
  await runner.runNow();
  await sleep(110);
  await runner.stop();
  const seen = syncs;
  assert.ok(seen >= 3, `expected periodic syncs, saw ${seen}`);
  await sleep(60);
  assert.equal(syncs, seen, 'no sync after stop()');
});
