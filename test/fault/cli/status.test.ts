// Issue #12 defect 20: `ferry status` checks what its status file claims. A stale file (dead pid,
// or a pid now held by another process), an agent that does not answer on its socket, or a
// datapath that is not all attached exits non-zero with one stderr line saying what is wrong and
// what to do; a corrupt file is an error naming the file. Runs the real bin/ferry.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { SOCK_PROGRAMS } from '../../../src/datapath/socket-lb.ts';
import { faultTable } from '../support/fault-table.ts';
import { deadPid, fakeAgent, runFerry, scratch, STACK, stderrLines, writeStatusFile, type FerryRun, type Scratch } from './run-ferry.ts';

const table = faultTable('ferry status (issue #12, defect 20)');

function assertVerdict(run: FerryRun, code: number, mentions: readonly string[]): void {
  assert.equal(run.code, code, `exit code (stdout:\n${run.stdout}\nstderr:\n${run.stderr})`);
  const lines = stderrLines(run);
  assert.equal(lines.length, 1, `one stderr line, got:\n${run.stderr}`);
  assert.doesNotMatch(run.stderr, STACK);
  for (const m of mentions) assert.ok(lines[0]!.includes(m), `"${lines[0]}" mentions "${m}"`);
}

/** A pin folder whose links/ lists `attached` of the socket programs (what attachedPrograms reads). */
function pinDirWith(dir: string, attached: number): string {
  const pinDir = fs.mkdtempSync(path.join(dir, 'pins-'));
  fs.mkdirSync(path.join(pinDir, 'links'));
  for (const p of SOCK_PROGRAMS.slice(0, attached)) fs.writeFileSync(path.join(pinDir, 'links', p), '');
  return pinDir;
}

describe('ferry status: liveness and completeness, not the status file', () => {
  let s: Scratch;
  const children: ChildProcess[] = [];
  before(() => (s = scratch()));
  afterEach(() => {
    for (const c of children.splice(0)) c.kill('SIGKILL');
    fs.rmSync(path.join(s.runDir, 'status.json'), { force: true });
  });
  after(() => s.cleanup());

  it('no status file and nothing pinned: exit 3, agent not running', async () => {
    const run = await runFerry(['status', '--pin-dir', s.bpffsPinDir, '--run-dir', s.runDir]);
    assertVerdict(run, 3, ['agent not running', path.join(s.runDir, 'status.json')]);
    assert.match(run.stdout, /Programs: 0\/10 attached/);
    table.row('no agent, no pins', 'exit 3: "agent not running: no status file FILE; start the agent …"');
  });

  it('stale status file of a dead agent that said ready: exit 3, the pid is gone', async () => {
    const pid = await deadPid();
    writeStatusFile(s.runDir, pid);
    const run = await runFerry(['status', '--pin-dir', pinDirWith(s.dir, SOCK_PROGRAMS.length), '--run-dir', s.runDir]);
    assertVerdict(run, 3, [`pid ${pid}`, 'is gone', 'stale']);
    assert.match(run.stdout, /Health: NOT OK/);
    table.row('status file says ready, its pid is dead', 'exit 3: "pid N … is gone, so the file is stale; start the agent …"');
  });

  it("stale status file whose pid is now another process: exit 3", async () => {
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    children.push(other);
    writeStatusFile(s.runDir, other.pid!);
    const run = await runFerry(['status', '--pin-dir', pinDirWith(s.dir, SOCK_PROGRAMS.length), '--run-dir', s.runDir]);
    assertVerdict(run, 3, [`pid ${other.pid}`, 'another process']);
    table.row('status file pid reused by another process', 'exit 3: "pid N … is another process, so the file is stale"');
  });

  it('live agent, datapath fully attached: exit 0 (the control), then 0/10 attached: exit 3', async () => {
    const agent = await fakeAgent(s.dir, path.join(s.runDir, 'observe.sock'), true);
    children.push(agent);
    writeStatusFile(s.runDir, agent.pid!);
    const healthy = await runFerry(['status', '--pin-dir', pinDirWith(s.dir, SOCK_PROGRAMS.length), '--run-dir', s.runDir]);
    assert.equal(healthy.code, 0, healthy.stderr);
    assert.equal(healthy.stderr, '');
    assert.match(healthy.stdout, /Health: ok/);
    const none = await runFerry(['status', '--pin-dir', s.bpffsPinDir, '--run-dir', s.runDir]);
    assertVerdict(none, 3, ['0/10 programs attached', s.bpffsPinDir]);
    table.row('agent alive, 0/10 programs attached', 'exit 3: "datapath not installed: 0/10 programs attached in DIR"');
  });

  it('live agent, 9/10 attached or not ready: exit 4', async () => {
    const agent = await fakeAgent(s.dir, path.join(s.runDir, 'observe.sock'), true);
    children.push(agent);
    writeStatusFile(s.runDir, agent.pid!);
    const partial = await runFerry(['status', '--pin-dir', pinDirWith(s.dir, SOCK_PROGRAMS.length - 1), '--run-dir', s.runDir]);
    assertVerdict(partial, 4, ['9/10 programs attached', 'restart the agent']);
    writeStatusFile(s.runDir, agent.pid!, { agent: { ready: false, syncs: 0, failedSyncs: 2, services: 0, frontends: 0, invalidObjects: [], warnings: [] } });
    const notReady = await runFerry(['status', '--pin-dir', pinDirWith(s.dir, SOCK_PROGRAMS.length), '--run-dir', s.runDir]);
    assertVerdict(notReady, 4, ['not ready']);
    table.row('agent alive, 9/10 attached / not ready', 'exit 4: "datapath incomplete: 9/10 …; restart the agent" / "not ready"');
  });

  it('agent pid alive but its API socket does not answer (hung): exit 3', async () => {
    const agent = await fakeAgent(s.dir, path.join(s.runDir, 'observe.sock'), false);
    children.push(agent);
    writeStatusFile(s.runDir, agent.pid!);
    const run = await runFerry(['status', '--pin-dir', pinDirWith(s.dir, SOCK_PROGRAMS.length), '--run-dir', s.runDir]);
    assertVerdict(run, 3, ['does not answer', path.join(s.runDir, 'observe.sock')]);
    table.row('agent pid alive, socket silent', 'exit 3: "agent pid N does not answer on SOCKET (no reply) … restart it"');
  });

  it('corrupt status file (truncated JSON, a missing field): exit 1, names the file and the field', async () => {
    const file = path.join(s.runDir, 'status.json');
    fs.writeFileSync(file, '{"pid": 12, "agent": {"rea');
    const truncated = await runFerry(['status', '--pin-dir', s.bpffsPinDir, '--run-dir', s.runDir]);
    assertVerdict(truncated, 1, [file, 'not valid JSON']);
    writeStatusFile(s.runDir, 12, { pid: 'twelve' });
    const badPid = await runFerry(['status', '--pin-dir', s.bpffsPinDir, '--run-dir', s.runDir]);
    assertVerdict(badPid, 1, [file, 'field pid']);
    table.row('corrupt status file', 'exit 1: "FILE: not valid JSON (…)" / "FILE: field pid: …"');
  });
});
