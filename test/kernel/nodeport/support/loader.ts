// Test access to a loaded N-S object: a thin adapter over the project binding (BpfObject) with the
// small surface the packet tables use — open with a private pin folder, set const volatile
// globals, run programs with BPF_PROG_RUN, read and write maps.
import { mkdirSync, rmSync } from 'node:fs';
import { BpfMap, BpfObject, type UpdateFlag } from '../../../../src/datapath/bpf/index.ts';

export interface RunResult {
  readonly retval: number;
  readonly dataOut: Buffer;
  readonly durationNs: number;
}

export interface TestMap {
  update(key: Buffer, value: Buffer, flags?: number): void;
  lookup(key: Buffer): Buffer | undefined;
  delete(key: Buffer): boolean;
  keys(): Buffer[];
  readonly valueSize: number;
}

export interface LoadedObject extends Disposable {
  map(name: string): TestMap;
  programFd(name: string): number;
  run(program: string, data: Buffer, repeat?: number): RunResult;
}

export interface OpenOptions {
  readonly pinRoot: string;
  readonly constants?: Readonly<Record<string, Buffer>>;
  readonly maxEntries?: Readonly<Record<string, number>>;
}

const FLAGS: readonly UpdateFlag[] = ['any', 'noexist', 'exist'];

function adapt(map: BpfMap): TestMap {
  return {
    valueSize: map.valueBufferSize,
    update: (key, value, flags = 0) => map.update(key, value, FLAGS[flags] ?? 'any'),
    lookup: (key) => map.lookup(key),
    delete: (key) => map.delete(key),
    keys: () => [...map.keys()],
  };
}

export function openObject(path: string, options: OpenOptions): LoadedObject {
  mkdirSync(options.pinRoot, { recursive: true });
  const obj = BpfObject.open(path, { pinRoot: options.pinRoot });
  try {
    for (const [name, n] of Object.entries(options.maxEntries ?? {})) obj.setMapMaxEntries(name, n);
    for (const [name, value] of Object.entries(options.constants ?? {})) obj.setConstant(name, value);
    obj.load();
  } catch (error) {
    obj.close();
    throw error;
  }
  return {
    map: (name) => adapt(obj.map(name)),
    programFd: (name) => obj.program(name).fd,
    run: (program, data, repeat = 1) => obj.program(program).run({ data, repeat }),
    [Symbol.dispose]: () => obj.close(),
  };
}

/** A pinned map, opened by path; the fd lives until dispose. */
export function openPinnedMap(path: string, _keySize: number, _valueSize: number): TestMap & Disposable {
  const map = BpfMap.openPinned(path);
  return { ...adapt(map), [Symbol.dispose]: () => map.close() };
}

export function removePins(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
