// The cyclonus oracle (issue #14) on the upstream probe model, held to facts about NetworkPolicy
// that need no oracle: an oracle that got these wrong could not judge Ferry. The first run builds
// the exporter (hack/cyclonus/build.sh, minutes cold, cached outside the repo by version).
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { validateNetworkPolicy } from '../../../src/model/policy/validate.ts';
import {
  exportCases,
  readProbeModel,
  type CaseStep,
  type OracleCase,
  type OracleExport,
} from '../../support/cyclonus.ts';

// The tags issue #14 names: ports, end-port, ip-block with and without except, named ports,
// namespaces by default label, conflicts, updates, pod and namespace relabelling, deletes.
const REQUIRED_TAGS = [
  'numbered-port',
  'end-port',
  'ip-block-no-except',
  'ip-block-with-except',
  'named-port',
  'namespaces-by-default-label',
  'conflict',
  'update-policy',
  'set-pod-labels',
  'set-namespace-labels',
  'delete-policy',
  'delete-pod',
  'delete-namespace',
  'upstream-e2e',
];

let corpus: OracleExport;
const model = readProbeModel();

before(
  async () => {
    corpus = await exportCases(model);
  },
  { timeout: 15 * 60_000 },
);

const steps = (): { c: OracleCase; s: CaseStep }[] =>
  corpus.cases.flatMap((c) => c.steps.map((s) => ({ c, s })));
const namespaceOf = (pod: string): string => pod.split('/')[0]!;

test('every step probes every ordered pod pair on every serving port, with a verdict', () => {
  for (const { c, s } of steps()) {
    if (!('allAvailable' in s.probe)) continue;
    const ports = s.pods.length * s.pods.length * 4; // each pod serves TCP and UDP on 80 and 81
    assert.equal(s.truthTable.length, ports, `case ${c.index} "${c.description}"`);
    const keys = new Set(s.truthTable.map((x) => `${x.from}>${x.to}>${x.protocol}/${x.port}`));
    assert.equal(keys.size, ports, `case ${c.index}: a cell repeats`);
    for (const x of s.truthTable)
      assert.ok(x.verdict === 'allowed' || x.verdict === 'denied', `case ${c.index}: ${x.verdict}`);
  }
});

test('with no policy every pair is allowed', () => {
  const empty = steps().filter(({ s }) => s.policies.length === 0);
  assert.ok(empty.length > 0, 'the corpus has a step after its last policy is deleted');
  for (const { c, s } of empty) {
    const denied = s.truthTable.filter((x) => x.verdict !== 'allowed');
    assert.deepEqual(denied, [], `case ${c.index} "${c.description}"`);
  }
});

test('default-deny-ingress in x denies every pair into x and allows all others', () => {
  const isDenyIngressX = (c: OracleCase): boolean => {
    const [only, ...more] = c.steps.flatMap((s) => s.actions);
    if (more.length || only?.kind !== 'create-policy') return false;
    const { metadata, spec } = only.policy;
    return (
      metadata.namespace === 'x' &&
      JSON.stringify(spec.podSelector) === '{}' &&
      JSON.stringify(spec.policyTypes) === '["Ingress"]' &&
      !spec.ingress?.length &&
      spec.egress === undefined
    );
  };
  const cases = corpus.cases.filter(isDenyIngressX);
  assert.equal(cases.length, 1, 'one upstream default-deny-ingress case');
  const table = cases[0]!.steps[0]!.truthTable;
  assert.equal(table.length, 9 * 9 * 4);
  for (const x of table) {
    const into = namespaceOf(x.to) === 'x';
    assert.equal(x.verdict, into ? 'denied' : 'allowed', `${x.from} -> ${x.to} ${x.protocol}/${x.port}`);
    assert.equal(x.egress, 'allowed', 'no egress policy, so egress allows');
  }
});

test('every tag issue #14 names has cases, and the counts are the cases carrying it', (t) => {
  for (const tag of REQUIRED_TAGS) {
    const carrying = corpus.cases.filter((c) => c.tags.includes(tag)).length;
    assert.equal(corpus.countsByTag[tag], carrying, tag);
    assert.ok(carrying > 0, `no case tagged ${tag}`);
  }
  const cells = steps().reduce((n, { s }) => n + s.truthTable.length, 0);
  t.diagnostic(
    `cyclonus ${corpus.cyclonus}: ${corpus.cases.length} cases, ${steps().length} steps, ${cells} truth-table cells`,
  );
  t.diagnostic(REQUIRED_TAGS.map((tag) => `${tag}=${corpus.countsByTag[tag]}`).join(' '));
});

test('every policy a step creates or updates is a valid NetworkPolicy, as the API server judges', () => {
  let policies = 0;
  for (const { c, s } of steps()) {
    for (const a of s.actions) {
      if (a.kind !== 'create-policy' && a.kind !== 'update-policy') continue;
      policies++;
      const problems = validateNetworkPolicy(a.policy).map((e) => e.message);
      assert.deepEqual(problems, [], `case ${c.index} "${c.description}"`);
    }
  }
  assert.ok(policies >= corpus.cases.length, 'every case creates at least one policy');
});

test('a step lists the policies in force after it: creates add, deletes remove', () => {
  for (const c of corpus.cases) {
    const live = new Set<string>();
    for (const s of c.steps) {
      for (const a of s.actions) {
        if (a.kind === 'create-policy') live.add(`${a.policy.metadata.namespace}/${a.policy.metadata.name}`);
        if (a.kind === 'delete-policy') live.delete(`${a.namespace}/${a.name}`);
      }
      assert.deepEqual([...s.policies].sort(), [...live].sort(), `case ${c.index} "${c.description}"`);
    }
  }
});

test('-include selects by tag, -limit caps the count, and indexes stay those of the whole corpus', async () => {
  const some = await exportCases(model, { include: ['end-port'], limit: 3 });
  assert.equal(some.cases.length, 3);
  const full = corpus.cases.filter((c) => c.tags.includes('end-port')).slice(0, 3);
  assert.deepEqual(
    some.cases.map((c) => [c.index, c.description]),
    full.map((c) => [c.index, c.description]),
  );
});

test('every namespace keeps its kubernetes.io/metadata.name label, even after a case replaces its labels', () => {
  let relabelled = 0;
  for (const { c, s } of steps()) {
    for (const [name, labels] of Object.entries(s.namespaces)) {
      assert.equal(labels['kubernetes.io/metadata.name'], name, `case ${c.index}, namespace ${name}`);
    }
    relabelled += s.actions.filter((a) => a.kind === 'set-namespace-labels').length;
  }
  assert.ok(relabelled > 0, 'the corpus relabels a namespace');
});
