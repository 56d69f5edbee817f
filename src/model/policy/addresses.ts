// One spelling per address, so that "fd00::1" and "fd00:0::1" are the same pod or node.
import { formatIp, parseIp } from '../../common/ip.ts';

export function canonicalAddress(text: string): string {
  const ip = parseIp(text);
  return ip ? formatIp(ip) : text;
}
