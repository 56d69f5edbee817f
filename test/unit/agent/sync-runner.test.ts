// The runner's schedule is driven by a FakeClock: each test moves time explicitly and asserts
// which syncs ran, so the outcome does not depend on the speed of a shared CI machine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SyncRunner, type SyncOutcome } from '../../../src/agent/sync-runner.ts';
import { FakeClock } from '../../support/fake-clock.ts';

const quiet = { minIntervalMs: 40, maxIntervalMs: 0, retryBaseMs: 10, maxBackoffMs: 40 };

test('a burst of requests collapses into one sync', async () => {
  const clock = new FakeClock();
  let syncs = 0;
  const runner = new SyncRunner(async () => void syncs++, quiet, undefined, clock);
  for (let i = 0; i < 100; i++) runner.request();
  await clock.advance(0);
  assert.equal(syncs, 1);
  await clock.advance(1_000);
  await runner.stop();
  assert.equal(syncs, 1);
});

test('requests are held to the minimum interval between sync starts', async () => {
  const clock = new FakeClock();
  let syncs = 0;
  const runner = new SyncRunner(async () => void syncs++, quiet, undefined, clock);
  await runner.runNow();
  runner.request();
  await clock.advance(quiet.minIntervalMs - 1);
  assert.equal(syncs, 1, 'no second sync inside the minimum interval');
  await clock.advance(1);
  assert.equal(syncs, 2);
  await runner.stop();
});

test('a request during a sync runs one more sync after it, not a concurrent one', async () => {
  const clock = new FakeClock();
  let active = 0;
  let maxActive = 0;
  let syncs = 0;
  const runner = new SyncRunner(
    async () => {
      active++;
      maxActive = Math.max(maxActive, active);
      syncs++;
      await clock.sleep(30);
      active--;
    },
    quiet,
    undefined,
    clock,
  );
  runner.request();
  await clock.advance(10);
  assert.equal(active, 1, 'the first sync is in flight');
  runner.request(); // lands while the first sync runs
  runner.request();
  await clock.advance(20);
  assert.equal(syncs, 1, 'the second sync waits for the first and the minimum interval');
  await clock.advance(1_000);
  await runner.stop();
  assert.equal(maxActive, 1);
  assert.equal(syncs, 2);
});

test('a failed sync is retried with exponential backoff until it succeeds', async () => {
  const clock = new FakeClock();
  const outcomes: SyncOutcome[] = [];
  const starts: number[] = [];
  const runner = new SyncRunner(
    async () => {
      starts.push(clock.now());
      if (starts.length < 3) throw new Error(`boom ${starts.length}`);
    },
    quiet,
    (o) => outcomes.push(o),
    clock,
  );
  runner.request();
  await clock.advance(1_000);
  await runner.stop();
  assert.deepEqual(
    outcomes.map((o) => [o.ok, o.failures]),
    [
      [false, 1],
      [false, 2],
      [true, 0],
    ],
  );
  // retryBaseMs after the first failure, twice that after the second.
  assert.deepEqual(starts, [0, quiet.retryBaseMs, 3 * quiet.retryBaseMs]);
});

test('the periodic sync runs with no request, and stop() ends it', async () => {
  const clock = new FakeClock();
  let syncs = 0;
  const runner = new SyncRunner(async () => void syncs++, { ...quiet, maxIntervalMs: 20 }, undefined, clock);
  await runner.runNow();
  await clock.advance(100);
  assert.equal(syncs, 6, 'one sync now and one every 20 ms');
  await runner.stop();
  assert.equal(clock.pendingTimers, 0, 'stop() leaves no timer behind');
  await clock.advance(100);
  assert.equal(syncs, 6, 'no sync after stop()');
});
