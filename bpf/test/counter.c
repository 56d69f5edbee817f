// SPDX-License-Identifier: Apache-2.0
/* A test program for the binding: counts packets per CPU, stamps the first byte of the frame with
 * a load-time constant, and returns the verdict chosen at load time. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u32 verdict = 2; /* XDP_PASS unless set before load */
const volatile __u8 stamp = 0xab;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} packets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} small SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

struct event {
	__u32 len;   /* packet length */
	__u32 first; /* first byte before stamping */
};

SEC("xdp")
int count_and_stamp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&packets, &zero);

	struct event *e;

	if (n)
		*n += 1;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (e) {
		e->len = end - data;
		e->first = data + 1 <= end ? *(__u8 *)data : 0;
		bpf_ringbuf_submit(e, 0);
	}
	if (data + 1 <= end)
		*(__u8 *)data = stamp;
	return verdict;
}

SEC("cgroup/connect4")
int allow_connect4(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("tc")
int tc_pass(struct __sk_buff *skb)
{
	return 0; /* TC_ACT_OK */
}
