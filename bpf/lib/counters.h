/* SPDX-License-Identifier: Apache-2.0 */
/* Every counter map of Ferry has one shape: a per-CPU array of u64, one slot per reason, pinned
 * by name so the agent and the CLI read it while the programs run. The key is typed by the
 * reasons.h enum of its slots (4 bytes, as a u32), which puts the enum into the object's BTF. */
#pragma once

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define FERRY_COUNTER_MAP(map_name, slot_enum, slots)                                            \
	struct {                                                                                 \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);                                         \
		__uint(max_entries, slots);                                                      \
		__type(key, slot_enum);                                                          \
		__type(value, __u64);                                                            \
		__uint(pinning, LIBBPF_PIN_BY_NAME);                                             \
	} map_name SEC(".maps")

/* Per-CPU slot: no atomics needed. */
static __always_inline void counter_inc(void *map, __u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(map, &slot);

	if (v)
		*v += 1;
}
