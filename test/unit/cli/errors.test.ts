import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CommanderError } from 'commander';
import { BpfError, InvalidArgumentError, MapFullError } from '../../../src/common/errors.ts';
import { CliError, EXIT, debugDetail, debugRequested, describeFailure, withoutDebug } from '../../../src/cli/errors.ts';

function errno(code: string, syscall: string, extra: Record<string, unknown> = {}): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${syscall}`), { code, syscall, ...extra });
}

describe('describeFailure', () => {
  const cases: readonly [string, unknown, number, RegExp][] = [
    ['commander usage', new CommanderError(1, 'commander.unknownOption', "error: unknown option '--x'"), EXIT.usage, /^unknown option '--x' \(see --help\)$/],
    ['Ferry argument', new InvalidArgumentError('--last: "x" is not a non-negative integer'), EXIT.usage, /^--last: /],
    ['unpinned map', new BpfError('bpf_obj_get(/p/ferry_services_v1)', 2, 'ENOENT'), EXIT.notRunning, /ENOENT: not pinned: is the agent running/],
    ['no privilege', new BpfError('bpf_prog_load', 1, 'EPERM'), EXIT.failed, /run as root/],
    ['verifier log stays out', new BpfError('bpf_prog_load', 13, 'EACCES', undefined, 'line 1\nline 2'), EXIT.failed, /run as root/],
    ['map full', new MapFullError('ferry_services_v1'), EXIT.failed, /^BPF map ferry_services_v1 is full$/],
    ['refused socket', errno('ECONNREFUSED', 'connect', { address: '/run/ferry/observe.sock' }), EXIT.notRunning, /^connect \/run\/ferry\/observe\.sock: nothing listening/],
    ['missing file', errno('ENOENT', 'open', { path: '/etc/x' }), EXIT.failed, /^open \/etc\/x: no such file/],
    ['denied file', errno('EACCES', 'open', { path: '/run/ferry' }), EXIT.failed, /^open \/run\/ferry: permission denied: run as root/],
    ['CLI error keeps its code', new CliError('no agent answers', EXIT.notRunning), EXIT.notRunning, /^no agent answers$/],
    ['a bug', new TypeError('x is undefined'), EXIT.failed, /^internal error: x is undefined \(run with --debug/],
    ['not an Error', 'boom', EXIT.failed, /^internal error: boom/],
  ];
  for (const [name, err, code, line] of cases)
    it(name, () => {
      const f = describeFailure(err);
      assert.equal(f.exitCode, code);
      assert.match(f.line, line);
      assert.ok(!f.line.includes('\n'), 'one line');
    });
});

describe('--debug', () => {
  it('is seen anywhere before --, or from FERRY_DEBUG=1, and removed from argv', () => {
    assert.equal(debugRequested(['status', '--debug'], {}), true);
    assert.equal(debugRequested(['lab', 'exec', 'n1', '--', 'x', '--debug'], {}), false);
    assert.equal(debugRequested(['status'], { FERRY_DEBUG: '1' }), true);
    assert.equal(debugRequested(['status'], { FERRY_DEBUG: '0' }), false);
    assert.deepEqual(withoutDebug(['n', 'f', '--debug', 'status', '--', '--debug']), ['n', 'f', 'status', '--', '--debug']);
  });

  it('detail has the stack, the cause chain and the verifier log', () => {
    const err = new Error('outer', { cause: new BpfError('bpf_prog_load', 13, 'EACCES', undefined, 'R1 invalid mem access') });
    const d = debugDetail(err);
    assert.match(d, /^Error: outer\n\s+at /);
    assert.match(d, /caused by:\nBpfError: bpf_prog_load: EACCES/);
    assert.match(d, /R1 invalid mem access/);
  });
});
