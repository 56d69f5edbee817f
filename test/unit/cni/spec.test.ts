// CNI input parsing: every malformed environment or configuration maps to the spec's error code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CniCode,
  CniError,
  formatResult,
  parseEnv,
  parseNetConf,
  peekVersion,
} from '../../../src/cni/spec.ts';

const ENV = {
  CNI_COMMAND: 'ADD',
  CNI_CONTAINERID: 'abc-1.2_3',
  CNI_NETNS: '/run/netns/x',
  CNI_IFNAME: 'eth0',
};
const CONF = {
  cniVersion: '1.1.0',
  name: 'ferry',
  type: 'ferry-cni',
  ipam: { ranges: ['10.244.1.0/24'], dataDir: '/tmp/x' },
};

function code(fn: () => unknown): number {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof CniError, String(error));
    assert.ok(error.message.length > 0);
    return error.cniCode;
  }
  assert.fail('expected a CniError');
}

test('environment: valid ADD parses', () => {
  const env = parseEnv({ ...ENV, CNI_PATH: '/opt/cni/bin::/usr/lib/cni' });
  assert.equal(env.command, 'ADD');
  assert.deepEqual(env.path, ['/opt/cni/bin', '/usr/lib/cni']);
});

const badEnv: [string, Record<string, string | undefined>][] = [
  ['unknown command', { CNI_COMMAND: 'FROB' }],
  ['missing command', { CNI_COMMAND: undefined }],
  ['missing container id', { CNI_CONTAINERID: undefined }],
  ['path trick in container id', { CNI_CONTAINERID: '../../etc' }],
  ['slash in container id', { CNI_CONTAINERID: 'a/b' }],
  ['leading dot container id', { CNI_CONTAINERID: '.hidden' }],
  ['missing ifname', { CNI_IFNAME: undefined }],
  ['over-long ifname', { CNI_IFNAME: 'a234567890123456' }],
  ['ifname with slash', { CNI_IFNAME: 'eth/0' }],
  ['ifname with colon', { CNI_IFNAME: 'eth:0' }],
  ['ifname dot-dot', { CNI_IFNAME: '..' }],
  ['ifname with space', { CNI_IFNAME: 'eth 0' }],
  ['ifname with a dot (the wiring cannot use it)', { CNI_IFNAME: 'eth.0' }],
  ['container id of 77 characters', { CNI_CONTAINERID: 'a'.repeat(77) }],
  ['container id of 10,000 characters', { CNI_CONTAINERID: 'a'.repeat(10_000) }],
  ['missing netns on ADD', { CNI_NETNS: undefined }],
  ['relative netns', { CNI_NETNS: 'run/netns/x' }],
];
for (const [name, patch] of badEnv) {
  test(`environment: ${name} → code 4`, () => {
    const env: Record<string, string | undefined> = { ...ENV, ...patch };
    assert.equal(
      code(() => parseEnv(env)),
      CniCode.invalidEnvironment,
    );
  });
}

test('environment: DEL without netns is fine; VERSION/STATUS/GC need no container', () => {
  assert.equal(parseEnv({ ...ENV, CNI_COMMAND: 'DEL', CNI_IFNAME: 'eth.0' }).ifname, 'eth.0', 'DEL of a never-wired name');
  assert.equal(parseEnv({ ...ENV, CNI_COMMAND: 'DEL', CNI_NETNS: '' }).netns, '');
  for (const c of ['VERSION', 'STATUS', 'GC']) assert.equal(parseEnv({ CNI_COMMAND: c }).command, c);
});

test('config: valid parses, dataDir is per network, ranges in host-local shape too', () => {
  const conf = parseNetConf(
    JSON.stringify({ ...CONF, ipam: { ranges: [[{ subnet: 'fd00::/64' }], '10.0.0.0/24'] } }),
    'ADD',
  );
  assert.deepEqual(conf.ipam.rangeSets.map((set) => set.length), [1, 1]);
  assert.equal(conf.ipam.dataDir, '/var/lib/ferry/cni/networks/ferry');
  const k8s = parseNetConf(JSON.stringify({ ...CONF, ipam: undefined, podCIDRs: ['10.244.7.0/24'] }), 'ADD');
  assert.equal(k8s.ipam.rangeSets[0]![0]!.prefix, 24);
  const set = parseNetConf(
    JSON.stringify({ ...CONF, ipam: { ranges: [[{ subnet: '10.0.0.0/24' }, { subnet: '10.1.0.0/24' }], ['fd00::/64']] } }),
    'ADD',
  );
  assert.deepEqual(set.ipam.rangeSets.map((s) => s.map((r) => r.prefix)), [[24, 24], [64]], 'a range set stays one set');
});

const badConf: [string, string, number][] = [
  ['not JSON', '{', CniCode.decodeFailure],
  ['not an object', '[1]', CniCode.decodeFailure],
  ['unsupported version', JSON.stringify({ ...CONF, cniVersion: '0.2.0' }), CniCode.incompatibleVersion],
  ['future version', JSON.stringify({ ...CONF, cniVersion: '9.0.0' }), CniCode.incompatibleVersion],
  ['missing version', JSON.stringify({ ...CONF, cniVersion: undefined }), CniCode.invalidConfig],
  ['missing name', JSON.stringify({ ...CONF, name: undefined }), CniCode.invalidConfig],
  ['name with slash', JSON.stringify({ ...CONF, name: '../x' }), CniCode.invalidConfig],
  ['missing type', JSON.stringify({ ...CONF, type: '' }), CniCode.invalidConfig],
  ['no ranges', JSON.stringify({ ...CONF, ipam: {} }), CniCode.invalidConfig],
  ['bad CIDR', JSON.stringify({ ...CONF, ipam: { ranges: ['10.244.1.0/33'] } }), CniCode.invalidConfig],
  ['mixed families in a range set', JSON.stringify({ ...CONF, ipam: { ranges: [['10.0.0.0/24', 'fd00::/64']] } }), CniCode.invalidConfig],
  ['two IPv4 range sets', JSON.stringify({ ...CONF, ipam: { ranges: ['10.0.0.0/24', '10.1.0.0/24'] } }), CniCode.invalidConfig],
  ['empty range set', JSON.stringify({ ...CONF, ipam: { ranges: [[]] } }), CniCode.invalidConfig],
  ['overlapping ranges in a set', JSON.stringify({ ...CONF, ipam: { ranges: [['10.0.0.0/16', '10.0.1.0/24']] } }), CniCode.invalidConfig],
  ['/31 too small', JSON.stringify({ ...CONF, ipam: { ranges: ['10.244.1.0/31'] } }), CniCode.invalidConfig],
  [
    'duplicate range',
    JSON.stringify({ ...CONF, ipam: { ranges: ['10.0.0.0/24', '10.0.0.5/24'] } }),
    CniCode.invalidConfig,
  ],
  [
    'relative dataDir',
    JSON.stringify({ ...CONF, ipam: { ranges: ['10.0.0.0/24'], dataDir: 'x' } }),
    CniCode.invalidConfig,
  ],
  ['bad mtu', JSON.stringify({ ...CONF, mtu: 70000 }), CniCode.invalidConfig],
  ['prevResult not object', JSON.stringify({ ...CONF, prevResult: 3 }), CniCode.invalidConfig],
  ['prevResult ips not list', JSON.stringify({ ...CONF, prevResult: { ips: {} } }), CniCode.invalidConfig],
  ['runtimeConfig.ips not a list', JSON.stringify({ ...CONF, runtimeConfig: { ips: '10.244.1.9' } }), CniCode.invalidConfig],
  ['runtimeConfig.ips not an IP', JSON.stringify({ ...CONF, runtimeConfig: { ips: ['pod-a'] } }), CniCode.invalidConfig],
  ['runtimeConfig.ips outside ranges', JSON.stringify({ ...CONF, runtimeConfig: { ips: ['10.9.9.9'] } }), CniCode.invalidConfig],
  [
    'runtimeConfig.ips two of a family',
    JSON.stringify({ ...CONF, runtimeConfig: { ips: ['10.244.1.9', '10.244.1.10'] } }),
    CniCode.invalidConfig,
  ],
];

test('config: the ips capability (runtimeConfig.ips) is parsed to canonical addresses', () => {
  const conf = parseNetConf(
    JSON.stringify({
      ...CONF,
      ipam: { ranges: ['10.244.1.0/24', 'fd00:10:244:1::/64'], dataDir: '/tmp/x' },
      runtimeConfig: { ips: ['10.244.1.9/24', 'fd00:10:244:1:0::9'] },
    }),
    'ADD',
  );
  assert.deepEqual(conf.ipam.requested, ['10.244.1.9', 'fd00:10:244:1::9']);
});
for (const [name, stdin, want] of badConf) {
  test(`config: ${name} → code ${want}`, () =>
    assert.equal(
      code(() => parseNetConf(stdin, 'ADD')),
      want,
    ));
}

test('config: STATUS and GC need 1.1.0; GC attachments are checked', () => {
  const old = JSON.stringify({ ...CONF, cniVersion: '1.0.0' });
  assert.equal(
    code(() => parseNetConf(old, 'STATUS')),
    CniCode.incompatibleVersion,
  );
  assert.equal(
    code(() => parseNetConf(old, 'GC')),
    CniCode.incompatibleVersion,
  );
  const bad = JSON.stringify({ ...CONF, 'cni.dev/valid-attachments': [{ containerID: 1 }] });
  assert.equal(
    code(() => parseNetConf(bad, 'GC')),
    CniCode.invalidConfig,
  );
  const good = parseNetConf(
    JSON.stringify({ ...CONF, 'cni.dev/valid-attachments': [{ containerID: 'a', ifname: 'eth0' }] }),
    'GC',
  );
  assert.deepEqual(good.validAttachments, [{ containerId: 'a', ifname: 'eth0' }]);
});

test('error JSON and version peeking', () => {
  const e = new CniError(CniCode.incompatibleVersion, 'bad', 'more');
  assert.deepEqual(e.toJson('0.4.0'), { cniVersion: '0.4.0', code: 1, msg: 'bad', details: 'more' });
  assert.equal(peekVersion('{"cniVersion":"0.4.0"}'), '0.4.0');
  assert.equal(peekVersion('garbage'), '1.1.0');
  assert.equal(peekVersion('{"cniVersion":"7.7.7"}'), '1.1.0');
});

test('results: pre-1.0 versions tag each IP with its family', () => {
  const r = { cniVersion: 'x', ips: [{ address: '10.0.0.2/32' }, { address: 'fd00::2/128' }] };
  assert.deepEqual(
    formatResult(r, '0.4.0').ips!.map((i) => (i as { version?: string }).version),
    ['4', '6'],
  );
  assert.equal((formatResult(r, '1.1.0').ips![0] as { version?: string }).version, undefined);
});
