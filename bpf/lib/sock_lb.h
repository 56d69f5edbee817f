/* SPDX-License-Identifier: Apache-2.0 */
/* Socket-layer load balancing: a connect() or sendmsg() to a service frontend is rewritten to a
 * backend before any packet exists, so east-west traffic needs no per-packet NAT; recvmsg() and
 * getpeername() show the frontend back to the application through a reverse entry keyed by the
 * socket cookie. Written once for both families over a 16-byte address.
 */
#pragma once

#include "lb.h"
#include "events.h"

#define EPERM 1
#define ECONNREFUSED 111
#define EHOSTUNREACH 113
#define EADDRINUSE 98

#define SYS_REJECT 0
#define SYS_PROCEED 1

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

/* How far sock_affinity_member() searches when the hint is stale (the set was re-sorted). Past it
 * a client of a very large service loses its stickiness after a change, never its correctness. */
#define SOCK_AFFINITY_SCAN_MAX 64

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

/* _v2: 16 slots (was 8); a v1 pin from an older build cannot be reused, so the name moves on. */
FERRY_COUNTER_MAP(ferry_sock_counters_v2, enum sock_reason, SOCK_COUNTER_SLOTS);

static __always_inline void sock_count(enum sock_reason reason)
{
	counter_inc(&ferry_sock_counters_v2, reason);
}

/* The destination of a sock_addr context as 16 bytes. */
static __always_inline void sock_dst(struct bpf_sock_addr *ctx, int v6, __u8 out[16])
{
	if (v6) {
		__u32 w[4];

		/* 4-byte loads: the verifier only allows word access to user_ip6. */
		w[0] = ctx->user_ip6[0];
		w[1] = ctx->user_ip6[1];
		w[2] = ctx->user_ip6[2];
		w[3] = ctx->user_ip6[3];
		__builtin_memcpy(out, w, 16);
	} else {
		lb_v4_mapped(out, ctx->user_ip4);
	}
}

static __always_inline void sock_set_dst(struct bpf_sock_addr *ctx, int v6, const __u8 a[16], __be16 port)
{
	__u32 w[4];

	__builtin_memcpy(w, a, 16);
	if (v6) {
		ctx->user_ip6[0] = w[0];
		ctx->user_ip6[1] = w[1];
		ctx->user_ip6[2] = w[2];
		ctx->user_ip6[3] = w[3];
	} else {
		ctx->user_ip4 = w[3];
	}
	ctx->user_port = (__u32)port;
}

static __always_inline __u8 sock_protocol(struct bpf_sock_addr *ctx)
{
	/* connect() on a SOCK_STREAM socket may carry protocol 0 on some paths: go by the type. */
	return ctx->type == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP;
}

/* The network-namespace inode of the calling task: what the agent can map to a pod (it stats the
 * netns path the CNI recorded). CO-RE walk of a trusted task pointer; a task without an nsproxy
 * (exiting) reads as 0 through the verifier's fault-safe load. */
static __always_inline __u32 sock_netns_inum(void)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct nsproxy *nsproxy = task->nsproxy;

	if (!nsproxy)
		return 0;
	return nsproxy->net_ns->ns.inum;
}

/* The client's source, as far as the socket layer knows it before a packet exists: an explicit
 * sendmsg source (IP_PKTINFO) first, else whatever the socket is bound to (often nothing yet). */
static __always_inline void sock_event_src(struct bpf_sock_addr *ctx, int v6, __u8 origin, struct ferry_event *ev)
{
	struct bpf_sock *sk = ctx->sk;
	__u32 w[4];

	if (origin == FERRY_ORIGIN_SENDMSG) {
		if (v6) {
			w[0] = ctx->msg_src_ip6[0];
			w[1] = ctx->msg_src_ip6[1];
			w[2] = ctx->msg_src_ip6[2];
			w[3] = ctx->msg_src_ip6[3];
			if (w[0] | w[1] | w[2] | w[3]) {
				__builtin_memcpy(ev->src, w, 16);
				goto port;
			}
		} else if (ctx->msg_src_ip4) {
			lb_v4_mapped(ev->src, ctx->msg_src_ip4);
			goto port;
		}
	}
	if (!sk)
		return;
	if (v6) {
		w[0] = sk->src_ip6[0];
		w[1] = sk->src_ip6[1];
		w[2] = sk->src_ip6[2];
		w[3] = sk->src_ip6[3];
		if (w[0] | w[1] | w[2] | w[3])
			__builtin_memcpy(ev->src, w, 16);
	} else if (sk->src_ip4) {
		lb_v4_mapped(ev->src, sk->src_ip4);
	}
port:
	if (sk)
		ev->src_port = bpf_htons((__u16)sk->src_port); /* bpf_sock keeps it in host order */
}

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

/* Is backend `id` still in the frontend's set? Backends are shared between services, so its mere
 * existence in ferry_backends_v1 says nothing: look in the frontend's own slots, at the hint first.
 * Returns the slot, or 0. */
static __always_inline __u16 sock_affinity_member(struct lb_service_key *key, const struct lb_service *master,
						   __u32 id, __u16 hint)
{
	struct lb_service *entry;
	__u16 slot;

	if (hint && hint <= master->count) {
		key->slot = hint;
		entry = bpf_map_lookup_elem(&ferry_services_v1, key);
		if (entry && entry->backend_id == id)
			return hint;
	}
	for (slot = 1; slot <= SOCK_AFFINITY_SCAN_MAX; slot++) {
		if (slot > master->count)
			break;
		key->slot = slot;
		entry = bpf_map_lookup_elem(&ferry_services_v1, key);
		if (entry && entry->backend_id == id)
			return slot;
	}
	return 0;
}

/* Picks a backend for the frontend `master` under `key`; returns it and its id, or 0. *flags gets
 * FERRY_EV_F_AFFINITY when sessionAffinity chose it. */
static __always_inline struct lb_backend *sock_pick(__u64 client, struct lb_service_key *key,
						     const struct lb_service *master, __u32 *id, __u8 *flags,
						     int commit)
{
	struct affinity_key akey = {};
	struct affinity *seen;
	struct lb_backend *backend;
	__u64 now = 0;
	__u16 slot;

	if (master->affinity_timeout) {
		akey.client = client;
		akey.service_id = master->service_id;
		now = bpf_ktime_get_boot_ns();
		seen = bpf_map_lookup_elem(&ferry_affinity_v1, &akey);
		if (seen && now - seen->last_used_ns < (__u64)master->affinity_timeout * 1000000000ULL) {
			*id = seen->backend_id;
			/* A backend that left the service (or vanished) falls through to a fresh pick. */
			slot = sock_affinity_member(key, master, *id, seen->slot);
			backend = slot ? bpf_map_lookup_elem(&ferry_backends_v1, id) : 0;
			if (backend) {
				/* `commit` is 0 for `ferry explain`: the question must not change the answer. */
				if (commit) {
					seen->last_used_ns = now;
					seen->slot = slot;
					sock_count(SOCK_AFFINITY_HIT);
				}
				*flags |= FERRY_EV_F_AFFINITY;
				return backend;
			}
		}
	}
	slot = (bpf_get_prandom_u32() % master->count) + 1;
	backend = lb_slot_backend(key, slot, id);
	if (backend && master->affinity_timeout && commit) {
		struct affinity fresh = { .last_used_ns = now, .backend_id = *id, .slot = slot };

		bpf_map_update_elem(&ferry_affinity_v1, &akey, &fresh, BPF_ANY);
	}
	return backend;
}

/* What a frontend's master entry says before any backend is picked: FERRY_VERDICT_REJECTED (no
 * endpoints: ECONNREFUSED), FERRY_VERDICT_DROPPED (a Local policy left none here: EHOSTUNREACH),
 * or 0 (pick a backend). Shared with `ferry explain` (bpf/explain.c). */
static __always_inline __u8 sock_classify(const struct lb_service *master)
{
	if ((master->flags & LB_SVC_F_REJECT) || (!(master->flags & LB_SVC_F_DROP) && master->count == 0))
		return FERRY_VERDICT_REJECTED;
	if ((master->flags & LB_SVC_F_DROP) || master->count == 0)
		return FERRY_VERDICT_DROPPED;
	return 0;
}

/* connect() and unconnected sendmsg(): translate a frontend to a backend. `origin` is a constant
 * per entry point, so the sendmsg-only context fields vanish from the connect programs. */
static __always_inline int sock_xlate_fwd(struct bpf_sock_addr *ctx, int v6, __u8 origin)
{
	struct lb_service_key key;
	struct lb_service *entry;
	struct lb_service master;
	struct lb_backend *backend;
	struct sock_revnat_key rkey = {};
	struct sock_revnat rval = {};
	__u8 dst[16];
	__be16 port = (__be16)ctx->user_port;
	struct sock_flow f = { .frontend = &key };
	__u32 id = 0;
	__u8 flags = 0;

	sock_dst(ctx, v6, dst);
	lb_key(&key, dst, port, sock_protocol(ctx), LB_SCOPE_INTERNAL, 0);
	entry = bpf_map_lookup_elem(&ferry_services_v1, &key);
	if (!entry)
		return SYS_PROCEED; /* not a service: leave the socket alone */
	master = *entry;
	f.service_id = master.service_id;
	if (sock_classify(&master) == FERRY_VERDICT_REJECTED)
		return sock_refuse(ctx, v6, origin, SOCK_REJECT_NO_BACKEND, FERRY_VERDICT_REJECTED,
				   FERRY_REASON_NO_BACKEND, ECONNREFUSED, &f);
	/* kube-proxy drops here and the client waits for a timeout; failing at once is kinder. */
	if (sock_classify(&master) == FERRY_VERDICT_DROPPED)
		return sock_refuse(ctx, v6, origin, SOCK_DROP_POLICY, FERRY_VERDICT_DROPPED,
				   FERRY_REASON_NO_LOCAL_BACKEND, EHOSTUNREACH, &f);
	backend = sock_pick(bpf_get_netns_cookie(ctx), &key, &master, &id, &flags, 1);
	f.backend_id = id;
	f.flags = flags;
	if (!backend)
		return sock_refuse(ctx, v6, origin, SOCK_DROP_MISSING_BACKEND, FERRY_VERDICT_DROPPED,
				   FERRY_REASON_BACKEND_MISSING, EHOSTUNREACH, &f);
	f.backend = backend;
	/* An IPv6 socket can only reach an IPv4 backend through a mapped address, which is what we
	 * store; an IPv4 socket cannot reach an IPv6 backend (the model never mixes families). */
	if (!v6 && !lb_is_v4_mapped(backend->address))
		return sock_refuse(ctx, v6, origin, SOCK_DROP_FAMILY_MISMATCH, FERRY_VERDICT_DROPPED,
				   FERRY_REASON_FAMILY_MISMATCH, EHOSTUNREACH, &f);
	rkey.cookie = bpf_get_socket_cookie(ctx);
	__builtin_memcpy(rkey.address, backend->address, 16);
	rkey.port = backend->port;
	__builtin_memcpy(rval.address, dst, 16);
	rval.port = port;
	rval.service_id = master.service_id;
	if (bpf_map_update_elem(&ferry_sock_revnat_v1, &rkey, &rval, BPF_ANY))
		sock_count(SOCK_REVNAT_UPDATE_FAIL);
	sock_set_dst(ctx, v6, backend->address, backend->port);
	sock_count(SOCK_TRANSLATED);
	sock_event(ctx, v6, origin, FERRY_VERDICT_TRANSLATED, FERRY_REASON_NONE, &f);
	return SYS_PROCEED;
}

/* recvmsg() / getpeername(): show the frontend in place of the backend. */
static __always_inline int sock_xlate_rev(struct bpf_sock_addr *ctx, int v6)
{
	struct sock_revnat_key rkey = {};
	struct sock_revnat *rval;

	rkey.cookie = bpf_get_socket_cookie(ctx);
	sock_dst(ctx, v6, rkey.address);
	rkey.port = (__be16)ctx->user_port;
	rval = bpf_map_lookup_elem(&ferry_sock_revnat_v1, &rkey);
	if (!rval)
		return SYS_PROCEED;
	if (!v6 && !lb_is_v4_mapped(rval->address))
		return SYS_PROCEED;
	sock_set_dst(ctx, v6, rval->address, rval->port);
	sock_count(SOCK_REVNAT);
	return SYS_PROCEED;
}

/* bind(): a local socket must not take a port that NodePorts own on this node. */
static __always_inline int sock_bind_check(struct bpf_sock_addr *ctx, int v6)
{
	struct nodeport_key key = {};
	struct lb_service_key bound;
	struct sock_flow f = { .frontend = &bound };
	__u8 address[16];

	key.port = (__be16)ctx->user_port;
	if (key.port == 0)
		return SYS_PROCEED;
	key.protocol = sock_protocol(ctx);
	if (!bpf_map_lookup_elem(&ferry_nodeports_v1, &key))
		return SYS_PROCEED;
	/* The event's destination is the address:port the socket asked to bind. */
	sock_dst(ctx, v6, address);
	lb_key(&bound, address, key.port, key.protocol, LB_SCOPE_INTERNAL, 0);
	return sock_refuse(ctx, v6, FERRY_ORIGIN_BIND, SOCK_BIND_REFUSED, FERRY_VERDICT_DROPPED,
			   FERRY_REASON_NODEPORT_RESERVED, EADDRINUSE, &f);
}
