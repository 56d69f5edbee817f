// The north-south edge maps (Maglev tables, source ranges) are written inside the agent's sync,
// through the Datapath facade: a write that fails there fails the sync and makes the next one
// full, instead of being logged after a sync already recorded as a success.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from '../../../src/agent/agent.ts';
import { Datapath, type EdgeSync } from '../../../src/agent/datapath.ts';
import { logger } from '../../../src/common/log.ts';
import { MapFullError } from '../../../src/common/errors.ts';
import { MemoryMap } from '../../../src/datapath/codec/map.ts';
import { ServiceWriter } from '../../../src/datapath/service-writer.ts';
import { NodeportEdgeWriter } from '../../../src/datapath/nodeport/edge-writer.ts';
import { ANNOTATION_LB_ALGORITHM } from '../../../src/model/k8s.ts';
import type { FrontendTable } from '../../../src/model/frontend.ts';
import { ep, slice, svc } from '../../unit/model/fixtures.ts';
import { faultTable } from '../support/fault-table.ts';

const table = faultTable('agent: north-south edge inside the sync');
const log = logger('test', {});
log.level = 'silent';

/** A Maglev map that refuses the next `failures` updates, as a full kernel map would. */
class RefusingMap extends MemoryMap {
  failures = 0;
  override update(key: Buffer, value: Buffer): void {
    if (this.failures > 0) {
      this.failures--;
      throw new MapFullError(this.name);
    }
    super.update(key, value);
  }
}

function lbMaps(): ConstructorParameters<typeof ServiceWriter>[0] {
  return {
    services: new MemoryMap('ferry_services_v1'),
    backends: new MemoryMap('ferry_backends_v1'),
    revnat: new MemoryMap('ferry_revnat_v1'),
    nodeports: new MemoryMap('ferry_nodeports_v1'),
  };
}

/** The edge as north-south.ts writes it, over in-memory maps. */
function memoryEdge(maglev: MemoryMap): EdgeSync {
  const writer = new NodeportEdgeWriter({ maglev, srcRanges: new MemoryMap('ferry_np_src_ranges') });
  return {
    sync: async (t: FrontendTable, lb: ServiceWriter) => writer.sync(t.frontends.values(), lb),
    stop: async () => {},
  };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setImmediate(r));
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), `timed out waiting for ${what}`);
}

test('a Maglev table the edge map refuses fails the sync, and the next sync is full and writes it', async () => {
  const maglev = new RefusingMap('ferry_np_maglev');
  const datapath = new Datapath(new ServiceWriter(lbMaps()));
  const agent = new Agent({ nodeName: 'node-1', nodeAddresses: ['172.30.0.1'], writer: datapath, log, runner: { minIntervalMs: 1, retryBaseMs: 5 } });
  const records: { ok: boolean; full: boolean }[] = [];
  agent.addSyncListener((r) => records.push({ ok: r.ok, full: r.full }));
  await agent.start();
  datapath.attachEdge(memoryEdge(maglev));
  maglev.failures = 1;
  agent.onChange({
    kind: 'Service',
    previous: undefined,
    current: svc('web', { type: 'NodePort', ports: [{ port: 80, targetPort: 8080, nodePort: 30080 }] }, { metadata: { name: 'web', namespace: 'default', annotations: { [ANNOTATION_LB_ALGORITHM]: 'maglev' } } }),
  });
  agent.onChange({ kind: 'EndpointSlice', previous: undefined, current: slice('web', 'web-1', [ep('10.0.0.5')]) });
  await until(() => maglev.size > 0, 'the Maglev table written by the retry');
  await agent.stop();

  const failed = records.findIndex((r) => !r.ok);
  assert.ok(failed > 0, `the sync that hit the refusing edge map is recorded as failed: ${JSON.stringify(records)}`);
  const retry = records.slice(failed + 1).find((r) => r.ok);
  assert.deepEqual(retry, { ok: true, full: true }, 'the sync after the failure is full');
  assert.ok(agent.status().failedSyncs >= 1);
  table.row('edge (Maglev) map refuses an update', 'the sync fails; the next sync is full and writes the table');
});
