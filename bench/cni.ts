// ADD and DEL latency of bin/ferry-cni invoked as a runtime invokes it (a fresh process per call,
// CNI_* environment, config on stdin), for N pods wired one after another inside a test "node"
// netns. Node's start-up is part of every call, so VERSION (start-up plus nothing) is measured
// in the same run as the baseline.
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const PODS = Number(process.env.PODS ?? 50);

function invoke(node: string, env: Record<string, string>, stdin: string): Promise<number> {
  const start = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = execFile(
      'nsenter',
      [`--net=${node}`, '--', `${root}bin/ferry-cni`],
      {
        env: { PATH: process.env.PATH, FERRY_LOG_LEVEL: 'silent', ...env },
      },
      (error, stdout) => {
        if (error) return reject(new Error(`${env.CNI_COMMAND}: ${stdout}`));
        resolve(Number(process.hrtime.bigint() - start) / 1e6);
      },
    );
    child.stdin!.end(stdin);
  });
}

function stats(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!;
  return `p50 ${q(0.5).toFixed(1)} ms  p99 ${q(0.99).toFixed(1)} ms  max ${s.at(-1)!.toFixed(1)} ms`;
}

const tag = randomBytes(3).toString('hex');
const names = [`fbn${tag}`, ...Array.from({ length: PODS }, (_, i) => `fbp${tag}-${i}`)];
const dataDir = mkdtempSync(`${tmpdir()}/ferry-bench-cni-`);
try {
  for (const n of names) execFileSync('ip', ['netns', 'add', n]);
  const node = `/run/netns/${names[0]}`;
  execFileSync('nsenter', [`--net=${node}`, 'ip', 'link', 'set', 'lo', 'up']);
  const conf = JSON.stringify({
    cniVersion: '1.1.0',
    name: 'bench',
    type: 'ferry-cni',
    ipam: { ranges: ['10.244.1.0/24', 'fd00:10:244:1::/64'], dataDir },
  });
  const env = (cmd: string, i: number): Record<string, string> => ({
    CNI_COMMAND: cmd,
    CNI_CONTAINERID: `bench-${i}`,
    CNI_NETNS: `/run/netns/${names[i + 1]}`,
    CNI_IFNAME: 'eth0',
  });
  await invoke(node, { CNI_COMMAND: 'VERSION' }, conf); // warms the compile cache
  const version: number[] = [];
  for (let i = 0; i < PODS; i++) version.push(await invoke(node, { CNI_COMMAND: 'VERSION' }, conf));
  const add: number[] = [];
  for (let i = 0; i < PODS; i++) add.push(await invoke(node, env('ADD', i), conf));
  const del: number[] = [];
  for (let i = 0; i < PODS; i++) del.push(await invoke(node, env('DEL', i), conf));
  console.log(
    `ferry-cni, ${PODS} pods, sequential, dual-stack, one process per call (load average ${execFileSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).split(' ')[0]})`,
  );
  console.log(`  VERSION (start-up only) ${stats(version)}`);
  console.log(`  ADD                     ${stats(add)}`);
  console.log(`  DEL                     ${stats(del)}`);
  console.log(
    `  ADD p50 minus start-up p50: ${([...add].sort((a, b) => a - b)[Math.floor(PODS / 2)]! - [...version].sort((a, b) => a - b)[Math.floor(PODS / 2)]!).toFixed(1)} ms`,
  );
} finally {
  for (const n of names) execFileSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
  rmSync(dataDir, { recursive: true, force: true });
}
