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

export class SyncRunner {
  readonly #sync: SyncFn;
  readonly #options: SyncRunnerOptions;
  readonly #onOutcome: (outcome: SyncOutcome) => void;
  #timer: NodeJS.Timeout | undefined;
  #timerDue = Infinity;
  #running: Promise<void> | undefined;
  #pending = false;
  #lastStart = -Infinity;
  #failures = 0;
  #stopped = false;

  constructor(sync: SyncFn, options: SyncRunnerOptions, onOutcome: (outcome: SyncOutcome) => void = () => {}) {
    this.#sync = sync;
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
    this.#schedule(Math.max(0, this.#lastStart + this.#options.minIntervalMs - performance.now()));
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
    const due = performance.now() + delayMs;
    if (this.#timer && this.#timerDue <= due) return; // an earlier sync is already planned
    this.#clearTimer();
    this.#timerDue = due;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerDue = Infinity;
      void this.#run();
    }, delayMs);
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerDue = Infinity;
  }

  async #run(): Promise<SyncOutcome> {
    this.#clearTimer();
    this.#pending = false;
    this.#lastStart = performance.now();
    let outcome!: SyncOutcome;
    const run = (async (): Promise<void> => {
      try {
        await this.#sync();
        this.#failures = 0;
        outcome = { ok: true, durationMs: performance.now() - this.#lastStart, failures: 0 };
      } catch (error) {
        this.#failures++;
        outcome = { ok: false, durationMs: performance.now() - this.#lastStart, error, failures: this.#failures };
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
