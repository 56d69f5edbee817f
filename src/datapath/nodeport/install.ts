// Installs the north-south programs on a node's external interfaces: tc ingress + egress (or XDP
// for ingress), sharing the pinned service maps with the socket layer. Attachment replaces the
// programs of an earlier agent in place, so a restart does not drop a packet; what was attached
// is recorded in the agent's run directory so `ferry agent --uninstall` can remove it without the agent.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BpfMap, BpfObject, detachTc, detachXdp, ifindexOf } from '../bpf/index.ts';
import type { MapLike } from '../codec/index.ts';
import { nodeportConstants, type NodeportMode, type XdpMode } from './config.ts';
import { MAP_CT, MAP_MAGLEV, MAP_NAT, MAP_SRC_RANGES } from './maps.ts';
import { NODEPORT_PROGRAMS } from './index.ts';

const objectPath = (name: string): string => fileURLToPath(new URL(`../../../build/bpf/${name}`, import.meta.url));
const RECORD = 'nodeport.json';
/** bpf/lib/lb.h's maps, which the north-south objects share with bpf/sock.c. */
const SHARED_LB_MAPS = ['ferry_services_v1', 'ferry_backends_v1', 'ferry_revnat_v1'] as const;

export interface NodeportInstallOptions {
  readonly pinDir: string;
  /** A regular directory (bpffs holds no files) for the record of what was attached. */
  readonly recordDir: string;
  readonly interfaces: readonly string[];
  readonly nodeAddresses: readonly string[];
  readonly xdp: XdpMode;
  /** snat (default) or dsr for IPv4 flows to remote backends. */
  readonly mode?: NodeportMode;
}

interface Record {
  readonly interfaces: readonly string[];
  readonly xdp: XdpMode;
  /** tc ingress attached (absent in records of older agents: then exactly when XDP is off). */
  readonly tcIngress?: boolean;
}

export class NodeportDatapath {
  readonly #objects: BpfObject[];
  readonly interfaces: readonly string[];

  private constructor(objects: BpfObject[], interfaces: readonly string[]) {
    this.#objects = objects;
    this.interfaces = interfaces;
  }

  static install(options: NodeportInstallOptions): NodeportDatapath {
    const constants = nodeportConstants({
      nodeAddresses: options.nodeAddresses,
      ...(options.mode ? { mode: options.mode } : {}),
    });
    const load = (file: string): BpfObject => {
      const obj = BpfObject.open(objectPath(file), { pinRoot: options.pinDir });
      for (const [name, value] of Object.entries(constants)) obj.setConstant(name, value);
      // The socket layer may have pinned the shared maps with --map-size-*: reuse needs the same max_entries.
      for (const name of SHARED_LB_MAPS) {
        const pin = path.join(options.pinDir, name);
        if (!fs.existsSync(pin)) continue;
        using pinned = BpfMap.openPinned(pin);
        obj.setMapMaxEntries(name, pinned.maxEntries);
      }
      obj.load();
      return obj;
    };
    const objects = [load('nodeport_tc.o')];
    try {
      if (options.xdp !== 'off') objects.push(load('nodeport_xdp.o'));
      for (const ifname of options.interfaces) {
        const ifindex = ifindexOf(ifname);
        objects[0]!.program(NODEPORT_PROGRAMS.tcEgress).attachTc(ifindex, 'egress', { replace: true });
        // With XDP, tc ingress is needed only for DSR: XDP cannot insert or strip the option and
        // passes those flows on to tc.
        if (options.xdp === 'off' || options.mode === 'dsr')
          objects[0]!.program(NODEPORT_PROGRAMS.tcIngress).attachTc(ifindex, 'ingress', { replace: true });
        if (options.xdp !== 'off') objects[1]!.program(NODEPORT_PROGRAMS.xdp).attachXdp(ifindex, options.xdp);
      }
      const record: Record = { interfaces: options.interfaces, xdp: options.xdp, tcIngress: options.xdp === 'off' || options.mode === 'dsr' };
      fs.writeFileSync(path.join(options.recordDir, RECORD), JSON.stringify(record));
      return new NodeportDatapath(objects, options.interfaces);
    } catch (error) {
      for (const o of objects) o.close();
      throw error;
    }
  }

  edgeMaps(): { readonly maglev: MapLike; readonly srcRanges: MapLike } {
    return { maglev: this.#objects[0]!.map(MAP_MAGLEV), srcRanges: this.#objects[0]!.map(MAP_SRC_RANGES) };
  }

  conntrackMaps(): { readonly ct: BpfMap; readonly nat: BpfMap } {
    return { ct: this.#objects[0]!.map(MAP_CT), nat: this.#objects[0]!.map(MAP_NAT) };
  }

  close(): void {
    for (const o of this.#objects) o.close();
  }

  /** Detaches what install() attached (run in the node's network namespace). */
  static uninstall(recordDir: string): number {
    const file = path.join(recordDir, RECORD);
    if (!fs.existsSync(file)) return 0;
    const record = JSON.parse(fs.readFileSync(file, 'utf8')) as Record;
    let removed = 0;
    for (const ifname of record.interfaces) {
      let ifindex: number;
      try {
        ifindex = ifindexOf(ifname);
      } catch {
        continue; // the interface is gone, and its filters with it
      }
      detachTc(ifindex, 'egress');
      if (record.tcIngress ?? record.xdp === 'off') detachTc(ifindex, 'ingress');
      if (record.xdp !== 'off') detachXdp(ifindex, record.xdp);
      removed++;
    }
    fs.rmSync(file);
    return removed;
  }
}
