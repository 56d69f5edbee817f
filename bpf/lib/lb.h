/* SPDX-License-Identifier: Apache-2.0 */
/* The service load-balancing maps shared by every Ferry program (socket layer, tc, XDP), and the
 * lookups over them. One address width for both families: IPv4 is stored as ::ffff:a.b.c.d, so an
 * IPv4-mapped address on an IPv6 socket finds the IPv4 frontend with no special case.
 *
 * Publishing order (src/datapath/service-writer.ts): backends → slots 1..N → slot 0 (the master
 * entry; the moment a new backend set becomes visible) → surplus slots deleted. A reader that finds
 * a master therefore always finds its slots and backends.
 */
#pragma once

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef FERRY_LB_SERVICES_MAX
#define FERRY_LB_SERVICES_MAX 131072 /* slots of all frontends; the agent resizes at load */
#endif
#ifndef FERRY_LB_BACKENDS_MAX
#define FERRY_LB_BACKENDS_MAX 65536
#endif
#ifndef FERRY_LB_SOCK_REVNAT_MAX
#define FERRY_LB_SOCK_REVNAT_MAX 262144
#endif
#ifndef FERRY_LB_AFFINITY_MAX
#define FERRY_LB_AFFINITY_MAX 65536
#endif

#define LB_SCOPE_INTERNAL 0 /* traffic from pods and the node: the socket layer */
#define LB_SCOPE_EXTERNAL 1 /* traffic from outside the node: tc / XDP */

#define LB_KIND_CLUSTER_IP 0
#define LB_KIND_NODE_PORT 1
#define LB_KIND_LOAD_BALANCER 2
#define LB_KIND_EXTERNAL_IP 3

#define LB_ALG_RANDOM 0
#define LB_ALG_MAGLEV 1

#define LB_SVC_F_REJECT 0x1 /* no endpoints at all: refuse (ECONNREFUSED / RST / ICMP) */
#define LB_SVC_F_DROP 0x2   /* endpoints exist but the traffic policy leaves none here */

#define LB_BACKEND_ACTIVE 0
#define LB_BACKEND_TERMINATING 1
#define LB_BACKEND_F_LOCAL 0x1 /* the backend runs on this node */

struct lb_service_key {
	__u8 address[16]; /* frontend address, IPv4 as ::ffff:a.b.c.d */
	__be16 port;      /* frontend port, network order */
	__u8 protocol;    /* IPPROTO_TCP / IPPROTO_UDP */
	__u8 scope;       /* LB_SCOPE_* */
	__u16 slot;       /* 0 = master entry, 1..count = backend slots */
	__u8 pad[2];
};

struct lb_service {
	__u32 backend_id;       /* slot n: the backend's id; master: 0 */
	__u16 count;            /* master: number of backend slots */
	__u16 flags;            /* master: LB_SVC_F_* */
	__u32 service_id;       /* master: id of the frontend (address, port, protocol), keys revnat */
	__u32 affinity_timeout; /* master: sessionAffinity ClientIP seconds, 0 = none */
	__u8 algorithm;         /* master: LB_ALG_* (north-south) */
	__u8 kind;              /* master: LB_KIND_*, for tools (`ferry service list`), not for decisions */
	__u8 pad[2];
};

struct lb_backend {
	__u8 address[16]; /* backend address, IPv4 as ::ffff:a.b.c.d */
	__be16 port;      /* backend port, network order */
	__u8 protocol;    /* IPPROTO_* */
	__u8 state;       /* LB_BACKEND_ACTIVE / _TERMINATING */
	__u8 flags;       /* LB_BACKEND_F_* */
	__u8 pad[3];
};

struct lb_revnat {
	__u8 address[16]; /* the frontend address replies must appear to come from */
	__be16 port;      /* the frontend port */
	__u8 pad[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FERRY_LB_SERVICES_MAX);
	__type(key, struct lb_service_key);
	__type(value, struct lb_service);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_services_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FERRY_LB_BACKENDS_MAX);
	__type(key, __u32); /* backend id, never 0 */
	__type(value, struct lb_backend);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_backends_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FERRY_LB_BACKENDS_MAX);
	__type(key, __u32); /* service id */
	__type(value, struct lb_revnat);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_revnat_v1 SEC(".maps");

/* ---- lookups ---- */

static __always_inline void lb_key(struct lb_service_key *key, const __u8 address[16], __be16 port, __u8 protocol,
				   __u8 scope, __u16 slot)
{
	__builtin_memset(key, 0, sizeof(*key));
	__builtin_memcpy(key->address, address, 16);
	key->port = port;
	key->protocol = protocol;
	key->scope = scope;
	key->slot = slot;
}

/* The backend in slot `slot` (1-based) of the frontend `key` points at (key->slot is overwritten). */
static __always_inline struct lb_backend *lb_slot_backend(struct lb_service_key *key, __u16 slot, __u32 *id)
{
	struct lb_service *entry;

	key->slot = slot;
	entry = bpf_map_lookup_elem(&ferry_services_v1, key);
	if (!entry)
		return 0;
	*id = entry->backend_id;
	return bpf_map_lookup_elem(&ferry_backends_v1, id);
}

static __always_inline void lb_v4_mapped(__u8 out[16], __u32 ip4 /* network order */)
{
	__builtin_memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	__builtin_memcpy(out + 12, &ip4, 4);
}

static __always_inline int lb_is_v4_mapped(const __u8 a[16])
{
	__u64 hi;
	__u32 mid;

	__builtin_memcpy(&hi, a, 8);
	__builtin_memcpy(&mid, a + 8, 4);
	return hi == 0 && mid == bpf_htonl(0x0000ffff);
}
