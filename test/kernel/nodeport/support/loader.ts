// Test-only access to a loaded BPF object for the N-S packet tables: open with a private pin
// folder, set const volatile globals by symbol offset, run programs with BPF_PROG_RUN, read and
// write maps. A minimal libbpf shim written while the project binding (src/datapath/bpf) was not
// yet in the tree; once it is, this file should shrink to an adapter over BpfObject.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import koffi from 'koffi';

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

type Ptr = unknown;
const lib = koffi.load('libbpf.so.1');
// Registered by name for the declaration of bpf_prog_test_run_opts below.
const _testRunOpts = koffi.struct('ferry_np_test_run_opts', {
  sz: 'size_t',
  data_in: 'void *',
  data_out: 'void *',
  data_size_in: 'uint32_t',
  data_size_out: 'uint32_t',
  ctx_in: 'void *',
  ctx_out: 'void *',
  ctx_size_in: 'uint32_t',
  ctx_size_out: 'uint32_t',
  retval: 'uint32_t',
  repeat: 'int',
  duration: 'uint32_t',
  flags: 'uint32_t',
  cpu: 'uint32_t',
  batch_size: 'uint32_t',
});
const openFile = lib.func('void *bpf_object__open_file(const char *path, void *opts)');
const findProg = lib.func('void *bpf_object__find_program_by_name(void *obj, const char *name)');
const setPinPath = lib.func('int bpf_map__set_pin_path(void *map, const char *path)');
const initialValue = lib.func('void *bpf_map__initial_value(void *map, _Out_ size_t *psize)');
const objLoad = lib.func('int bpf_object__load(void *obj)');
const objClose = lib.func('void bpf_object__close(void *obj)');
const nextMap = lib.func('void *bpf_object__next_map(void *obj, void *prev)');
const mapName = lib.func('const char *bpf_map__name(void *map)');
const mapFd = lib.func('int bpf_map__fd(void *map)');
const mapKeySize = lib.func('uint32_t bpf_map__key_size(void *map)');
const mapValueSize = lib.func('uint32_t bpf_map__value_size(void *map)');
const mapType = lib.func('int bpf_map__type(void *map)');
const progFd = lib.func('int bpf_program__fd(void *prog)');
const updateElem = lib.func(
  'int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)',
);
const lookupElem = lib.func('int bpf_map_lookup_elem(int fd, const void *key, void *value)');
const deleteElem = lib.func('int bpf_map_delete_elem(int fd, const void *key)');
const nextKey = lib.func('int bpf_map_get_next_key(int fd, const void *key, void *next)');
const testRun = lib.func('int bpf_prog_test_run_opts(int fd, _Inout_ ferry_np_test_run_opts *opts)');
const numCpus = lib.func('int libbpf_num_possible_cpus(void)');
const objGet = lib.func('int bpf_obj_get(const char *path)');
const closeFd = koffi.load('libc.so.6').func('int close(int fd)');

const PERCPU_TYPES = new Set([5, 6, 10]); // PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH

/** Offsets of `.rodata` symbols, read from the ELF symbol table. */
function rodataOffsets(path: string): Map<string, number> {
  const out = execFileSync('llvm-objdump', ['-t', path], { encoding: 'utf8' });
  const offsets = new Map<string, number>();
  for (const line of out.split('\n')) {
    const m = /^([0-9a-f]+)\s.*\s\.rodata\s+[0-9a-f]+\s+(\S+)$/.exec(line);
    if (m?.[1] && m[2]) offsets.set(m[2], Number.parseInt(m[1], 16));
  }
  return offsets;
}

export interface OpenOptions {
  readonly pinRoot: string;
  readonly constants?: Readonly<Record<string, Buffer>>;
  readonly maxEntries?: Readonly<Record<string, number>>;
}

export function openObject(path: string, options: OpenOptions): LoadedObject {
  const obj = openFile(path, null) as Ptr;
  if (!obj) throw new Error(`bpf_object__open_file ${path}: errno ${koffi.errno()}`);
  mkdirSync(options.pinRoot, { recursive: true });
  const maps = new Map<string, Ptr>();
  for (let m = nextMap(obj, null) as Ptr; m; m = nextMap(obj, m) as Ptr) {
    const name = mapName(m) as string;
    maps.set(name, m);
  }
  // Pin-by-name maps go under the test's own folder, never the bpffs root.
  for (const [name, m] of maps) {
    if (!name.startsWith('ferry_')) continue;
    setPinPath(m, `${options.pinRoot}/${name}`);
  }
  const rodata = [...maps.entries()].find(([n]) => n.endsWith('.rodata'))?.[1];
  if (options.constants && Object.keys(options.constants).length > 0) {
    if (!rodata) throw new Error(`${path}: no .rodata map`);
    const offsets = rodataOffsets(path);
    const size = [0];
    const ptr = initialValue(rodata, size);
    const view = Buffer.from(koffi.view(ptr, Number(size[0])));
    for (const [name, value] of Object.entries(options.constants)) {
      const off = offsets.get(name);
      if (off === undefined) throw new Error(`${path}: no constant ${name}`);
      value.copy(view, off);
    }
  }
  const rc = objLoad(obj) as number;
  if (rc !== 0) {
    objClose(obj);
    rmSync(options.pinRoot, { recursive: true, force: true });
    throw new Error(`bpf_object__load ${path}: ${rc}`);
  }
  const ncpu = numCpus() as number;

  const wrap = (name: string): TestMap => {
    const m = maps.get(name);
    if (!m) throw new Error(`${path}: no map ${name}`);
    const vsize = mapValueSize(m) as number;
    const percpu = PERCPU_TYPES.has(mapType(m) as number);
    return fdMap(
      name,
      mapFd(m) as number,
      mapKeySize(m) as number,
      percpu ? Math.ceil(vsize / 8) * 8 * ncpu : vsize,
    );
  };

  return {
    map: wrap,
    programFd(program): number {
      const p = findProg(obj, program) as Ptr;
      if (!p) throw new Error(`${path}: no program ${program}`);
      return progFd(p) as number;
    },
    run(program, data, repeat = 1): RunResult {
      const p = findProg(obj, program) as Ptr;
      if (!p) throw new Error(`${path}: no program ${program}`);
      const inMem = koffi.alloc('uint8_t', data.length);
      Buffer.from(koffi.view(inMem, data.length)).set(data);
      const outLen = data.length + 256;
      const outMem = koffi.alloc('uint8_t', outLen);
      try {
        const opts = {
          sz: 80,
          data_in: inMem,
          data_out: outMem,
          data_size_in: data.length,
          data_size_out: outLen,
          ctx_in: null,
          ctx_out: null,
          ctx_size_in: 0,
          ctx_size_out: 0,
          retval: 0,
          repeat,
          duration: 0,
          flags: 0,
          cpu: 0,
          batch_size: 0,
        };
        const r = testRun(progFd(p), opts) as number;
        if (r !== 0) throw new Error(`BPF_PROG_RUN ${program}: ${r}`);
        const dataOut = Buffer.from(Buffer.from(koffi.view(outMem, outLen)).subarray(0, opts.data_size_out));
        return { retval: opts.retval, dataOut, durationNs: opts.duration };
      } finally {
        koffi.free(inMem);
        koffi.free(outMem);
      }
    },
    [Symbol.dispose](): void {
      objClose(obj);
    },
  };
}

function fdMap(name: string, fd: number, ksize: number, bufSize: number): TestMap {
  return {
    valueSize: bufSize,
    update(key, value, flags = 0): void {
      const r = updateElem(fd, key, value, flags) as number;
      if (r !== 0) throw new Error(`update ${name}: ${r}`);
    },
    lookup(key): Buffer | undefined {
      const out = Buffer.alloc(bufSize);
      return (lookupElem(fd, key, out) as number) === 0 ? out : undefined;
    },
    delete(key): boolean {
      return (deleteElem(fd, key) as number) === 0;
    },
    keys(): Buffer[] {
      const keys: Buffer[] = [];
      let prev: Buffer | null = null;
      for (;;) {
        const next = Buffer.alloc(ksize);
        if ((nextKey(fd, prev, next) as number) !== 0) break;
        keys.push(next);
        prev = next;
      }
      return keys;
    },
  };
}

/** A pinned map, opened by path; the fd lives until dispose. */
export function openPinnedMap(path: string, keySize: number, valueSize: number): TestMap & Disposable {
  const fd = objGet(path) as number;
  if (fd < 0) throw new Error(`bpf_obj_get ${path}: ${fd}`);
  return { ...fdMap(path, fd, keySize, valueSize), [Symbol.dispose]: (): void => void closeFd(fd) };
}

export function removePins(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
