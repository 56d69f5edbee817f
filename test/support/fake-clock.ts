// A manual clock for code that takes a `Clock` (src/agent/sync-runner.ts): time moves only when a
// test calls advance(), so a test states "after 40 ms exactly one sync ran" without sleeping and
// without depending on how busy the machine is.
import { setImmediate as yieldTurn } from 'node:timers/promises';
import type { Clock, Timer } from '../../src/agent/sync-runner.ts';

interface Pending {
  readonly due: number;
  readonly seq: number;
  readonly callback: () => void;
}

export class FakeClock implements Clock {
  #now = 0;
  #seq = 0;
  readonly #pending = new Set<Pending>();

  now(): number {
    return this.#now;
  }

  setTimer(callback: () => void, delayMs: number): Timer {
    const entry: Pending = { due: this.#now + Math.max(0, delayMs), seq: this.#seq++, callback };
    this.#pending.add(entry);
    return { cancel: () => this.#pending.delete(entry) };
  }

  /** A promise for code under test that waits on this clock (a sync that takes time). */
  sleep(delayMs: number): Promise<void> {
    return new Promise((resolve) => this.setTimer(resolve, delayMs));
  }

  /** Timers not yet fired or cancelled. */
  get pendingTimers(): number {
    return this.#pending.size;
  }

  /**
   * Moves time forward by `ms`, firing each timer that falls due in order of its due time, and
   * lets the promise chains a timer starts settle before the next fires (a sync that resolves
   * schedules its successor from a microtask).
   */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    await settle();
    for (;;) {
      const next = this.#next(target);
      if (!next) break;
      this.#pending.delete(next);
      this.#now = next.due;
      next.callback();
      await settle();
    }
    this.#now = target;
  }

  #next(target: number): Pending | undefined {
    let best: Pending | undefined;
    for (const p of this.#pending) {
      if (p.due > target) continue;
      if (!best || p.due < best.due || (p.due === best.due && p.seq < best.seq)) best = p;
    }
    return best;
  }
}

// Microtasks drain before a macrotask turn; a few turns cover awaits that hop through I/O-free
// promise chains of any depth the runner uses.
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await yieldTurn();
}
