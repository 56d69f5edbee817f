/* SPDX-License-Identifier: Apache-2.0 */
/* North-south counters: one per-CPU slot per event or drop reason. The numbering is ABI with
 * src/datapath/nodeport/maps.ts (NP_STAT_NAMES); append only. */
#pragma once

#include "ctx.h"
#include "counters.h"

enum np_stat {
	NP_STAT_PASS = 0,          /* not ours: handed to the stack untouched */
	NP_STAT_DNAT = 1,          /* new flow translated to a backend */
	NP_STAT_CT_HIT = 2,        /* packet of a known flow translated */
	NP_STAT_REVNAT = 3,        /* reply translated back to the frontend */
	NP_STAT_CT_NEW = 4,        /* conntrack entries created */
	NP_STAT_CT_EXPIRED = 5,    /* entries found expired on lookup (and replaced) */
	NP_STAT_SNAT = 6,          /* new flows given a SNAT port */
	NP_STAT_ICMP_XLATE = 7,    /* ICMP errors about a translated flow, translated */
	NP_STAT_REJECT_TCP = 8,    /* TCP RST answered for a service without endpoints */
	NP_STAT_REJECT_UDP = 9,    /* ICMP port unreachable answered for a service without endpoints */
	NP_STAT_DROP_NO_LOCAL = 10,    /* eTP=Local and no local backend (action drop) */
	NP_STAT_DROP_SRC_RANGE = 11,   /* client outside loadBalancerSourceRanges */
	NP_STAT_DROP_SNAT_PORTS = 12,  /* no free SNAT port after the allowed attempts */
	NP_STAT_DROP_NO_BACKEND = 13,  /* a slot or backend entry vanished between lookups */
	NP_STAT_DROP_MISSED_TAIL = 14, /* tail call to a stage program failed */
	NP_STAT_DROP_ERROR = 15,       /* a helper failed while rewriting (packet too short …) */
	NP_STAT_CT_CREATE_FAIL = 16,   /* conntrack insert failed */
	NP_STAT_REDIRECT = 17,     /* forwarded by FIB lookup + redirect instead of the stack */
	NP_STAT_DSR = 18,          /* packets sent to a remote backend with the DSR option */
	NP_STAT_DSR_BACKEND = 19,  /* DSR packets received for a local backend (option stripped) */
	NP_STAT_MAX = 24,
};

FERRY_COUNTER_MAP(ferry_np_stats_v1, NP_STAT_MAX); /* packets */

static __always_inline void np_count(enum np_stat s)
{
	counter_inc(&ferry_np_stats_v1, s);
}
