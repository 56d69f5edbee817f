// Reads the events ring buffer in place: both of its mappings (the consumer page, read-write; the
// producer page and the data area, read-only and mapped twice so that no record wraps) are viewed
// from JavaScript, and records are handed out as views valid during the call only. Compared with
// libbpf's ring_buffer__consume and one FFI callback per record this halves the agent's cost per
// event (the callback and its copy were most of it). Layout: kernel/bpf/ringbuf.c, and libbpf's
// ringbuf.c for the consumer protocol (acquire the positions, release the consumer position).
import { ffi, koffi, type Pointer } from '../bpf/ffi.ts';
import { BpfError } from '../../common/errors.ts';
import type { BpfMap } from '../bpf/index.ts';

const PROT_READ = 0x1;
const PROT_WRITE = 0x2;
const MAP_SHARED = 0x1;
const BUSY = 0x80000000;
const DISCARD = 0x40000000;
const LENGTH = 0x3fffffff; // the header's length bits
const HEADER = 8;
const RINGBUF_TYPE = 27; // BPF_MAP_TYPE_RINGBUF

function mapOrThrow(what: string, len: number, prot: number, fd: number, offset: number): Pointer {
  const p = ffi.mmap(null, len, prot, MAP_SHARED, fd, offset) as Pointer;
  // MAP_FAILED is (void *)-1: koffi hands it back as a pointer whose address is all ones.
  if (p === null || koffi.address(p) === 0xffffffffffffffffn) {
    const errno = koffi.errno();
    throw new BpfError(`mmap(${what})`, errno, `errno ${errno}`);
  }
  return p;
}

export class MmappedRing implements Disposable {
  readonly #page: number;
  readonly #size: number;
  readonly #consumerPtr: Pointer;
  readonly #producerPtr: Pointer;
  readonly #consumer: BigUint64Array;
  readonly #producer: BigUint64Array;
  readonly #words: Uint32Array;
  readonly #bytes: Buffer;
  #closed = false;

  constructor(map: BpfMap) {
    if (map.type !== RINGBUF_TYPE) throw new RangeError(`${map.name}: not a ring buffer (type ${map.type})`);
    this.#page = ffi.getpagesize() as number;
    this.#size = map.maxEntries;
    this.#consumerPtr = mapOrThrow(`${map.name} consumer`, this.#page, PROT_READ | PROT_WRITE, map.fd, 0);
    try {
      this.#producerPtr = mapOrThrow(`${map.name} data`, this.#page + 2 * this.#size, PROT_READ, map.fd, this.#page);
    } catch (error) {
      ffi.munmap(this.#consumerPtr, this.#page);
      throw error;
    }
    this.#consumer = new BigUint64Array(koffi.view(this.#consumerPtr, this.#page), 0, 1);
    const all = koffi.view(this.#producerPtr, this.#page + 2 * this.#size);
    this.#producer = new BigUint64Array(all, 0, 1);
    this.#words = new Uint32Array(all, this.#page, (2 * this.#size) / 4);
    this.#bytes = Buffer.from(all, this.#page, 2 * this.#size);
  }

  /** Hands every committed record to `onRecord` (a view, valid only during the call); returns how many. */
  consume(onRecord: (record: Buffer) => void): number {
    if (this.#closed) return 0;
    let cons = Number(Atomics.load(this.#consumer, 0));
    const prod = Number(Atomics.load(this.#producer, 0));
    const start = cons;
    let n = 0;
    try {
      while (cons < prod) {
        const at = cons % this.#size;
        const header = Atomics.load(this.#words, at / 4);
        if (header & BUSY) break; // reserved, not yet submitted: records after it wait too
        const len = header & LENGTH;
        const record = this.#bytes.subarray(at + HEADER, at + HEADER + len);
        cons += (len + HEADER + 7) & ~7;
        if (!(header & DISCARD)) {
          n++;
          onRecord(record);
        }
      }
    } finally {
      // Release what was read (a throwing callback must not make us read a record twice).
      if (cons !== start) Atomics.store(this.#consumer, 0, BigInt(cons));
    }
    return n;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    ffi.munmap(this.#producerPtr, this.#page + 2 * this.#size);
    ffi.munmap(this.#consumerPtr, this.#page);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Drives an MmappedRing from the event loop: the map fd is pollable; a timer covers the rest. */
export class MappedRingReader implements Disposable {
  readonly #ring: MmappedRing;
  readonly #poll: { close(): void };
  readonly #timer: NodeJS.Timeout;
  readonly #onRecord: (record: Buffer) => void;
  #received = 0;
  #closed = false;

  constructor(map: BpfMap, onRecord: (record: Buffer) => void, options: { intervalMs?: number } = {}) {
    this.#ring = new MmappedRing(map);
    this.#onRecord = onRecord;
    this.#poll = koffi.node.poll(map.fd, { readable: true, writable: false, disconnect: false }, () => this.consume());
    this.#timer = setInterval(() => this.consume(), options.intervalMs ?? 1000);
    this.#timer.unref();
  }

  get received(): number {
    return this.#received;
  }

  consume(): number {
    if (this.#closed) return 0;
    const n = this.#ring.consume(this.#onRecord);
    this.#received += n;
    return n;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#poll.close();
    this.#ring.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
