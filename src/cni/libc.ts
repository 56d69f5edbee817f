// The two kernel calls ferry-cni needs that Node does not expose: flock(2) for the IPAM lock and
// the nsfs NS_GET_NSTYPE ioctl to tell a network namespace from any other namespace file. Kept
// apart from datapath/bpf/ffi.ts because the plugin runs once per ADD/DEL and should not load
// libbpf for two integer-only libc calls; no pointers cross this boundary.
import koffi from 'koffi';

const libc = koffi.load('libc.so.6');
const flockFn = libc.func('int flock(int fd, int operation)') as (fd: number, op: number) => number;
const ioctlFn = libc.func('int ioctl(int fd, unsigned long request, ...)') as (
  fd: number,
  request: number,
) => number;

const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;
const EWOULDBLOCK = 11;
const EINTR = 4;
/** linux/nsfs.h: _IO(0xb7, 0x3). */
const NS_GET_NSTYPE = 0xb703;
/** linux/sched.h */
export const CLONE_NEWNET = 0x40000000;

export class LibcError extends Error {
  readonly errno: number;
  constructor(call: string, errno: number) {
    super(`${call}: errno ${errno}`);
    this.errno = errno;
  }
}

/** Takes an exclusive lock without waiting; false when another open file description holds it. */
export function tryLockExclusive(fd: number): boolean {
  for (;;) {
    if (flockFn(fd, LOCK_EX | LOCK_NB) === 0) return true;
    const errno = koffi.errno();
    if (errno === EWOULDBLOCK) return false;
    if (errno !== EINTR) throw new LibcError('flock', errno);
  }
}

export function unlock(fd: number): void {
  flockFn(fd, LOCK_UN);
}

/** The CLONE_NEW* type of the namespace an nsfs fd refers to. */
export function namespaceType(fd: number): number {
  const type = ioctlFn(fd, NS_GET_NSTYPE);
  if (type < 0) throw new LibcError('ioctl(NS_GET_NSTYPE)', koffi.errno());
  return type;
}
