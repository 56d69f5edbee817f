import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { assessHealth, processState, readStatusFile, type HealthInput } from '../../../src/cli/agent-health.ts';
import { CliError, EXIT } from '../../../src/cli/errors.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-agent-health-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const agent = { ready: true, syncs: 1, failedSyncs: 0, services: 1, frontends: 1, invalidObjects: [], warnings: [] };
const healthy: HealthInput = {
  statusFile: '/run/ferry/status.json',
  status: { pid: 42, agent },
  processState: 'agent',
  socketPath: '/run/ferry/observe.sock',
  socket: 'answers',
  socketNamed: false,
  programsAttached: 10,
  programsExpected: 10,
  pinDir: '/sys/fs/bpf/ferry',
};

describe('assessHealth', () => {
  it('healthy: exit 0, no problems', () => assert.deepEqual(assessHealth(healthy), { exitCode: EXIT.ok, problems: [], notes: [] }));
  const cases: readonly [string, Partial<HealthInput>, number, RegExp][] = [
    ['no status file', { status: undefined, processState: undefined, socket: undefined }, EXIT.notRunning, /no status file/],
    ['dead pid', { processState: 'gone', socket: 'absent' }, EXIT.notRunning, /pid 42 .* is gone/],
    ['reused pid', { processState: 'other', socket: 'refused' }, EXIT.notRunning, /another process/],
    ['socket refused', { socket: 'refused' }, EXIT.notRunning, /connection refused/],
    ['socket silent', { socket: 'silent' }, EXIT.notRunning, /no reply/],
    ['named socket absent', { socket: 'absent', socketNamed: true }, EXIT.notRunning, /has no API socket/],
    ['nothing attached', { programsAttached: 0 }, EXIT.notRunning, /0\/10 programs attached/],
    ['partly attached', { programsAttached: 7 }, EXIT.degraded, /7\/10 programs attached/],
    ['not ready', { status: { pid: 42, agent: { ...agent, ready: false } } }, EXIT.degraded, /not ready/],
  ];
  for (const [name, change, code, problem] of cases)
    it(name, () => {
      const h = assessHealth({ ...healthy, ...change });
      assert.equal(h.exitCode, code);
      assert.match(h.problems[0]!, problem);
    });
  it('an unnamed socket that is absent (observation off) is a note, not a failure', () => {
    const h = assessHealth({ ...healthy, socket: 'absent' });
    assert.equal(h.exitCode, EXIT.ok);
    assert.match(h.notes[0]!, /flow observation off/);
  });
  it('a pid not visible here (another pid namespace) whose socket answers is alive, with a note', () => {
    for (const state of ['gone', 'other'] as const) {
      const h = assessHealth({ ...healthy, processState: state });
      assert.equal(h.exitCode, EXIT.ok);
      assert.match(h.notes[0]!, /not a ferry agent in this pid namespace/);
    }
  });
  it('not running wins over incomplete, and every problem is listed', () => {
    const h = assessHealth({ ...healthy, processState: 'gone', socket: 'absent', programsAttached: 3 });
    assert.equal(h.exitCode, EXIT.notRunning);
    assert.equal(h.problems.length, 2);
  });
});

describe('readStatusFile', () => {
  const file = path.join(dir, 'status.json');
  it('absent: undefined', () => assert.equal(readStatusFile(path.join(dir, 'none.json')), undefined));
  it('valid: the fields', () => {
    fs.writeFileSync(file, JSON.stringify({ pid: 7, agent }));
    assert.equal(readStatusFile(file)!.pid, 7);
  });
  for (const [name, content, field] of [
    ['truncated', '{"pid": 7, "ag', /not valid JSON/],
    ['array', '[]', /not a JSON object/],
    ['pid', JSON.stringify({ pid: -1, agent }), /field pid: not a positive integer/],
    ['agent', JSON.stringify({ pid: 7 }), /field agent: missing/],
    ['agent.ready', JSON.stringify({ pid: 7, agent: { ...agent, ready: 'yes' } }), /field agent\.ready: not a boolean/],
    ['agent.warnings', JSON.stringify({ pid: 7, agent: { ...agent, warnings: undefined } }), /field agent\.warnings: missing/],
  ] as const)
    it(`corrupt (${name}): a CLI error naming the file and field, exit 1`, () => {
      fs.writeFileSync(file, content);
      assert.throws(() => readStatusFile(file), (e: unknown) => e instanceof CliError && e.exitCode === EXIT.failed && e.message.startsWith(`${file}: `) && field.test(e.message));
    });
});

describe('processState', () => {
  const proc = path.join(dir, 'proc');
  const fakeProc = (pid: number, argv: readonly string[]): void => {
    fs.mkdirSync(path.join(proc, String(pid)), { recursive: true });
    fs.writeFileSync(path.join(proc, String(pid), 'cmdline'), argv.join('\0') + '\0');
  };
  it('tells the agent from a reused pid and a dead one', () => {
    fakeProc(1, ['/opt/ferry/.tools/node/bin/node', '/opt/ferry/src/cli/main.ts', 'agent', '--source=kubernetes']);
    fakeProc(2, ['/usr/bin/ferry', 'agent']);
    fakeProc(3, ['/opt/ferry/.tools/node/bin/node', '/opt/ferry/src/cli/main.ts', 'status']);
    fakeProc(4, ['sleep', 'agent']);
    assert.equal(processState(1, proc), 'agent');
    assert.equal(processState(2, proc), 'agent');
    assert.equal(processState(3, proc), 'other');
    assert.equal(processState(4, proc), 'other');
    assert.equal(processState(5, proc), 'gone');
  });
});
