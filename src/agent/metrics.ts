// The agent's Prometheus metrics (prom-client, on a registry of its own). Sync figures are
// recorded as syncs happen; everything the datapath counts itself is read from the pinned maps at
// scrape time (datapath-metrics.ts).
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Flow } from '../observe/flow.ts';
import type { RecentFlows } from '../observe/recent.ts';
import type { SyncRecord } from './agent.ts';
import { registerDatapathMetrics, type DatapathMetricsDeps } from './datapath-metrics.ts';


export type AgentMetricsDeps = DatapathMetricsDeps;

export class AgentMetrics {
  readonly registry = new Registry();
  readonly #syncDuration: Histogram;
  readonly #programming: Histogram;
  readonly #syncs: Counter<'result'>;
  readonly #lastSync: Gauge;
  readonly #gcRuns: Counter;
  readonly #gcRemoved: Counter<'table'>;
  readonly #flows: Counter<'service' | 'verdict'>;
  #unsubscribe: (() => void) | undefined;

  constructor(deps: AgentMetricsDeps) {
    const registers = [this.registry];
    this.#syncDuration = new Histogram({
      name: 'ferry_sync_duration_seconds',
      help: 'Time one sync took: model diff plus map writes.',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.#programming = new Histogram({
      name: 'ferry_network_programming_duration_seconds',
      help: "From a change (an EndpointSlice's last-change-trigger-time, else when the source saw it) to the datapath holding it; kube-proxy's network_programming_duration_seconds.",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.#syncs = new Counter({ name: 'ferry_syncs_total', help: 'Syncs by result.', labelNames: ['result'], registers });
    this.#lastSync = new Gauge({
      name: 'ferry_last_successful_sync_timestamp_seconds',
      help: 'When the datapath was last brought in step with the model.',
      registers,
    });
    this.#gcRuns = new Counter({ name: 'ferry_conntrack_gc_runs_total', help: 'Conntrack garbage-collection sweeps.', registers });
    this.#gcRemoved = new Counter({
      name: 'ferry_conntrack_gc_removed_total',
      help: 'Expired entries removed by the sweeps.',
      labelNames: ['table'],
      registers,
    });
    this.#flows = new Counter({
      name: 'ferry_flows_total',
      help: 'Flow events the agent received, by Service and verdict (after the datapath sampling and rate limit: see ferry_events_total).',
      labelNames: ['service', 'verdict'],
      registers,
    });
    registerDatapathMetrics(this.registry, deps);
  }

  onSync(record: SyncRecord): void {
    this.#syncs.inc({ result: record.ok ? 'ok' : 'failed' });
    if (!record.ok) return;
    this.#syncDuration.observe(record.durationMs / 1000);
    if (record.programmingLatencyMs !== undefined) this.#programming.observe(record.programmingLatencyMs / 1000);
    this.#lastSync.set(record.at / 1000);
  }

  onConntrackGc(removed: { readonly removedCt: number; readonly removedNat: number }): void {
    this.#gcRuns.inc();
    this.#gcRemoved.inc({ table: 'ct' }, removed.removedCt);
    this.#gcRemoved.inc({ table: 'nat' }, removed.removedNat);
  }

  /** Counts every flow the observer receives from now on. */
  countFlows(flows: RecentFlows): void {
    this.#unsubscribe?.();
    this.#unsubscribe = flows.subscribe((f: Flow) => {
      const service = f.service?.name ? `${f.service.namespace}/${f.service.name}` : '';
      this.#flows.inc({ service, verdict: f.verdict });
    });
  }

  close(): void {
    this.#unsubscribe?.();
  }
}
