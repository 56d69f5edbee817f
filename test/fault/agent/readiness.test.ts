// Defect 9: a map-full first sync left the agent never ready, and an agent that was never ready
// ignored SIGTERM (its readiness poll kept the process alive).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { agentEnv, getInNetns, healthzAddress, waitReady, writeServices } from './support/agent-env.ts';
import { faultTable } from '../support/fault-table.ts';

const table = faultTable('agent: readiness and stop');

test('a map-full first sync makes the agent ready and degraded, /healthz names the failure, SIGTERM stops it', async (t) => {
  const env = agentEnv(t);
  writeServices(env, 3);
  // Each ClusterIP frontend takes two entries (master + one slot): room for two of the three.
  const agent = env.start(['--map-size-services', '4']);
  await waitReady(env, agent);
  const health = getInNetns(env, `http://${healthzAddress(agent)}/healthz`);
  assert.equal(health.status, 200, health.body);
  const body = JSON.parse(health.body) as { degraded?: string[] };
  assert.equal(body.degraded?.length, 1, health.body);
  assert.match(body.degraded[0]!, /10\.96\.7\.\d.*BPF map ferry_services_v1 is full/);
  const status = JSON.parse(fs.readFileSync(path.join(env.runDir, 'status.json'), 'utf8')) as { agent: { ready: boolean; degraded: string[] } };
  assert.equal(status.agent.ready, true);
  assert.equal(status.agent.degraded.length, 1);

  agent.child.kill('SIGTERM');
  const exit = await agent.exited(10_000);
  assert.ok(exit, `still running 10 s after SIGTERM: ${agent.stderr()}`);
  assert.equal(exit.code, 0, exit.stderr);
  table.row('first sync finds the services map full', 'ready, degraded: /healthz 200 lists the frontend and the map');
  table.row('SIGTERM to an agent with a failing sync', 'exits 0 at once; the datapath stays');
});
