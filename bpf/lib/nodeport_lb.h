/* SPDX-License-Identifier: Apache-2.0 */
/* The north-south view of the shared load-balancing maps. When bpf/lib/lb.h (owned by the
 * east-west side) exists, its definitions are used and only the small adapters below are ours;
 * until then a provisional copy of the documented layout lets the N-S programs build and be
 * tested on their own. The adapters are the only place that knows the shared layout. */
#pragma once

#include "ct.h"

#if __has_include("lb.h")
#include "lb.h"
#define NP_HAVE_LB_H 1
#else
#define NP_HAVE_LB_H 0

#define LB_SCOPE_INTERNAL 0
#define LB_SCOPE_EXTERNAL 1
#define LB_ALG_RANDOM 0
#define LB_ALG_MAGLEV 1
#define LB_SVC_F_REJECT 0x1 /* no endpoints at all: refuse */
#define LB_SVC_F_DROP 0x2   /* endpoints exist, none usable here (eTP=Local): drop */
#define LB_BACKEND_ACTIVE 0
#define LB_BACKEND_TERMINATING 1
#define LB_BACKEND_F_LOCAL 0x1

struct lb_service_key {
	__u8 address[16]; /* frontend address, IPv4 as ::ffff:a.b.c.d */
	__be16 port;      /* frontend port */
	__u8 protocol;    /* IPPROTO_* */
	__u8 scope;       /* LB_SCOPE_* */
	__u16 slot;       /* 0 = master entry, 1..count = backend slots */
	__u8 pad[2];
};

struct lb_service {
	__u32 backend_id;       /* slot n: backend id; master: unused */
	__u16 count;            /* master: number of backend slots */
	__u16 flags;            /* master: LB_SVC_F_* */
	__u32 service_id;       /* master: service id */
	__u32 affinity_timeout; /* master: seconds, 0 = none */
	__u8 algorithm;         /* master: LB_ALG_* */
	__u8 pad[3];
};

struct lb_backend {
	__u8 address[16]; /* backend address */
	__be16 port;      /* backend port */
	__u8 protocol;    /* IPPROTO_* */
	__u8 state;       /* LB_BACKEND_* */
	__u8 flags;       /* LB_BACKEND_F_* */
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct lb_service_key);
	__type(value, struct lb_service);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_services_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct lb_backend);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_backends_v1 SEC(".maps");
#endif

/* What N-S needs of a frontend's master entry. */
struct np_service {
	__u32 service_id;
	__u16 count;
	__u8 action; /* NP_ACT_* */
	__u8 maglev;
};

#define NP_ACT_FORWARD 0
#define NP_ACT_REJECT 1
#define NP_ACT_DROP 2

struct np_backend {
	union np_addr addr;
	__be16 port;
	__u8 local;
};

static __always_inline void np_svc_key(struct lb_service_key *k, const union np_addr *addr, __be16 port,
				       __u8 proto, __u16 slot)
{
	__builtin_memset(k, 0, sizeof(*k));
	__builtin_memcpy(k->address, addr->b, 16);
	k->port = port;
	k->protocol = proto;
	k->scope = LB_SCOPE_EXTERNAL;
	k->slot = slot;
}

static __always_inline int np_svc_lookup(const union np_addr *addr, __be16 port, __u8 proto, struct np_service *out)
{
	struct lb_service_key k;
	struct lb_service *v;

	np_svc_key(&k, addr, port, proto, 0);
	v = bpf_map_lookup_elem(&ferry_services_v1, &k);
	if (!v)
		return -1;
	out->service_id = v->service_id;
	out->count = v->count;
	out->maglev = v->algorithm == LB_ALG_MAGLEV;
	out->action = (v->flags & LB_SVC_F_REJECT) ? NP_ACT_REJECT :
		      (v->flags & LB_SVC_F_DROP) ? NP_ACT_DROP : NP_ACT_FORWARD;
	if (out->action == NP_ACT_FORWARD && out->count == 0)
		out->action = NP_ACT_REJECT;
	return 0;
}

static __always_inline __u32 np_slot_backend(const union np_addr *addr, __be16 port, __u8 proto, __u16 slot)
{
	struct lb_service_key k;
	struct lb_service *v;

	np_svc_key(&k, addr, port, proto, slot);
	v = bpf_map_lookup_elem(&ferry_services_v1, &k);
	return v ? v->backend_id : 0;
}

static __always_inline int np_backend_lookup(__u32 id, struct np_backend *out)
{
	struct lb_backend *b = bpf_map_lookup_elem(&ferry_backends_v1, &id);

	if (!b)
		return -1;
	__builtin_memcpy(out->addr.b, b->address, 16);
	out->port = b->port;
	out->local = !!(b->flags & LB_BACKEND_F_LOCAL);
	return 0;
}
