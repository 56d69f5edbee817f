// Faults inside the ServiceWriter: an update that fails part-way (the writer must undo its own
// memory with the maps), and a full kernel map (the error must name the map in full).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { MapFullError } from '../../../src/common/errors.ts';
import { frontendKey, type Backend, type Frontend } from '../../../src/model/frontend.ts';
import { ServiceWriter, type MapLike } from '../../../src/datapath/service-writer.ts';
import { decodeBackend, encodeId } from '../../../src/datapath/lb-codec.ts';
import { BpfObject } from '../../../src/datapath/bpf/index.ts';
import { LB_MAP_NAMES, SOCK_OBJECT } from '../../../src/datapath/socket-lb.ts';
import { faultTable } from '../support/fault-table.ts';

const table = faultTable('agent: service writer');

class BoundedMap implements MapLike {
  readonly name: string;
  readonly #capacity: number;
  readonly #entries = new Map<string, [Buffer, Buffer]>();
  constructor(name: string, capacity: number) {
    this.name = name;
    this.#capacity = capacity;
  }
  lookup(key: Buffer): Buffer | undefined {
    return this.#entries.get(key.toString('hex'))?.[1];
  }
  update(key: Buffer, value: Buffer): void {
    const k = key.toString('hex');
    if (!this.#entries.has(k) && this.#entries.size >= this.#capacity) throw new MapFullError(this.name);
    this.#entries.set(k, [Buffer.from(key), Buffer.from(value)]);
  }
  delete(key: Buffer): boolean {
    return this.#entries.delete(key.toString('hex'));
  }
  entries(): Iterable<[Buffer, Buffer]> {
    return [...this.#entries.values()];
  }
}

const be = (address: string, nodeLocal: boolean): Backend => ({ address, port: 8080, protocol: 'TCP', state: 'active', nodeLocal });
const fe = (address: string, backends: Backend[]): Frontend => ({
  key: frontendKey(address, 80, 'TCP', 'internal'),
  service: 'default/web',
  portName: '',
  kind: 'ClusterIP',
  address,
  port: 80,
  protocol: 'TCP',
  scope: 'internal',
  action: 'forward',
  backends,
  affinityTimeoutSeconds: 0,
  sourceRanges: [],
  algorithm: 'random',
});

test('a failed update restores the backend in the map and in the writer alike', () => {
  const maps = {
    services: new BoundedMap('ferry_services_v1', 100),
    backends: new BoundedMap('ferry_backends_v1', 1),
    revnat: new BoundedMap('ferry_revnat_v1', 100),
    nodeports: new BoundedMap('ferry_nodeports_v1', 100),
  };
  const writer = new ServiceWriter(maps);
  assert.equal(writer.apply({ upsert: [fe('10.96.0.1', [be('10.244.1.1', false)])], remove: [] }).failed.length, 0);
  const id = [...writer.programmed().values()][0]!.backendIds[0]!;
  // The existing backend turns node-local (rewritten in place), then a second backend finds the map full.
  const result = writer.apply({ upsert: [fe('10.96.0.1', [be('10.244.1.1', true), be('10.244.1.2', false)])], remove: [] });
  assert.equal(result.failed.length, 1);
  assert.equal(decodeBackend(maps.backends.lookup(encodeId(id))!).nodeLocal, false, 'the map entry was restored');
  assert.equal(writer.backend(id)?.nodeLocal, false, "the writer's copy matches the map");
  assert.deepEqual(writer.programmed().get(fe('10.96.0.1', []).key)?.backendIds, [id]);
  table.row('update fails after rewriting a backend in place', 'map entry and in-memory copy both restored (nodeLocal, state)');
});

test('a full kernel map is named in full, not by its 15-character kernel name', (t) => {
  const pinDir = `/sys/fs/bpf/ferry-fault-${randomBytes(4).toString('hex')}`;
  fs.mkdirSync(pinDir);
  const object = BpfObject.open(SOCK_OBJECT, { pinRoot: pinDir });
  t.after(() => {
    object.close();
    fs.rmSync(pinDir, { recursive: true, force: true });
  });
  object.setMapMaxEntries(LB_MAP_NAMES.services, 1);
  object.load(); // loaded, never attached: the maps alone are under test
  const maps = {
    services: object.map(LB_MAP_NAMES.services),
    backends: object.map(LB_MAP_NAMES.backends),
    revnat: object.map(LB_MAP_NAMES.revnat),
    nodeports: object.map(LB_MAP_NAMES.nodeports),
  };
  const writer = new ServiceWriter(maps);
  writer.readBack();
  const result = writer.apply({ upsert: [fe('10.96.0.1', [be('10.244.1.1', false)])], remove: [] });
  assert.equal(result.failed.length, 1);
  assert.ok(result.failed[0]!.error instanceof MapFullError);
  assert.equal((result.failed[0]!.error as MapFullError).map, 'ferry_services_v1');
  assert.match(result.failed[0]!.error.message, /BPF map ferry_services_v1 is full/);
  table.row('services map full (kernel name ferry_services_)', 'MapFullError names ferry_services_v1');
});
