// The oracle's plumbing fails loudly and precisely: a malformed export names the JSON path at
// fault, and the exporter refuses a bad probe model naming the pod and field, so a lab test never
// compares Ferry with a half-read or wrongly modelled truth table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  exportCases,
  OracleFormatError,
  parseOracleExport,
  readProbeModel,
  type ProbeModel,
} from '../../support/cyclonus.ts';

const cell = {
  from: 'x/a',
  to: 'x/b',
  protocol: 'TCP',
  port: 80,
  portName: 'serve-80-tcp',
  verdict: 'allowed',
  ingress: 'allowed',
  egress: 'allowed',
};
const step = {
  probe: { mode: 'service-name', allAvailable: true },
  actions: [],
  namespaces: { x: { ns: 'x' } },
  pods: [],
  policies: [],
  truthTable: [cell],
};
const doc = (over: object = {}): object => ({
  cyclonus: 'v0.5.6',
  countsByTag: { 'end-port': 1 },
  cases: [{ index: 0, description: 'd', tags: ['end-port'], steps: [{ ...step, ...over }] }],
});

test('a well-formed export parses into the same values', () => {
  const parsed = parseOracleExport(doc());
  assert.deepEqual(parsed.cases[0]!.steps[0]!.truthTable, [cell]);
});

const malformed: [string, object, string][] = [
  [
    'unknown verdict',
    doc({ truthTable: [{ ...cell, verdict: 'maybe' }] }),
    '$.cases[0].steps[0].truthTable[0].verdict',
  ],
  ['port as text', doc({ truthTable: [{ ...cell, port: '80' }] }), '$.cases[0].steps[0].truthTable[0].port'],
  [
    'probe without its direction verdicts',
    doc({ truthTable: [{ ...cell, egress: undefined }] }),
    '$.cases[0].steps[0].truthTable[0].egress',
  ],
  ['unknown action', doc({ actions: [{ kind: 'reboot' }] }), '$.cases[0].steps[0].actions[0].kind'],
  [
    'policy of another kind',
    doc({
      actions: [
        {
          kind: 'create-policy',
          policy: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'x' }, spec: {} },
        },
      ],
    }),
    '$.cases[0].steps[0].actions[0].policy.apiVersion',
  ],
  ['labels not strings', doc({ namespaces: { x: { ns: 1 } } }), '$.cases[0].steps[0].namespaces.x.ns'],
  ['no steps', { ...doc(), cases: [{ index: 0, description: 'd', tags: [] }] }, '$.cases[0].steps'],
];

for (const [name, value, path] of malformed) {
  test(`malformed export (${name}) names ${path}`, () => {
    assert.throws(
      () => parseOracleExport(value),
      (e: unknown) => e instanceof OracleFormatError && e.path === path && e.message.includes(path),
    );
  });
}

test('the exporter refuses a bad probe model, naming the pod and field', async () => {
  const model = readProbeModel();
  const bad: ProbeModel = {
    ...model,
    pods: model.pods.map((p, i) => (i === 4 ? { ...p, ip: '10.244.2.300' } : p)),
  };
  await assert.rejects(
    exportCases(bad, { limit: 1 }),
    /pods\[4\] \(y\/b\): ip "10\.244\.2\.300" is not an IPv4 address/,
  );
});

test('the exporter refuses an unknown tag and names the known ones', async () => {
  await assert.rejects(
    exportCases(readProbeModel(), { include: ['end-ports'] }),
    /invalid tags: end-ports \(known tags: .*end-port/,
  );
});

test('a case that creates a pod the model gives no address fails naming that pod', async () => {
  const { createdPodIPs: _, ...model } = readProbeModel();
  await assert.rejects(
    exportCases(model, { include: ['create-pod'] }),
    /create pod x\/d: the probe model's createdPodIPs has no address/,
  );
});
