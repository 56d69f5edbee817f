/* SPDX-License-Identifier: Apache-2.0 */
/* The N-S pipeline as a list of stages, shared by the tc and XDP entry objects. The rarely
 * taken, stack-hungry stages (answers, ICMP translation) are separate programs reached by tail
 * call, which keeps the main program small for the verifier; a missed tail call is a counted
 * drop, never a silent pass. The entry object defines the stage programs it names below. */
#pragma once

#include "icmp.h"

#define NP_TAIL_REJECT 0
#define NP_TAIL_ICMP 1
#define NP_TAIL_MAX 2

int ferry_np_reject(ctx_t *ctx);
int ferry_np_icmp(ctx_t *ctx);

/* One per object (a tc object's stages are tc programs, an XDP object's XDP), named by the
 * entry file. Pinned: the kernel empties a prog array when its last user reference goes, so an
 * unpinned one would turn every tail call into a miss once the loader exits. */
#ifndef NP_CALLS
#error "the entry object names its tail-call map (NP_CALLS)"
#endif
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, NP_TAIL_MAX);
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, int(ctx_t *)); /* last: a flexible array */
} NP_CALLS SEC(".maps") = {
	.values = {
		[NP_TAIL_REJECT] = (void *)&ferry_np_reject,
		[NP_TAIL_ICMP] = (void *)&ferry_np_icmp,
	},
};

static __always_inline int np_tail(ctx_t *ctx, const struct np_pkt *p, __u32 slot)
{
	bpf_tail_call(ctx, &NP_CALLS, slot);
	return np_drop(ctx, p, NP_STAT_DROP_MISSED_TAIL_CALL, FERRY_REASON_MISSED_TAIL_CALL, 0);
}

#if defined(FERRY_CTX_XDP)
#define NP_ORIGIN_IN FERRY_ORIGIN_XDP
#else
#define NP_ORIGIN_IN FERRY_ORIGIN_TC_INGRESS
#endif

/* ICMP error stage (tail call target): translate or let the stack have it. */
static __always_inline int np_icmp_stage(ctx_t *ctx)
{
	struct np_pkt p;
	int rc = NP_CONTINUE;

	if (np_parse(ctx, &p))
		return CTX_PASS;
	if (!p.v6 && p.t.proto == IPPROTO_ICMP)
		rc = np_icmp4_xlate(ctx, &p, bpf_ktime_get_ns());
	else if (p.v6 && p.t.proto == IPPROTO_ICMPV6)
		rc = np_icmp6_xlate(ctx, &p, bpf_ktime_get_ns());
	return rc == NP_CONTINUE ? CTX_PASS : rc;
}

/* Traffic arriving on an external interface. */
static __always_inline int np_ingress(ctx_t *ctx)
{
	struct np_pkt p;
	int rc, reject = 0;
	__u64 now;

	if (np_parse(ctx, &p)) {
		np_count(NP_STAT_PASS);
		return CTX_PASS;
	}
	p.origin = NP_ORIGIN_IN;
	if (p.dsr) {
#if defined(FERRY_CTX_SKB)
		return np_stage_dsr_backend(ctx, &p, bpf_ktime_get_ns());
#else
		return CTX_PASS; /* tc strips the option */
#endif
	}
	if (np_is_icmp_error(&p))
		return np_tail(ctx, &p, NP_TAIL_ICMP);
	if (p.t.proto != IPPROTO_TCP && p.t.proto != IPPROTO_UDP) {
		np_count(NP_STAT_PASS);
		return CTX_PASS;
	}
	now = bpf_ktime_get_ns();
	rc = np_stage_reply(ctx, &p, now);
	if (rc != NP_CONTINUE)
		return rc;
	rc = np_stage_ct(ctx, &p, now);
	if (rc != NP_CONTINUE)
		return rc;
	rc = np_stage_service(ctx, &p, now, &reject);
	if (reject)
		return np_tail(ctx, &p, NP_TAIL_REJECT);
	if (rc != NP_CONTINUE)
		return rc;
	np_count(NP_STAT_PASS);
	return CTX_PASS;
}

/* Traffic leaving an external interface: replies of flows DNATed to a local backend. */
static __always_inline int np_egress(ctx_t *ctx)
{
	struct np_pkt p;
	int rc;

	if (np_parse(ctx, &p))
		return CTX_PASS;
	p.origin = FERRY_ORIGIN_TC_EGRESS;
	if (p.dsr)
		return CTX_PASS; /* forwarded towards the backend's node */
	if (np_is_icmp_error(&p))
		return np_tail(ctx, &p, NP_TAIL_ICMP);
	if (p.t.proto != IPPROTO_TCP && p.t.proto != IPPROTO_UDP)
		return CTX_PASS;
	rc = np_stage_reply(ctx, &p, bpf_ktime_get_ns());
	return rc == NP_CONTINUE ? CTX_PASS : rc;
}
