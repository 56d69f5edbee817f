// Waits for a condition that becomes true asynchronously (a map written by an agent in another
// process, a flow reaching a ring buffer) instead of sleeping a fixed time: it returns as soon as
// the check passes, and on timeout rethrows the check's last assertion error, so the failure says
// what was wrong rather than "timed out".
import { setTimeout as sleep } from 'node:timers/promises';

export interface EventuallyOptions {
  /** Give up after this long (default 10 s). */
  readonly timeoutMs?: number;
  /** Pause between attempts (default 50 ms). */
  readonly intervalMs?: number;
  /** Names the condition in the timeout error when the check returns false. */
  readonly what?: string;
}

/**
 * Runs `check` until it returns without throwing and does not return `false`; resolves with its
 * value. A check may assert (throw) or return a boolean.
 */
export async function eventually<T>(check: () => T | Promise<T>, options: EventuallyOptions = {}): Promise<Exclude<T, false>> {
  const { timeoutMs = 10_000, intervalMs = 50, what = 'condition' } = options;
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    let failure: unknown;
    try {
      const value = await check();
      if (value !== false) return value as Exclude<T, false>;
      failure = new Error(`${what} still false after ${timeoutMs} ms`);
    } catch (error) {
      failure = error;
    }
    if (performance.now() >= deadline) throw failure;
    await sleep(intervalMs);
  }
}
