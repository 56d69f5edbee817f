// The agent's (and the CLI's) handle on the events maps that are not the ring itself: the
// configuration the BPF side reads on every event, and the per-CPU delivery counters. Both are
// pinned by name under the node's pin directory by whichever Ferry object loaded first.
import path from 'node:path';
import { BpfMap } from '../bpf/index.ts';
import {
  decodeEventsConfig,
  encodeEventsConfig,
  EVENT_COUNTERS,
  EVENTS_CONFIG_MAP,
  EVENTS_COUNTERS_MAP,
  sumPerCpu,
  type EventCounters,
  type EventsConfig,
} from './codec.ts';

const ZERO = Buffer.alloc(4);

export class EventsControl implements Disposable {
  readonly #config: BpfMap;
  readonly #counters: BpfMap;

  private constructor(config: BpfMap, counters: BpfMap) {
    this.#config = config;
    this.#counters = counters;
  }

  static open(pinDir: string): EventsControl {
    const config = BpfMap.openPinned(path.join(pinDir, EVENTS_CONFIG_MAP));
    try {
      return new EventsControl(config, BpfMap.openPinned(path.join(pinDir, EVENTS_COUNTERS_MAP)));
    } catch (error) {
      config.close();
      throw error;
    }
  }

  configure(config: EventsConfig): void {
    this.#config.update(ZERO, encodeEventsConfig(config));
  }

  config(): (EventsConfig & { readonly set: boolean }) | undefined {
    const raw = this.#config.lookup(ZERO);
    return raw ? decodeEventsConfig(raw) : undefined;
  }

  /** Sums over CPUs; every event the datapath wanted to emit is in exactly one counter. */
  counters(): EventCounters {
    return readCounters(this.#counters);
  }

  close(): void {
    this.#config.close();
    this.#counters.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

export function readCounters(map: BpfMap): EventCounters {
  const out: Record<string, number> = {};
  EVENT_COUNTERS.forEach((name, i) => {
    const key = Buffer.alloc(4);
    key.writeUInt32LE(i);
    out[name] = sumPerCpu(map.lookupPerCpu(key) ?? []);
  });
  return out as EventCounters;
}

/** The counters straight from the pins (`ferry status` with the agent down); undefined if not pinned. */
export function pinnedCounters(pinDir: string): EventCounters | undefined {
  let map: BpfMap;
  try {
    map = BpfMap.openPinned(path.join(pinDir, EVENTS_COUNTERS_MAP));
  } catch {
    return undefined;
  }
  try {
    return readCounters(map);
  } finally {
    map.close();
  }
}
