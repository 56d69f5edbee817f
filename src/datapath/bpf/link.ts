// A bpf_link: the attachment of a program, released when its last holder closes it unless pinned.
import { BpfError } from '../../common/errors.ts';
import { ffi, type Pointer } from './ffi.ts';
import { check, checkPointer } from './errors.ts';

export class BpfLink implements Disposable {
  #handle: Pointer | null;
  readonly #what: string;

  constructor(handle: Pointer, what: string) {
    this.#handle = handle;
    this.#what = what;
  }

  static openPinned(pinPath: string): BpfLink {
    return new BpfLink(
      checkPointer(`bpf_link__open(${pinPath})`, ffi.bpf_link__open(pinPath) as Pointer | null),
      pinPath,
    );
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
