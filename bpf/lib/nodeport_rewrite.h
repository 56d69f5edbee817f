/* SPDX-License-Identifier: Apache-2.0 */
/* North-south, part 3: rewriting addresses and ports with their checksums, and handing the
 * packet on (stack or FIB redirect). */
#pragma once

#include "nodeport_event.h"

/* ---- rewriting ---- */
static __always_inline __s32 np_l4_csum_off(const struct np_pkt *p)
{
	switch (p->t.proto) {
	case IPPROTO_TCP:
		return p->l4off + 16;
	case IPPROTO_UDP:
		return p->l4off + 6;
	case IPPROTO_ICMPV6:
		return p->l4off + 2;
	}
	return -1; /* ICMPv4 has no pseudo header */
}

static __always_inline int np_set_addr(ctx_t *ctx, struct np_pkt *p, int is_dst, const union np_addr *to)
{
	union np_addr *from = is_dst ? &p->t.dst : &p->t.src;
	__s32 l4 = np_l4_csum_off(p);
	__u32 flags = CSUM_F_PSEUDO | (p->t.proto == IPPROTO_UDP ? CSUM_F_UDP : 0);
	__s64 diff;

	if (addr_eq(from, to))
		return 0;
	if (!p->v6) {
		diff = csum_diff32(from->w[3], to->w[3]);
		if (ctx_store(ctx, ETH_HLEN + 12 + (is_dst ? 4 : 0), &to->w[3], 4))
			return -1;
		if (ctx_l3_csum_add(ctx, ETH_HLEN + 10, diff))
			return -1;
	} else {
		diff = csum_diff128(from, to);
		if (ctx_store(ctx, ETH_HLEN + 8 + (is_dst ? 16 : 0), to->b, 16))
			return -1;
	}
	if (l4 >= 0 && ctx_l4_csum_add(ctx, l4, diff, flags))
		return -1;
	*from = *to;
	return 0;
}

static __always_inline int np_set_port(ctx_t *ctx, struct np_pkt *p, int is_dst, __be16 to)
{
	__be16 *from = is_dst ? &p->t.dport : &p->t.sport;
	__s32 l4 = np_l4_csum_off(p);

	if (*from == to)
		return 0;
	if (ctx_store(ctx, p->l4off + (is_dst ? 2 : 0), &to, 2))
		return -1;
	if (l4 >= 0 && ctx_l4_csum_add(ctx, l4, csum_diff16(*from, to),
				       p->t.proto == IPPROTO_UDP ? CSUM_F_UDP : 0))
		return -1;
	*from = to;
	return 0;
}

/* ---- forwarding ---- */
/* A rewrite of an already translated packet failed. Counted only: an event here would need a
 * second flow record on a stack the translating stage has already filled to the limit. */
static __always_inline int np_forward_failed(void)
{
	np_count(NP_STAT_DROP_ERROR);
	return CTX_DROP;
}

/* Hand the translated packet on: by default to the stack (routing, neighbour resolution, TTL);
 * with cfg_fib_redirect, look the route up here and send it straight out. */
static __always_inline int np_forward(ctx_t *ctx, const struct np_pkt *p, int local_src)
{
	struct bpf_fib_lookup fib = {};
	long rc;

	if (cfg_fib_redirect == NP_FWD_STACK || (cfg_fib_redirect == NP_FWD_FIB_REPLY && !local_src))
		return CTX_PASS;
	fib.ifindex = ctx_ifindex(ctx);
	fib.l4_protocol = p->t.proto;
	fib.sport = p->t.sport;
	fib.dport = p->t.dport;
	fib.tot_len = p->l3len;
	if (!p->v6) {
		fib.family = 2; /* AF_INET */
		fib.ipv4_src = p->t.src.w[3];
		fib.ipv4_dst = p->t.dst.w[3];
	} else {
		fib.family = 10; /* AF_INET6 */
		__builtin_memcpy(fib.ipv6_src, p->t.src.b, 16);
		__builtin_memcpy(fib.ipv6_dst, p->t.dst.b, 16);
	}
	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		np_count(NP_STAT_REDIRECT);
		return ctx_redirect_neigh(ctx, fib.ifindex);
	}
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return CTX_PASS;
	if (!p->v6) {
		/* The stack would decrement TTL; so do we (and fix the header checksum). */
		__u8 ttl;

		if (ctx_load(ctx, ETH_HLEN + 8, &ttl, 1) || ttl <= 1)
			return CTX_PASS;
		ttl--;
		if (ctx_store(ctx, ETH_HLEN + 8, &ttl, 1) ||
		    ctx_l3_csum_add(ctx, ETH_HLEN + 10, csum_diff16(bpf_htons((__u16)(ttl + 1) << 8),
								 bpf_htons((__u16)ttl << 8))))
			return np_forward_failed();
	} else {
		__u8 hop;

		if (ctx_load(ctx, ETH_HLEN + 7, &hop, 1) || hop <= 1)
			return CTX_PASS;
		hop--;
		if (ctx_store(ctx, ETH_HLEN + 7, &hop, 1))
			return np_forward_failed();
	}
	if (ctx_store(ctx, 0, fib.dmac, 6) || ctx_store(ctx, 6, fib.smac, 6))
		return np_forward_failed();
	np_count(NP_STAT_REDIRECT);
	return ctx_redirect(ctx, fib.ifindex);
}
