/* SPDX-License-Identifier: Apache-2.0 */
/* North-south connection tracking. One entry per flow in its original direction (client →
 * frontend), holding a copy of the chosen backend's address: the flow keeps its backend for its
 * life even when the backend leaves the services/backends maps. Expiry is checked on lookup (an
 * expired entry counts as a miss and is overwritten) and swept from TypeScript
 * (src/datapath/nodeport/conntrack.ts) with the same clock (CLOCK_MONOTONIC = bpf_ktime_get_ns).
 * The map is LRU: under pressure the kernel evicts the least recently used flow; the sweep's
 * inserted-minus-removed-minus-live arithmetic counts those evictions. */
#pragma once

#include "ctx.h"
#include "nodeport_stats.h"

#ifndef NP_CT_MAX
#define NP_CT_MAX 65536 /* overridable at load time with setMapMaxEntries */
#endif

/* 16-byte address; IPv4 as ::ffff:a.b.c.d so one code path serves both families. */
union np_addr {
	__u8 b[16];
	__be32 w[4];
};

/* A packet's 5-tuple as seen on the wire. 40 bytes; mirrored by TUPLE in maps.ts. */
struct np_tuple {
	union np_addr src; /* source address */
	union np_addr dst; /* destination address */
	__be16 sport;      /* source port (ICMP echo: 0) */
	__be16 dport;      /* destination port */
	__u8 proto;        /* IPPROTO_TCP / IPPROTO_UDP */
	__u8 pad[3];       /* zero */
};

#define CT_F_SNAT 0x1    /* source rewritten to the node address and nat_port */
#define CT_F_LOCAL 0x2   /* backend is on this node */
#define CT_F_CLOSING 0x4 /* FIN or RST seen: short timeout */
#define CT_F_REPLY 0x8   /* a reply has been seen */
#define CT_F_DSR 0x10    /* direct server return: replies leave from the backend's node */

/* Value of ferry_np_ct_v1. 56 bytes; mirrored by CT_ENTRY in maps.ts. */
struct np_ct_entry {
	union np_addr backend; /* backend address the flow is pinned to */
	__be16 backend_port;   /* backend port */
	__be16 nat_port;       /* SNAT source port; 0 when not SNATed */
	__u32 backend_id;      /* id in ferry_backends_v1 at creation (for observability) */
	__u32 service_id;      /* service id at creation */
	__u8 flags;            /* CT_F_* */
	__u8 pad[3];           /* zero */
	__u64 created_ns;      /* bpf_ktime_get_ns at creation */
	__u64 expires_ns;      /* bpf_ktime_get_ns after which the entry is dead */
	__u64 packets;         /* packets in the original direction */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, NP_CT_MAX);
	__type(key, struct np_tuple);
	__type(value, struct np_ct_entry);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_np_ct_v1 SEC(".maps");

/* Timeouts in seconds; set before load. */
const volatile __u32 cfg_ct_tcp_timeout = 21600; /* established TCP */
const volatile __u32 cfg_ct_tcp_close_timeout = 10; /* after FIN / RST */
const volatile __u32 cfg_ct_udp_timeout = 60;

#define NS_PER_SEC 1000000000ULL
#define TCP_F_FIN 0x01
#define TCP_F_SYN 0x02
#define TCP_F_RST 0x04
#define TCP_F_ACK 0x10

/* The expiry a packet with these TCP flags gives its flow; closing is sticky. */
static __always_inline __u64 ct_expiry(__u64 now, __u8 proto, __u8 tcp_flags, __u8 *flags)
{
	if (proto != IPPROTO_TCP)
		return now + (__u64)cfg_ct_udp_timeout * NS_PER_SEC;
	if (tcp_flags & (TCP_F_FIN | TCP_F_RST))
		*flags |= CT_F_CLOSING;
	if (*flags & CT_F_CLOSING)
		return now + (__u64)cfg_ct_tcp_close_timeout * NS_PER_SEC;
	return now + (__u64)cfg_ct_tcp_timeout * NS_PER_SEC;
}

/* A live entry for this tuple, or NULL. A new SYN on a closing flow starts a new flow (port
 * reuse by the client), as does an expired entry. */
static __always_inline struct np_ct_entry *ct_lookup(const struct np_tuple *t, __u8 tcp_flags, __u64 now)
{
	struct np_ct_entry *e = bpf_map_lookup_elem(&ferry_np_ct_v1, t);

	if (!e)
		return 0;
	if (e->expires_ns < now) {
		np_count(NP_STAT_CT_EXPIRED);
		return 0;
	}
	if (t->proto == IPPROTO_TCP && (e->flags & CT_F_CLOSING) &&
	    (tcp_flags & (TCP_F_SYN | TCP_F_ACK)) == TCP_F_SYN)
		return 0;
	return e;
}
