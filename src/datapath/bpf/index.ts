// Ferry's binding to libbpf (through koffi), shaped like cilium/ebpf: BpfObject (open → size →
// load), BpfMap (lookup / update / delete / keys / entries / pin / openPinned), BpfProgram
// (attachCgroup → BpfLink, attachTc / attachXdp, run = BPF_PROG_RUN), BpfLink (pin / openPinned /
// detach / close), RingBufferReader (event-loop driven, close() ends it).
export { BpfObject, type OpenOptions } from './object.ts';
export { BpfMap, type UpdateFlag, type MapInfo } from './map.ts';
export { BpfLink } from './link.ts';
export {
  BpfProgram,
  TcAttachment,
  XdpAttachment,
  detachTc,
  detachXdp,
  ifindexOf,
  type RunOptions,
  type RunResult,
} from './program.ts';
export { RingBufferReader } from './ringbuf.ts';
export { errnoName } from './errors.ts';
export { ensurePinDir, BPF_FS_MAGIC } from './bpffs.ts';
