// An ELF object of BPF programs and maps: open (with a pin root so maps declared with
// LIBBPF_PIN_BY_NAME are shared with every other object using it), size the maps, load (the
// verifier's log becomes part of the error), then hand out maps and programs.
import { BpfError } from '../../common/errors.ts';
import { ffi, register, koffi, type Pointer } from './ffi.ts';
import { check, checkPointer, errnoName } from './errors.ts';
import { BpfMap } from './map.ts';
import { BpfProgram } from './program.ts';

// libbpf has one process-wide print callback; loads run one at a time on the event loop, so the
// log of the load in progress is collected into `capture`.
let capture: string[] | undefined;
const printCallback = register((level: number, fmt: string, args: Pointer): number => {
  if (!capture) return 0;
  const buf = Buffer.alloc(65536);
  const n = ffi.vsnprintf(buf, buf.length, fmt, args) as number;
  capture.push(buf.subarray(0, Math.max(0, Math.min(n, buf.length - 1))).toString('utf8'));
  void level;
  return 0;
});
ffi.libbpf_set_print(printCallback);
void koffi;

export interface OpenOptions {
  /** Directory where maps with pinning = LIBBPF_PIN_BY_NAME are pinned and reused. */
  readonly pinRoot?: string;
}

export class BpfObject implements Disposable {
  readonly path: string;
  #handle: Pointer | null;
  #loaded = false;
  readonly #maps = new Map<string, BpfMap>();

  private constructor(handle: Pointer, file: string) {
    this.#handle = handle;
    this.path = file;
  }

  static open(file: string, options: OpenOptions = {}): BpfObject {
    const opts = {
      sz: 80,
      object_name: null,
      relaxed_maps: false,
      pin_root_path: options.pinRoot ?? null,
      attach_prog_fd_unused: 0,
      kconfig: null,
      btf_custom_path: null,
      kernel_log_buf: null,
      kernel_log_size: 0,
      kernel_log_level: 0,
    };
    const handle = checkPointer(`bpf_object__open_file(${file})`, ffi.bpf_object__open_file(file, opts) as Pointer | null);
    return new BpfObject(handle, file);
  }

  setMapMaxEntries(name: string, entries: number): void {
    check(`bpf_map__set_max_entries(${name})`, ffi.bpf_map__set_max_entries(this.#mapHandle(name), entries) as number);
  }

  /** Overwrites a whole read-only data section (e.g. '.rodata') before load; offsets are the caller's. */
  setInitialValue(mapName: string, data: Buffer): void {
    check(`bpf_map__set_initial_value(${mapName})`, ffi.bpf_map__set_initial_value(this.#mapHandle(mapName), data, data.length) as number);
  }

  load(): void {
    capture = [];
    try {
      const r = ffi.bpf_object__load(this.#live()) as number;
      if (r < 0) {
        const log = capture.join('');
        throw new BpfError(`bpf_object__load(${this.path})`, -r, errnoName(-r), undefined, log || undefined);
      }
      this.#loaded = true;
    } finally {
      capture = undefined;
    }
  }

  map(name: string): BpfMap {
    let map = this.#maps.get(name);
    if (!map) {
      if (!this.#loaded) throw new BpfError(`map(${name})`, 22, 'EINVAL', 'object not loaded');
      const fd = check(`bpf_map__fd(${name})`, ffi.bpf_map__fd(this.#mapHandle(name)) as number);
      map = BpfMap.fromFd(fd, false);
      this.#maps.set(name, map);
    }
    return map;
  }

  program(name: string): BpfProgram {
    const handle = checkPointer(`bpf_object__find_program_by_name(${name})`, ffi.bpf_object__find_program_by_name(this.#live(), name) as Pointer | null);
    return new BpfProgram(handle, name);
  }

  /** Closes the object: its programs and maps stay alive only through pins and links. */
  close(): void {
    if (this.#handle === null) return;
    ffi.bpf_object__close(this.#handle);
    this.#handle = null;
    this.#maps.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #mapHandle(name: string): Pointer {
    return checkPointer(`bpf_object__find_map_by_name(${name})`, ffi.bpf_object__find_map_by_name(this.#live(), name) as Pointer | null);
  }

  #live(): Pointer {
    if (this.#handle === null) throw new BpfError(`object ${this.path}`, 9, 'EBADF', 'closed');
    return this.#handle;
  }
}
