/* SPDX-License-Identifier: Apache-2.0 */
/* North-south load balancing on a node's external interface, XDP (native or generic).
 * Ingress only: replies leaving through the interface still need nodeport_tc.c's egress
 * program. The logic lives in lib/nodeport*.h, shared with nodeport_tc.c. */
#define FERRY_CTX_XDP 1
#define NP_CALLS ferry_np_xdp_calls_v1
#include "lib/nodeport_entry.h"

SEC("xdp")
int ferry_np_reject(struct xdp_md *ctx)
{
	return np_reject(ctx);
}

SEC("xdp")
int ferry_np_icmp(struct xdp_md *ctx)
{
	return np_icmp_stage(ctx);
}

SEC("xdp")
int ferry_np_xdp(struct xdp_md *ctx)
{
	return np_ingress(ctx);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
