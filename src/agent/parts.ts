// The agent is a short list of parts: each is started in order and registered here, and they are
// stopped in reverse, so nothing is stopped while a later part still uses it. A stop that fails
// is logged and the rest still run: a stuck listener must not keep the datapath maps open.
import type { Logger } from '../common/log.ts';

export interface Part {
  readonly name: string;
  stop(): Promise<void> | void;
}

export class Parts {
  readonly #log: Logger;
  readonly #started: Part[] = [];

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Registers a started part; returns it for chaining into a const. */
  add<T extends Part>(part: T): T {
    this.#started.push(part);
    return part;
  }

  /** Stops every registered part, newest first; each part is stopped once. */
  async stopAll(): Promise<void> {
    for (let part = this.#started.pop(); part; part = this.#started.pop()) {
      try {
        await part.stop();
      } catch (err) {
        this.#log.warn({ err, part: part.name }, 'stopping a part failed');
      }
    }
  }
}

/** A part made of a name and a stop function. */
export const part = (name: string, stop: () => Promise<void> | void): Part => ({ name, stop });
