// The agent's health in kube-proxy's shape (pkg/proxy/healthcheck/proxier_health.go): healthy
// once the first sync is done, for as long as no change has waited longer than the timeout to
// reach the datapath. A failing or stalled sync therefore turns the node unhealthy only while
// there is something it fails to program; an idle agent with nothing pending stays healthy.

export interface HealthInput {
  /** Epoch ms now. */
  readonly now: number;
  /** The first sync reached the maps. */
  readonly ready: boolean;
  /** Epoch ms of the last successful sync. */
  readonly lastUpdated: number | undefined;
  /** Epoch ms of the oldest change not yet in the maps. */
  readonly pendingSince: number | undefined;
  readonly timeoutMs: number;
  /** Seconds since each source watch last heard from its server (Kubernetes mode). Reported, not
   * judged: an API server outage leaves the programmed datapath serving, so it is no reason to
   * take the node out of a load balancer. */
  readonly sourceEventAgeSeconds?: Readonly<Record<string, number>>;
  /** What the agent serves without (frontends a full map refused, a status file it cannot write).
   * Listed, not judged: the node serves every other Service. */
  readonly degraded?: readonly string[];
}

export interface HealthReport {
  readonly healthy: boolean;
  /** The JSON body kube-proxy serves on /healthz and /livez. */
  readonly body: {
    readonly lastUpdated: string;
    readonly currentTime: string;
    readonly nodeEligible: boolean;
    readonly pendingForMs?: number;
    readonly reason?: string;
    readonly sourceEventAgeSeconds?: Readonly<Record<string, number>>;
    readonly degraded?: readonly string[];
  };
}

export function proxyHealth(input: HealthInput): HealthReport {
  const pendingForMs =
    input.pendingSince === undefined ? undefined : Math.max(0, input.now - input.pendingSince);
  let reason: string | undefined;
  if (!input.ready) reason = 'first sync not done';
  else if (pendingForMs !== undefined && pendingForMs > input.timeoutMs)
    reason = `a change has waited ${Math.round(pendingForMs)} ms for the datapath (timeout ${input.timeoutMs} ms)`;
  return {
    healthy: reason === undefined,
    body: {
      lastUpdated: new Date(input.lastUpdated ?? 0).toISOString(),
      currentTime: new Date(input.now).toISOString(),
      nodeEligible: true,
      ...(pendingForMs === undefined ? {} : { pendingForMs: Math.round(pendingForMs) }),
      ...(reason === undefined ? {} : { reason }),
      ...(input.sourceEventAgeSeconds === undefined
        ? {}
        : { sourceEventAgeSeconds: input.sourceEventAgeSeconds }),
      ...(input.degraded?.length ? { degraded: input.degraded } : {}),
    },
  };
}
