/* SPDX-License-Identifier: Apache-2.0 */
/* How a socket-layer decision is told: one event per decision, and one refusal path that counts,
 * tells and fails the call, so no refusal can go unreported.
 */
#pragma once

#include "sock_maps.h"
#include "sock_ctx.h"

/* A socket-layer decision as events tell it. */
struct sock_flow {
	const struct lb_service_key *frontend; /* what the application asked for */
	const struct lb_backend *backend;      /* NULL when none was picked */
	__u32 service_id;
	__u32 backend_id;
	__u8 flags; /* FERRY_EV_F_* */
};

/* One event for one socket-layer decision; the counters were bumped by the caller already. */
static __always_inline void sock_event(struct bpf_sock_addr *ctx, int v6, __u8 origin, enum ferry_verdict verdict,
				       enum ferry_reason reason, const struct sock_flow *f)
{
	struct ferry_event *ev = ferry_ev_begin(origin, verdict, reason);

	if (!ev)
		return;
	ev->sock_cookie = bpf_get_socket_cookie(ctx);
	ev->cgroup_id = bpf_get_current_cgroup_id();
	ev->netns_cookie = bpf_get_netns_cookie(ctx);
	ev->netns_inum = sock_netns_inum();
	sock_event_src(ctx, v6, origin, ev);
	__builtin_memcpy(ev->dst, f->frontend->address, 16);
	ev->dst_port = f->frontend->port;
	ev->protocol = f->frontend->protocol;
	ev->service_id = f->service_id;
	ev->backend_id = f->backend_id;
	ev->flags = f->flags;
	if (f->backend) {
		__builtin_memcpy(ev->xlated, f->backend->address, 16);
		ev->xlated_port = f->backend->port;
	}
	ferry_ev_submit(ev);
}

/* Every refused socket call goes through here: counted in its slot, told as an event and failed
 * with err, so no refusal can go unreported. */
static __always_inline int sock_refuse(struct bpf_sock_addr *ctx, int v6, __u8 origin, enum sock_reason slot,
				       enum ferry_verdict verdict, enum ferry_reason reason, int err,
				       const struct sock_flow *f)
{
	sock_count(slot);
	sock_event(ctx, v6, origin, verdict, reason, f);
	bpf_set_retval(-err);
	return SYS_REJECT;
}
