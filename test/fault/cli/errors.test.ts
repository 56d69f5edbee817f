// Issue #12 defect 19: every failure of the `ferry` CLI is one line on stderr naming what failed
// and what to do, with a distinct exit code (2 usage, 3 not running / not installed, 1 failed),
// and a stack only with --debug or FERRY_DEBUG=1. Runs the real bin/ferry against temp folders.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { faultTable } from '../support/fault-table.ts';
import { runFerry, scratch, STACK, stderrLines, type FerryRun, type Scratch } from './run-ferry.ts';

const table = faultTable('ferry CLI errors (issue #12, defect 19)');

function assertOneLine(run: FerryRun, code: number, mentions: readonly (string | RegExp)[]): string {
  const lines = stderrLines(run);
  assert.equal(lines.length, 1, `one stderr line, got:\n${run.stderr}`);
  assert.doesNotMatch(run.stderr, STACK);
  assert.equal(run.code, code, `exit code (stderr: ${run.stderr})`);
  const line = lines[0]!;
  assert.match(line, /^ferry: /);
  for (const m of mentions) assert.ok(typeof m === 'string' ? line.includes(m) : m.test(line), `"${line}" mentions ${String(m)}`);
  return line;
}

describe('ferry CLI: one-line errors and exit codes', () => {
  let s: Scratch;
  before(() => (s = scratch()));
  after(() => s.cleanup());

  it('service list with nothing pinned: exit 3, names the pin dir and says to check the agent', async () => {
    const run = await runFerry(['service', 'list', '--pin-dir', s.bpffsPinDir]);
    assertOneLine(run, 3, [s.bpffsPinDir, 'agent running']);
    table.row('service list, nothing pinned', 'exit 3: "no Ferry datapath pinned in DIR … is the agent running"');
  });

  it('explain with nothing pinned, socket and packet path: exit 3', async () => {
    const sock = await runFerry(['explain', '--to', '10.96.0.10:53', '--pin-dir', s.bpffsPinDir]);
    assertOneLine(sock, 3, [s.bpffsPinDir]);
    const packet = await runFerry(['explain', '--path', 'packet', '--from', '192.0.2.1', '--to', '10.96.0.10:53', '--pin-dir', s.bpffsPinDir]);
    assertOneLine(packet, 3, [s.bpffsPinDir]);
    table.row('explain, nothing pinned', 'exit 3: one line naming the pin dir');
  });

  it('observe with no agent (no socket): exit 3, names the socket', async () => {
    const run = await runFerry(['observe', '--run-dir', s.runDir]);
    assertOneLine(run, 3, [path.join(s.runDir, 'observe.sock'), 'no such socket']);
    const status = await runFerry(['observe', '--status', '--run-dir', s.runDir]);
    assertOneLine(status, 3, [path.join(s.runDir, 'observe.sock')]);
    table.row('observe / observe --status, no agent', 'exit 3: "no agent answers on SOCKET (no such socket)"');
  });

  it('observe with a stale socket file of a dead agent: exit 3, connection refused', async () => {
    const stale = path.join(s.dir, 'stale');
    fs.mkdirSync(stale);
    fs.writeFileSync(path.join(stale, 'observe.sock'), '');
    const run = await runFerry(['observe', '--run-dir', stale]);
    assertOneLine(run, 3, ['connection refused']);
    table.row('observe, stale socket file', 'exit 3: "no agent answers on SOCKET (connection refused)"');
  });

  it("commander's usage errors: exit 2, one line, no help dump", async () => {
    for (const args of [['status', '--bogus'], ['nosuch'], ['service', 'list', '-o', 'yaml'], ['explain'], ['explain', '--to', 'bad'], ['agent', '--node-addresses', 'x']]) {
      const run = await runFerry(args);
      assertOneLine(run, 2, ['--help']);
    }
    table.row('unknown command/flag, bad flag value', 'exit 2: one line + "(see --help)", no help dump');
  });

  it("Ferry's own argument errors: exit 2", async () => {
    assertOneLine(await runFerry(['observe', '--last', 'x', '--run-dir', s.runDir]), 2, ['--last']);
    assertOneLine(await runFerry(['lab', 'down']), 2, ['--all']);
    assertOneLine(await runFerry(['lab', 'status', 'nosuch']), 2, ['lab name']);
    table.row('InvalidArgumentError (--last x, lab down, bad lab name)', 'exit 2: its message, one line');
  });

  it('--debug (anywhere) and FERRY_DEBUG=1 add the stack', async () => {
    for (const [args, env] of [
      [['service', 'list', '--pin-dir', s.bpffsPinDir, '--debug'], {}],
      [['--debug', 'service', 'list', '--pin-dir', s.bpffsPinDir], {}],
      [['service', 'list', '--pin-dir', s.bpffsPinDir], { FERRY_DEBUG: '1' }],
    ] as const) {
      const run = await runFerry(args, env);
      assert.equal(run.code, 3);
      assert.match(stderrLines(run)[0]!, /^ferry: no Ferry datapath pinned/);
      assert.match(run.stderr, /^\s+at /m, 'a stack follows the line');
    }
    table.row('the same with --debug / FERRY_DEBUG=1', 'the one line, then the stack');
  });

  it('ferry --help and help status: exit 0, documents the exit codes; no command: exit 2', async () => {
    const run = await runFerry(['--help']);
    assert.equal(run.code, 0);
    assert.equal(run.stderr, '');
    assert.match(run.stdout, /Exit codes: 0 ok, 1 failed, 2 usage, 3 /);
    assert.match(run.stdout, /--debug/);
    const helpCommand = await runFerry(['help', 'status']);
    assert.equal(helpCommand.code, 0);
    assert.match(helpCommand.stdout, /Usage: ferry status/);
    const bare = await runFerry([]);
    assert.equal(bare.code, 2, 'no command is a usage error');
    assert.match(bare.stderr, /Usage: ferry/);
    table.row('ferry --help / help status / no command', 'exit 0 with the exit codes listed / 0 / 2 with the help');
  });
});
