// Names and addresses of a lab, computed from its size alone (pure), so bring-up, teardown and
// every test agree on them without asking the kernel.
import { randomBytes } from 'node:crypto';
import { InvalidArgumentError } from '../common/errors.ts';
import type { LabClient, LabFabric, LabNode, LabState } from './types.ts';

/** Lab names carry the `fl` prefix so leftovers of crashed runs can be found by name alone. */
export const LAB_NAME = /^fl[a-z0-9]{1,12}$/;
export const MAX_NODES = 200;
export const MAX_PODS_PER_NODE = 200;

export const STATE_DIR = '/run/ferry-lab';
export const NETNS_DIR = '/run/netns';
export const BPFFS = '/sys/fs/bpf';

export function randomLabName(): string {
  return 'fl' + randomBytes(3).toString('hex');
}

export function checkLabName(name: string): void {
  if (!LAB_NAME.test(name)) {
    throw new InvalidArgumentError(
      `lab name: ${JSON.stringify(name)} must match ${LAB_NAME.source} (the fl prefix lets "down --all" find leftovers)`,
    );
  }
}

/**
 * The shape of generated names. Leftovers without a state file are recognised by it alone, so it
 * is kept narrow enough that no unrelated netns or cgroup (say, "flannel") can match.
 */
export const GENERATED_LAB_NAME = /^fl[0-9a-f]{6}$/;

/** Does this netns / cgroup / pin / state entry belong to lab `name`? */
export function belongsToLab(entry: string, name: string): boolean {
  return (
    entry === name || entry.startsWith(`${name}-`) || entry === `${name}.json` || entry === `${name}.json.tmp`
  );
}

/** The lab name an entry would belong to, if it has the generated shape. */
export function generatedLabOf(entry: string): string | undefined {
  const base = entry.split(/[-.]/)[0]!;
  return GENERATED_LAB_NAME.test(base) ? base : undefined;
}

export interface PlanInput {
  readonly name: string;
  readonly nodes: number;
  readonly podsPerNode: number;
  readonly mtu: number;
  readonly cgroupMount: string;
  /** Whether a bpffs is mounted at BPFFS (pin folders are created only then). */
  readonly bpffsMounted: boolean;
  readonly ownerPid: number;
  readonly now: Date;
}

function host(lab: string, name: string): { name: string; netns: string; netnsPath: string } {
  return { name, netns: `${lab}-${name}`, netnsPath: `${NETNS_DIR}/${lab}-${name}` };
}

export function nodeName(index: number): string {
  return `n${index}`;
}

export function podName(nodeIndex: number, podIndex: number): string {
  return `n${nodeIndex}-p${podIndex}`;
}

/** The lab-allocated pod addresses (pod k on node i → 10.244.i.(10+k), fd00:10:244:i::(10+k)). */
export function staticPodAddresses(nodeIndex: number, podIndex: number): { ipv4: string; ipv6: string } {
  if (podIndex < 1 || 10 + podIndex > 254)
    throw new InvalidArgumentError(`lab pod: index ${podIndex} out of range 1..244`);
  return { ipv4: `10.244.${nodeIndex}.${10 + podIndex}`, ipv6: `fd00:10:244:${nodeIndex}::${10 + podIndex}` };
}

function checkPlanInput(input: PlanInput): void {
  checkLabName(input.name);
  if (!Number.isInteger(input.nodes) || input.nodes < 1 || input.nodes > MAX_NODES) {
    throw new InvalidArgumentError(`lab nodes: ${input.nodes} out of range 1..${MAX_NODES}`);
  }
  if (
    !Number.isInteger(input.podsPerNode) ||
    input.podsPerNode < 0 ||
    input.podsPerNode > MAX_PODS_PER_NODE
  ) {
    throw new InvalidArgumentError(
      `lab pods per node: ${input.podsPerNode} out of range 0..${MAX_PODS_PER_NODE}`,
    );
  }
}

/** Node i: its fabric and external addresses, pod CIDRs, and its own cgroup, pin and run dirs. */
function planNode(lab: string, i: number, dirs: { cgroup: string; pinDir: string; runDir: string }): LabNode {
  return {
    kind: 'node',
    ...host(lab, nodeName(i)),
    index: i,
    ipv4: `172.30.0.${i}`,
    ipv6: `fd00:172:30::${i}`,
    externalIpv4: `198.18.1.${i}`,
    externalIpv6: `fd00:198:18::1:${i}`,
    podCidrV4: `10.244.${i}.0/24`,
    podCidrV6: `fd00:10:244:${i}::/64`,
    cgroup: `${dirs.cgroup}/node-${i}`,
    pinDir: `${dirs.pinDir}/node-${i}`,
    runDir: `${dirs.runDir}/${nodeName(i)}`,
    ifname: 'eth0',
  };
}

export function planLab(input: PlanInput): LabState {
  checkPlanInput(input);
  const lab = input.name;
  const dirs = {
    cgroup: `${input.cgroupMount}/${lab}`,
    pinDir: `${BPFFS}/${lab}`,
    runDir: `${STATE_DIR}/${lab}`,
  };
  const fabric: LabFabric = { kind: 'fabric', ...host(lab, 'fab'), bridge: 'br0' };
  const client: LabClient = {
    kind: 'client',
    ...host(lab, 'client'),
    ipv4: '198.18.0.10',
    ipv6: 'fd00:198:18::10',
    cgroup: `${dirs.cgroup}/client`,
  };
  const nodes: LabNode[] = [];
  for (let i = 1; i <= input.nodes; i++) nodes.push(planNode(lab, i, dirs));
  return {
    version: 1,
    name: lab,
    status: 'creating',
    createdAt: input.now.toISOString(),
    ownerPid: input.ownerPid,
    mtu: input.mtu,
    cgroup: dirs.cgroup,
    pinDir: dirs.pinDir,
    pinDirCreated: input.bpffsMounted,
    runDir: dirs.runDir,
    fabric,
    client,
    nodes,
    pods: [],
  };
}

/** Fabric prefixes: nodes and the client share one bridge with two subnets. */
export const FABRIC = {
  ipv4Prefix: 24,
  ipv6Prefix: 64,
  externalIpv4Prefix: 15,
  externalIpv6Prefix: 64,
} as const;
