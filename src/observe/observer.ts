// The agent's flow pipeline: the pinned ring buffer → decode → enrich (pods, Services, node) →
// the recent-flows ring → the local API. It also writes the events configuration the BPF side
// reads. An event from a network namespace not seen before waits (in order, bounded) for one
// directory scan, so the first connection of a new pod is already named.
import fs from 'node:fs';
import path from 'node:path';
import { BpfMap } from '../datapath/bpf/index.ts';
import { MappedRingReader } from '../datapath/events/ring-reader.ts';
import type { Logger } from '../common/log.ts';
import { decodeEvent, EVENTS_MAP, type EventsConfig, type RawEvent } from '../datapath/events/codec.ts';
import { EventsControl } from '../datapath/events/control.ts';
import { enrich, type Directory, type EnrichContext, type PodRef } from './flow.ts';
import { NetnsDirectory } from './netns.ts';
import { RecentFlows } from './recent.ts';
import { ObserveApiServer, API_SOCKET, type ObserveStatus } from './api.ts';
import { bootToEpochNs } from './clock.ts';

export const DEFAULT_FLOWS_BUFFER = 8192;
export const MAX_PENDING = 4096;
/** How long a lone event may sit in the ring before the agent reads it. */
export const DRAIN_MS = 50;

export interface ObserverOptions {
  readonly node: string;
  readonly pinDir: string;
  readonly runDir: string;
  readonly config: EventsConfig;
  readonly bufferSize?: number;
  readonly podByIp: (ip: string) => PodRef | undefined;
  readonly services: Pick<Directory, 'serviceById' | 'serviceByNodePort'>;
  readonly netnsDirs?: readonly string[];
  readonly log?: Logger;
}

export class FlowObserver implements AsyncDisposable {
  readonly flows: RecentFlows;
  readonly #control: EventsControl;
  readonly #ring: BpfMap;
  readonly #reader: MappedRingReader;
  readonly #netns: NetnsDirectory;
  readonly #ctx: EnrichContext;
  readonly #pending: RawEvent[] = [];
  readonly #log: Logger | undefined;
  #api: ObserveApiServer | undefined;
  #decodeErrors = 0;
  #prune: NodeJS.Timeout | undefined;

  private constructor(options: ObserverOptions, control: EventsControl, ring: BpfMap) {
    this.#control = control;
    this.#ring = ring;
    this.#log = options.log;
    this.flows = new RecentFlows(options.bufferSize ?? DEFAULT_FLOWS_BUFFER);
    this.#netns = new NetnsDirectory({ podByIp: options.podByIp, ...(options.netnsDirs ? { dirs: options.netnsDirs } : {}) });
    const netns = this.#netns;
    this.#ctx = {
      node: options.node,
      bootToEpochNs: bootToEpochNs(),
      directory: {
        podByIp: options.podByIp,
        netns: (inum) => netns.netns(inum),
        serviceById: (id) => options.services.serviceById(id),
        serviceByNodePort: (port, protocol) => options.services.serviceByNodePort(port, protocol),
      },
    };
    // The BPF side wakes us only per batch (FERRY_EVENTS_WAKEUP_BYTES): the timer picks up the rest.
    this.#reader = new MappedRingReader(ring, (record) => this.#onSample(record), { intervalMs: DRAIN_MS });
  }

  /** Configures the events maps under pinDir, starts reading the ring and serves the API. */
  static async start(options: ObserverOptions): Promise<FlowObserver> {
    const control = EventsControl.open(options.pinDir);
    let ring: BpfMap | undefined;
    try {
      control.configure(options.config);
      ring = BpfMap.openPinned(path.join(options.pinDir, EVENTS_MAP));
      const observer = new FlowObserver(options, control, ring);
      try {
        observer.#api = await ObserveApiServer.listen({
          socketPath: path.join(options.runDir, API_SOCKET),
          flows: observer.flows,
          status: () => observer.status(),
          counters: () => observer.#counters(),
        });
        observer.#prune = setInterval(() => observer.#netns.prune(), 30_000);
        observer.#prune.unref();
      } catch (error) {
        await observer.close();
        throw error;
      }
      return observer;
    } catch (error) {
      ring?.close();
      control.close();
      throw error;
    }
  }

  status(): ObserveStatus {
    return {
      node: this.#ctx.node,
      events: this.#counters(),
      buffer: { size: this.flows.size, capacity: this.flows.capacity, total: this.flows.total },
      reader: { received: this.#reader.received, decodeErrors: this.#decodeErrors, pending: this.#pending.length },
      clients: this.#api?.clients ?? 0,
    };
  }

  #counters(): ReturnType<EventsControl['counters']> | undefined {
    try {
      return this.#control.counters();
    } catch {
      return undefined;
    }
  }

  /** `data` is a view into the ring, valid during this call only: decodeEvent copies what it keeps. */
  #onSample(data: Buffer): void {
    let event: RawEvent;
    try {
      event = decodeEvent(data);
    } catch (error) {
      if (this.#decodeErrors++ === 0) this.#log?.warn({ err: error }, 'undecodable event');
      return;
    }
    if (this.#pending.length === 0 && !this.#netns.needsResolve(event.netnsInum)) {
      this.flows.add(enrich(event, this.#ctx));
      return;
    }
    if (this.#pending.length >= MAX_PENDING) this.#flushAll();
    this.#pending.push(event);
    if (this.#pending.length === 1) this.#drain();
  }

  /** Emits pending events in order, pausing at one whose namespace still needs a scan. */
  #drain(): void {
    while (this.#pending.length) {
      const head = this.#pending[0]!;
      if (this.#netns.needsResolve(head.netnsInum)) {
        const next = (): void => this.#drain();
        void this.#netns.resolve(head.netnsInum).then(next, next);
        return;
      }
      this.flows.add(enrich(this.#pending.shift()!, this.#ctx));
    }
  }

  /** Emits everything pending as it is (a scan that cannot keep up must not hold flows back). */
  #flushAll(): void {
    for (const e of this.#pending.splice(0)) this.flows.add(enrich(e, this.#ctx));
  }

  async close(): Promise<void> {
    clearInterval(this.#prune);
    await this.#api?.close();
    this.#reader.close();
    this.#ring.close();
    this.#control.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Whether the events maps exist under pinDir (an older datapath object has none). */
export function eventsPinned(pinDir: string): boolean {
  return fs.existsSync(path.join(pinDir, EVENTS_MAP));
}
