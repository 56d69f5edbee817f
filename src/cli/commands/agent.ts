// `ferry agent`: the node agent (what a DaemonSet runs), and `--uninstall` to remove its datapath.
import os from 'node:os';
import fs from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { canonicalIp, parseCidr } from '../../common/ip.ts';

function list(value: string): string[] {
  return value.split(',').map((v) => v.trim()).filter(Boolean);
}

function addresses(flag: string) {
  return (value: string): string[] => {
    const out = list(value);
    for (const a of out) if (!canonicalIp(a)) throw new InvalidArgumentError(`${flag}: "${a}" is not an IP address`);
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

function count(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${flag}: "${value}" is not a positive integer`);
    return n;
  };
}

/** The cgroup2 mount: the default cgroup is its root, as in production. */
function cgroup2Root(): string {
  const line = fs.readFileSync('/proc/mounts', 'utf8').split('\n').find((l) => l.split(' ')[2] === 'cgroup2');
  return line?.split(' ')[1] ?? '/sys/fs/cgroup';
}

export const DEFAULT_PIN_DIR = '/sys/fs/bpf/ferry';
export const DEFAULT_RUN_DIR = '/run/ferry';

export function register(program: Command): void {
  program
    .command('agent')
    .description('run the node agent: sources → model → BPF maps (leaves the datapath running on exit)')
    .addOption(new Option('--source <kind>', 'where Services come from').choices(['standalone', 'kubernetes']).default('standalone'))
    .option('--manifests <dir>', 'standalone: directory of Kubernetes YAML', '/etc/ferry/manifests')
    .option('--state-dir <dir>', 'standalone: where allocations persist', '/var/lib/ferry')
    .option('--run-dir <dir>', 'status and ready files', DEFAULT_RUN_DIR)
    .option('--kubeconfig <file>', 'kubernetes: kubeconfig (default: in-cluster, then ~/.kube/config)')
    .option('--server <url>', 'kubernetes: API server address (needed when kube-proxy is gone)')
    .option('--node-name <name>', 'this node', process.env.NODE_NAME ?? os.hostname())
    .option('--node-addresses <ips>', 'override the node addresses from its Node object', addresses('--node-addresses'))
    .option('--nodeport-addresses <cidrs>', 'only node addresses in these CIDRs serve NodePorts', cidrs('--nodeport-addresses'))
    .option('--cgroup <dir>', 'cgroup v2 whose sockets are load-balanced', cgroup2Root())
    .option('--pin-dir <dir>', 'bpffs directory for maps and links', DEFAULT_PIN_DIR)
    .option('--map-size-services <n>', 'entries of ferry_services_v1', count('--map-size-services'))
    .option('--map-size-backends <n>', 'entries of ferry_backends_v1', count('--map-size-backends'))
    .option('--nodeport-interfaces <list>', "north-south interfaces: 'auto' (those holding node addresses), 'none', or names", 'auto')
    .addOption(new Option('--xdp <mode>', 'XDP for north-south ingress').choices(['off', 'native', 'generic']).default('off'))
    .option('--uninstall', 'detach the programs and remove every pin this agent owns, then exit')
    .action(async (o: Record<string, unknown>) => {
      const { runAgent, uninstallAgent } = await import('../../agent/run.ts');
      if (o.uninstall) {
        const removed = uninstallAgent(o.pinDir as string, o.runDir as string);
        console.log(`removed ${removed.links} links and ${removed.maps} maps from ${o.pinDir as string}`);
        return;
      }
      await runAgent({
        source: o.source as 'standalone' | 'kubernetes',
        manifests: o.manifests as string,
        stateDir: o.stateDir as string,
        runDir: o.runDir as string,
        ...(o.kubeconfig ? { kubeconfig: o.kubeconfig as string } : {}),
        ...(o.server ? { server: o.server as string } : {}),
        nodeName: o.nodeName as string,
        ...(o.nodeAddresses ? { nodeAddresses: o.nodeAddresses as string[] } : {}),
        ...(o.nodeportAddresses ? { nodePortAddresses: o.nodeportAddresses as string[] } : {}),
        cgroup: o.cgroup as string,
        nodeportInterfaces: o.nodeportInterfaces === 'auto' ? 'auto' : o.nodeportInterfaces === 'none' ? [] : list(o.nodeportInterfaces as string),
        xdp: o.xdp as 'off' | 'native' | 'generic',
        pinDir: o.pinDir as string,
        sizes: {
          ...(o.mapSizeServices ? { services: o.mapSizeServices as number } : {}),
          ...(o.mapSizeBackends ? { backends: o.mapSizeBackends as number } : {}),
        },
      });
    });
}
