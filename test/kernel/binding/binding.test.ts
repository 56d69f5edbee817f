// The libbpf binding against the real kernel: maps, pins across processes, per-CPU values,
// BPF_PROG_RUN on a packet built here, load-time constants, verifier errors, cgroup links.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { BpfObject, BpfMap, BpfLink, RingBufferReader } from '../../../src/datapath/bpf/index.ts';
import { BpfError, MapFullError } from '../../../src/common/errors.ts';
import { eventually } from '../../support/eventually.ts';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const COUNTER = path.join(root, 'build/bpf/test/counter.o');
const BAD = path.join(root, 'build/bpf/test/bad.o');

function pinDir(t: import('node:test').TestContext): string {
  const dir = `/sys/fs/bpf/ferry-test-${randomBytes(4).toString('hex')}`;
  fs.mkdirSync(dir);
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function key(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

function load(t: import('node:test').TestContext, constants: Record<string, Buffer> = {}): BpfObject {
  const obj = BpfObject.open(COUNTER, { pinRoot: pinDir(t) });
  for (const [name, value] of Object.entries(constants)) obj.setConstant(name, value);
  obj.load();
  t.after(() => obj.close());
  return obj;
}

test('map CRUD with update flags, iteration, and a full map named in the error', (t) => {
  const small = load(t).map('small');
  assert.equal(small.keySize, 4);
  assert.equal(small.valueSize, 8);
  assert.equal(small.maxEntries, 4);
  assert.equal(small.lookup(key(1)), undefined);
  small.update(key(1), u64(10));
  assert.equal(small.lookup(key(1))?.readBigUInt64LE(), 10n);
  assert.throws(
    () => small.update(key(1), u64(11), 'noexist'),
    (e: BpfError) => e.errnoName === 'EEXIST',
  );
  assert.throws(
    () => small.update(key(2), u64(11), 'exist'),
    (e: BpfError) => e.errnoName === 'ENOENT',
  );
  small.update(key(1), u64(12), 'exist');
  for (const k of [2, 3, 4]) small.update(key(k), u64(k));
  assert.deepEqual([...small.keys()].map((k) => k.readUInt32LE()).sort(), [1, 2, 3, 4]);
  assert.deepEqual(
    new Map([...small.entries()].map(([k, v]) => [k.readUInt32LE(), Number(v.readBigUInt64LE())])).get(1),
    12,
  );
  assert.throws(
    () => small.update(key(5), u64(5)),
    (e: Error) => e instanceof MapFullError && /small/.test(e.message),
  );
  assert.equal(small.delete(key(1)), true);
  assert.equal(small.delete(key(1)), false);
});

test('batch update and delete move many entries in one call', (t) => {
  const obj = BpfObject.open(COUNTER, { pinRoot: pinDir(t) });
  obj.setMapMaxEntries('small', 1000);
  obj.load();
  t.after(() => obj.close());
  const small = obj.map('small');
  const keys = Array.from({ length: 500 }, (_, i) => key(i));
  small.updateBatch(
    keys,
    keys.map((_, i) => u64(i * 2)),
  );
  assert.equal([...small.keys()].length, 500);
  assert.equal(small.lookup(key(321))?.readBigUInt64LE(), 642n);
  const all = small.lookupBatch(64); // several batches
  assert.equal(all.length, 500);
  assert.deepEqual(
    new Map(all.map(([k, v]) => [k.readUInt32LE(), Number(v.readBigUInt64LE())])).get(499),
    998,
  );
  assert.equal(small.deleteBatch(keys.slice(0, 200)), 200);
  assert.equal([...small.keys()].length, 300);
});

test('a map pinned by name is re-opened from a second process and shared by a second object', (t) => {
  const dir = pinDir(t);
  const a = BpfObject.open(COUNTER, { pinRoot: dir });
  a.load();
  t.after(() => a.close());
  a.map('small').update(key(7), u64(77));
  const out = execFileSync(
    process.execPath,
    [path.join(root, 'test/kernel/binding/fixtures/pinned-reader.ts'), path.join(dir, 'small')],
    {
      encoding: 'utf8',
    },
  );
  const seen = JSON.parse(out) as { name: string; entries: [string, string][] };
  assert.equal(seen.name, 'small');
  assert.deepEqual(seen.entries, [[key(7).toString('hex'), u64(77).toString('hex')]]);
  const b = BpfObject.open(COUNTER, { pinRoot: dir });
  b.load();
  t.after(() => b.close());
  assert.equal(
    b.map('small').lookup(key(7))?.readBigUInt64LE(),
    77n,
    'the second object reused the pinned map',
  );
  using reopened = BpfMap.openPinned(path.join(dir, 'small'));
  assert.equal(reopened.maxEntries, 4);
});

test('BPF_PROG_RUN on a packet built here: verdict, output bytes, per-CPU counter', (t) => {
  const obj = load(t);
  const packet = Buffer.alloc(64, 0x11);
  const result = obj.program('count_and_stamp').run({ data: packet, repeat: 3 });
  assert.equal(result.retval, 2); // XDP_PASS, the default verdict
  assert.equal(result.dataOut.length, 64);
  assert.equal(result.dataOut[0], 0xab);
  assert.deepEqual(result.dataOut.subarray(1), packet.subarray(1));
  const perCpu = obj.map('packets').lookupPerCpu(key(0))!;
  assert.ok(perCpu.length >= 1);
  // At least the 3 repeats; a run the kernel interrupted (EINTR) and the binding retried adds more.
  assert.ok(perCpu.reduce((sum, v) => sum + v.readBigUInt64LE(), 0n) >= 3n);
});

test('const volatile globals set before load change what the program does', (t) => {
  const verdict = Buffer.alloc(4);
  verdict.writeUInt32LE(1); // XDP_DROP
  const obj = load(t, { verdict, stamp: Buffer.from([0x42]) });
  const result = obj.program('count_and_stamp').run({ data: Buffer.alloc(64) });
  assert.equal(result.retval, 1);
  assert.equal(result.dataOut[0], 0x42);
  const o = BpfObject.open(COUNTER, { pinRoot: pinDir(t) });
  t.after(() => o.close());
  assert.throws(() => o.setConstant('nope', Buffer.alloc(1)), /no const volatile nope/);
  assert.throws(() => o.setConstant('verdict', Buffer.alloc(1)), /is 1 bytes, variable is 4/);
});

test('a program the verifier rejects fails to load with the verifier’s own words', (t) => {
  const obj = BpfObject.open(BAD, { pinRoot: pinDir(t) });
  t.after(() => obj.close());
  assert.throws(
    () => obj.load(),
    (e: BpfError) =>
      e instanceof BpfError &&
      e.errnoName === 'EACCES' &&
      /invalid access to packet/.test(e.verifierLog ?? '') &&
      /verifier log/.test(e.message),
  );
});

test('a cgroup link attaches to a test cgroup, survives its pin, and detaches when unpinned', (t) => {
  const cg2 = fs
    .readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .find((l) => l.split(' ')[2] === 'cgroup2')!
    .split(' ')[1]!;
  const cgroup = path.join(cg2, `ferry-test-${randomBytes(4).toString('hex')}`);
  fs.mkdirSync(cgroup);
  t.after(() => fs.rmdirSync(cgroup));
  const dir = pinDir(t);
  const obj = load(t);
  const link = obj.program('allow_connect4').attachCgroup(cgroup);
  link.pin(path.join(dir, 'link'));
  link.close();
  const attached = (): string => execFileSync('bpftool', ['cgroup', 'show', cgroup], { encoding: 'utf8' });
  assert.match(attached(), /allow_connect4/);
  const reopened = BpfLink.openPinned(path.join(dir, 'link'));
  reopened.detach();
  reopened.close();
  fs.rmSync(path.join(dir, 'link'));
  assert.doesNotMatch(attached(), /allow_connect4/);
});

test('ring-buffer events arrive through the event loop, and close() ends the reader', async (t) => {
  const obj = load(t);
  const events: Buffer[] = [];
  const reader = new RingBufferReader(obj.map('events'), (data) => events.push(data), { fallbackMs: 60_000 });
  t.after(() => reader.close());
  const prog = obj.program('count_and_stamp');
  for (let i = 0; i < 5; i++) prog.run({ data: Buffer.alloc(60 + i, 0x20 + i) });
  await eventually(() =>
    assert.deepEqual(
      events.map((e) => [e.readUInt32LE(0), e.readUInt32LE(4)]),
      [0, 1, 2, 3, 4].map((i) => [60 + i, 0x20 + i]),
    ),
  );
  reader.close();
  // A second reader on the same ring is the barrier instead of a sleep: once it holds the sample,
  // the sample was produced and the event loop has had the readiness turn in which a reader that
  // close() failed to stop would have been called too.
  const witnessed: Buffer[] = [];
  const witness = new RingBufferReader(obj.map('events'), (data) => witnessed.push(data), { fallbackMs: 60_000 });
  t.after(() => witness.close());
  prog.run({ data: Buffer.alloc(60) });
  await eventually(() => assert.equal(witnessed.length + events.length, 6, 'the sample after close() is delivered somewhere'));
  assert.equal(events.length, 5, 'no delivery after close()');
  assert.equal(witnessed.length, 1);
});

test('tc and XDP attach inside a test netns and detach only what they attached', (t) => {
  const netns = `ferry-test-${randomBytes(4).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', netns]);
  t.after(() => execFileSync('ip', ['netns', 'del', netns]));
  const inNs = (...args: string[]): string =>
    execFileSync('nsenter', [`--net=/run/netns/${netns}`, ...args], { encoding: 'utf8' });
  inNs('ip', 'link', 'set', 'lo', 'up');
  inNs('ip', 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb');
  inNs('ip', 'link', 'set', 'va', 'up');
  inNs('ip', 'link', 'set', 'vb', 'up');
  const out = inNs(
    process.execPath,
    path.join(root, 'test/kernel/binding/fixtures/attach-in-netns.ts'),
    COUNTER,
    pinDir(t),
  );
  const { attached, replaced, detached, cleared } = JSON.parse(out) as Record<
    string,
    Record<string, boolean | number | null>
  >;
  assert.deepEqual(attached, {
    tcIngress: true,
    foreignFilter: true,
    tcEgress: true,
    xdpGenericLo: true,
    xdpNativeVa: true,
    qdisc: true,
  });
  assert.equal(typeof replaced!.ourNativeId, 'number');
  assert.equal(replaced!.boundId, replaced!.ourNativeId, 'the attachment knows the id ip(8) shows');
  assert.notEqual(replaced!.newcomerId, replaced!.ourNativeId, 'the second object replaced our XDP program');
  assert.equal(replaced!.ourDetachRemoved, false, 'our detach did not remove the newcomer');
  assert.equal(replaced!.afterOurDetachId, replaced!.newcomerId);
  assert.deepEqual(detached, {
    tcIngress: false,
    foreignFilter: true, // another user's filter and the shared clsact qdisc stay
    tcEgress: false,
    xdpGenericLo: false,
    xdpNativeVa: true,
    qdisc: true,
    genericRemoved: true,
    newcomerRemoved: true,
  });
  assert.equal(cleared!.xdpNativeVa, false);
});

test('a program pinned by path stays loaded after its object closes', (t) => {
  const dir = pinDir(t);
  const obj = BpfObject.open(COUNTER, { pinRoot: dir });
  obj.load();
  const prog = obj.program('tc_pass');
  prog.pin(path.join(dir, 'prog'));
  obj.close();
  assert.match(
    execFileSync('bpftool', ['prog', 'show', 'pinned', path.join(dir, 'prog')], { encoding: 'utf8' }),
    /tc_pass/,
  );
});

test('open/load/use/close leaves no fd behind', (t) => {
  const fds = (): number => fs.readdirSync('/proc/self/fd').length;
  const dir = pinDir(t);
  const cycle = (): void => {
    using obj = BpfObject.open(COUNTER, { pinRoot: dir });
    obj.load();
    obj.map('small').update(key(1), u64(1));
    obj.program('count_and_stamp').run({ data: Buffer.alloc(64) });
    using reader = new RingBufferReader(obj.map('events'), () => {});
    reader.consume();
    using pinned = BpfMap.openPinned(path.join(dir, 'small'));
    assert.equal(pinned.lookup(key(1))?.readBigUInt64LE(), 1n);
  };
  cycle(); // first use opens lazily-created process-wide fds (libbpf feature probes)
  const before = fds();
  for (let i = 0; i < 5; i++) cycle();
  assert.equal(fds(), before);
});

test('a batch update that overflows the map is a MapFullError naming it', (t) => {
  const small = load(t).map('small');
  const keys = [1, 2, 3, 4, 5, 6].map(key);
  assert.throws(
    () =>
      small.updateBatch(
        keys,
        keys.map(() => u64(1)),
      ),
    (e: Error) => e instanceof MapFullError && e.map === 'small' && /bpf_map_update_batch/.test(e.message),
  );
});
