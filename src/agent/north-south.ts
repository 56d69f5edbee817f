// North-south as a part of the agent: installs the tc/XDP programs on the node's external
// interfaces, sweeps expired conntrack entries, and per sync writes the edge maps (Maglev, source
// ranges) and the healthCheckNodePort listeners from the whole desired table.
import { execFileSync } from 'node:child_process';
import type { Logger } from '../common/log.ts';
import { canonicalIp, cidrContains, parseCidr, parseIp } from '../common/ip.ts';
import type { FrontendTable } from '../model/frontend.ts';
import type { ServiceWriter } from '../datapath/service-writer.ts';
import { NodeportDatapath } from '../datapath/nodeport/install.ts';
import { NodeportEdgeWriter } from '../datapath/nodeport/edge-writer.ts';
import { sweepExpired, type SweepResult } from '../datapath/nodeport/conntrack.ts';
import type { NodeportMode, XdpMode } from '../datapath/nodeport/config.ts';
import { HealthServer } from './health-server.ts';
import type { EdgeSync } from './datapath.ts';

export interface NodeAddressing {
  readonly addresses: readonly string[];
  readonly nodePortAddresses?: readonly string[];
}

export interface NorthSouthOptions {
  readonly pinDir: string;
  readonly runDir: string;
  /** 'auto' = the interfaces holding a node address. */
  readonly interfaces: readonly string[] | 'auto';
  readonly xdp: XdpMode;
  readonly mode?: NodeportMode;
  readonly node: NodeAddressing;
  /** kube-proxy's serviceProxyHealthy, in every healthCheckNodePort answer. */
  readonly proxyHealthy: () => boolean;
  readonly onGc: (removed: SweepResult) => void;
  readonly log: Logger;
}

const GC_INTERVAL_MS = 10_000;

export class NorthSouth implements EdgeSync {
  readonly #datapath: NodeportDatapath;
  readonly #edge: NodeportEdgeWriter;
  readonly #health: readonly HealthServer[];
  readonly #gc: NodeJS.Timeout;

  private constructor(datapath: NodeportDatapath, health: readonly HealthServer[], gc: NodeJS.Timeout) {
    this.#datapath = datapath;
    this.#edge = new NodeportEdgeWriter(datapath.edgeMaps());
    this.#health = health;
    this.#gc = gc;
  }

  static install(o: NorthSouthOptions): NorthSouth {
    const interfaces = o.interfaces === 'auto' ? interfacesHolding(o.node.addresses) : o.interfaces;
    const datapath = NodeportDatapath.install({
      pinDir: o.pinDir,
      recordDir: o.runDir,
      interfaces,
      nodeAddresses: o.node.addresses,
      xdp: o.xdp,
      ...(o.mode ? { mode: o.mode } : {}),
    });
    // healthCheckNodePorts answer on the NodePort addresses only, as kube-proxy binds them.
    const hosts = nodePortHosts(o.node);
    if (hosts.length === 0)
      o.log.warn({ nodePortAddresses: o.node.nodePortAddresses, addresses: o.node.addresses }, 'no node address is in --nodeport-addresses: no healthCheckNodePort listener');
    const health = hosts.map((host) => new HealthServer({ host, proxyHealthy: o.proxyHealthy }));
    o.log.info({ interfaces, xdp: o.xdp, mode: o.mode ?? 'snat' }, 'north-south installed');
    return new NorthSouth(datapath, health, startGc(datapath, o));
  }

  async sync(table: FrontendTable, lb: ServiceWriter): Promise<void> {
    this.#edge.sync(table.frontends.values(), lb);
    // A port another process holds is logged and retried by HealthServer, not a failed sync.
    await Promise.all(this.#health.map((s) => s.sync(table.healthChecks)));
  }

  async stop(): Promise<void> {
    clearInterval(this.#gc);
    await Promise.all(this.#health.map((s) => s[Symbol.asyncDispose]()));
    this.#datapath.close();
  }
}

/**
 * Conntrack and NAT entries expire by timestamp on lookup; the sweep frees the ones no packet will
 * look up again (the LRU would evict them only under pressure, losing live flows first).
 */
function startGc(datapath: NodeportDatapath, o: NorthSouthOptions): NodeJS.Timeout {
  const { ct, nat } = datapath.conntrackMaps();
  const gc = setInterval(() => {
    try {
      const r = sweepExpired(ct, nat);
      o.onGc(r);
      if (r.removedCt || r.removedNat) o.log.debug({ sweep: r }, 'conntrack gc');
    } catch (err) {
      o.log.warn({ err }, 'conntrack gc failed');
    }
  }, GC_INTERVAL_MS);
  gc.unref();
  return gc;
}

/** Interfaces of this network namespace that carry one of the node's addresses. */
function interfacesHolding(addresses: readonly string[]): string[] {
  const wanted = new Set(addresses.map((a) => canonicalIp(a) ?? a));
  const out = execFileSync('ip', ['-j', 'addr', 'show'], { encoding: 'utf8' });
  const links = JSON.parse(out) as { ifname: string; addr_info?: { local: string }[] }[];
  return links
    .filter((l) => l.ifname !== 'lo' && (l.addr_info ?? []).some((a) => wanted.has(canonicalIp(a.local) ?? a.local)))
    .map((l) => l.ifname);
}

/** The addresses healthCheckNodePort listeners bind: all ('::') unless --nodeport-addresses narrows them. */
export function nodePortHosts(node: NodeAddressing): string[] {
  if (!node.nodePortAddresses?.length) return ['::'];
  const cidrs = node.nodePortAddresses.map((c) => parseCidr(c)).filter((c) => c !== undefined);
  return node.addresses.filter((a) => {
    const ip = parseIp(a);
    return ip !== undefined && cidrs.some((c) => cidrContains(c, ip));
  });
}
