// Programs of a loaded object, and the links that attach them.
import { BpfError } from '../../common/errors.ts';
import { ffi, O_CLOEXEC, O_DIRECTORY, O_RDONLY, type Pointer } from './ffi.ts';
import { check, checkPointer, errnoName } from './errors.ts';

export interface RunOptions {
  readonly data: Buffer;
  readonly ctx?: Buffer;
  readonly repeat?: number;
  /** Room for the output packet (default: input size + 256, for programs that grow it). */
  readonly dataOutSize?: number;
}

export interface RunResult {
  readonly retval: number;
  readonly dataOut: Buffer;
  readonly durationNs: number;
}

export class BpfLink implements Disposable {
  #handle: Pointer | null;
  readonly #what: string;

  constructor(handle: Pointer, what: string) {
    this.#handle = handle;
    this.#what = what;
  }

  static openPinned(pinPath: string): BpfLink {
    return new BpfLink(checkPointer(`bpf_link__open(${pinPath})`, ffi.bpf_link__open(pinPath) as Pointer | null), pinPath);
  }

  /** Pins the link: it then outlives this process until the pin is removed. */
  pin(pinPath: string): void {
    check(`bpf_link__pin(${this.#what})`, ffi.bpf_link__pin(this.#live(), pinPath) as number);
  }

  /** Detaches the program now, whoever else holds the link. */
  detach(): void {
    check(`bpf_link__detach(${this.#what})`, ffi.bpf_link__detach(this.#live()) as number);
  }

  /** Releases this process's handle; a pinned link stays attached. */
  close(): void {
    if (this.#handle === null) return;
    ffi.bpf_link__disconnect(this.#handle);
    ffi.bpf_link__destroy(this.#handle);
    this.#handle = null;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #live(): Pointer {
    if (this.#handle === null) throw new BpfError(`link ${this.#what}`, 9, 'EBADF', 'closed');
    return this.#handle;
  }
}

export class BpfProgram {
  readonly name: string;
  readonly #handle: Pointer;

  constructor(handle: Pointer, name: string) {
    this.#handle = handle;
    this.name = name;
  }

  get fd(): number {
    return ffi.bpf_program__fd(this.#handle) as number;
  }

  /** Attaches to a cgroup v2 directory as a bpf_link (pin it to outlive the process). */
  attachCgroup(cgroupDir: string): BpfLink {
    const cgroupFd = ffi.open(cgroupDir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) as number;
    if (cgroupFd < 0) throw new BpfError(`open(${cgroupDir})`, 2, errnoName(2));
    try {
      const link = checkPointer(
        `bpf_program__attach_cgroup(${this.name})`,
        ffi.bpf_program__attach_cgroup(this.#handle, cgroupFd) as Pointer | null,
        cgroupDir,
      );
      return new BpfLink(link, `${this.name}@${cgroupDir}`);
    } finally {
      ffi.close(cgroupFd);
    }
  }

  /** BPF_PROG_RUN: runs the program once (or `repeat` times) on a packet built by the caller. */
  run(options: RunOptions): RunResult {
    const dataOut = Buffer.alloc(options.dataOutSize ?? options.data.length + 256);
    const opts = {
      sz: 80,
      data_in: options.data,
      data_out: dataOut,
      data_size_in: options.data.length,
      data_size_out: dataOut.length,
      ctx_in: options.ctx ?? null,
      ctx_out: null,
      ctx_size_in: options.ctx?.length ?? 0,
      ctx_size_out: 0,
      retval: 0,
      repeat: options.repeat ?? 1,
      duration: 0,
      flags: 0,
      cpu: 0,
      batch_size: 0,
    };
    // A signal arriving during a repeated run interrupts it (EINTR): run again.
    let r = -4;
    for (let attempt = 0; attempt < 5 && r === -4; attempt++) r = ffi.bpf_prog_test_run_opts(this.fd, opts) as number;
    check(`bpf_prog_test_run_opts(${this.name})`, r);
    return { retval: opts.retval, dataOut: dataOut.subarray(0, opts.data_size_out), durationNs: opts.duration };
  }
}
