// The agent's bounded memory of recent flows: a fixed-size ring (oldest overwritten) plus live
// subscribers for `--follow`. Memory is capacity × one Flow object, whatever the event rate.
import type { Flow } from './flow.ts';

export type FlowListener = (flow: Flow) => void;

export class RecentFlows {
  readonly capacity: number;
  readonly #ring: (Flow | undefined)[];
  #next = 0;
  #size = 0;
  #total = 0;
  readonly #listeners = new Set<FlowListener>();

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`RecentFlows: capacity ${capacity} is not a positive integer`);
    this.capacity = capacity;
    this.#ring = new Array<Flow | undefined>(capacity);
  }

  get size(): number {
    return this.#size;
  }

  /** Flows ever added (the ring keeps the last `capacity`). */
  get total(): number {
    return this.#total;
  }

  add(flow: Flow): void {
    this.#ring[this.#next] = flow;
    this.#next = (this.#next + 1) % this.capacity;
    if (this.#size < this.capacity) this.#size++;
    this.#total++;
    for (const l of this.#listeners) l(flow);
  }

  /** The last `n` flows that pass `keep`, oldest first. */
  last(n: number, keep: (f: Flow) => boolean = () => true): Flow[] {
    const out: Flow[] = [];
    for (let i = 1; i <= this.#size && out.length < n; i++) {
      const f = this.#ring[(this.#next - i + this.capacity) % this.capacity]!;
      if (keep(f)) out.push(f);
    }
    return out.reverse();
  }

  /** Calls `listener` for every flow added from now on; returns the unsubscribe function. */
  subscribe(listener: FlowListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
