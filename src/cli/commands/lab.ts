// `ferry lab …`: build, inspect, use and remove labs (nodes and pods as namespaces on this machine).
// Everything works from the state files, so a lab made by one process is managed from any other.
import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import Table from 'cli-table3';
import { InvalidArgumentError } from '../../common/errors.ts';
import { enterArgv } from '../../lab/exec.ts';
import { createLab, openLab } from '../../lab/lab.ts';
import { readState } from '../../lab/system.ts';
import {
  destroyAllLabs,
  destroyLab,
  isEmptyResidue,
  labNamesOnMachine,
  labResidue,
} from '../../lab/teardown.ts';
import type { LabHost, LabState } from '../../lab/types.ts';

function positiveInt(field: string) {
  return (text: string): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 0)
      throw new InvalidArgumentError(`--${field}: not a non-negative integer: ${text}`);
    return n;
  };
}

function describe(state: LabState): string {
  const nodes = new Table({
    head: ['node', 'netns', 'fabric', 'external', 'pod CIDRs', 'cgroup'],
    style: { head: [], border: [] },
  });
  for (const n of state.nodes) {
    nodes.push([
      n.name,
      n.netns,
      `${n.ipv4}\n${n.ipv6}`,
      `${n.externalIpv4}\n${n.externalIpv6}`,
      `${n.podCidrV4}\n${n.podCidrV6}`,
      n.cgroup,
    ]);
  }
  const pods = new Table({
    head: ['pod', 'netns', 'IPv4', 'IPv6', 'host veth'],
    style: { head: [], border: [] },
  });
  for (const p of state.pods) pods.push([p.name, p.netns, p.ipv4, p.ipv6, `${p.node}/${p.hostIfname}`]);
  return [
    `lab ${state.name} (${state.status}, created ${state.createdAt})`,
    `client ${state.client.netns}: ${state.client.ipv4}, ${state.client.ipv6}`,
    nodes.toString(),
    pods.toString(),
  ].join('\n');
}

/** `fl1a2b3c-n1-p2`, or `n1-p2` with --lab or when only one lab exists. */
async function resolveHost(ref: string, labName: string | undefined): Promise<LabHost> {
  let name = labName;
  if (name === undefined) {
    const prefix = ref.split('-')[0]!;
    const labs = await labNamesOnMachine();
    if (labs.includes(prefix)) name = prefix;
    else if (labs.length === 1) name = labs[0];
    else throw new InvalidArgumentError(`lab exec: cannot tell which lab ${ref} is in; pass --lab NAME`);
  }
  const lab = await openLab(name!);
  return lab.host(ref);
}

export function register(program: Command): void {
  const lab = program
    .command('lab')
    .description('nodes and pods as network namespaces on this machine, for tests and demos');

  lab
    .command('up')
    .description('build a lab and leave it running')
    .option('--nodes <n>', 'number of nodes', positiveInt('nodes'), 3)
    .option('--pods <n>', 'pods per node', positiveInt('pods'), 4)
    .option('--name <name>', 'lab name (fl + up to 12 of [a-z0-9]); random by default')
    .option('--json', 'print the state as JSON')
    .action(labUp);

  lab
    .command('down')
    .description('remove a lab (works after a crash, without a state file)')
    .argument('[name]', 'lab name')
    .option('--all', 'remove every lab on this machine, leftovers of crashed runs included')
    .action(labDown);

  lab
    .command('status')
    .description('list labs, or describe one')
    .argument('[name]', 'lab name')
    .option('--json', 'JSON output')
    .action((name: string | undefined, options: { json?: boolean }) =>
      name === undefined ? listLabs(options) : describeLab(name, options),
    );

  lab
    .command('exec')
    .description("run a command on a lab host (in its netns and its node's cgroup)")
    .argument('<host>', 'netns name (fl1a2b3c-n1-p2) or short name (n1-p2, n1, client) with --lab')
    .argument('<command...>', 'command and arguments (after --)')
    .option('--lab <name>', 'lab name')
    .action(labExec);
}

async function labUp(options: { nodes: number; pods: number; name?: string; json?: boolean }): Promise<void> {
  const created = await createLab({
    nodes: options.nodes,
    podsPerNode: options.pods,
    name: options.name,
  });
  process.stdout.write(
    options.json ? JSON.stringify(created.state, null, 2) + '\n' : describe(created.state) + '\n',
  );
}

async function labDown(name: string | undefined, options: { all?: boolean }): Promise<void> {
  if (options.all) {
    const removed = await destroyAllLabs();
    process.stdout.write(removed.length ? `removed ${removed.join(' ')}\n` : 'no labs\n');
    return;
  }
  if (name === undefined) throw new InvalidArgumentError('lab down: give a lab name or --all');
  await destroyLab(name);
  process.stdout.write(`removed ${name}\n`);
}

/** One lab: its state, or what is left of it when the state file is gone (exit code 1). */
async function describeLab(name: string, options: { json?: boolean }): Promise<void> {
  const state = await readState(name);
  if (state) {
    process.stdout.write(options.json ? JSON.stringify(state, null, 2) + '\n' : describe(state) + '\n');
    return;
  }
  const residue = await labResidue(name);
  const text = isEmptyResidue(residue)
    ? `no lab ${name}`
    : `lab ${name}: no state file; leftovers: ${JSON.stringify(residue)}`;
  process.stdout.write(options.json ? JSON.stringify({ name, state: null, residue }) + '\n' : text + '\n');
  process.exitCode = 1;
}

/** Every lab on the machine, leftovers of crashed runs (no state file) included. */
async function listLabs(options: { json?: boolean }): Promise<void> {
  const rows = [];
  for (const n of await labNamesOnMachine()) {
    const state = await readState(n);
    rows.push({
      name: n,
      status: state?.status ?? 'leftover',
      nodes: state?.nodes.length ?? 0,
      pods: state?.pods.length ?? 0,
      createdAt: state?.createdAt ?? '',
    });
  }
  if (options.json) {
    process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
    return;
  }
  const table = new Table({
    head: ['lab', 'status', 'nodes', 'pods', 'created'],
    style: { head: [], border: [] },
  });
  for (const r of rows) table.push([r.name, r.status, r.nodes, r.pods, r.createdAt]);
  process.stdout.write(rows.length ? table.toString() + '\n' : 'no labs\n');
}

/** Runs the command on the host with the terminal attached; its exit code becomes ours. */
async function labExec(hostRef: string, command: string[], options: { lab?: string }): Promise<void> {
  const host = await resolveHost(hostRef, options.lab);
  const child = spawn('nsenter', enterArgv(host, command), { stdio: 'inherit' });
  const code = await new Promise<number>((resolve) => {
    child.on('error', () => resolve(127));
    child.on('exit', (c, signal) => resolve(c ?? (signal ? 128 : 1)));
  });
  process.exitCode = code;
}
