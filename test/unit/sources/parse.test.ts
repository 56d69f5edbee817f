// Reading manifest files: documents become typed objects with defaults; every bad document is
// reported with file, document number and field, and never hides the good ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatIssue, parseManifestFile } from '../../../src/sources/manifest/parse.ts';
import { countKept, isManifestName, mergeFiles } from '../../../src/sources/manifest/directory.ts';

const text = `
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 80, targetPort: http}]}
---
apiVersion: v1
kind: Service
metadata: {namespace: shop}
spec: {}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {a: b}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ext-1, labels: {kubernetes.io/service-name: ext}}
addressType: IPv4
endpoints: [{addresses: [192.0.2.1]}]
---
apiVersion: v1
kind: Node
metadata: {name: node-1, namespace: ignored}
---
# only a comment: an empty document is skipped silently
---
apiVersion: v1
kind: Pod
metadata: {name: web-1}
spec: {containers: [{name: c, ports: [{name: http, containerPort: "8080"}]}]}
`;

test('a multi-document file yields objects, kept kinds and issues naming file#doc and field', () => {
  const r = parseManifestFile('services.yaml', text);
  assert.equal(r.syntaxError, false);
  assert.deepEqual(
    r.objects.map((o) => [o.identity, o.document]),
    [
      ['Service default/web', 1],
      ['EndpointSlice default/ext-1', 4],
      ['Node node-1', 5],
    ],
  );
  const web = r.objects[0]!.entry;
  assert.equal(web.kind, 'Service');
  assert.equal(web.object.metadata.namespace, 'default');
  const node = r.objects[2]!.entry.object;
  assert.equal(node.metadata.namespace, undefined, 'Nodes are cluster-scoped');
  assert.deepEqual(
    r.kept.map((k) => [k.kind, k.identity]),
    [['ConfigMap', 'ConfigMap default/settings']],
  );
  assert.deepEqual(r.issues.map(formatIssue), [
    'services.yaml#2: metadata.name: required',
    'services.yaml#7: Pod default/web-1 spec.containers[0].ports[0].containerPort: must be an integer in 1..65535, got "8080"',
  ]);
});

test('a YAML syntax error marks the file, names the document and line, and yields no objects', () => {
  const r = parseManifestFile(
    'broken.yaml',
    'apiVersion: v1\nkind: Node\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: [b\n',
  );
  assert.equal(r.syntaxError, true);
  assert.deepEqual(r.objects, []);
  assert.equal(r.issues.length, 1);
  assert.match(formatIssue(r.issues[0]!), /^broken\.yaml#2: YAML: line \d+ column \d+: /);
});

test('wrong apiVersion, missing kind, bad names and bad field types are reported, not fatal', () => {
  const r = parseManifestFile(
    'x.yml',
    [
      'apiVersion: discovery.k8s.io/v1beta1\nkind: EndpointSlice\nmetadata: {name: s}\naddressType: IPv4',
      'apiVersion: v1\nmetadata: {name: a}',
      'apiVersion: v1\nkind: Service\nmetadata: {name: Web_1}',
      'apiVersion: v1\nkind: Service\nmetadata: {name: ok}\nspec: {ports: [{port: 70000}]}',
      'apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: s2}',
      '[1, 2]',
      'apiVersion: v1\nkind: Service\nmetadata: {name: fine}',
    ].join('\n---\n'),
  );
  assert.deepEqual(r.issues.map(formatIssue), [
    'x.yml#1: EndpointSlice default/s apiVersion: EndpointSlice must be discovery.k8s.io/v1, got "discovery.k8s.io/v1beta1"',
    'x.yml#2: kind: required',
    'x.yml#3: metadata.name: "Web_1" is not a valid name',
    'x.yml#4: Service default/ok spec.ports[0].port: must be an integer in 0..65535, got 70000',
    'x.yml#5: EndpointSlice default/s2 addressType: required',
    'x.yml#6: a manifest document must be an object',
  ]);
  assert.deepEqual(
    r.objects.map((o) => o.identity),
    ['Service default/fine'],
  );
});

test('a kind: List is unwrapped; JSON files parse too', () => {
  const list = JSON.stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: [
      { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' } },
      { apiVersion: 'v1', kind: 'Node', metadata: {} },
    ],
  });
  const r = parseManifestFile('list.json', list);
  assert.deepEqual(
    r.objects.map((o) => o.identity),
    ['Node n1'],
  );
  assert.deepEqual(r.issues.map(formatIssue), ['list.json#1: items[1].metadata.name: required']);
});

test('duplicates across files: the first path wins and the loser names both places', () => {
  const svc = (ns: string): string =>
    `apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: ${ns}}\nspec: {}`;
  const files = new Map([
    ['b/two.yaml', parseManifestFile('b/two.yaml', `${svc('default')}\n---\n${svc('other')}`)],
    [
      'a.yaml',
      parseManifestFile(
        'a.yaml',
        `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n${svc('default')}`,
      ),
    ],
    ['c.yaml', parseManifestFile('c.yaml', 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}')],
  ]);
  const merged = mergeFiles(files);
  assert.equal(merged.objects.get('Service default/web')!.file, 'a.yaml');
  assert.equal(merged.objects.get('Service other/web')!.file, 'b/two.yaml');
  assert.deepEqual(merged.issues.map(formatIssue), [
    'b/two.yaml#1: Service default/web duplicate: already defined in a.yaml#2, which is used',
    'c.yaml#1: ConfigMap default/c duplicate: already defined in a.yaml#1',
  ]);
  assert.deepEqual(countKept(merged.kept), { ConfigMap: 1 });
});

test('editor and ConfigMap-volume artefacts are not manifests', () => {
  for (const name of ['a.yaml', 'b.yml', 'c.json', 'D.YAML']) assert.ok(isManifestName(name), name);
  for (const name of ['.a.yaml.swp', '.#a.yaml', 'a.yaml~', 'a.yaml.tmp', '4913', '..data', 'notes.txt'])
    assert.ok(!isManifestName(name), name);
});
