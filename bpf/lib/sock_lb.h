/* SPDX-License-Identifier: Apache-2.0 */
/* Socket-layer load balancing: a connect() or sendmsg() to a service frontend is rewritten to a
 * backend before any packet exists, so east-west traffic needs no per-packet NAT; recvmsg() and
 * getpeername() show the frontend back to the application through a reverse entry keyed by the
 * socket cookie. Written once for both families over a 16-byte address.
 */
#pragma once

/* Maps (sock_maps.h), context access (sock_ctx.h), events and refusals (sock_event.h) and the
 * classify/pick decision (sock_pick.h); the entry-point logic below ties them together. */
#include "sock_maps.h"
#include "sock_ctx.h"
#include "sock_event.h"
#include "sock_pick.h"

/* No frontend for (address, port, protocol). Outside the service CIDRs this is none of ours: leave
 * the socket alone. Inside them nothing will ever answer (the address is no Service's, or not on
 * that port): refuse as a Service without endpoints is refused, so the client fails at once and
 * every time. Left to the stack, the node's ICMP unreachable reaches a connecting socket while
 * connect() still holds its lock, is set aside, and only counts at the SYN retransmit a second later. */
static __always_inline int sock_no_service(struct bpf_sock_addr *ctx, int v6, __u8 origin,
					   const struct sock_flow *f, const __u8 dst[16])
{
	struct sock_cidr_key ckey = { .prefixlen = 128 };

	__builtin_memcpy(ckey.address, dst, 16);
	if (!bpf_map_lookup_elem(&ferry_service_cidrs_v1, &ckey))
		return SYS_PROCEED;
	return sock_refuse(ctx, v6, origin, SOCK_REJECT_NO_SERVICE, FERRY_VERDICT_REJECTED,
			   FERRY_REASON_NO_SERVICE, ECONNREFUSED, f);
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
		return sock_no_service(ctx, v6, origin, &f, dst);
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
