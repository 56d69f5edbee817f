/* SPDX-License-Identifier: Apache-2.0 */
/* North-south load balancing on a node's external interface, tc (clsact) ingress + egress.
 * The logic lives in lib/nodeport*.h, shared with nodeport_xdp.c. */
#define FERRY_CTX_SKB 1
#define NP_CALLS ferry_np_tc_calls_v1
#include "lib/nodeport_entry.h"

SEC("tc")
int ferry_np_reject(struct __sk_buff *ctx)
{
	return np_reject(ctx);
}

SEC("tc")
int ferry_np_icmp(struct __sk_buff *ctx)
{
	return np_icmp_stage(ctx);
}

SEC("tc")
int ferry_np_ingress(struct __sk_buff *ctx)
{
	return np_ingress(ctx);
}

SEC("tc")
int ferry_np_egress(struct __sk_buff *ctx)
{
	return np_egress(ctx);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
