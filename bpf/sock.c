// SPDX-License-Identifier: Apache-2.0
/* Entry points of the socket-layer load balancer (cgroup sock_addr hooks). Logic: lib/sock_lb.h. */
#include "lib/sock_lb.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("cgroup/connect4")
int ferry_connect4(struct bpf_sock_addr *ctx) { return sock_xlate_fwd(ctx, 0, FERRY_ORIGIN_CONNECT); }

SEC("cgroup/connect6")
int ferry_connect6(struct bpf_sock_addr *ctx) { return sock_xlate_fwd(ctx, 1, FERRY_ORIGIN_CONNECT); }

SEC("cgroup/sendmsg4")
int ferry_sendmsg4(struct bpf_sock_addr *ctx) { return sock_xlate_fwd(ctx, 0, FERRY_ORIGIN_SENDMSG); }

SEC("cgroup/sendmsg6")
int ferry_sendmsg6(struct bpf_sock_addr *ctx) { return sock_xlate_fwd(ctx, 1, FERRY_ORIGIN_SENDMSG); }

SEC("cgroup/recvmsg4")
int ferry_recvmsg4(struct bpf_sock_addr *ctx) { return sock_xlate_rev(ctx, 0); }

SEC("cgroup/recvmsg6")
int ferry_recvmsg6(struct bpf_sock_addr *ctx) { return sock_xlate_rev(ctx, 1); }

SEC("cgroup/getpeername4")
int ferry_getpeername4(struct bpf_sock_addr *ctx) { return sock_xlate_rev(ctx, 0); }

SEC("cgroup/getpeername6")
int ferry_getpeername6(struct bpf_sock_addr *ctx) { return sock_xlate_rev(ctx, 1); }

SEC("cgroup/bind4")
int ferry_bind4(struct bpf_sock_addr *ctx) { return sock_bind_check(ctx, 0); }

SEC("cgroup/bind6")
int ferry_bind6(struct bpf_sock_addr *ctx) { return sock_bind_check(ctx, 1); }
