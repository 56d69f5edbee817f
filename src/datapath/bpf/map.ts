// A BPF map by fd: lookup / update / delete / iterate / pin, shaped like cilium/ebpf's Map.
import path from 'node:path';
import { ffi } from './ffi.ts';
import { check, checkUpdate } from './errors.ts';

export type UpdateFlag = 'any' | 'noexist' | 'exist';
const FLAGS: Readonly<Record<UpdateFlag, number>> = { any: 0, noexist: 1, exist: 2 };
const ENOENT = 2;

export interface MapInfo {
  readonly name: string;
  readonly type: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
}

const PERCPU_TYPES = new Set([5, 6, 10, 21]); // PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH, PERCPU_CGROUP_STORAGE

export class BpfMap implements Disposable {
  readonly fd: number;
  readonly name: string;
  readonly type: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly #owned: boolean;
  #closed = false;

  /** @param owned whether close() closes the fd (maps of a BpfObject belong to the object). */
  constructor(fd: number, info: MapInfo, owned: boolean) {
    this.fd = fd;
    this.name = info.name;
    this.type = info.type;
    this.keySize = info.keySize;
    this.valueSize = info.valueSize;
    this.maxEntries = info.maxEntries;
    this.#owned = owned;
  }

  /** @param name the map's full name when the caller knows it: the kernel keeps only 15 characters
   * (`ferry_services_`), and an error naming a truncated map tells an operator nothing. */
  static fromFd(fd: number, owned: boolean, name?: string): BpfMap {
    const info = mapInfo(fd);
    return new BpfMap(fd, name === undefined ? info : { ...info, name }, owned);
  }

  /** Pins are made by name (LIBBPF_PIN_BY_NAME), so the file name is the map's full name. */
  static openPinned(pinPath: string): BpfMap {
    const fd = check(`bpf_obj_get(${pinPath})`, ffi.bpf_obj_get(pinPath) as number);
    return BpfMap.fromFd(fd, true, path.basename(pinPath));
  }

  /** Bytes of one value as the syscall sees it (per-CPU maps: one 8-byte-rounded slot per CPU). */
  get valueBufferSize(): number {
    return PERCPU_TYPES.has(this.type)
      ? Math.ceil(this.valueSize / 8) * 8 * (ffi.libbpf_num_possible_cpus() as number)
      : this.valueSize;
  }

  lookup(key: Buffer): Buffer | undefined {
    const value = Buffer.alloc(this.valueBufferSize);
    const r = ffi.bpf_map_lookup_elem(this.fd, key, value) as number;
    if (r === -ENOENT) return undefined;
    check(`bpf_map_lookup_elem(${this.name})`, r);
    return value;
  }

  /** Per-CPU maps: one Buffer per possible CPU. */
  lookupPerCpu(key: Buffer): Buffer[] | undefined {
    const all = this.lookup(key);
    if (!all) return undefined;
    const slot = Math.ceil(this.valueSize / 8) * 8;
    const out: Buffer[] = [];
    for (let off = 0; off < all.length; off += slot) out.push(all.subarray(off, off + this.valueSize));
    return out;
  }

  update(key: Buffer, value: Buffer, flag: UpdateFlag = 'any'): void {
    checkUpdate(this.name, ffi.bpf_map_update_elem(this.fd, key, value, FLAGS[flag]) as number);
  }

  /** One syscall for many entries (BPF_MAP_UPDATE_BATCH); all keys/values have the map's sizes. */
  updateBatch(keys: readonly Buffer[], values: readonly Buffer[], flag: UpdateFlag = 'any'): void {
    if (keys.length !== values.length) throw new RangeError('updateBatch: keys and values differ in count');
    if (keys.length === 0) return;
    const count = [keys.length];
    const r = ffi.bpf_map_update_batch(this.fd, Buffer.concat(keys), Buffer.concat(values), count, {
      sz: 24,
      elem_flags: FLAGS[flag],
      flags: 0,
    }) as number;
    checkUpdate(this.name, r, 'bpf_map_update_batch');
  }

  /** Every entry, read `chunk` at a time with BPF_MAP_LOOKUP_BATCH (far fewer syscalls than entries()). */
  lookupBatch(chunk = 4096): [Buffer, Buffer][] {
    const out: [Buffer, Buffer][] = [];
    const valueSize = this.valueBufferSize;
    const token = Math.max(8, this.keySize);
    let inBatch: Buffer | null = null;
    for (;;) {
      const outBatch = Buffer.alloc(token);
      const keys = Buffer.alloc(chunk * this.keySize);
      const values = Buffer.alloc(chunk * valueSize);
      const count = [chunk];
      const r = ffi.bpf_map_lookup_batch(this.fd, inBatch, outBatch, keys, values, count, {
        sz: 24,
        elem_flags: 0,
        flags: 0,
      }) as number;
      if (r < 0 && r !== -ENOENT) check(`bpf_map_lookup_batch(${this.name})`, r);
      for (let i = 0; i < count[0]!; i++) {
        out.push([
          keys.subarray(i * this.keySize, (i + 1) * this.keySize),
          values.subarray(i * valueSize, (i + 1) * valueSize),
        ]);
      }
      if (r === -ENOENT) return out; // the last batch
      inBatch = outBatch;
    }
  }

  /** Deletes many keys in one syscall; returns how many were deleted before a missing key stopped it. */
  deleteBatch(keys: readonly Buffer[]): number {
    if (keys.length === 0) return 0;
    const count = [keys.length];
    const r = ffi.bpf_map_delete_batch(this.fd, Buffer.concat(keys), count, {
      sz: 24,
      elem_flags: 0,
      flags: 0,
    }) as number;
    if (r < 0 && r !== -ENOENT) check(`bpf_map_delete_batch(${this.name})`, r);
    return count[0]!;
  }

  delete(key: Buffer): boolean {
    const r = ffi.bpf_map_delete_elem(this.fd, key) as number;
    if (r === -ENOENT) return false;
    check(`bpf_map_delete_elem(${this.name})`, r);
    return true;
  }

  *keys(): Generator<Buffer> {
    let previous: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(this.keySize);
      const r = ffi.bpf_map_get_next_key(this.fd, previous, next) as number;
      if (r === -ENOENT) return;
      check(`bpf_map_get_next_key(${this.name})`, r);
      yield next;
      previous = next;
    }
  }

  /** Entries; an entry deleted between the key walk and its lookup is skipped. */
  *entries(): Generator<[Buffer, Buffer]> {
    for (const key of this.keys()) {
      const value = this.lookup(key);
      if (value) yield [key, value];
    }
  }

  pin(pinPath: string): void {
    check(`bpf_obj_pin(${path.basename(pinPath)})`, ffi.bpf_obj_pin(this.fd, pinPath) as number);
  }

  close(): void {
    if (this.#closed || !this.#owned) return;
    this.#closed = true;
    ffi.close(this.fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/* struct bpf_map_info: type@0 id@4 key_size@8 value_size@12 max_entries@16 map_flags@20 name[16]@24 … (88 bytes) */
function mapInfo(fd: number): MapInfo {
  const info = Buffer.alloc(88);
  const len = [88];
  check('bpf_obj_get_info_by_fd', ffi.bpf_obj_get_info_by_fd(fd, info, len) as number);
  const nameBytes = info.subarray(24, 40);
  const end = nameBytes.indexOf(0);
  return {
    type: info.readUInt32LE(0),
    keySize: info.readUInt32LE(8),
    valueSize: info.readUInt32LE(12),
    maxEntries: info.readUInt32LE(16),
    name: nameBytes.subarray(0, end < 0 ? 16 : end).toString('latin1'),
  };
}
