// What the datapath counts itself, read from the pinned maps at scrape time (per-reason counters,
// map fill, event delivery), so a scrape shows the kernel's numbers, not a copy that could drift.
// Kernel counters are monotonic: exposed as counters, re-read whole at each scrape.
import fs from 'node:fs';
import path from 'node:path';
import { Counter, Gauge, type Registry } from 'prom-client';
import { BpfMap } from '../datapath/bpf/index.ts';
import { SOCK_REASONS } from '../datapath/lb-codec.ts';
import { NP_STAT_NAMES } from '../datapath/nodeport/maps.ts';
import { pinnedCounters } from '../datapath/events/control.ts';
import { EVENT_COUNTERS } from '../datapath/events/codec.ts';

export interface DatapathMetricsDeps {
  readonly pinDir: string;
  /** Frontends and backends in the maps now. */
  readonly programmed: () => { readonly frontends: number; readonly backends: number };
}

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

const sockCounters = (pinDir: string): bigint[] | undefined =>
  pinnedArrayCounters(path.join(pinDir, 'ferry_sock_counters_v2'), SOCK_REASONS.length);
const nodeportCounters = (pinDir: string): bigint[] | undefined =>
  pinnedArrayCounters(path.join(pinDir, 'ferry_np_stats_v1'), NP_STAT_NAMES.length);

export function registerDatapathMetrics(registry: Registry, deps: DatapathMetricsDeps): void {
  registerFill(registry, deps);
  registerReasonCounters(registry, deps.pinDir);
  registerDrops(registry, deps.pinDir);
  registerEvents(registry, deps.pinDir);
}

function registerFill(registry: Registry, { pinDir, programmed }: DatapathMetricsDeps): void {
  const registers = [registry];
  new Gauge({
    name: 'ferry_programmed',
    help: 'Objects in the datapath maps now.',
    labelNames: ['kind'],
    registers,
    collect() {
      const p = programmed();
      this.set({ kind: 'frontends' }, p.frontends);
      this.set({ kind: 'backends' }, p.backends);
    },
  });
  const fill = (): ReturnType<typeof mapFill> => mapFill(pinDir);
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
}

function registerReasonCounters(registry: Registry, pinDir: string): void {
  const registers = [registry];
  new Counter({
    name: 'ferry_socket_lb_total',
    help: 'Socket-layer decisions by reason (translated, refused, dropped …), from ferry_sock_counters_v2.',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset();
      const v = sockCounters(pinDir);
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
      const v = nodeportCounters(pinDir);
      v?.forEach((n, i) => this.inc({ outcome: NP_STAT_NAMES[i]! }, Number(n)));
    },
  });
}

function registerDrops(registry: Registry, pinDir: string): void {
  const registers = [registry];
  new Counter({
    name: 'ferry_drops_total',
    help: 'Everything the datapath dropped or refused, by reason, socket layer and packet path together.',
    labelNames: ['path', 'reason'],
    registers,
    collect() {
      this.reset();
      const sock = sockCounters(pinDir);
      sock?.forEach((n, i) => {
        const r = SOCK_REASONS[i]!;
        if (/^(drop_|reject_|bind_refused)/.test(r)) this.inc({ path: 'socket', reason: r }, Number(n));
      });
      const np = nodeportCounters(pinDir);
      np?.forEach((n, i) => {
        const r = NP_STAT_NAMES[i]!;
        if (/^(drop_|reject_|ct_create_fail)/.test(r)) this.inc({ path: 'packet', reason: r }, Number(n));
      });
    },
  });
}

function registerEvents(registry: Registry, pinDir: string): void {
  const registers = [registry];
  new Counter({
    name: 'ferry_events_total',
    help: 'Flow events by delivery outcome (emitted, lost to a full ring, rate limited, sampled out, filtered), from ferry_events_counters_v1.',
    labelNames: ['outcome'],
    registers,
    collect() {
      this.reset();
      const c = pinnedCounters(pinDir);
      if (c)
        for (const name of EVENT_COUNTERS)
          this.inc({ outcome: name.replace(/[A-Z]/g, (ch) => `_${ch.toLowerCase()}`) }, Number(c[name]));
    },
  });
}
