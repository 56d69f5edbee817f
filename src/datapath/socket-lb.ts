// Installs the socket-layer load balancer on one cgroup and hands out its maps. Everything lives
// under one pin directory (maps by name, links under links/), so the datapath keeps working when
// the agent is gone, and a restarted agent adopts it instead of attaching twice.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BpfObject, BpfLink, BpfMap, ensurePinDir } from './bpf/index.ts';
import { BpfError, InvalidArgumentError } from '../common/errors.ts';
import { MAX_MAP_SIZE } from './bpf/limits.ts';
import type { LbMaps } from './service-writer.ts';

export const SOCK_OBJECT = fileURLToPath(new URL('../../build/bpf/sock.o', import.meta.url));
/** Every object Ferry loads lives here; their pinned maps are the names Ferry owns in a pin dir. */
const OBJECT_DIR = path.dirname(SOCK_OBJECT);

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
  sockCounters: 'ferry_sock_counters_v2',
  serviceCidrs: 'ferry_service_cidrs_v1',
} as const;

export interface MapSizes {
  readonly services?: number;
  readonly backends?: number;
  readonly sockRevnat?: number;
  readonly affinity?: number;
}

/** Which maps each size sets, and the flag an operator sets it with. */
const SIZED_MAPS: readonly { readonly field: keyof MapSizes; readonly maps: readonly string[]; readonly flag: string }[] = [
  { field: 'services', maps: [LB_MAP_NAMES.services], flag: '--map-size-services' },
  { field: 'backends', maps: [LB_MAP_NAMES.backends, LB_MAP_NAMES.revnat], flag: '--map-size-backends' },
  { field: 'sockRevnat', maps: [LB_MAP_NAMES.sockRevnat], flag: 'sizes.sockRevnat' },
  { field: 'affinity', maps: [LB_MAP_NAMES.affinity], flag: 'sizes.affinity' },
];


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
    if (!fs.statSync(options.cgroup, { throwIfNoEntry: false })?.isDirectory())
      throw new InvalidArgumentError(`--cgroup ${options.cgroup}: no such cgroup v2 directory`);
    ensurePinDir(options.pinDir);
    const pinnedBefore = SocketLbDatapath.pinnedMaps(options.pinDir);
    const object = BpfObject.open(options.objectPath ?? SOCK_OBJECT, { pinRoot: options.pinDir });
    const attached: string[] = [];
    try {
      SocketLbDatapath.#size(object, options.pinDir, options.sizes ?? {});
      SocketLbDatapath.#load(object, options.sizes ?? {});
      const adopted: string[] = [];
      for (const name of SOCK_PROGRAMS) {
        const pin = path.join(options.pinDir, 'links', name);
        if (fs.existsSync(pin)) {
          // A previous agent's link still runs the program over the same pinned maps: keep it.
          adopted.push(name);
          continue;
        }
        const link = object.program(name).attachCgroup(options.cgroup);
        try {
          link.pin(pin);
        } finally {
          link.close(); // unpinned, closing the link detaches it
        }
        attached.push(name);
      }
      return new SocketLbDatapath(object, { attached, adopted });
    } catch (error) {
      object.close();
      // All or nothing: what this install attached or pinned goes again.
      try {
        SocketLbDatapath.removeInstalled(options.pinDir, attached, pinnedBefore);
      } catch {
        // the install's own error is the one to report; `ferry agent --uninstall` removes the rest
      }
      throw error;
    }
  }

  /**
   * A pinned map keeps its size: libbpf can only reuse a pin whose max_entries match. Without a
   * flag the pinned size is adopted; a flag asking for another size is refused (a live map cannot
   * be resized, and replacing it would drop every connection's translation).
   */
  static #size(object: BpfObject, pinDir: string, sizes: MapSizes): void {
    for (const { field, maps, flag } of SIZED_MAPS) {
      const requested = sizes[field];
      if (requested !== undefined && (!Number.isInteger(requested) || requested < 1 || requested > MAX_MAP_SIZE))
        throw new InvalidArgumentError(`${flag}: ${requested} is not an integer from 1 to ${MAX_MAP_SIZE}`);
      for (const name of maps) {
        const pin = path.join(pinDir, name);
        if (!fs.existsSync(pin)) {
          if (requested !== undefined) object.setMapMaxEntries(name, requested);
          continue;
        }
        using pinned = BpfMap.openPinned(pin);
        if (requested !== undefined && requested !== pinned.maxEntries)
          throw new InvalidArgumentError(
            `${flag} ${requested}: the pinned map ${pin} has ${pinned.maxEntries} entries and cannot be resized in place; ` +
              `start with ${flag} ${pinned.maxEntries}, or run 'ferry agent --uninstall --pin-dir ${pinDir}' first (live connections through Services are dropped) and start again`,
          );
        object.setMapMaxEntries(name, pinned.maxEntries);
      }
    }
  }

  /** Loads; a map the kernel refuses to create at the size asked is named with its flag. */
  static #load(object: BpfObject, sizes: MapSizes): void {
    try {
      object.load();
    } catch (error) {
      // libbpf names the map it could not create in its log (wording differs across versions).
      const m = error instanceof BpfError ? /bpf_create_map_xattr\(([^)]+)\)|map '([^']+)': failed to create/.exec(error.verifierLog ?? '') : null;
      const failed = m?.[1] ?? m?.[2];
      const sized = SIZED_MAPS.find((m) => failed !== undefined && m.maps.includes(failed) && sizes[m.field] !== undefined);
      if (!sized || !(error instanceof BpfError)) throw error;
      throw new InvalidArgumentError(
        `${sized.flag} ${sizes[sized.field]}: the kernel refused to create ${failed} of that size (${error.errnoName})`,
      );
    }
  }

  maps(): LbMaps & { readonly sockRevnat: BpfMap; readonly affinity: BpfMap; readonly sockCounters: BpfMap; readonly serviceCidrs: BpfMap } {
    return {
      services: this.#object.map(LB_MAP_NAMES.services),
      backends: this.#object.map(LB_MAP_NAMES.backends),
      revnat: this.#object.map(LB_MAP_NAMES.revnat),
      nodeports: this.#object.map(LB_MAP_NAMES.nodeports),
      sockRevnat: this.#object.map(LB_MAP_NAMES.sockRevnat),
      affinity: this.#object.map(LB_MAP_NAMES.affinity),
      sockCounters: this.#object.map(LB_MAP_NAMES.sockCounters),
      serviceCidrs: this.#object.map(LB_MAP_NAMES.serviceCidrs),
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

  /**
   * Detaches Ferry's programs (removing a link's last pin detaches it) and removes the pins of
   * Ferry's own maps, by their exact names: anything else in the directory is someone else's.
   * Every pin is tried; failures are collected and thrown together at the end.
   */
  static uninstall(pinDir: string): { readonly links: number; readonly maps: number } {
    let links = 0;
    let maps = 0;
    const errors: Error[] = [];
    const linkDir = path.join(pinDir, 'links');
    for (const name of SOCK_PROGRAMS) {
      const pin = path.join(linkDir, name);
      if (!fs.existsSync(pin)) continue;
      try {
        const link = BpfLink.openPinned(pin);
        link.detach();
        link.close();
        fs.rmSync(pin);
        links++;
      } catch (error) {
        errors.push(error as Error);
      }
    }
    if (fs.existsSync(linkDir) && fs.readdirSync(linkDir).length === 0) fs.rmdirSync(linkDir);
    for (const name of ferryMapNames(pinDir)) {
      const pin = path.join(pinDir, name);
      if (!fs.existsSync(pin)) continue;
      try {
        fs.rmSync(pin);
        maps++;
      } catch (error) {
        errors.push(error as Error);
      }
    }
    if (errors.length > 0)
      throw new AggregateError(errors, `${pinDir}: ${errors.length} pin(s) not removed: ${errors.map((e) => e.message).join('; ')}`);
    return { links, maps };
  }

  /** Which of Ferry's map pins exist under pinDir now (before an install, to undo only its own). */
  static pinnedMaps(pinDir: string): string[] {
    return ferryMapNames(pinDir).filter((name) => fs.existsSync(path.join(pinDir, name)));
  }

  /** Undoes a failed start: detaches the links it attached and removes the map pins it created. */
  static removeInstalled(pinDir: string, attached: readonly string[], pinnedBefore: readonly string[]): void {
    for (const name of attached) {
      const pin = path.join(pinDir, 'links', name);
      if (!fs.existsSync(pin)) continue;
      const link = BpfLink.openPinned(pin);
      link.detach();
      link.close();
      fs.rmSync(pin);
    }
    const kept = new Set(pinnedBefore);
    for (const name of ferryMapNames(pinDir)) if (!kept.has(name)) fs.rmSync(path.join(pinDir, name), { force: true });
    const linkDir = path.join(pinDir, 'links');
    if (fs.existsSync(linkDir) && fs.readdirSync(linkDir).length === 0) fs.rmdirSync(linkDir);
    if (fs.readdirSync(pinDir).length === 0) fs.rmdirSync(pinDir);
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

/** The maps Ferry's objects pin by name: read from the objects, so the list cannot drift from them. */
export function ferryMapNames(pinDir: string): string[] {
  const names = new Set<string>();
  for (const file of fs.readdirSync(OBJECT_DIR)) {
    if (!file.endsWith('.o')) continue;
    using object = BpfObject.open(path.join(OBJECT_DIR, file), { pinRoot: pinDir });
    for (const name of object.pinnedMapNames()) names.add(name);
  }
  return [...names].sort();
}
