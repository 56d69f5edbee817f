// A lab: nodes and pods as network namespaces on one kernel (see DESIGN.md "The lab"). Bring-up
// records the lab's state file before it creates anything, so a crash at any point leaves a lab
// that `destroyLab` (or `ferry lab down`) can find and remove. Nothing is ever created in the root
// network namespace: every veth is made inside a lab namespace with its peer sent to another.
import { mkdir } from 'node:fs/promises';
import { hostIfnameFor } from '../cni/wiring.ts';
import { FerryError, InvalidArgumentError } from '../common/errors.ts';
import { formatCidr, parseCidr } from '../common/ip.ts';
import { logger } from '../common/log.ts';
import { execIn, LabProcess, type ExecOptions, type ExecResult } from './exec.ts';
import { CniPodNetwork } from './lab-driver.ts';
import { NETNS_DIR, planLab, podName, randomLabName, staticPodAddresses } from './plan.ts';
import type { PodNetworkDriver, PodNetworkRequest } from './pod-network.ts';
import { inParallel, ipBatch, run } from '../common/run.ts';
import { bpffsMount, cgroup2Mount, readState, writeState } from './system.ts';
import { destroyLab } from './teardown.ts';
import { clientCommands, fabricCommands, NO_DAD, NODE_SYSCTLS, nodeCommands } from './topology.ts';
import {
  echoServerArgv,
  probeArgv,
  TOOL_ENV,
  type EchoServerOptions,
  type ProbeOptions,
} from './tool-argv.ts';
import { parseProbeOutput, type ProbeReport } from './tools/protocol.ts';
import type { LabClient, LabFabric, LabHost, LabNode, LabPod, LabState } from './types.ts';

const log = logger('lab');

export { ECHO_PORTS, target, type EchoServerOptions, type ProbeOptions } from './tool-argv.ts';

export interface LabOptions {
  /** Default: `fl` + 6 random hex digits. */
  readonly name?: string;
  /** Default 3. */
  readonly nodes?: number;
  /** Default 4. */
  readonly podsPerNode?: number;
  /** Default 1500, on every lab link. */
  readonly mtu?: number;
  /** Default: bin/ferry-cni, invoked as a runtime invokes it, with its IPAM store under the lab's run dir. */
  readonly driver?: PodNetworkDriver;
}

/** How many `ip`/`nsenter` processes bring-up runs at once: enough to hide exec latency on 2 cores. */
const PARALLEL = 6;

/** Every lab pod gets its network from the real plugin, its IPAM store inside the lab's run dir
 * (removed with the lab, crash or not). */
function defaultDriver(state: LabState): PodNetworkDriver {
  return new CniPodNetwork({ dataDir: `${state.runDir}/cni`, mtu: state.mtu });
}

export class Lab implements AsyncDisposable {
  #state: LabState;
  readonly #driver: PodNetworkDriver;
  readonly #processes = new Set<LabProcess>();
  #saving: Promise<void> = Promise.resolve();
  #down = false;

  private constructor(state: LabState, driver: PodNetworkDriver) {
    this.#state = state;
    this.#driver = driver;
  }

  /** Builds a lab. On failure whatever was built is removed again before the error is thrown. */
  static async create(options: LabOptions = {}): Promise<Lab> {
    const [cgroupMount, bpffs] = await Promise.all([cgroup2Mount(), bpffsMount()]);
    const name = options.name ?? randomLabName();
    const state = planLab({
      name,
      nodes: options.nodes ?? 3,
      podsPerNode: options.podsPerNode ?? 4,
      mtu: options.mtu ?? 1500,
      cgroupMount,
      bpffsMounted: bpffs !== null,
      ownerPid: process.pid,
      now: new Date(),
    });
    if (await readState(name))
      throw new InvalidArgumentError(`lab ${name}: already exists (state file present)`);
    await writeState(state);
    const lab = new Lab(state, options.driver ?? defaultDriver(state));
    const started = performance.now();
    try {
      await lab.#build(options.podsPerNode ?? 4);
    } catch (error) {
      await destroyLab(name).catch((e: unknown) =>
        log.error({ lab: name, err: e }, 'cleanup after failed bring-up failed'),
      );
      throw error;
    }
    log.debug({ lab: name, ms: Math.round(performance.now() - started) }, 'lab up');
    return lab;
  }

  /** A lab created earlier (by this or another process), from its state file. */
  static async open(name: string, driver?: PodNetworkDriver): Promise<Lab> {
    const state = await readState(name);
    if (!state) throw new FerryError('FERRY_E_LAB', `lab ${name}: no state file`);
    return new Lab(state, driver ?? defaultDriver(state));
  }

  get name(): string {
    return this.#state.name;
  }
  get state(): LabState {
    return this.#state;
  }
  get nodes(): readonly LabNode[] {
    return this.#state.nodes;
  }
  get pods(): readonly LabPod[] {
    return this.#state.pods;
  }
  get client(): LabClient {
    return this.#state.client;
  }
  get fabric(): LabFabric {
    return this.#state.fabric;
  }

  /** A node by 1-based index or name (`n2`). */
  node(ref: number | string): LabNode {
    const found = this.#state.nodes.find((n) => (typeof ref === 'number' ? n.index === ref : n.name === ref));
    if (!found) throw new InvalidArgumentError(`lab ${this.name}: no node ${ref}`);
    return found;
  }

  /** A pod by name (`n1-p2`) or by node and index. */
  pod(ref: string | { readonly node: number; readonly index: number }): LabPod {
    const name = typeof ref === 'string' ? ref : podName(ref.node, ref.index);
    const found = this.#state.pods.find((p) => p.name === name);
    if (!found) throw new InvalidArgumentError(`lab ${this.name}: no pod ${name}`);
    return found;
  }

  podsOn(node: number | string | LabNode): readonly LabPod[] {
    const n = typeof node === 'object' ? node : this.node(node);
    return this.#state.pods.filter((p) => p.nodeIndex === n.index);
  }

  /** Any host by short name (`fab`, `client`, `n1`, `n1-p2`) or netns name. */
  host(name: string): LabHost {
    const all: LabHost[] = [
      this.#state.fabric,
      this.#state.client,
      ...this.#state.nodes,
      ...this.#state.pods,
    ];
    const found = all.find((h) => h.name === name || h.netns === name);
    if (!found) throw new InvalidArgumentError(`lab ${this.name}: no host ${name}`);
    return found;
  }

  /** Adds a pod on `node` (the lowest free index) and wires it through the driver. */
  async addPod(node: number | string): Promise<LabPod> {
    this.#assertUp();
    const n = this.node(node);
    const pod = await this.#addPod(n, this.#freePodIndex(n), true);
    await this.#save();
    return pod;
  }

  /** Kills the pod's processes (none are tracked per pod: its netns is deleted), unwires it, removes its netns. */
  async removePod(ref: string | LabPod): Promise<void> {
    this.#assertUp();
    const pod = typeof ref === 'string' ? this.pod(ref) : ref;
    for (const p of this.#processes) if (p.host.name === pod.name) await p.kill();
    await this.#driver.del(this.#request(pod, this.node(pod.nodeIndex)));
    await run('ip', ['netns', 'del', pod.netns], { allowFailure: true });
    this.#state = { ...this.#state, pods: this.#state.pods.filter((p) => p.name !== pod.name) };
    await this.#save();
  }

  /**
   * Routes `cidr` (say, LoadBalancer IPs 198.19.0.0/24) from the external client to a node, via the
   * node's address in the client's subnet of the same family.
   */
  async addClientRoute(cidr: string, via: number | string | LabNode): Promise<void> {
    this.#assertUp();
    const node = typeof via === 'object' ? via : this.node(via);
    const parsed = parseCidr(cidr);
    if (!parsed) throw new InvalidArgumentError(`lab client route: not a CIDR: ${JSON.stringify(cidr)}`);
    const gateway = parsed.address.family === 4 ? node.externalIpv4 : node.externalIpv6;
    await ipBatch([['route', 'replace', formatCidr(parsed), 'via', gateway, 'dev', 'eth0']], {
      netns: this.#state.client.netns,
    });
  }

  /** Runs a command on a host (in its netns and cgroup) to completion. */
  exec(host: LabHost | string, argv: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    return execIn(this.#resolve(host), argv, options);
  }

  /** Starts a long-running command on a host; it is killed by `down()` if not before. */
  spawn(host: LabHost | string, argv: readonly string[], env?: NodeJS.ProcessEnv): LabProcess {
    this.#assertUp();
    const p = new LabProcess(this.#resolve(host), argv, env);
    this.#processes.add(p);
    void p.exited().then(() => this.#processes.delete(p));
    return p;
  }

  /** Starts the echo server in a pod (or any host), answering with the host's name; resolves once it listens. */
  async startEchoServer(host: LabHost | string, options: EchoServerOptions = {}): Promise<LabProcess> {
    const h = this.#resolve(host);
    const argv = echoServerArgv(h.name, options);
    const p = this.spawn(h, argv, TOOL_ENV);
    try {
      await p.waitForLine((line) => line.startsWith('{"ready":true'));
    } catch (error) {
      await p.kill();
      throw error;
    }
    return p;
  }

  /** Runs the probe on a host against `targets` (`ip:port`, `[ip6]:port`; see target()). */
  async probe(
    from: LabHost | string,
    targets: string | readonly string[],
    options: ProbeOptions = {},
  ): Promise<ProbeReport> {
    const { argv, budget } = probeArgv(typeof targets === 'string' ? [targets] : targets, options);
    const result = await this.exec(from, argv, { timeoutMs: budget, env: TOOL_ENV });
    if (result.code !== 0 && result.code !== 1 && result.code !== null) {
      throw new FerryError(
        'FERRY_E_LAB',
        `probe on ${this.#resolve(from).name}: exit ${result.code}: ${result.stderr.trim()}`,
      );
    }
    if (result.signal)
      throw new FerryError(
        'FERRY_E_LAB',
        `probe on ${this.#resolve(from).name}: killed by ${result.signal} after ${budget} ms`,
      );
    return parseProbeOutput(result.stdout);
  }

  /** Removes the whole lab. Idempotent. */
  async down(): Promise<void> {
    if (this.#down) return;
    this.#down = true;
    await this.#saving;
    await Promise.all([...this.#processes].map((p) => p.kill()));
    await destroyLab(this.name);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.down();
  }

  async #build(podsPerNode: number): Promise<void> {
    const s = this.#state;
    await mkdir(s.cgroup);
    await Promise.all([
      ...s.nodes.map((n) => mkdir(n.cgroup)),
      mkdir(s.client.cgroup),
      ...s.nodes.map((n) => mkdir(n.runDir, { recursive: true })),
      ...(s.pinDirCreated ? s.nodes.map((n) => mkdir(n.pinDir, { recursive: true })) : []),
    ]);
    const podSlots = s.nodes.flatMap((n) =>
      Array.from({ length: podsPerNode }, (_, k) => ({ node: n, index: k + 1 })),
    );
    const namespaces = [s.fabric, s.client, ...s.nodes].map((h) => h.netns);
    namespaces.push(...podSlots.map(({ node, index }) => `${s.name}-${podName(node.index, index)}`));
    await createNamespaces(namespaces);

    await ipBatch(fabricCommands(s), { netns: s.fabric.netns });
    await inParallel(PARALLEL, [
      ...s.nodes.map(
        (n) => () => ipBatch(nodeCommands(s, n), { netns: n.netns, sysctlsBefore: NODE_SYSCTLS }),
      ),
      () => ipBatch(clientCommands(s), { netns: s.client.netns, sysctlsBefore: NO_DAD }),
    ]);
    // The pod's slot is claimed when its task starts; tasks start in order, so pod k gets slot k.
    const pods = await inParallel(
      PARALLEL,
      podSlots.map(
        ({ node, index }) =>
          () =>
            this.#addPod(node, index, false),
      ),
    );
    this.#state = { ...this.#state, status: 'ready', pods: sortPods(pods) };
    await this.#save();
  }

  async #addPod(node: LabNode, index: number, createNetns: boolean): Promise<LabPod> {
    const name = podName(node.index, index);
    const netns = `${this.name}-${name}`;
    const netnsPath = `${NETNS_DIR}/${netns}`;
    const containerId = netns;
    const ifname = 'eth0';
    if (createNetns) await createNamespaces([netns]);
    const addresses = await this.#driver.add({
      netnsPath,
      ifname,
      containerId,
      node,
      addresses: staticPodAddresses(node.index, index),
    });
    const pod: LabPod = {
      kind: 'pod',
      name,
      netns,
      netnsPath,
      node: node.name,
      nodeIndex: node.index,
      index,
      containerId,
      ifname,
      hostIfname: hostIfnameFor(containerId, ifname),
      ipv4: addresses.ipv4,
      ipv6: addresses.ipv6,
      cgroup: node.cgroup,
    };
    if (createNetns) this.#state = { ...this.#state, pods: sortPods([...this.#state.pods, pod]) };
    return pod;
  }

  #freePodIndex(node: LabNode): number {
    const used = new Set(this.podsOn(node).map((p) => p.index));
    let k = 1;
    while (used.has(k)) k++;
    return k;
  }

  #request(pod: LabPod, node: LabNode): PodNetworkRequest {
    return { netnsPath: pod.netnsPath, ifname: pod.ifname, containerId: pod.containerId, node };
  }

  #resolve(host: LabHost | string): LabHost {
    return typeof host === 'string' ? this.host(host) : host;
  }

  #assertUp(): void {
    if (this.#down) throw new FerryError('FERRY_E_LAB', `lab ${this.name}: already torn down`);
  }

  /** Writes go one after another, in order; a failed write fails its caller, not the later ones. */
  #save(): Promise<void> {
    const state = this.#state;
    const write = this.#saving.then(() => writeState(state));
    this.#saving = write.catch(() => undefined);
    return write;
  }
}

/**
 * Creates namespaces with `lo` up, all from one `ip` process (it forks for each `netns exec`,
 * which is far cheaper than Node spawning one process per namespace). `ip netns exec` hides
 * /sys/fs/bpf, which is harmless for `ip link`; programs that need bpffs are entered with nsenter.
 */
async function createNamespaces(names: readonly string[]): Promise<void> {
  const lines = [
    ...names.map((n) => `netns add ${n}`),
    ...names.map((n) => `netns exec ${n} ip link set lo up`),
  ];
  await run('ip', ['-batch', '-'], { input: lines.join('\n') + '\n' });
}

function sortPods(pods: readonly LabPod[]): LabPod[] {
  return [...pods].sort((a, b) => a.nodeIndex - b.nodeIndex || a.index - b.index);
}

export function createLab(options?: LabOptions): Promise<Lab> {
  return Lab.create(options);
}

export function openLab(name: string, driver?: PodNetworkDriver): Promise<Lab> {
  return Lab.open(name, driver);
}
