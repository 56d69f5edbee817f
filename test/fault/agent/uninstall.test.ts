// Defect 13: `--uninstall` removed any `ferry_*` pin, looked interfaces up in its own network
// namespace and threw before the socket-LB cleanup; a failed start left programs attached.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { BpfMap } from '../../../src/datapath/bpf/index.ts';
import { uninstallAgent } from '../../../src/agent/run.ts';
import { agentEnv, waitReady, writeServices, type AgentEnv } from './support/agent-env.ts';
import { faultTable } from '../support/fault-table.ts';

const table = faultTable('agent: uninstall and failed start');

/** A veth pair inside the env's namespace, named so that no interface of the test's own namespace has the name. */
function vethInNetns(env: AgentEnv): string {
  const name = `fa${env.id.slice(0, 6)}`;
  execFileSync('ip', ['-n', env.netns, 'link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`]);
  execFileSync('ip', ['-n', env.netns, 'addr', 'add', '10.77.0.1/24', 'dev', name]);
  execFileSync('ip', ['-n', env.netns, 'link', 'set', name, 'up']);
  execFileSync('ip', ['-n', env.netns, 'link', 'set', `${name}p`, 'up']);
  return name;
}

const bpfFilters = (env: AgentEnv, dev: string, hook: 'ingress' | 'egress'): string =>
  execFileSync('tc', ['-n', env.netns, 'filter', 'show', 'dev', dev, hook], { encoding: 'utf8' });

test('uninstall from another namespace detaches there, removes only Ferry\'s own pins, and cleans the socket LB', async (t) => {
  const env = agentEnv(t);
  const dev = vethInNetns(env);
  writeServices(env, 1);
  const agent = env.start(['--nodeport-interfaces', dev]);
  await waitReady(env, agent);
  agent.child.kill('SIGTERM');
  assert.equal((await agent.exited(10_000))?.code, 0);
  assert.match(bpfFilters(env, dev, 'egress'), /bpf/, 'north-south attached in the namespace');

  // Someone else's pins that share the prefix: a second pin of a map, and a folder.
  const foreignPin = path.join(env.pinDir, 'ferry_someone_else');
  const foreignDir = path.join(env.pinDir, 'ferry_other_tool');
  {
    using services = BpfMap.openPinned(path.join(env.pinDir, 'ferry_services_v1'));
    services.pin(foreignPin);
  }
  fs.mkdirSync(foreignDir);

  // The test runs in its own namespace, not the agent's: the uninstall must find the agent's.
  const removed = uninstallAgent(env.pinDir, env.runDir);
  assert.equal(removed.links, 10);
  assert.ok(removed.maps >= 7, `maps removed: ${removed.maps}`);
  assert.doesNotMatch(bpfFilters(env, dev, 'egress'), /bpf/, 'north-south detached in the agent\'s namespace');
  assert.doesNotMatch(bpfFilters(env, dev, 'ingress'), /bpf/);
  assert.deepEqual(fs.readdirSync(env.pinDir).sort(), ['ferry_other_tool', 'ferry_someone_else']);
  fs.rmSync(foreignPin);
  fs.rmdirSync(foreignDir);
  table.row('--uninstall run outside the agent\'s netns', 'detaches north-south inside the agent\'s netns (recorded at start)');
  table.row('--uninstall with foreign ferry_* pins present', 'removes only the exact names of Ferry\'s maps and links');
});

test('a start that fails after the datapath was installed leaves no program attached and no map pinned', async (t) => {
  const env = agentEnv(t);
  // A manifests path that is a file: the source refuses to open it, after the socket LB was installed.
  const notADir = path.join(env.dir, 'manifests.yaml');
  fs.writeFileSync(notADir, '');
  const exit = await env.run([...env.args(), '--manifests', notADir]);
  assert.notEqual(exit.code, 0, exit.stderr);
  const lines = exit.stderr.trim().split('\n').filter((l) => !l.startsWith('{'));
  assert.equal(lines.length, 1, exit.stderr);
  assert.match(lines[0]!, /manifests\.yaml/);
  const left = fs.existsSync(env.pinDir) ? fs.readdirSync(env.pinDir) : [];
  assert.deepEqual(left, [], 'no pins left');
  const attached = execFileSync('bpftool', ['cgroup', 'show', env.cgroup], { encoding: 'utf8' });
  assert.doesNotMatch(attached, /ferry_/, 'no program attached to the cgroup');
  table.row('start fails after the socket LB was installed (bad --manifests)', 'one-line error; programs detached, pins removed');
});

test('an install that fails at attach (no such cgroup) pins nothing and names the flag', async (t) => {
  const env = agentEnv(t);
  const exit = await env.run([...env.args(), '--cgroup', path.join(env.cgroup, 'missing')]);
  assert.notEqual(exit.code, 0, exit.stderr);
  const lines = exit.stderr.trim().split('\n').filter((l) => !l.startsWith('{'));
  assert.equal(lines.length, 1, exit.stderr);
  assert.match(lines[0]!, /--cgroup .*missing/);
  assert.deepEqual(fs.existsSync(env.pinDir) ? fs.readdirSync(env.pinDir) : [], [], 'no pins left');
  table.row('--cgroup that does not exist', 'one line naming the flag; no map pinned');
});

test('a start that fails installing north-south (no such interface) leaves neither layer behind', async (t) => {
  const env = agentEnv(t);
  writeServices(env, 1);
  const exit = await env.run([...env.args(), '--nodeport-interfaces', `nx${env.id.slice(0, 6)}`]);
  assert.notEqual(exit.code, 0, exit.stderr);
  const lines = exit.stderr.trim().split('\n').filter((l) => !l.startsWith('{'));
  assert.equal(lines.length, 1, exit.stderr);
  assert.match(lines[0]!, new RegExp(`nx${env.id.slice(0, 6)}`));
  assert.deepEqual(fs.existsSync(env.pinDir) ? fs.readdirSync(env.pinDir) : [], [], 'no pins left');
  const attached = execFileSync('bpftool', ['cgroup', 'show', env.cgroup], { encoding: 'utf8' });
  assert.doesNotMatch(attached, /ferry_/, 'no program attached to the cgroup');
  table.row('start fails installing north-south (unknown interface)', 'one-line error; socket LB detached, pins removed');
});
