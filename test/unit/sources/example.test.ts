// deploy/standalone-example is what the demo runs: it must load cleanly and produce the
// Services and slices its comments promise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { EndpointSlice, Service } from '../../../src/model/k8s.ts';
import { ManifestSource } from '../../../src/sources/manifest/source.ts';

const EXAMPLE = path.join(import.meta.dirname, '../../../deploy/standalone-example');

test('the standalone example loads without issues and yields the promised objects', async (t) => {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-example-state-'));
  t.after(() => fs.rmSync(stateDir, { recursive: true, force: true }));
  const objects = new Map<string, unknown>();
  const source = ManifestSource.open(EXAMPLE, {
    stateDir,
    rescanMs: 600_000,
    onChange: (c) => objects.set(`${c.kind} ${c.key}`, c.current),
  });
  t.after(() => source.close());
  await source.initialListDone;
  assert.deepEqual(source.errors(), []);
  assert.equal(source.pods().length, 6);
  const svc = (name: string): Service['spec'] => (objects.get(`Service default/${name}`) as Service).spec;
  const slice = (name: string): EndpointSlice =>
    objects.get(`EndpointSlice default/${name}`) as EndpointSlice;

  assert.deepEqual(
    [...objects.keys()].filter((k) => k.startsWith('Node')),
    ['Node node-1', 'Node node-2', 'Node node-3'],
  );
  assert.equal(svc('web').clusterIPs!.length, 2);
  assert.equal(svc('api').clusterIP, '10.96.0.20');
  assert.deepEqual(
    svc('api').ports!.map((p) => p.nodePort! >= 30000),
    [true, true],
  );
  assert.equal(svc('api').ports![0]!.nodePort, 30080);
  const dnsPorts = svc('dns').ports!.map((p) => p.nodePort);
  assert.equal(dnsPorts[0], dnsPorts[1], 'UDP and TCP 53 share a NodePort');
  assert.deepEqual(svc('web-v6').ipFamilies, ['IPv6', 'IPv4']);
  assert.ok(svc('edge').healthCheckNodePort !== undefined);

  assert.deepEqual(
    slice('web-ipv4-0').endpoints!.map((e) => [e.addresses[0], e.nodeName, e.zone]),
    [
      ['10.244.1.11', 'node-1', 'zone-a'],
      ['10.244.2.11', 'node-2', 'zone-a'],
      ['10.244.3.11', 'node-3', 'zone-b'],
    ],
  );
  assert.equal(slice('web-ipv6-0').endpoints!.length, 3);
  // api's pods name their ports alike on different numbers: two slices.
  assert.deepEqual(
    ['api-ipv4-0', 'api-ipv4-1'].map((n) => [slice(n).ports!.map((p) => p.port), slice(n).endpoints!.length]),
    [
      [[8080, 9000], 1],
      [[8081, 9001], 1],
    ],
  );
  assert.deepEqual(slice('dns-ipv4-0').ports, [
    { name: 'dns-udp', protocol: 'UDP', port: 5353 },
    { name: 'dns-tcp', protocol: 'TCP', port: 5353 },
  ]);
  assert.deepEqual(slice('empty-ipv4-0').endpoints, []);
  assert.equal(slice('legacy-manual').endpoints![0]!.addresses[0], '10.244.3.11');
});
