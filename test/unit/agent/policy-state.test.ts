// PolicyState, the agent's NetworkPolicy view: an invalid edit keeps the previous version in
// force and is named by object and field in the agent's status (and so in the status file
// `ferry status` prints), pods, namespaces and nodes make one PolicyCluster, no-op changes count
// for nothing, and none of it reaches the Service model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent, type DatapathResult } from '../../../src/agent/agent.ts';
import { PolicyState } from '../../../src/agent/policy-state.ts';
import { logger } from '../../../src/common/log.ts';
import { readStatusFile, writeStatusFile, type StatusFile } from '../../../src/common/status-file.ts';
import type { NetworkPolicy, PolicyPod } from '../../../src/model/policy/api.ts';

const policy = (cidr: string): NetworkPolicy => ({
  metadata: { name: 'db', namespace: 'shop' },
  spec: { podSelector: { matchLabels: { app: 'db' } }, ingress: [{ from: [{ ipBlock: { cidr } }] }] },
});
const pod: PolicyPod = { namespace: 'shop', name: 'db-0', labels: { app: 'db' }, ips: ['10.244.1.7'], node: 'node-1', ports: [] };

test('an invalid edit keeps the previous version in force and is named by object and field until it is fixed', () => {
  const state = new PolicyState();
  const good = policy('10.0.0.0/8');
  assert.equal(state.apply({ kind: 'NetworkPolicy', previous: undefined, current: good }), true);
  const bad = policy('10.0.0.0/33');
  assert.equal(state.apply({ kind: 'NetworkPolicy', previous: good, current: bad }), false);
  assert.deepEqual(state.cluster().policies, [good], 'the previous version stays in force');
  assert.deepEqual(
    state.errors().map((e) => [e.object, e.field]),
    [['NetworkPolicy shop/db', 'spec.ingress[0].from[0].ipBlock.cidr']],
  );
  const fixed = policy('10.1.0.0/16');
  assert.equal(state.apply({ kind: 'NetworkPolicy', previous: bad, current: fixed }), true);
  assert.deepEqual(state.cluster().policies, [fixed]);
  assert.deepEqual(state.errors(), []);
  assert.equal(state.apply({ kind: 'NetworkPolicy', previous: fixed, current: undefined }), true);
  assert.deepEqual(state.cluster().policies, []);
});

test('pods, namespaces and nodes form the cluster view; a change that moves nothing leaves the generation alone', () => {
  const state = new PolicyState();
  state.apply({ kind: 'PolicyPod', previous: undefined, current: pod });
  state.apply({ kind: 'Namespace', previous: undefined, current: { name: 'shop', labels: { team: 'a' } } });
  state.apply({
    kind: 'Node',
    previous: undefined,
    current: { metadata: { name: 'node-1' }, status: { addresses: [{ type: 'InternalIP', address: '192.168.0.1' }] } },
  });
  const cluster = state.cluster();
  assert.deepEqual(cluster.pods, [pod]);
  assert.deepEqual(cluster.namespaces, [{ name: 'shop', labels: { team: 'a' } }]);
  assert.deepEqual(cluster.nodes, [{ name: 'node-1', addresses: ['192.168.0.1'] }]);
  const { generation } = state.status();
  assert.equal(state.apply({ kind: 'PolicyPod', previous: pod, current: { ...pod, labels: { app: 'db' } } }), false);
  assert.equal(state.status().generation, generation);
  assert.equal(state.apply({ kind: 'PolicyPod', previous: pod, current: { ...pod, labels: { app: 'web' } } }), true);
  assert.equal(state.status().generation, generation + 1);
  state.apply({ kind: 'PolicyPod', previous: pod, current: undefined });
  assert.deepEqual(state.status(), { policies: 0, pods: 0, namespaces: 1, nodes: 1, generation: generation + 2 });
});

test("the agent's status names a refused policy beside refused Services, the status file carries it, the Service model never sees it", (t) => {
  const log = logger('test', {});
  log.level = 'silent';
  const none: DatapathResult = { upserted: 0, removed: 0, failed: [], orphansRemoved: 0 };
  const agent = new Agent({
    nodeName: 'node-1',
    nodeAddresses: ['192.168.0.1'],
    log,
    writer: { readBack: () => undefined, reconcile: () => none, apply: () => none },
  });
  t.after(() => agent.stop());
  const good = policy('10.0.0.0/8');
  agent.onPolicyChange({ kind: 'NetworkPolicy', previous: undefined, current: good });
  agent.onPolicyChange({ kind: 'NetworkPolicy', previous: good, current: policy('10.0.0.0/33') });
  agent.onPolicyChange({ kind: 'PolicyPod', previous: undefined, current: pod });
  const status = agent.status();
  assert.deepEqual(
    status.invalidObjects.map((e) => [e.object, e.field]),
    [['NetworkPolicy shop/db', 'spec.ingress[0].from[0].ipBlock.cidr']],
  );
  assert.equal(status.policy.policies, 1, 'the previous version is in force');
  assert.equal(status.policy.pods, 1);
  assert.equal(agent.pendingSince(), undefined, 'no change waits for a Service sync');
  assert.equal(agent.model().services().length, 0);
  assert.deepEqual(agent.policy().cluster().policies, [good]);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-policy-status-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'status.json');
  const written: StatusFile = {
    node: 'node-1',
    pid: process.pid,
    apiSocket: null,
    pinDir: '/sys/fs/bpf/ferry',
    cgroup: '/sys/fs/cgroup',
    source: 'standalone',
    agent: status,
    sourceStatus: {},
    updatedAt: Date.now(),
  };
  writeStatusFile(file, written);
  const read = readStatusFile(file)!;
  assert.match(read.agent.invalidObjects[0]!.message, /^NetworkPolicy shop\/db: spec\.ingress\[0\]\.from\[0\]\.ipBlock\.cidr: "10\.0\.0\.0\/33" is not a valid CIDR/);
});
