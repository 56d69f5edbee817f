// SPDX-License-Identifier: Apache-2.0
/* `ferry explain` for the packet path (NodePort, LoadBalancer, external IPs). A syscall-type
 * program runs the north-south programs' own decision for a new flow (np_decide in
 * lib/nodeport_stages.h: frontend lookup incl. the wildcard NodePort entry, the Local-policy
 * drop, Maglev or a random slot) over the live pinned maps, for a 5-tuple given in the context,
 * and reports the conntrack entry of that tuple when the flow already exists. It writes nothing:
 * np_decide has no side effects, and no counter, event, conntrack or NAT entry is touched.
 * loadBalancerSourceRanges live in an LPM trie, which a (sleepable) syscall program may not
 * use: the caller asks that map from user space, where the kernel does the same longest-prefix
 * match. */
#define FERRY_CTX_XDP 1
#include "lib/nodeport.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Mirrored by PACKET_CTX in src/datapath/explain.ts. */
struct explain_packet_ctx {
	/* in */
	__u8 src[16];      /* client, IPv4 as ::ffff:a.b.c.d */
	__u8 dst[16];      /* frontend */
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 v6;
	__u8 node_addr;    /* dst is one of the node's addresses (wildcard NodePorts apply) */
	__u8 kind;         /* out: the frontend's LB_KIND_* */
	/* out */
	__u8 found;        /* a frontend entry matched */
	enum ferry_verdict verdict;
	enum ferry_reason reason;
	__u8 by_maglev;    /* the backend came from the Maglev table */
	__u8 established;  /* a live conntrack entry exists for the tuple */
	__u8 ct_flags;     /* its CT_F_* */
	__u8 pad1[2];
	__u32 service_id;
	__u16 count;       /* backend slots */
	__u8 maglev;       /* the frontend uses Maglev */
	__u8 action;       /* NP_ACT_* */
	__u32 backend_id;
	__u8 backend[16];
	__be16 backend_port;
	__u8 backend_local;
	__u8 wildcard;     /* matched through the wildcard NodePort entry */
};

SEC("syscall")
int ferry_explain_packet(struct explain_packet_ctx *ctx)
{
	struct np_decision d = {};
	struct lb_service_key key;
	struct lb_service *master;
	struct np_ct_entry *e;
	struct np_pkt p = {};

	__builtin_memcpy(p.t.src.b, ctx->src, 16);
	__builtin_memcpy(p.t.dst.b, ctx->dst, 16);
	p.t.sport = ctx->sport;
	p.t.dport = ctx->dport;
	p.t.proto = ctx->proto;
	p.v6 = ctx->v6;

	e = bpf_map_lookup_elem(&ferry_np_ct_v1, &p.t);
	if (e && e->expires_ns > bpf_ktime_get_ns()) {
		ctx->established = 1;
		ctx->ct_flags = e->flags;
		ctx->service_id = e->service_id;
		ctx->backend_id = e->backend_id;
		__builtin_memcpy(ctx->backend, e->backend.b, 16);
		ctx->backend_port = e->backend_port;
		ctx->backend_local = !!(e->flags & CT_F_LOCAL);
	}
	if (np_decide(&p, ctx->node_addr, 0, &d))
		return 0;
	ctx->found = 1;
	ctx->wildcard = !addr_eq(&d.key_addr, &p.t.dst);
	np_svc_key(&key, &d.key_addr, p.t.dport, p.t.proto, 0);
	master = bpf_map_lookup_elem(&ferry_services_v1, &key);
	if (master)
		ctx->kind = master->kind;
	ctx->verdict = d.verdict;
	ctx->reason = d.reason;
	ctx->count = d.svc.count;
	ctx->maglev = d.svc.maglev;
	ctx->action = d.svc.action;
	if (ctx->established)
		return 0;
	ctx->service_id = d.svc.service_id;
	ctx->by_maglev = d.by_maglev;
	if (d.verdict != FERRY_VERDICT_FORWARDED)
		return 0;
	ctx->backend_id = d.id;
	__builtin_memcpy(ctx->backend, d.be.addr.b, 16);
	ctx->backend_port = d.be.port;
	ctx->backend_local = d.be.local;
	return 0;
}
