// The lab's public surface, for tests of later issues and the CLI. A typical lab test:
//
//   const lab = await createLab({ nodes: 3, podsPerNode: 4 });   // ~0.25 s
//   t.after(() => lab.down());                                    // removes everything, even on failure
//   await lab.startEchoServer('n2-p1');                           // tcp/udp 7000, http 8080
//   const r = await lab.probe('n1-p1', target(lab.pod('n2-p1').ipv4, ECHO_PORTS.tcp), { count: 10 });
//   assert.deepEqual(r.summaries[0]?.backends, { 'n2-p1': 10 });
//
// Processes started with exec/spawn/startEchoServer/probe run in the host's netns (nsenter, so
// /sys/fs/bpf stays visible) and, for nodes and pods, in the node's cgroup (node.cgroup) — the
// cgroup a node's agent attaches its socket programs to. node.pinDir and node.runDir are the
// node agent's bpffs folder and scratch directory.
export { createLab, openLab, Lab, target, ECHO_PORTS } from './lab.ts';
export type { LabOptions, EchoServerOptions, ProbeOptions } from './lab.ts';
export { LabProcess, type ExecResult, type ExecOptions } from './exec.ts';
export { StaticPodNetwork } from './pod-network.ts';
export type { PodNetworkDriver, PodNetworkRequest, PodAddresses } from './pod-network.ts';
export {
  destroyLab,
  destroyAllLabs,
  labResidue,
  labNamesOnMachine,
  isEmptyResidue,
  type LabResidue,
} from './teardown.ts';
export { randomLabName, staticPodAddresses } from './plan.ts';
export {
  parseProbeOutput,
  type ProbeAttempt,
  type ProbeSummary,
  type ProbeReport,
} from './tools/protocol.ts';
export type { LabState, LabHost, LabNode, LabPod, LabClient, LabFabric } from './types.ts';
