// The N-S programs read what the east-west side's ServiceWriter publishes: frontends built as
// the model builds them, applied by the real writer, then packets run through tc and XDP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { openObject, removePins, type TestMap } from './support/loader.ts';
import { packet, parse } from './support/packet.ts';
import { ServiceWriter } from '../../../src/datapath/service-writer.ts';
import { MemoryMap, type MapLike } from '../../../src/datapath/codec/index.ts';
import { frontendKey, type Backend, type Frontend } from '../../../src/model/frontend.ts';
import { nodeportConstants } from '../../../src/datapath/nodeport/config.ts';
import { NodeportEdgeWriter } from '../../../src/datapath/nodeport/edge-writer.ts';
import { MAP_MAGLEV, MAP_SRC_RANGES } from '../../../src/datapath/nodeport/maps.ts';

function mapLike(name: string, m: TestMap): MapLike {
  return {
    name,
    lookup: (k) => m.lookup(k),
    update: (k, v) => m.update(k, v),
    delete: (k) => m.delete(k),
    *entries(): Iterable<[Buffer, Buffer]> {
      for (const k of m.keys()) {
        const v = m.lookup(k);
        if (v) yield [k, v];
      }
    },
  };
}

const backend = (address: string, nodeLocal: boolean): Backend => ({
  address,
  port: 8080,
  protocol: 'TCP',
  state: 'active',
  nodeLocal,
});

function frontend(over: Partial<Frontend> & Pick<Frontend, 'address' | 'port' | 'kind'>): Frontend {
  const f = {
    service: 'default/web',
    portName: '',
    protocol: 'TCP' as const,
    scope: 'external' as const,
    action: 'forward' as const,
    backends: [],
    affinityTimeoutSeconds: 0,
    sourceRanges: [],
    algorithm: 'random' as const,
    ...over,
  };
  return { ...f, key: frontendKey(f.address, f.port, f.protocol, f.scope) };
}

for (const mode of ['tc', 'xdp'] as const) {
  test(`nodeport ${mode} serves what the ServiceWriter publishes`, () => {
    const pinRoot = `/sys/fs/bpf/ferry-np-test-${randomBytes(4).toString('hex')}`;
    const obj = openObject(`build/bpf/nodeport_${mode}.o`, {
      pinRoot,
      constants: nodeportConstants({ nodeAddresses: ['172.30.0.1'], forwarding: 'stack' }),
    });
    try {
      const writer = new ServiceWriter({
        services: mapLike('ferry_services_v1', obj.map('ferry_services_v1')),
        backends: mapLike('ferry_backends_v1', obj.map('ferry_backends_v1')),
        revnat: mapLike('ferry_revnat_v1', obj.map('ferry_revnat_v1')),
        nodeports: new MemoryMap('ferry_nodeports_v1'),
      });
      const desired = [
        frontend({
          kind: 'NodePort',
          address: '172.30.0.1',
          port: 30080,
          backends: [backend('10.244.2.7', false)],
        }),
        frontend({
          kind: 'LoadBalancer',
          address: '198.19.0.10',
          port: 80,
          backends: [backend('10.244.1.7', true)],
        }),
        frontend({ kind: 'LoadBalancer', address: '198.19.0.11', port: 80, action: 'drop' }),
        frontend({ kind: 'LoadBalancer', address: '198.19.0.12', port: 80, action: 'reject' }),
        // the same address in the internal scope must not be served here
        frontend({
          kind: 'LoadBalancer',
          address: '198.19.0.13',
          port: 80,
          scope: 'internal',
          backends: [backend('10.244.1.7', true)],
        }),
        frontend({
          kind: 'LoadBalancer',
          address: '198.19.0.14',
          port: 80,
          sourceRanges: ['203.0.113.0/24'],
          backends: [backend('10.244.1.7', true)],
        }),
        frontend({
          kind: 'LoadBalancer',
          address: '198.19.0.15',
          port: 80,
          algorithm: 'maglev',
          backends: [backend('10.244.1.7', true), backend('10.244.2.7', false), backend('10.244.3.7', false)],
        }),
      ];
      writer.apply({ upsert: desired, remove: [] });
      const edge = new NodeportEdgeWriter({
        maglev: mapLike(MAP_MAGLEV, obj.map(MAP_MAGLEV)),
        srcRanges: mapLike(MAP_SRC_RANGES, obj.map(MAP_SRC_RANGES)),
      });
      edge.sync(desired, writer);
      const ingress = mode === 'tc' ? 'ferry_np_ingress' : 'ferry_np_xdp';
      const pass = mode === 'tc' ? 0 : 2;
      const drop = mode === 'tc' ? 2 : 1;
      const run = (dst: string, dport: number): { retval: number; out: ReturnType<typeof parse> } => {
        const r = obj.run(
          ingress,
          packet({ src: '198.18.0.10', dst, proto: 'tcp', sport: 40000 + (dport % 1000), dport }),
        );
        return { retval: r.retval, out: parse(r.dataOut) };
      };
      const np = run('172.30.0.1', 30080);
      assert.deepEqual([np.retval, np.out.src, np.out.dst], [pass, '172.30.0.1', '10.244.2.7']);
      const lb = run('198.19.0.10', 80);
      assert.deepEqual([lb.retval, lb.out.src, lb.out.dst], [pass, '198.18.0.10', '10.244.1.7']);
      assert.equal(run('198.19.0.11', 80).retval, drop);
      assert.equal(run('198.19.0.12', 80).out.flags, 'RA');
      assert.equal(run('198.19.0.13', 80).out.dst, '198.19.0.13');
      assert.equal(run('198.19.0.14', 80).retval, drop, 'client outside loadBalancerSourceRanges');
      assert.equal(obj.map(MAP_MAGLEV).keys().length, 1);
      assert.match(run('198.19.0.15', 80).out.dst, /^10\.244\.[123]\.7$/);
      // ranges removed → served again
      const open = desired.map((f) => (f.address === '198.19.0.14' ? { ...f, sourceRanges: [] } : f));
      writer.apply({ upsert: open, remove: [] });
      edge.sync(open, writer);
      assert.equal(obj.map(MAP_SRC_RANGES).keys().length, 0);
      assert.deepEqual([run('198.19.0.14', 80).retval, run('198.19.0.14', 80).out.dst], [pass, '10.244.1.7']);
    } finally {
      obj[Symbol.dispose]();
      removePins(pinRoot);
    }
  });
}
