/* SPDX-License-Identifier: Apache-2.0 */
/* North-south, part 4: direct server return (tc only): the IPv4 option that carries the
 * frontend to the backend's node, and the backend side that strips it. */
#pragma once

#include "nodeport_rewrite.h"

/* ---- direct server return (tc only) ---- */
#if defined(FERRY_CTX_SKB)
/* The IPv4 header checksum of the hdr_len bytes at hdr (check field zero). */
static __always_inline __u16 np_ip_csum(void *hdr, __u32 hdr_len)
{
	__s64 sum = bpf_csum_diff(0, 0, hdr, hdr_len, 0);

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* Insert the DSR option after the (option-less) IPv4 header: room is made between L3 and L4, so
 * the L4 checksum (whose pseudo-header has no length of the IP header) stays valid. */
static __always_inline int np_dsr_push(ctx_t *ctx, struct np_pkt *p, __be32 frontend, __be16 fport)
{
	struct {
		struct iphdr ip;
		__u8 opt[NP_DSR_OPT_LEN];
	} h;

	if (ctx_load(ctx, ETH_HLEN, &h.ip, sizeof(h.ip)))
		return -1;
	h.ip.ihl = 7;
	h.ip.tot_len = bpf_htons(bpf_ntohs(h.ip.tot_len) + NP_DSR_OPT_LEN);
	h.ip.check = 0;
	h.opt[0] = NP_DSR_OPT_TYPE;
	h.opt[1] = NP_DSR_OPT_LEN;
	__builtin_memcpy(&h.opt[2], &fport, 2);
	__builtin_memcpy(&h.opt[4], &frontend, 4);
	h.ip.check = np_ip_csum(&h, sizeof(h));
	if (bpf_skb_adjust_room(ctx, NP_DSR_OPT_LEN, BPF_ADJ_ROOM_NET, 0) ||
	    ctx_store(ctx, ETH_HLEN, &h, sizeof(h)))
		return -1;
	p->l4off += NP_DSR_OPT_LEN;
	p->l3len += NP_DSR_OPT_LEN;
	return 0;
}

/* Remove the option again on the backend's node, before the stack (and the pod) see it. */
static __always_inline int np_dsr_pop(ctx_t *ctx, struct np_pkt *p)
{
	struct iphdr ip;

	if (ctx_load(ctx, ETH_HLEN, &ip, sizeof(ip)))
		return -1;
	ip.ihl = 5;
	ip.tot_len = bpf_htons(bpf_ntohs(ip.tot_len) - NP_DSR_OPT_LEN);
	ip.check = 0;
	ip.check = np_ip_csum(&ip, sizeof(ip));
	if (bpf_skb_adjust_room(ctx, -NP_DSR_OPT_LEN, BPF_ADJ_ROOM_NET, 0) ||
	    ctx_store(ctx, ETH_HLEN, &ip, sizeof(ip)))
		return -1;
	p->l4off -= NP_DSR_OPT_LEN;
	p->l3len -= NP_DSR_OPT_LEN;
	return 0;
}

/* The backend's node: a DSR packet for a local backend. Remember the frontend for the replies
 * (np_stage_reply rewrites them on the way out, as for eTP=Local), strip the option, deliver. */
static __always_inline int np_stage_dsr_backend(ctx_t *ctx, struct np_pkt *p, __u64 now)
{
	struct np_nat_entry n, *seen;
	struct np_tuple reply;
	__u8 flags = CT_F_DSR | CT_F_LOCAL;
	int fresh;

	__builtin_memset(&reply, 0, sizeof(reply));
	reply.src = p->t.dst;
	reply.sport = p->t.dport;
	reply.dst = p->t.src;
	reply.dport = p->t.sport;
	reply.proto = p->t.proto;
	seen = bpf_map_lookup_elem(&ferry_np_nat_v1, &reply);
	fresh = !seen || seen->expires_ns < now;
	if (fresh) {
		__builtin_memset(&n, 0, sizeof(n));
		n.client = p->t.src;
		np_v4_mapped(&n.frontend, p->dsr_addr);
		n.client_port = p->t.sport;
		n.frontend_port = p->dsr_port;
		n.expires_ns = ct_expiry(now, p->t.proto, p->tcp_flags, &flags);
		n.flags = flags;
		if (bpf_map_update_elem(&ferry_np_nat_v1, &reply, &n, BPF_ANY)) {
			return np_drop(ctx, p, NP_STAT_CT_CREATE_FAIL, FERRY_REASON_CT_FULL, 0);
		}
	} else {
		flags = seen->flags;
		seen->expires_ns = ct_expiry(now, p->t.proto, p->tcp_flags, &flags);
		seen->flags = flags;
	}
	if (np_dsr_pop(ctx, p)) {
		return np_drop(ctx, p, NP_STAT_DROP_ERROR, FERRY_REASON_MALFORMED, 0);
	}
	np_count(NP_STAT_DSR_BACKEND);
	if (fresh) {
		union np_addr frontend;

		np_v4_mapped(&frontend, p->dsr_addr);
		struct np_flow f = {
			.client = &p->t.src,
			.frontend = &frontend,
			.backend = &p->t.dst,
			.cport = p->t.sport,
			.fport = p->dsr_port,
			.bport = p->t.dport,
			.proto = p->t.proto,
			.ct_state = FERRY_CT_NEW,
			.flags = FERRY_NAT_DSR,
		};

		np_event(ctx, p->origin, FERRY_VERDICT_FORWARDED, FERRY_REASON_NONE, &f);
	}
	return CTX_PASS;
}
#endif
