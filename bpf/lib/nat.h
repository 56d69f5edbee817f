/* SPDX-License-Identifier: Apache-2.0 */
/* Reverse translation state: one entry per translated flow, keyed by the reply's tuple as it
 * arrives (backend → client, or backend → node address:nat port when SNATed). A reply is
 * rewritten to come from the frontend and go to the client. Inserting the SNAT entry with
 * BPF_NOEXIST is what allocates the port: a taken (reply tuple) means the port is in use for
 * that backend. */
#pragma once

#include "ct.h"

#ifndef NP_NAT_MAX
#define NP_NAT_MAX 65536
#endif
#define NP_SNAT_TRIES 16

/* Value of ferry_np_nat_v1. 48 bytes; mirrored by NAT_ENTRY in maps.ts. */
struct np_nat_entry {
	union np_addr client;   /* original client address */
	union np_addr frontend; /* address the client connected to (VIP, node or external IP) */
	__be16 client_port;     /* original client port */
	__be16 frontend_port;   /* frontend port */
	__u8 flags;             /* CT_F_* of the flow */
	__u8 pad[3];            /* zero */
	__u64 expires_ns;       /* refreshed by replies */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, NP_NAT_MAX);
	__type(key, struct np_tuple);
	__type(value, struct np_nat_entry);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_np_nat_v1 SEC(".maps");

/* SNAT ports, host order, inclusive; outside Linux's default ephemeral range so the node's own
 * sockets do not collide. */
const volatile __u16 cfg_snat_port_min = 61000;
const volatile __u16 cfg_snat_port_max = 65000;

/* Insert the reply entry; for SNAT pick a free port. Returns the port (network order) or 0 on
 * exhaustion. reply->dport is filled in by this function when snat. */
static __always_inline __be16 nat_insert(struct np_tuple *reply, const struct np_nat_entry *v, int snat)
{
	__u32 range = (__u32)cfg_snat_port_max - cfg_snat_port_min + 1;
	int i;

	if (!snat) {
		if (bpf_map_update_elem(&ferry_np_nat_v1, reply, v, BPF_ANY))
			return 0;
		return reply->dport ? reply->dport : 1;
	}
	for (i = 0; i < NP_SNAT_TRIES; i++) {
		__u16 port = cfg_snat_port_min + bpf_get_prandom_u32() % range;

		reply->dport = bpf_htons(port);
		if (bpf_map_update_elem(&ferry_np_nat_v1, reply, v, BPF_NOEXIST) == 0)
			return reply->dport;
	}
	return 0;
}
