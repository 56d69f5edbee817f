// Load-time configuration of the N-S programs: the values of their const volatile globals
// (bpf/lib/nodeport_parse.h, ct.h, nat.h), as bytes ready for BpfObject.setConstant before load.
import { isIPv4, isIPv6 } from 'node:net';
import { InvalidArgumentError } from '../../common/errors.ts';
import { addr16 } from './maps.ts';

export const MAX_NODE_ADDRS = 4; // NP_MAX_NODE_ADDRS

export type XdpMode = 'off' | 'native' | 'generic';

export interface NodeportConfig {
  /** Addresses NodePort answers on (IPv4 and IPv6, up to 4 of each). */
  readonly nodeAddresses: readonly string[];
  /** Source address for SNAT towards remote backends, per family; defaults to the first node address. */
  readonly snatIpv4?: string;
  readonly snatIpv6?: string;
  readonly snatPortMin?: number;
  readonly snatPortMax?: number;
  readonly tcpTimeoutSeconds?: number;
  readonly tcpCloseTimeoutSeconds?: number;
  readonly udpTimeoutSeconds?: number;
  /**
   * How translated packets leave (cfg_fib_redirect): `stack` hands them all to the kernel;
   * `fib-reply` (default) sends reverse-translated replies straight out with bpf_fib_lookup +
   * redirect, since their new source is a node address the input path would drop as martian;
   * `fib` does so for every packet (fastest; skips netfilter).
   */
  readonly forwarding?: 'stack' | 'fib-reply' | 'fib';
  /**
   * How IPv4 flows reach a backend on another node (cfg_dsr): `snat` (default) rewrites the source
   * to this node so replies come back through it; `dsr` keeps the client address and adds an IPv4
   * option naming the frontend, so the backend's node answers the client directly.
   */
  readonly mode?: NodeportMode;
}

export type NodeportMode = 'snat' | 'dsr';

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
}

function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return b;
}

/** const volatile name → value bytes. */
export function nodeportConstants(c: NodeportConfig): Record<string, Buffer> {
  const v4 = c.nodeAddresses.filter((a) => isIPv4(a));
  const v6 = c.nodeAddresses.filter((a) => isIPv6(a));
  if (v4.length > MAX_NODE_ADDRS || v6.length > MAX_NODE_ADDRS)
    throw new InvalidArgumentError(`nodeport config: nodeAddresses: at most ${MAX_NODE_ADDRS} per family`);
  const min = c.snatPortMin ?? 61000;
  const max = c.snatPortMax ?? 65000;
  if (!(min >= 1024 && min <= max && max <= 65535))
    throw new InvalidArgumentError(`nodeport config: snatPortMin/snatPortMax: bad range ${min}-${max}`);
  const node4 = Buffer.alloc(4 * MAX_NODE_ADDRS);
  v4.forEach((a, i) => addr16(a).copy(node4, i * 4, 12));
  const node6 = Buffer.alloc(16 * MAX_NODE_ADDRS);
  v6.forEach((a, i) => addr16(a).copy(node6, i * 16));
  const snat4 = c.snatIpv4 ?? v4[0];
  const snat6 = c.snatIpv6 ?? v6[0];
  return {
    cfg_node_addr4: node4,
    cfg_node_addr6: node6,
    cfg_snat_addr4: snat4 ? addr16(snat4).subarray(12) : Buffer.alloc(4),
    cfg_snat_addr6: snat6 ? addr16(snat6) : Buffer.alloc(16),
    cfg_snat_port_min: u16(min),
    cfg_snat_port_max: u16(max),
    cfg_ct_tcp_timeout: u32(c.tcpTimeoutSeconds ?? 21600),
    cfg_ct_tcp_close_timeout: u32(c.tcpCloseTimeoutSeconds ?? 10),
    cfg_ct_udp_timeout: u32(c.udpTimeoutSeconds ?? 60),
    cfg_fib_redirect: Buffer.from([{ stack: 0, 'fib-reply': 1, fib: 2 }[c.forwarding ?? 'fib-reply']]),
    cfg_dsr: Buffer.from([c.mode === 'dsr' ? 1 : 0]),
  };
}
