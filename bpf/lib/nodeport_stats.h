/* SPDX-License-Identifier: Apache-2.0 */
/* North-south counters: one per-CPU slot per event or drop reason (enum np_stat, reasons.h). */
#pragma once

#include "ctx.h"
#include "counters.h"
#include "reasons.h"

FERRY_COUNTER_MAP(ferry_np_stats_v1, enum np_stat, NP_STAT_MAX); /* packets */

static __always_inline void np_count(enum np_stat s)
{
	counter_inc(&ferry_np_stats_v1, s);
}
