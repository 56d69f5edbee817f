// The status file says whether unserved service-CIDR addresses are refused; when they are not, a
// warning says why, which `ferry status` prints with the agent's other warnings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StatusReporter } from '../../../src/agent/status-reporter.ts';
import { statusFilePath } from '../../../src/common/status-file.ts';
import { logger } from '../../../src/common/log.ts';
import type { Agent } from '../../../src/agent/agent.ts';
import type { AgentSource } from '../../../src/agent/source.ts';

function reporter(t: test.TestContext): { status: StatusReporter; read: () => Record<string, unknown> } {
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-status-'));
  t.after(() => fs.rmSync(runDir, { recursive: true, force: true }));
  const agentStatus = { ready: true, syncs: 1, failedSyncs: 0, consecutiveFailures: 0, lastSync: undefined, lastSuccessAt: undefined, services: 0, frontends: 0, invalidObjects: [], warnings: ['an older warning'], degraded: [] };
  const agent = { status: () => agentStatus } as unknown as Agent;
  const source = { status: () => ({}) } as unknown as AgentSource;
  const status = new StatusReporter(
    { node: 'n1', pinDir: '/sys/fs/bpf/x', cgroup: '/sys/fs/cgroup', source: 'kubernetes', runDir, apiSocket: null },
    { agent, source, routes: undefined, log: logger('test') },
  );
  return { status, read: () => JSON.parse(fs.readFileSync(statusFilePath(runDir), 'utf8')) as Record<string, unknown> };
}

test('refusal off: the reason is a warning next to the agent’s own, and the field says off', (t) => {
  const { status, read } = reporter(t);
  status.serviceCidrs = { refusing: false, cidrs: [], from: 'GET /apis/networking.k8s.io/v1/servicecidrs', reason: '403 Forbidden' };
  status.write();
  const file = read();
  assert.deepEqual((file.agent as { warnings: string[] }).warnings, [
    'an older warning',
    'not refusing unserved addresses in the service CIDRs (GET /apis/networking.k8s.io/v1/servicecidrs): 403 Forbidden',
  ]);
  assert.equal((file.serviceCidrs as { refusing: boolean }).refusing, false);
});

test('refusal on: the CIDRs are in the file, no warning; before they are written, no field', (t) => {
  const { status, read } = reporter(t);
  status.write();
  assert.equal(read().serviceCidrs, undefined);
  status.serviceCidrs = { refusing: true, cidrs: ['10.96.0.0/12'], from: '--service-cidrs' };
  status.write();
  const file = read();
  assert.deepEqual(file.serviceCidrs, { refusing: true, cidrs: ['10.96.0.0/12'], from: '--service-cidrs' });
  assert.deepEqual((file.agent as { warnings: string[] }).warnings, ['an older warning']);
});
