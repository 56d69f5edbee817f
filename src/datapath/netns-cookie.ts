// The cookie the kernel gives a network namespace (bpf_get_netns_cookie): the socket layer keys
// sessionAffinity by it, so `ferry explain` needs it to answer for a given pod. Read the way the
// kernel offers it, SO_NETNS_COOKIE on a socket made inside the namespace: enter it on this
// thread, make the socket, ask, and return to where we were.
import fs from 'node:fs';
import { BpfError } from '../common/errors.ts';
import { errno, ffi } from './bpf/ffi.ts';
import { errnoName } from './bpf/errors.ts';

const CLONE_NEWNET = 0x40000000;
const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOL_SOCKET = 1;
const SO_NETNS_COOKIE = 71;

function fail(op: string, detail: string): BpfError {
  const e = errno();
  return new BpfError(op, e, errnoName(e), detail);
}

export function netnsCookie(netnsPath: string): bigint {
  const target = fs.openSync(netnsPath, 'r');
  const home = fs.openSync('/proc/thread-self/ns/net', 'r');
  try {
    if ((ffi.setns(target, CLONE_NEWNET) as number) !== 0) throw fail('setns', `enter ${netnsPath}`);
    let cookie: bigint | Error;
    const sock = ffi.socket(AF_INET, SOCK_DGRAM, 0) as number;
    if (sock < 0) {
      cookie = fail('socket', `in ${netnsPath}`);
    } else {
      const value = Buffer.alloc(8);
      const len = [8];
      cookie =
        (ffi.getsockopt(sock, SOL_SOCKET, SO_NETNS_COOKIE, value, len) as number) === 0
          ? value.readBigUInt64LE(0)
          : fail('getsockopt', 'SO_NETNS_COOKIE');
      ffi.close(sock);
    }
    // Back home before anything else can run on this thread in the wrong namespace.
    if ((ffi.setns(home, CLONE_NEWNET) as number) !== 0) throw fail('setns', 'return to own namespace');
    if (cookie instanceof Error) throw cookie;
    return cookie;
  } finally {
    fs.closeSync(target);
    fs.closeSync(home);
  }
}
