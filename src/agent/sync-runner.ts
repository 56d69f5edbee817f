// Drives the sync the way kube-proxy's BoundedFrequencyRunner (pkg/util/async) does: a burst of
// changes collapses into one sync, syncs are at least `minInterval` apart, a periodic sync runs at
// least every `maxInterval` (a safety net against a missed event), and a failed sync is retried with
// exponential backoff. One sync at a time: a request that arrives while one runs schedules the next.

export interface SyncRunnerOptions {
  /** Shortest time between the starts of two syncs (kube-proxy: --iptables-min-sync-period). */
  readonly minIntervalMs: number;
  /** Longest time without a sync; 0 disables the periodic sync. */
  readonly maxIntervalMs: number;
  /** First retry delay after a failure; doubles per consecutive failure up to maxBackoffMs. */
  readonly retryBaseMs: number;
  readonly maxBackoffMs: number;
}

export interface SyncOutcome {
  readonly ok: boolean;
  readonly durationMs: number;
  readonly error?: unknown;
  /** Consecutive failures including this one (0 after a success). */
  readonly failures: number;
}

export type SyncFn = () => Promise<void>;

/** A cancellable one-shot timer. */
export interface Timer {
  cancel(): void;
}

/**
 * Where the runner reads time and sets timers. Injected so tests drive the schedule with a fake
 * clock and assert on which syncs happen, instead of sleeping and hoping the machine is fast.
 */
export interface Clock {
  /** Monotonic milliseconds. */
  now(): number;
  setTimer(callback: () => void, delayMs: number): Timer;
}

export const REAL_CLOCK: Clock = {
  now: () => performance.now(),
  setTimer: (callback, delayMs) => {
    const timer = setTimeout(callback, delayMs);
    return { cancel: () => clearTimeout(timer) };
  },
};

export class SyncRunner {
  readonly #sync: SyncFn;
  readonly #options: SyncRunnerOptions;
  readonly #onOutcome: (outcome: SyncOutcome) => void;
  readonly #clock: Clock;
  #timer: Timer | undefined;
  #timerDue = Infinity;
  #running: Promise<void> | undefined;
  #pending = false;
  #lastStart = -Infinity;
  #failures = 0;
  #stopped = false;

  constructor(
    sync: SyncFn,
    options: SyncRunnerOptions,
    onOutcome: (outcome: SyncOutcome) => void = () => {},
    clock: Clock = REAL_CLOCK,
  ) {
    this.#sync = sync;
    this.#clock = clock;
    this.#options = options;
    this.#onOutcome = onOutcome;
  }

  /** Asks for a sync as soon as the minimum interval allows. Cheap; call it on every change. */
  request(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#pending = true;
      return;
    }
    this.#schedule(Math.max(0, this.#lastStart + this.#options.minIntervalMs - this.#clock.now()));
  }

  /** Runs a sync now (ignoring the minimum interval) and resolves when it has finished. */
  async runNow(): Promise<SyncOutcome> {
    if (this.#running) await this.#running;
    return this.#run();
  }

  /** Stops scheduling; resolves once a sync in flight has finished. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#clearTimer();
    if (this.#running) await this.#running;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    const due = this.#clock.now() + delayMs;
    if (this.#timer && this.#timerDue <= due) return; // an earlier sync is already planned
    this.#clearTimer();
    this.#timerDue = due;
    this.#timer = this.#clock.setTimer(() => {
      this.#timer = undefined;
      this.#timerDue = Infinity;
      void this.#run();
    }, delayMs);
  }

  #clearTimer(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#timerDue = Infinity;
  }

  async #run(): Promise<SyncOutcome> {
    this.#clearTimer();
    this.#pending = false;
    this.#lastStart = this.#clock.now();
    let outcome!: SyncOutcome;
    const run = (async (): Promise<void> => {
      try {
        await this.#sync();
        this.#failures = 0;
        outcome = { ok: true, durationMs: this.#clock.now() - this.#lastStart, failures: 0 };
      } catch (error) {
        this.#failures++;
        outcome = { ok: false, durationMs: this.#clock.now() - this.#lastStart, error, failures: this.#failures };
      }
    })();
    this.#running = run;
    await run;
    this.#running = undefined;
    this.#onOutcome(outcome);
    if (!outcome.ok) {
      const backoff = Math.min(
        this.#options.maxBackoffMs,
        this.#options.retryBaseMs * 2 ** Math.min(30, this.#failures - 1),
      );
      this.#schedule(backoff);
    } else if (this.#pending) {
      this.request();
    }
    if (this.#options.maxIntervalMs > 0) this.#schedule(this.#options.maxIntervalMs);
    return outcome;
  }
}
