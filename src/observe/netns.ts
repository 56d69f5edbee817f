// Which pod a network namespace belongs to, by the namespace's inode (the socket-layer events carry
// the caller's netns inode: at connect() there is no source address yet). Container runtimes and
// the lab keep every pod's network namespace bind-mounted under /run/netns (containerd and CRI-O:
// cni-<uuid>; `ip netns`: the name), so: stat those files for their inodes, read the addresses
// inside the matching one once (nsenter + ip), and name the pod by address through the PodIndex.
// This needs nothing from the CNI and works for any of them; in Kubernetes the agent's pod needs
// /run/netns mounted (hostPath, mountPropagation: HostToContainer).
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { canonicalIp } from '../common/ip.ts';
import type { NetnsInfo, PodRef } from './flow.ts';

const execFileAsync = promisify(execFile);

export interface NetnsDirectoryOptions {
  /** Directories of bind-mounted namespaces. Default /run/netns (where /var/run/netns points). */
  readonly dirs?: readonly string[];
  /** The agent's own namespace: events from it are the node itself (hostNetwork). */
  readonly hostNetns?: string;
  readonly podByIp: (ip: string) => PodRef | undefined;
  /** Global addresses inside a namespace file (tests replace it). */
  readonly addressesOf?: (netnsPath: string) => Promise<string[]>;
  /** How long an inode that matched no file stays unknown before the next scan (ms). */
  readonly negativeTtlMs?: number;
}

interface Entry {
  readonly addresses: readonly string[];
}

export async function addressesInNetns(netnsPath: string): Promise<string[]> {
  const { stdout } = await execFileAsync('nsenter', [`--net=${netnsPath}`, 'ip', '-j', 'addr', 'show'], { timeout: 5000 });
  const links = JSON.parse(stdout) as { addr_info?: { local?: string; scope?: string }[] }[];
  const out: string[] = [];
  for (const l of links) for (const a of l.addr_info ?? []) if (a.scope === 'global' && a.local) out.push(canonicalIp(a.local) ?? a.local);
  return out;
}

export class NetnsDirectory {
  readonly #options: NetnsDirectoryOptions;
  readonly #entries = new Map<number, Entry>();
  readonly #misses = new Map<number, number>(); // inode → when the last scan missed it
  readonly #hostInum: number | undefined;
  #scan: Promise<void> | undefined;
  readonly #wanted = new Set<number>();

  constructor(options: NetnsDirectoryOptions) {
    this.#options = options;
    try {
      this.#hostInum = fs.statSync(options.hostNetns ?? '/proc/self/ns/net').ino;
    } catch {
      this.#hostInum = undefined;
    }
  }

  /** What is known now; undefined = never seen (call resolve) or not found. */
  netns(inum: number): NetnsInfo | undefined {
    if (inum === this.#hostInum) return { host: true, addresses: [] };
    const e = this.#entries.get(inum);
    if (!e) return undefined;
    for (const a of e.addresses) {
      const pod = this.#options.podByIp(a);
      if (pod) return { pod, addresses: e.addresses };
    }
    return { addresses: e.addresses };
  }

  /** Whether resolve() could teach us anything new about this inode now. */
  needsResolve(inum: number): boolean {
    if (inum === 0 || inum === this.#hostInum || this.#entries.has(inum)) return false;
    const missed = this.#misses.get(inum);
    return missed === undefined || performance.now() - missed > (this.#options.negativeTtlMs ?? 2000);
  }

  /** Scans for the inode (coalesced with any scan in flight); resolves when the answer is cached. */
  resolve(inum: number): Promise<void> {
    this.#wanted.add(inum);
    this.#scan ??= this.#runScan().finally(() => (this.#scan = undefined));
    return this.#scan;
  }

  /** Forgets namespaces whose files are gone (pods deleted); inode numbers get reused. */
  prune(): void {
    const live = new Set(this.#listFiles().keys());
    for (const inum of this.#entries.keys()) if (!live.has(inum)) this.#entries.delete(inum);
  }

  #listFiles(): Map<number, string> {
    const byInode = new Map<number, string>();
    for (const dir of this.#options.dirs ?? ['/run/netns']) {
      let names: string[];
      try {
        names = fs.readdirSync(dir);
      } catch {
        continue;
      }
      for (const name of names) {
        const file = path.join(dir, name);
        try {
          byInode.set(fs.statSync(file).ino, file);
        } catch {
          // removed while we looked
        }
      }
    }
    return byInode;
  }

  async #runScan(): Promise<void> {
    await Promise.resolve(); // let callers of this tick add their inodes
    const wanted = [...this.#wanted];
    this.#wanted.clear();
    const files = this.#listFiles();
    const addressesOf = this.#options.addressesOf ?? addressesInNetns;
    await Promise.all(
      wanted.map(async (inum) => {
        const file = files.get(inum);
        if (!file) {
          this.#misses.set(inum, performance.now());
          return;
        }
        try {
          this.#entries.set(inum, { addresses: await addressesOf(file) });
          this.#misses.delete(inum);
        } catch {
          this.#misses.set(inum, performance.now());
        }
      }),
    );
    if (this.#wanted.size) await this.#runScan();
  }
}
