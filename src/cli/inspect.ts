// Reading a node's datapath for the CLI: straight from the pinned maps and the agent's status
// file, so it works with the agent down. Loaded lazily by the commands (it pulls in libbpf).
import fs from 'node:fs';
import path from 'node:path';
import { BpfMap } from '../datapath/bpf/index.ts';
import { LB_MAP_NAMES, SocketLbDatapath, SOCK_PROGRAMS } from '../datapath/socket-lb.ts';
import { ServiceWriter } from '../datapath/service-writer.ts';
import { SVC_F_DROP, SVC_F_REJECT } from '../datapath/lb-codec.ts';
import { statusFilePath } from '../common/status-file.ts';
import { readStatusFile, type StatusFile } from './agent-health.ts';
import { pinnedCounters } from '../datapath/events/control.ts';
import type { EventCounters } from '../datapath/events/codec.ts';

export interface ServiceRow {
  readonly id: number;
  readonly frontend: string;
  readonly type: string;
  readonly scope: string;
  readonly action: 'forward' | 'reject' | 'drop';
  readonly affinityTimeoutSeconds: number;
  readonly backends: readonly { readonly id: number; readonly address: string; readonly state: string; readonly local: boolean }[];
}

const hostPort = (address: string, port: number): string => (address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`);

export function listServices(pinDir: string): ServiceRow[] {
  const reader = new ServiceWriter(SocketLbDatapath.openPinnedMaps(pinDir));
  return reader
    .readBack()
    .map((p) => ({
      id: p.serviceId,
      frontend: `${hostPort(p.address, p.port)}/${p.protocol}`,
      type: p.kind,
      scope: p.scope,
      action: (p.flags & SVC_F_REJECT ? 'reject' : p.flags & SVC_F_DROP ? 'drop' : 'forward') as ServiceRow['action'],
      affinityTimeoutSeconds: p.affinityTimeout,
      backends: p.backendIds.map((id) => {
        const b = reader.backend(id);
        return {
          id,
          address: b ? `${hostPort(b.address, b.port)}/${b.protocol}` : '(missing)',
          state: b?.state ?? 'missing',
          local: b?.nodeLocal ?? false,
        };
      }),
    }))
    .sort((a, b) => a.id - b.id || a.scope.localeCompare(b.scope));
}

export interface StatusReport {
  readonly pinDir: string;
  readonly statusFile: string;
  readonly programs: { readonly attached: readonly string[]; readonly missing: readonly string[] };
  readonly maps: readonly { readonly name: string; readonly entries: number; readonly capacity: number }[];
  readonly agent: (StatusFile['agent'] & { readonly pid: number; readonly updatedAt?: number; readonly apiSocket?: string | null }) | undefined;
  /** Problems the source found before the model saw anything (unparsable files, refused allocations). */
  readonly sourceIssues: readonly { readonly object?: string; readonly field?: string; readonly message: string; readonly file?: string }[];
  /** Flow-event delivery counters (ferry_events_counters_v1), summed over CPUs; absent if not pinned. */
  readonly events?: EventCounters;
}

function countEntries(map: BpfMap): number {
  let n = 0;
  for (const _ of map.keys()) n++;
  return n;
}

export function collectStatus(pinDir: string, runDir: string): StatusReport {
  const attached = SocketLbDatapath.attachedPrograms(pinDir);
  // Arrays (the counters) are always full by construction: fill is only meaningful for hashes.
  const maps = Object.values(LB_MAP_NAMES)
    .filter((name) => name !== LB_MAP_NAMES.sockCounters && fs.existsSync(path.join(pinDir, name)))
    .map((name) => {
      const map = BpfMap.openPinned(path.join(pinDir, name));
      try {
        return { name, entries: countEntries(map), capacity: map.maxEntries };
      } finally {
        map.close();
      }
    });
  const statusFile = statusFilePath(runDir);
  const raw = readStatusFile(statusFile);
  const agent: StatusReport['agent'] = raw ? { ...raw.agent, pid: raw.pid, ...(raw.updatedAt !== undefined ? { updatedAt: raw.updatedAt } : {}), ...(raw.apiSocket !== undefined ? { apiSocket: raw.apiSocket } : {}) } : undefined;
  const sourceIssues = raw?.sourceStatus?.issues ?? [];
  const events = pinnedCounters(pinDir);
  return { pinDir, statusFile, programs: { attached, missing: SOCK_PROGRAMS.filter((p) => !attached.includes(p)) }, maps, agent, sourceIssues, ...(events ? { events } : {}) };
}

