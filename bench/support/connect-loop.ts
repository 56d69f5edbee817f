// connect()+close latency as a client pod sees it: a loop run inside the pod (its own Node
// process, so the figures carry no nsenter or pipe cost) connects, records the time to the
// connected event, and resets the connection so no TIME_WAIT piles up; failures are counted, not
// fatal, so a benchmark can report them beside the figures.
import type { Lab } from '../../src/lab/lab.ts';
import type { LabHost } from '../../src/lab/types.ts';

const SCRIPT = `
const net = require('node:net');
const [host, port, count] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const out = [];
const errors = {};
function one(i) {
  if (i === count) { console.log(JSON.stringify({ out, errors })); return; }
  const t = process.hrtime.bigint();
  const s = net.connect({ host, port });
  s.once('connect', () => { out.push(Number(process.hrtime.bigint() - t) / 1000); s.resetAndDestroy(); setImmediate(() => one(i + 1)); });
  s.once('error', (e) => { errors[e.code] = (errors[e.code] ?? 0) + 1; setImmediate(() => one(i + 1)); });
}
one(0);
`;

export interface ConnectLoopResult {
  /** Microseconds per successful connect, in order. */
  readonly latenciesUs: number[];
  /** errno name → failed connects. */
  readonly errors: Record<string, number>;
}

export async function connectLoop(
  lab: Lab,
  from: LabHost | string,
  host: string,
  port: number,
  count: number,
): Promise<ConnectLoopResult> {
  const r = await lab.exec(from, [process.execPath, '-e', SCRIPT, host, String(port), String(count)], {
    timeoutMs: 600_000,
  });
  if (r.code !== 0) throw new Error(`connect loop to ${host}:${port} failed: ${r.stderr}`);
  const { out, errors } = JSON.parse(r.stdout) as { out: number[]; errors: Record<string, number> };
  return { latenciesUs: out, errors };
}

/** The p-th percentile (nearest rank) of xs. */
export const pct = (xs: readonly number[], p: number): number =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
