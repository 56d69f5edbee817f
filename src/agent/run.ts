// `ferry agent` as a process: picks the source, installs (or adopts) the datapath, runs the
// reconcile loop, writes a status file for the CLI, and on SIGTERM stops while leaving the
// datapath in place — pinned programs and maps keep serving with no agent at all.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { logger } from '../common/log.ts';
import { SocketLbDatapath, type MapSizes } from '../datapath/socket-lb.ts';
import { ServiceWriter } from '../datapath/service-writer.ts';
import { ManifestSource, liveAllocationsFrom } from '../sources/manifest/index.ts';
import { KubeSource } from '../sources/kube/source.ts';
import { NodeportDatapath } from '../datapath/nodeport/install.ts';
import { NodeportEdgeWriter } from '../datapath/nodeport/edge-writer.ts';
import { HealthServer } from './health-server.ts';
import { sweepExpired } from '../datapath/nodeport/conntrack.ts';
import type { NodeportMode, XdpMode } from '../datapath/nodeport/config.ts';
import { canonicalIp, cidrContains, parseCidr, parseIp } from '../common/ip.ts';
import { makeDirs } from '../common/fs.ts';
import type { HealthCheck } from '../model/frontend.ts';
import type { NamespacedName } from '../model/k8s.ts';
import { recordNetns, uninstallNorthSouth } from './netns.ts';
import { Agent, type SyncRecord } from './agent.ts';
import { NodeRoutes, type PodRoutingMode } from './node-routes.ts';
import { CniConfigWriter } from './cni-config.ts';
import { AgentMetrics } from './metrics.ts';
import { startAgentHttp } from './http-server.ts';
import { proxyHealth } from './health.ts';
import { API_SOCKET } from '../observe/api.ts';
import { startAgentObserver, DEFAULT_EVENTS, type AgentEventsOptions } from './observer.ts';

export interface AgentRunOptions {
  readonly source: 'standalone' | 'kubernetes';
  readonly manifests: string;
  readonly stateDir: string;
  readonly runDir: string;
  readonly kubeconfig?: string;
  readonly server?: string;
  /** Kubernetes: watch this node's Pods for flow enrichment (default on). */
  readonly watchPods?: boolean;
  readonly nodeName: string;
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
  /** host:port for /metrics ("" or "0" = off); default 127.0.0.1:10249 as kube-proxy. */
  readonly metricsBindAddress?: string;
  /** host:port for /healthz and /livez ("" or "0" = off); default 127.0.0.1:10256. */
  readonly healthzBindAddress?: string;
  /** A change that waits longer than this for the datapath makes /healthz fail (default 60 s). */
  readonly healthTimeoutMs?: number;
  /** Flow events and the observe API (`ferry observe`). */
  readonly events?: AgentEventsOptions;
}

export const STATUS_FILE = 'status.json';

interface Closable {
  close(): Promise<void> | void;
}

function writeAtomic(file: string, content: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, content, { mode: 0o600 });
    fs.renameSync(tmp, file);
  } catch (error) {
    fs.rmSync(tmp, { force: true }); // a full disk must not also keep a half-written temp file
    throw error;
  }
}

/** One line per kind of failure, not one per attempt: a full disk fails every 2 s. */
class WriteProblem {
  readonly #log: ReturnType<typeof logger>;
  #current: string | undefined;
  constructor(log: ReturnType<typeof logger>) {
    this.#log = log;
  }
  get current(): string | undefined {
    return this.#current;
  }
  attempt(file: string, write: () => void): void {
    try {
      write();
      if (this.#current) this.#log.info({ file }, 'written again');
      this.#current = undefined;
    } catch (error) {
      const problem = `${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;
      if (problem !== this.#current) this.#log.error({ err: error }, `${problem}; still serving, retrying`);
      this.#current = problem;
    }
  }
}

export async function runAgent(options: AgentRunOptions): Promise<void> {
  const log = logger('agent', { node: options.nodeName });
  makeDirs(options.runDir, '--run-dir', 0o700);
  makeDirs(options.stateDir, '--state-dir', 0o700);
  if (options.cniConfDir !== undefined) makeDirs(options.cniConfDir, '--cni-conf-dir');
  const statusPath = path.join(options.runDir, STATUS_FILE);
  const readyPath = path.join(options.runDir, 'ready');
  fs.rmSync(readyPath, { force: true });
  recordNetns(options.runDir);

  const pinnedBefore = SocketLbDatapath.pinnedMaps(options.pinDir);
  const datapath = SocketLbDatapath.install({
    pinDir: options.pinDir,
    cgroup: options.cgroup,
    sizes: options.sizes,
  });
  log.info({ ...datapath.report, pinDir: options.pinDir, cgroup: options.cgroup }, 'socket LB installed');
  const opened: (() => unknown)[] = [() => datapath.close()];
  let northSouthInstalled = false;
  const phase = { started: false };
  try {
    await serve(options, log, datapath, opened, phase, () => (northSouthInstalled = true), statusPath, readyPath);
  } catch (error) {
    if (phase.started) throw error;
    // A start that fails leaves nothing it added behind: programs it attached, maps it pinned,
    // north-south filters. What a previous agent left (adopted) keeps serving.
    const undo: (() => unknown)[] = [
      ...opened.reverse(),
      () => northSouthInstalled && datapath.report.adopted.length === 0 && uninstallNorthSouth(options.runDir),
      () => SocketLbDatapath.removeInstalled(options.pinDir, datapath.report.attached, pinnedBefore),
    ];
    for (const step of undo) {
      try {
        await step();
      } catch (undoError) {
        log.warn({ err: undoError }, 'undoing the failed start');
      }
    }
    throw error;
  }
}

async function serve(
  options: AgentRunOptions,
  log: ReturnType<typeof logger>,
  datapath: SocketLbDatapath,
  opened: (() => unknown)[],
  phase: { started: boolean },
  onNorthSouth: () => void,
  statusPath: string,
  readyPath: string,
): Promise<void> {
  const writer = new ServiceWriter(datapath.maps());
  const metrics = new AgentMetrics({
    pinDir: options.pinDir,
    programmed: () => {
      const frontends = writer.programmed();
      const backends = new Set<number>();
      for (const f of frontends.values()) for (const id of f.backendIds) backends.add(id);
      return { frontends: frontends.size, backends: backends.size };
    },
  });
  opened.push(() => metrics.close());
  const observe = await startAgentObserver({
    node: options.nodeName,
    pinDir: options.pinDir,
    runDir: options.runDir,
    events: options.events ?? DEFAULT_EVENTS,
    programmed: () => writer.programmed(),
    frontends: () => agent.model().table().frontends,
    pods: () => (source instanceof ManifestSource || source instanceof KubeSource ? source.pods() : []),
    log,
  });
  opened.push(() => observe.close());
  let source: Closable & { status(): unknown } = { close: () => {}, status: () => ({}) };
  const statusProblem = new WriteProblem(log);
  const writeStatus = (): void =>
    statusProblem.attempt(statusPath, () => writeAtomic(
      statusPath,
      JSON.stringify(
        {
          node: options.nodeName,
          pid: process.pid,
          // `ferry status` proves the agent alive by this socket answering, not by the file alone.
          apiSocket: observe.flows ? path.join(options.runDir, API_SOCKET) : null,
          pinDir: options.pinDir,
          cgroup: options.cgroup,
          source: options.source,
          agent: agent.status(),
          sourceStatus: source.status(),
          ...(routes ? { podRoutes: routes.status() } : {}),
          updatedAt: Date.now(),
        },
        null,
        2,
      ),
    ));
  const agent = new Agent({
    nodeName: options.nodeName,
    ...(options.nodeAddresses ? { nodeAddresses: options.nodeAddresses } : {}),
    ...(options.nodePortAddresses ? { nodePortAddresses: options.nodePortAddresses } : {}),
    writer,
    log,
    onSync: (record: SyncRecord) => {
      metrics.onSync(record);
      if (!record.ok) log.warn({ record }, 'sync failed');
      northSouth?.afterSync();
      writeStatus();
    },
  });

  if (observe.flows) metrics.countFlows(observe.flows);
  // Metrics and health are for people and probes; a port taken by something else must not keep
  // the datapath from being programmed, so that failure is logged, not fatal.
  const endpoints = await startAgentHttp({
    metricsAddress: options.metricsBindAddress ?? '127.0.0.1:10249',
    healthzAddress: options.healthzBindAddress ?? '127.0.0.1:10256',
    metrics: async () => ({
      contentType: metrics.registry.contentType,
      body: await metrics.registry.metrics(),
    }),
    health: () => {
      const status = agent.status();
      return proxyHealth({
        now: Date.now(),
        ready: agent.ready,
        lastUpdated: status.lastSuccessAt,
        pendingSince: agent.pendingSince(),
        timeoutMs: options.healthTimeoutMs ?? 60_000,
        ...(source instanceof KubeSource ? { sourceEventAgeSeconds: eventAges(source) } : {}),
        degraded: [...status.degraded, ...(statusProblem.current ? [statusProblem.current] : [])],
      });
    },
  }).catch((err: unknown) => {
    log.error({ err }, 'metrics/health endpoints could not start; continuing without them');
    return { [Symbol.asyncDispose]: async (): Promise<void> => {} } as Awaited<
      ReturnType<typeof startAgentHttp>
    >;
  });
  opened.push(() => endpoints[Symbol.asyncDispose]());
  log.info({ metrics: endpoints.metrics, healthz: endpoints.healthz }, 'http endpoints');
  const routes =
    options.podRoutes === undefined || options.podRoutes === 'off'
      ? undefined
      : new NodeRoutes({ self: options.nodeName, mode: options.podRoutes, log });
  const cniConfig =
    options.cniConfDir === undefined
      ? undefined
      : new CniConfigWriter({ self: options.nodeName, confDir: options.cniConfDir, log });
  let northSouth: { afterSync(): void; close(): Promise<void> } | undefined;
  let ready: Promise<void>;
  if (options.source === 'kubernetes') {
    const kube = KubeSource.connect({
      nodeName: options.nodeName,
      ...(options.kubeconfig ? { kubeconfig: options.kubeconfig } : {}),
      ...(options.server ? { server: options.server } : {}),
      watchLocalPods: options.watchPods ?? true,
      onChange: (change) => {
        agent.onChange(change);
        observe.onChange(change);
        routes?.onChange(change);
        cniConfig?.onChange(change);
      },
    });
    source = kube;
    opened.push(() => kube.close());
    ready = kube.ready;
  } else {
    const manifests = ManifestSource.open(options.manifests, {
      stateDir: options.stateDir,
      // What the pinned maps serve now: a lost or corrupt allocations.json is rebuilt from it, and
      // no live VIP or NodePort is ever handed to another Service.
      liveAllocations: liveAllocationsFrom(writer.readBack(), (id) => writer.backend(id)?.address),
      onChange: (change) => {
        agent.onChange(change);
        observe.onChange(change);
        routes?.onChange(change);
        cniConfig?.onChange(change);
      },
    });
    source = manifests;
    opened.push(() => manifests.close());
    ready = manifests.initialListDone;
  }
  if (routes) opened.push(() => routes.close());

  const stopped = new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      log.info({ signal }, 'stopping; the datapath stays in place');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });

  // A stop before the source has listed must not sync: an empty model would empty the maps.
  const listed = await Promise.race([ready.then(() => true), stopped.then(() => false)]);
  opened.push(() => agent.stop());
  if (listed) {
    await agent.start();
    await Promise.race([agent.whenReady(), stopped]);
  }
  if (agent.ready && options.nodeportInterfaces !== 'auto' && options.nodeportInterfaces.length === 0) {
    log.info('north-south disabled (--nodeport-interfaces none)');
  } else if (agent.ready) {
    onNorthSouth();
    northSouth = installNorthSouth(options, agent, writer, log, (r) => metrics.onConntrackGc(r));
    const ns = northSouth;
    opened.push(() => ns.close());
    northSouth.afterSync();
  }
  const readyProblem = new WriteProblem(log);
  if (agent.ready) {
    writeStatus();
    readyProblem.attempt(readyPath, () => fs.writeFileSync(readyPath, `${Date.now()}\n`));
    log.info({ frontends: agent.status().frontends, degraded: agent.status().degraded }, agent.status().degraded.length ? 'ready, degraded' : 'ready');
  }
  phase.started = true; // from here on, a failure is no failed start: the datapath stays
  // Source problems (a file that does not parse) change no Service, so no sync reports them: refresh the status file on a timer too.
  const refresh = setInterval(writeStatus, 2000);
  refresh.unref();
  await stopped;
  clearInterval(refresh);
  await agent.stop();
  await northSouth?.close();
  await source.close();
  await routes?.close();
  await endpoints[Symbol.asyncDispose]();
  metrics.close();
  await observe.close();
  datapath.close();
  fs.rmSync(readyPath, { force: true });
}

/** Per watched resource (by API path's last segment), seconds since its watch last heard anything. */
function eventAges(source: KubeSource): Record<string, number> {
  const ages: Record<string, number> = {};
  for (const w of source.status().watches)
    ages[w.path.split('/').pop()!] = Math.round(w.lastEventAgeMs / 100) / 10;
  return ages;
}

/** Interfaces of this network namespace that carry one of the node's addresses. */
function interfacesHolding(addresses: readonly string[]): string[] {
  const wanted = new Set(addresses.map((a) => canonicalIp(a) ?? a));
  const out = execFileSync('ip', ['-j', 'addr', 'show'], { encoding: 'utf8' });
  const links = JSON.parse(out) as { ifname: string; addr_info?: { local: string }[] }[];
  return links
    .filter(
      (l) =>
        l.ifname !== 'lo' && (l.addr_info ?? []).some((a) => wanted.has(canonicalIp(a.local) ?? a.local)),
    )
    .map((l) => l.ifname);
}

function installNorthSouth(
  options: AgentRunOptions,
  agent: Agent,
  writer: ServiceWriter,
  log: ReturnType<typeof logger>,
  onGc: (removed: { removedCt: number; removedNat: number }) => void,
): { afterSync(): void; close(): Promise<void> } {
  const nodeAddresses = agent.model().node.addresses;
  const interfaces =
    options.nodeportInterfaces === 'auto' ? interfacesHolding(nodeAddresses) : options.nodeportInterfaces;
  const datapath = NodeportDatapath.install({
    pinDir: options.pinDir,
    recordDir: options.runDir,
    interfaces,
    nodeAddresses,
    xdp: options.xdp,
    ...(options.nodeportMode ? { mode: options.nodeportMode } : {}),
  });
  const edge = new NodeportEdgeWriter(datapath.edgeMaps());
  // healthCheckNodePorts answer on the NodePort addresses only, as kube-proxy binds them.
  const health = healthServers(agent, () => agent.ready);
  log.info({ interfaces, xdp: options.xdp, mode: options.nodeportMode ?? 'snat' }, 'north-south installed');
  // Conntrack and NAT entries expire by timestamp on lookup; the sweep frees the ones no packet
  // will look up again (the LRU would evict them only under pressure, losing live flows first).
  const { ct, nat } = datapath.conntrackMaps();
  const gc = setInterval(() => {
    try {
      const r = sweepExpired(ct, nat);
      onGc(r);
      if (r.removedCt || r.removedNat) log.debug({ sweep: r }, 'conntrack gc');
    } catch (err) {
      log.warn({ err }, 'conntrack gc failed');
    }
  }, 10_000);
  gc.unref();
  return {
    afterSync: (): void => {
      const table = agent.model().table();
      edge.sync(table.frontends.values(), writer);
      health.sync(table.healthChecks).catch((err: unknown) => log.warn({ err }, 'health check listeners'));
    },
    close: async (): Promise<void> => {
      clearInterval(gc);
      await health.close();
      datapath.close();
    },
  };
}

/** One listener set per NodePort address (--nodeport-addresses), or on '::' when none narrows them. */
function healthServers(
  agent: Agent,
  proxyHealthy: () => boolean,
): { sync(checks: ReadonlyMap<NamespacedName, HealthCheck>): Promise<void>; close(): Promise<void> } {
  const node = agent.model().node;
  const hosts = nodePortHosts(node);
  if (hosts.length === 0)
    logger('agent').warn({ nodePortAddresses: node.nodePortAddresses, addresses: node.addresses }, 'no node address is in --nodeport-addresses: no healthCheckNodePort listener');
  const servers = hosts.map((host) => new HealthServer({ host, proxyHealthy }));
  return {
    sync: async (checks) => {
      await Promise.all(servers.map((s) => s.sync(checks)));
    },
    close: async () => {
      await Promise.all(servers.map((s) => s[Symbol.asyncDispose]()));
    },
  };
}

/** The addresses healthCheckNodePort listeners bind: all ('::') unless --nodeport-addresses narrows them. */
export function nodePortHosts(node: { readonly addresses: readonly string[]; readonly nodePortAddresses?: readonly string[] }): string[] {
  if (!node.nodePortAddresses?.length) return ['::'];
  const cidrs = node.nodePortAddresses.map((c) => parseCidr(c)).filter((c) => c !== undefined);
  return node.addresses.filter((a) => {
    const ip = parseIp(a);
    return ip !== undefined && cidrs.some((c) => cidrContains(c, ip));
  });
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
  fs.rmSync(path.join(runDir, STATUS_FILE), { force: true });
  fs.rmSync(path.join(runDir, 'ready'), { force: true });
  if (errors.length === 1) throw errors[0]!;
  if (errors.length > 1) throw new AggregateError(errors, errors.map((e) => e.message).join('; '));
  return removed;
}
