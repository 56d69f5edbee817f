// An ELF object of BPF programs and maps: open (with a pin root so maps declared with
// LIBBPF_PIN_BY_NAME are shared with every other object using it), size the maps, load (the
// verifier's log becomes part of the error), then hand out maps and programs.
import { BpfError } from '../../common/errors.ts';
import { BTF_KIND_DATASEC, ffi, register, koffi, type Pointer } from './ffi.ts';
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
    const handle = checkPointer(
      `bpf_object__open_file(${file})`,
      ffi.bpf_object__open_file(file, opts) as Pointer | null,
    );
    return new BpfObject(handle, file);
  }

  setMapMaxEntries(name: string, entries: number): void {
    check(
      `bpf_map__set_max_entries(${name})`,
      ffi.bpf_map__set_max_entries(this.#mapHandle(name), entries) as number,
    );
  }

  /** Names of the maps this object pins by name under its pin root (known before load). */
  pinnedMapNames(): string[] {
    const names: string[] = [];
    for (let m = ffi.bpf_object__next_map(this.#live(), null) as Pointer | null; m !== null; m = ffi.bpf_object__next_map(this.#live(), m) as Pointer | null) {
      if (ffi.bpf_map__pin_path(m) !== null) names.push(ffi.bpf_map__name(m) as string);
    }
    return names;
  }

  /** Overwrites a whole read-only data section (e.g. '.rodata') before load; offsets are the caller's. */
  setInitialValue(mapName: string, data: Buffer): void {
    check(
      `bpf_map__set_initial_value(${mapName})`,
      ffi.bpf_map__set_initial_value(this.#mapHandle(mapName), data, data.length) as number,
    );
  }

  /**
   * Sets a `const volatile` global before load, found by name in the object's BTF (.rodata datasec),
   * so the C side needs no #ifdef and the TypeScript side no hand-kept offsets.
   */
  setConstant(variable: string, value: Buffer): void {
    const btf = checkPointer('bpf_object__btf', ffi.bpf_object__btf(this.#live()) as Pointer | null);
    const secId = check(
      'btf__find_by_name_kind(.rodata)',
      ffi.btf__find_by_name_kind(btf, '.rodata', BTF_KIND_DATASEC) as number,
    );
    const sec = ffi.btf__type_by_id(btf, secId) as Pointer;
    // struct btf_type { u32 name_off; u32 info; u32 size; } then vlen × btf_var_secinfo { u32 type, offset, size }
    const [, info] = koffi.decode(sec, 'uint32_t', 3) as number[];
    const vlen = info! & 0xffff;
    const secinfo = koffi.decode(sec, 12, 'uint32_t', vlen * 3) as number[];
    for (let i = 0; i < vlen; i++) {
      const varType = ffi.btf__type_by_id(btf, secinfo[i * 3]!) as Pointer;
      const name = ffi.btf__name_by_offset(btf, koffi.decode(varType, 'uint32_t') as number) as string;
      if (name !== variable) continue;
      const offset = secinfo[i * 3 + 1]!;
      const size = secinfo[i * 3 + 2]!;
      if (value.length !== size)
        throw new BpfError(
          `setConstant(${variable})`,
          22,
          'EINVAL',
          `value is ${value.length} bytes, variable is ${size}`,
        );
      const rodata = '.rodata'; // libbpf ≥ 1.0 finds internal maps by their section name
      const psize = [0];
      const current = checkPointer(
        `bpf_map__initial_value(${rodata})`,
        ffi.bpf_map__initial_value(this.#mapHandle(rodata), psize) as Pointer | null,
      );
      const image = Buffer.from(koffi.view(current, psize[0]!));
      value.copy(image, offset);
      this.setInitialValue(rodata, image);
      return;
    }
    throw new BpfError(
      `setConstant(${variable})`,
      2,
      'ENOENT',
      `no const volatile ${variable} in ${this.path}`,
    );
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
      map = BpfMap.fromFd(fd, false, name);
      this.#maps.set(name, map);
    }
    return map;
  }

  program(name: string): BpfProgram {
    const handle = checkPointer(
      `bpf_object__find_program_by_name(${name})`,
      ffi.bpf_object__find_program_by_name(this.#live(), name) as Pointer | null,
    );
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
    return checkPointer(
      `bpf_object__find_map_by_name(${name})`,
      ffi.bpf_object__find_map_by_name(this.#live(), name) as Pointer | null,
    );
  }

  #live(): Pointer {
    if (this.#handle === null) throw new BpfError(`object ${this.path}`, 9, 'EBADF', 'closed');
    return this.#handle;
  }
}
