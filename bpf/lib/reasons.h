/* SPDX-License-Identifier: Apache-2.0 */
/* The datapath's ABI of outcomes, in one place: the verdict and the reason of every decision
 * (carried by flow events and the explain programs), and the slots of the per-program counter
 * maps. Each enum is typed into a map key or a context struct, so it reaches the objects' BTF;
 * test/kernel/observe/reasons.test.ts checks src/datapath/events/reasons.ts against that BTF, so
 * the TypeScript names cannot drift. Append only: pinned maps outlive an upgrade.
 *
 * The verdict and reason are one byte in every record (fixed underlying type).
 */
#pragma once

#include "vmlinux.h"

/* Hubble's words where they fit. */
enum ferry_verdict : __u8 {
	FERRY_VERDICT_TRANSLATED = 1, /* socket layer: the destination was rewritten to a backend */
	FERRY_VERDICT_FORWARDED = 2,  /* packet path: translated (or reverse-translated) and passed on */
	FERRY_VERDICT_DROPPED = 3,    /* silently discarded (or, at the socket layer, failed with an errno) */
	FERRY_VERDICT_REJECTED = 4,   /* refused actively: ECONNREFUSED, TCP RST, ICMP port unreachable */
};

/* Why: 0 for an ordinary translation/forward; otherwise the drop or reject reason. */
enum ferry_reason : __u8 {
	FERRY_REASON_NONE = 0,
	FERRY_REASON_NO_BACKEND = 1,         /* the service has no endpoints at all */
	FERRY_REASON_NO_LOCAL_BACKEND = 2,   /* iTP/eTP Local and no backend on this node */
	FERRY_REASON_SOURCE_RANGE = 3,       /* client outside loadBalancerSourceRanges */
	FERRY_REASON_CT_FULL = 4,            /* conntrack entry could not be created */
	FERRY_REASON_NAT_PORTS_EXHAUSTED = 5,/* no free SNAT port */
	FERRY_REASON_MALFORMED = 6,          /* packet too short or a rewrite helper failed */
	FERRY_REASON_MISSED_TAIL_CALL = 7,   /* a tail call to a stage program failed */
	FERRY_REASON_BACKEND_MISSING = 8,    /* a slot named a backend that is gone (a race, or a bug) */
	FERRY_REASON_FAMILY_MISMATCH = 9,    /* an IPv4 socket and an IPv6-only backend */
	FERRY_REASON_NODEPORT_RESERVED = 10, /* bind() to a port NodePorts own on this node */
	FERRY_REASON_NO_SERVICE = 11,        /* in a service CIDR, but no Service serves that address, port and protocol */
	FERRY_REASON_MAX,
};

/* Slots of ferry_sock_counters_v2 (SOCK_REASONS in src/datapath/events/reasons.ts). */
enum sock_reason {
	SOCK_TRANSLATED = 0,      /* frontend rewritten to a backend */
	SOCK_REJECT_NO_BACKEND,   /* the service has no endpoints: ECONNREFUSED */
	SOCK_DROP_POLICY,         /* iTP/eTP Local left no backend here: EHOSTUNREACH */
	SOCK_DROP_MISSING_BACKEND,/* a slot pointed at a backend that is gone (should not happen) */
	SOCK_AFFINITY_HIT,        /* sessionAffinity reused the previous backend */
	SOCK_REVNAT,              /* recvmsg/getpeername showed the frontend back */
	SOCK_BIND_REFUSED,        /* a bind to an allocated NodePort was refused */
	SOCK_REVNAT_UPDATE_FAIL,  /* the reverse entry could not be written (LRU under pressure) */
	SOCK_DROP_FAMILY_MISMATCH,/* an IPv4 socket and an IPv6-only backend: EHOSTUNREACH */
	SOCK_REJECT_NO_SERVICE,   /* in a service CIDR but no frontend (unallocated VIP, wrong port): ECONNREFUSED */
	SOCK_REASON_MAX,
};

/* The counter map's size: room to append reasons without resizing a pinned map again. */
#define SOCK_COUNTER_SLOTS 16
_Static_assert(SOCK_REASON_MAX <= SOCK_COUNTER_SLOTS, "ferry_sock_counters_v2 is full");

/* Slots of ferry_np_stats_v1 (NP_STAT_NAMES in src/datapath/events/reasons.ts). */
enum np_stat {
	NP_STAT_PASS = 0,                       /* not ours: handed to the stack untouched */
	NP_STAT_DNAT = 1,                       /* new flow translated to a backend */
	NP_STAT_CT_HIT = 2,                     /* packet of a known flow translated */
	NP_STAT_REVNAT = 3,                     /* reply translated back to the frontend */
	NP_STAT_CT_NEW = 4,                     /* conntrack entries created */
	NP_STAT_CT_EXPIRED = 5,                 /* entries found expired on lookup (and replaced) */
	NP_STAT_SNAT = 6,                       /* new flows given a SNAT port */
	NP_STAT_ICMP_XLATE = 7,                 /* ICMP errors about a translated flow, translated */
	NP_STAT_REJECT_TCP = 8,                 /* TCP RST answered for a service without endpoints */
	NP_STAT_REJECT_UDP = 9,                 /* ICMP port unreachable answered for a service without endpoints */
	NP_STAT_DROP_NO_LOCAL_BACKEND = 10,     /* eTP=Local and no local backend (action drop) */
	NP_STAT_DROP_SOURCE_RANGE = 11,         /* client outside loadBalancerSourceRanges */
	NP_STAT_DROP_SNAT_PORTS_EXHAUSTED = 12, /* no free SNAT port after the allowed attempts */
	NP_STAT_DROP_NO_BACKEND = 13,           /* a slot or backend entry vanished between lookups */
	NP_STAT_DROP_MISSED_TAIL_CALL = 14,     /* tail call to a stage program failed */
	NP_STAT_DROP_ERROR = 15,                /* a helper failed while rewriting (packet too short …) */
	NP_STAT_CT_CREATE_FAIL = 16,            /* conntrack insert failed */
	NP_STAT_REDIRECT = 17,                  /* forwarded by FIB lookup + redirect instead of the stack */
	NP_STAT_DSR = 18,                       /* packets sent to a remote backend with the DSR option */
	NP_STAT_DSR_BACKEND = 19,               /* DSR packets received for a local backend (option stripped) */
	NP_STAT_MAX = 24,
};

/* Slots of ferry_events_counters_v1 (EVENT_COUNTERS in src/datapath/events/codec.ts). */
enum ferry_ev_counter {
	FERRY_EV_EMITTED = 0,
	FERRY_EV_LOST_RING_FULL = 1,  /* bpf_ringbuf_reserve failed: the agent is not keeping up */
	FERRY_EV_RATE_LIMITED = 2,    /* the per-CPU token bucket was empty */
	FERRY_EV_SAMPLED_OUT = 3,     /* skipped by 1-in-N sampling (by design, not a loss) */
	FERRY_EV_FILTERED = 4,        /* the verdict is switched off in the config */
	FERRY_EV_COUNTER_MAX = 8,
};
