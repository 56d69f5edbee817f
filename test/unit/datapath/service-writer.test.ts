// The writer against in-memory maps that check, after every single operation, what a BPF program
// reading at that instant would see: every master's slots and backends must exist.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MapFullError } from '../../../src/common/errors.ts';
import { frontendKey, type Backend, type Frontend } from '../../../src/model/frontend.ts';
import { MemoryMap } from '../../../src/datapath/codec/map.ts';
import { ServiceWriter } from '../../../src/datapath/service-writer.ts';
import { decodeServiceKey, decodeServiceValue, encodeId } from '../../../src/datapath/lb-codec.ts';

/** A MemoryMap with a capacity, that logs each write and runs the reader's check after it. */
class FakeMap extends MemoryMap {
  readonly capacity: number;
  readonly onWrite: () => void;
  readonly log: string[];
  constructor(name: string, capacity: number, onWrite: () => void, log: string[]) {
    super(name);
    this.capacity = capacity;
    this.onWrite = onWrite;
    this.log = log;
  }
  override update(key: Buffer, value: Buffer): void {
    if (this.lookup(key) === undefined && this.size >= this.capacity) throw new MapFullError(this.name);
    super.update(key, value);
    this.log.push(`${this.name} update`);
    this.onWrite();
  }
  override delete(key: Buffer): boolean {
    const had = super.delete(key);
    if (had) this.log.push(`${this.name} delete`);
    this.onWrite();
    return had;
  }
}

function makeMaps(capacity = { services: 1000, backends: 1000 }): { maps: { services: FakeMap; backends: FakeMap; revnat: FakeMap; nodeports: FakeMap }; log: string[]; violations: string[] } {
  const log: string[] = [];
  const violations: string[] = [];
  const check = (): void => {
    for (const [k, v] of maps.services.entries()) {
      const key = decodeServiceKey(k);
      if (key.slot !== 0) continue;
      const master = decodeServiceValue(v);
      for (let slot = 1; slot <= master.count; slot++) {
        const sk = Buffer.from(k);
        sk.writeUInt16LE(slot, 20);
        const entry = maps.services.lookup(sk);
        if (!entry) violations.push(`${key.address}:${key.port} slot ${slot} missing`);
        else if (!maps.backends.lookup(encodeId(decodeServiceValue(entry).backendId))) violations.push(`${key.address}:${key.port} slot ${slot} backend missing`);
      }
    }
  };
  const maps = {
    services: new FakeMap('ferry_services_v1', capacity.services, check, log),
    backends: new FakeMap('ferry_backends_v1', capacity.backends, check, log),
    revnat: new FakeMap('ferry_revnat_v1', 1000, check, log),
    nodeports: new FakeMap('ferry_nodeports_v1', 1000, check, log),
  };
  return { maps, log, violations };
}

function be(address: string, port = 8080, more: Partial<Backend> = {}): Backend {
  return { address, port, protocol: 'TCP', state: 'active', nodeLocal: false, ...more };
}

function fe(address: string, backends: Backend[], more: Partial<Frontend> = {}): Frontend {
  const port = more.port ?? 80;
  const scope = more.scope ?? 'internal';
  return {
    key: frontendKey(address, port, 'TCP', scope),
    service: 'default/web',
    portName: '',
    kind: 'ClusterIP',
    address,
    port,
    protocol: 'TCP',
    scope,
    action: backends.length ? 'forward' : 'reject',
    backends,
    affinityTimeoutSeconds: 0,
    sourceRanges: [],
    algorithm: 'random',
    ...more,
  };
}

test('publishing order: backends, then slots, then the master; a reader never sees half a service', () => {
  const { maps, log, violations } = makeMaps();
  const w = new ServiceWriter(maps);
  w.apply({ upsert: [fe('10.96.0.10', [be('10.244.1.10'), be('10.244.2.10')])], remove: [] });
  assert.deepEqual(log, [
    'ferry_backends_v1 update',
    'ferry_backends_v1 update',
    'ferry_revnat_v1 update',
    'ferry_services_v1 update',
    'ferry_services_v1 update',
    'ferry_services_v1 update',
  ]);
  log.length = 0;
  // shrink to one new backend: new backend, slot 1, master, surplus slot 2, then the old backends
  w.apply({ upsert: [fe('10.96.0.10', [be('10.244.3.10')])], remove: [] });
  assert.deepEqual(log, [
    'ferry_backends_v1 update',
    'ferry_services_v1 update',
    'ferry_services_v1 update',
    'ferry_services_v1 delete',
    'ferry_backends_v1 delete',
    'ferry_backends_v1 delete',
  ]);
  log.length = 0;
  w.apply({ upsert: [], remove: [fe('10.96.0.10', [])] });
  assert.equal(log[0], 'ferry_services_v1 delete', 'deleting starts with the master');
  assert.deepEqual(violations, []);
  assert.equal(maps.services.size + maps.backends.size + maps.revnat.size, 0);
});

test('map full: the frontend is rolled back completely and the error names the map; others still apply', () => {
  const { maps, violations } = makeMaps({ services: 1000, backends: 3 });
  const w = new ServiceWriter(maps);
  const result = w.apply({
    upsert: [fe('10.96.0.1', [be('10.244.1.1'), be('10.244.1.2')]), fe('10.96.0.2', [be('10.244.2.1'), be('10.244.2.2')]), fe('10.96.0.3', [be('10.244.1.1')])],
    remove: [],
  });
  assert.equal(result.failed.length, 1);
  assert.equal(result.failed[0]!.frontend, frontendKey('10.96.0.2', 80, 'TCP', 'internal'));
  assert.ok(result.failed[0]!.error instanceof MapFullError);
  assert.match(result.failed[0]!.error.message, /ferry_services_v1|ferry_backends_v1/);
  assert.equal(maps.backends.size, 2, 'the half-written frontend left no backend behind');
  assert.equal([...maps.services.entries()].filter(([k]) => decodeServiceKey(k).address === '10.96.0.2').length, 0);
  assert.equal(result.upserted, 2);
  assert.deepEqual(violations, []);
});

test('readBack restores ids; reconcile after a restart rewrites nothing that is right and sweeps orphans', () => {
  const { maps, log } = makeMaps();
  const first = new ServiceWriter(maps);
  const table = [fe('10.96.0.1', [be('10.244.1.1'), be('10.244.1.2')]), fe('10.96.0.2', [be('10.244.1.2')]), fe('10.96.0.3', [])];
  first.apply({ upsert: table, remove: [] });
  const ids = [...first.programmed().values()].map((p) => [p.key, p.serviceId, p.backendIds.join(',')]);
  // a crash left a slot above a master's count and a backend nobody uses
  const stray = Buffer.from([...maps.services.entries()].find(([k]) => decodeServiceKey(k).slot === 1)![0]);
  stray.writeUInt16LE(7, 20);
  maps.services.update(stray, Buffer.alloc(20));
  maps.backends.update(encodeId(999), Buffer.alloc(24));
  log.length = 0;

  const second = new ServiceWriter(maps);
  second.readBack();
  assert.deepEqual([...second.programmed().values()].map((p) => [p.key, p.serviceId, p.backendIds.join(',')]), ids);
  const result = second.reconcile(table);
  assert.equal(result.upserted, 0);
  assert.equal(result.orphansRemoved, 2);
  assert.deepEqual(log.filter((l) => l.endsWith('update')), [], 'nothing correct was rewritten');
});

test('NodePort frontends mark their port for the bind hook, and unmark it when the last one goes', () => {
  const { maps } = makeMaps();
  const w = new ServiceWriter(maps);
  const np = (addr: string, scope: 'internal' | 'external') => fe(addr, [be('10.244.1.1')], { kind: 'NodePort', port: 30080, scope });
  w.apply({ upsert: [np('172.30.0.1', 'external'), np('172.30.0.1', 'internal')], remove: [] });
  assert.equal(maps.nodeports.size, 1);
  const restarted = new ServiceWriter(maps);
  restarted.readBack();
  restarted.reconcile([np('172.30.0.1', 'external'), np('172.30.0.1', 'internal')]);
  assert.equal(maps.nodeports.size, 1, 'an adopted NodePort keeps its mark');
  restarted.apply({ upsert: [], remove: [np('172.30.0.1', 'external'), np('172.30.0.1', 'internal')] });
  assert.equal(maps.nodeports.size, 0);
});

test('a backend changing to terminating is rewritten in place under the same id', () => {
  const { maps } = makeMaps();
  const w = new ServiceWriter(maps);
  w.apply({ upsert: [fe('10.96.0.1', [be('10.244.1.1')])], remove: [] });
  const id = [...w.programmed().values()][0]!.backendIds[0]!;
  w.apply({ upsert: [fe('10.96.0.1', [be('10.244.1.1', 8080, { state: 'terminating' })])], remove: [] });
  assert.equal([...w.programmed().values()][0]!.backendIds[0], id);
  assert.equal(w.backend(id)?.state, 'terminating');
});
