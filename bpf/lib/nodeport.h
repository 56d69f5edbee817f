/* SPDX-License-Identifier: Apache-2.0 */
/* North-south load balancing, written once over ctx_t (see ctx.h) for tc and XDP:
 * NodePort / LoadBalancer / externalIPs → conntrack → backend selection → DNAT (+ SNAT for a
 * remote backend) → forward; replies reverse-translated. Each stage returns NP_CONTINUE or a
 * final verdict, so the entry points read as a list of steps. */
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

/* An event about a packet as it arrived (no translation). */
static __always_inline void np_event_pkt(const ctx_t *ctx, const struct np_pkt *p, enum ferry_verdict verdict,
					 enum ferry_reason reason, __u32 service_id)
{
	struct np_flow f = {
		.client = &p->t.src,
		.frontend = &p->t.dst,
		.cport = p->t.sport,
		.fport = p->t.dport,
		.proto = p->t.proto,
		.ct_state = FERRY_CT_NEW,
		.service_id = service_id,
	};

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

/* Fills p; returns 0 for a packet we may act on, NP_CONTINUE-style -1 for anything else
 * (non-IP, IPv4 options or fragments, IPv6 extension headers): those pass untouched. */
static __always_inline int np_parse(ctx_t *ctx, struct np_pkt *p)
{
	struct ethhdr eth;

	__builtin_memset(p, 0, sizeof(*p));
	if (ctx_load(ctx, 0, &eth, sizeof(eth)))
		return -1;
	if (eth.h_proto == bpf_htons(ETH_P_IP)) {
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
	} else if (eth.h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (ctx_load(ctx, ETH_HLEN, &ip6, sizeof(ip6)))
			return -1;
		__builtin_memcpy(p->t.src.b, &ip6.saddr, 16);
		__builtin_memcpy(p->t.dst.b, &ip6.daddr, 16);
		p->t.proto = ip6.nexthdr;
		p->v6 = 1;
		p->l4off = ETH_HLEN + sizeof(ip6);
		p->l3len = bpf_ntohs(ip6.payload_len) + sizeof(ip6);
	} else {
		return -1;
	}

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
			return CTX_DROP;
	} else {
		__u8 hop;

		if (ctx_load(ctx, ETH_HLEN + 7, &hop, 1) || hop <= 1)
			return CTX_PASS;
		hop--;
		if (ctx_store(ctx, ETH_HLEN + 7, &hop, 1))
			return CTX_DROP;
	}
	if (ctx_store(ctx, 0, fib.dmac, 6) || ctx_store(ctx, 6, fib.smac, 6))
		return CTX_DROP;
	np_count(NP_STAT_REDIRECT);
	return ctx_redirect(ctx, fib.ifindex);
}

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

/* A new flow to a frontend: policy, backend choice, conntrack + NAT state, translation. */
static __always_inline int np_stage_service(ctx_t *ctx, struct np_pkt *p, __u64 now, int *reject)
{
	struct np_decision d = {};
	struct np_ct_entry e;
	struct np_nat_entry n;
	struct np_tuple reply;
	struct np_flow f = {
		.client = &p->t.src,
		.frontend = &p->t.dst,
		.cport = p->t.sport,
		.fport = p->t.dport,
		.proto = p->t.proto,
		.ct_state = FERRY_CT_NEW,
	};
	int snat, dsr;

	if (np_decide(p, np_is_node_addr(p), 1, &d))
		return NP_CONTINUE;
	if (d.verdict != FERRY_VERDICT_FORWARDED) {
		if (d.reason == FERRY_REASON_SOURCE_RANGE)
			np_count(NP_STAT_DROP_SOURCE_RANGE);
		else if (d.reason == FERRY_REASON_NO_LOCAL_BACKEND)
			np_count(NP_STAT_DROP_NO_LOCAL_BACKEND);
		else if (d.reason == FERRY_REASON_BACKEND_MISSING)
			np_count(NP_STAT_DROP_NO_BACKEND);
		np_event_pkt(ctx, p, d.verdict, d.reason, d.svc.service_id);
		if (d.verdict == FERRY_VERDICT_REJECTED)
			*reject = 1;
		return CTX_DROP;
	}
	dsr = cfg_dsr && !d.be.local && !p->v6;
	if (dsr && CTX_IS_XDP)
		return CTX_PASS; /* tc picks again and inserts the option */
	snat = !d.be.local && !dsr;
	__builtin_memset(&e, 0, sizeof(e));
	e.backend = d.be.addr;
	e.backend_port = d.be.port;
	e.backend_id = d.id;
	e.service_id = d.svc.service_id;
	e.flags = (snat ? CT_F_SNAT : 0) | (d.be.local ? CT_F_LOCAL : 0) | (dsr ? CT_F_DSR : 0);
	e.created_ns = now;
	e.expires_ns = ct_expiry(now, p->t.proto, p->tcp_flags, &e.flags);
	e.packets = 1;

	__builtin_memset(&n, 0, sizeof(n));
	n.client = p->t.src;
	n.frontend = p->t.dst;
	n.client_port = p->t.sport;
	n.frontend_port = p->t.dport;
	n.flags = e.flags;
	n.expires_ns = e.expires_ns;

	__builtin_memset(&reply, 0, sizeof(reply));
	reply.src = d.be.addr;
	reply.sport = d.be.port;
	reply.proto = p->t.proto;
	if (snat) {
		np_snat_addr(p, &reply.dst);
	} else {
		reply.dst = p->t.src;
		reply.dport = p->t.sport;
	}
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
