/* SPDX-License-Identifier: Apache-2.0 */
/* The socket layer's own maps: the reverse entries that let recvmsg() / getpeername() show the
 * frontend, the sessionAffinity memory, the node's NodePorts (which bind() must not take) and the
 * counters. Their key and value layouts are read by the agent through BTF, so they live apart from
 * the code that uses them.
 */
#pragma once

#include "lb.h"
#include "counters.h"
#include "reasons.h"

struct sock_revnat_key {
	__u64 cookie;     /* socket cookie */
	__u8 address[16]; /* backend address the socket is connected / sending to */
	__be16 port;      /* backend port */
	__u8 pad[6];
};

struct sock_revnat {
	__u8 address[16]; /* frontend address to show the application */
	__be16 port;      /* frontend port */
	__u8 pad[2];
	__u32 service_id; /* for events and `ferry observe` */
};

struct affinity_key {
	__u64 client;     /* network-namespace cookie of the client: one pod = one client */
	__u32 service_id; /* frontend */
	__u32 pad;
};

struct affinity {
	__u64 last_used_ns; /* bpf_ktime_get_boot_ns of the last connection */
	__u32 backend_id;   /* the backend this client sticks to */
	__u16 slot;         /* where backend_id sat when chosen: a hint, 0 = unknown (entries of older builds) */
	__u16 pad;
};

struct nodeport_key {
	__be16 port;   /* allocated NodePort, network order */
	__u8 protocol; /* IPPROTO_* */
	__u8 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FERRY_LB_SOCK_REVNAT_MAX);
	__type(key, struct sock_revnat_key);
	__type(value, struct sock_revnat);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_sock_revnat_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FERRY_LB_AFFINITY_MAX);
	__type(key, struct affinity_key);
	__type(value, struct affinity);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_affinity_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct nodeport_key);
	__type(value, __u8); /* 1 */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_nodeports_v1 SEC(".maps");

/* The cluster's service CIDRs: an address in one that no frontend matches is refused rather than
 * left to leave the node and hang (an unallocated or deleted VIP, or a live VIP on a port it does
 * not serve). Empty when the agent does not know them: nothing is refused then. */
struct sock_cidr_key {
	__u32 prefixlen;  /* IPv4: 96 + prefix bits (::ffff:a.b.c.d), IPv6: prefix bits */
	__u8 address[16];
};

#define FERRY_SERVICE_CIDRS_MAX 64

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, FERRY_SERVICE_CIDRS_MAX);
	__type(key, struct sock_cidr_key);
	__type(value, __u8); /* 1 */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_service_cidrs_v1 SEC(".maps");

/* _v2: 16 slots (was 8); a v1 pin from an older build cannot be reused, so the name moves on. */
FERRY_COUNTER_MAP(ferry_sock_counters_v2, enum sock_reason, SOCK_COUNTER_SLOTS);

static __always_inline void sock_count(enum sock_reason reason)
{
	counter_inc(&ferry_sock_counters_v2, reason);
}
