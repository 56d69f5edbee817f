// North-south load balancing: what the agent needs to load, configure, attach and feed it.
//
//   const obj = BpfObject.open('build/bpf/nodeport_tc.o', { pinRoot });   // install.ts does all of this
//   for (const [name, value] of Object.entries(nodeportConstants(cfg))) obj.setConstant(name, value);
//   obj.load();
//   obj.program(NODEPORT_PROGRAMS.tcIngress).attachTc(ifindex, 'ingress');   // unless XDP is on
//   obj.program(NODEPORT_PROGRAMS.tcEgress).attachTc(ifindex, 'egress');     // always
//   xdpObj.program(NODEPORT_PROGRAMS.xdp).attachXdp(ifindex, 'native');      // XDP mode
//
// Both objects must share the pin root: the services/backends maps (lb.h), conntrack, NAT,
// Maglev, source ranges, counters and the per-object tail-call arrays are pinned by name (the
// tail-call arrays must stay pinned: the kernel empties a prog array when its last user
// reference goes). After each ServiceWriter apply, NodeportEdgeWriter.sync() writes the Maglev
// tables and source ranges; sweepExpired() runs periodically; the agent's HealthServer follows the
// model's health checks.
export { nodeportConstants, type NodeportConfig, type XdpMode } from './config.ts';
export { NodeportEdgeWriter, type EdgeMaps, type ProgrammedView } from './edge-writer.ts';
export { sweepExpired, ConntrackAccounting, type SweepResult, type SweepableMap } from './conntrack.ts';
export * from './maps.ts';

export const NODEPORT_PROGRAMS = {
  tcIngress: 'ferry_np_ingress',
  tcEgress: 'ferry_np_egress',
  xdp: 'ferry_np_xdp',
} as const;
