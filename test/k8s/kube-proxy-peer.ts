// The real kube-proxy (built by hack/k8s/build.sh) as a peer for differential tests and
// benchmarks, run inside one lab node's network namespace — where its iptables/nftables rules
// land — and nowhere else: it would rewrite the machine's own rules otherwise, so the namespace
// is checked after start and the process killed if it is the machine's.
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { FerryError } from '../../src/common/errors.ts';
import type { Lab } from '../../src/lab/lab.ts';
import type { LabProcess } from '../../src/lab/exec.ts';
import type { LabNode } from '../../src/lab/types.ts';
import { kubeNodeName } from '../../src/lab/agents.ts';
import { k8sBinDir } from './control-plane.ts';

export type KubeProxyMode = 'iptables' | 'nftables';

export interface KubeProxyPeer extends AsyncDisposable {
  readonly process: LabProcess;
  readonly mode: KubeProxyMode;
  /** The ruleset kube-proxy programmed (iptables-save / nft list ruleset in the node). */
  rules(): Promise<string>;
}

export interface KubeProxyOptions {
  readonly kubeconfig: string;
  readonly mode: KubeProxyMode;
  readonly binDir?: string;
}

function netnsInode(pid: number | 'self'): number {
  // (/proc/1 may be out of reach in a sandbox: compare with our own and the node's instead.)
  return fs.statSync(`/proc/${pid}/ns/net`).ino;
}

export async function startKubeProxy(
  lab: Lab,
  node: LabNode,
  options: KubeProxyOptions,
): Promise<KubeProxyPeer> {
  const binary = `${options.binDir ?? k8sBinDir()}/kube-proxy`;
  if (!fs.existsSync(binary))
    throw new FerryError('FERRY_E_LAB', `kube-proxy: ${binary} not built (hack/k8s/build.sh)`);
  const argv = [
    binary,
    `--kubeconfig=${options.kubeconfig}`,
    `--hostname-override=${kubeNodeName(node)}`,
    `--proxy-mode=${options.mode}`,
    '--cluster-cidr=10.244.0.0/16,fd00:10:244::/56',
    // Inside the node's namespace these are the node's own loopback, not the machine's.
    '--metrics-bind-address=127.0.0.1:10249',
    '--healthz-bind-address=127.0.0.1:10256',
    // Leave nf_conntrack_max (a machine-wide setting) alone.
    '--conntrack-max-per-core=0',
    '--v=1',
  ];
  const process = lab.spawn(node, argv);
  // The safety net: a kube-proxy in the machine's namespace is killed before it can sync.
  // (nsenter enters the namespace, then execs kube-proxy: judge once the exec happened.)
  const execd = (): boolean => {
    try {
      return fs.readlinkSync(`/proc/${process.pid}/exe`).endsWith('/kube-proxy');
    } catch {
      return false;
    }
  };
  for (let i = 0; i < 200 && !execd(); i++) await sleep(10);
  let inode: number | undefined;
  try {
    inode = netnsInode(process.pid);
  } catch {
    // exited at once: reported below
  }
  // Exactly the node's namespace (the bind-mounted /run/netns file has the namespace's inode).
  if (inode === undefined || inode === netnsInode('self') || inode !== fs.statSync(node.netnsPath).ino) {
    await process.kill();
    throw new FerryError(
      'FERRY_E_LAB',
      `kube-proxy on ${node.name}: not running inside the node's namespace: ${process.stderrTail}`,
    );
  }
  const rules = async (): Promise<string> => {
    const r =
      options.mode === 'iptables'
        ? await lab.exec(node, ['sh', '-c', 'iptables-save; ip6tables-save'])
        : await lab.exec(node, ['nft', 'list', 'ruleset']);
    return r.stdout;
  };
  return { process, mode: options.mode, rules, [Symbol.asyncDispose]: () => process.kill() };
}

/** Waits until every address in `vips` appears in kube-proxy's ruleset (it has synced them). */
export async function waitForRules(
  peer: KubeProxyPeer,
  vips: readonly string[],
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const text = await peer.rules();
    const missing = vips.filter((v) => !text.includes(v));
    if (missing.length === 0) return;
    if (performance.now() > deadline)
      throw new FerryError(
        'FERRY_E_LAB',
        `kube-proxy (${peer.mode}): not programmed in time: ${missing.join(', ')}; ${peer.process.stderrTail.slice(-2000)}`,
      );
    await sleep(200);
  }
}
