// The socket-layer load balancer on the real kernel, without the lab: one test netns (lo holding the
// backends' addresses), one test cgroup with bpf/sock.c attached, and client
// processes that join that cgroup and talk to service frontends written by the ServiceWriter.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { SOCK_PROGRAMS, SocketLbDatapath } from '../../../src/datapath/socket-lb.ts';
import { ServiceWriter } from '../../../src/datapath/service-writer.ts';
import { SOCK_REASONS } from '../../../src/datapath/lb-codec.ts';
import { writeServiceCidrs } from '../../../src/datapath/service-cidrs.ts';
import { BpfMap } from '../../../src/datapath/bpf/index.ts';
import { MappedRingReader } from '../../../src/datapath/events/ring-reader.ts';
import { decodeEvent, EVENTS_MAP, type RawEvent } from '../../../src/datapath/events/codec.ts';
import {
  frontendKey,
  type Backend,
  type Frontend,
  type FrontendAction,
  type Scope,
} from '../../../src/model/frontend.ts';
import type { Protocol } from '../../../src/model/k8s.ts';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const NODE = path.join(root, 'scripts/node');
const SERVERS = path.join(root, 'test/kernel/sock/fixtures/servers.ts');
const CLIENT = path.join(root, 'test/kernel/sock/fixtures/client.ts');
const PORT = 8080;
const B4 = ['10.200.0.1', '10.200.0.2', '10.200.0.3', '10.200.0.4'];
const B6 = ['fd00:200::1', 'fd00:200::2', 'fd00:200::3', 'fd00:200::4'];

interface Env {
  readonly netns: string;
  readonly cgroup: string;
  readonly datapath: SocketLbDatapath;
  readonly writer: ServiceWriter;
  readonly pinDir: string;
}

function cgroup2Mount(): string {
  const line = fs
    .readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .find((l) => l.split(' ')[2] === 'cgroup2');
  if (!line) throw new Error('no cgroup2 mount in /proc/mounts');
  return line.split(' ')[1]!;
}

function ipn(netns: string, ...args: string[]): void {
  execFileSync('ip', ['-n', netns, ...args], { stdio: 'pipe' });
}

/** Netns with backends, cgroup with the programs attached, servers started; all undone in t.after. */
async function setUp(t: TestContext): Promise<Env> {
  const suffix = randomBytes(4).toString('hex');
  const netns = `ferry-t-${suffix}`;
  execFileSync('ip', ['netns', 'add', netns]);
  t.after(() => execFileSync('ip', ['netns', 'del', netns]));
  ipn(netns, 'link', 'set', 'lo', 'up');
  // Backends on lo (this kernel has no dummy driver): local addresses are all a socket needs.
  for (const a of B4) ipn(netns, 'addr', 'add', `${a}/32`, 'dev', 'lo');
  for (const a of B6) ipn(netns, 'addr', 'add', `${a}/128`, 'dev', 'lo', 'nodad');

  const cgroup = path.join(cgroup2Mount(), `ferry-t-${suffix}`);
  fs.mkdirSync(cgroup);
  t.after(() => fs.rmdirSync(cgroup)); // runs after the clients exited and the links were removed
  const pinDir = `/sys/fs/bpf/ferry-t-${suffix}`;
  const datapath = SocketLbDatapath.install({ pinDir, cgroup });
  t.after(() => {
    datapath.close();
    SocketLbDatapath.uninstall(pinDir);
    fs.rmSync(pinDir, { recursive: true, force: true });
  });
  const writer = new ServiceWriter(datapath.maps());
  writer.readBack();

  const servers = spawn('nsenter', [`--net=/run/netns/${netns}`, NODE, SERVERS, String(PORT), ...B4, ...B6], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.after(() => stop(servers));
  await new Promise<void>((resolve, reject) => {
    servers.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    servers.on('exit', (code) => reject(new Error(`servers exited with ${code}`)));
  });
  return { netns, cgroup, datapath, writer, pinDir };
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.on('exit', () => resolve());
    child.kill();
  });
}

type Step = Record<string, unknown> & { readonly op: string };
interface Result {
  readonly answer?: string;
  readonly peer?: string;
  readonly error?: string;
  readonly ms?: number;
}

async function client(env: Env, steps: readonly Step[]): Promise<Result[]> {
  const child = spawn(
    'nsenter',
    [`--net=/run/netns/${env.netns}`, NODE, CLIENT, env.cgroup, JSON.stringify(steps)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 0, `client exited with ${code}`);
  return JSON.parse(out) as Result[];
}

function frontend(
  address: string,
  backends: readonly string[],
  more: Partial<Frontend> & { protocol?: Protocol } = {},
): Frontend {
  const protocol = more.protocol ?? 'TCP';
  const port = more.port ?? 80;
  const scope: Scope = more.scope ?? 'internal';
  const list: Backend[] = backends.map((a) => ({
    address: a,
    port: PORT,
    protocol,
    state: 'active',
    nodeLocal: true,
  }));
  const action: FrontendAction = list.length ? 'forward' : 'reject';
  return {
    key: frontendKey(address, port, protocol, scope),
    service: 'default/web',
    portName: '',
    kind: 'ClusterIP',
    address,
    port,
    protocol,
    scope,
    action,
    backends: list,
    affinityTimeoutSeconds: 0,
    sourceRanges: [],
    algorithm: 'random',
    ...more,
  };
}

function publish(env: Env, ...frontends: Frontend[]): void {
  const result = env.writer.apply({ upsert: frontends, remove: [] });
  assert.deepEqual(result.failed, []);
}

function counters(env: Env): Record<string, number> {
  const map = env.datapath.maps().sockCounters;
  const out: Record<string, number> = {};
  SOCK_REASONS.forEach((reason, i) => {
    const key = Buffer.alloc(4);
    key.writeUInt32LE(i);
    out[reason] = (map.lookupPerCpu(key) ?? []).reduce((n, b) => n + Number(b.readBigUInt64LE(0)), 0);
  });
  return out;
}

const tcp = (host: string, port = 80, more: Record<string, unknown> = {}): Step => ({
  op: 'tcp',
  host,
  port,
  ...more,
});

test('TCP and UDP to a VIP reach a backend and show the VIP as the peer, IPv4, IPv6 and v4-mapped', async (t) => {
  const env = await setUp(t);
  publish(
    env,
    frontend('10.96.0.10', [B4[0]!]),
    frontend('10.96.0.10', [B4[1]!], { protocol: 'UDP', port: 53 }),
    frontend('fd00:96::10', [B6[0]!]),
    frontend('fd00:96::10', [B6[1]!], { protocol: 'UDP', port: 53 }),
  );
  const r = await client(env, [
    tcp('10.96.0.10'),
    { op: 'udp', host: '10.96.0.10', port: 53 },
    { op: 'udp-connected', host: '10.96.0.10', port: 53 },
    tcp('fd00:96::10'),
    { op: 'udp', host: 'fd00:96::10', port: 53 },
    { op: 'udp-connected', host: 'fd00:96::10', port: 53 },
    tcp('::ffff:10.96.0.10'),
    { op: 'udp', host: '::ffff:10.96.0.10', port: 53, v6: true },
    tcp('10.96.0.11'), // not a service: untouched, nothing listens there
  ]);
  assert.deepEqual(r.slice(0, 8), [
    { answer: `${B4[0]}:${PORT}`, peer: '10.96.0.10:80' },
    { answer: `${B4[1]}:${PORT}`, peer: '10.96.0.10:53' },
    { answer: `${B4[1]}:${PORT}`, peer: '10.96.0.10:53' },
    { answer: `[${B6[0]}]:${PORT}`, peer: '[fd00:96::10]:80' },
    { answer: `[${B6[1]}]:${PORT}`, peer: '[fd00:96::10]:53' },
    { answer: `[${B6[1]}]:${PORT}`, peer: '[fd00:96::10]:53' },
    { answer: `${B4[0]}:${PORT}`, peer: '[::ffff:10.96.0.10]:80' },
    { answer: `${B4[1]}:${PORT}`, peer: '[::ffff:10.96.0.10]:53' },
  ]);
  assert.ok(r[8]!.error, 'a non-service address is not translated');
  const c = counters(env);
  assert.ok(c.translated! >= 8 && c.revnat! >= 8, JSON.stringify(c));
});

test('reject fails connect() and sendmsg() at once with ECONNREFUSED; drop with EHOSTUNREACH', async (t) => {
  const env = await setUp(t);
  publish(
    env,
    frontend('10.96.0.20', []),
    frontend('fd00:96::20', []),
    frontend('10.96.0.20', [], { protocol: 'UDP', port: 53 }),
    frontend('10.96.0.21', [], { action: 'drop' }),
  );
  const r = await client(env, [
    tcp('10.96.0.20'),
    tcp('fd00:96::20'),
    { op: 'udp', host: '10.96.0.20', port: 53 },
    tcp('10.96.0.21'),
  ]);
  assert.deepEqual(
    r.map((x) => x.error),
    ['ECONNREFUSED', 'ECONNREFUSED', 'ECONNREFUSED', 'EHOSTUNREACH'],
  );
  for (const x of r) assert.ok(x.ms! < 1000, `failed at once, not after a timeout (${x.ms} ms)`);
  const c = counters(env);
  assert.equal(c.reject_no_backend, 3);
  assert.equal(c.drop_policy, 1);
});

test('in the service CIDRs, an address no Service has and a live VIP on a port it does not serve are refused at once; outside them nothing changes', async (t) => {
  const env = await setUp(t);
  publish(env, frontend('10.96.0.30', [B4[0]!]), frontend('10.96.0.30', [B4[1]!], { protocol: 'UDP', port: 53 }), frontend('fd00:96::30', [B6[0]!]));
  writeServiceCidrs(env.datapath.maps().serviceCidrs, ['10.96.0.0/16', 'fd00:96::/108']);
  const ring = BpfMap.openPinned(path.join(env.pinDir, EVENTS_MAP));
  const events: RawEvent[] = [];
  const reader = new MappedRingReader(ring, (b) => events.push(decodeEvent(b)), { intervalMs: 20 });
  t.after(() => {
    reader.close();
    ring.close();
  });
  const refused: Step[] = [
    tcp('10.96.0.99'), // unallocated (or deleted) VIP
    tcp('10.96.0.30', 81), // live VIP, port it does not serve
    tcp('10.96.0.30', 53), // live VIP, the port is UDP only
    tcp('fd00:96::99'),
    tcp('fd00:96::30', 81),
    tcp('::ffff:10.96.0.99'), // an IPv6 socket to a mapped address goes through connect6
    { op: 'udp', host: '10.96.0.99', port: 53 }, // sendmsg4
    { op: 'udp', host: '10.96.0.30', port: 54 },
    { op: 'udp', host: 'fd00:96::99', port: 53 }, // sendmsg6
    { op: 'udp-connected', host: '10.96.0.99', port: 53 }, // connect() of a UDP socket
  ];
  const r = await client(env, [
    ...refused,
    tcp('10.96.0.30'),
    { op: 'udp', host: '10.96.0.30', port: 53 },
    tcp('fd00:96::30'),
    tcp('10.97.0.1'), // outside the CIDRs: the kernel's own answer (no route here)
    tcp('fd00:97::1'),
  ]);
  assert.deepEqual(r.slice(0, refused.length).map((x) => x.error), refused.map(() => 'ECONNREFUSED'), JSON.stringify(r));
  for (const x of r.slice(0, refused.length)) assert.ok(x.ms! < 100, `refused at once, not after a timeout (${x.ms} ms)`);
  assert.deepEqual(r.slice(refused.length, refused.length + 3).map((x) => x.answer), [`${B4[0]}:${PORT}`, `${B4[1]}:${PORT}`, `[${B6[0]}]:${PORT}`]);
  for (const x of r.slice(refused.length + 3)) assert.ok(x.error && x.error !== 'ECONNREFUSED', `outside the CIDRs untouched: ${JSON.stringify(x)}`);
  assert.equal(counters(env).reject_no_service, refused.length);
  reader.consume();
  const told = events.filter((e) => e.reason === 'NO_SERVICE');
  assert.equal(told.length, refused.length, 'every refusal is a flow event');
  assert.deepEqual(new Set(told.map((e) => `${e.verdict} service ${e.serviceId}`)), new Set(['REJECTED service 0']));
  assert.deepEqual(told.slice(0, 2).map((e) => `${e.dst}:${e.dstPort}`), ['10.96.0.99:80', '10.96.0.30:81']);

  // Without CIDRs (an agent that could not learn them) nothing is refused: the map is the switch.
  writeServiceCidrs(env.datapath.maps().serviceCidrs, []);
  const off = await client(env, [tcp('10.96.0.99'), tcp('10.96.0.30', 81)]);
  for (const x of off) assert.ok(x.error && x.error !== 'ECONNREFUSED', JSON.stringify(x));
  assert.equal(counters(env).reject_no_service, refused.length);
});

test('four backends share connections about evenly; a changed set is used at once', async (t) => {
  const env = await setUp(t);
  publish(env, frontend('10.96.0.30', B4));
  const r = await client(
    env,
    Array.from({ length: 400 }, () => tcp('10.96.0.30')),
  );
  const seen = new Map<string, number>();
  for (const x of r) seen.set(x.answer!, (seen.get(x.answer!) ?? 0) + 1);
  assert.deepEqual(
    [...seen.keys()].sort(),
    B4.map((a) => `${a}:${PORT}`),
  );
  // Binomial(400, 1/4): mean 100, sd 8.7; [55, 145] is more than 5 sd either side.
  for (const [backend, n] of seen) assert.ok(n > 55 && n < 145, `${backend}: ${n} of 400`);
  publish(env, frontend('10.96.0.30', [B4[3]!]));
  const after = await client(
    env,
    Array.from({ length: 20 }, () => tcp('10.96.0.30')),
  );
  assert.ok(after.every((x) => x.answer === `${B4[3]}:${PORT}`));
});

test('sessionAffinity sticks within the timeout, expires after it, and a backend that left the service is re-picked', async (t) => {
  const env = await setUp(t);
  publish(env, frontend('10.96.0.40', B4, { affinityTimeoutSeconds: 1 }));
  const sticky = await client(
    env,
    Array.from({ length: 30 }, () => tcp('10.96.0.40')),
  );
  const first = sticky[0]!.answer!;
  assert.ok(
    sticky.every((x) => x.answer === first),
    'every connection within the timeout on one backend',
  );
  // After the timeout a fresh pick: each round has 3/4 chance to move; 10 rounds miss with p ≈ 1e-6.
  const rounds = await client(
    env,
    Array.from({ length: 10 }, () => [{ op: 'sleep', ms: 1100 }, tcp('10.96.0.40')]).flat(),
  );
  const answers = rounds.filter((x) => x.answer).map((x) => x.answer);
  assert.ok(
    answers.some((a) => a !== first),
    `affinity expired: ${answers.join(' ')}`,
  );
  // Remove whatever backend is remembered now from this service: the next connection must not go
  // there, even though another service keeps that backend alive in the backends map.
  const remembered = answers.at(-1)!;
  const rest = B4.filter((a) => `${a}:${PORT}` !== remembered);
  publish(env, frontend('10.96.0.41', B4), frontend('10.96.0.40', rest, { affinityTimeoutSeconds: 30 }));
  const moved = await client(
    env,
    Array.from({ length: 10 }, () => tcp('10.96.0.40')),
  );
  assert.ok(
    moved.every((x) => x.answer !== remembered && x.answer === moved[0]!.answer),
    JSON.stringify(moved),
  );
  // The same set in another order moves every backend to another slot: stickiness survives.
  publish(env, frontend('10.96.0.40', [rest[1]!, rest[2]!, rest[0]!], { affinityTimeoutSeconds: 30 }));
  const rotated = await client(
    env,
    Array.from({ length: 10 }, () => tcp('10.96.0.40')),
  );
  assert.ok(
    rotated.every((x) => x.answer === moved[0]!.answer),
    JSON.stringify(rotated),
  );
});

test('hairpin: a backend connecting to its own service through the VIP reaches itself', async (t) => {
  const env = await setUp(t);
  publish(env, frontend('10.96.0.50', [B4[2]!]), frontend('fd00:96::50', [B6[2]!]));
  const r = await client(env, [
    tcp('10.96.0.50', 80, { local: B4[2] }),
    tcp('fd00:96::50', 80, { local: B6[2] }),
  ]);
  assert.deepEqual(r, [
    { answer: `${B4[2]}:${PORT}`, peer: '10.96.0.50:80' },
    { answer: `[${B6[2]}]:${PORT}`, peer: '[fd00:96::50]:80' },
  ]);
});

test('a local bind to an allocated NodePort is refused with EADDRINUSE; other ports bind', async (t) => {
  const env = await setUp(t);
  publish(
    env,
    frontend('10.200.0.1', [B4[0]!], { kind: 'NodePort', port: 30080 }),
    frontend('10.200.0.1', [B4[0]!], { kind: 'NodePort', port: 30053, protocol: 'UDP' }),
  );
  const r = await client(env, [
    { op: 'bind-tcp', host: '0.0.0.0', port: 30080 },
    { op: 'bind-tcp', host: '::', port: 30080 },
    { op: 'bind-udp', host: '0.0.0.0', port: 30053 },
    { op: 'bind-udp', host: '0.0.0.0', port: 30080 }, // the NodePort is TCP only
    { op: 'bind-tcp', host: '0.0.0.0', port: 30081 },
  ]);
  assert.deepEqual(r, [
    { error: 'EADDRINUSE' },
    { error: 'EADDRINUSE' },
    { error: 'EADDRINUSE' },
    { answer: 'bound' },
    { answer: 'bound' },
  ]);
  assert.equal(counters(env).bind_refused, 3);
});

test('a restarted loader adopts the pinned links and maps: nothing re-attached, ids kept, traffic flows', async (t) => {
  const env = await setUp(t);
  publish(env, frontend('10.96.0.60', [B4[0]!, B4[1]!]), frontend('fd00:96::60', [B6[0]!]));
  const before = env.writer.programmed();
  const ids = new Map([...before.values()].map((p) => [p.key, [p.serviceId, ...p.backendIds]]));
  env.datapath.close(); // the old agent is gone: only pins remain
  assert.deepEqual(await client(env, [tcp('fd00:96::60')]), [
    { answer: `[${B6[0]}]:${PORT}`, peer: '[fd00:96::60]:80' },
  ]);

  const again = SocketLbDatapath.install({ pinDir: env.pinDir, cgroup: env.cgroup });
  t.after(() => again.close());
  assert.deepEqual(again.report, { attached: [], adopted: [...SOCK_PROGRAMS] });
  const writer = new ServiceWriter(again.maps());
  const found = writer.readBack();
  assert.deepEqual(new Map(found.map((p) => [p.key, [p.serviceId, ...p.backendIds]])), ids);
  // One attachment per program, not two: a second one would run the translation twice.
  const attached = execFileSync('bpftool', ['cgroup', 'show', env.cgroup], { encoding: 'utf8' });
  assert.equal(attached.split('\n').filter((l) => /ferry_/.test(l)).length, SOCK_PROGRAMS.length, attached);
  const result = writer.apply({ upsert: [frontend('10.96.0.60', [B4[2]!])], remove: [] });
  assert.deepEqual(result.failed, []);
  assert.deepEqual(await client(env, [tcp('10.96.0.60')]), [
    { answer: `${B4[2]}:${PORT}`, peer: '10.96.0.60:80' },
  ]);
});
