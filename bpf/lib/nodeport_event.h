/* SPDX-License-Identifier: Apache-2.0 */
/* North-south, part 2: flow events (struct np_flow) and np_drop, the one way a stage drops a
 * parsed packet (counted and told). */
#pragma once

#include "nodeport_parse.h"

/* A flow as events tell it, always from the client's side: src = client, dst = frontend,
 * xlated = backend (NULL when none was picked). */
struct np_flow {
	const union np_addr *client;
	const union np_addr *frontend;
	const union np_addr *backend;
	__be16 cport;
	__be16 fport;
	__be16 bport;
	__u8 proto;
	__u8 ct_state; /* FERRY_CT_* */
	__u8 flags;    /* FERRY_NAT_* | FERRY_EV_F_* */
	__u32 service_id;
	__u32 backend_id;
};

/* One flow event for `ferry observe` (rate-limited and counted in events.h). */
static __always_inline void np_event(const ctx_t *ctx, __u8 origin, enum ferry_verdict verdict,
				     enum ferry_reason reason, const struct np_flow *f)
{
	struct ferry_event *ev = ferry_ev_begin(origin, verdict, reason);

	if (!ev)
		return;
	__builtin_memcpy(ev->src, f->client->b, 16);
	__builtin_memcpy(ev->dst, f->frontend->b, 16);
	if (f->backend)
		__builtin_memcpy(ev->xlated, f->backend->b, 16);
	ev->src_port = f->cport;
	ev->dst_port = f->fport;
	ev->xlated_port = f->bport;
	ev->protocol = f->proto;
	ev->ct_state = f->ct_state;
	ev->flags = f->flags;
	ev->service_id = f->service_id;
	ev->backend_id = f->backend_id;
	ev->ifindex = ctx_ifindex(ctx);
	ferry_ev_submit(ev);
}

/* A new flow as the packet tells it, before any backend is picked: client → frontend. */
static __always_inline struct np_flow np_pkt_flow(const struct np_pkt *p)
{
	struct np_flow f = {
		.client = &p->t.src,
		.frontend = &p->t.dst,
		.cport = p->t.sport,
		.fport = p->t.dport,
		.proto = p->t.proto,
		.ct_state = FERRY_CT_NEW,
	};

	return f;
}

/* An event about a packet as it arrived (no translation). */
static __always_inline void np_event_pkt(const ctx_t *ctx, const struct np_pkt *p, enum ferry_verdict verdict,
					 enum ferry_reason reason, __u32 service_id)
{
	struct np_flow f = np_pkt_flow(p);

	f.service_id = service_id;
	np_event(ctx, p->origin, verdict, reason, &f);
}

/* Every drop of a parsed packet goes through here: counted in its slot and told as an event, so
 * no drop site can do one and forget the other. Returns the action. */
static __always_inline int np_drop(const ctx_t *ctx, const struct np_pkt *p, enum np_stat stat,
				   enum ferry_reason reason, __u32 service_id)
{
	np_count(stat);
	np_event_pkt(ctx, p, FERRY_VERDICT_DROPPED, reason, service_id);
	return CTX_DROP;
}
