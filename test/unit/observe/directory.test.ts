// The enrichment's directories: pods by address (EndpointSlices and manifest Pods), network
// namespaces by inode (files under a netns directory, scanned on demand), Services by id.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PodIndex } from '../../../src/observe/pods.ts';
import { NetnsDirectory } from '../../../src/observe/netns.ts';
import { ServiceIndex } from '../../../src/observe/services.ts';
import type { EndpointSlice, Pod } from '../../../src/model/k8s.ts';
import type { Frontend } from '../../../src/model/frontend.ts';
import type { ProgrammedFrontend } from '../../../src/datapath/service-writer.ts';

const slice = (name: string, endpoints: { ip: string; pod: string }[]): EndpointSlice => ({
  metadata: { name, namespace: 'shop', labels: { 'kubernetes.io/service-name': 'web' } },
  addressType: 'IPv4',
  endpoints: endpoints.map((e) => ({ addresses: [e.ip], targetRef: { kind: 'Pod', namespace: 'shop', name: e.pod } })),
});

const pod = (name: string, ips: string[], hostNetwork = false): Pod => ({
  metadata: { name, namespace: 'default' },
  spec: { containers: [], ...(hostNetwork ? { hostNetwork } : {}) },
  status: { podIP: ips[0], podIPs: ips.map((ip) => ({ ip })) },
});

test('PodIndex: slices name backends, manifest Pods name everyone else; deletions forget', () => {
  const pods = [pod('client', ['10.244.1.5', 'FD00:10:244:1::5']), pod('node-agent', ['172.30.0.1'], true)];
  const index = new PodIndex(() => pods);
  const a = slice('web-a', [{ ip: '10.244.2.7', pod: 'web-1' }]);
  index.onChange({ kind: 'EndpointSlice', previous: undefined, current: a });
  assert.deepEqual(index.podByIp('10.244.2.7'), { namespace: 'shop', name: 'web-1' });
  assert.deepEqual(index.podByIp('10.244.1.5'), { namespace: 'default', name: 'client' });
  assert.deepEqual(index.podByIp('fd00:10:244:1::5'), { namespace: 'default', name: 'client' }, 'canonical IPv6');
  assert.equal(index.podByIp('172.30.0.1'), undefined, 'hostNetwork pods name no address');
  index.onChange({ kind: 'EndpointSlice', previous: a, current: undefined });
  assert.equal(index.podByIp('10.244.2.7'), undefined);
  assert.equal(new PodIndex().podByIp('10.244.1.5'), undefined);
});

test('NetnsDirectory: inode → file → addresses → pod; misses are remembered for a while; own netns is the host', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-netns-'));
  try {
    fs.writeFileSync(path.join(dir, 'cni-1'), '');
    fs.writeFileSync(path.join(dir, 'cni-2'), '');
    const host = path.join(dir, 'host');
    fs.writeFileSync(host, '');
    const ino = (n: string): number => fs.statSync(path.join(dir, n)).ino;
    const asked: string[] = [];
    const netns = new NetnsDirectory({
      dirs: [dir],
      hostNetns: host,
      podByIp: (ip) => (ip === '10.244.1.5' ? { namespace: 'default', name: 'client' } : undefined),
      addressesOf: (file) => {
        asked.push(path.basename(file));
        return Promise.resolve(path.basename(file) === 'cni-1' ? ['10.244.1.5'] : ['10.244.1.6']);
      },
      negativeTtlMs: 60_000,
    });
    assert.equal(netns.needsResolve(ino('cni-1')), true);
    assert.equal(netns.netns(ino('cni-1')), undefined);
    await Promise.all([netns.resolve(ino('cni-1')), netns.resolve(ino('cni-2'))]);
    assert.deepEqual(asked.sort(), ['cni-1', 'cni-2'], 'one scan, each namespace read once');
    assert.deepEqual(netns.netns(ino('cni-1')), { pod: { namespace: 'default', name: 'client' }, addresses: ['10.244.1.5'] });
    assert.deepEqual(netns.netns(ino('cni-2')), { addresses: ['10.244.1.6'] });
    assert.equal(netns.needsResolve(ino('cni-1')), false);
    assert.deepEqual(netns.netns(ino('host')), { host: true, addresses: [] });
    assert.equal(netns.needsResolve(ino('host')), false);
    assert.equal(netns.needsResolve(0), false, 'packet-path events carry no netns');
    await netns.resolve(987654321);
    assert.equal(netns.needsResolve(987654321), false, 'a miss is not rescanned at once');
    const gone = ino('cni-2');
    fs.rmSync(path.join(dir, 'cni-2'));
    netns.prune();
    assert.equal(netns.netns(gone), undefined, 'a deleted namespace is forgotten (inodes get reused)');
    assert.ok(netns.netns(ino('cni-1')), 'a live namespace is kept');
    assert.equal(asked.length, 2);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('ServiceIndex: ids from the writer joined with the model; NodePorts for bind events; old ids kept', () => {
  const fe = (key: string, service: string, kind: Frontend['kind'], port: number): Frontend =>
    ({ key, service, portName: 'http', kind, port, protocol: 'TCP' }) as Frontend;
  let frontends = new Map<string, Frontend>([
    ['a', fe('a', 'shop/web', 'ClusterIP', 80)],
    ['b', fe('b', 'shop/np', 'NodePort', 30080)],
  ]);
  let programmed = new Map<string, ProgrammedFrontend>([
    ['a', { key: 'a', serviceId: 1 } as ProgrammedFrontend],
    ['b', { key: 'b', serviceId: 2 } as ProgrammedFrontend],
  ]);
  const index = new ServiceIndex({ programmed: () => programmed, frontends: () => frontends });
  assert.deepEqual(index.serviceById(1), { namespace: 'shop', name: 'web', portName: 'http' });
  assert.deepEqual(index.serviceByNodePort(30080, 'TCP'), { namespace: 'shop', name: 'np', portName: 'http' });
  assert.equal(index.serviceByNodePort(30080, 'UDP'), undefined);
  frontends = new Map();
  programmed = new Map();
  assert.deepEqual(index.serviceById(1)?.name, 'web', 'late events of a deleted Service still name it');
});
