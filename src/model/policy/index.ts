// The NetworkPolicy model's public surface, for src/model/index.ts to re-export when policy is
// wired in. How a decision is made, in the order to read the files:
//   api.ts        the objects (networking.k8s.io/v1 NetworkPolicy, and Pod/Namespace/Node as policy sees them)
//   validate.ts   the API server's validation, problems by object and field; tracker.ts keeps the last valid version
//   peers.ts      what one rule matches (defaulting, peers, ports), shared by the next two
//   evaluate.ts   the reference decision, straight from the objects
//   compile.ts    the datapath's shapes: identities and LPM (address-map.ts, identity.ts), per-endpoint tables, port prefixes (ports.ts)
//   lookup.ts     the decision over those shapes, exactly as the BPF code must make it
export * from './api.ts';
export { validateNetworkPolicy, describePolicy } from './validate.ts';
export { PolicyTracker } from './tracker.ts';
export { policyTypes } from './peers.ts';
export {
  evaluate,
  podAt,
  selects,
  type Decision,
  type DirectionDecision,
  type Flow,
  type RuleRef,
} from './evaluate.ts';
export {
  compileNode,
  entryKey,
  newCompileState,
  NODE_POLICY_ID,
  PROTOCOL_NUMBER,
  type CompileOptions,
  type CompileState,
  type EndpointTable,
  type NodePolicy,
  type PolicyEntry,
} from './compile.ts';
export { lpmLookup, type AddressMap, type LpmEntry, type LpmValue } from './address-map.ts';
export {
  FIRST_ALLOCATED_IDENTITY,
  IDENTITY_ANY,
  IDENTITY_HOST,
  IDENTITY_WORLD,
  IdentityAllocator,
  type IdentityInfo,
} from './identity.ts';
export { lookup, lookupAcross, probe, type DirectionLookup, type LookupResult } from './lookup.ts';
export { flattenRanges, prefixContains, rangeToPrefixes, type PortPrefix } from './ports.ts';
