/* SPDX-License-Identifier: Apache-2.0 */
/* One packet context over two attach points. The north-south logic is written once against
 * ctx_t and these accessors; each entry object (nodeport_tc.c, nodeport_xdp.c) defines exactly
 * one of FERRY_CTX_SKB / FERRY_CTX_XDP before including this file. That is one definition per
 * attach point, not a configuration matrix: the behaviour switches are const volatile globals.
 *
 * Bytes are read and written through the load/store helpers (bpf_skb_*_bytes,
 * bpf_xdp_*_bytes) rather than direct packet pointers: it keeps the logic free of the
 * pointer-invalidation rules that differ between skb and xdp, at the price of a copy.
 */
#pragma once

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define TC_ACT_REDIRECT 7

#define CSUM_F_PSEUDO 1 /* the changed bytes are part of the L4 pseudo header */
#define CSUM_F_UDP 2    /* UDP: a zero checksum means "none" and must stay zero */

#if defined(FERRY_CTX_SKB)
#define ctx_t struct __sk_buff /* a macro, not a typedef: CO-RE cannot relocate through a local typedef */
#define CTX_PASS TC_ACT_OK
#define CTX_DROP TC_ACT_SHOT
#define CTX_IS_XDP 0

static __always_inline __u32 ctx_len(const ctx_t *ctx) { return ctx->len; }
static __always_inline __u32 ctx_ifindex(const ctx_t *ctx) { return ctx->ifindex; }

static __always_inline int ctx_load(ctx_t *ctx, __u32 off, void *to, __u32 len)
{
	return bpf_skb_load_bytes(ctx, off, to, len);
}

static __always_inline int ctx_store(ctx_t *ctx, __u32 off, const void *from, __u32 len)
{
	return bpf_skb_store_bytes(ctx, off, from, len, 0);
}

/* Add a one's-complement difference (from bpf_csum_diff) to the IPv4 header checksum at off. */
static __always_inline int ctx_l3_csum_add(ctx_t *ctx, __u32 off, __s64 diff)
{
	return bpf_l3_csum_replace(ctx, off, 0, (__u32)diff, 0);
}

/* Same for an L4 checksum. Through the helper so that CHECKSUM_PARTIAL skbs (locally sent, on
 * veth) are handled: there only pseudo-header changes may touch the field. */
static __always_inline int ctx_l4_csum_add(ctx_t *ctx, __u32 off, __s64 diff, __u32 flags)
{
	__u64 f = 0;

	if (flags & CSUM_F_PSEUDO)
		f |= BPF_F_PSEUDO_HDR;
	if (flags & CSUM_F_UDP)
		f |= BPF_F_MARK_MANGLED_0;
	return bpf_l4_csum_replace(ctx, off, 0, (__u32)diff, f);
}

/* Grow the packet by len bytes right after the Ethernet header (contents then rewritten). */
static __always_inline int ctx_grow_after_mac(ctx_t *ctx, __u32 len)
{
	return bpf_skb_adjust_room(ctx, len, BPF_ADJ_ROOM_MAC, 0);
}

static __always_inline int ctx_set_len(ctx_t *ctx, __u32 len)
{
	return bpf_skb_change_tail(ctx, len, 0);
}

/* Send the packet back out of the interface it arrived on. */
static __always_inline int ctx_bounce(ctx_t *ctx)
{
	return bpf_redirect(ctx->ifindex, 0);
}

static __always_inline int ctx_redirect(ctx_t *ctx, __u32 ifindex)
{
	(void)ctx;
	return bpf_redirect(ifindex, 0);
}

/* Out of ifindex with the kernel resolving the next hop's MAC (no neighbour entry yet). */
static __always_inline int ctx_redirect_neigh(ctx_t *ctx, __u32 ifindex)
{
	(void)ctx;
	return bpf_redirect_neigh(ifindex, 0, 0, 0);
}

#elif defined(FERRY_CTX_XDP)
#define ctx_t struct xdp_md
#define CTX_PASS XDP_PASS
#define CTX_DROP XDP_DROP
#define CTX_IS_XDP 1

static __always_inline __u32 ctx_len(const ctx_t *ctx) { return ctx->data_end - ctx->data; }
static __always_inline __u32 ctx_ifindex(const ctx_t *ctx) { return ctx->ingress_ifindex; }

static __always_inline int ctx_load(ctx_t *ctx, __u32 off, void *to, __u32 len)
{
	return bpf_xdp_load_bytes(ctx, off, to, len);
}

static __always_inline int ctx_store(ctx_t *ctx, __u32 off, const void *from, __u32 len)
{
	return bpf_xdp_store_bytes(ctx, off, (void *)from, len);
}

static __always_inline __u16 csum_fold_u64(__u64 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* new = ~(~old + diff), RFC 1624; XDP has no checksum-offload state to respect. */
static __always_inline int xdp_csum_add(ctx_t *ctx, __u32 off, __s64 diff, int keep_zero)
{
	__u16 field;

	if (bpf_xdp_load_bytes(ctx, off, &field, 2))
		return -1;
	if (keep_zero && field == 0)
		return 0;
	field = ~csum_fold_u64((__u64)(__u16)~field + (__u32)diff);
	if (keep_zero && field == 0)
		field = 0xffff;
	return bpf_xdp_store_bytes(ctx, off, &field, 2);
}

static __always_inline int ctx_l3_csum_add(ctx_t *ctx, __u32 off, __s64 diff)
{
	return xdp_csum_add(ctx, off, diff, 0);
}

static __always_inline int ctx_l4_csum_add(ctx_t *ctx, __u32 off, __s64 diff, __u32 flags)
{
	return xdp_csum_add(ctx, off, diff, flags & CSUM_F_UDP);
}

/* XDP can only grow at the front: the layout differs from skb (room before the Ethernet header
 * instead of after it) but callers rewrite every byte up to the old L3 header, so it is the same. */
static __always_inline int ctx_grow_after_mac(ctx_t *ctx, __u32 len)
{
	return bpf_xdp_adjust_head(ctx, -(int)len);
}

static __always_inline int ctx_set_len(ctx_t *ctx, __u32 len)
{
	return bpf_xdp_adjust_tail(ctx, (int)len - (int)ctx_len(ctx));
}

static __always_inline int ctx_bounce(ctx_t *ctx)
{
	(void)ctx;
	return XDP_TX;
}

static __always_inline int ctx_redirect(ctx_t *ctx, __u32 ifindex)
{
	if (ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(ifindex, 0);
}

/* XDP cannot resolve a neighbour: the packet goes to the stack (and the first packets of a
 * flow towards an unresolved next hop may be lost). */
static __always_inline int ctx_redirect_neigh(ctx_t *ctx, __u32 ifindex)
{
	(void)ctx;
	(void)ifindex;
	return XDP_PASS;
}

#else
#error "define FERRY_CTX_SKB or FERRY_CTX_XDP before including ctx.h"
#endif
