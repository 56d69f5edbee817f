// Installs the socket-layer load balancer on one cgroup and hands out its maps. Everything lives
// under one pin directory (maps by name, links under links/), so the datapath keeps working when
// the agent is gone, and a restarted agent adopts it instead of attaching twice.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BpfObject, BpfLink, BpfMap } from './bpf/index.ts';
import type { LbMaps } from './service-writer.ts';

export const SOCK_OBJECT = fileURLToPath(new URL('../../build/bpf/sock.o', import.meta.url));

/** The programs of bpf/sock.c, in attach order (reverse translation first, so a socket translated
 * by a freshly attached connect hook always finds its recvmsg/getpeername counterpart). */
export const SOCK_PROGRAMS = [
  'ferry_recvmsg4',
  'ferry_recvmsg6',
  'ferry_getpeername4',
  'ferry_getpeername6',
  'ferry_bind4',
  'ferry_bind6',
  'ferry_connect4',
  'ferry_connect6',
  'ferry_sendmsg4',
  'ferry_sendmsg6',
] as const;

export const LB_MAP_NAMES = {
  services: 'ferry_services_v1',
  backends: 'ferry_backends_v1',
  revnat: 'ferry_revnat_v1',
  nodeports: 'ferry_nodeports_v1',
  sockRevnat: 'ferry_sock_revnat_v1',
  affinity: 'ferry_affinity_v1',
  sockCounters: 'ferry_sock_counters_v1',
} as const;

export interface MapSizes {
  readonly services?: number;
  readonly backends?: number;
  readonly sockRevnat?: number;
  readonly affinity?: number;
}

export interface SocketLbOptions {
  /** bpffs directory for this node's pins, e.g. /sys/fs/bpf/ferry (production) or <lab>/node-1. */
  readonly pinDir: string;
  /** cgroup v2 directory whose processes are load-balanced (production: the cgroup2 root). */
  readonly cgroup: string;
  readonly sizes?: MapSizes;
  readonly objectPath?: string;
}

export interface InstallReport {
  readonly attached: readonly string[];
  readonly adopted: readonly string[];
}

export class SocketLbDatapath {
  readonly #object: BpfObject;
  readonly report: InstallReport;

  private constructor(object: BpfObject, report: InstallReport) {
    this.#object = object;
    this.report = report;
  }

  /** Loads the programs (reusing pinned maps), attaches what is not attached yet, pins the links. */
  static install(options: SocketLbOptions): SocketLbDatapath {
    fs.mkdirSync(path.join(options.pinDir, 'links'), { recursive: true });
    const object = BpfObject.open(options.objectPath ?? SOCK_OBJECT, { pinRoot: options.pinDir });
    try {
      const sizes = options.sizes ?? {};
      if (sizes.services) object.setMapMaxEntries(LB_MAP_NAMES.services, sizes.services);
      if (sizes.backends) {
        object.setMapMaxEntries(LB_MAP_NAMES.backends, sizes.backends);
        object.setMapMaxEntries(LB_MAP_NAMES.revnat, sizes.backends);
      }
      if (sizes.sockRevnat) object.setMapMaxEntries(LB_MAP_NAMES.sockRevnat, sizes.sockRevnat);
      if (sizes.affinity) object.setMapMaxEntries(LB_MAP_NAMES.affinity, sizes.affinity);
      object.load();
      const attached: string[] = [];
      const adopted: string[] = [];
      for (const name of SOCK_PROGRAMS) {
        const pin = path.join(options.pinDir, 'links', name);
        if (fs.existsSync(pin)) {
          // A previous agent's link still runs the program over the same pinned maps: keep it.
          adopted.push(name);
          continue;
        }
        const link = object.program(name).attachCgroup(options.cgroup);
        link.pin(pin);
        link.close();
        attached.push(name);
      }
      return new SocketLbDatapath(object, { attached, adopted });
    } catch (error) {
      object.close();
      throw error;
    }
  }

  maps(): LbMaps & { readonly sockRevnat: BpfMap; readonly affinity: BpfMap; readonly sockCounters: BpfMap } {
    return {
      services: this.#object.map(LB_MAP_NAMES.services),
      backends: this.#object.map(LB_MAP_NAMES.backends),
      revnat: this.#object.map(LB_MAP_NAMES.revnat),
      nodeports: this.#object.map(LB_MAP_NAMES.nodeports),
      sockRevnat: this.#object.map(LB_MAP_NAMES.sockRevnat),
      affinity: this.#object.map(LB_MAP_NAMES.affinity),
      sockCounters: this.#object.map(LB_MAP_NAMES.sockCounters),
    };
  }

  /** Closes this process's handles; the pinned datapath keeps running. */
  close(): void {
    this.#object.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** Which programs have a pinned link under pinDir (for `ferry status`). */
  static attachedPrograms(pinDir: string): string[] {
    const dir = path.join(pinDir, 'links');
    return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
  }

  /** Detaches every program (removing a link's last pin detaches it) and removes the maps' pins. */
  static uninstall(pinDir: string): { readonly links: number; readonly maps: number } {
    let links = 0;
    let maps = 0;
    const linkDir = path.join(pinDir, 'links');
    if (fs.existsSync(linkDir)) {
      for (const name of fs.readdirSync(linkDir)) {
        const link = BpfLink.openPinned(path.join(linkDir, name));
        link.detach();
        link.close();
        fs.rmSync(path.join(linkDir, name));
        links++;
      }
      fs.rmdirSync(linkDir);
    }
    if (fs.existsSync(pinDir)) {
      for (const name of fs.readdirSync(pinDir)) {
        if (!name.startsWith('ferry_')) continue;
        fs.rmSync(path.join(pinDir, name));
        maps++;
      }
    }
    return { links, maps };
  }

  /** Opens the pinned LB maps without loading anything (the CLI, with the agent down). */
  static openPinnedMaps(pinDir: string): LbMaps {
    const open = (name: string): BpfMap => BpfMap.openPinned(path.join(pinDir, name));
    return {
      services: open(LB_MAP_NAMES.services),
      backends: open(LB_MAP_NAMES.backends),
      revnat: open(LB_MAP_NAMES.revnat),
      nodeports: open(LB_MAP_NAMES.nodeports),
    };
  }
}
