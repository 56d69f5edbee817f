// IP address and CIDR handling in one place, pure (the model imports it). Addresses are kept as
// 16 bytes with IPv4 mapped into ::ffff:0:0/96, the same width the BPF maps use, so one code path
// serves both families from YAML to map key.

export type Family = 4 | 6;

export interface IpAddress {
  readonly family: Family;
  /** 16 bytes; IPv4 as ::ffff:a.b.c.d. */
  readonly bytes: Uint8Array;
}

export interface Cidr {
  readonly address: IpAddress; // network address (host bits cleared)
  /** Prefix length within the family: 0–32 for IPv4, 0–128 for IPv6. */
  readonly prefix: number;
}

const V4_MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

// Hand-rolled: this runs for every endpoint address of every slice, so no split() or RegExp.
function parseV4(text: string, out: Uint8Array, offset: number): boolean {
  let octet = 0;
  let digits = 0;
  let part = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46; // a virtual '.' ends the last part
    if (c === 46) {
      if (digits === 0 || part > 3) return false;
      out[offset + part++] = octet;
      octet = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      // Leading zeros are refused, as Go's net/netip (and so the API server) does.
      if (digits > 0 && octet === 0) return false;
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return false;
    } else {
      return false;
    }
  }
  return part === 4;
}

function parseV6(text: string, out: Uint8Array): boolean {
  if (text.includes('%')) return false; // zones have no place in a Service
  const halves = text.split('::');
  if (halves.length > 2) return false;
  const groups = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  const words: number[] = [];
  let v4Tail: Uint8Array | undefined;
  const all = [...head, ...tail];
  const last = all[all.length - 1];
  if (last !== undefined && last.includes('.')) {
    v4Tail = new Uint8Array(4);
    if (!parseV4(last, v4Tail, 0)) return false;
    if (tail.length > 0) tail.pop();
    else head.pop();
  }
  const wordCount = head.length + tail.length + (v4Tail ? 2 : 0);
  if (halves.length === 1 && wordCount !== 8) return false;
  if (halves.length === 2 && wordCount > 7) return false;
  const toWord = (g: string): number | undefined => (/^[0-9a-fA-F]{1,4}$/.test(g) ? parseInt(g, 16) : undefined);
  for (const g of head) {
    const w = toWord(g);
    if (w === undefined) return false;
    words.push(w);
  }
  const fill = 8 - wordCount;
  for (let i = 0; i < (halves.length === 2 ? fill : 0); i++) words.push(0);
  for (const g of tail) {
    const w = toWord(g);
    if (w === undefined) return false;
    words.push(w);
  }
  for (let i = 0; i < words.length; i++) {
    out[i * 2] = words[i]! >> 8;
    out[i * 2 + 1] = words[i]! & 0xff;
  }
  if (v4Tail) out.set(v4Tail, 12);
  return true;
}

/** Parses an IPv4 or IPv6 address; undefined when the text is not one. */
export function parseIp(text: string): IpAddress | undefined {
  const bytes = new Uint8Array(16);
  if (!text.includes(':')) {
    bytes.set(V4_MAPPED_PREFIX, 0);
    return parseV4(text, bytes, 12) ? { family: 4, bytes } : undefined;
  }
  if (!parseV6(text, bytes)) return undefined;
  // An IPv4-mapped IPv6 address names an IPv4 endpoint; treat it as one.
  return { family: isV4Mapped(bytes) ? 4 : 6, bytes };
}

function isV4Mapped(bytes: Uint8Array): boolean {
  for (let i = 0; i < 12; i++) if (bytes[i] !== V4_MAPPED_PREFIX[i]) return false;
  return true;
}

/** Canonical text: dotted quad for IPv4, RFC 5952 compressed lower case for IPv6. */
export function formatIp(ip: IpAddress): string {
  const b = ip.bytes;
  if (ip.family === 4) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((b[i * 2]! << 8) | b[i * 2 + 1]!);
  // Longest run of two or more zero words becomes "::" (first one on a tie).
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]): string => ws.map((w) => w.toString(16)).join(':');
  if (bestStart < 0) return hex(words);
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLen))}`;
}

/** Canonical text of an address, or undefined when it does not parse. */
export function canonicalIp(text: string): string | undefined {
  const ip = parseIp(text);
  return ip ? formatIp(ip) : undefined;
}

const SCRATCH = new Uint8Array(16);

/** The family of an address, or undefined; allocates nothing (validation calls it per endpoint). */
export function ipFamily(text: string): Family | undefined {
  if (!text.includes(':')) return parseV4(text, SCRATCH, 12) ? 4 : undefined;
  SCRATCH.fill(0);
  if (!parseV6(text, SCRATCH)) return undefined;
  return isV4Mapped(SCRATCH) ? 4 : 6;
}

export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIp(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (!ip || !/^(0|[1-9][0-9]{0,2})$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > (ip.family === 4 ? 32 : 128)) return undefined;
  const bits = ip.family === 4 ? prefix + 96 : prefix;
  const bytes = new Uint8Array(ip.bytes);
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    bytes[i]! &= (0xff << (8 - keep)) & 0xff;
  }
  return { address: { family: ip.family, bytes }, prefix };
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIp(cidr.address)}/${cidr.prefix}`;
}

export function cidrContains(cidr: Cidr, ip: IpAddress): boolean {
  if (cidr.address.family !== ip.family) return false;
  const bits = cidr.address.family === 4 ? cidr.prefix + 96 : cidr.prefix;
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    if (keep === 0) break;
    const mask = (0xff << (8 - keep)) & 0xff;
    if ((ip.bytes[i]! & mask) !== (cidr.address.bytes[i]! & mask)) return false;
  }
  return true;
}

/** Orders addresses by their 16-byte form: a total, deterministic order for backend lists. */
export function compareIp(a: IpAddress, b: IpAddress): number {
  for (let i = 0; i < 16; i++) {
    const d = a.bytes[i]! - b.bytes[i]!;
    if (d !== 0) return d;
  }
  return 0;
}
