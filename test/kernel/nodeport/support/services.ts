// Writes services and backends into the shared maps for the N-S packet tables, through the same
// codecs as the agent's ServiceWriter (src/datapath/lb-codec.ts), so a layout change cannot leave
// the tests writing the old one.
import {
  ALG,
  SVC_F_DROP,
  SVC_F_REJECT,
  encodeBackend,
  encodeId,
  encodeServiceKey,
  encodeServiceValue,
  type ServiceKey,
} from '../../../../src/datapath/lb-codec.ts';
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
  const key: ServiceKey = {
    address: s.address,
    port: s.port,
    protocol: s.protocol ?? 'TCP',
    scope: s.scope ?? 'external',
    slot,
  };
  return encodeServiceKey(key);
}

export function writeService(services: TestMap, backends: TestMap, s: TestService): void {
  const protocol = s.protocol ?? 'TCP';
  for (const b of s.backends)
    backends.update(
      encodeId(b.id),
      encodeBackend({
        address: b.address,
        port: b.port,
        protocol,
        state: b.terminating ? 'terminating' : 'active',
        nodeLocal: b.local ?? false,
      }),
    );
  const slot = { count: 0, flags: 0, serviceId: 0, affinityTimeout: 0, algorithm: 0, kind: 'ClusterIP' } as const;
  s.backends.forEach((b, i) => services.update(serviceKey(s, i + 1), encodeServiceValue({ ...slot, backendId: b.id })));
  const master = encodeServiceValue({
    ...slot,
    backendId: 0,
    count: s.backends.length,
    flags: s.action === 'reject' ? SVC_F_REJECT : s.action === 'drop' ? SVC_F_DROP : 0,
    serviceId: s.id,
    algorithm: s.maglev ? ALG.maglev : ALG.random,
  });
  services.update(serviceKey(s, 0), master);
}
