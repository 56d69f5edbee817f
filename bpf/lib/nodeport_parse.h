/* SPDX-License-Identifier: Apache-2.0 */
/* North-south, part 1: load-time configuration, the packet as the stages see it (struct
 * np_pkt) and its parser, and the node-address checks. */
#pragma once

#include "ctx.h"
#include "csum.h"
#include "nodeport_stats.h"
#include "ct.h"
#include "nat.h"
#include "maglev.h"
#include "nodeport_lb.h"
#include "events.h"

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define NP_CONTINUE (-1)
#ifndef IPPROTO_ICMPV6
#define IPPROTO_ICMPV6 58
#endif
#define NP_MAX_NODE_ADDRS 4

/* ---- load-time configuration ---- */
/* Node addresses NodePort answers on (network order; zero = unused slot). */
const volatile __be32 cfg_node_addr4[NP_MAX_NODE_ADDRS] = {};
const volatile __be32 cfg_node_addr6[NP_MAX_NODE_ADDRS][4] = {};
/* Source address for SNAT towards remote backends. */
const volatile __be32 cfg_snat_addr4 = 0;
const volatile __be32 cfg_snat_addr6[4] = {};
/* How translated packets are forwarded: NP_FWD_STACK hands them to the stack; NP_FWD_FIB_REPLY
 * sends packets whose new source is this node's (SNATed, reverse-translated replies) out with a
 * FIB lookup + redirect, since the stack's input path drops a local source as martian, and the
 * rest to the stack; NP_FWD_FIB does so for every translated packet. */
#define NP_FWD_STACK 0
#define NP_FWD_FIB_REPLY 1
#define NP_FWD_FIB 2
const volatile __u8 cfg_fib_redirect = NP_FWD_STACK;
/* Direct server return for IPv4 flows to remote backends (1) instead of SNAT (0). The ingress
 * node DNATs and adds an IPv4 option carrying the frontend; the backend's node strips it and
 * keeps the frontend for the replies, which then leave from there straight to the client.
 * tc only: XDP hands such flows to tc. IPv6 flows keep SNAT (an extension header would do). */
const volatile __u8 cfg_dsr = 0;

/* The option: type 0x9e (copied, class 0, number 30: RFC 4727's experimental value), length 8,
 * frontend port, frontend IPv4 address. */
#define NP_DSR_OPT_TYPE 0x9e
#define NP_DSR_OPT_LEN 8

/* loadBalancerSourceRanges. A service with ranges has a sentinel {prefixlen 32, service id}
 * → 0 (deny); each range is {32 + prefix bits, service id, address} → 1 (allow). Longest-prefix
 * match then allows a client inside a range, denies every other client of that service, and
 * finds nothing (allow) for services without ranges. */
struct np_src_range_key {
	__u32 prefixlen;  /* 32 (service id) + address prefix bits (IPv4: 96 + len) */
	__u32 service_id; /* service id (host order; matched whole) */
	__u8 addr[16];    /* client prefix, IPv4 as ::ffff:a.b.c.d */
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16384);
	__type(key, struct np_src_range_key);
	__type(value, __u8); /* 1 allow, 0 deny */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_np_src_ranges_v1 SEC(".maps");

/* Word-wise volatile reads: a memcpy would cast the volatile away and let clang fold the
 * zero initialiser in. */
static __always_inline void np_cfg_addr6(union np_addr *a, const volatile __be32 *w)
{
	a->w[0] = w[0];
	a->w[1] = w[1];
	a->w[2] = w[2];
	a->w[3] = w[3];
}

/* ---- parsing ---- */
struct np_pkt {
	struct np_tuple t;
	__u32 l4off;
	__u16 l3len;     /* IP total length (v4) / payload length + 40 (v6) */
	__u8 v6;
	__u8 tcp_flags;
	__u8 tcp_doff;   /* TCP header bytes */
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 origin;     /* FERRY_ORIGIN_*: which hook parsed it, for events */
	__u32 tcp_seq;   /* network order */
	__u32 tcp_ack;   /* network order */
	__be32 dsr_addr; /* DSR option: the frontend the client used */
	__be16 dsr_port;
	__u8 dsr;        /* the packet carries the DSR option */
	__u8 pad2;
};

static __always_inline void np_v4_mapped(union np_addr *a, __be32 v4)
{
	a->w[0] = 0;
	a->w[1] = 0;
	a->w[2] = bpf_htonl(0xffff);
	a->w[3] = v4;
}

/* The IPv4 header (and our DSR option, the only one we act on): -1 for options, fragments. */
static __always_inline int np_parse_ip4(ctx_t *ctx, struct np_pkt *p)
{
	struct iphdr ip;

	if (ctx_load(ctx, ETH_HLEN, &ip, sizeof(ip)))
		return -1;
	if (ip.frag_off & bpf_htons(0x3fff))
		return -1;
	if (ip.ihl == 7) {
		/* Our DSR option is the only one we act on; any other options pass untouched. */
		__u8 opt[NP_DSR_OPT_LEN];

		if (ctx_load(ctx, ETH_HLEN + sizeof(ip), opt, sizeof(opt)) || opt[0] != NP_DSR_OPT_TYPE ||
		    opt[1] != NP_DSR_OPT_LEN)
			return -1;
		__builtin_memcpy(&p->dsr_port, &opt[2], 2);
		__builtin_memcpy(&p->dsr_addr, &opt[4], 4);
		p->dsr = 1;
	} else if (ip.ihl != 5) {
		return -1;
	}
	np_v4_mapped(&p->t.src, ip.saddr);
	np_v4_mapped(&p->t.dst, ip.daddr);
	p->t.proto = ip.protocol;
	p->l4off = ETH_HLEN + ip.ihl * 4;
	p->l3len = bpf_ntohs(ip.tot_len);
	return 0;
}

/* The IPv6 header; an extension header shows up as an L4 protocol np_parse_l4 refuses. */
static __always_inline int np_parse_ip6(ctx_t *ctx, struct np_pkt *p)
{
	struct ipv6hdr ip6;

	if (ctx_load(ctx, ETH_HLEN, &ip6, sizeof(ip6)))
		return -1;
	__builtin_memcpy(p->t.src.b, &ip6.saddr, 16);
	__builtin_memcpy(p->t.dst.b, &ip6.daddr, 16);
	p->t.proto = ip6.nexthdr;
	p->v6 = 1;
	p->l4off = ETH_HLEN + sizeof(ip6);
	p->l3len = bpf_ntohs(ip6.payload_len) + sizeof(ip6);
	return 0;
}

/* Ports (and TCP's flags, offset and sequence numbers) or the ICMP type and code. */
static __always_inline int np_parse_l4(ctx_t *ctx, struct np_pkt *p)
{
	if (p->t.proto == IPPROTO_TCP) {
		struct tcphdr th;

		if (ctx_load(ctx, p->l4off, &th, sizeof(th)))
			return -1;
		p->t.sport = th.source;
		p->t.dport = th.dest;
		p->tcp_flags = ((__u8 *)&th)[13];
		p->tcp_doff = th.doff * 4;
		p->tcp_seq = th.seq;
		p->tcp_ack = th.ack_seq;
	} else if (p->t.proto == IPPROTO_UDP) {
		struct udphdr uh;

		if (ctx_load(ctx, p->l4off, &uh, sizeof(uh)))
			return -1;
		p->t.sport = uh.source;
		p->t.dport = uh.dest;
	} else if (p->t.proto == IPPROTO_ICMP || p->t.proto == IPPROTO_ICMPV6) {
		__u8 tc[2];

		if (ctx_load(ctx, p->l4off, tc, 2))
			return -1;
		p->icmp_type = tc[0];
		p->icmp_code = tc[1];
	} else {
		return -1;
	}
	return 0;
}

/* Fills p; returns 0 for a packet we may act on, NP_CONTINUE-style -1 for anything else
 * (non-IP, IPv4 options or fragments, IPv6 extension headers): those pass untouched. */
static __always_inline int np_parse(ctx_t *ctx, struct np_pkt *p)
{
	struct ethhdr eth;

	__builtin_memset(p, 0, sizeof(*p));
	if (ctx_load(ctx, 0, &eth, sizeof(eth)))
		return -1;
	if (eth.h_proto == bpf_htons(ETH_P_IP)) {
		if (np_parse_ip4(ctx, p))
			return -1;
	} else if (eth.h_proto == bpf_htons(ETH_P_IPV6)) {
		if (np_parse_ip6(ctx, p))
			return -1;
	} else {
		return -1;
	}
	return np_parse_l4(ctx, p);
}

static __always_inline int addr_eq(const union np_addr *a, const union np_addr *b)
{
	return a->w[0] == b->w[0] && a->w[1] == b->w[1] && a->w[2] == b->w[2] && a->w[3] == b->w[3];
}

static __always_inline int np_is_node_addr(const struct np_pkt *p)
{
	int i;

	for (i = 0; i < NP_MAX_NODE_ADDRS; i++) {
		if (!p->v6) {
			if (cfg_node_addr4[i] && cfg_node_addr4[i] == p->t.dst.w[3])
				return 1;
		} else {
			union np_addr a;

			np_cfg_addr6(&a, cfg_node_addr6[i]);
			if ((a.w[0] | a.w[1] | a.w[2] | a.w[3]) && addr_eq(&a, &p->t.dst))
				return 1;
		}
	}
	return 0;
}

static __always_inline void np_snat_addr(const struct np_pkt *p, union np_addr *a)
{
	if (!p->v6)
		np_v4_mapped(a, cfg_snat_addr4);
	else
		np_cfg_addr6(a, cfg_snat_addr6);
}
