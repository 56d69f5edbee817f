// The address and port ranges the standalone "API server" allocates from, laid out the way
// upstream's allocators lay them out: a Service CIDR loses its network address (and for IPv4 its
// broadcast address), its first usable address is the `kubernetes` Service's, and dynamic picks
// prefer the upper part of a range so the lower part stays free for users who choose their own
// (KEP-3070 for ClusterIPs, KEP-3668 for NodePorts).
import { InvalidArgumentError } from '../../common/errors.ts';
import { formatIp, parseCidr, parseIp, cidrContains, type Cidr, type Family } from '../../common/ip.ts';

export const DEFAULT_SERVICE_CIDRS: readonly string[] = ['10.96.0.0/16', 'fd00:10:96::/108'];
export const DEFAULT_NODE_PORT_RANGE: PortRange = { first: 30000, last: 32767 };

export interface PortRange {
  readonly first: number;
  readonly last: number;
}

/** `min(max(lower, size / step), upper)`, 0 for tiny ranges: upstream's static-band size. */
function bandOffset(size: number, lower: number, upper: number, step: number): number {
  if (size <= lower) return 0;
  return Math.min(Math.max(lower, Math.floor(size / step)), upper);
}

function toBig(bytes: Uint8Array): bigint {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}

function fromBig(n: bigint): Uint8Array {
  const out = new Uint8Array(16);
  for (let i = 15; i >= 0; i--) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

/** One Service CIDR. Index i names the address network + 1 + i, as upstream's bitmap does. */
export class ServiceIpRange {
  readonly cidr: Cidr;
  readonly family: Family;
  readonly text: string;
  /** Number of indexes: the CIDR minus the network (and IPv4 broadcast) address. */
  readonly size: number;
  /** Dynamic allocation starts here; below is the band kept for user-chosen addresses. */
  readonly dynamicStart: number;
  readonly #base: bigint;

  constructor(text: string) {
    const cidr = parseCidr(text);
    if (!cidr) throw new InvalidArgumentError(`service CIDR ${JSON.stringify(text)}: not a CIDR`);
    const hostBits = (cidr.address.family === 4 ? 32 : 128) - cidr.prefix;
    // Upstream refuses IPv6 service ranges wider than /108 for the same reason: a bitmap of 2^20.
    if (hostBits > 20 || hostBits < 2)
      throw new InvalidArgumentError(`service CIDR ${text}: prefix must leave 2..20 host bits`);
    this.cidr = cidr;
    this.family = cidr.address.family;
    this.text = text;
    const total = 2 ** hostBits;
    this.size = total - (this.family === 4 ? 2 : 1);
    this.dynamicStart = bandOffset(total, 16, 256, 16);
    this.#base = toBig(cidr.address.bytes) + 1n;
  }

  /** The address upstream gives the `kubernetes` Service; never handed out here. */
  get reservedIndex(): number {
    return 0;
  }

  addressAt(index: number): string {
    return formatIp({ family: this.family, bytes: fromBig(this.#base + BigInt(index)) });
  }

  /** The index of an address, or undefined when it is outside the allocatable part of the range. */
  indexOf(text: string): number | undefined {
    const ip = parseIp(text);
    if (!ip || !cidrContains(this.cidr, ip)) return undefined;
    const index = Number(toBig(ip.bytes) - this.#base);
    return index >= 0 && index < this.size ? index : undefined;
  }
}

export function nodePortBandOffset(range: PortRange): number {
  return bandOffset(range.last - range.first + 1, 16, 128, 32);
}

/** Parses `30000-32767`. */
export function parsePortRange(text: string): PortRange {
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(text.trim());
  const first = m ? Number(m[1]) : NaN;
  const last = m ? Number(m[2]) : NaN;
  if (!m || first < 1 || last > 65535 || first > last)
    throw new InvalidArgumentError(
      `node port range ${JSON.stringify(text)}: expected FIRST-LAST within 1-65535`,
    );
  return { first, last };
}

/** Checks the configured Service CIDRs: one or two, at most one per family. */
export function parseServiceCidrs(texts: readonly string[]): ServiceIpRange[] {
  const ranges = texts.map((t) => new ServiceIpRange(t));
  if (
    ranges.length < 1 ||
    ranges.length > 2 ||
    (ranges.length === 2 && ranges[0]!.family === ranges[1]!.family)
  )
    throw new InvalidArgumentError(`service CIDRs ${texts.join(',')}: expected one, or one per family`);
  return ranges;
}
