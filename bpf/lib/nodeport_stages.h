/* SPDX-License-Identifier: Apache-2.0 */
/* North-south, part 5: the stages an entry program runs in order (reply, conntrack, new flow
 * to a service) and the new-flow decision shared with `ferry explain` (np_decide). */
#pragma once

#include "nodeport_dsr.h"

/* ---- stages ---- */

/* A reply of a translated flow: from the frontend to the client. */
static __always_inline int np_stage_reply(ctx_t *ctx, struct np_pkt *p, __u64 now)
{
	struct np_nat_entry *n = bpf_map_lookup_elem(&ferry_np_nat_v1, &p->t);
	struct np_tuple orig;
	struct np_ct_entry *e;
	union np_addr client, frontend;
	struct np_flow f = { .client = &client, .frontend = &frontend, .ct_state = FERRY_CT_REPLY };
	__be16 cport, fport;
	__u8 flags;
	__u8 first_reply;

	if (!n || n->expires_ns < now)
		return NP_CONTINUE;
	first_reply = !(n->flags & CT_F_REPLY);
	flags = n->flags | CT_F_REPLY;
	n->expires_ns = ct_expiry(now, p->t.proto, p->tcp_flags, &flags);
	n->flags = flags;
	client = n->client;
	frontend = n->frontend;
	cport = n->client_port;
	fport = n->frontend_port;

	/* Keep the original direction's entry in step (closing, expiry). */
	__builtin_memset(&orig, 0, sizeof(orig));
	orig.src = client;
	orig.dst = frontend;
	orig.sport = cport;
	orig.dport = fport;
	orig.proto = p->t.proto;
	e = bpf_map_lookup_elem(&ferry_np_ct_v1, &orig);
	if (e) {
		e->flags |= flags & (CT_F_CLOSING | CT_F_REPLY);
		e->expires_ns = n->expires_ns;
	}

	if (np_set_addr(ctx, p, 0, &frontend) || np_set_port(ctx, p, 0, fport) ||
	    np_set_addr(ctx, p, 1, &client) || np_set_port(ctx, p, 1, cport)) {
		np_count(NP_STAT_DROP_ERROR);
		f.cport = cport;
		f.fport = fport;
		f.proto = orig.proto;
		f.flags = FERRY_NAT_REVNAT;
		np_event(ctx, p->origin, FERRY_VERDICT_DROPPED, FERRY_REASON_MALFORMED, &f);
		return CTX_DROP;
	}
	np_count(NP_STAT_REVNAT);
	/* One event per flow for the reply direction, not one per packet. */
	if (first_reply) {
		f.backend = e ? &e->backend : 0;
		f.cport = cport;
		f.fport = fport;
		f.bport = e ? e->backend_port : 0;
		f.proto = orig.proto;
		f.flags = FERRY_NAT_REVNAT | ((flags & CT_F_SNAT) ? FERRY_NAT_SNAT : 0);
		f.service_id = e ? e->service_id : 0;
		f.backend_id = e ? e->backend_id : 0;
		np_event(ctx, p->origin, FERRY_VERDICT_FORWARDED, FERRY_REASON_NONE, &f);
	}
	return np_forward(ctx, p, 1);
}

/* Rewrite an original-direction packet of the flow in e. */
static __always_inline int np_translate(ctx_t *ctx, struct np_pkt *p, const struct np_ct_entry *e)
{
	union np_addr backend = e->backend;
	__be16 bport = e->backend_port, nport = e->nat_port;
	int snat = e->flags & CT_F_SNAT;

	if (snat) {
		union np_addr s;

		np_snat_addr(p, &s);
		if (np_set_addr(ctx, p, 0, &s) || np_set_port(ctx, p, 0, nport))
			return -1;
	}
	__be32 frontend = p->t.dst.w[3];
	__be16 fport = p->t.dport;

	if (np_set_addr(ctx, p, 1, &backend) || np_set_port(ctx, p, 1, bport))
		return -1;
#if defined(FERRY_CTX_SKB)
	if (e->flags & CT_F_DSR) {
		if (np_dsr_push(ctx, p, frontend, fport))
			return -1;
		np_count(NP_STAT_DSR);
	}
#else
	(void)frontend;
	(void)fport;
#endif
	return 0;
}

static __always_inline int np_stage_ct(ctx_t *ctx, struct np_pkt *p, __u64 now)
{
	struct np_ct_entry *e = ct_lookup(&p->t, p->tcp_flags, now);
	struct np_ct_entry copy;
	__u8 flags;

	if (!e)
		return NP_CONTINUE;
	if (CTX_IS_XDP && (e->flags & CT_F_DSR))
		return CTX_PASS; /* the option is inserted by tc */
	flags = e->flags;
	e->expires_ns = ct_expiry(now, p->t.proto, p->tcp_flags, &flags);
	e->flags = flags;
	e->packets++;
	copy = *e;
	/* The second packet of a flow says it is established; later ones are only counted. Told
	 * before the rewrite, while p still holds the frontend. */
	if (copy.packets == 2) {
		struct np_flow f = {
			.client = &p->t.src,
			.frontend = &p->t.dst,
			.backend = &copy.backend,
			.cport = p->t.sport,
			.fport = p->t.dport,
			.bport = copy.backend_port,
			.proto = p->t.proto,
			.ct_state = FERRY_CT_ESTABLISHED,
			.flags = FERRY_NAT_DNAT | ((copy.flags & CT_F_SNAT) ? FERRY_NAT_SNAT : 0) |
				 ((copy.flags & CT_F_DSR) ? FERRY_NAT_DSR : 0),
			.service_id = copy.service_id,
			.backend_id = copy.backend_id,
		};

		np_event(ctx, p->origin, FERRY_VERDICT_FORWARDED, FERRY_REASON_NONE, &f);
	}
	if (np_translate(ctx, p, &copy)) {
		return np_drop(ctx, p, NP_STAT_DROP_ERROR, FERRY_REASON_MALFORMED, copy.service_id);
	}
	np_count(NP_STAT_CT_HIT);
	return np_forward(ctx, p, copy.flags & CT_F_SNAT);
}

/* The frontend this packet is addressed to, if any: an exact LB / external IP / per-address
 * NodePort entry first, then the wildcard NodePort entry (address :: or ::ffff:0.0.0.0) when
 * the destination is one of this node's addresses. */
static __always_inline int np_frontend(const struct np_pkt *p, int node_addr, struct np_service *svc,
				       union np_addr *key_addr)
{
	*key_addr = p->t.dst;
	if (np_svc_lookup(key_addr, p->t.dport, p->t.proto, svc) == 0)
		return 0;
	if (!node_addr)
		return -1;
	__builtin_memset(key_addr, 0, sizeof(*key_addr));
	if (!p->v6)
		key_addr->w[2] = bpf_htonl(0xffff);
	return np_svc_lookup(key_addr, p->t.dport, p->t.proto, svc);
}

static __always_inline int np_src_allowed(const struct np_pkt *p, __u32 service_id)
{
	struct np_src_range_key k = { .prefixlen = 32 + 128, .service_id = service_id };
	__u8 *allow;

	__builtin_memcpy(k.addr, p->t.src.b, 16);
	allow = bpf_map_lookup_elem(&ferry_np_src_ranges_v1, &k);
	return !allow || *allow;
}

#define NP_NEW_REJECT 1 /* np_stage_service result: caller tail-calls the reject program */

/* What a new flow to a frontend gets, decided without touching any state: `ferry explain` runs
 * this same function (bpf/explain_nodeport.c) on the live maps. */
struct np_decision {
	struct np_service svc;
	union np_addr key_addr; /* the frontend entry's address (:: for the wildcard NodePort) */
	struct np_backend be;
	__u32 id;               /* backend id when FORWARDED */
	__u8 verdict;           /* FERRY_VERDICT_FORWARDED, _DROPPED or _REJECTED */
	__u8 reason;            /* FERRY_REASON_* */
	__u8 by_maglev;
	__u8 pad;
};

/* NP_CONTINUE when the packet is for no frontend; else 0 with d filled. node_addr: the
 * destination is one of this node's addresses (wildcard NodePort entries apply). src_ranges:
 * apply loadBalancerSourceRanges — the explain program cannot (sleepable programs may not use an
 * LPM trie) and asks the same map from user space instead; the check comes first either way. */
static __always_inline int np_decide(const struct np_pkt *p, int node_addr, int src_ranges, struct np_decision *d)
{
	__u32 id = 0;

	if (np_frontend(p, node_addr, &d->svc, &d->key_addr))
		return NP_CONTINUE;
	d->verdict = FERRY_VERDICT_DROPPED;
	if (src_ranges && !np_src_allowed(p, d->svc.service_id)) {
		d->reason = FERRY_REASON_SOURCE_RANGE;
		return 0;
	}
	if (d->svc.action == NP_ACT_DROP) {
		d->reason = FERRY_REASON_NO_LOCAL_BACKEND;
		return 0;
	}
	if (d->svc.action == NP_ACT_REJECT) {
		d->verdict = FERRY_VERDICT_REJECTED;
		d->reason = FERRY_REASON_NO_BACKEND;
		return 0;
	}
	if (d->svc.maglev)
		id = maglev_pick(d->svc.service_id, &p->t);
	d->by_maglev = id != 0;
	if (!id) {
		__u16 slot = bpf_get_prandom_u32() % d->svc.count + 1;

		id = np_slot_backend(&d->key_addr, p->t.dport, p->t.proto, slot);
	}
	if (!id || np_backend_lookup(id, &d->be)) {
		d->reason = FERRY_REASON_BACKEND_MISSING;
		return 0;
	}
	d->id = id;
	d->verdict = FERRY_VERDICT_FORWARDED;
	d->reason = FERRY_REASON_NONE;
	return 0;
}

/* A frontend that forwards nowhere: counted by its reason, told, and dropped (*reject asks the
 * caller for a TCP RST / ICMP unreachable). */
static __always_inline int np_stage_refuse(ctx_t *ctx, struct np_pkt *p, const struct np_decision *d, int *reject)
{
	if (d->reason == FERRY_REASON_SOURCE_RANGE)
		np_count(NP_STAT_DROP_SOURCE_RANGE);
	else if (d->reason == FERRY_REASON_NO_LOCAL_BACKEND)
		np_count(NP_STAT_DROP_NO_LOCAL_BACKEND);
	else if (d->reason == FERRY_REASON_BACKEND_MISSING)
		np_count(NP_STAT_DROP_NO_BACKEND);
	np_event_pkt(ctx, p, d->verdict, d->reason, d->svc.service_id);
	if (d->verdict == FERRY_VERDICT_REJECTED)
		*reject = 1;
	return CTX_DROP;
}

/* The state a new flow leaves behind: its conntrack entry e, the NAT entry n that turns replies
 * back into the frontend, and the reply tuple n is keyed by (to the node's SNAT address when the
 * backend is remote, else to the client). */
static __always_inline void np_new_flow_state(const struct np_pkt *p, const struct np_decision *d, __u64 now,
					      int snat, int dsr, struct np_ct_entry *e, struct np_nat_entry *n,
					      struct np_tuple *reply)
{
	__builtin_memset(e, 0, sizeof(*e));
	e->backend = d->be.addr;
	e->backend_port = d->be.port;
	e->backend_id = d->id;
	e->service_id = d->svc.service_id;
	e->flags = (snat ? CT_F_SNAT : 0) | (d->be.local ? CT_F_LOCAL : 0) | (dsr ? CT_F_DSR : 0);
	e->created_ns = now;
	e->expires_ns = ct_expiry(now, p->t.proto, p->tcp_flags, &e->flags);
	e->packets = 1;

	__builtin_memset(n, 0, sizeof(*n));
	n->client = p->t.src;
	n->frontend = p->t.dst;
	n->client_port = p->t.sport;
	n->frontend_port = p->t.dport;
	n->flags = e->flags;
	n->expires_ns = e->expires_ns;

	__builtin_memset(reply, 0, sizeof(*reply));
	reply->src = d->be.addr;
	reply->sport = d->be.port;
	reply->proto = p->t.proto;
	if (snat) {
		np_snat_addr(p, &reply->dst);
	} else {
		reply->dst = p->t.src;
		reply->dport = p->t.sport;
	}
}

/* A new flow to a frontend: policy, backend choice, conntrack + NAT state, translation. */
static __always_inline int np_stage_service(ctx_t *ctx, struct np_pkt *p, __u64 now, int *reject)
{
	struct np_decision d = {};
	struct np_ct_entry e;
	struct np_nat_entry n;
	struct np_tuple reply;
	struct np_flow f = np_pkt_flow(p);
	int snat, dsr;

	if (np_decide(p, np_is_node_addr(p), 1, &d))
		return NP_CONTINUE;
	if (d.verdict != FERRY_VERDICT_FORWARDED)
		return np_stage_refuse(ctx, p, &d, reject);
	dsr = cfg_dsr && !d.be.local && !p->v6;
	if (dsr && CTX_IS_XDP)
		return CTX_PASS; /* tc picks again and inserts the option */
	snat = !d.be.local && !dsr;
	np_new_flow_state(p, &d, now, snat, dsr, &e, &n, &reply);
	/* DSR replies never come back here: no reply entry. */
	e.nat_port = dsr ? 1 : nat_insert(&reply, &n, snat);
	if (!e.nat_port) {
		return np_drop(ctx, p, snat ? NP_STAT_DROP_SNAT_PORTS_EXHAUSTED : NP_STAT_CT_CREATE_FAIL,
			       snat ? FERRY_REASON_NAT_PORTS_EXHAUSTED : FERRY_REASON_CT_FULL, d.svc.service_id);
	}
	if (!snat)
		e.nat_port = 0;
	if (bpf_map_update_elem(&ferry_np_ct_v1, &p->t, &e, BPF_ANY)) {
		bpf_map_delete_elem(&ferry_np_nat_v1, &reply);
		return np_drop(ctx, p, NP_STAT_CT_CREATE_FAIL, FERRY_REASON_CT_FULL, d.svc.service_id);
	}
	np_count(NP_STAT_CT_NEW);
	if (snat)
		np_count(NP_STAT_SNAT);
	f.backend = &e.backend;
	f.bport = e.backend_port;
	f.flags = FERRY_NAT_DNAT | (snat ? FERRY_NAT_SNAT : 0) | (dsr ? FERRY_NAT_DSR : 0) |
		  (d.by_maglev ? FERRY_EV_F_MAGLEV : 0);
	f.service_id = d.svc.service_id;
	f.backend_id = d.id;
	np_event(ctx, p->origin, FERRY_VERDICT_FORWARDED, FERRY_REASON_NONE, &f);
	if (np_translate(ctx, p, &e)) {
		return np_drop(ctx, p, NP_STAT_DROP_ERROR, FERRY_REASON_MALFORMED, d.svc.service_id);
	}
	np_count(NP_STAT_DNAT);
	return np_forward(ctx, p, snat);
}

static __always_inline int np_is_icmp_error(const struct np_pkt *p)
{
	if (p->t.proto == IPPROTO_ICMP)
		return p->icmp_type == 3 || p->icmp_type == 11; /* unreachable, time exceeded */
	if (p->t.proto == IPPROTO_ICMPV6)
		return p->icmp_type == 1 || p->icmp_type == 2 || p->icmp_type == 3; /* unreach, too big, time */
	return 0;
}
