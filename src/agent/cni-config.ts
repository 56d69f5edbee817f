// Writes this node's CNI network configuration (a conflist, as the runtime reads it from
// /etc/cni/net.d) from the node's own Node object: the pod CIDRs the controller manager gave it
// become ferry-cni's IPAM ranges. The runtime treats the node as network-ready only once a config
// exists, so nothing is written before the Node has a pod CIDR, and a change rewrites it
// atomically (a runtime must never read half a file).
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { makeDirs } from '../common/fs.ts';
import type { Node } from '../model/k8s.ts';
import type { ModelChange } from '../model/service-model.ts';

export const CNI_CONFLIST = '05-ferry.conflist';

export interface CniConfigOptions {
  readonly self: string;
  /** Where the runtime looks for network configurations, e.g. /etc/cni/net.d. */
  readonly confDir: string;
  readonly log: Logger;
  readonly mtu?: number;
}

/** The conflist for a node's pod CIDRs (ferry-cni alone; portmap chained for hostPort). */
export function conflistFor(podCIDRs: readonly string[], mtu?: number): object {
  return {
    cniVersion: '1.1.0',
    name: 'ferry',
    plugins: [
      { type: 'ferry-cni', ...(mtu === undefined ? {} : { mtu }), ipam: { ranges: [...podCIDRs] } },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
}

function podCIDRsOf(node: Node | undefined): readonly string[] {
  if (!node) return [];
  if (node.spec?.podCIDRs?.length) return node.spec.podCIDRs;
  return node.spec?.podCIDR ? [node.spec.podCIDR] : [];
}

export class CniConfigWriter {
  readonly #options: CniConfigOptions;
  #written: string | undefined;

  constructor(options: CniConfigOptions) {
    this.#options = options;
  }

  get file(): string {
    return path.join(this.#options.confDir, CNI_CONFLIST);
  }

  onChange(change: ModelChange): void {
    if (change.kind !== 'Node' || (change.current ?? change.previous)?.metadata.name !== this.#options.self) return;
    const cidrs = podCIDRsOf(change.current);
    // A deleted own Node or one without a pod CIDR leaves the last config in place: pods that
    // exist keep working, and removing the file would make the runtime call the node not ready.
    if (cidrs.length === 0) return;
    const text = JSON.stringify(conflistFor(cidrs, this.#options.mtu), null, 2) + '\n';
    if (text === this.#written) return;
    try {
      makeDirs(this.#options.confDir, '--cni-conf-dir');
      const tmp = `${this.file}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, text, { mode: 0o644 });
      fs.renameSync(tmp, this.file);
      this.#written = text;
      this.#options.log.info({ file: this.file, podCIDRs: cidrs }, 'CNI configuration written');
    } catch (err) {
      this.#options.log.error({ err, file: this.file }, 'CNI configuration could not be written');
    }
  }
}
