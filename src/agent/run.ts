// `ferry agent` as a process, the composition root: a short list of parts started in order and
// stopped in reverse. It installs (or adopts) the datapath, opens the source, runs the reconcile
// loop, writes a status file for the CLI, and on SIGTERM stops while leaving the datapath in
// place — pinned programs and maps keep serving with no agent at all.
import fs from 'node:fs';
import path from 'node:path';
import { logger, type Logger } from '../common/log.ts';
import { makeDirs } from '../common/fs.ts';
import { readyFilePath, statusFilePath } from '../common/status-file.ts';
import { SocketLbDatapath, type MapSizes } from '../datapath/socket-lb.ts';
import { ServiceWriter } from '../datapath/service-writer.ts';
import type { NodeportMode, XdpMode } from '../datapath/nodeport/config.ts';
import { API_SOCKET } from '../observe/api.ts';
import { recordNetns, uninstallNorthSouth } from './netns.ts';
import { Agent } from './agent.ts';
import { NodeRoutes, type PodRoutingMode } from './node-routes.ts';
import { CniConfigWriter } from './cni-config.ts';
import { AgentMetrics } from './metrics.ts';
import { startAgentObserver, DEFAULT_EVENTS, type AgentEventsOptions } from './observer.ts';
import { Datapath } from './datapath.ts';
import { NorthSouth } from './north-south.ts';
import { AgentSource, type AgentSourceOptions, type ChangeConsumer } from './source.ts';
import { StatusReporter } from './status-reporter.ts';
import { startEndpoints, type EndpointOptions } from './endpoints.ts';
import { Parts, part } from './parts.ts';
import { applyServiceCidrs, resolveServiceCidrs } from './service-cidrs.ts';

export { STATUS_FILE } from '../common/status-file.ts';
export { nodePortHosts } from './north-south.ts';

export interface AgentRunOptions extends AgentSourceOptions, EndpointOptions {
  readonly runDir: string;
  readonly nodeAddresses?: readonly string[];
  readonly nodePortAddresses?: readonly string[];
  readonly cgroup: string;
  readonly pinDir: string;
  readonly sizes: MapSizes;
  /** Interfaces for north-south (NodePort, LoadBalancer, externalIPs): 'auto' = those holding node addresses; [] = off. */
  readonly nodeportInterfaces: readonly string[] | 'auto';
  readonly xdp: XdpMode;
  /** snat (default) or dsr for north-south IPv4 flows to remote backends. */
  readonly nodeportMode?: NodeportMode;
  /** Routes to other nodes' pod CIDRs, kept in step with the Node objects (default off). */
  readonly podRoutes?: PodRoutingMode;
  /** Where to write the node's CNI conflist from its Node's pod CIDRs (off when undefined). */
  readonly cniConfDir?: string;
  /** Flow events and the observe API (`ferry observe`). */
  readonly events?: AgentEventsOptions;
  /** --service-cidrs (one per family); absent: the standalone allocator's, or the API server's ServiceCIDRs. */
  readonly serviceCidrs?: readonly string[];
}

/** What the start builds on: the socket LB, the parts to stop, and the undo of a failed start. */
interface Start {
  readonly options: AgentRunOptions;
  readonly log: Logger;
  readonly socketLb: SocketLbDatapath;
  readonly parts: Parts;
  /** Only for a start that fails: removes what it added; what a previous agent left keeps serving. */
  readonly undo: Parts;
  readonly stopped: Promise<void>;
}

export async function runAgent(options: AgentRunOptions): Promise<void> {
  const log = logger('agent', { node: options.nodeName });
  prepareRunDirs(options);
  const stopped = stopSignal(log);
  const pinnedBefore = SocketLbDatapath.pinnedMaps(options.pinDir);
  const socketLb = SocketLbDatapath.install({ pinDir: options.pinDir, cgroup: options.cgroup, sizes: options.sizes });
  log.info({ ...socketLb.report, pinDir: options.pinDir, cgroup: options.cgroup }, 'socket LB installed');
  const start: Start = { options, log, socketLb, parts: new Parts(log), undo: new Parts(log), stopped };
  start.undo.add(part('socket LB programs and pins', () => SocketLbDatapath.removeInstalled(options.pinDir, socketLb.report.attached, pinnedBefore)));
  start.parts.add(part('socket LB', () => socketLb.close()));
  try {
    await startParts(start);
  } catch (error) {
    await start.parts.stopAll();
    await start.undo.stopAll();
    throw error;
  }
  // From here on, a failure is no failed start: the datapath stays.
  await stopped;
  await start.parts.stopAll();
}

function prepareRunDirs(options: AgentRunOptions): void {
  makeDirs(options.runDir, '--run-dir', 0o700);
  makeDirs(options.stateDir, '--state-dir', 0o700);
  if (options.cniConfDir !== undefined) makeDirs(options.cniConfDir, '--cni-conf-dir');
  fs.rmSync(readyFilePath(options.runDir), { force: true });
  recordNetns(options.runDir);
}

function stopSignal(log: Logger): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      log.info({ signal }, 'stopping; the datapath stays in place');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

async function startParts(start: Start): Promise<void> {
  const { options, log, parts } = start;
  const datapath = new Datapath(new ServiceWriter(start.socketLb.maps()));
  const metrics = new AgentMetrics({ pinDir: options.pinDir, programmed: () => datapath.programmedCounts() });
  parts.add(part('metrics', () => metrics.close()));
  const agent = new Agent({ nodeName: options.nodeName, ...nodeAddressing(options), writer: datapath, log });
  const source = new AgentSource(options);
  const observe = await startAgentObserver({
    node: options.nodeName,
    pinDir: options.pinDir,
    runDir: options.runDir,
    events: options.events ?? DEFAULT_EVENTS,
    programmed: () => datapath.lb.programmed(),
    frontends: () => agent.model().table().frontends,
    pods: () => source.pods(),
    log,
  });
  parts.add(part('flow observer', () => observe.close()));
  if (observe.flows) metrics.countFlows(observe.flows);
  const routes = options.podRoutes === undefined || options.podRoutes === 'off' ? undefined : new NodeRoutes({ self: options.nodeName, mode: options.podRoutes, log });
  if (routes) parts.add(part('pod routes', () => routes.close()));
  const cniConfig = options.cniConfDir === undefined ? undefined : new CniConfigWriter({ self: options.nodeName, confDir: options.cniConfDir, log });
  const apiSocket = observe.flows ? path.join(options.runDir, API_SOCKET) : null;
  const status = new StatusReporter({ node: options.nodeName, pinDir: options.pinDir, cgroup: options.cgroup, source: options.source, runDir: options.runDir, apiSocket }, { agent, source, routes, log });
  agent.addSyncListener((record) => {
    metrics.onSync(record);
    if (!record.ok) log.warn({ record }, 'sync failed');
    status.write();
  });
  parts.add(await startEndpoints(options, { agent, metrics, source, status, log }));
  parts.add(datapath);
  const consumers: ChangeConsumer[] = [agent, observe, ...(routes ? [routes] : []), ...(cniConfig ? [cniConfig] : [])];
  const cidrs = resolveServiceCidrs(options);
  const listed = source.open(consumers, datapath.lb).then(() => true);
  parts.add(source);
  // A stop before the source has listed must not sync: an empty model would empty the maps.
  const syncing = await Promise.race([listed, start.stopped.then(() => false)]);
  parts.add(part('agent', () => agent.stop()));
  if (syncing) {
    await agent.start();
    await Promise.race([agent.whenReady(), start.stopped]);
  }
  if (agent.ready) await joinNorthSouth(start, agent, datapath, metrics);
  // After the first sync: written into empty LB maps, they would refuse every live VIP until it.
  if (agent.ready) status.serviceCidrs = applyServiceCidrs(start.socketLb.maps().serviceCidrs, await cidrs, log);
  parts.add(status);
  if (agent.ready) {
    status.markReady();
    log.info({ frontends: agent.status().frontends, degraded: agent.status().degraded }, agent.status().degraded.length ? 'ready, degraded' : 'ready');
  }
  status.startRefresh();
}

function nodeAddressing(options: AgentRunOptions): { nodeAddresses?: readonly string[]; nodePortAddresses?: readonly string[] } {
  return {
    ...(options.nodeAddresses ? { nodeAddresses: options.nodeAddresses } : {}),
    ...(options.nodePortAddresses ? { nodePortAddresses: options.nodePortAddresses } : {}),
  };
}

/** North-south joins once the node is known (its addresses pick the interfaces); its maps are then written by a sync. */
async function joinNorthSouth(start: Start, agent: Agent, datapath: Datapath, metrics: AgentMetrics): Promise<void> {
  const { options, log } = start;
  if (options.nodeportInterfaces !== 'auto' && options.nodeportInterfaces.length === 0) {
    log.info('north-south disabled (--nodeport-interfaces none)');
    return;
  }
  const adopted = start.socketLb.report.adopted.length > 0;
  start.undo.add(
    part('north-south filters', () => {
      if (!adopted) uninstallNorthSouth(options.runDir);
    }),
  );
  const northSouth = NorthSouth.install({
    pinDir: options.pinDir,
    runDir: options.runDir,
    interfaces: options.nodeportInterfaces,
    xdp: options.xdp,
    ...(options.nodeportMode ? { mode: options.nodeportMode } : {}),
    node: agent.model().node,
    proxyHealthy: () => agent.ready,
    onGc: (r) => metrics.onConntrackGc(r),
    log,
  });
  datapath.attachEdge(northSouth);
  await agent.resync();
}

/**
 * Removes the datapath: north-south filters (in the network namespace the agent ran in), then the
 * socket LB's links and Ferry's own pins. Every step runs even when an earlier one fails; the
 * failures are thrown together at the end.
 */
export function uninstallAgent(pinDir: string, runDir: string): { links: number; maps: number } {
  const errors: Error[] = [];
  try {
    uninstallNorthSouth(runDir);
  } catch (error) {
    errors.push(error as Error);
  }
  let removed = { links: 0, maps: 0 };
  try {
    removed = SocketLbDatapath.uninstall(pinDir);
  } catch (error) {
    errors.push(error as Error);
  }
  fs.rmSync(statusFilePath(runDir), { force: true });
  fs.rmSync(readyFilePath(runDir), { force: true });
  if (errors.length === 1) throw errors[0]!;
  if (errors.length > 1) throw new AggregateError(errors, errors.map((e) => e.message).join('; '));
  return removed;
}
