// How the agent runs flow observation: builds the directory (pods by address from the model's
// EndpointSlices and, standalone, the manifest Pods; Services by id from the writer and the model)
// and starts the FlowObserver. Events are an aid, not the datapath: if they cannot start (an
// older pinned object without the events maps), the agent logs it and carries on.
import type { RecentFlows } from '../observe/recent.ts';
import type { Logger } from '../common/log.ts';
import type { Frontend } from '../model/frontend.ts';
import type { Pod } from '../model/k8s.ts';
import type { ModelChange } from '../model/service-model.ts';
import type { ProgrammedFrontend } from '../datapath/service-writer.ts';
import type { EventsConfig } from '../datapath/events/codec.ts';
import { FlowObserver, eventsPinned, DEFAULT_FLOWS_BUFFER } from '../observe/observer.ts';
import { PodIndex } from '../observe/pods.ts';
import { ServiceIndex } from '../observe/services.ts';

export interface AgentEventsOptions {
  readonly enabled: boolean;
  /** Per-CPU events per second (0 = unlimited). */
  readonly rate: number;
  readonly burst: number;
  /** One in N translations/forwards (drops are never sampled). */
  readonly sample: number;
  /** Flows the agent keeps for `ferry observe --last`. */
  readonly buffer: number;
}

export const DEFAULT_EVENTS: AgentEventsOptions = { enabled: true, rate: 20000, burst: 20000, sample: 1, buffer: DEFAULT_FLOWS_BUFFER };

export function eventsConfig(o: AgentEventsOptions): EventsConfig {
  return {
    verdicts: o.enabled ? ['TRANSLATED', 'FORWARDED', 'DROPPED', 'REJECTED'] : [],
    sampleEvery: o.sample,
    ratePerSec: o.rate,
    burst: o.burst,
  };
}

export interface AgentObserverDeps {
  readonly node: string;
  readonly pinDir: string;
  readonly runDir: string;
  readonly events: AgentEventsOptions;
  readonly programmed: () => ReadonlyMap<string, ProgrammedFrontend>;
  readonly frontends: () => ReadonlyMap<string, Frontend>;
  /** Standalone: every Pod of the manifests; Kubernetes: none (EndpointSlices name the backends). */
  readonly pods: () => readonly Pod[];
  readonly log: Logger;
}

export interface AgentObserver {
  onChange(change: ModelChange): void;
  close(): Promise<void>;
  /** The recent-flows buffer (absent when observation is off): metrics count flows from it. */
  readonly flows?: RecentFlows;
}

export async function startAgentObserver(deps: AgentObserverDeps): Promise<AgentObserver> {
  const pods = new PodIndex(deps.pods);
  const services = new ServiceIndex({ programmed: deps.programmed, frontends: deps.frontends });
  let observer: FlowObserver | undefined;
  if (!eventsPinned(deps.pinDir)) {
    deps.log.warn({ pinDir: deps.pinDir }, 'no events ring buffer pinned: flow observation off');
  } else {
    try {
      observer = await FlowObserver.start({
        node: deps.node,
        pinDir: deps.pinDir,
        runDir: deps.runDir,
        config: eventsConfig(deps.events),
        bufferSize: deps.events.buffer,
        podByIp: (ip) => pods.podByIp(ip),
        services,
        log: deps.log,
      });
      deps.log.info({ events: deps.events }, 'flow observation started');
    } catch (err) {
      deps.log.warn({ err }, 'flow observation could not start; the datapath is unaffected');
    }
  }
  return {
    ...(observer ? { flows: observer.flows } : {}),
    onChange: (change) => pods.onChange(change),
    close: async () => {
      await observer?.close();
    },
  };
}
