/* SPDX-License-Identifier: Apache-2.0 */
/* Flow and drop events for `ferry observe`: one ring buffer shared by every Ferry program (pinned
 * by name, so the socket, tc and XDP objects all write into the same one), with a per-CPU token
 * bucket and 1-in-N sampling so that a flood of new flows cannot turn into a flood of events that
 * starves the datapath. Every event that is not delivered is counted by why, never hidden.
 *
 * Usage at a decision point:
 *     struct ferry_event *ev = ferry_ev_begin(FERRY_ORIGIN_CONNECT, FERRY_VERDICT_TRANSLATED, 0);
 *     if (ev) { ...fill the fields that are known...; ferry_ev_submit(ev); }
 * ferry_ev_begin returns NULL when the event is not wanted (disabled, sampled out, rate limited)
 * or the ring is full; the caller just carries on. Per-reason counters are kept separately by each
 * program and do not depend on events.
 *
 * The layout is ABI with src/datapath/events/codec.ts (its decoder mirrors it field by field);
 * append only, and bump the map's version suffix when a field moves. Verdicts, reasons and the
 * counter slots are in reasons.h.
 */
#pragma once

#include "lb.h"
#include "counters.h"
#include "reasons.h"

#ifndef FERRY_EVENTS_RING_BYTES
#define FERRY_EVENTS_RING_BYTES (4 << 20) /* power of two, page multiple; the agent may resize at load */
#endif

/* Which hook saw the flow. */
enum ferry_origin {
	FERRY_ORIGIN_UNKNOWN = 0,
	FERRY_ORIGIN_CONNECT = 1,    /* cgroup connect4/6 */
	FERRY_ORIGIN_SENDMSG = 2,    /* cgroup sendmsg4/6 (unconnected UDP) */
	FERRY_ORIGIN_BIND = 3,       /* cgroup bind4/6 */
	FERRY_ORIGIN_TC_INGRESS = 4, /* tc ingress on an external interface */
	FERRY_ORIGIN_TC_EGRESS = 5,  /* tc egress on an external interface */
	FERRY_ORIGIN_XDP = 6,        /* XDP on an external interface */
};

enum ferry_ct_state {
	FERRY_CT_NONE = 0,
	FERRY_CT_NEW = 1,
	FERRY_CT_ESTABLISHED = 2,
	FERRY_CT_REPLY = 3,
};

#define FERRY_NAT_DNAT 0x1   /* destination rewritten to the backend */
#define FERRY_NAT_SNAT 0x2   /* source rewritten to the node address */
#define FERRY_NAT_REVNAT 0x4 /* a reply rewritten back to the frontend */
#define FERRY_NAT_DSR 0x8    /* dispatched to the backend's node for direct server return */
#define FERRY_EV_F_AFFINITY 0x10 /* the backend came from sessionAffinity */
#define FERRY_EV_F_MAGLEV 0x20   /* the backend came from the Maglev table */

/* 112 bytes. Addresses are 16 bytes, IPv4 as ::ffff:a.b.c.d; ports are network order. */
struct ferry_event {
	__u64 ts_ns;          /* bpf_ktime_get_boot_ns */
	__u64 sock_cookie;    /* socket layer: bpf_get_socket_cookie; packet path: 0 */
	__u64 cgroup_id;      /* socket layer: the caller's cgroup v2 id; packet path: 0 */
	__u64 netns_cookie;   /* socket layer: bpf_get_netns_cookie of the caller; packet path: 0 */
	__u8 src[16];         /* client address when known (packet path always; sendmsg when bound) */
	__u8 dst[16];         /* original destination: the frontend */
	__u8 xlated[16];      /* backend address after translation; zero when none was picked */
	__be16 src_port;
	__be16 dst_port;
	__be16 xlated_port;
	__u8 protocol;        /* IPPROTO_* */
	__u8 origin;          /* enum ferry_origin */
	__u8 verdict;         /* enum ferry_verdict (reasons.h) */
	__u8 reason;          /* enum ferry_reason (reasons.h) */
	__u8 ct_state;        /* enum ferry_ct_state */
	__u8 flags;           /* FERRY_NAT_* | FERRY_EV_F_* */
	__u32 service_id;     /* frontend id (keys ferry_revnat_v1); 0 when not a service */
	__u32 backend_id;     /* 0 when none was picked */
	__u32 ifindex;        /* packet path: the interface; socket layer: 0 */
	__u32 netns_inum;     /* socket layer: inode number of the caller's network namespace, 0 if unknown */
	__u32 pad;
};

_Static_assert(sizeof(struct ferry_event) == 112, "ferry_event is ABI with src/datapath/events");

#define FERRY_EV_CFG_SET 0x1 /* the agent wrote this entry; otherwise the compiled defaults apply */

/* ferry_events_config_v1[0], written by the agent. */
struct ferry_events_config {
	__u32 flags;          /* FERRY_EV_CFG_SET */
	__u32 verdict_mask;   /* bit (1 << verdict): which verdicts produce events at all */
	__u32 sample_every;   /* 1 = every translation/forward; N = one in N (drops are never sampled) */
	__u32 rate_per_sec;   /* per-CPU token rate; 0 = unlimited */
	__u32 burst;          /* per-CPU bucket size */
	__u32 pad;
};

#define FERRY_EV_DEFAULT_RATE 20000
#define FERRY_EV_DEFAULT_BURST 20000

struct ferry_events_bucket {
	__u64 last_ns;
	__u64 tokens;
	__u64 seq; /* for 1-in-N sampling */
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, FERRY_EVENTS_RING_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_events_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ferry_events_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_events_config_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ferry_events_bucket);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ferry_events_bucket_v1 SEC(".maps");

FERRY_COUNTER_MAP(ferry_events_counters_v1, enum ferry_ev_counter, FERRY_EV_COUNTER_MAX);

static __always_inline void ferry_ev_count(enum ferry_ev_counter c)
{
	counter_inc(&ferry_events_counters_v1, c);
}

/* Token bucket and sampling. Returns 1 when this event may be emitted. */
static __always_inline int ferry_ev_admit(__u8 verdict)
{
	__u32 zero = 0;
	struct ferry_events_config *cfg = bpf_map_lookup_elem(&ferry_events_config_v1, &zero);
	struct ferry_events_bucket *b = bpf_map_lookup_elem(&ferry_events_bucket_v1, &zero);
	__u32 mask = 0xffffffff, sample = 1, rate = FERRY_EV_DEFAULT_RATE, burst = FERRY_EV_DEFAULT_BURST;
	__u64 now, elapsed, secs, add;

	if (!b)
		return 0;
	if (cfg && (cfg->flags & FERRY_EV_CFG_SET)) {
		mask = cfg->verdict_mask;
		sample = cfg->sample_every ? cfg->sample_every : 1;
		rate = cfg->rate_per_sec;
		burst = cfg->burst ? cfg->burst : 1;
	}
	if (!(mask & (1U << (verdict & 31)))) {
		ferry_ev_count(FERRY_EV_FILTERED);
		return 0;
	}
	/* Drops and rejects are what users hunt for: sample only the successful translations. */
	if (sample > 1 && (verdict == FERRY_VERDICT_TRANSLATED || verdict == FERRY_VERDICT_FORWARDED)) {
		b->seq += 1;
		if (b->seq % sample) {
			ferry_ev_count(FERRY_EV_SAMPLED_OUT);
			return 0;
		}
	}
	if (!rate)
		return 1;
	now = bpf_ktime_get_boot_ns();
	/* Whole seconds and the rest apart: elapsed * rate overflows 64 bits after a long idle (or on
	 * the first event, last_ns == 0, once the machine has been up ~10 days at the default rate). */
	elapsed = now - b->last_ns;
	secs = elapsed / 1000000000ULL;
	if (secs > burst / rate)
		add = burst;
	else
		add = secs * rate + (elapsed % 1000000000ULL) * rate / 1000000000ULL;
	if (add) {
		b->tokens += add;
		if (b->tokens > burst)
			b->tokens = burst;
		b->last_ns = now;
	}
	if (!b->tokens) {
		ferry_ev_count(FERRY_EV_RATE_LIMITED);
		return 0;
	}
	b->tokens -= 1;
	return 1;
}

static __always_inline struct ferry_event *ferry_ev_begin(__u8 origin, __u8 verdict, __u8 reason)
{
	struct ferry_event *ev;

	if (!ferry_ev_admit(verdict))
		return 0;
	ev = bpf_ringbuf_reserve(&ferry_events_v1, sizeof(*ev), 0);
	if (!ev) {
		ferry_ev_count(FERRY_EV_LOST_RING_FULL);
		return 0;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->ts_ns = bpf_ktime_get_boot_ns();
	ev->origin = origin;
	ev->verdict = verdict;
	ev->reason = reason;
	return ev;
}

/* Wake the reader only once a batch has piled up: the default (a wake-up whenever the reader has
 * caught up, i.e. per event when traffic is light) cost the socket layer ~10 % of a connect() on a
 * 2-core node. The agent also drains the ring on a short timer, so a lone event waits that long. */
#ifndef FERRY_EVENTS_WAKEUP_BYTES
#define FERRY_EVENTS_WAKEUP_BYTES (64 * sizeof(struct ferry_event))
#endif

/* A record in the ring: the 8-byte header, then the event rounded up to 8 bytes. */
#define FERRY_EVENT_RECORD_BYTES (8 + ((sizeof(struct ferry_event) + 7) & ~7UL))

static __always_inline void ferry_ev_submit(struct ferry_event *ev)
{
	/* Unconsumed bytes, this record included. Wake once, as the backlog crosses the batch size:
	 * waking on every event past it (while the reader is busy draining) cost a connect() ~6 µs. */
	__u64 pending = bpf_ringbuf_query(&ferry_events_v1, BPF_RB_AVAIL_DATA);
	int cross = pending >= FERRY_EVENTS_WAKEUP_BYTES &&
		    pending < FERRY_EVENTS_WAKEUP_BYTES + FERRY_EVENT_RECORD_BYTES;

	bpf_ringbuf_submit(ev, cross ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
	ferry_ev_count(FERRY_EV_EMITTED);
}
