// The standalone source end to end on a temp directory: files in, Services with allocations and
// generated EndpointSlices out, allocations kept across a restart.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { EndpointSlice, Service } from '../../../src/model/k8s.ts';
import { ManifestSource, type ManifestChange } from '../../../src/sources/manifest/source.ts';

function tempDir(t: TestContext, prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

interface Opened {
  readonly source: ManifestSource;
  /** Current emitted state, by `Kind key`. */
  readonly state: Map<string, unknown>;
  /** Changes since the last call. */
  readonly take: () => ManifestChange[];
}

async function open(
  t: TestContext,
  dir: string,
  stateDir: string,
  extra: Partial<Parameters<typeof ManifestSource.open>[1]> = {},
): Promise<Opened> {
  const state = new Map<string, unknown>();
  let changes: ManifestChange[] = [];
  const source = ManifestSource.open(dir, {
    stateDir,
    debounceMs: 20,
    rescanMs: 600_000,
    ...extra,
    onChange: (c) => {
      changes.push(c);
      const k = `${c.kind} ${c.key}`;
      if (c.current === undefined) state.delete(k);
      else state.set(k, c.current);
    },
  });
  t.after(() => source.close());
  await source.initialListDone;
  return {
    source,
    state,
    take: () => {
      const c = changes;
      changes = [];
      return c;
    },
  };
}

const service = (name: string, spec: string): string =>
  `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}}\nspec: ${spec}\n`;

const pod = (
  name: string,
  ip: string,
  opts: { ready?: boolean; app?: string; deleting?: boolean; node?: string } = {},
): string =>
  `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  labels: {app: ${opts.app ?? 'web'}}
${opts.deleting ? '  deletionTimestamp: "2026-11-22T12:00:00Z"\n' : ''}spec:
  nodeName: ${opts.node ?? 'node-1'}
  containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]
status:
  podIPs: [{ip: ${ip}}]
  conditions: [{type: Ready, status: "${opts.ready === false ? 'False' : 'True'}"}]
`;

/** Rewrites a file and waits until the source has emitted the result. */
async function write(o: Opened, file: string, text: string): Promise<ManifestChange[]> {
  fs.writeFileSync(file, text);
  await o.source.rescan();
  return o.take();
}

const summary = (changes: ManifestChange[]): string[] =>
  changes
    .map(
      (c) =>
        `${c.previous === undefined ? 'add' : c.current === undefined ? 'delete' : 'update'} ${c.kind} ${c.key}`,
    )
    .sort();

test('generated slices follow pod readiness, termination and relabeling; only real changes are emitted', async (t) => {
  const dir = tempDir(t, 'ferry-src-');
  const stateDir = tempDir(t, 'ferry-state-');
  const pods = path.join(dir, 'pods.yaml');
  fs.writeFileSync(
    path.join(dir, 'svc.yaml'),
    service('web', '{selector: {app: web}, ports: [{name: http, port: 80, targetPort: http}]}'),
  );
  fs.writeFileSync(
    pods,
    [pod('web-1', '10.244.1.11'), pod('web-2', '10.244.2.11', { ready: false, node: 'node-2' })].join(
      '---\n',
    ),
  );
  fs.writeFileSync(
    path.join(dir, 'node.yaml'),
    'apiVersion: v1\nkind: Node\nmetadata: {name: node-1, labels: {topology.kubernetes.io/zone: z1}}\n',
  );
  const o = await open(t, dir, stateDir);
  assert.deepEqual(summary(o.take()), [
    'add EndpointSlice default/web-ipv4-0',
    'add Node node-1',
    'add Service default/web',
  ]);
  assert.equal(o.source.synced, true);
  const slice = (): EndpointSlice => o.state.get('EndpointSlice default/web-ipv4-0') as EndpointSlice;
  const conds = (): Record<string, unknown> =>
    Object.fromEntries(slice().endpoints!.map((e) => [e.targetRef!.name!, e.conditions]));
  assert.deepEqual(conds(), {
    'web-1': { ready: true, serving: true, terminating: false },
    'web-2': { ready: false, serving: false, terminating: false },
  });
  assert.equal(slice().endpoints![0]!.zone, 'z1');
  assert.deepEqual(slice().ports, [{ name: 'http', protocol: 'TCP', port: 8080 }]);

  // web-2 becomes ready; web-1 starts terminating.
  assert.deepEqual(
    summary(
      await write(
        o,
        pods,
        [
          pod('web-1', '10.244.1.11', { deleting: true }),
          pod('web-2', '10.244.2.11', { node: 'node-2' }),
        ].join('---\n'),
      ),
    ),
    ['update EndpointSlice default/web-ipv4-0'],
  );
  assert.deepEqual(conds(), {
    'web-1': { ready: false, serving: true, terminating: true },
    'web-2': { ready: true, serving: true, terminating: false },
  });

  // Relabel web-1 away: it leaves the slice. Pods themselves are never emitted.
  assert.deepEqual(
    summary(
      await write(
        o,
        pods,
        [pod('web-1', '10.244.1.11', { app: 'other' }), pod('web-2', '10.244.2.11', { node: 'node-2' })].join(
          '---\n',
        ),
      ),
    ),
    ['update EndpointSlice default/web-ipv4-0'],
  );
  assert.deepEqual(Object.keys(conds()), ['web-2']);
  assert.equal(o.source.pods().length, 2);

  // A pod nobody selects changes nothing downstream.
  assert.deepEqual(
    summary(
      await write(
        o,
        pods,
        [pod('web-1', '10.244.1.12', { app: 'other' }), pod('web-2', '10.244.2.11', { node: 'node-2' })].join(
          '---\n',
        ),
      ),
    ),
    [],
  );

  // The service goes: its slices go with it.
  fs.rmSync(path.join(dir, 'svc.yaml'));
  await o.source.rescan();
  assert.deepEqual(summary(o.take()), [
    'delete EndpointSlice default/web-ipv4-0',
    'delete Service default/web',
  ]);
});

test('allocations survive a restart, collisions are refused with both names, deletes release', async (t) => {
  const dir = tempDir(t, 'ferry-src-');
  const stateDir = tempDir(t, 'ferry-state-');
  fs.writeFileSync(
    path.join(dir, 'a.yaml'),
    service('web', '{type: NodePort, ipFamilyPolicy: PreferDualStack, ports: [{port: 80}]}'),
  );
  fs.writeFileSync(
    path.join(dir, 'b.yaml'),
    service('api', '{type: LoadBalancer, externalTrafficPolicy: Local, ports: [{port: 443}]}'),
  );
  const first = await open(t, dir, stateDir);
  const spec = (o: Opened, name: string): Service['spec'] =>
    (o.state.get(`Service default/${name}`) as Service).spec;
  const webIps = spec(first, 'web').clusterIPs;
  const webPort = spec(first, 'web').ports![0]!.nodePort;
  const apiHc = spec(first, 'api').healthCheckNodePort;
  assert.equal(webIps?.length, 2);
  assert.ok(webPort !== undefined && apiHc !== undefined);
  await first.source.close();
  assert.ok(fs.existsSync(path.join(stateDir, 'allocations.json')));
  assert.deepEqual(fs.readdirSync(stateDir), ['allocations.json'], 'no temp files left behind');

  // A new service sorting before the others, added while the agent was down, must not take their
  // addresses; `web` keeps everything it had.
  fs.writeFileSync(path.join(dir, '0.yaml'), service('aaa', '{type: NodePort, ports: [{port: 80}]}'));
  const second = await open(t, dir, stateDir);
  second.take();
  assert.deepEqual(spec(second, 'web').clusterIPs, webIps);
  assert.equal(spec(second, 'web').ports![0]!.nodePort, webPort);
  assert.equal(spec(second, 'api').healthCheckNodePort, apiHc);
  assert.ok(!webIps!.includes(spec(second, 'aaa').clusterIP!));

  // A collision is refused, reported with file, document, field and both names.
  const clash = path.join(dir, 'clash.yaml');
  const changes = await write(
    second,
    clash,
    `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n${service('clash', `{clusterIP: ${webIps![0]}}`)}`,
  );
  assert.deepEqual(summary(changes), []);
  assert.deepEqual(second.source.errors(), [
    `clash.yaml#2: Service default/clash spec.clusterIPs[0]: ${webIps![0]} is already allocated to Service default/web`,
  ]);

  // Deleting web releases its address: clash gets it, and the error clears.
  fs.rmSync(path.join(dir, 'a.yaml'));
  await second.source.rescan();
  assert.deepEqual(summary(second.take()), ['add Service default/clash', 'delete Service default/web']);
  assert.equal(spec(second, 'clash').clusterIP, webIps![0]);
  assert.deepEqual(second.source.errors(), []);
  const saved = JSON.parse(fs.readFileSync(path.join(stateDir, 'allocations.json'), 'utf8')) as {
    services: Record<string, unknown>;
  };
  assert.deepEqual(Object.keys(saved.services).sort(), ['default/aaa', 'default/api', 'default/clash']);
});

test('user EndpointSlices pass through; status counts objects, kept kinds and issues', async (t) => {
  const dir = tempDir(t, 'ferry-src-');
  const stateDir = tempDir(t, 'ferry-state-');
  const userSlice = `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ext-1, labels: {kubernetes.io/service-name: ext}}
addressType: IPv4
ports: [{name: '', port: 9000, protocol: TCP}]
endpoints: [{addresses: [192.0.2.10]}]
`;
  fs.writeFileSync(
    path.join(dir, 'ext.yaml'),
    [
      service('ext', '{ports: [{port: 9000}]}'),
      userSlice,
      'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n',
      'kind: Oops\n',
    ].join('---\n'),
  );
  const o = await open(t, dir, stateDir, { serviceCidrs: ['10.96.0.0/16'] });
  const slice = o.state.get('EndpointSlice default/ext-1') as EndpointSlice;
  assert.deepEqual(slice.endpoints, [{ addresses: ['192.0.2.10'] }]);
  assert.equal(slice.metadata.namespace, 'default');
  const status = o.source.status();
  assert.deepEqual(status.objects, { services: 1, endpointSlices: 1, nodes: 0, pods: 0, networkPolicies: 0, namespaces: 0 });
  assert.deepEqual(status.kept, { Deployment: 1 });
  assert.deepEqual(o.source.errors(), ['ext.yaml#4: apiVersion: required']);
  assert.deepEqual((o.state.get('Service default/ext') as Service).spec.ipFamilies, ['IPv4']);
});

test('a corrupt state file is moved aside and allocation starts afresh', async (t) => {
  const dir = tempDir(t, 'ferry-src-');
  const stateDir = tempDir(t, 'ferry-state-');
  fs.writeFileSync(path.join(stateDir, 'allocations.json'), '{"version": 1, "services": {"default/web": ');
  fs.writeFileSync(path.join(dir, 'a.yaml'), service('web', '{ports: [{port: 80}]}'));
  const o = await open(t, dir, stateDir, { serviceCidrs: ['10.96.0.0/16'] });
  assert.equal((o.state.get('Service default/web') as Service).spec.clusterIP, '10.96.1.1');
  const files = fs.readdirSync(stateDir).sort();
  assert.equal(files.length, 2);
  assert.equal(files[0], 'allocations.json');
  assert.match(files[1]!, /^allocations\.json\.corrupt-\d+$/);
});

test("a file broken across a restart does not lose its Services' allocations", async (t) => {
  const dir = tempDir(t, 'ferry-src-');
  const stateDir = tempDir(t, 'ferry-state-');
  const file = path.join(dir, 'a.yaml');
  fs.writeFileSync(file, service('web', '{type: NodePort, ports: [{port: 80}]}'));
  const first = await open(t, dir, stateDir, { serviceCidrs: ['10.96.0.0/16'] });
  const before = (first.state.get('Service default/web') as Service).spec;
  await first.source.close();

  fs.writeFileSync(file, `${service('web', '{type: NodePort, ports: [{port: 80}]}')}  oops: [\n`);
  fs.writeFileSync(path.join(dir, 'b.yaml'), service('other', '{type: NodePort, ports: [{port: 80}]}'));
  const second = await open(t, dir, stateDir, { serviceCidrs: ['10.96.0.0/16'] });
  assert.equal(second.state.has('Service default/web'), false, 'its file never parsed in this run');
  assert.match(second.source.errors()[0]!, /^a\.yaml#1: YAML: /);
  const other = (second.state.get('Service default/other') as Service).spec;
  assert.notEqual(other.clusterIP, before.clusterIP);
  assert.notEqual(other.ports![0]!.nodePort, before.ports![0]!.nodePort);

  second.take();
  await write(second, file, service('web', '{type: NodePort, ports: [{port: 80}]}'));
  const after = (second.state.get('Service default/web') as Service).spec;
  assert.equal(after.clusterIP, before.clusterIP);
  assert.equal(after.ports![0]!.nodePort, before.ports![0]!.nodePort);
});
