/* SPDX-License-Identifier: Apache-2.0 */
/* The north-south view of the shared load-balancing maps (bpf/lib/lb.h): the small adapters
 * below are the only place of the N-S programs that knows the shared layout. */
#pragma once

#include "ct.h"
#include "lb.h"

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
