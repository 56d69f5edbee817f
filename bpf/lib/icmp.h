/* SPDX-License-Identifier: Apache-2.0 */
/* Answers built in place (TCP RST, ICMP port unreachable for a service without endpoints) and
 * translation of ICMP errors that quote a translated flow. Headers are assembled on the stack
 * and written with one store, so tc and XDP share every line but the resize calls. */
#pragma once

#include "nodeport.h"

#define NP_WIRE_LEN(r) (sizeof(r) - 2)

/* The leading pad puts the IP header on a 4-byte boundary of the stack copy; the packet is
 * written from &eth. */
struct np_rst4 {
	__u8 pad[2];
	struct ethhdr eth;
	struct iphdr ip;
	struct tcphdr tcp;
};

struct np_rst6 {
	__u8 pad[2];
	struct ethhdr eth;
	struct ipv6hdr ip;
	struct tcphdr tcp;
};

struct np_pseudo6 {
	union np_addr src;
	union np_addr dst;
	__be32 len;
	__u8 zero[3];
	__u8 nexthdr;
};

static __always_inline int np_swap_eth(ctx_t *ctx, struct ethhdr *eth)
{
	struct ethhdr old;

	if (ctx_load(ctx, 0, &old, sizeof(old)))
		return -1;
	__builtin_memcpy(eth->h_dest, old.h_source, 6);
	__builtin_memcpy(eth->h_source, old.h_dest, 6);
	eth->h_proto = old.h_proto;
	return 0;
}

static __always_inline void np_rst_tcp(const struct np_pkt *p, struct tcphdr *th)
{
	__u32 seglen = p->l3len - (p->v6 ? 40 : 20) - p->tcp_doff;

	__builtin_memset(th, 0, sizeof(*th));
	th->source = p->t.dport;
	th->dest = p->t.sport;
	th->doff = 5;
	th->rst = 1;
	if (p->tcp_flags & TCP_F_ACK) {
		th->seq = p->tcp_ack; /* RFC 793: <SEQ=SEG.ACK><CTL=RST> */
	} else {
		seglen += !!(p->tcp_flags & TCP_F_SYN) + !!(p->tcp_flags & TCP_F_FIN);
		th->ack_seq = bpf_htonl(bpf_ntohl(p->tcp_seq) + seglen);
		th->ack = 1;
	}
}

/* TCP RST from the frontend to the client, sent back out of the arrival interface. */
static __always_inline int np_reject_tcp(ctx_t *ctx, const struct np_pkt *p)
{
	if (!p->v6) {
		struct np_rst4 r;
		__be32 pseudo[3];

		__builtin_memset(&r, 0, sizeof(r));
		if (np_swap_eth(ctx, &r.eth))
			return -1;
		r.ip.version = 4;
		r.ip.ihl = 5;
		r.ip.tot_len = bpf_htons(40);
		r.ip.ttl = 64;
		r.ip.protocol = IPPROTO_TCP;
		r.ip.saddr = p->t.dst.w[3];
		r.ip.daddr = p->t.src.w[3];
		r.ip.check = csum_fold(csum_partial(&r.ip, sizeof(r.ip), 0));
		np_rst_tcp(p, &r.tcp);
		pseudo[0] = r.ip.saddr;
		pseudo[1] = r.ip.daddr;
		pseudo[2] = bpf_htonl((IPPROTO_TCP << 16) | 20);
		r.tcp.check = csum_fold(csum_partial(&r.tcp, sizeof(r.tcp), csum_partial(pseudo, sizeof(pseudo), 0)));
		if (ctx_set_len(ctx, NP_WIRE_LEN(r)) || ctx_store(ctx, 0, &r.eth, NP_WIRE_LEN(r)))
			return -1;
	} else {
		struct np_rst6 r;
		struct np_pseudo6 ph;

		__builtin_memset(&r, 0, sizeof(r));
		if (np_swap_eth(ctx, &r.eth))
			return -1;
		r.ip.version = 6;
		r.ip.payload_len = bpf_htons(20);
		r.ip.nexthdr = IPPROTO_TCP;
		r.ip.hop_limit = 64;
		__builtin_memcpy(&r.ip.saddr, p->t.dst.b, 16);
		__builtin_memcpy(&r.ip.daddr, p->t.src.b, 16);
		np_rst_tcp(p, &r.tcp);
		__builtin_memset(&ph, 0, sizeof(ph));
		ph.src = p->t.dst;
		ph.dst = p->t.src;
		ph.len = bpf_htonl(20);
		ph.nexthdr = IPPROTO_TCP;
		r.tcp.check = csum_fold(csum_partial(&r.tcp, sizeof(r.tcp), csum_partial(&ph, sizeof(ph), 0)));
		if (ctx_set_len(ctx, NP_WIRE_LEN(r)) || ctx_store(ctx, 0, &r.eth, NP_WIRE_LEN(r)))
			return -1;
	}
	np_count(NP_STAT_REJECT_TCP);
	return ctx_bounce(ctx);
}

struct np_unreach4 {
	__u8 pad[2];
	struct ethhdr eth;
	struct iphdr ip;
	__u8 icmp[8];
	__u8 quote[28]; /* offending IPv4 header + 8 bytes */
};

struct np_unreach6 {
	__u8 pad[2];
	struct ethhdr eth;
	struct ipv6hdr ip;
	__u8 icmp[8];
	__u8 quote[48]; /* offending IPv6 header + 8 bytes */
};

/* ICMP(v6) port unreachable from the frontend to the client, quoting the datagram. */
static __always_inline int np_reject_udp(ctx_t *ctx, const struct np_pkt *p)
{
	if (!p->v6) {
		struct np_unreach4 r;
		__sum16 c;

		__builtin_memset(&r, 0, sizeof(r));
		if (np_swap_eth(ctx, &r.eth) || ctx_load(ctx, ETH_HLEN, r.quote, sizeof(r.quote)))
			return -1;
		r.ip.version = 4;
		r.ip.ihl = 5;
		r.ip.tot_len = bpf_htons(NP_WIRE_LEN(r) - ETH_HLEN);
		r.ip.ttl = 64;
		r.ip.protocol = IPPROTO_ICMP;
		r.ip.saddr = p->t.dst.w[3];
		r.ip.daddr = p->t.src.w[3];
		r.ip.check = csum_fold(csum_partial(&r.ip, sizeof(r.ip), 0));
		r.icmp[0] = 3; /* destination unreachable */
		r.icmp[1] = 3; /* port unreachable */
		c = csum_fold(csum_partial(r.icmp, sizeof(r.icmp) + sizeof(r.quote), 0));
		__builtin_memcpy(&r.icmp[2], &c, 2);
		if (ctx_grow_after_mac(ctx, 28) ||
		    ctx_set_len(ctx, NP_WIRE_LEN(r)) || ctx_store(ctx, 0, &r.eth, NP_WIRE_LEN(r)))
			return -1;
	} else {
		struct np_unreach6 r;
		struct np_pseudo6 ph;
		__sum16 c;

		__builtin_memset(&r, 0, sizeof(r));
		if (np_swap_eth(ctx, &r.eth) || ctx_load(ctx, ETH_HLEN, r.quote, sizeof(r.quote)))
			return -1;
		r.ip.version = 6;
		r.ip.payload_len = bpf_htons(sizeof(r.icmp) + sizeof(r.quote));
		r.ip.nexthdr = IPPROTO_ICMPV6;
		r.ip.hop_limit = 64;
		__builtin_memcpy(&r.ip.saddr, p->t.dst.b, 16);
		__builtin_memcpy(&r.ip.daddr, p->t.src.b, 16);
		r.icmp[0] = 1; /* destination unreachable */
		r.icmp[1] = 4; /* port unreachable */
		__builtin_memset(&ph, 0, sizeof(ph));
		ph.src = p->t.dst;
		ph.dst = p->t.src;
		ph.len = bpf_htonl(sizeof(r.icmp) + sizeof(r.quote));
		ph.nexthdr = IPPROTO_ICMPV6;
		c = csum_fold(csum_partial(r.icmp, sizeof(r.icmp) + sizeof(r.quote), csum_partial(&ph, sizeof(ph), 0)));
		__builtin_memcpy(&r.icmp[2], &c, 2);
		if (ctx_grow_after_mac(ctx, 48) || ctx_set_len(ctx, NP_WIRE_LEN(r)) || ctx_store(ctx, 0, &r.eth, NP_WIRE_LEN(r)))
			return -1;
	}
	np_count(NP_STAT_REJECT_UDP);
	return ctx_bounce(ctx);
}

/* Entry of the reject stage: re-parse (a tail call carries no state) and answer. */
static __always_inline int np_reject(ctx_t *ctx)
{
	struct np_pkt p;
	int rc = -1;

	if (np_parse(ctx, &p)) { /* parsed before the tail call, so only a bug lands here: count it */
		np_count(NP_STAT_DROP_ERROR);
		return CTX_DROP;
	}
	if (p.t.proto == IPPROTO_TCP) {
		if (p.tcp_flags & TCP_F_RST) /* reported: the REJECTED event went out; never answer a RST */
			return CTX_DROP;
		rc = np_reject_tcp(ctx, &p);
	} else if (p.t.proto == IPPROTO_UDP) {
		rc = np_reject_udp(ctx, &p);
	}
	if (rc < 0) /* the frontend's REJECTED event is out already; this tells why no answer came */
		return np_drop(ctx, &p, NP_STAT_DROP_ERROR, FERRY_REASON_MALFORMED, 0);
	return rc;
}

/* How an ICMP error about a translated flow is rewritten: the quoted packet's addresses and
 * ports, and the outer header's. */
struct np_icmp_xlate {
	union np_addr qsrc, qdst; /* the quote's new source and destination */
	union np_addr osrc, odst; /* the outer header's */
	__be16 qsport, qdport;
};

/* The flow an ICMP error quotes, for both families: k is the quote turned into the direction
 * the flow's state is keyed by. Either a reply we sent the client (in conntrack) or a packet we
 * sent a remote backend with SNAT (in the NAT table). Returns 0 with x filled, NP_CONTINUE when
 * the error is about no flow of ours. */
static __always_inline int np_icmp_quoted_flow(const struct np_pkt *p, const struct np_tuple *k, __u64 now,
					       struct np_icmp_xlate *x)
{
	struct np_ct_entry *e = ct_lookup(k, 0, now);
	struct np_nat_entry *n;

	x->osrc = p->t.src;
	if (e) {
		/* quote: frontend:fport → client; becomes backend:bport → client (or node:nat port) */
		x->qsrc = e->backend;
		x->qsport = e->backend_port;
		x->qdst = k->src;
		x->qdport = k->sport;
		x->odst = e->backend;
		if (e->flags & CT_F_SNAT) {
			np_snat_addr(p, &x->qdst);
			x->qdport = e->nat_port;
			x->osrc = x->qdst;
		}
		return 0;
	}
	n = bpf_map_lookup_elem(&ferry_np_nat_v1, k);
	if (!n || n->expires_ns < now)
		return NP_CONTINUE;
	/* quote: node:nat port → backend; becomes client:cport → frontend:fport */
	x->qsrc = n->client;
	x->qsport = n->client_port;
	x->qdst = n->frontend;
	x->qdport = n->frontend_port;
	x->osrc = n->frontend;
	x->odst = n->client;
	return 0;
}

/* The end both families share once the quote is rewritten: the ICMP checksum covers the quote, so
 * it moves by the difference between the old and the new quote; then the quote and the outer
 * addresses are written back. q and old are quotes of len bytes (a multiple of 4) that start with
 * the 8-byte ICMP header. */
static __always_inline int np_icmp_commit(ctx_t *ctx, struct np_pkt *p, void *q, const void *old, __u32 len,
					  const struct np_icmp_xlate *x)
{
	__u8 *icmp = q;
	__u16 c;

	__builtin_memcpy(&c, &icmp[2], 2);
	c = csum_fold((__u64)(__u16)~c + (__u32)bpf_csum_diff((__be32 *)old, len, (__be32 *)q, len, 0));
	__builtin_memcpy(&icmp[2], &c, 2);
	if (ctx_store(ctx, p->l4off, q, len) || np_set_addr(ctx, p, 0, &x->osrc) || np_set_addr(ctx, p, 1, &x->odst))
		return np_drop(ctx, p, NP_STAT_DROP_ERROR, FERRY_REASON_MALFORMED, 0);
	np_count(NP_STAT_ICMP_XLATE);
	return np_forward(ctx, p, 1);
}

/* The part of an ICMPv4 error that translation rewrites. */
struct np_icmp4_quote {
	__u8 icmp[8];
	struct iphdr ip; /* the quoted (offending) header */
	__be16 sport;    /* first 4 bytes of its L4 header */
	__be16 dport;
};

/* An ICMPv4 error whose quoted packet belongs to a translated flow: either a reply we sent the
 * client (quote = frontend → client: the error goes to the backend) or a packet we sent to a
 * remote backend with SNAT (quote = node:nat port → backend: the error goes to the client).
 * Rewrites the outer addresses and the quote, and fixes the quoted header's checksum and the
 * ICMP checksum (which covers the quote). The quoted L4 checksum is left as is (TCP's is not in
 * the 8 quoted bytes; receivers do not verify UDP's). */
static __always_inline int np_icmp4_xlate(ctx_t *ctx, struct np_pkt *p, __u64 now)
{
	struct np_icmp4_quote q, old;
	struct np_tuple k;
	struct np_icmp_xlate x;

	if (ctx_load(ctx, p->l4off, &q, sizeof(q)) || q.ip.ihl != 5 ||
	    (q.ip.protocol != IPPROTO_TCP && q.ip.protocol != IPPROTO_UDP))
		return NP_CONTINUE;
	old = q;
	__builtin_memset(&k, 0, sizeof(k));
	np_v4_mapped(&k.src, q.ip.daddr);
	np_v4_mapped(&k.dst, q.ip.saddr);
	k.sport = q.dport;
	k.dport = q.sport;
	k.proto = q.ip.protocol;
	if (np_icmp_quoted_flow(p, &k, now, &x))
		return NP_CONTINUE;

	q.ip.saddr = x.qsrc.w[3];
	q.ip.daddr = x.qdst.w[3];
	q.sport = x.qsport;
	q.dport = x.qdport;
	q.ip.check = 0;
	q.ip.check = csum_fold(csum_partial(&q.ip, sizeof(q.ip), 0));
	return np_icmp_commit(ctx, p, &q, &old, sizeof(q), &x);
}

/* The part of an ICMPv6 error that translation rewrites. */
struct np_icmp6_quote {
	__u8 icmp[8];
	struct ipv6hdr ip; /* the quoted (offending) header */
	__be16 sport;      /* first 4 bytes of its L4 header */
	__be16 dport;
};

/* np_icmp4_xlate for IPv6: no quoted header checksum, and the ICMPv6 checksum also covers the
 * outer addresses (np_set_addr folds those in through the pseudo header). */
static __always_inline int np_icmp6_xlate(ctx_t *ctx, struct np_pkt *p, __u64 now)
{
	struct np_icmp6_quote q, old;
	struct np_tuple k;
	struct np_icmp_xlate x;

	if (ctx_load(ctx, p->l4off, &q, sizeof(q)) ||
	    (q.ip.nexthdr != IPPROTO_TCP && q.ip.nexthdr != IPPROTO_UDP))
		return NP_CONTINUE;
	old = q;
	__builtin_memset(&k, 0, sizeof(k));
	__builtin_memcpy(k.src.b, &q.ip.daddr, 16);
	__builtin_memcpy(k.dst.b, &q.ip.saddr, 16);
	k.sport = q.dport;
	k.dport = q.sport;
	k.proto = q.ip.nexthdr;
	if (np_icmp_quoted_flow(p, &k, now, &x))
		return NP_CONTINUE;

	__builtin_memcpy(&q.ip.saddr, x.qsrc.b, 16);
	__builtin_memcpy(&q.ip.daddr, x.qdst.b, 16);
	q.sport = x.qsport;
	q.dport = x.qdport;
	return np_icmp_commit(ctx, p, &q, &old, sizeof(q), &x);
}
