// Host-local IPAM on disk, in the shape of the reference host-local plugin: one file per
// allocated address (named by the address, holding "containerId\nifname"), all changes under a
// kernel lock (flock) so that concurrent plugin processes never hand out the same address.
import {
  closeSync,
  constants,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { cidrContains, formatCidr, formatIp, parseIp, type Cidr, type IpAddress } from '../common/ip.ts';
import { tryLockExclusive, unlock } from './libc.ts';
import { CniCode, CniError, type Attachment, type IpamConfig } from './spec.ts';

const LOCK = 'lock';
const LOCK_WAIT_MS = 20_000;

export interface Allocation extends Attachment {
  /** The address as CIDR with the range's prefix, e.g. 10.244.1.5/24. */
  readonly cidr: string;
  readonly address: string;
}

/**
 * The whole data directory is guarded by flock(2) on a lock file that is never removed: the kernel
 * drops the lock when its holder closes the file or dies, so there is no stale lock to detect and
 * no removal to race with, and a slow live holder keeps it for as long as it runs. `fn` is
 * synchronous, so within one process the lock is never held across an await either.
 */
async function withLock<T>(dir: string, fn: () => T): Promise<T> {
  const path = `${dir}/${LOCK}`;
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o600);
  } catch (error) {
    throw ioError(`lock ${path}`, error);
  }
  try {
    const deadline = Date.now() + LOCK_WAIT_MS;
    let delay = 1;
    // Polled rather than a blocking flock: a blocking call would stall the event loop and could
    // not give up with "try again later" after LOCK_WAIT_MS.
    while (!tryLock(fd, path)) {
      if (Date.now() > deadline)
        throw new CniError(CniCode.tryAgainLater, `IPAM: lock ${path} held for more than ${LOCK_WAIT_MS} ms`);
      await sleep(delay + Math.random() * delay);
      delay = Math.min(delay * 2, 20);
    }
    try {
      return fn();
    } finally {
      unlock(fd);
    }
  } finally {
    closeSync(fd);
  }
}

function tryLock(fd: number, path: string): boolean {
  try {
    return tryLockExclusive(fd);
  } catch (error) {
    throw ioError(`lock ${path}`, error);
  }
}

function ioError(what: string, error: unknown): CniError {
  return new CniError(CniCode.ioFailure, `IPAM: ${what}: ${(error as Error).message}`, '', { cause: error });
}

function addBig(base: IpAddress, offset: bigint): IpAddress {
  const bytes = new Uint8Array(base.bytes);
  let carry = offset;
  for (let i = 15; i >= 0 && carry > 0n; i--) {
    const sum = BigInt(bytes[i]!) + (carry & 0xffn);
    bytes[i] = Number(sum & 0xffn);
    carry = (carry >> 8n) + (sum >> 8n);
  }
  return { family: base.family, bytes };
}

/**
 * The usable addresses of a range in order: the network address, the first host (reserved for the
 * node's own use, as host-local reserves a gateway) and, for IPv4, the broadcast address are skipped.
 */
export function* rangeAddresses(range: Cidr): Generator<string> {
  const size = 1n << BigInt((range.address.family === 4 ? 32 : 128) - range.prefix);
  const last = range.address.family === 4 ? size - 2n : size - 1n;
  for (let i = 2n; i <= last; i++) yield formatIp(addBig(range.address, i));
}

/** Is `address` (inside `range`) one that rangeAddresses() hands out? */
function isUsable(range: Cidr, address: string): boolean {
  const ip = parseIp(address);
  if (!ip) return false;
  let offset = 0n;
  for (let i = 0; i < 16; i++) offset = (offset << 8n) | BigInt(ip.bytes[i]! ^ range.address.bytes[i]!);
  const size = 1n << BigInt((range.address.family === 4 ? 32 : 128) - range.prefix);
  const last = range.address.family === 4 ? size - 2n : size - 1n;
  return offset >= 2n && offset <= last;
}

function firstFree(
  set: readonly Cidr[],
  used: ReadonlySet<string>,
): { readonly range: Cidr; readonly address: string } | undefined {
  for (const range of set) for (const address of rangeAddresses(range)) if (!used.has(address)) return { range, address };
  return undefined;
}

export function rangeCapacity(range: Cidr): bigint {
  const size = 1n << BigInt((range.address.family === 4 ? 32 : 128) - range.prefix);
  return range.address.family === 4 ? size - 3n : size - 2n;
}

export class HostLocalIpam {
  readonly #config: IpamConfig;

  constructor(config: IpamConfig) {
    this.#config = config;
  }

  get dataDir(): string {
    return this.#config.dataDir;
  }

  #ensureDir(): void {
    try {
      mkdirSync(this.#config.dataDir, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw ioError(`data directory ${this.#config.dataDir}`, error);
    }
  }

  /** Every allocation on disk. */
  list(): Allocation[] {
    let names: string[];
    try {
      names = readdirSync(this.#config.dataDir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw ioError(`read ${this.#config.dataDir}`, error);
    }
    const out: Allocation[] = [];
    for (const name of names) {
      const ip = parseIp(name);
      if (!ip || formatIp(ip) !== name) continue; // the lock, or a stray file
      const range = this.#config.rangeSets.flat().find((r) => cidrContains(r, ip));
      let text: string;
      try {
        text = readFileSync(`${this.#config.dataDir}/${name}`, 'utf8');
      } catch {
        continue; // released meanwhile
      }
      const [containerId = '', ifname = ''] = text.split('\n');
      out.push({
        address: name,
        cidr: `${name}/${range?.prefix ?? (ip.family === 4 ? 32 : 128)}`,
        containerId,
        ifname,
      });
    }
    return out;
  }

  /** One address from each range for the attachment; all or nothing. Fails if it already has some. */
  async allocate(who: Attachment): Promise<Allocation[]> {
    this.#ensureDir();
    return withLock(this.#config.dataDir, () => {
      const existing = this.list();
      if (existing.some((a) => a.containerId === who.containerId && a.ifname === who.ifname))
        throw new CniError(
          CniCode.interfaceExists,
          `IPAM: ${who.containerId}/${who.ifname} already holds addresses in network ${this.#config.dataDir}`,
        );
      const used = new Set(existing.map((a) => a.address));
      const picked: Allocation[] = [];
      for (const set of this.#config.rangeSets) {
        const family = set[0]!.address.family;
        const wanted = this.#config.requested?.find((a) => parseIp(a)?.family === family);
        if (wanted !== undefined) {
          const range = set.find((r) => cidrContains(r, parseIp(wanted)!));
          if (range === undefined || !isUsable(range, wanted))
            throw new CniError(
              CniCode.invalidConfig,
              `IPAM: requested address ${wanted} is reserved or outside the IPv${family} range set`,
            );
          if (used.has(wanted))
            throw new CniError(CniCode.tryAgainLater, `IPAM: requested address ${wanted} is already allocated`);
          picked.push({ address: wanted, cidr: `${wanted}/${range.prefix}`, ...who });
          continue;
        }
        // One address per range set: the first free one, trying its ranges in order.
        const found = firstFree(set, used);
        if (found === undefined)
          throw new CniError(
            CniCode.poolExhausted,
            `IPAM: range set ${set.map(formatCidr).join(', ')} is exhausted (${set.reduce((n, r) => n + rangeCapacity(r), 0n)} addresses, all allocated)`,
          );
        picked.push({ address: found.address, cidr: `${found.address}/${found.range.prefix}`, ...who });
      }
      const written: string[] = [];
      try {
        for (const p of picked) {
          const path = `${this.#config.dataDir}/${p.address}`;
          writeFileSync(path, `${who.containerId}\n${who.ifname}\n`, { flag: 'wx' });
          written.push(path);
        }
      } catch (error) {
        for (const path of written) rmSync(path, { force: true });
        throw ioError('record allocation', error);
      }
      return picked;
    });
  }

  /** What the attachment holds, without the lock (a read). */
  lookup(who: Attachment): Allocation[] {
    return this.list().filter((a) => a.containerId === who.containerId && a.ifname === who.ifname);
  }

  /** Frees the attachment's addresses; idempotent. Returns what was freed. */
  async release(who: Attachment): Promise<Allocation[]> {
    return this.#releaseWhere((a) => a.containerId === who.containerId && a.ifname === who.ifname);
  }

  /** Frees every allocation whose attachment is not in `valid`. Returns what was freed. */
  async releaseExcept(valid: readonly Attachment[]): Promise<Allocation[]> {
    const keep = new Set(valid.map((a) => `${a.containerId}\n${a.ifname}`));
    return this.#releaseWhere((a) => !keep.has(`${a.containerId}\n${a.ifname}`));
  }

  async #releaseWhere(match: (a: Allocation) => boolean): Promise<Allocation[]> {
    try {
      statSync(this.#config.dataDir);
    } catch {
      return [];
    }
    return withLock(this.#config.dataDir, () => {
      const gone = this.list().filter(match);
      for (const a of gone) rmSync(`${this.#config.dataDir}/${a.address}`, { force: true });
      return gone;
    });
  }

  /** Why no ADD could succeed now, or undefined when one could. */
  async unavailable(): Promise<string | undefined> {
    try {
      this.#ensureDir();
    } catch (error) {
      return (error as Error).message;
    }
    return withLock(this.#config.dataDir, () => {
      const used = this.list();
      const taken = new Set(used.map((a) => a.address));
      for (const set of this.#config.rangeSets)
        if (firstFree(set, taken) === undefined) return `range set ${set.map(formatCidr).join(', ')} is exhausted`;
      return undefined;
    }).catch((error: unknown) => (error as Error).message);
  }
}
