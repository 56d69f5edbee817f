// Ferry's binding to libbpf (through koffi), shaped like cilium/ebpf: BpfObject (open → size →
// load), BpfMap (lookup / update / delete / keys / entries / pin / openPinned), BpfProgram
// (attachCgroup → BpfLink, run = BPF_PROG_RUN), BpfLink (pin / openPinned / detach / close).
export { BpfObject, type OpenOptions } from './object.ts';
export { BpfMap, type UpdateFlag, type MapInfo } from './map.ts';
export { BpfProgram, BpfLink, type RunOptions, type RunResult } from './program.ts';
export { errnoName } from './errors.ts';
