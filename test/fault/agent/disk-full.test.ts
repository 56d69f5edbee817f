// Defect 11 (disk): a full run dir made the periodic status write throw ENOSPC and crash the
// agent after ready. It must log once, keep serving, say so on /healthz and recover by itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { agentEnv, getInNetns, healthzAddress, waitReady, writeServices, type AgentEnv } from './support/agent-env.ts';
import { faultTable } from '../support/fault-table.ts';

const table = faultTable('agent: disk full');

async function healthUntil(env: AgentEnv, url: string, ok: (degraded: readonly string[]) => boolean): Promise<readonly string[]> {
  const deadline = performance.now() + 20_000;
  for (;;) {
    const h = getInNetns(env, url);
    const degraded = (JSON.parse(h.body) as { degraded?: string[] }).degraded ?? [];
    if (ok(degraded)) return degraded;
    if (performance.now() > deadline) throw new Error(`/healthz never matched: ${h.status} ${h.body}`);
    await sleep(200);
  }
}

test('a full run dir is reported on /healthz and logged once; the agent keeps serving and recovers', async (t) => {
  const env = agentEnv(t);
  fs.mkdirSync(env.runDir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', `ferry-fa-${env.id}`, env.runDir]);
  const agent = env.start([]);
  try {
    writeServices(env, 1);
    await waitReady(env, agent);
    const url = `http://${healthzAddress(agent)}/healthz`;
    // Fill what is left of the tmpfs.
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${path.join(env.runDir, 'fill')}`, 'bs=4k'], { stdio: 'ignore' });
    } catch {
      // dd ends with ENOSPC: that is the point
    }
    const degraded = await healthUntil(env, url, (d) => d.some((x) => x.includes('ENOSPC')));
    assert.match(degraded.join('\n'), /status\.json: ENOSPC/);
    assert.equal(getInNetns(env, url).status, 200, 'the datapath still serves: the node stays healthy');
    await sleep(2500); // at least one more periodic write fails while the disk stays full
    assert.equal(agent.child.exitCode, null, `the agent died: ${agent.stderr()}`);
    const logged = agent.stderr().split('\n').filter((l) => l.includes('ENOSPC') && l.includes('still serving'));
    assert.equal(logged.length, 1, 'logged once, not on every attempt');
    assert.deepEqual(fs.readdirSync(env.runDir).filter((f) => f.endsWith('.tmp')), [], 'no temp file left behind');

    fs.rmSync(path.join(env.runDir, 'fill'));
    await healthUntil(env, url, (d) => d.length === 0);
    const status = JSON.parse(fs.readFileSync(path.join(env.runDir, 'status.json'), 'utf8')) as { agent: { ready: boolean } };
    assert.equal(status.agent.ready, true);
    agent.child.kill('SIGTERM');
    assert.equal((await agent.exited(10_000))?.code, 0);
  } finally {
    agent.child.kill('SIGKILL');
    await agent.exited(5_000);
    execFileSync('umount', ['-l', env.runDir]);
  }
  table.row('run dir full (ENOSPC) after ready', 'keeps serving; one log line; /healthz 200 lists it; clears when space returns');
});
