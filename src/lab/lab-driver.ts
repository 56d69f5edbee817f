// A lab PodNetworkDriver that wires every pod through bin/ferry-cni, invoked exactly as a
// container runtime invokes a CNI plugin: a fresh process in the node's network namespace,
// CNI_* environment, the network configuration on stdin, the result on stdout.
import { fileURLToPath } from 'node:url';
import { FerryError } from '../common/errors.ts';
import { run } from '../common/run.ts';
import type { PodAddresses, PodNetworkDriver, PodNetworkRequest } from './pod-network.ts';

const PLUGIN = fileURLToPath(new URL('../../bin/ferry-cni', import.meta.url));

export interface CniPodNetworkOptions {
  /** IPAM state lives in <dataDir>/<node name>/… (one host-local store per lab node). */
  readonly dataDir: string;
  readonly mtu?: number;
}

interface AddResult {
  readonly ips?: readonly { readonly address: string }[];
}

export class CniPodNetwork implements PodNetworkDriver {
  readonly #options: CniPodNetworkOptions;

  constructor(options: CniPodNetworkOptions) {
    this.#options = options;
  }

  async add(pod: PodNetworkRequest): Promise<PodAddresses> {
    const out = (await this.#invoke('ADD', pod)) as AddResult;
    const ips = (out.ips ?? []).map((i) => i.address.split('/')[0]!);
    const ipv4 = ips.find((a) => !a.includes(':'));
    const ipv6 = ips.find((a) => a.includes(':'));
    if (!ipv4 || !ipv6)
      throw new FerryError(
        'FERRY_E_CNI',
        `pod ${pod.containerId} on ${pod.node.name}: ADD result lacks an address family: ${JSON.stringify(out)}`,
      );
    return { ipv4, ipv6 };
  }

  async del(pod: PodNetworkRequest): Promise<void> {
    await this.#invoke('DEL', pod);
  }

  async #invoke(command: 'ADD' | 'DEL', pod: PodNetworkRequest): Promise<unknown> {
    const conf = {
      cniVersion: '1.1.0',
      name: 'ferry-lab',
      type: 'ferry-cni',
      ...(this.#options.mtu === undefined ? {} : { mtu: this.#options.mtu }),
      // The runtime's side of the `ips` capability: the lab asks for its planned addresses.
      ...(command === 'ADD' && pod.addresses
        ? { capabilities: { ips: true }, runtimeConfig: { ips: [pod.addresses.ipv4, pod.addresses.ipv6] } }
        : {}),
      ipam: {
        ranges: [pod.node.podCidrV4, pod.node.podCidrV6],
        dataDir: `${this.#options.dataDir}/${pod.node.name}`,
      },
    };
    const result = await run('nsenter', [`--net=${pod.node.netnsPath}`, '--', PLUGIN], {
      input: JSON.stringify(conf),
      allowFailure: true,
      env: {
        PATH: process.env.PATH,
        FERRY_LOG_LEVEL: 'silent',
        CNI_COMMAND: command,
        CNI_CONTAINERID: pod.containerId,
        CNI_NETNS: pod.netnsPath,
        CNI_IFNAME: pod.ifname,
        CNI_PATH: PLUGIN.replace(/\/[^/]+$/, ''),
      },
    });
    const text = result.stdout.trim();
    const parsed: unknown = text === '' ? undefined : JSON.parse(text);
    if (result.code !== 0) {
      const e = parsed as { code?: number; msg?: string } | undefined;
      throw new FerryError(
        'FERRY_E_CNI',
        `pod ${pod.containerId} on ${pod.node.name}: CNI ${command} failed (code ${e?.code}): ${e?.msg ?? result.stderr.trim()}`,
      );
    }
    return parsed;
  }
}
