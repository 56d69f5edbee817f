// A file the agent rewrites on a timer (status, ready) fails the same way on every attempt when
// the disk is full: one log line per kind of failure, not one per attempt, and the current problem
// is kept for /healthz to list.
import type { Logger } from '../common/log.ts';

export class WriteProblem {
  readonly #log: Logger;
  #current: string | undefined;

  constructor(log: Logger) {
    this.#log = log;
  }

  get current(): string | undefined {
    return this.#current;
  }

  attempt(file: string, write: () => void): void {
    try {
      write();
      if (this.#current) this.#log.info({ file }, 'written again');
      this.#current = undefined;
    } catch (error) {
      const problem = `${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;
      if (problem !== this.#current) this.#log.error({ err: error }, `${problem}; still serving, retrying`);
      this.#current = problem;
    }
  }
}
