// libbpf failures as BpfError, carrying the operation and the errno name.
import os from 'node:os';
import { BpfError, MapFullError } from '../../common/errors.ts';
import { errno as lastErrno } from './ffi.ts';

const names = new Map<number, string>(Object.entries(os.constants.errno).map(([name, n]) => [n, name]));

export function errnoName(n: number): string {
  return names.get(n) ?? `errno ${n}`;
}

/** Throws for a negative int result (-errno); returns it otherwise. */
export function check(op: string, result: number, detail?: string): number {
  if (result < 0) throw new BpfError(op, -result, errnoName(-result), detail);
  return result;
}

/** Throws for a NULL pointer result, reading errno at once. */
export function checkPointer<T>(op: string, pointer: T | null, detail?: string): T {
  if (pointer === null) {
    const n = lastErrno();
    throw new BpfError(op, n, errnoName(n), detail);
  }
  return pointer;
}

/** A map update that failed for lack of room names the map. */
export function checkUpdate(map: string, result: number, op = 'bpf_map_update_elem'): void {
  if (result === -7 /* E2BIG */ || result === -28 /* ENOSPC */)
    throw new MapFullError(map, `${op}: ${errnoName(-result)}`);
  check(`${op}(${map})`, result);
}
