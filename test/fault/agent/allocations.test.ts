// Defect 7 end to end: a corrupt allocations.json renumbered every dynamic ClusterIP at the next
// start. The agent now hands the standalone source what its pinned maps serve, so each live
// Service gets its own address back (told apart by the pods it forwards to, even with the same
// ports), and a new Service that sorts first never takes a live one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { agentEnv, waitReady, type AgentEnv } from './support/agent-env.ts';
import { faultTable } from '../support/fault-table.ts';

const table = faultTable('agent: allocations rebuilt from the datapath');

function dynamicService(name: string, podIP: string): string {
  const docs = [
    { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec: { selector: { app: name }, ports: [{ port: 80, targetPort: 8080 }] } },
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: 'default', labels: { app: name } },
      spec: { nodeName: 'node-1', containers: [{ name: 'web', ports: [{ containerPort: 8080 }] }] },
      status: { phase: 'Running', podIP, conditions: [{ type: 'Ready', status: 'True' }] },
    },
  ];
  return docs.map((d) => stringify(d)).join('---\n');
}

const allocationsPath = (env: AgentEnv): string => path.join(env.dir, 'state', 'allocations.json');
function clusterIPs(env: AgentEnv): Record<string, string> {
  const file = JSON.parse(fs.readFileSync(allocationsPath(env), 'utf8')) as { services: Record<string, { clusterIPs: string[] }> };
  return Object.fromEntries(Object.entries(file.services).map(([k, h]) => [k, h.clusterIPs[0]!]));
}

test('a corrupt allocations.json is rebuilt from the pinned maps: no live ClusterIP moves or is reused', async (t) => {
  const env = agentEnv(t);
  for (const [i, name] of ['web-b', 'web-c', 'web-d'].entries())
    fs.writeFileSync(path.join(env.manifests, `${name}.yaml`), dynamicService(name, `10.244.7.${i + 1}`));
  const first = env.start();
  await waitReady(env, first);
  const before = clusterIPs(env);
  assert.equal(Object.keys(before).length, 3);
  first.child.kill('SIGTERM');
  assert.equal((await first.exited(10_000))?.code, 0, first.stderr());

  fs.writeFileSync(allocationsPath(env), '{"version": 1, "services": {tru');
  // Sorts first and asks for an address: renumbering from scratch would hand it web-b's.
  fs.writeFileSync(path.join(env.manifests, 'aaa.yaml'), dynamicService('aaa', '10.244.7.9'));
  fs.rmSync(path.join(env.runDir, 'ready'), { force: true });
  const second = env.start();
  await waitReady(env, second);
  const after = clusterIPs(env);
  for (const [key, ip] of Object.entries(before)) assert.equal(after[key], ip, `${key} moved from ${ip}`);
  assert.ok(after['default/aaa'], 'the new Service got an address');
  assert.ok(!Object.values(before).includes(after['default/aaa']!), `aaa was given a live address ${after['default/aaa']}`);
  const status = JSON.parse(fs.readFileSync(path.join(env.runDir, 'status.json'), 'utf8')) as {
    sourceStatus: { allocations: { source: string; corruption?: string } };
  };
  assert.equal(status.sourceStatus.allocations.source, 'rebuilt');
  assert.ok(status.sourceStatus.allocations.corruption);
  second.child.kill('SIGTERM');
  assert.equal((await second.exited(10_000))?.code, 0, second.stderr());
  table.row('allocations.json corrupt at start', 'rebuilt from the pinned maps: every live ClusterIP kept, none reused; status says rebuilt');
});
