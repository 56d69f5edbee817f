// Runs bin/ferry-cni as a runtime does (CNI_* environment, config on stdin) from inside a "node"
// netns the test creates, wiring pods into pod netns it also creates. Nothing touches the root
// namespace; every netns and temp dir made here is removed by the returned cleanup, even when the
// test fails.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { runPlugin, type PluginRun } from '../../support/cni-plugin.ts';

export const NETWORK = 'ferry';
export type { PluginRun };

export interface PodLink {
  readonly owner: string | undefined;
  readonly addresses: readonly string[];
}

export class CniNode {
  readonly node: string;
  readonly dataDir: string;
  readonly #netns: string[] = [];
  readonly #ranges: readonly unknown[];

  constructor(ranges: readonly unknown[] = ['10.244.1.0/24', 'fd00:10:244:1::/64']) {
    this.#ranges = ranges;
    this.dataDir = mkdtempSync(`${tmpdir()}/ferry-cni-fault-`);
    try {
      this.node = this.netns('fcfn');
      // A node has addresses of its own to source probes from; on lo, as no dummy driver is assumed.
      for (const args of [
        ['link', 'set', 'lo', 'up'],
        ['addr', 'add', '172.30.0.1/32', 'dev', 'lo'],
        ['addr', 'add', 'fd00:172:30::1/128', 'dev', 'lo'],
      ])
        execFileSync('nsenter', [`--net=${this.node}`, 'ip', ...args]);
    } catch (error) {
      this.cleanup();
      throw error;
    }
  }

  /** A fresh netns (a pod's, or the node's), removed by cleanup(). */
  netns(prefix = 'fcfp'): string {
    const name = `${prefix}${randomBytes(4).toString('hex')}`;
    execFileSync('ip', ['netns', 'add', name]);
    this.#netns.push(name);
    return `/run/netns/${name}`;
  }

  conf(extra: Record<string, unknown> = {}): string {
    return JSON.stringify({
      cniVersion: '1.1.0',
      name: NETWORK,
      type: 'ferry-cni',
      ipam: { ranges: this.#ranges, dataDir: this.dataDir },
      ...extra,
    });
  }

  run(env: Record<string, string>, stdin: string): Promise<PluginRun> {
    return runPlugin(this.node, env, stdin);
  }

  call(
    command: string,
    containerId: string,
    netns: string,
    extra: Record<string, unknown> = {},
    ifname = 'eth0',
  ): Promise<PluginRun> {
    return this.run(
      { CNI_COMMAND: command, CNI_CONTAINERID: containerId, CNI_NETNS: netns, CNI_IFNAME: ifname },
      this.conf(extra),
    );
  }

  /** Address → "containerId/ifname" for every allocation on disk. */
  allocations(): Map<string, string> {
    const dir = `${this.dataDir}/${NETWORK}`;
    const out = new Map<string, string>();
    if (!existsSync(dir)) return out;
    for (const name of readdirSync(dir)) {
      if (name === 'lock') continue;
      const [id = '', ifname = ''] = readFileSync(`${dir}/${name}`, 'utf8').split('\n');
      out.set(name, `${id}/${ifname}`);
    }
    return out;
  }

  /** The node's host veths (fp…). */
  hostLinks(): string[] {
    const out = execFileSync('nsenter', [`--net=${this.node}`, 'ip', '-j', 'link', 'show'], {
      encoding: 'utf8',
    });
    return (JSON.parse(out) as { ifname: string }[]).map((l) => l.ifname).filter((n) => n.startsWith('fp'));
  }

  /** The pod's interface as the kernel has it, or undefined when there is none. */
  podLink(netns: string, ifname = 'eth0'): PodLink | undefined {
    const ip = (...args: string[]): unknown[] =>
      JSON.parse(
        execFileSync('nsenter', [`--net=${netns}`, 'ip', '-j', ...args, 'show', 'dev', ifname], {
          encoding: 'utf8',
          stdio: 'pipe',
        }),
      ) as unknown[];
    try {
      // `ip addr` leaves out the alias; `ip link` has it.
      const link = ip('link')[0] as { ifalias?: string } | undefined;
      const addr = ip('addr')[0] as
        { addr_info?: { local: string; prefixlen: number; scope: string }[] } | undefined;
      if (!link) return undefined;
      return {
        owner: link.ifalias,
        addresses: (addr?.addr_info ?? [])
          .filter((a) => a.scope === 'global')
          .map((a) => `${a.local}/${a.prefixlen}`),
      };
    } catch {
      return undefined; // no such device
    }
  }

  ping(address: string): boolean {
    try {
      execFileSync('nsenter', [`--net=${this.node}`, 'ping', '-c1', '-W1', address.split('/')[0]!], {
        stdio: 'pipe',
      });
      return true;
    } catch {
      return false;
    }
  }

  cleanup(): void {
    for (const name of this.#netns.splice(0)) {
      try {
        execFileSync('ip', ['netns', 'del', name], { stdio: 'pipe' });
      } catch {
        // already gone
      }
    }
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

export function ips(out: Record<string, unknown> | undefined): string[] {
  return ((out?.ips ?? []) as { address: string }[]).map((i) => i.address);
}
