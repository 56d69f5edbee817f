// The cluster's service CIDRs from the API server: the networking.k8s.io/v1 ServiceCIDR objects
// (KEP-1880, GA in v1.33), listed once at agent start. Every object counts, ready or not: one
// being deleted may still have ClusterIPs allocated from it, and its addresses are VIPs either way.
import { KubeClient, type KubeClientOptions } from './client.ts';
import { formatCidr, parseCidr } from '../../common/ip.ts';

export const SERVICE_CIDRS_PATH = '/apis/networking.k8s.io/v1/servicecidrs';
const LIST_TIMEOUT_MS = 10_000;

interface ServiceCidrList {
  readonly items?: readonly { readonly metadata?: { readonly name?: string }; readonly spec?: { readonly cidrs?: readonly string[] } }[];
}

/** The distinct CIDRs of every ServiceCIDR, canonical; throws (KubeApiError for 403/404) when they cannot be listed. */
export async function listServiceCidrs(options: KubeClientOptions, client = KubeClient.fromOptions(options)): Promise<string[]> {
  const list = await client.getJson<ServiceCidrList>(SERVICE_CIDRS_PATH, AbortSignal.timeout(LIST_TIMEOUT_MS));
  const out = new Set<string>();
  for (const item of list.items ?? []) {
    for (const text of item.spec?.cidrs ?? []) {
      const cidr = parseCidr(text);
      // The API server validates spec.cidrs; one it let through that we cannot read is skipped, not fatal.
      if (cidr) out.add(formatCidr(cidr));
    }
  }
  return [...out].sort();
}
