// Writes services and backends into the shared maps for the N-S packet tables. Mirrors the
// layout of bpf/lib/nodeport_lb.h's provisional copy (which follows DESIGN.md); once lb.h and
// the ServiceWriter exist, tests should go through the writer instead.
import { addr16, IPPROTO } from '../../../../src/datapath/nodeport/maps.ts';
import type { TestMap } from './loader.ts';

export interface TestBackend {
  readonly id: number;
  readonly address: string;
  readonly port: number;
  readonly local?: boolean;
  readonly terminating?: boolean;
}

export interface TestService {
  readonly id: number;
  readonly address: string;
  readonly port: number;
  readonly protocol?: 'TCP' | 'UDP';
  readonly backends: readonly TestBackend[];
  readonly action?: 'forward' | 'reject' | 'drop';
  readonly maglev?: boolean;
  readonly scope?: 'internal' | 'external';
}

function serviceKey(s: TestService, slot: number): Buffer {
  const k = Buffer.alloc(24);
  addr16(s.address).copy(k, 0);
  k.writeUInt16BE(s.port, 16);
  k[18] = IPPROTO[s.protocol ?? 'TCP'] ?? 6;
  k[19] = (s.scope ?? 'external') === 'external' ? 1 : 0;
  k.writeUInt16LE(slot, 20);
  return k;
}

export function writeService(services: TestMap, backends: TestMap, s: TestService): void {
  for (const b of s.backends) {
    const v = Buffer.alloc(24);
    addr16(b.address).copy(v, 0);
    v.writeUInt16BE(b.port, 16);
    v[18] = IPPROTO[s.protocol ?? 'TCP'] ?? 6;
    v[19] = b.terminating ? 1 : 0;
    v[20] = b.local ? 1 : 0;
    const k = Buffer.alloc(4);
    k.writeUInt32LE(b.id);
    backends.update(k, v);
  }
  s.backends.forEach((b, i) => {
    const v = Buffer.alloc(20);
    v.writeUInt32LE(b.id, 0);
    services.update(serviceKey(s, i + 1), v);
  });
  const master = Buffer.alloc(20);
  master.writeUInt16LE(s.backends.length, 4);
  master.writeUInt16LE(s.action === 'reject' ? 1 : s.action === 'drop' ? 2 : 0, 6);
  master.writeUInt32LE(s.id, 8);
  master[16] = s.maglev ? 1 : 0;
  services.update(serviceKey(s, 0), master);
}
