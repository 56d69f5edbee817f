/* SPDX-License-Identifier: Apache-2.0 */
/* Reading and writing a cgroup sock_addr context: the destination as a 16-byte address for both
 * families, the socket's protocol, the calling task's network namespace and the client's source.
 * The errno values and the syscall verdicts the hooks return live here too.
 */
#pragma once

#include "lb.h"
#include "events.h"

#define EPERM 1
#define ECONNREFUSED 111
#define EHOSTUNREACH 113
#define EADDRINUSE 98

#define SYS_REJECT 0
#define SYS_PROCEED 1

/* The destination of a sock_addr context as 16 bytes. */
static __always_inline void sock_dst(struct bpf_sock_addr *ctx, int v6, __u8 out[16])
{
	if (v6) {
		__u32 w[4];

		/* 4-byte loads: the verifier only allows word access to user_ip6. */
		w[0] = ctx->user_ip6[0];
		w[1] = ctx->user_ip6[1];
		w[2] = ctx->user_ip6[2];
		w[3] = ctx->user_ip6[3];
		__builtin_memcpy(out, w, 16);
	} else {
		lb_v4_mapped(out, ctx->user_ip4);
	}
}

static __always_inline void sock_set_dst(struct bpf_sock_addr *ctx, int v6, const __u8 a[16], __be16 port)
{
	__u32 w[4];

	__builtin_memcpy(w, a, 16);
	if (v6) {
		ctx->user_ip6[0] = w[0];
		ctx->user_ip6[1] = w[1];
		ctx->user_ip6[2] = w[2];
		ctx->user_ip6[3] = w[3];
	} else {
		ctx->user_ip4 = w[3];
	}
	ctx->user_port = (__u32)port;
}

static __always_inline __u8 sock_protocol(struct bpf_sock_addr *ctx)
{
	/* connect() on a SOCK_STREAM socket may carry protocol 0 on some paths: go by the type. */
	return ctx->type == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP;
}

/* The network-namespace inode of the calling task: what the agent can map to a pod (it stats the
 * netns path the CNI recorded). CO-RE walk of a trusted task pointer; a task without an nsproxy
 * (exiting) reads as 0 through the verifier's fault-safe load. */
static __always_inline __u32 sock_netns_inum(void)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct nsproxy *nsproxy = task->nsproxy;

	if (!nsproxy)
		return 0;
	return nsproxy->net_ns->ns.inum;
}

/* The client's source, as far as the socket layer knows it before a packet exists: an explicit
 * sendmsg source (IP_PKTINFO) first, else whatever the socket is bound to (often nothing yet). */
static __always_inline void sock_event_src(struct bpf_sock_addr *ctx, int v6, __u8 origin, struct ferry_event *ev)
{
	struct bpf_sock *sk = ctx->sk;
	__u32 w[4];

	if (origin == FERRY_ORIGIN_SENDMSG) {
		if (v6) {
			w[0] = ctx->msg_src_ip6[0];
			w[1] = ctx->msg_src_ip6[1];
			w[2] = ctx->msg_src_ip6[2];
			w[3] = ctx->msg_src_ip6[3];
			if (w[0] | w[1] | w[2] | w[3]) {
				__builtin_memcpy(ev->src, w, 16);
				goto port;
			}
		} else if (ctx->msg_src_ip4) {
			lb_v4_mapped(ev->src, ctx->msg_src_ip4);
			goto port;
		}
	}
	if (!sk)
		return;
	if (v6) {
		w[0] = sk->src_ip6[0];
		w[1] = sk->src_ip6[1];
		w[2] = sk->src_ip6[2];
		w[3] = sk->src_ip6[3];
		if (w[0] | w[1] | w[2] | w[3])
			__builtin_memcpy(ev->src, w, 16);
	} else if (sk->src_ip4) {
		lb_v4_mapped(ev->src, sk->src_ip4);
	}
port:
	if (sk)
		ev->src_port = bpf_htons((__u16)sk->src_port); /* bpf_sock keeps it in host order */
}
