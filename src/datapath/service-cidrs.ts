// The service CIDRs the socket layer refuses in (ferry_service_cidrs_v1, an LPM trie keyed like the
// rest of the datapath by a 16-byte address, IPv4 as ::ffff:a.b.c.d/96+len). A connect() or
// sendmsg() to an address in them that no frontend matches fails with ECONNREFUSED at once, so an
// unallocated or deleted VIP, or a live VIP on a port it does not serve, never hangs a client.
import { InvalidArgumentError } from '../common/errors.ts';
import { formatCidr, parseCidr, type Cidr } from '../common/ip.ts';
import type { MapLike } from './codec/map.ts';

export const SERVICE_CIDRS_MAP = 'ferry_service_cidrs_v1';
/** FERRY_SERVICE_CIDRS_MAX in bpf/lib/sock_maps.h. */
export const SERVICE_CIDRS_MAX = 64;
const KEY_SIZE = 20;

/**
 * `--service-cidrs`: a comma list of CIDRs, at most one per family (as kube-apiserver's
 * --service-cluster-ip-range). Returns them canonical (host bits cleared); `flag` names the error.
 */
export function parseServiceCidrList(value: string, flag = '--service-cidrs'): string[] {
  const items = value.split(',').map((v) => v.trim()).filter(Boolean);
  if (items.length === 0) throw new InvalidArgumentError(`${flag}: "${value}" names no CIDR`);
  const seen = new Map<number, string>();
  const out: string[] = [];
  for (const item of items) {
    const cidr = parseCidr(item);
    if (!cidr) throw new InvalidArgumentError(`${flag}: "${item}" is not a CIDR`);
    const family = cidr.address.family;
    const other = seen.get(family);
    if (other !== undefined) throw new InvalidArgumentError(`${flag}: "${other}" and "${item}" are both IPv${family}; give at most one CIDR per family`);
    seen.set(family, item);
    out.push(formatCidr(cidr));
  }
  return out;
}

/** The LPM key of one CIDR: prefix length (host order, as the C struct) then the 16-byte address. */
export function encodeCidrKey(cidr: Cidr): Buffer {
  const key = Buffer.alloc(KEY_SIZE);
  key.writeUInt32LE(cidr.prefix + (cidr.address.family === 4 ? 96 : 0), 0);
  key.set(cidr.address.bytes, 4);
  return key;
}

/**
 * Makes the map hold exactly `cidrs` (none = refuse nothing). New entries go in before stale ones
 * go out, so a change of ranges never opens a moment in which a covered address is not refused.
 */
export function writeServiceCidrs(map: MapLike, cidrs: readonly string[]): void {
  const wanted = new Map<string, Buffer>();
  for (const text of cidrs) {
    const cidr = parseCidr(text);
    if (!cidr) throw new InvalidArgumentError(`service CIDR "${text}" is not a CIDR`);
    const key = encodeCidrKey(cidr);
    wanted.set(key.toString('hex'), key);
  }
  if (wanted.size > SERVICE_CIDRS_MAX)
    throw new InvalidArgumentError(`${wanted.size} service CIDRs: ${SERVICE_CIDRS_MAP} holds at most ${SERVICE_CIDRS_MAX}`);
  for (const key of wanted.values()) map.update(key, Buffer.from([1]));
  const stale = [...map.entries()].map(([k]) => k).filter((k) => !wanted.has(k.toString('hex')));
  for (const key of stale) map.delete(key);
}
