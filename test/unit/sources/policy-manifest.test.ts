// The standalone source's policy kinds: NetworkPolicy and Namespace documents are read beside the
// Service kinds, every structural problem names the object and the field, and the source delivers
// policies, namespaces and pods (projected to what policy reads) through onPolicyChange.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseManifestFile } from '../../../src/sources/manifest/parse.ts';
import { ManifestSource, type ManifestChange, type ManifestPolicyChange } from '../../../src/sources/manifest/source.ts';

const policy = (spec: string, meta = '{name: deny, namespace: shop}'): string =>
  `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: ${meta}\nspec: ${spec}\n`;

test('NetworkPolicy and Namespace documents become objects: the policy namespaced, the Namespace not', () => {
  const text = [
    policy(
      '{podSelector: {matchLabels: {app: db}}, policyTypes: [Ingress], ingress: [{from: [{namespaceSelector: {matchExpressions: [{key: team, operator: In, values: [a]}]}, podSelector: {}}, {ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}], ports: [{port: db}, {protocol: UDP, port: 53, endPort: 60}]}]}',
    ),
    policy('{podSelector: {}}', '{name: default-deny}'),
    'apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, namespace: ignored, labels: {team: a}}\n',
  ].join('---\n');
  const r = parseManifestFile('policy.yaml', text);
  assert.deepEqual(r.issues, []);
  assert.deepEqual(
    r.objects.map((o) => [o.identity, o.entry.kind]),
    [
      ['NetworkPolicy shop/deny', 'NetworkPolicy'],
      ['NetworkPolicy default/default-deny', 'NetworkPolicy'],
      ['Namespace shop', 'Namespace'],
    ],
  );
  assert.equal(r.objects[1]!.entry.object.metadata.namespace, 'default', 'namespace defaulted as kubectl does');
  assert.equal(r.objects[2]!.entry.object.metadata.namespace, undefined, 'Namespaces are cluster-scoped');
});

// Each bad document: [spec, field named]. The object is always NetworkPolicy shop/deny.
const SHAPE_ERRORS: readonly (readonly [string, string, string])[] = [
  ['', 'spec', 'required'],
  ['[1]', 'spec', 'must be an object'],
  ['{podSelector: [a]}', 'spec.podSelector', 'must be an object'],
  ['{podSelector: {matchLabels: {app: [x]}}}', 'spec.podSelector.matchLabels.app', 'must be a string'],
  ['{podSelector: {matchExpressions: [{key: 1, operator: In}]}}', 'spec.podSelector.matchExpressions[0].key', 'must be a string'],
  ['{podSelector: {matchExpressions: [{key: a, operator: In, values: a}]}}', 'spec.podSelector.matchExpressions[0].values', 'must be a list'],
  ['{podSelector: {}, policyTypes: Ingress}', 'spec.policyTypes', 'must be a list'],
  ['{podSelector: {}, ingress: {}}', 'spec.ingress', 'must be a list'],
  ['{podSelector: {}, egress: [1]}', 'spec.egress[0]', 'must be an object'],
  ['{podSelector: {}, ingress: [{ports: [{port: [80]}]}]}', 'spec.ingress[0].ports[0].port', 'must be a number or a port name'],
  ['{podSelector: {}, ingress: [{ports: [{port: 80, endPort: x}]}]}', 'spec.ingress[0].ports[0].endPort', 'must be an integer in 0..65535, got "x"'],
  ['{podSelector: {}, ingress: [{ports: [{protocol: 6}]}]}', 'spec.ingress[0].ports[0].protocol', 'must be a string'],
  ['{podSelector: {}, ingress: [{from: [{namespaceSelector: 1}]}]}', 'spec.ingress[0].from[0].namespaceSelector', 'must be an object'],
  ['{podSelector: {}, egress: [{to: [{ipBlock: {cidr: 10}}]}]}', 'spec.egress[0].to[0].ipBlock.cidr', 'must be a string'],
  ['{podSelector: {}, egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8, except: [1]}}]}]}', 'spec.egress[0].to[0].ipBlock.except[0]', 'must be a string'],
];

test('every structural problem of a NetworkPolicy names the object and the field, and spares the other documents', () => {
  for (const [spec, field, message] of SHAPE_ERRORS) {
    const doc = spec === '' ? 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: shop}\n' : policy(spec);
    const r = parseManifestFile('p.yaml', `${doc}---\n${policy('{podSelector: {}}', '{name: ok}')}`);
    assert.deepEqual(r.issues, [{ file: 'p.yaml', document: 1, object: 'NetworkPolicy shop/deny', field, message }], spec);
    assert.deepEqual(r.objects.map((o) => o.identity), ['NetworkPolicy default/ok'], spec);
  }
});

test('a wrong apiVersion or bad labels on a Namespace or NetworkPolicy name the object and field', () => {
  const r = parseManifestFile(
    'p.yaml',
    [
      'apiVersion: networking.k8s.io/v1beta1\nkind: NetworkPolicy\nmetadata: {name: old}\nspec: {podSelector: {}}\n',
      'apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {team: [a]}}\n',
      'apiVersion: v1\nkind: Namespace\nmetadata: {name: Shop}\n',
    ].join('---\n'),
  );
  assert.deepEqual(
    r.issues.map((i) => [i.document, i.object, i.field, i.message]),
    [
      [1, 'NetworkPolicy default/old', 'apiVersion', 'NetworkPolicy must be networking.k8s.io/v1, got "networking.k8s.io/v1beta1"'],
      [2, 'Namespace shop', 'metadata.labels.team', 'must be a string'],
      [3, undefined, 'metadata.name', '"Shop" is not a valid name'],
    ],
  );
});

function tempDir(t: TestContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-policy-src-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const POD = `apiVersion: v1
kind: Pod
metadata: {name: db-0, namespace: shop, labels: {app: db}}
spec: {nodeName: node-1, containers: [{name: c, ports: [{name: db, containerPort: 5432}, {containerPort: 9090}]}]}
status: {podIPs: [{ip: 10.244.1.7}, {ip: "fd00::0:7"}]}
`;

test('the source delivers policies, namespaces and projected pods through onPolicyChange, never through onChange', async (t) => {
  const dir = tempDir(t);
  const stateDir = tempDir(t);
  fs.writeFileSync(path.join(dir, 'a.yaml'), [policy('{podSelector: {}}'), 'apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {team: a}}\n', POD].join('---\n'));
  const model: ManifestChange[] = [];
  let policyChanges: ManifestPolicyChange[] = [];
  const source = ManifestSource.open(dir, {
    stateDir,
    debounceMs: 20,
    rescanMs: 600_000,
    onChange: (c) => model.push(c),
    onPolicyChange: (c) => policyChanges.push(c),
  });
  t.after(() => source.close());
  await source.initialListDone;
  assert.deepEqual(model, [], 'no Service kind in the directory');
  assert.deepEqual(
    policyChanges.map((c) => [c.kind, c.key, c.previous === undefined]),
    [
      ['Namespace', 'shop', true],
      ['PolicyPod', 'shop/db-0', true],
      ['NetworkPolicy', 'shop/deny', true],
    ],
  );
  assert.deepEqual(policyChanges[0]!.current, { name: 'shop', labels: { team: 'a' } });
  assert.deepEqual(policyChanges[1]!.current, {
    namespace: 'shop',
    name: 'db-0',
    labels: { app: 'db' },
    ips: ['10.244.1.7', 'fd00::7'],
    node: 'node-1',
    ports: [{ name: 'db', containerPort: 5432 }],
  });
  assert.equal(source.status().objects.networkPolicies, 1);
  assert.equal(source.status().objects.namespaces, 1);

  // Deleting the policy is one change; the unchanged pod and namespace say nothing.
  policyChanges = [];
  fs.writeFileSync(path.join(dir, 'a.yaml'), ['apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {team: a}}\n', POD].join('---\n'));
  await source.rescan();
  assert.deepEqual(
    policyChanges.map((c) => [c.kind, c.key, c.current === undefined]),
    [['NetworkPolicy', 'shop/deny', true]],
  );
});
