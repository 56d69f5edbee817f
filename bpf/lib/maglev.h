/* SPDX-License-Identifier: Apache-2.0 */
/* Maglev lookup: a table of NP_MAGLEV_M backend ids per service id, computed in TypeScript
 * (src/datapath/maglev.ts) from the backends' addresses with the Maglev paper's permutation, so
 * every node holds the same table up to its own id numbering and picks the same backend for a
 * flow. The flow hash leaves out the destination address: a NodePort flow reaches different
 * node addresses but must land on one backend. */
#pragma once

#include "ct.h"

#define NP_MAGLEV_M 1021 /* prime; mirrored by MAGLEV_M in maglev.ts */

/* Value of ferry_np_maglev_v1: backend id per table position; 0 = empty. */
struct np_maglev_table {
	__u32 ids[NP_MAGLEV_M];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32); /* service id */
	__type(value, struct np_maglev_table);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_np_maglev_v1 SEC(".maps");

static __always_inline __u32 rol32(__u32 w, __u32 s) { return (w << s) | (w >> (32 - s)); }

/* Bob Jenkins' final mix over a few words; mirrored by flowHash() in maglev.ts. */
static __always_inline __u32 maglev_flow_hash(const struct np_tuple *t)
{
	__u32 a = 0xdeadbeef + t->src.w[0], b = 0xdeadbeef + t->src.w[1], c = 0xdeadbeef + t->src.w[2];

	c ^= b; c -= rol32(b, 14);
	a ^= c; a -= rol32(c, 11);
	b ^= a; b -= rol32(a, 25);
	a += t->src.w[3];
	b += ((__u32)t->sport << 16) | t->dport;
	c += t->proto;
	c ^= b; c -= rol32(b, 14);
	a ^= c; a -= rol32(c, 11);
	b ^= a; b -= rol32(a, 25);
	c ^= b; c -= rol32(b, 16);
	a ^= c; a -= rol32(c, 4);
	b ^= a; b -= rol32(a, 14);
	c ^= b; c -= rol32(b, 24);
	return c;
}

/* Backend id for the flow, or 0 when the service has no table. */
static __always_inline __u32 maglev_pick(__u32 service_id, const struct np_tuple *t)
{
	struct np_maglev_table *tab = bpf_map_lookup_elem(&ferry_np_maglev_v1, &service_id);
	__u32 idx;

	if (!tab)
		return 0;
	idx = maglev_flow_hash(t) % NP_MAGLEV_M;
	/* The verifier does not track bounds through a modulo and clang drops the check it
	 * can prove redundant, so hide idx from the optimiser first. */
	asm volatile("" : "+r"(idx));
	if (idx >= NP_MAGLEV_M)
		return 0;
	return tab->ids[idx];
}
