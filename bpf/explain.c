// SPDX-License-Identifier: Apache-2.0
/* `ferry explain` for the socket layer. cgroup sock_addr programs cannot be run with
 * BPF_PROG_RUN, so this syscall-type program runs the same decision code (lib/sock_pick.h: the
 * master lookup, sock_classify, sock_pick) over the live pinned maps for a frontend and a client
 * given in the context, and writes the decision back into it. It changes nothing: sock_pick runs
 * with commit = 0 (no affinity write, no counters), and no event is emitted. */
#include "lib/sock_lb.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Mirrored by EXPLAIN_CTX in src/datapath/explain.ts. */
struct explain_sock_ctx {
	/* in */
	__u8 address[16]; /* frontend, IPv4 as ::ffff:a.b.c.d */
	__be16 port;
	__u8 protocol;
	__u8 scope;       /* LB_SCOPE_* */
	__u32 pad0;
	__u64 client;     /* netns cookie of the client (the affinity key) */
	/* out */
	__u8 found;       /* a master entry exists */
	enum ferry_verdict verdict; /* TRANSLATED when a backend was picked */
	enum ferry_reason reason;
	__u8 flags;       /* FERRY_EV_F_AFFINITY … */
	__u32 service_id;
	__u16 count;      /* backend slots of the frontend */
	__u16 svc_flags;  /* LB_SVC_F_* */
	__u32 affinity_timeout;
	__u32 backend_id;
	__u8 backend[16];
	__be16 backend_port;
	__u8 backend_state;
	__u8 backend_flags;
	__u8 algorithm;
	__u8 kind;
	__u8 pad1[2];
};

SEC("syscall")
int ferry_explain_sock(struct explain_sock_ctx *ctx)
{
	struct lb_service_key key;
	struct lb_service *entry;
	struct lb_service master;
	struct lb_backend *backend;
	__u8 addr[16];
	__u32 id = 0;
	__u8 flags = 0;

	__builtin_memcpy(addr, ctx->address, 16);
	lb_key(&key, addr, ctx->port, ctx->protocol, ctx->scope, 0);
	entry = bpf_map_lookup_elem(&ferry_services_v1, &key);
	if (!entry)
		return 0;
	master = *entry;
	ctx->found = 1;
	ctx->service_id = master.service_id;
	ctx->count = master.count;
	ctx->svc_flags = master.flags;
	ctx->affinity_timeout = master.affinity_timeout;
	ctx->algorithm = master.algorithm;
	ctx->kind = master.kind;
	ctx->verdict = sock_classify(&master);
	if (ctx->verdict == FERRY_VERDICT_REJECTED) {
		ctx->reason = FERRY_REASON_NO_BACKEND;
		return 0;
	}
	if (ctx->verdict == FERRY_VERDICT_DROPPED) {
		ctx->reason = FERRY_REASON_NO_LOCAL_BACKEND;
		return 0;
	}
	backend = sock_pick(ctx->client, &key, &master, &id, &flags, 0);
	ctx->flags = flags;
	ctx->backend_id = id;
	if (!backend) {
		ctx->verdict = FERRY_VERDICT_DROPPED;
		ctx->reason = FERRY_REASON_BACKEND_MISSING;
		return 0;
	}
	ctx->verdict = FERRY_VERDICT_TRANSLATED;
	__builtin_memcpy(ctx->backend, backend->address, 16);
	ctx->backend_port = backend->port;
	ctx->backend_state = backend->state;
	ctx->backend_flags = backend->flags;
	return 0;
}
