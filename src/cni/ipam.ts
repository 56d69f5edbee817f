// Host-local IPAM on disk, in the shape of the reference host-local plugin: one file per
// allocated address (named by the address, holding "containerId\nifname"), all changes under a
// lock file so that concurrent plugin processes never hand out the same address.
import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatIp, parseIp, type Cidr, type IpAddress } from '../common/ip.ts';
import { CniCode, CniError, type Attachment, type IpamConfig } from './spec.ts';

const LOCK = 'lock';
const LOCK_STALE_MS = 10_000;
const LOCK_WAIT_MS = 20_000;

export interface Allocation extends Attachment {
  /** The address as CIDR with the range's prefix, e.g. 10.244.1.5/24. */
  readonly cidr: string;
  readonly address: string;
}

/** A lock held by creating a file exclusively; a lock whose holder is dead or that is old is broken. */
async function withLock<T>(dir: string, fn: () => T): Promise<T> {
  const path = `${dir}/${LOCK}`;
  const deadline = Date.now() + LOCK_WAIT_MS;
  let delay = 1;
  for (;;) {
    try {
      const fd = openSync(path, 'wx');
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(`lock ${path}`, error);
      if (isStale(path)) {
        rmSync(path, { force: true });
        continue;
      }
      if (Date.now() > deadline)
        throw new CniError(CniCode.tryAgainLater, `IPAM: lock ${path} held for more than ${LOCK_WAIT_MS} ms`);
      await sleep(delay + Math.random() * delay);
      delay = Math.min(delay * 2, 20);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(path, { force: true });
  }
}

function isStale(path: string): boolean {
  try {
    const pid = Number(readFileSync(path, 'utf8'));
    if (Number.isInteger(pid) && pid > 0) {
      try {
        process.kill(pid, 0);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ESRCH') return true;
      }
    }
    return Date.now() - statSync(path).mtimeMs > LOCK_STALE_MS;
  } catch {
    return false; // vanished or half-written: just retry
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
      const range = this.#config.ranges.find((r) => r.address.family === ip.family);
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
      for (const range of this.#config.ranges) {
        const wanted = this.#config.requested?.find((a) => parseIp(a)?.family === range.address.family);
        if (wanted !== undefined) {
          if (!isUsable(range, wanted))
            throw new CniError(
              CniCode.invalidConfig,
              `IPAM: requested address ${wanted} is reserved in range ${formatIp(range.address)}/${range.prefix}`,
            );
          if (used.has(wanted))
            throw new CniError(CniCode.tryAgainLater, `IPAM: requested address ${wanted} is already allocated`);
          picked.push({ address: wanted, cidr: `${wanted}/${range.prefix}`, ...who });
          continue;
        }
        let found: string | undefined;
        for (const address of rangeAddresses(range)) {
          if (!used.has(address)) {
            found = address;
            break;
          }
        }
        if (found === undefined)
          throw new CniError(
            CniCode.poolExhausted,
            `IPAM: range ${formatIp(range.address)}/${range.prefix} is exhausted (${rangeCapacity(range)} addresses, all allocated)`,
          );
        picked.push({ address: found, cidr: `${found}/${range.prefix}`, ...who });
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
      for (const range of this.#config.ranges) {
        const n = used.filter((a) => parseIp(a.address)?.family === range.address.family).length;
        if (BigInt(n) >= rangeCapacity(range))
          return `range ${formatIp(range.address)}/${range.prefix} is exhausted`;
      }
      return undefined;
    }).catch((error: unknown) => (error as Error).message);
  }
}
