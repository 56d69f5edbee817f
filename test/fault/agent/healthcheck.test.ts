// Defect 14: the healthCheckNodePort listener bound `::` whatever --nodeport-addresses said; it
// must answer only on the NodePort addresses, as kube-proxy binds them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { agentEnv, getInNetns, waitReady } from './support/agent-env.ts';
import { faultTable } from '../support/fault-table.ts';

const table = faultTable('agent: healthCheckNodePort');
const HC_PORT = 32123;

test('healthCheckNodePort listeners bind only the --nodeport-addresses', async (t) => {
  const env = agentEnv(t);
  const dev = `fa${env.id.slice(0, 6)}`;
  const ip = (...args: string[]): void => void execFileSync('ip', ['-n', env.netns, ...args]);
  ip('link', 'add', dev, 'type', 'veth', 'peer', 'name', `${dev}p`);
  ip('addr', 'add', '10.77.0.1/24', 'dev', dev);
  ip('addr', 'add', '10.78.0.1/24', 'dev', dev);
  ip('link', 'set', dev, 'up');
  ip('link', 'set', `${dev}p`, 'up');
  const docs = [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'lb', namespace: 'default' },
      spec: {
        type: 'LoadBalancer',
        clusterIP: '10.96.8.1',
        externalTrafficPolicy: 'Local',
        healthCheckNodePort: HC_PORT,
        selector: { app: 'lb' },
        ports: [{ port: 80, targetPort: 8080, nodePort: 31123 }],
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'lb-0', namespace: 'default', labels: { app: 'lb' } },
      spec: { nodeName: 'node-1', containers: [{ name: 'web', ports: [{ containerPort: 8080 }] }] },
      status: { phase: 'Running', podIP: '10.244.8.1', conditions: [{ type: 'Ready', status: 'True' }] },
    },
  ];
  fs.writeFileSync(path.join(env.manifests, 'lb.yaml'), docs.map((d) => stringify(d)).join('---\n'));
  // A later --node-addresses overrides the env's default one.
  const agent = env.start(['--nodeport-interfaces', dev, '--nodeport-addresses', '10.77.0.0/24', '--node-addresses', '10.77.0.1,10.78.0.1']);
  await waitReady(env, agent);

  const listeners = (): string[] =>
    execFileSync('ip', ['netns', 'exec', env.netns, 'ss', '-Hltn', `sport = :${HC_PORT}`], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map((l) => l.trim().split(/\s+/)[3]!);
  const deadline = performance.now() + 10_000;
  while (listeners().length === 0 && performance.now() < deadline) await sleep(100);
  assert.deepEqual(listeners(), [`10.77.0.1:${HC_PORT}`]);
  assert.equal(getInNetns(env, `http://10.77.0.1:${HC_PORT}/`).status, 200);
  table.row('--nodeport-addresses 10.77.0.0/24 on a node with 10.77.0.1 and 10.78.0.1', 'healthCheckNodePort listens on 10.77.0.1 only');
  agent.child.kill('SIGTERM');
  assert.equal((await agent.exited(10_000))?.code, 0);
});
