/* SPDX-License-Identifier: Apache-2.0 */
/* One's-complement checksum arithmetic shared by NAT, reject and ICMP translation. Differences
 * come from bpf_csum_diff (available to tc and XDP alike); ctx.h applies them to the packet. */
#pragma once

#include "ctx.h"

static __always_inline __u16 csum_fold(__s64 sum)
{
	__u64 s = (__u64)sum;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

/* Difference for a 16-bit field (a port): bpf_csum_diff wants 4-byte multiples, and a 16-bit
 * word's position inside the 32-bit word does not matter to a one's-complement sum. */
static __always_inline __s64 csum_diff16(__be16 from, __be16 to)
{
	__u32 f = from, t = to;

	return bpf_csum_diff(&f, 4, &t, 4, 0);
}

static __always_inline __s64 csum_diff32(__be32 from, __be32 to)
{
	return bpf_csum_diff(&from, 4, &to, 4, 0);
}

static __always_inline __s64 csum_diff128(const void *from, const void *to)
{
	return bpf_csum_diff((__be32 *)from, 16, (__be32 *)to, 16, 0);
}

/* Full checksum of a buffer on the stack (len a multiple of 4), seeded. */
static __always_inline __s64 csum_partial(const void *buf, __u32 len, __s64 seed)
{
	return bpf_csum_diff(0, 0, (__be32 *)buf, len, (__u32)seed);
}
