// The standalone source's public face: what the agent, the CLI and the lab import.
export {
  ManifestSource,
  type ManifestChange,
  type ManifestSourceOptions,
  type ManifestSourceStatus,
  type AllocationsStatus,
} from './source.ts';
export {
  liveAllocationsFrom,
  type LiveAllocations,
  type LiveFrontend,
  type ReadBackFrontend,
} from './recovery.ts';
export { formatIssue, type ManifestIssue } from './parse.ts';
export {
  DEFAULT_NODE_PORT_RANGE,
  DEFAULT_SERVICE_CIDRS,
  parsePortRange,
  parseServiceCidrs,
  type PortRange,
} from './ranges.ts';
export { AllocationError } from './allocator.ts';
export { LABEL_MANAGED_BY, MANAGED_BY_STANDALONE, isGeneratedSlice } from './endpointslices.ts';
