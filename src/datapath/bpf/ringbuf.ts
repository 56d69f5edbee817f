// Reads a BPF ring buffer from the event loop: the ring's epoll fd is polled by koffi's libuv
// integration, and each readiness consumes everything available. Samples are copied out inside
// the callback (libbpf's memory is only valid there). A slow timer covers a missed wake-up.
import { ffi, koffi, registerSample, type Pointer } from './ffi.ts';
import { check, checkPointer } from './errors.ts';
import type { BpfMap } from './map.ts';

export class RingBufferReader implements Disposable {
  readonly #rb: Pointer;
  readonly #callback: unknown; // kept referenced for as long as libbpf may call it
  readonly #poll: { close(): void };
  readonly #timer: NodeJS.Timeout;
  #closed = false;
  #received = 0;

  constructor(map: BpfMap, onSample: (data: Buffer) => void, options: { fallbackMs?: number } = {}) {
    this.#callback = registerSample((_ctx: Pointer, data: Pointer, size: number): number => {
      this.#received++;
      const copy = Buffer.allocUnsafe(size);
      ffi.memcpy(copy, data, size);
      onSample(copy);
      return 0;
    });
    this.#rb = checkPointer(
      `ring_buffer__new(${map.name})`,
      ffi.ring_buffer__new(map.fd, this.#callback, null, null) as Pointer | null,
    );
    const fd = check('ring_buffer__epoll_fd', ffi.ring_buffer__epoll_fd(this.#rb) as number);
    this.#poll = koffi.node.poll(fd, { readable: true, writable: false, disconnect: false }, () =>
      this.consume(),
    );
    this.#timer = setInterval(() => this.consume(), options.fallbackMs ?? 1000);
    this.#timer.unref();
  }

  /** Samples delivered so far. */
  get received(): number {
    return this.#received;
  }

  /** Delivers every sample waiting now; returns how many. */
  consume(): number {
    if (this.#closed) return 0;
    return check('ring_buffer__consume', ffi.ring_buffer__consume(this.#rb) as number);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#poll.close();
    ffi.ring_buffer__free(this.#rb);
    koffi.unregister(this.#callback as bigint);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
