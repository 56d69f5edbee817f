// The datapath's one address form: 16 bytes, IPv4 mapped into ::ffff:0:0/96, so one map key and
// one C code path serve both families. Text goes through common/ip.ts (the model's parser), so a
// mapped address written as `::ffff:10.0.0.1` means 10.0.0.1 here as it does in the model.
import { formatIp, parseIp, type IpAddress } from '../../common/ip.ts';
import { InvalidArgumentError } from '../../common/errors.ts';

export const ADDRESS_SIZE = 16;

function isMapped(buf: Uint8Array, offset: number): boolean {
  if (buf[offset + 10] !== 0xff || buf[offset + 11] !== 0xff) return false;
  for (let i = 0; i < 10; i++) if (buf[offset + i] !== 0) return false;
  return true;
}

/** The 16-byte form of `text`; `what` names the object and field in the error. */
export function encodeAddress(text: string, what = 'address'): Buffer {
  const ip = parseIp(text);
  if (!ip) throw new InvalidArgumentError(`${what}: "${text}" is not an IP address`);
  return Buffer.from(ip.bytes);
}

export function writeAddress(buf: Buffer, offset: number, text: string, what = 'address'): void {
  buf.set(encodeAddress(text, what), offset);
}

/** Canonical text of the 16 bytes at offset (a mapped address as dotted IPv4). */
export function readAddress(buf: Uint8Array, offset = 0): string {
  const bytes = new Uint8Array(buf.subarray(offset, offset + ADDRESS_SIZE));
  const ip: IpAddress = { family: isMapped(bytes, 0) ? 4 : 6, bytes };
  return formatIp(ip);
}

export function isZeroAddress(buf: Buffer, offset = 0): boolean {
  return (
    (buf.readUInt32LE(offset) |
      buf.readUInt32LE(offset + 4) |
      buf.readUInt32LE(offset + 8) |
      buf.readUInt32LE(offset + 12)) ===
    0
  );
}

/**
 * A decoder for hot paths (every flow event carries three addresses, mostly the same few VIPs,
 * backends and pods): remembers the text of up to `max` distinct addresses; all zeros → undefined.
 */
export function cachedAddressReader(max = 65536): (buf: Buffer, offset: number) => string | undefined {
  const text = new Map<string, string>();
  return (buf, offset) => {
    if (isZeroAddress(buf, offset)) return undefined;
    const key = buf.toString('latin1', offset, offset + ADDRESS_SIZE);
    const hit = text.get(key);
    if (hit !== undefined) return hit;
    const out = readAddress(buf, offset);
    if (text.size >= max) text.clear();
    text.set(key, out);
    return out;
  };
}
