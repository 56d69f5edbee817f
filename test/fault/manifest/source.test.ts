// Fault tests for the standalone source (issue #12, defects 1-8): what a node throws at a
// directory of manifests (symlink loops, slow and in-place writers, broken edits, conflicting
// files, a lost allocations.json, bad Pods, huge files) never costs a live Service its addresses,
// never deletes what a broken edit hid, and is reported by file and field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parseServiceCidrs, DEFAULT_SERVICE_CIDRS } from '../../../src/sources/manifest/ranges.ts';
import type { LiveAllocations } from '../../../src/sources/manifest/recovery.ts';
import { faultTable } from '../support/fault-table.ts';
import { docs, programmed, service, sleep, start, tempDir, until } from './harness.ts';

const table = faultTable('standalone source (src/sources/manifest)');

test('defect 1: a symlink loop in the manifest directory is reported by path; the watch keeps working, also after a restart', async (t) => {
  const dir = tempDir(t, 'loop');
  const state = tempDir(t, 'loop-state');
  fs.mkdirSync(path.join(dir, 'sub'));
  fs.writeFileSync(path.join(dir, 'sub', 'a.yaml'), service('a', '{ports: [{port: 80}]}'));
  const first = await start(t, dir, state);
  assert.ok(first.services.has('default/a'));

  // A loop of two links and a link to an ancestor, added while the agent watches.
  fs.symlinkSync('l2.yaml', path.join(dir, 'sub', 'l1.yaml'));
  fs.symlinkSync('l1.yaml', path.join(dir, 'sub', 'l2.yaml'));
  fs.symlinkSync('..', path.join(dir, 'sub', 'up'));
  await sleep(100);
  fs.writeFileSync(path.join(dir, 'sub', 'b.yaml'), service('b', '{ports: [{port: 80}]}'));
  await until(() => first.services.has('default/b'), 'b through the watch');
  const issues = first.source.errors();
  assert.ok(
    issues.some((i) => /^sub\/l1\.yaml: .*ELOOP/.test(i)),
    issues.join('\n'),
  );
  assert.ok(
    issues.some((i) => /^sub\/l2\.yaml: .*ELOOP/.test(i)),
    issues.join('\n'),
  );
  await first.close();

  // Restarted with the loop present: edits still arrive through the watch, not the rescan.
  const second = await start(t, dir, state);
  assert.ok(second.services.has('default/b'));
  fs.writeFileSync(path.join(dir, 'sub', 'c.yaml'), service('c', '{ports: [{port: 80}]}'));
  await until(() => second.services.has('default/c'), 'c through the watch after a restart');
  table.row(
    'symlink loop (l1 -> l2 -> l1, up -> ..)',
    'agent lives, watch survives restarts, ELOOP named by path in status',
  );
});

test('defect 2: a file rewritten in place (truncate, then write slowly) keeps its Services and their ClusterIPs and NodePorts', async (t) => {
  const dir = tempDir(t, 'rewrite');
  const state = tempDir(t, 'rewrite-state');
  const file = path.join(dir, 'apps.yaml');
  const full = docs(
    service('a1', '{type: NodePort, ports: [{port: 80}]}'),
    service('a2', '{ports: [{port: 81}]}'),
  );
  fs.writeFileSync(file, full);
  const r = await start(t, dir, state, { settleMs: 400 });
  const held = (k: string): string => {
    const s = r.services.get(k)!;
    return JSON.stringify([s.spec.clusterIPs, s.spec.ports?.map((p) => p.nodePort)]);
  };
  const before = { a1: held('default/a1'), a2: held('default/a2') };

  // Truncate, and meanwhile another file adds a Service that would take a freed address.
  const fd = fs.openSync(file, 'r+');
  fs.ftruncateSync(fd, 0);
  fs.writeFileSync(path.join(dir, 'b.yaml'), service('b', '{type: NodePort, ports: [{port: 80}]}'));
  await sleep(40);
  fs.writeSync(fd, full.slice(0, full.indexOf('---'))); // the writer is half-way: a valid, shorter file
  await sleep(40);
  fs.writeSync(fd, full.slice(full.indexOf('---')));
  fs.closeSync(fd);
  await r.settle();

  const deleted = r.log.filter((c) => c.kind === 'Service' && c.current === undefined).map((c) => c.key);
  assert.deepEqual(deleted, [], 'nothing left while the file was rewritten');
  assert.deepEqual({ a1: held('default/a1'), a2: held('default/a2') }, before);
  assert.ok(r.services.has('default/b'));
  assert.notEqual(held('default/b'), before.a1);
  table.row(
    'in-place rewrite (truncate, partial, rest)',
    'Services stay, ClusterIP and NodePort unchanged, read once settled',
  );
});

test('defect 3: a parse-level error (port eighty, port 70000, name removed) keeps the last valid version', async (t) => {
  const dir = tempDir(t, 'parse');
  const state = tempDir(t, 'parse-state');
  const file = path.join(dir, 's.yaml');
  fs.writeFileSync(file, service('web', '{ports: [{port: 80}]}'));
  const r = await start(t, dir, state);
  const ip = r.services.get('default/web')!.spec.clusterIP!;
  const served = programmed(r.model);
  assert.ok(served.includes(`${ip}:80/TCP (internal)`));
  const cases: [string, string, RegExp][] = [
    [
      'port eighty',
      service('web', '{ports: [{port: eighty}]}'),
      /Service default\/web spec\.ports\[0\]\.port: must be an integer/,
    ],
    [
      'port 70000',
      service('web', '{ports: [{port: 70000}]}'),
      /Service default\/web spec\.ports\[0\]\.port: must be an integer/,
    ],
    [
      'name removed',
      'apiVersion: v1\nkind: Service\nmetadata: {}\nspec: {ports: [{port: 80}]}\n',
      /metadata\.name: required/,
    ],
  ];
  for (const [what, text, issue] of cases) {
    fs.writeFileSync(file, text);
    await r.settle();
    assert.ok(r.services.has('default/web'), `${what}: the Service is kept`);
    assert.equal(r.services.get('default/web')!.spec.clusterIP, ip);
    assert.deepEqual(programmed(r.model), served, `${what}: the datapath is unchanged`);
    assert.ok(
      r.source.errors().some((e) => issue.test(e)),
      `${what}: ${r.source.errors().join('; ')}`,
    );
  }
  fs.writeFileSync(file, service('web', '{ports: [{port: 8080}]}'));
  await r.settle();
  assert.equal(r.services.get('default/web')!.spec.ports![0]!.port, 8080);
  assert.equal(r.services.get('default/web')!.spec.clusterIP, ip);
  assert.deepEqual(r.source.errors(), []);
  table.row('parse error in a live Service', 'last valid version kept, issue names file, object and field');
});

test('defect 4: a new file that sorts first does not take over a live object; the conflict names both files', async (t) => {
  const dir = tempDir(t, 'conflict');
  const state = tempDir(t, 'conflict-state');
  fs.writeFileSync(path.join(dir, 'b.yaml'), service('web', '{ports: [{port: 80}]}'));
  const r = await start(t, dir, state);
  fs.writeFileSync(path.join(dir, 'a.yaml'), service('web', '{ports: [{port: 9999}]}'));
  await r.settle();
  assert.equal(r.services.get('default/web')!.spec.ports![0]!.port, 80, 'the owner b.yaml keeps it');
  const conflict = r.source.errors().find((e) => e.includes('duplicate'));
  assert.ok(conflict && conflict.startsWith('a.yaml') && conflict.includes('b.yaml'), String(conflict));
  // When the owner lets go, the other definition takes over.
  fs.rmSync(path.join(dir, 'b.yaml'));
  await r.settle();
  assert.equal(r.services.get('default/web')!.spec.ports![0]!.port, 9999);
  table.row('second file defines a live object', 'existing owner keeps it, conflict names both files');
});

test('defect 5: a fixed clusterIP is honoured at a fresh start although a dynamic Service sorts before it', async (t) => {
  const dir = tempDir(t, 'bands');
  const state = tempDir(t, 'bands-state');
  const range = parseServiceCidrs(DEFAULT_SERVICE_CIDRS)[0]!;
  const firstDynamic = range.addressAt(range.dynamicStart); // what a dynamic pick takes first
  fs.writeFileSync(path.join(dir, 'a.yaml'), service('aaa', '{ports: [{port: 80}]}'));
  fs.writeFileSync(
    path.join(dir, 'b.yaml'),
    service('bbb', `{clusterIP: ${firstDynamic}, ports: [{port: 80}]}`),
  );
  const r = await start(t, dir, state);
  assert.deepEqual(r.source.errors(), []);
  assert.equal(r.services.get('default/bbb')!.spec.clusterIP, firstDynamic);
  assert.ok(r.services.has('default/aaa'));
  assert.notEqual(r.services.get('default/aaa')!.spec.clusterIP, firstDynamic);
  table.row('fixed clusterIP after a dynamic one', 'fixed requests allocated first, both Services accepted');
});

test('defect 6: a frontend shared by two Services passes to the survivor when its owner is deleted', async (t) => {
  const dir = tempDir(t, 'shared');
  const state = tempDir(t, 'shared-state');
  const spec = '{externalIPs: [192.0.2.10], ports: [{port: 80}]}';
  fs.writeFileSync(path.join(dir, 'a.yaml'), service('a', spec));
  fs.writeFileSync(path.join(dir, 'b.yaml'), service('b', spec));
  const r = await start(t, dir, state);
  assert.ok(programmed(r.model).includes('192.0.2.10:80/TCP (external)'), programmed(r.model).join());
  fs.rmSync(path.join(dir, 'a.yaml'));
  await r.settle();
  assert.ok(!r.services.has('default/a'));
  assert.ok(
    programmed(r.model).includes('192.0.2.10:80/TCP (external)'),
    'b now serves the shared externalIP',
  );
  table.row('owner of a shared externalIP:port deleted', 'frontend handed to the surviving Service');
});

test('defect 7: a corrupt allocations.json is rebuilt from the live datapath; no live address goes to another Service', async (t) => {
  const dir = tempDir(t, 'corrupt');
  const state = tempDir(t, 'corrupt-state');
  fs.writeFileSync(
    path.join(dir, 'm.yaml'),
    docs(service('mmm', '{ports: [{port: 80}]}'), service('nnn', '{type: NodePort, ports: [{port: 443}]}')),
  );
  const first = await start(t, dir, state);
  const was = (k: string): { ip: string; nodePorts: (number | undefined)[] } => ({
    ip: first.services.get(k)!.spec.clusterIP!,
    nodePorts: first.services.get(k)!.spec.ports!.map((p) => p.nodePort),
  });
  const m = was('default/mmm');
  const n = was('default/nnn');
  await first.close();
  // What run.ts reads back from the pinned maps: ClusterIP frontends, their NodePorts, no names.
  const live: LiveAllocations = {
    frontends: [
      { clusterIP: m.ip, port: 80, protocol: 'TCP' },
      { clusterIP: n.ip, port: 443, protocol: 'TCP', nodePort: n.nodePorts[0]! },
    ],
    nodePorts: [n.nodePorts[0]!],
  };
  fs.writeFileSync(path.join(state, 'allocations.json'), '{"version": 1, "services": {"oops');
  // A new Service that sorts first would have been handed the first freed address.
  fs.writeFileSync(path.join(dir, 'a.yaml'), service('aaa', '{type: NodePort, ports: [{port: 8080}]}'));
  const second = await start(t, dir, state, { liveAllocations: live });
  assert.equal(second.services.get('default/mmm')!.spec.clusterIP, m.ip);
  assert.equal(second.services.get('default/nnn')!.spec.clusterIP, n.ip);
  assert.deepEqual(
    second.services.get('default/nnn')!.spec.ports!.map((p) => p.nodePort),
    n.nodePorts,
  );
  const a = second.services.get('default/aaa')!;
  assert.ok(![m.ip, n.ip].includes(a.spec.clusterIP!));
  assert.notEqual(a.spec.ports![0]!.nodePort, n.nodePorts[0]);
  const status = second.source.status();
  assert.equal(status.allocations.source, 'rebuilt');
  assert.ok(
    second.source
      .errors()
      .some((e) => e.includes('allocations.json') && e.includes('rebuilt from the datapath')),
  );
  assert.ok(
    fs.readdirSync(state).some((f) => f.startsWith('allocations.json.corrupt-')),
    'kept for a post-mortem',
  );
  table.row(
    'corrupt allocations.json',
    'rebuilt from the datapath, live VIPs and NodePorts kept, shown in status',
  );
});

test('defect 7: a failed write of allocations.json leaves no temp file behind and is reported', async (t) => {
  const dir = tempDir(t, 'tmpfile');
  const state = tempDir(t, 'tmpfile-state');
  fs.writeFileSync(path.join(dir, 'a.yaml'), service('a', '{ports: [{port: 80}]}'));
  const r = await start(t, dir, state);
  // The target becomes a non-empty directory: the rename over it fails.
  fs.rmSync(path.join(state, 'allocations.json'));
  fs.mkdirSync(path.join(state, 'allocations.json', 'x'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'b.yaml'), service('b', '{ports: [{port: 80}]}'));
  await r.settle();
  assert.ok(
    r.source.errors().some((e) => e.includes('saving allocations failed')),
    r.source.errors().join('; '),
  );
  assert.deepEqual(
    fs.readdirSync(state).filter((f) => f.includes('.tmp')),
    [],
  );
  table.row('allocations.json write fails', 'reported in status, no temp file left');
});

test('defect 8: a Pod with an invalid podIP is named with its field; the rest stays', async (t) => {
  const dir = tempDir(t, 'podip');
  const state = tempDir(t, 'podip-state');
  const pod = (name: string, ip: string): string =>
    `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, labels: {app: web}}\nspec: {nodeName: node-1, containers: [{name: c}]}\nstatus: {podIPs: [{ip: "${ip}"}], conditions: [{type: Ready, status: "True"}]}\n`;
  fs.writeFileSync(
    path.join(dir, 'a.yaml'),
    docs(
      service('web', '{selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}'),
      pod('good', '10.0.0.5'),
      pod('bad', '10.0.0.999'),
    ),
  );
  const r = await start(t, dir, state);
  const errors = r.source.errors();
  assert.ok(
    errors.some(
      (e) => e.includes('Pod default/bad') && e.includes('status.podIPs[0].ip') && e.includes('10.0.0.999'),
    ),
    errors.join('; '),
  );
  const slices = r.log
    .filter((c) => c.kind === 'EndpointSlice' && c.current)
    .map((c) => JSON.stringify(c.current));
  assert.ok(
    slices.some((s) => s.includes('10.0.0.5')),
    'the good Pod is an endpoint',
  );
  table.row('Pod with podIP 10.0.0.999', 'named by object and field, the other Pods stay');
});

test('defect 8: a file over the size cap is refused by name without being read', async (t) => {
  const dir = tempDir(t, 'big');
  const state = tempDir(t, 'big-state');
  fs.writeFileSync(path.join(dir, 'a.yaml'), service('small', '{ports: [{port: 80}]}'));
  const big = docs(...Array.from({ length: 40 }, (_, i) => service(`big-${i}`, '{ports: [{port: 80}]}')));
  fs.writeFileSync(path.join(dir, 'big.yaml'), big);
  const r = await start(t, dir, state, { maxFileBytes: 1024 });
  assert.ok(big.length > 1024);
  assert.ok(r.services.has('default/small'));
  assert.ok(![...r.services.keys()].some((k) => k.startsWith('default/big-')));
  assert.ok(
    r.source.errors().some((e) => e.startsWith('big.yaml:') && e.includes('over the limit of 1024')),
    r.source.errors().join('; '),
  );
  table.row('manifest over the size cap (--manifest-max-file-bytes)', 'refused by name, unread; other files served');
});

test('defect 2: a file whose mtime is in the future (a skewed NFS clock) is read once it has been quiet', async (t) => {
  const dir = tempDir(t, 'skew');
  const state = tempDir(t, 'skew-state');
  const r = await start(t, dir, state);
  const file = path.join(dir, 'a.yaml');
  fs.writeFileSync(file, service('later', '{ports: [{port: 80}]}'));
  const future = new Date(Date.now() + 3600_000);
  fs.utimesSync(file, future, future);
  await r.settle();
  assert.ok(r.services.has('default/later'));
  table.row('mtime an hour ahead', 'read once its signature has been quiet for the settle time');
});
