// The pure Service model: Kubernetes objects in, the per-node frontend table out.
// A source's Change (change.ts) goes to ServiceModel.apply, which hands it to the service or
// endpoints change tracker (each keeps its last valid objects, validate.ts); sync() recomputes
// the touched Services (frontends.ts) into the frontend table (frontend-table.ts), which returns
// the minimal FrontendDiff the datapath writer applies.
//
//   const model = new ServiceModel({ nodeName: 'node-1', nodeAddresses: ['172.30.0.1'],
//                                    awaitSources: ['Service', 'EndpointSlice'] }); // optional gate
//   model.sourceSynced('Service'); model.synced;            // gate: sync() is empty until all listed
//   model.apply({ kind: 'Service', previous, current });   // from any source; no-ops return false
//   const { diff } = model.sync();                         // minimal FrontendDiff since the last sync
//   model.table(); model.errors();                         // current table; InvalidObjectErrors
//   resolve(model.table(), { source: 'pod', destination, port, protocol }) // backends | REJECT | DROP
export * from './k8s.ts';
export * from './frontend.ts';
export { computeServiceFrontends, isProgrammable, serviceName, DEFAULT_AFFINITY_TIMEOUT_SECONDS } from './frontends.ts';
export type { NodeContext, ServiceFrontends } from './frontends.ts';
export { categorizeEndpoints, compareEndpoints, endpointsForPort, sliceBelongsTo } from './endpoints.ts';
export type { EndpointInfo, CategorizedEndpoints, TrafficPolicies } from './endpoints.ts';
export { ServiceModel } from './service-model.ts';
export { nodeContextFrom } from './node-context.ts';
export type { ModelChange, ModelSync, ServiceModelOptions, SourceKind } from './service-model.ts';
export type { Change, ChangeKind, ChangeObjects, KeyedChange, Transition } from './change.ts';
export { validateService, validateEndpointSlice, validateNode, describeService } from './validate.ts';
export type { ServiceValidationOptions } from './validate.ts';
export { resolve } from './resolve.ts';
export type { FlowQuery, FlowResult } from './resolve.ts';
