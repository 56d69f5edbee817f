// The agent's CNI configuration writer: the own Node's pod CIDRs become a conflist the runtime
// reads, and the plugin entry in it is one ferry-cni accepts as a runtime would hand it over.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { pino } from 'pino';
import { CniConfigWriter, CNI_CONFLIST } from '../../../src/agent/cni-config.ts';
import { parseNetConf } from '../../../src/cni/spec.ts';
import type { Node } from '../../../src/model/k8s.ts';

const node = (name: string, podCIDRs?: string[]): Node => ({
  metadata: { name },
  ...(podCIDRs ? { spec: { podCIDRs } } : {}),
});

test('the own Node with pod CIDRs writes a conflist; others, and a Node without CIDRs, do not', (t) => {
  const dir = mkdtempSync(`${tmpdir()}/ferry-cniconf-`);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const writer = new CniConfigWriter({ self: 'node-1', confDir: dir, log: pino({ level: 'silent' }) });
  writer.onChange({ kind: 'Node', previous: undefined, current: node('node-2', ['10.244.2.0/24']) });
  writer.onChange({ kind: 'Node', previous: undefined, current: node('node-1') });
  assert.deepEqual(readdirSync(dir), [], 'no config before the own Node has a pod CIDR');

  writer.onChange({ kind: 'Node', previous: node('node-1'), current: node('node-1', ['10.244.1.0/24', 'fd00:10:244:1::/64']) });
  const list = JSON.parse(readFileSync(`${dir}/${CNI_CONFLIST}`, 'utf8')) as {
    cniVersion: string;
    name: string;
    plugins: Record<string, unknown>[];
  };
  assert.deepEqual(list.plugins.map((p) => p.type), ['ferry-cni', 'portmap']);
  // What the runtime hands the plugin: the entry plus the list's name and version.
  const conf = parseNetConf(JSON.stringify({ ...list.plugins[0], name: list.name, cniVersion: list.cniVersion }), 'ADD');
  assert.deepEqual(conf.ipam.rangeSets.map((set) => set.map((r) => r.prefix)), [[24], [64]]);

  // A re-assigned CIDR rewrites; deleting the own Node leaves the last config for existing pods.
  writer.onChange({ kind: 'Node', previous: undefined, current: node('node-1', ['10.244.9.0/24']) });
  writer.onChange({ kind: 'Node', previous: node('node-1', ['10.244.9.0/24']), current: undefined });
  assert.match(readFileSync(`${dir}/${CNI_CONFLIST}`, 'utf8'), /10\.244\.9\.0\/24/);
  assert.deepEqual(readdirSync(dir), [CNI_CONFLIST], 'no temporary file left behind');
});
