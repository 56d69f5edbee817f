// /metrics and /healthz as a part of the agent. They are for people and probes: a port taken by
// something else must not keep the datapath from being programmed, so a failure to bind is
// logged and the agent runs without them.
import type { Logger } from '../common/log.ts';
import type { Agent } from './agent.ts';
import type { AgentMetrics } from './metrics.ts';
import type { AgentSource } from './source.ts';
import type { StatusReporter } from './status-reporter.ts';
import { proxyHealth, type HealthReport } from './health.ts';
import { startAgentHttp } from './http-server.ts';
import { part, type Part } from './parts.ts';

export interface EndpointOptions {
  /** host:port for /metrics ("" or "0" = off); default 127.0.0.1:10249 as kube-proxy. */
  readonly metricsBindAddress?: string;
  /** host:port for /healthz and /livez ("" or "0" = off); default 127.0.0.1:10256. */
  readonly healthzBindAddress?: string;
  /** A change that waits longer than this for the datapath makes /healthz fail (default 60 s). */
  readonly healthTimeoutMs?: number;
}

export interface EndpointSources {
  readonly agent: Agent;
  readonly metrics: AgentMetrics;
  readonly source: AgentSource;
  readonly status: StatusReporter;
  readonly log: Logger;
}

export async function startEndpoints(options: EndpointOptions, from: EndpointSources): Promise<Part> {
  try {
    const http = await startAgentHttp({
      metricsAddress: options.metricsBindAddress ?? '127.0.0.1:10249',
      healthzAddress: options.healthzBindAddress ?? '127.0.0.1:10256',
      metrics: async () => ({ contentType: from.metrics.registry.contentType, body: await from.metrics.registry.metrics() }),
      health: () => agentHealth(options, from),
    });
    from.log.info({ metrics: http.metrics, healthz: http.healthz }, 'http endpoints');
    return part('http endpoints', async () => {
      await http[Symbol.asyncDispose]();
    });
  } catch (err) {
    from.log.error({ err }, 'metrics/health endpoints could not start; continuing without them');
    return part('http endpoints (not started)', () => {});
  }
}

function agentHealth(options: EndpointOptions, from: EndpointSources): HealthReport {
  const status = from.agent.status();
  const ages = from.source.eventAges();
  return proxyHealth({
    now: Date.now(),
    ready: from.agent.ready,
    lastUpdated: status.lastSuccessAt,
    pendingSince: from.agent.pendingSince(),
    timeoutMs: options.healthTimeoutMs ?? 60_000,
    ...(ages ? { sourceEventAgeSeconds: ages } : {}),
    degraded: [...status.degraded, ...(from.status.problem ? [from.status.problem] : [])],
  });
}
