// Programs of a loaded object and their attachments: cgroup links (link.ts), tc filters, XDP.
import { BpfError } from '../../common/errors.ts';
import { ffi, errno, O_CLOEXEC, O_DIRECTORY, O_RDONLY, type Pointer } from './ffi.ts';
import { check, checkPointer, errnoName } from './errors.ts';
import { BpfLink } from './link.ts';

export { BpfLink };

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

const BPF_TC_INGRESS = 1;
const BPF_TC_EGRESS = 2;
const EEXIST = 17;
const ENOENT = 2;
const XDP_FLAGS = { generic: 1 << 1, native: 1 << 2 } as const;

/** A tc filter this process attached; detach() removes only it, never the clsact qdisc others share. */
export class TcAttachment implements Disposable {
  readonly #hook: { sz: number; ifindex: number; attach_point: number; parent: number };
  readonly #handle: number;
  readonly #priority: number;
  #attached = true;

  constructor(
    hook: { sz: number; ifindex: number; attach_point: number; parent: number },
    handle: number,
    priority: number,
  ) {
    this.#hook = hook;
    this.#handle = handle;
    this.#priority = priority;
  }

  detach(): void {
    if (!this.#attached) return;
    const opts = { sz: 32, prog_fd: 0, flags: 0, prog_id: 0, handle: this.#handle, priority: this.#priority };
    check('bpf_tc_detach', ffi.bpf_tc_detach(this.#hook, opts) as number);
    this.#attached = false;
  }

  [Symbol.dispose](): void {
    this.detach();
  }
}

/**
 * An XDP program this process attached. detach() names the program it expects to remove
 * (XDP_FLAGS_REPLACE), so one someone else has since put on the interface is left alone. It keeps
 * the program's id rather than an fd: a discarded attachment then pins nothing in the kernel.
 */
export class XdpAttachment implements Disposable {
  readonly ifindex: number;
  readonly progId: number;
  readonly #flags: number;
  #attached = true;

  constructor(ifindex: number, flags: number, progId: number) {
    this.ifindex = ifindex;
    this.#flags = flags;
    this.progId = progId;
  }

  /** Removes this program from the interface; false if it was no longer there (replaced or removed). */
  detach(): boolean {
    if (!this.#attached) return false;
    this.#attached = false;
    const progFd = ffi.bpf_prog_get_fd_by_id(this.progId) as number;
    if (progFd === -ENOENT) return false; // unloaded: it cannot be attached anywhere
    check(`bpf_prog_get_fd_by_id(${this.progId})`, progFd);
    try {
      const r = ffi.bpf_xdp_detach(this.ifindex, this.#flags, {
        sz: 16,
        old_prog_fd: progFd,
        pad_: 0,
      }) as number;
      // EEXIST: the interface runs another program now, or none (the kernel compares against ours).
      if (r === -EEXIST) return false;
      check(`bpf_xdp_detach(${this.ifindex})`, r);
      return true;
    } finally {
      ffi.close(progFd);
    }
  }

  [Symbol.dispose](): void {
    this.detach();
  }
}

/** Removes the tc filter with this handle and priority (another process's attachment, e.g. at uninstall). */
export function detachTc(
  ifindex: number,
  direction: 'ingress' | 'egress',
  options: { priority?: number; handle?: number } = {},
): void {
  const hook = {
    sz: 24,
    ifindex,
    attach_point: direction === 'ingress' ? BPF_TC_INGRESS : BPF_TC_EGRESS,
    parent: 0,
  };
  new TcAttachment(hook, options.handle ?? 1, options.priority ?? 1).detach();
}

/** Removes whatever XDP program the interface runs in this mode (e.g. another process's, at uninstall). */
export function detachXdp(ifindex: number, mode: 'native' | 'generic'): void {
  check(`bpf_xdp_detach(${ifindex})`, ffi.bpf_xdp_detach(ifindex, XDP_FLAGS[mode], null) as number);
}

/** The kernel's id of a loaded program (struct bpf_prog_info: type@0, id@4). */
function progIdOf(fd: number, what: string): number {
  const info = Buffer.alloc(8);
  check(`bpf_obj_get_info_by_fd(${what})`, ffi.bpf_obj_get_info_by_fd(fd, info, [info.length]) as number);
  return info.readUInt32LE(4);
}

/** ifindex of an interface in the calling process's network namespace. */
export function ifindexOf(ifname: string): number {
  const index = ffi.if_nametoindex(ifname) as number;
  if (!index) throw new BpfError(`if_nametoindex(${ifname})`, 19, 'ENODEV');
  return index;
}

export class BpfProgram {
  readonly name: string;
  readonly #handle: Pointer;

  constructor(handle: Pointer, name: string) {
    this.#handle = handle;
    this.name = name;
  }

  /** The program's fd, owned by its BpfObject (valid until the object is closed). */
  get fd(): number {
    return check(
      `bpf_program__fd(${this.name})`,
      ffi.bpf_program__fd(this.#handle) as number,
      'object not loaded?',
    );
  }

  /** Pins the program itself (not an attachment): it stays loaded while the pin exists. */
  pin(pinPath: string): void {
    check(`bpf_obj_pin(${this.name})`, ffi.bpf_obj_pin(this.fd, pinPath) as number, pinPath);
  }

  /** Attaches to a cgroup v2 directory as a bpf_link (pin it to outlive the process). */
  attachCgroup(cgroupDir: string): BpfLink {
    const cgroupFd = ffi.open(cgroupDir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) as number;
    if (cgroupFd < 0) {
      const n = errno();
      throw new BpfError(`open(${cgroupDir})`, n, errnoName(n));
    }
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

  /**
   * Attaches as a tc clsact filter (direct action) in the caller's network namespace. The qdisc
   * is created if missing and shared; a second direction's hook_create answering EEXIST is fine.
   */
  attachTc(
    ifindex: number,
    direction: 'ingress' | 'egress',
    options: { priority?: number; handle?: number; replace?: boolean } = {},
  ): TcAttachment {
    const hook = {
      sz: 24,
      ifindex,
      attach_point: direction === 'ingress' ? BPF_TC_INGRESS : BPF_TC_EGRESS,
      parent: 0,
    };
    const created = ffi.bpf_tc_hook_create(hook) as number;
    if (created < 0 && created !== -EEXIST) check(`bpf_tc_hook_create(${ifindex})`, created);
    const handle = options.handle ?? 1;
    const priority = options.priority ?? 1;
    // BPF_TC_F_REPLACE swaps the program of an existing filter with the same handle and priority in place.
    const opts = { sz: 32, prog_fd: this.fd, flags: options.replace ? 1 : 0, prog_id: 0, handle, priority };
    check(`bpf_tc_attach(${this.name})`, ffi.bpf_tc_attach(hook, opts) as number);
    return new TcAttachment(hook, handle, priority);
  }

  /** Attaches as the interface's XDP program, in driver (native) or generic (skb) mode. */
  attachXdp(ifindex: number, mode: 'native' | 'generic'): XdpAttachment {
    const flags = XDP_FLAGS[mode];
    check(
      `bpf_xdp_attach(${this.name}, ${mode})`,
      ffi.bpf_xdp_attach(ifindex, this.fd, flags, null) as number,
    );
    return new XdpAttachment(ifindex, flags, progIdOf(this.fd, this.name));
  }

  /** BPF_PROG_RUN: runs the program once (or `repeat` times) on a packet built by the caller. */
  /**
   * Runs a BPF_PROG_TYPE_SYSCALL program once on `ctx`; the kernel copies the context back, so the
   * program's answers land in the same buffer. Returns the program's return value.
   */
  runSyscall(ctx: Buffer): number {
    const opts = {
      sz: 80,
      data_in: null,
      data_out: null,
      data_size_in: 0,
      data_size_out: 0,
      ctx_in: ctx,
      ctx_out: null,
      ctx_size_in: ctx.length,
      ctx_size_out: 0,
      retval: 0,
      repeat: 0,
      duration: 0,
      flags: 0,
      cpu: 0,
      batch_size: 0,
    };
    check(`bpf_prog_test_run_opts(${this.name})`, ffi.bpf_prog_test_run_opts(this.fd, opts) as number);
    return opts.retval;
  }

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
    for (let attempt = 0; attempt < 5 && r === -4; attempt++)
      r = ffi.bpf_prog_test_run_opts(this.fd, opts) as number;
    check(`bpf_prog_test_run_opts(${this.name})`, r);
    return {
      retval: opts.retval,
      dataOut: dataOut.subarray(0, opts.data_size_out),
      durationNs: opts.duration,
    };
  }
}
