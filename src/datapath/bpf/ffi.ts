// Every libbpf and libc declaration Ferry uses, in one module (koffi pointers are untyped: a wrong
// handle crashes the process, so nothing else declares foreign functions). libbpf 1.x returns
// -errno from int functions and NULL + errno from pointer functions.
import koffi from 'koffi';

const libbpf = koffi.load('libbpf.so.1');
const libc = koffi.load('libc.so.6');

export type Pointer = unknown;

export const BpfObjectOpenOpts = koffi.struct('ferry_bpf_object_open_opts', {
  sz: 'size_t',
  object_name: 'const char *',
  relaxed_maps: 'bool',
  pin_root_path: 'const char *',
  attach_prog_fd_unused: 'uint32_t',
  kconfig: 'const char *',
  btf_custom_path: 'const char *',
  kernel_log_buf: 'char *',
  kernel_log_size: 'size_t',
  kernel_log_level: 'uint32_t',
});

export const BpfTestRunOpts = koffi.struct('ferry_bpf_test_run_opts', {
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

export const BpfMapBatchOpts = koffi.struct('ferry_bpf_map_batch_opts', {
  sz: 'size_t',
  elem_flags: 'uint64_t',
  flags: 'uint64_t',
});

export const BpfTcHook = koffi.struct('ferry_bpf_tc_hook', {
  sz: 'size_t',
  ifindex: 'int',
  attach_point: 'int',
  parent: 'uint32_t',
});

export const BpfTcOpts = koffi.struct('ferry_bpf_tc_opts', {
  sz: 'size_t',
  prog_fd: 'int',
  flags: 'uint32_t',
  prog_id: 'uint32_t',
  handle: 'uint32_t',
  priority: 'uint32_t',
});

// struct bpf_xdp_attach_opts { size_t sz; int old_prog_fd; size_t :0; }
export const BpfXdpAttachOpts = koffi.struct('ferry_bpf_xdp_attach_opts', {
  sz: 'size_t',
  old_prog_fd: 'int',
  pad_: 'int',
});

export const RingBufferSampleFn = koffi.proto(
  'int ferry_ring_buffer_sample_fn(void *ctx, void *data, size_t size)',
);

// The sizes libbpf 1.1 compiles with on x86-64; a mismatch would make libbpf misread the options.
for (const [type, size] of [
  [BpfObjectOpenOpts, 80],
  [BpfTestRunOpts, 80],
  [BpfMapBatchOpts, 24],
  [BpfTcHook, 24],
  [BpfTcOpts, 32],
  [BpfXdpAttachOpts, 16],
] as const) {
  if (koffi.sizeof(type) !== size)
    throw new Error(`libbpf struct size mismatch: ${koffi.sizeof(type)} != ${size}`);
}

export const PrintFn = koffi.proto('int ferry_libbpf_print_fn(int level, const char *fmt, void *args)');

export const ffi = {
  libbpf_set_print: libbpf.func('void *libbpf_set_print(ferry_libbpf_print_fn *fn)'),
  libbpf_num_possible_cpus: libbpf.func('int libbpf_num_possible_cpus(void)'),
  bpf_object__open_file: libbpf.func(
    'void *bpf_object__open_file(const char *path, const ferry_bpf_object_open_opts *opts)',
  ),
  bpf_object__load: libbpf.func('int bpf_object__load(void *obj)'),
  bpf_object__close: libbpf.func('void bpf_object__close(void *obj)'),
  bpf_object__find_map_by_name: libbpf.func(
    'void *bpf_object__find_map_by_name(void *obj, const char *name)',
  ),
  bpf_object__find_program_by_name: libbpf.func(
    'void *bpf_object__find_program_by_name(void *obj, const char *name)',
  ),
  bpf_map__fd: libbpf.func('int bpf_map__fd(void *map)'),
  bpf_object__next_map: libbpf.func('void *bpf_object__next_map(void *obj, void *map)'),
  bpf_map__name: libbpf.func('const char *bpf_map__name(void *map)'),
  bpf_map__pin_path: libbpf.func('const char *bpf_map__pin_path(void *map)'),
  bpf_map__set_max_entries: libbpf.func('int bpf_map__set_max_entries(void *map, uint32_t max_entries)'),
  bpf_map__initial_value: libbpf.func('void *bpf_map__initial_value(void *map, _Out_ size_t *psize)'),
  bpf_map__set_initial_value: libbpf.func(
    'int bpf_map__set_initial_value(void *map, const void *data, size_t size)',
  ),
  bpf_object__btf: libbpf.func('void *bpf_object__btf(void *obj)'),
  btf__find_by_name_kind: libbpf.func(
    'int btf__find_by_name_kind(void *btf, const char *name, uint32_t kind)',
  ),
  btf__type_by_id: libbpf.func('void *btf__type_by_id(void *btf, uint32_t id)'),
  btf__name_by_offset: libbpf.func('const char *btf__name_by_offset(void *btf, uint32_t offset)'),
  bpf_program__fd: libbpf.func('int bpf_program__fd(void *prog)'),
  bpf_program__attach_cgroup: libbpf.func('void *bpf_program__attach_cgroup(void *prog, int cgroup_fd)'),
  bpf_link__pin: libbpf.func('int bpf_link__pin(void *link, const char *path)'),
  bpf_link__open: libbpf.func('void *bpf_link__open(const char *path)'),
  bpf_link__detach: libbpf.func('int bpf_link__detach(void *link)'),
  bpf_link__disconnect: libbpf.func('void bpf_link__disconnect(void *link)'),
  bpf_link__destroy: libbpf.func('int bpf_link__destroy(void *link)'),
  bpf_map_update_elem: libbpf.func(
    'int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)',
  ),
  bpf_map_lookup_elem: libbpf.func('int bpf_map_lookup_elem(int fd, const void *key, void *value)'),
  bpf_map_delete_elem: libbpf.func('int bpf_map_delete_elem(int fd, const void *key)'),
  bpf_map_get_next_key: libbpf.func('int bpf_map_get_next_key(int fd, const void *key, void *next_key)'),
  bpf_map_update_batch: libbpf.func(
    'int bpf_map_update_batch(int fd, const void *keys, const void *values, _Inout_ uint32_t *count, const ferry_bpf_map_batch_opts *opts)',
  ),
  bpf_map_lookup_batch: libbpf.func(
    'int bpf_map_lookup_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values, _Inout_ uint32_t *count, const ferry_bpf_map_batch_opts *opts)',
  ),
  bpf_map_delete_batch: libbpf.func(
    'int bpf_map_delete_batch(int fd, const void *keys, _Inout_ uint32_t *count, const ferry_bpf_map_batch_opts *opts)',
  ),
  bpf_tc_hook_create: libbpf.func('int bpf_tc_hook_create(ferry_bpf_tc_hook *hook)'),
  bpf_tc_attach: libbpf.func(
    'int bpf_tc_attach(const ferry_bpf_tc_hook *hook, _Inout_ ferry_bpf_tc_opts *opts)',
  ),
  bpf_tc_detach: libbpf.func(
    'int bpf_tc_detach(const ferry_bpf_tc_hook *hook, const ferry_bpf_tc_opts *opts)',
  ),
  bpf_xdp_attach: libbpf.func('int bpf_xdp_attach(int ifindex, int prog_fd, uint32_t flags, void *opts)'),
  bpf_xdp_detach: libbpf.func(
    'int bpf_xdp_detach(int ifindex, uint32_t flags, const ferry_bpf_xdp_attach_opts *opts)',
  ),
  ring_buffer__new: libbpf.func(
    'void *ring_buffer__new(int map_fd, ferry_ring_buffer_sample_fn *sample_cb, void *ctx, void *opts)',
  ),
  ring_buffer__epoll_fd: libbpf.func('int ring_buffer__epoll_fd(void *rb)'),
  ring_buffer__consume: libbpf.func('int ring_buffer__consume(void *rb)'),
  ring_buffer__free: libbpf.func('void ring_buffer__free(void *rb)'),
  if_nametoindex: libc.func('unsigned int if_nametoindex(const char *name)'),
  bpf_obj_pin: libbpf.func('int bpf_obj_pin(int fd, const char *path)'),
  bpf_obj_get: libbpf.func('int bpf_obj_get(const char *path)'),
  bpf_prog_get_fd_by_id: libbpf.func('int bpf_prog_get_fd_by_id(uint32_t id)'),
  bpf_obj_get_info_by_fd: libbpf.func(
    'int bpf_obj_get_info_by_fd(int fd, void *info, _Inout_ uint32_t *len)',
  ),
  bpf_prog_test_run_opts: libbpf.func(
    'int bpf_prog_test_run_opts(int fd, _Inout_ ferry_bpf_test_run_opts *opts)',
  ),
  vsnprintf: libc.func('int vsnprintf(void *buf, size_t size, const char *fmt, void *ap)'),
  close: libc.func('int close(int fd)'),
  // `ferry explain` reads a pod's network-namespace cookie (the socket layer's affinity key):
  // enter the namespace on this thread, ask a socket for SO_NETNS_COOKIE, and come back.
  setns: libc.func('int setns(int fd, int nstype)'),
  socket: libc.func('int socket(int domain, int type, int protocol)'),
  getsockopt: libc.func('int getsockopt(int fd, int level, int name, _Out_ uint8_t *value, _Inout_ uint32_t *len)'),
  // Copies a ring-buffer sample into a Node Buffer: ~10x cheaper than koffi.view + Buffer.from.
  memcpy: libc.func('void *memcpy(void *dst, const void *src, size_t n)'),
  // A BPF ring buffer read in place (src/observe/ring-reader.ts): no callback per sample.
  mmap: libc.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off)'),
  munmap: libc.func('int munmap(void *addr, size_t len)'),
  getpagesize: libc.func('int getpagesize()'),
  open: libc.func('int open(const char *path, int flags)'),
};

export const BTF_KIND_DATASEC = 15;
export const O_RDONLY = 0;
export const O_DIRECTORY = 0o200000;
export const O_CLOEXEC = 0o2000000;

export function errno(): number {
  return koffi.errno();
}

export function register(fn: (level: number, fmt: string, args: Pointer) => number): unknown {
  return koffi.register(fn, koffi.pointer(PrintFn));
}

export function registerSample(fn: (ctx: Pointer, data: Pointer, size: number) => number): unknown {
  return koffi.register(fn, koffi.pointer(RingBufferSampleFn));
}

export { koffi };
