// Issue #12 defect 17: the IPAM lock must be held by one process at a time, stay with a live
// holder however long it runs, and die with a dead one. A holder is frozen inside the lock by a
// FIFO in the data directory: list() reads every address-named file, and a FIFO's read blocks
// until this test writes to it, so the test knows the holder is inside the lock and keeps it there.
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { faultTable } from '../support/fault-table.ts';
import { CniNode, ips } from './harness.ts';

const table = faultTable('ferry-cni: IPAM lock (issue #12, defect 17)');
const root = fileURLToPath(new URL('../../../', import.meta.url));
const FIFO_ADDRESS = '10.9.0.250';

interface Allocator {
  readonly child: ChildProcess;
  /** Resolves with the allocator's exit code and what it printed (its addresses, or the error). */
  readonly done: Promise<{ code: number | null; out: string }>;
  exited: boolean;
}

/** One HostLocalIpam.allocate in its own process, as each plugin invocation is. */
function allocator(dir: string, containerId: string): Allocator {
  const script = `
    import { HostLocalIpam } from ${JSON.stringify(`${root}src/cni/ipam.ts`)};
    import { parseCidr } from ${JSON.stringify(`${root}src/common/ip.ts`)};
    const cidr = parseCidr('10.9.0.0/24');
    const ipam = new HostLocalIpam({ ranges: [cidr], rangeSets: [[cidr]], dataDir: ${JSON.stringify(dir)} });
    try {
      console.log((await ipam.allocate({ containerId: process.argv[1], ifname: 'eth0' })).map((a) => a.address).join(' '));
    } catch (error) {
      console.log('error ' + error.message);
      process.exitCode = 1;
    }`;
  const child = spawn(`${root}scripts/node`, ['--input-type=module', '-e', script, containerId], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const a: Allocator = {
    child,
    exited: false,
    done: new Promise((resolve) => child.on('exit', (code) => resolve({ code, out: out.trim() }))),
  };
  void a.done.then(() => (a.exited = true));
  return a;
}

interface Frozen {
  readonly dir: string;
  readonly holder: Allocator;
  /** Lets the holder's read finish (it then allocates and leaves the lock). */
  release(): Promise<void>;
}

/** A data directory whose lock is held by a live allocator, frozen until release(). */
async function frozenHolder(t: TestContext): Promise<Frozen> {
  const base = mkdtempSync(`${tmpdir()}/ferry-cni-lock-`);
  const dir = `${base}/net`;
  mkdirSync(dir);
  const fifo = `${dir}/${FIFO_ADDRESS}`;
  execFileSync('mkfifo', [fifo]);
  const holder = allocator(dir, 'holder');
  t.after(() => {
    holder.child.kill('SIGKILL');
    rmSync(base, { recursive: true, force: true });
  });
  // Opening a FIFO for writing completes only once a reader has it open: the holder is in list(),
  // under the lock, from here on. (Asynchronous: the open blocks a libuv thread, not this one.)
  const writer = await open(fifo, 'w');
  t.after(() => writer.close().catch(() => undefined));
  // Later readers see a plain file with the same content, so only the holder is ever frozen.
  writeFileSync(`${base}/plain`, 'fifo-owner\neth0\n');
  renameSync(`${base}/plain`, fifo);
  return {
    dir,
    holder,
    release: async () => {
      await writer.write('fifo-owner\neth0\n');
      await writer.close();
    },
  };
}

test('a live holder keeps the lock however old the lock file looks; the waiter gets it after', async (t) => {
  const f = await frozenHolder(t);
  // What the old lock took for a stale lock: a lock file older than 10 s whose holder is alive.
  const old = new Date(Date.now() - 60_000);
  utimesSync(`${f.dir}/lock`, old, old);
  const waiter = allocator(f.dir, 'waiter');
  t.after(() => waiter.child.kill('SIGKILL'));
  await sleep(1500);
  assert.equal(
    waiter.exited,
    false,
    `the waiter must not get the lock while the holder runs: ${JSON.stringify(await Promise.race([waiter.done, sleep(0)]))}`,
  );
  await f.release();
  const [h, w] = await Promise.all([f.holder.done, waiter.done]);
  assert.equal(h.code, 0, `holder: ${h.out}`);
  assert.equal(w.code, 0, `waiter: ${w.out}`);
  assert.notEqual(h.out, w.out, 'distinct addresses');
  table.row(
    'lock held by a live process, lock file 60 s old',
    'waiter waits, then allocates after it; distinct addresses',
  );
});

test('the lock dies with its holder: a SIGKILLed holder never blocks the next ADD', async (t) => {
  const f = await frozenHolder(t);
  const waiter = allocator(f.dir, 'waiter');
  t.after(() => waiter.child.kill('SIGKILL'));
  await sleep(300);
  assert.equal(waiter.exited, false, 'waits while the holder lives');
  f.holder.child.kill('SIGKILL');
  const w = await waiter.done;
  assert.equal(w.code, 0, `waiter: ${w.out}`);
  assert.match(w.out, /^10\.9\.0\.\d+$/);
  table.row(
    'lock holder SIGKILLed inside the lock',
    'next allocator takes the lock at once (kernel drops it)',
  );
});

test('60 parallel ADDs through the plugin all succeed with distinct addresses', async (t) => {
  const n = new CniNode();
  t.after(() => n.cleanup());
  const pods = Array.from({ length: 60 }, () => n.netns());
  const adds = await Promise.all(pods.map((p, i) => n.call('ADD', `par-${i}`, p)));
  for (const a of adds) assert.equal(a.code, 0, JSON.stringify(a.out));
  const all = adds.flatMap((a) => ips(a.out));
  assert.equal(all.length, 120);
  assert.equal(new Set(all).size, 120, 'no address twice');
  assert.equal(n.allocations().size, 120);
  const dels = await Promise.all(pods.map((p, i) => n.call('DEL', `par-${i}`, p)));
  for (const d of dels) assert.equal(d.code, 0);
  assert.equal(n.allocations().size, 0);
  table.row('60 parallel ADDs', 'all exit 0 with 120 distinct addresses; parallel DELs free them all');
});
