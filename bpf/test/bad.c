// SPDX-License-Identifier: Apache-2.0
/* Compiles cleanly but must be rejected by the verifier: it reads packet bytes without a bounds
 * check. The binding test expects the verifier's words in the load error. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("xdp")
int unchecked_read(struct xdp_md *ctx)
{
	__u8 *data = (__u8 *)(long)ctx->data;

	return data[64] == 1 ? 1 : 2;
}
