// `ferry agent`: the node agent (what a DaemonSet runs), and `--uninstall` to remove its datapath.
import os from 'node:os';
import fs from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { canonicalIp, parseCidr } from '../../common/ip.ts';
import { MAX_MAP_SIZE } from '../../datapath/bpf/limits.ts';
import { parseServiceCidrList } from '../../datapath/service-cidrs.ts';

function list(value: string): string[] {
  return value
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);
}

function addresses(flag: string) {
  return (value: string): string[] => {
    const out = list(value);
    for (const a of out)
      if (!canonicalIp(a)) throw new InvalidArgumentError(`${flag}: "${a}" is not an IP address`);
    return out;
  };
}

function cidrs(flag: string) {
  return (value: string): string[] => {
    const out = list(value);
    for (const c of out) if (!parseCidr(c)) throw new InvalidArgumentError(`${flag}: "${c}" is not a CIDR`);
    return out;
  };
}

function serviceCidrs(value: string): string[] {
  try {
    return parseServiceCidrList(value, '--service-cidrs');
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

function count(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1)
      throw new InvalidArgumentError(`${flag}: "${value}" is not a positive integer`);
    return n;
  };
}

function nonNegative(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0)
      throw new InvalidArgumentError(`${flag}: "${value}" is not a non-negative integer`);
    return n;
  };
}

/** A map size: a decimal integer the kernel can create (1 … 2^31; 2^32+1 must not wrap to 1). */
function mapSize(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^[1-9][0-9]*$/.test(value.trim()) || !Number.isSafeInteger(n) || n > MAX_MAP_SIZE)
      throw new InvalidArgumentError(`${flag}: "${value}" is not an integer from 1 to ${MAX_MAP_SIZE}`);
    return n;
  };
}

/** The cgroup2 mount: the default cgroup is its root, as in production. */
function cgroup2Root(): string {
  const line = fs
    .readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .find((l) => l.split(' ')[2] === 'cgroup2');
  return line?.split(' ')[1] ?? '/sys/fs/cgroup';
}

export const DEFAULT_PIN_DIR = '/sys/fs/bpf/ferry';
export const DEFAULT_RUN_DIR = '/run/ferry';

type RunOptions = Parameters<typeof import('../../agent/run.ts').runAgent>[0];

export function register(program: Command): void {
  const command = program
    .command('agent')
    .description('run the node agent: sources → model → BPF maps (leaves the datapath running on exit)');
  addSourceOptions(command);
  addDatapathOptions(command);
  addEventOptions(command);
  addEndpointOptions(command);
  command
    .option('--uninstall', 'detach the programs and remove every pin this agent owns, then exit')
    .action(async (o: Record<string, unknown>) => {
      const { runAgent, uninstallAgent } = await import('../../agent/run.ts');
      if (o.uninstall) {
        const removed = uninstallAgent(o.pinDir as string, o.runDir as string);
        console.log(`removed ${removed.links} links and ${removed.maps} maps from ${o.pinDir as string}`);
        return;
      }
      await runAgent(runOptions(o));
    });
}

function addSourceOptions(command: Command): void {
  command
    .addOption(new Option('--source <kind>', 'where Services come from').choices(['standalone', 'kubernetes']).default('standalone'))
    .option('--manifests <dir>', 'standalone: directory of Kubernetes YAML', '/etc/ferry/manifests')
    .option('--state-dir <dir>', 'standalone: where allocations persist', '/var/lib/ferry')
    .option('--manifest-settle-ms <ms>', 'standalone: a changed file is read once it has been quiet this long', nonNegative('--manifest-settle-ms'), 250)
    .option('--manifest-max-file-bytes <n>', 'standalone: larger manifest files are refused by name', count('--manifest-max-file-bytes'), 4 * 1024 * 1024)
    .option('--run-dir <dir>', 'status and ready files', DEFAULT_RUN_DIR)
    .option('--kubeconfig <file>', 'kubernetes: kubeconfig (default: in-cluster, then ~/.kube/config)')
    .option('--server <url>', 'kubernetes: API server address (needed when kube-proxy is gone)')
    .option('--node-name <name>', 'this node', process.env.NODE_NAME ?? os.hostname())
    .option('--node-addresses <ips>', 'override the node addresses from its Node object', addresses('--node-addresses'))
    .option('--nodeport-addresses <cidrs>', 'only node addresses in these CIDRs serve NodePorts', cidrs('--nodeport-addresses'))
    .option(
      '--service-cidrs <cidrs>',
      'service CIDRs, one per family: connects and sends to an address in them that no Service serves are refused (default: standalone the allocator\'s, kubernetes the ServiceCIDR objects)',
      serviceCidrs,
    )
    .addOption(
      new Option('--watch-pods <on|off>', "kubernetes: watch this node's Pods so flows name client pods that back no Service (needs list/watch on pods)")
        .choices(['on', 'off'])
        .default('on'),
    );
}

function addDatapathOptions(command: Command): void {
  command
    .option('--cgroup <dir>', 'cgroup v2 whose sockets are load-balanced', cgroup2Root())
    .option('--pin-dir <dir>', 'bpffs directory for maps and links', DEFAULT_PIN_DIR)
    .option('--map-size-services <n>', 'entries of ferry_services_v1', mapSize('--map-size-services'))
    .option('--map-size-backends <n>', 'entries of ferry_backends_v1', mapSize('--map-size-backends'))
    .option('--nodeport-interfaces <list>', "north-south interfaces: 'auto' (those holding node addresses), 'none', or names", 'auto')
    .addOption(new Option('--xdp <mode>', 'XDP for north-south ingress').choices(['off', 'native', 'generic']).default('off'))
    .addOption(
      new Option('--nodeport-mode <mode>', 'north-south IPv4 flows to a backend on another node: snat (replies return via this node) or dsr (the backend node answers the client directly)')
        .choices(['snat', 'dsr'])
        .default('snat'),
    )
    .addOption(
      new Option('--pod-routes <mode>', "routes to other nodes' pod CIDRs from the Node objects: native (nodes share a link), vxlan (overlay), off")
        .choices(['off', 'native', 'vxlan'])
        .default('off'),
    )
    .option('--cni-conf-dir <dir>', "write this node's CNI network configuration (its Node's pod CIDRs) here, e.g. /etc/cni/net.d");
}

function addEventOptions(command: Command): void {
  command
    .addOption(new Option('--events <on|off>', 'flow events for `ferry observe` (per-reason counters run either way)').choices(['on', 'off']).default('on'))
    .option('--events-rate <n>', 'events per second per CPU before they are counted as rate limited (0 = unlimited)', nonNegative('--events-rate'), 20000)
    .option('--events-burst <n>', 'per-CPU burst of the events rate limit', count('--events-burst'), 20000)
    .option('--events-sample <n>', 'keep one in N translations/forwards (drops are never sampled)', count('--events-sample'), 1)
    .option('--flows-buffer <n>', 'recent flows the agent keeps for `ferry observe --last`', count('--flows-buffer'), 8192);
}

function addEndpointOptions(command: Command): void {
  command
    .option('--metrics-bind-address <host:port>', 'Prometheus /metrics ("0" = off)', '127.0.0.1:10249')
    .option('--healthz-bind-address <host:port>', '/healthz and /livez in kube-proxy\'s shape ("0" = off)', '127.0.0.1:10256')
    .option('--health-timeout <seconds>', 'a change waiting longer than this for the datapath fails /healthz', count('--health-timeout'), 60);
}

/** The parsed flags as the agent's options (commander has already checked each value). */
function runOptions(o: Record<string, unknown>): RunOptions {
  return {
    source: o.source as 'standalone' | 'kubernetes',
    manifests: o.manifests as string,
    stateDir: o.stateDir as string,
    manifestSettleMs: o.manifestSettleMs as number,
    manifestMaxFileBytes: o.manifestMaxFileBytes as number,
    runDir: o.runDir as string,
    ...(o.kubeconfig ? { kubeconfig: o.kubeconfig as string } : {}),
    ...(o.server ? { server: o.server as string } : {}),
    watchPods: o.watchPods === 'on',
    nodeName: o.nodeName as string,
    ...(o.nodeAddresses ? { nodeAddresses: o.nodeAddresses as string[] } : {}),
    ...(o.nodeportAddresses ? { nodePortAddresses: o.nodeportAddresses as string[] } : {}),
    ...(o.serviceCidrs ? { serviceCidrs: o.serviceCidrs as string[] } : {}),
    cgroup: o.cgroup as string,
    podRoutes: o.podRoutes as 'off' | 'native' | 'vxlan',
    nodeportMode: o.nodeportMode as 'snat' | 'dsr',
    metricsBindAddress: o.metricsBindAddress as string,
    healthzBindAddress: o.healthzBindAddress as string,
    healthTimeoutMs: (o.healthTimeout as number) * 1000,
    ...(o.cniConfDir ? { cniConfDir: o.cniConfDir as string } : {}),
    nodeportInterfaces: o.nodeportInterfaces === 'auto' ? 'auto' : o.nodeportInterfaces === 'none' ? [] : list(o.nodeportInterfaces as string),
    xdp: o.xdp as 'off' | 'native' | 'generic',
    events: {
      enabled: o.events === 'on',
      rate: o.eventsRate as number,
      burst: o.eventsBurst as number,
      sample: o.eventsSample as number,
      buffer: o.flowsBuffer as number,
    },
    pinDir: o.pinDir as string,
    sizes: {
      ...(o.mapSizeServices ? { services: o.mapSizeServices as number } : {}),
      ...(o.mapSizeBackends ? { backends: o.mapSizeBackends as number } : {}),
    },
  };
}
