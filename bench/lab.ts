// What a lab costs every lab test: bring-up and teardown of the standard 3 × 4 lab, starting the
// echo servers, one probe. Baseline measured in the same run: one `ip` process (exec latency on
// this machine), so the figures read as "so many ip calls' worth".
import { createLab, target, ECHO_PORTS } from '../src/lab/index.ts';
import { run } from '../src/common/run.ts';

const ROUNDS = Number(process.env.ROUNDS ?? 7);

function stats(samples: readonly number[]): { median: number; p99: number } {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return { median: at(0.5), p99: at(0.99) };
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

const baseline: number[] = [];
for (let i = 0; i < 30; i++) baseline.push(await time(() => run('ip', ['link', 'show', 'lo'])));

const up: number[] = [];
const down: number[] = [];
const servers: number[] = [];
const probes: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  let lab: Awaited<ReturnType<typeof createLab>> | undefined;
  up.push(await time(async () => (lab = await createLab({ nodes: 3, podsPerNode: 4 }))));
  try {
    servers.push(await time(() => Promise.all(lab!.pods.map((p) => lab!.startEchoServer(p)))));
    const to = lab!.pod('n2-p1');
    probes.push(await time(() => lab!.probe(lab!.pod('n1-p1'), target(to.ipv4, ECHO_PORTS.tcp))));
  } finally {
    down.push(await time(() => lab!.down()));
  }
}

const base = stats(baseline).median;
const line = (name: string, samples: readonly number[]): string => {
  const { median, p99 } = stats(samples);
  return `${name.padEnd(28)} median ${median.toFixed(1).padStart(7)} ms  p99 ${p99.toFixed(1).padStart(7)} ms  = ${(median / base).toFixed(0).padStart(4)} × baseline`;
};
console.log(`lab bench: ${ROUNDS} rounds, 3 nodes × 4 pods`);
console.log(line('baseline: one ip process', baseline));
console.log(line('lab up', up));
console.log(line('12 echo servers (parallel)', servers));
console.log(line('one probe (1 TCP attempt)', probes));
console.log(line('lab down', down));
