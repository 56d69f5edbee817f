// The agent's Prometheus metrics (prom-client, on a registry of its own). Sync figures are
// recorded as syncs happen; everything the datapath counts itself — per-reason counters, map fill,
// event delivery — is read from the pinned maps at scrape time, so a scrape shows the kernel's
// numbers, not a copy that could drift.
import fs from 'node:fs';
import path from 'node:path';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { BpfMap } from '../datapath/bpf/index.ts';
import { SOCK_REASONS } from '../datapath/lb-codec.ts';
import { NP_STAT_NAMES } from '../datapath/nodeport/maps.ts';
import { pinnedCounters } from '../datapath/events/control.ts';
import { EVENT_COUNTERS } from '../datapath/events/codec.ts';
import type { Flow } from '../observe/flow.ts';
import type { RecentFlows } from '../observe/recent.ts';
import type { SyncRecord } from './agent.ts';

// Map types whose fill means something (arrays are full by construction; ring buffers and prog
// arrays have no entries to count).
const BPF_MAP_TYPE_HASH = 1;
const BPF_MAP_TYPE_LRU_HASH = 9;
const BPF_MAP_TYPE_LPM_TRIE = 11;
const BPF_MAP_TYPE_HASH_OF_MAPS = 13;
const COUNTABLE = new Set([BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_LRU_HASH, BPF_MAP_TYPE_LPM_TRIE, BPF_MAP_TYPE_HASH_OF_MAPS]);

/** Each pinned hash-like map under pinDir: entries (walked) and capacity. */
export function mapFill(pinDir: string): { readonly map: string; readonly entries: number; readonly capacity: number }[] {
  const out: { map: string; entries: number; capacity: number }[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(pinDir).filter((n) => n.startsWith('ferry_'));
  } catch {
    return out;
  }
  for (const name of names.sort()) {
    let map: BpfMap;
    try {
      map = BpfMap.openPinned(path.join(pinDir, name));
    } catch {
      continue; // a link or program pin
    }
    try {
      if (!COUNTABLE.has(map.type)) continue;
      let entries = 0;
      for (const _ of map.keys()) entries++;
      out.push({ map: name, entries, capacity: map.maxEntries });
    } finally {
      map.close();
    }
  }
  return out;
}

/** Per-CPU u64 counters of a pinned array, summed; undefined when not pinned. */
function pinnedArrayCounters(file: string, n: number): bigint[] | undefined {
  let map: BpfMap;
  try {
    map = BpfMap.openPinned(file);
  } catch {
    return undefined;
  }
  try {
    const out: bigint[] = [];
    for (let i = 0; i < n; i++) {
      const key = Buffer.alloc(4);
      key.writeUInt32LE(i);
      out.push((map.lookupPerCpu(key) ?? []).reduce((a, b) => a + b.readBigUInt64LE(0), 0n));
    }
    return out;
  } finally {
    map.close();
  }
}

export interface AgentMetricsDeps {
  readonly pinDir: string;
  /** Frontends and backends in the maps now. */
  readonly programmed: () => { readonly frontends: number; readonly backends: number };
}

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
    new Gauge({
      name: 'ferry_programmed',
      help: 'Objects in the datapath maps now.',
      labelNames: ['kind'],
      registers,
      collect() {
        const p = deps.programmed();
        this.set({ kind: 'frontends' }, p.frontends);
        this.set({ kind: 'backends' }, p.backends);
      },
    });
    const fill = (): ReturnType<typeof mapFill> => mapFill(deps.pinDir);
    let lastFill: ReturnType<typeof mapFill> = [];
    new Gauge({
      name: 'ferry_map_entries',
      help: 'Entries in each pinned hash map.',
      labelNames: ['map'],
      registers,
      collect() {
        this.reset();
        lastFill = fill();
        for (const m of lastFill) this.set({ map: m.map }, m.entries);
      },
    });
    new Gauge({
      name: 'ferry_map_capacity',
      help: 'Capacity (max_entries) of each pinned hash map.',
      labelNames: ['map'],
      registers,
      collect() {
        this.reset();
        for (const m of lastFill.length ? lastFill : fill()) this.set({ map: m.map }, m.capacity);
      },
    });
    // Kernel counters are monotonic: exposed as counters, re-read whole at each scrape.
    new Counter({
      name: 'ferry_socket_lb_total',
      help: 'Socket-layer decisions by reason (translated, refused, dropped …), from ferry_sock_counters_v2.',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        const v = pinnedArrayCounters(path.join(deps.pinDir, 'ferry_sock_counters_v2'), SOCK_REASONS.length);
        v?.forEach((n, i) => this.inc({ reason: SOCK_REASONS[i]! }, Number(n)));
      },
    });
    new Counter({
      name: 'ferry_nodeport_packets_total',
      help: 'North-south packets by outcome (dnat, ct_hit, revnat, drop_* …), from ferry_np_stats_v1.',
      labelNames: ['outcome'],
      registers,
      collect() {
        this.reset();
        const v = pinnedArrayCounters(path.join(deps.pinDir, 'ferry_np_stats_v1'), NP_STAT_NAMES.length);
        v?.forEach((n, i) => this.inc({ outcome: NP_STAT_NAMES[i]! }, Number(n)));
      },
    });
    new Counter({
      name: 'ferry_drops_total',
      help: 'Everything the datapath dropped or refused, by reason, socket layer and packet path together.',
      labelNames: ['path', 'reason'],
      registers,
      collect() {
        this.reset();
        const sock = pinnedArrayCounters(path.join(deps.pinDir, 'ferry_sock_counters_v2'), SOCK_REASONS.length);
        sock?.forEach((n, i) => {
          const r = SOCK_REASONS[i]!;
          if (/^(drop_|reject_|bind_refused)/.test(r)) this.inc({ path: 'socket', reason: r }, Number(n));
        });
        const np = pinnedArrayCounters(path.join(deps.pinDir, 'ferry_np_stats_v1'), NP_STAT_NAMES.length);
        np?.forEach((n, i) => {
          const r = NP_STAT_NAMES[i]!;
          if (/^(drop_|reject_|ct_create_fail)/.test(r)) this.inc({ path: 'packet', reason: r }, Number(n));
        });
      },
    });
    new Counter({
      name: 'ferry_events_total',
      help: 'Flow events by delivery outcome (emitted, lost to a full ring, rate limited, sampled out, filtered), from ferry_events_counters_v1.',
      labelNames: ['outcome'],
      registers,
      collect() {
        this.reset();
        const c = pinnedCounters(deps.pinDir);
        if (c)
          for (const name of EVENT_COUNTERS)
            this.inc({ outcome: name.replace(/[A-Z]/g, (ch) => `_${ch.toLowerCase()}`) }, Number(c[name]));
      },
    });
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
