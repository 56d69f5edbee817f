/* SPDX-License-Identifier: Apache-2.0 */
/* The socket layer's decision for a frontend: classify its master entry (reject, drop or pick),
 * then pick a backend, sticking to the one a client had when sessionAffinity asks for it. Shared
 * with `ferry explain` (bpf/explain.c), which runs it with commit = 0.
 */
#pragma once

#include "sock_maps.h"

/* How far sock_affinity_member() searches when the hint is stale (the set was re-sorted). Past it
 * a client of a very large service loses its stickiness after a change, never its correctness. */
#define SOCK_AFFINITY_SCAN_MAX 64

/* Is backend `id` still in the frontend's set? Backends are shared between services, so its mere
 * existence in ferry_backends_v1 says nothing: look in the frontend's own slots, at the hint first.
 * Returns the slot, or 0. */
static __always_inline __u16 sock_affinity_member(struct lb_service_key *key, const struct lb_service *master,
						   __u32 id, __u16 hint)
{
	struct lb_service *entry;
	__u16 slot;

	if (hint && hint <= master->count) {
		key->slot = hint;
		entry = bpf_map_lookup_elem(&ferry_services_v1, key);
		if (entry && entry->backend_id == id)
			return hint;
	}
	for (slot = 1; slot <= SOCK_AFFINITY_SCAN_MAX; slot++) {
		if (slot > master->count)
			break;
		key->slot = slot;
		entry = bpf_map_lookup_elem(&ferry_services_v1, key);
		if (entry && entry->backend_id == id)
			return slot;
	}
	return 0;
}

/* Picks a backend for the frontend `master` under `key`; returns it and its id, or 0. *flags gets
 * FERRY_EV_F_AFFINITY when sessionAffinity chose it. */
static __always_inline struct lb_backend *sock_pick(__u64 client, struct lb_service_key *key,
						     const struct lb_service *master, __u32 *id, __u8 *flags,
						     int commit)
{
	struct affinity_key akey = {};
	struct affinity *seen;
	struct lb_backend *backend;
	__u64 now = 0;
	__u16 slot;

	if (master->affinity_timeout) {
		akey.client = client;
		akey.service_id = master->service_id;
		now = bpf_ktime_get_boot_ns();
		seen = bpf_map_lookup_elem(&ferry_affinity_v1, &akey);
		if (seen && now - seen->last_used_ns < (__u64)master->affinity_timeout * 1000000000ULL) {
			*id = seen->backend_id;
			/* A backend that left the service (or vanished) falls through to a fresh pick. */
			slot = sock_affinity_member(key, master, *id, seen->slot);
			backend = slot ? bpf_map_lookup_elem(&ferry_backends_v1, id) : 0;
			if (backend) {
				/* `commit` is 0 for `ferry explain`: the question must not change the answer. */
				if (commit) {
					seen->last_used_ns = now;
					seen->slot = slot;
					sock_count(SOCK_AFFINITY_HIT);
				}
				*flags |= FERRY_EV_F_AFFINITY;
				return backend;
			}
		}
	}
	slot = (bpf_get_prandom_u32() % master->count) + 1;
	backend = lb_slot_backend(key, slot, id);
	if (backend && master->affinity_timeout && commit) {
		struct affinity fresh = { .last_used_ns = now, .backend_id = *id, .slot = slot };

		bpf_map_update_elem(&ferry_affinity_v1, &akey, &fresh, BPF_ANY);
	}
	return backend;
}

/* What a frontend's master entry says before any backend is picked: FERRY_VERDICT_REJECTED (no
 * endpoints: ECONNREFUSED), FERRY_VERDICT_DROPPED (a Local policy left none here: EHOSTUNREACH),
 * or 0 (pick a backend). Shared with `ferry explain` (bpf/explain.c). */
static __always_inline __u8 sock_classify(const struct lb_service *master)
{
	if ((master->flags & LB_SVC_F_REJECT) || (!(master->flags & LB_SVC_F_DROP) && master->count == 0))
		return FERRY_VERDICT_REJECTED;
	if ((master->flags & LB_SVC_F_DROP) || master->count == 0)
		return FERRY_VERDICT_DROPPED;
	return 0;
}
