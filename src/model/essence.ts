// What makes two versions of an object the same to the model: the fields that decide behaviour.
// resourceVersion, managedFields and the like are not among them, so a no-op update is dropped
// at the tracker instead of recomputing a service.
import type { EndpointSlice, Node, Service } from './k8s.ts';

export function essence(object: Service | EndpointSlice | Node): string {
  const { metadata, ...rest } = object as unknown as { metadata: Record<string, unknown> } & Record<string, unknown>;
  return JSON.stringify([
    metadata.name,
    metadata.namespace,
    metadata.labels,
    metadata.annotations,
    metadata.deletionTimestamp,
    rest,
  ]);
}

/** `namespace/name`, the namespace defaulting as the API server defaults it. */
export function objectKey(meta: { name: string; namespace?: string }): string {
  return `${meta.namespace ?? 'default'}/${meta.name}`;
}
