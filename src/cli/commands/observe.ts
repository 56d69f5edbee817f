// `ferry observe`: flows from the agents' local API, shaped like `hubble observe`. Filters combine
// with AND, values of one filter with OR, and `--not` negates the filter flag right after it. With
// several --run-dir values (one agent each, as in the lab) the flows of all of them are merged.
import path from 'node:path';
import { Command, Option } from 'commander';
import { DEFAULT_RUN_DIR } from './agent.ts';
import type { FilterBuilder, FilterField, FlowFilter } from '../../observe/filter.ts';
import type { Flow } from '../../observe/flow.ts';

const FILTER_FLAGS: readonly (readonly [string, string])[] = [
  ['pod', 'source or backend pod, [namespace/]name-prefix'],
  ['from-pod', 'source pod, [namespace/]name-prefix'],
  ['to-pod', 'backend pod, [namespace/]name-prefix'],
  ['namespace', 'source, backend or Service namespace'],
  ['service', 'Service, [namespace/]name'],
  ['ip', 'source, destination or backend address (or CIDR)'],
  ['from-ip', 'source address (or CIDR)'],
  ['to-ip', 'destination or backend address (or CIDR)'],
  ['port', 'source, destination or backend port'],
  ['protocol', 'TCP, UDP …'],
  ['verdict', 'TRANSLATED, FORWARDED, DROPPED, REJECTED'],
  ['drop-reason', 'NO_BACKEND, NO_LOCAL_BACKEND, NODEPORT_RESERVED …'],
  ['node', 'node name'],
  ['origin', 'connect, sendmsg, bind, tc-ingress, tc-egress, xdp'],
];

function runDirs(value: string, previous: string[] | undefined): string[] {
  return [
    ...(previous ?? []),
    ...value
      .split(',')
      .map((v) => v.trim())
      .filter(Boolean),
  ];
}

/** What `ferry observe` was asked, as commander parsed it (the filter flags are taken in argv order). */
interface ObserveOptions {
  readonly follow?: boolean;
  readonly last?: string;
  readonly output: string;
  readonly runDir?: string[];
  readonly socket?: string;
  readonly lab?: string;
  readonly status?: boolean;
}

/** One step of building the filters: a filter flag or a `--not`, in the order they were given. */
type FilterStep = (builder: FilterBuilder) => void;

export function register(program: Command): void {
  const cmd = program
    .command('observe')
    .description('show flows: socket-layer translations, packet-path forwards and every drop, with reasons')
    .option('-f, --follow', 'keep streaming new flows')
    .option('--last <n>', 'the last N matching flows (default 20; 0 with --follow = only new ones)')
    .option('--not', 'negate the next filter flag')
    .addOption(
      new Option('-o, --output <format>', 'output format')
        .choices(['compact', 'json', 'table'])
        .default('compact'),
    )
    .option(
      '--run-dir <dir>',
      "agent run directory (repeat or comma-separate to merge several agents' flows)",
      runDirs,
    )
    .option('--socket <path>', 'the API socket itself (overrides --run-dir)')
    .option('--lab <name>', "a lab's agents (all nodes, or those --node names); instead of --run-dir")
    .option('--status', "print each agent's event counters and buffer instead of flows");
  for (const [name, help] of FILTER_FLAGS)
    cmd.option(`--${name} <value>`, `filter: ${help}; comma list = any of`);

  // Filters are built in argv order (commander emits one event per flag as it parses), which is
  // what lets `--not` apply to exactly the flag after it.
  const steps: FilterStep[] = [];
  cmd.on('option:not', () => steps.push((b) => b.not()));
  for (const [name] of FILTER_FLAGS)
    cmd.on(`option:${name}`, (value: string) => steps.push((b) => b.add(name as FilterField, value)));

  cmd.action((o: ObserveOptions) => observe(o, steps));
}

async function observe(o: ObserveOptions, steps: readonly FilterStep[]): Promise<void> {
  const { FilterBuilder } = await import('../../observe/filter.ts');
  const { API_SOCKET } = await import('../../observe/api.ts');
  const builder = new FilterBuilder();
  for (const step of steps) step(builder);
  const filters = builder.build();
  const last = await parseLast(o.last);
  const runDirList = o.lab ? await labRunDirs(o.lab, filters) : (o.runDir ?? [DEFAULT_RUN_DIR]);
  const sockets = o.socket ? [o.socket] : runDirList.map((d) => path.join(d, API_SOCKET));
  await requireAgents(sockets);
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  if (o.status) await printStatus(sockets);
  else
    await printFlows(
      sockets,
      { ...(last !== undefined ? { last } : {}), follow: o.follow === true, filters },
      o.output,
    );
}

async function parseLast(text: string | undefined): Promise<number | undefined> {
  if (text === undefined) return undefined;
  const { InvalidArgumentError } = await import('../../common/errors.ts');
  const last = Number(text);
  if (!Number.isInteger(last) || last < 0)
    throw new InvalidArgumentError(`--last: "${text}" is not a non-negative integer`);
  return last;
}

async function printStatus(sockets: readonly string[]): Promise<void> {
  const { request } = await import('../../observe/api.ts');
  for (const s of sockets)
    for await (const m of request(s, { op: 'status' }))
      console.log(JSON.stringify('status' in m ? m.status : m));
}

function reportLost(where: string, l: Record<string, number | undefined>): void {
  const parts = Object.entries(l).map(([k, v]) => `${k} ${v}`);
  process.stderr.write(`EVENTS LOST (${where}): ${parts.join(', ')}\n`);
}

/** Flows of every agent: streamed as they come with --follow, else merged by time and printed once. */
async function printFlows(
  sockets: readonly string[],
  query: { readonly last?: number; readonly follow: boolean; readonly filters: readonly FlowFilter[] },
  output: string,
): Promise<void> {
  const { request } = await import('../../observe/api.ts');
  const { formatter } = await import('../../observe/format.ts');
  const { InvalidArgumentError } = await import('../../common/errors.ts');
  const format = formatter(output as 'compact' | 'json' | 'table');
  const req = { op: 'flows' as const, ...query };
  let printed = false;
  const print = (flows: readonly Flow[]): void => {
    for (const line of format(flows)) console.log(line);
    printed = true;
  };
  const streams = sockets.map(async (socket) => {
    const flows: Flow[] = [];
    for await (const m of request(socket, req)) {
      if ('error' in m) throw new InvalidArgumentError(`${socket}: ${m.error}`);
      if ('lost' in m) reportLost(socket, { ...m.lost });
      else if ('flow' in m) {
        // Without --follow: collect (a table sizes its columns to all rows; several agents'
        // flows merge by time), print below.
        if (!query.follow) flows.push(m.flow);
        else print([m.flow]);
      }
    }
    return flows;
  });
  const collected = (await Promise.all(streams)).flat();
  collected.sort((a, b) => a.time.localeCompare(b.time));
  const keep = query.last ?? 20;
  if (collected.length || !printed) print(collected.slice(Math.max(0, collected.length - keep)));
}

/** Every socket must answer before any flow is asked for: "no agent" is one line (exit 3), not a stack. */
async function requireAgents(sockets: readonly string[]): Promise<void> {
  const { probeApiSocket } = await import('../agent-health.ts');
  const { CliError, EXIT } = await import('../errors.ts');
  for (const socket of sockets) {
    const state = await probeApiSocket(socket);
    if (state === 'answers') continue;
    const why =
      state === 'absent' ? 'no such socket' : state === 'refused' ? 'connection refused' : 'no reply';
    throw new CliError(
      `no agent answers on ${socket} (${why}): is the agent running with flow events on, and is this its --run-dir?`,
      EXIT.notRunning,
    );
  }
}

/** The agent run directories of a lab's nodes; a (non-negated) --node filter narrows them. */
async function labRunDirs(name: string, filters: readonly FlowFilter[]): Promise<string[]> {
  const { readState } = await import('../../lab/system.ts');
  const { agentRunDir, kubeNodeName } = await import('../../lab/agents.ts');
  const { InvalidArgumentError } = await import('../../common/errors.ts');
  const state = await readState(name);
  if (!state) throw new InvalidArgumentError(`--lab: no lab named "${name}"`);
  const wanted = filters.filter((f) => f.field === 'node' && !f.negate).flatMap((f) => f.values);
  const nodes = state.nodes.filter((n) => wanted.length === 0 || wanted.includes(kubeNodeName(n)));
  if (nodes.length === 0)
    throw new InvalidArgumentError(
      `--node: no such node in lab ${name} (nodes: ${state.nodes.map(kubeNodeName).join(', ')})`,
    );
  return nodes.map(agentRunDir);
}
