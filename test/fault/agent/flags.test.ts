// Defects 10 and 11 (paths): map sizes out of range, a restart asking another size of a pinned
// map, and directories the agent cannot create. Each ends at once in one line naming the flag.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { BpfMap } from '../../../src/datapath/bpf/index.ts';
import { agentEnv, waitReady, writeServices, type Exit } from './support/agent-env.ts';
import { faultTable } from '../support/fault-table.ts';

const table = faultTable('agent: flags and paths');

/** One line on stderr naming `flag`, no stack, non-zero exit. */
function assertOneLineError(exit: Exit, flag: RegExp): void {
  assert.notEqual(exit.code, 0, exit.stderr);
  assert.equal(exit.signal, null, exit.stderr);
  const lines = exit.stderr.trim().split('\n').filter((l) => !l.startsWith('{')); // pino JSON logs aside
  assert.equal(lines.length, 1, exit.stderr);
  assert.match(lines[0]!, flag);
  assert.doesNotMatch(exit.stderr, /\n\s+at /, 'no stack trace');
}

test('--map-size-* outside 1 … 2^31 or not an integer is refused naming the flag', async (t) => {
  const env = agentEnv(t);
  for (const value of ['0', '4294967297', '2147483649', '1.5', '1e3', '-4', 'many']) {
    const exit = await env.run(env.args(['--map-size-services', value]));
    assertOneLineError(exit, new RegExp(`--map-size-services.*${value.replace('.', '\\.')}`));
  }
  const exit = await env.run(env.args(['--map-size-backends', '4294967296']));
  assertOneLineError(exit, /--map-size-backends/);
  assert.equal(fs.existsSync(env.pinDir), false, 'nothing was installed');
  table.row('--map-size-services 0 / 2^32+1 / 1.5 / many', 'refused before anything is installed, one line naming the flag');
});

test('a map size the kernel refuses to create is named by its flag, and nothing stays pinned', async (t) => {
  const env = agentEnv(t);
  const exit = await env.run(env.args(['--map-size-services', String(2 ** 31)]));
  assertOneLineError(exit, /--map-size-services 2147483648: the kernel refused to create ferry_services_v1 of that size \(E2BIG\)/);
  assert.deepEqual(fs.existsSync(env.pinDir) ? fs.readdirSync(env.pinDir) : [], []);
  table.row('--map-size-services 2^31 (kernel: E2BIG)', 'one line naming the flag and the map; nothing pinned');
});

test('a restart asking another size of a pinned map is refused with what to do; without the flag the pinned size is adopted', async (t) => {
  const env = agentEnv(t);
  writeServices(env, 2);
  const first = env.start(['--map-size-services', '64']);
  await waitReady(env, first);
  first.child.kill('SIGTERM');
  assert.equal((await first.exited(10_000))?.code, 0);

  const bigger = await env.run(env.args(['--map-size-services', '128']));
  assertOneLineError(bigger, /--map-size-services 128: the pinned map .*ferry_services_v1 has 64 entries.*--map-size-services 64.*--uninstall/);
  assert.equal(fs.readdirSync(path.join(env.pinDir, 'links')).length, 10, 'the running datapath was left alone');

  fs.rmSync(path.join(env.runDir, 'ready'), { force: true });
  const adopt = env.start([]);
  await waitReady(env, adopt);
  using services = BpfMap.openPinned(path.join(env.pinDir, 'ferry_services_v1'));
  assert.equal(services.maxEntries, 64);
  adopt.child.kill('SIGTERM');
  assert.equal((await adopt.exited(10_000))?.code, 0);
  table.row('restart with --map-size-services 128 over a 64-entry pin', 'refused: says to keep 64 or --uninstall first; datapath untouched');
  table.row('restart without the flag over a resized pin', 'adopts the pinned size');
});

test('--run-dir or --cni-conf-dir under /proc, or a pin dir off bpffs, fails at once naming the path', async (t) => {
  const env = agentEnv(t);
  const runUnderProc = await env.run([...env.args(), '--run-dir', `/proc/ferry-fa-${env.id}/run`], 15_000);
  assertOneLineError(runUnderProc, new RegExp(`--run-dir /proc/ferry-fa-${env.id}/run`));
  const cniUnderProc = await env.run([...env.args(), '--cni-conf-dir', `/proc/ferry-fa-${env.id}/net.d`], 15_000);
  assertOneLineError(cniUnderProc, new RegExp(`--cni-conf-dir /proc/ferry-fa-${env.id}/net.d`));
  const plain = path.join(env.dir, 'not-bpffs');
  const offBpffs = await env.run([...env.args(), '--pin-dir', plain], 15_000);
  assertOneLineError(offBpffs, /--pin-dir .*not-bpffs: .* is not on a BPF filesystem/);
  assert.equal(fs.existsSync(plain), false);
  table.row('--run-dir / --cni-conf-dir under /proc', 'exits at once naming the directory (no mkdir loop at 100 % CPU)');
  table.row('--pin-dir not on bpffs', 'exits at once naming it (the standard /sys/fs/bpf is mounted when missing)');
});

test('--service-cidrs that is no CIDR, or two of one family, is refused naming the flag before anything is installed', async (t) => {
  const env = agentEnv(t);
  for (const [value, why] of [
    ['10.96.0.0', /--service-cidrs: "10\.96\.0\.0" is not a CIDR/],
    ['10.96.0.0/16,10.97.0.0/16', /--service-cidrs: "10\.96\.0\.0\/16" and "10\.97\.0\.0\/16" are both IPv4/],
    ['fd00::/64,fd01::/64', /--service-cidrs: .* both IPv6/],
  ] as const) {
    const exit = await env.run(env.args(['--service-cidrs', value]));
    assertOneLineError(exit, why);
  }
  assert.equal(fs.existsSync(env.pinDir), false, 'nothing was installed');
  table.row('--service-cidrs 10.96.0.0 / two IPv4 CIDRs', 'refused before anything is installed, one line naming the flag');
});

test('the service CIDRs reach the pinned map and the status file: the flag, else the standalone allocator ranges', async (t) => {
  const env = agentEnv(t);
  writeServices(env, 1);
  const cidrsPinned = (): number => {
    using map = BpfMap.openPinned(path.join(env.pinDir, 'ferry_service_cidrs_v1'));
    return [...map.entries()].length;
  };
  const status = (): { serviceCidrs?: { refusing: boolean; cidrs: string[] } } => JSON.parse(fs.readFileSync(path.join(env.runDir, 'status.json'), 'utf8')) as never;
  const flagged = env.start(['--service-cidrs', '10.96.0.0/16']);
  await waitReady(env, flagged);
  assert.deepEqual(status().serviceCidrs, { refusing: true, cidrs: ['10.96.0.0/16'], from: '--service-cidrs' });
  assert.equal(cidrsPinned(), 1);
  flagged.child.kill('SIGTERM');
  assert.equal((await flagged.exited(10_000))?.code, 0);

  fs.rmSync(path.join(env.runDir, 'ready'), { force: true });
  const standalone = env.start([]);
  await waitReady(env, standalone);
  assert.deepEqual(status().serviceCidrs?.cidrs, ['10.96.0.0/16', 'fd00:10:96::/108']);
  assert.equal(cidrsPinned(), 2, 'the restart replaced the pinned CIDRs');
  standalone.child.kill('SIGTERM');
  assert.equal((await standalone.exited(10_000))?.code, 0);
  table.row('--service-cidrs 10.96.0.0/16, then a restart without it', 'map and status hold the flag, then the allocator ranges');
});
