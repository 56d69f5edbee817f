// Running Ferry's node agent on lab nodes: one agent per node, inside the node's network
// namespace, attached to the node's cgroup and pinning under the node's bpffs folder — the lab's
// stand-in for a DaemonSet.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { FerryError } from '../common/errors.ts';
import type { Lab } from './lab.ts';
import type { LabProcess } from './exec.ts';
import type { LabNode } from './types.ts';

const FERRY = fileURLToPath(new URL('../../bin/ferry', import.meta.url));

/** Kubernetes node name of a lab node: `n2` → `node-2` (the names the sample manifests use). */
export function kubeNodeName(node: LabNode): string {
  return `node-${node.index}`;
}

export interface NodeAgent {
  readonly node: LabNode;
  readonly process: LabProcess;
  readonly runDir: string;
}

export interface NodeAgentOptions {
  readonly manifests: string;
  readonly extraArgs?: readonly string[];
  readonly readyTimeoutMs?: number;
}

export function agentRunDir(node: LabNode): string {
  return path.join(node.runDir, 'agent');
}

/** Starts the agent on a node and resolves once it reports ready (its first sync is in the maps). */
export async function startNodeAgent(lab: Lab, node: LabNode, options: NodeAgentOptions): Promise<NodeAgent> {
  const runDir = agentRunDir(node);
  const readyFile = path.join(runDir, 'ready');
  fs.rmSync(readyFile, { force: true });
  const argv = [
    FERRY,
    'agent',
    '--source',
    'standalone',
    '--manifests',
    options.manifests,
    '--state-dir',
    path.join(node.runDir, 'state'),
    '--run-dir',
    runDir,
    '--node-name',
    kubeNodeName(node),
    '--node-addresses',
    // The fabric and the external-client subnet addresses: NodePorts answer on both, as on a real
    // node with an internal and an external interface.
    `${node.ipv4},${node.ipv6},${node.externalIpv4},${node.externalIpv6}`,
    '--cgroup',
    node.cgroup,
    '--pin-dir',
    node.pinDir,
    ...(options.extraArgs ?? []),
  ];
  const process = lab.spawn(node, argv, { FERRY_LOG_LEVEL: 'warn' });
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void process.exited().then((e) => (exit = e));
  const deadline = performance.now() + (options.readyTimeoutMs ?? 20_000);
  while (!fs.existsSync(readyFile)) {
    if (exit) {
      throw new FerryError('FERRY_E_LAB', `agent on ${node.name} exited (${exit.code ?? exit.signal}) before ready: ${process.stderrTail}`);
    }
    if (performance.now() > deadline) {
      await process.kill();
      throw new FerryError('FERRY_E_LAB', `agent on ${node.name} not ready in time: ${process.stderrTail}`);
    }
    await sleep(25);
  }
  return { node, process, runDir };
}

/** Runs a `ferry` CLI command against a node's datapath (pin dir and run dir filled in). */
export async function ferryOnNode(lab: Lab, node: LabNode, args: readonly string[]): Promise<string> {
  const result = await lab.exec(node, [FERRY, ...args, '--pin-dir', node.pinDir]);
  if (result.code !== 0) throw new FerryError('FERRY_E_LAB', `ferry ${args.join(' ')} on ${node.name}: ${result.stderr.trim()}`);
  return result.stdout;
}
