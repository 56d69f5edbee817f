// Socket-layer flow events on the real kernel: each decision of bpf/sock.c (translate, affinity,
// refuse, policy drop, bind to a NodePort) lands in the pinned ring buffer with the fields the
// agent enriches from (socket cookie, cgroup id, netns inode, frontend, backend, service id), and
// the rate limit loses events into a counter instead of blocking anything.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { SocketLbDatapath } from '../../../src/datapath/socket-lb.ts';
import { ServiceWriter } from '../../../src/datapath/service-writer.ts';
import { BpfMap } from '../../../src/datapath/bpf/index.ts';
import { MappedRingReader } from '../../../src/datapath/events/ring-reader.ts';
import { frontendKey, type Backend, type Frontend } from '../../../src/model/frontend.ts';
import { decodeEvent, EVENTS_MAP, type RawEvent } from '../../../src/datapath/events/codec.ts';
import { EventsControl } from '../../../src/datapath/events/control.ts';
import { SOCK_REASONS } from '../../../src/datapath/events/reasons.ts';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const NODE = path.join(root, 'scripts/node');
const SERVERS = path.join(root, 'test/kernel/sock/fixtures/servers.ts');
const CLIENT = path.join(root, 'test/kernel/sock/fixtures/client.ts');
const PORT = 8080;
const B4 = ['10.200.0.1', '10.200.0.2'];

interface Env {
  readonly maps: ReturnType<SocketLbDatapath['maps']>;
  readonly netns: string;
  readonly cgroup: string;
  readonly writer: ServiceWriter;
  readonly pinDir: string;
  readonly events: RawEvent[];
  readonly reader: MappedRingReader;
}

function cgroup2Mount(): string {
  const line = fs.readFileSync('/proc/mounts', 'utf8').split('\n').find((l) => l.split(' ')[2] === 'cgroup2');
  if (!line) throw new Error('no cgroup2 mount in /proc/mounts');
  return line.split(' ')[1]!;
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.on('exit', () => resolve());
    child.kill();
  });
}

/** ferry_sock_counters_v2 by reason, summed over CPUs. */
function sockCounters(env: Env): Record<(typeof SOCK_REASONS)[number], number> {
  const out = {} as Record<(typeof SOCK_REASONS)[number], number>;
  SOCK_REASONS.forEach((reason, i) => {
    const key = Buffer.alloc(4);
    key.writeUInt32LE(i);
    out[reason] = (env.maps.sockCounters.lookupPerCpu(key) ?? []).reduce((n, b) => n + Number(b.readBigUInt64LE(0)), 0);
  });
  return out;
}

async function setUp(t: TestContext): Promise<Env> {
  const suffix = randomBytes(4).toString('hex');
  const netns = `ferry-t-${suffix}`;
  execFileSync('ip', ['netns', 'add', netns]);
  t.after(() => execFileSync('ip', ['netns', 'del', netns]));
  execFileSync('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
  for (const a of B4) execFileSync('ip', ['-n', netns, 'addr', 'add', `${a}/32`, 'dev', 'lo']);
  const cgroup = path.join(cgroup2Mount(), `ferry-t-${suffix}`);
  fs.mkdirSync(cgroup);
  t.after(() => fs.rmdirSync(cgroup));
  const pinDir = `/sys/fs/bpf/ferry-t-${suffix}`;
  const datapath = SocketLbDatapath.install({ pinDir, cgroup });
  t.after(() => {
    datapath.close();
    SocketLbDatapath.uninstall(pinDir);
    fs.rmSync(pinDir, { recursive: true, force: true });
  });
  const writer = new ServiceWriter(datapath.maps());
  writer.readBack();
  const ring = BpfMap.openPinned(path.join(pinDir, EVENTS_MAP));
  const events: RawEvent[] = [];
  const reader = new MappedRingReader(ring, (b) => events.push(decodeEvent(b)), { intervalMs: 20 });
  t.after(() => {
    reader.close();
    ring.close();
  });
  const servers = spawn('nsenter', [`--net=/run/netns/${netns}`, NODE, SERVERS, String(PORT), ...B4], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.after(() => stop(servers));
  await new Promise<void>((resolve, reject) => {
    servers.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    servers.on('exit', (code) => reject(new Error(`servers exited with ${code}`)));
  });
  return { maps: datapath.maps(), netns, cgroup, writer, pinDir, events, reader };
}

async function client(env: Env, steps: readonly Record<string, unknown>[]): Promise<{ error?: string; answer?: string }[]> {
  const child = spawn('nsenter', [`--net=/run/netns/${env.netns}`, NODE, CLIENT, env.cgroup, JSON.stringify(steps)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 0);
  return JSON.parse(out) as { error?: string; answer?: string }[];
}

function frontend(address: string, backends: readonly string[], more: Partial<Frontend> = {}): Frontend {
  const protocol = more.protocol ?? 'TCP';
  const port = more.port ?? 80;
  const list: Backend[] = backends.map((a) => ({ address: a, port: PORT, protocol, state: 'active', nodeLocal: true }));
  return {
    key: frontendKey(address, port, protocol, 'internal'),
    service: 'default/web',
    portName: '',
    kind: 'ClusterIP',
    address,
    port,
    protocol,
    scope: 'internal',
    action: list.length ? 'forward' : 'reject',
    backends: list,
    affinityTimeoutSeconds: 0,
    sourceRanges: [],
    algorithm: 'random',
    ...more,
  };
}

async function drain(env: Env, n: number): Promise<RawEvent[]> {
  const deadline = performance.now() + 3000;
  while (env.events.length < n && performance.now() < deadline) {
    env.reader.consume();
    await sleep(10);
  }
  return env.events.splice(0);
}

test('every socket-layer decision emits one event with cookie, cgroup, netns and the translation', async (t) => {
  const env = await setUp(t);
  const sid = (address: string, port = 80, protocol: 'TCP' | 'UDP' = 'TCP'): number =>
    env.writer.programmed().get(frontendKey(address, port, protocol, 'internal'))!.serviceId;
  const apply = (...f: Frontend[]): void => assert.deepEqual(env.writer.apply({ upsert: f, remove: [] }).failed, []);
  apply(
    frontend('10.96.0.10', [B4[0]!]),
    frontend('10.96.0.10', [B4[1]!], { protocol: 'UDP', port: 53 }),
    frontend('10.96.0.11', []),
    frontend('10.96.0.12', [], { action: 'drop' }),
    frontend('10.96.0.13', B4, { affinityTimeoutSeconds: 30 }),
    frontend('10.96.0.14', [B4[0]!], { kind: 'NodePort', port: 30080 }),
  );
  const r = await client(env, [
    { op: 'tcp', host: '10.96.0.10', port: 80 },
    { op: 'udp', host: '10.96.0.10', port: 53 },
    { op: 'tcp', host: '10.96.0.11', port: 80 },
    { op: 'tcp', host: '10.96.0.12', port: 80 },
    { op: 'tcp', host: '10.96.0.13', port: 80 },
    { op: 'tcp', host: '10.96.0.13', port: 80 },
    { op: 'bind-tcp', host: '0.0.0.0', port: 30080 },
    { op: 'tcp', host: '10.96.0.99', port: 80 }, // not a service: no event
    { op: 'tcp', host: '10.96.0.10', port: 80, local: B4[1] }, // a bound source is reported
  ]);
  assert.equal(r[2]!.error, 'ECONNREFUSED');
  assert.equal(r[3]!.error, 'EHOSTUNREACH');
  assert.equal(r[6]!.error, 'EADDRINUSE');
  const events = await drain(env, 8);
  const bound = events.pop()!;
  assert.equal(bound.src, B4[1]);
  assert.ok(bound.srcPort > 0, 'the bound (ephemeral) source port');
  const brief = events.map((e) => [e.origin, e.verdict, e.reason, e.dst, e.dstPort, e.xlated ?? '', e.flags.join(',')]);
  assert.deepEqual(brief, [
    ['connect', 'TRANSLATED', 'NONE', '10.96.0.10', 80, B4[0], ''],
    ['sendmsg', 'TRANSLATED', 'NONE', '10.96.0.10', 53, B4[1], ''],
    ['connect', 'REJECTED', 'NO_BACKEND', '10.96.0.11', 80, '', ''],
    ['connect', 'DROPPED', 'NO_LOCAL_BACKEND', '10.96.0.12', 80, '', ''],
    ['connect', 'TRANSLATED', 'NONE', '10.96.0.13', 80, events[4]!.xlated, ''],
    ['connect', 'TRANSLATED', 'NONE', '10.96.0.13', 80, events[4]!.xlated, 'affinity'],
    ['bind', 'DROPPED', 'NODEPORT_RESERVED', '0.0.0.0', 30080, '', ''],
  ]);
  const netnsInum = fs.statSync(`/run/netns/${env.netns}`).ino;
  const cgroupId = BigInt(fs.statSync(env.cgroup).ino);
  for (const e of events) {
    assert.equal(e.netnsInum, netnsInum, 'the caller netns inode, read through CO-RE');
    assert.equal(e.cgroupId, cgroupId, 'cgroup v2 id = the cgroup directory inode');
    assert.ok(e.sockCookie > 0n && e.netnsCookie > 0n);
    assert.equal(e.protocol, e.origin === 'sendmsg' ? 17 : 6);
  }
  assert.equal(events[0]!.serviceId, sid('10.96.0.10'));
  assert.equal(events[1]!.serviceId, sid('10.96.0.10', 53, 'UDP'));
  assert.equal(events[2]!.serviceId, sid('10.96.0.11'));
  assert.ok(events[0]!.backendId > 0);
  assert.equal(events[0]!.xlatedPort, PORT);
  assert.equal(events[6]!.serviceId, 0);
  assert.ok(events[0]!.tsNs < events[6]!.tsNs);
});

test('the rarer drops: a slot naming a vanished backend, an IPv4 socket and an IPv6-only backend', async (t) => {
  const env = await setUp(t);
  const apply = (...f: Frontend[]): void => assert.deepEqual(env.writer.apply({ upsert: f, remove: [] }).failed, []);
  apply(frontend('10.96.0.20', [B4[0]!]), frontend('10.96.0.21', ['fd00:200::1']));
  // The writer never leaves a slot without its backend; a race (or a bug) could: remove it by hand.
  const id = env.writer.programmed().get(frontendKey('10.96.0.20', 80, 'TCP', 'internal'))!.backendIds[0]!;
  const key = Buffer.alloc(4);
  key.writeUInt32LE(id);
  assert.ok(env.maps.backends.delete(key));
  const before = sockCounters(env);
  const r = await client(env, [
    { op: 'tcp', host: '10.96.0.20', port: 80 },
    { op: 'tcp', host: '10.96.0.21', port: 80 },
  ]);
  assert.deepEqual(r.map((x) => x.error), ['EHOSTUNREACH', 'EHOSTUNREACH']);
  const events = await drain(env, 2);
  assert.deepEqual(
    events.map((e) => [e.verdict, e.reason, e.dst, e.backendId === 0, e.xlated ?? '']),
    [
      ['DROPPED', 'BACKEND_MISSING', '10.96.0.20', false, ''],
      ['DROPPED', 'FAMILY_MISMATCH', '10.96.0.21', false, 'fd00:200::1'],
    ],
  );
  assert.equal(events[0]!.backendId, id, 'the id the slot named');
  // Each drop in its own counter: the family mismatch is no missing backend.
  const after = sockCounters(env);
  assert.equal(after.drop_missing_backend - before.drop_missing_backend, 1);
  assert.equal(after.drop_family_mismatch - before.drop_family_mismatch, 1);
});

test('the rate limit counts what it drops and never slows the datapath; events off counts them as filtered', async (t) => {
  const env = await setUp(t);
  assert.deepEqual(env.writer.apply({ upsert: [frontend('10.96.0.10', [B4[0]!], { protocol: 'UDP', port: 53 })], remove: [] }).failed, []);
  const control = EventsControl.open(env.pinDir);
  t.after(() => control.close());
  // One token per CPU and almost no refill: of 40 sends at most a couple of events get through.
  control.configure({ verdicts: ['TRANSLATED', 'FORWARDED', 'DROPPED', 'REJECTED'], sampleEvery: 1, ratePerSec: 1, burst: 1 });
  const before = control.counters();
  const steps = Array.from({ length: 40 }, () => ({ op: 'udp', host: '10.96.0.10', port: 53 }));
  const t0 = performance.now();
  const r = await client(env, steps);
  const seconds = (performance.now() - t0) / 1000;
  assert.ok(r.every((x) => x.answer), 'the datapath keeps translating while events are rate limited');
  const after = control.counters();
  const emitted = after.emitted - before.emitted;
  const limited = after.rateLimited - before.rateLimited;
  assert.equal(emitted + limited, 40, `every decision is either emitted or counted as rate limited (${emitted} + ${limited})`);
  // Per CPU: the burst of 1 plus one token per second the client ran (a loaded machine is slow).
  const cpus = os.availableParallelism();
  assert.ok(emitted <= cpus * (2 + Math.ceil(seconds)), `emitted ${emitted} in ${seconds.toFixed(1)} s on ${cpus} CPUs`);
  assert.ok(limited > 0);
  const events = await drain(env, emitted);
  assert.equal(events.length, emitted, 'what was counted as emitted reached the reader');
  // Events off: nothing emitted, every decision counted as filtered.
  control.configure({ verdicts: [], sampleEvery: 1, ratePerSec: 0, burst: 1 });
  const off = control.counters();
  await client(env, steps.slice(0, 5));
  const off2 = control.counters();
  assert.equal(off2.emitted - off.emitted, 0);
  assert.equal(off2.filtered - off.filtered, 5);
});
