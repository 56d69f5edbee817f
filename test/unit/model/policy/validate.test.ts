// Validation as the API server does it: each bad policy is refused with the object and the exact
// field path kubectl would print, and good policies (including the odd-looking legal ones) pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateNetworkPolicy } from '../../../../src/model/policy/validate.ts';
import type { NetworkPolicySpec } from '../../../../src/model/policy/api.ts';
import { isPortName } from '../../../../src/model/policy/names.ts';
import { InvalidObjectError } from '../../../../src/common/errors.ts';
import { policy } from './fixtures.ts';

const from = (peer: object): NetworkPolicySpec => ({
  podSelector: {},
  ingress: [{ from: [{ podSelector: {} }, peer] }],
});
const port = (p: object): NetworkPolicySpec => ({ podSelector: {}, egress: [{ ports: [{ port: 80 }, p] }] });
const cast = <T>(v: unknown): T => v as T;

const bad: [string, NetworkPolicySpec, string, RegExp][] = [
  [
    'except outside cidr',
    from({ ipBlock: { cidr: '10.0.0.0/16', except: ['10.1.0.0/24'] } }),
    'spec.ingress[0].from[1].ipBlock.except[0]',
    /strict subset/,
  ],
  [
    'except equal to cidr',
    from({ ipBlock: { cidr: '10.0.0.0/16', except: ['10.0.0.0/24', '10.0.0.0/16'] } }),
    'spec.ingress[0].from[1].ipBlock.except[1]',
    /strict subset/,
  ],
  [
    'except of the other family',
    from({ ipBlock: { cidr: '10.0.0.0/8', except: ['fd00::/64'] } }),
    'spec.ingress[0].from[1].ipBlock.except[0]',
    /strict subset/,
  ],
  [
    'cidr with host bits',
    from({ ipBlock: { cidr: '10.0.0.1/8' } }),
    'spec.ingress[0].from[1].ipBlock.cidr',
    /bits set beyond the prefix/,
  ],
  [
    'cidr with leading zeros',
    from({ ipBlock: { cidr: '010.0.0.0/8' } }),
    'spec.ingress[0].from[1].ipBlock.cidr',
    /not a valid CIDR/,
  ],
  [
    'cidr not a cidr',
    from({ ipBlock: { cidr: '10.0.0.0' } }),
    'spec.ingress[0].from[1].ipBlock.cidr',
    /not a valid CIDR/,
  ],
  [
    'cidr IPv4-mapped',
    from({ ipBlock: { cidr: '::ffff:10.0.0.0/104' } }),
    'spec.ingress[0].from[1].ipBlock.cidr',
    /IPv4-mapped/,
  ],
  ['cidr missing', from({ ipBlock: { cidr: '' } }), 'spec.ingress[0].from[1].ipBlock.cidr', /required/],
  [
    'ipBlock with a selector',
    from({ ipBlock: { cidr: '10.0.0.0/8' }, podSelector: {} }),
    'spec.ingress[0].from[1]',
    /both ipBlock and another peer/,
  ],
  ['empty peer', from({}), 'spec.ingress[0].from[1]', /must specify a peer/],
  [
    'endPort below port',
    port({ port: 90, endPort: 80 }),
    'spec.egress[0].ports[1].endPort',
    /greater than or equal/,
  ],
  [
    'endPort with a named port',
    port({ port: 'http', endPort: 80 }),
    'spec.egress[0].ports[1].endPort',
    /non-numeric/,
  ],
  ['endPort without port', port({ endPort: 80 }), 'spec.egress[0].ports[1].endPort', /not specified/],
  [
    'endPort out of range',
    port({ port: 80, endPort: 70000 }),
    'spec.egress[0].ports[1].endPort',
    /not a port/,
  ],
  ['port 0', port({ port: 0 }), 'spec.egress[0].ports[1].port', /not a port/],
  ['port 65536', port({ port: 65536 }), 'spec.egress[0].ports[1].port', /not a port/],
  [
    'protocol ICMP',
    port({ protocol: 'ICMP' }),
    'spec.egress[0].ports[1].protocol',
    /unsupported value "ICMP"/,
  ],
  [
    'port name too long',
    port({ port: 'a-very-long-port-name' }),
    'spec.egress[0].ports[1].port',
    /IANA_SVC_NAME/,
  ],
  ['port name of digits', port({ port: '8080' }), 'spec.egress[0].ports[1].port', /IANA_SVC_NAME/],
  ['port name with --', port({ port: 'my--port' }), 'spec.egress[0].ports[1].port', /IANA_SVC_NAME/],
  ['port name upper case', port({ port: 'HTTP' }), 'spec.egress[0].ports[1].port', /IANA_SVC_NAME/],
  [
    'policyType Both',
    { podSelector: {}, policyTypes: cast(['Ingress', 'Both']) },
    'spec.policyTypes[1]',
    /unsupported value "Both"/,
  ],
  [
    'three policyTypes',
    { podSelector: {}, policyTypes: ['Ingress', 'Egress', 'Ingress'] },
    'spec.policyTypes',
    /more than two/,
  ],
  [
    'In without values',
    { podSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: [] }] } },
    'spec.podSelector.matchExpressions[0].values',
    /must be specified/,
  ],
  [
    'Exists with values',
    { podSelector: { matchExpressions: [{ key: 'app', operator: 'Exists', values: ['x'] }] } },
    'spec.podSelector.matchExpressions[0].values',
    /may not be specified/,
  ],
  [
    'unknown operator',
    { podSelector: { matchExpressions: [{ key: 'app', operator: cast('Gt') }] } },
    'spec.podSelector.matchExpressions[0].operator',
    /unsupported value "Gt"/,
  ],
  [
    'bad expression key',
    { podSelector: { matchExpressions: [{ key: 'a/b/c', operator: 'Exists' }] } },
    'spec.podSelector.matchExpressions[0].key',
    /label key/,
  ],
  [
    'bad expression value',
    { podSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['ok', 'not ok'] }] } },
    'spec.podSelector.matchExpressions[0].values[1]',
    /label value/,
  ],
  [
    'bad matchLabels key',
    from({ namespaceSelector: { matchLabels: { '-x': 'y' } } }),
    'spec.ingress[0].from[1].namespaceSelector.matchLabels.-x',
    /label key/,
  ],
  [
    'bad matchLabels value',
    from({ podSelector: { matchLabels: { app: 'x'.repeat(64) } } }),
    'spec.ingress[0].from[1].podSelector.matchLabels.app',
    /label value/,
  ],
  ['missing podSelector', cast({}), 'spec.podSelector', /required/],
];

for (const [what, spec, field, message] of bad) {
  test(`validation: ${what} → ${field}`, () => {
    const errors = validateNetworkPolicy(policy('prod', 'p1', spec));
    const hit = errors.find((e) => e.field === field);
    assert.ok(hit, `expected an error on ${field}, got ${errors.map((e) => e.message).join('; ') || 'none'}`);
    assert.ok(hit instanceof InvalidObjectError);
    assert.equal(hit.code, 'FERRY_E_INVALID_OBJECT');
    assert.equal(hit.object, 'NetworkPolicy prod/p1');
    assert.ok(hit.message.startsWith(`NetworkPolicy prod/p1: ${field}: `), hit.message);
    assert.match(hit.message, message);
  });
}

test('a bad name is refused on metadata.name', () => {
  const errors = validateNetworkPolicy(policy('prod', 'Bad_Name', { podSelector: {} }));
  assert.deepEqual(
    errors.map((e) => e.field),
    ['metadata.name'],
  );
});

test('legal policies pass, including the unusual shapes upstream accepts', () => {
  const good: NetworkPolicySpec[] = [
    { podSelector: {} },
    { podSelector: {}, policyTypes: ['Ingress', 'Egress'], ingress: [], egress: [] },
    { podSelector: {}, ingress: [{}], egress: [{ to: [], ports: [] }] },
    {
      podSelector: { matchLabels: { 'example.com/app': 'web', empty: '' } },
      ingress: [{ from: [{ podSelector: {}, namespaceSelector: {} }] }],
    },
    {
      podSelector: {},
      ingress: [{ from: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['10.0.0.0/8', '10.0.0.0/16'] } }] }],
    },
    {
      podSelector: {},
      ingress: [{ from: [{ ipBlock: { cidr: 'fd00::/8', except: ['fd00:0:0:1::/64'] } }] }],
    },
    {
      podSelector: {},
      egress: [
        {
          ports: [
            { port: 1, endPort: 65535, protocol: 'SCTP' },
            { protocol: 'UDP' },
            { port: 'dns-tcp' },
            { port: 53, endPort: 53 },
          ],
        },
      ],
    },
  ];
  for (const spec of good)
    assert.deepEqual(validateNetworkPolicy(policy('prod', 'ok', spec)), [], JSON.stringify(spec));
});

test('IANA_SVC_NAME: 1-15 characters, a letter, no hyphen at an end or doubled', () => {
  assert.deepEqual(
    ['http', 'h2c', 'serve-80-tcp', 'a', '123456789012345a', '1a', '-a', 'a-', 'a--b', '80', ''].map(
      isPortName,
    ),
    [true, true, true, true, false, true, false, false, false, false, false],
  );
});
