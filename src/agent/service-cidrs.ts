// Which service CIDRs the socket layer refuses unserved addresses in, and writing them. The flag
// wins; else standalone uses the manifest source's own ranges and Kubernetes lists the ServiceCIDR
// objects once. A list that fails (an older API server, RBAC) turns refusal off and says so in the
// log and the status: the agent serves Services as before, it only lets unserved VIPs hang.
import type { Logger } from '../common/log.ts';
import { formatCidr, parseCidr } from '../common/ip.ts';
import type { MapLike } from '../datapath/codec/map.ts';
import { writeServiceCidrs } from '../datapath/service-cidrs.ts';
import { DEFAULT_SERVICE_CIDRS } from '../sources/manifest/index.ts';
import { SERVICE_CIDRS_PATH, listServiceCidrs } from '../sources/kube/service-cidrs.ts';
import type { StatusServiceCidrs } from '../common/status-file.ts';

export interface ServiceCidrOptions {
  readonly source: 'standalone' | 'kubernetes';
  /** --service-cidrs, already validated (one per family). */
  readonly serviceCidrs?: readonly string[];
  readonly kubeconfig?: string;
  readonly server?: string;
}

const canonical = (list: readonly string[]): string[] => list.map((c) => formatCidr(parseCidr(c)!));

/** Where the CIDRs come from; never throws (a failure is refusal off, with the reason). */
export async function resolveServiceCidrs(options: ServiceCidrOptions): Promise<StatusServiceCidrs> {
  if (options.serviceCidrs) return { refusing: true, cidrs: canonical(options.serviceCidrs), from: '--service-cidrs' };
  if (options.source === 'standalone') return { refusing: true, cidrs: canonical(DEFAULT_SERVICE_CIDRS), from: 'standalone allocator' };
  const from = `GET ${SERVICE_CIDRS_PATH}`;
  try {
    const kube = { ...(options.kubeconfig ? { kubeconfig: options.kubeconfig } : {}), ...(options.server ? { server: options.server } : {}) };
    const cidrs = await listServiceCidrs(kube);
    if (cidrs.length === 0) return { refusing: false, cidrs, from, reason: 'the API server has no ServiceCIDR objects; set --service-cidrs' };
    return { refusing: true, cidrs, from };
  } catch (error) {
    return { refusing: false, cidrs: [], from, reason: `${(error as Error).message}; set --service-cidrs, or allow list on servicecidrs` };
  }
}

/** Writes the map (emptied when refusal is off); a write that fails turns refusal off, logged. */
export function applyServiceCidrs(map: MapLike, resolved: StatusServiceCidrs, log: Logger): StatusServiceCidrs {
  try {
    writeServiceCidrs(map, resolved.refusing ? resolved.cidrs : []);
  } catch (error) {
    const off: StatusServiceCidrs = { refusing: false, cidrs: resolved.cidrs, from: resolved.from, reason: `${map.name}: ${(error as Error).message}` };
    log.warn(off, 'service CIDRs not written: connections to unserved VIPs are not refused');
    return off;
  }
  if (resolved.refusing) log.info({ cidrs: resolved.cidrs, from: resolved.from }, 'refusing connections to unserved addresses in the service CIDRs');
  else log.warn({ from: resolved.from, reason: resolved.reason }, 'service CIDRs unknown: connections to unserved VIPs are not refused');
  return resolved;
}

/** The status line `ferry status` prints as a warning when refusal is off. */
export function serviceCidrWarning(status: StatusServiceCidrs | undefined): string[] {
  if (!status || status.refusing) return [];
  return [`not refusing unserved addresses in the service CIDRs (${status.from}): ${status.reason ?? 'unknown'}`];
}
