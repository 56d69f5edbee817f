// EndpointSlice changes in, the slices of each Service kept (kube-proxy's
// pkg/proxy/endpointschangetracker.go): a slice is indexed under the Service its
// kubernetes.io/service-name label names, and both the Service it left and the one it joined are
// marked for the next sync. An invalid slice keeps its last valid version in force.
import { objectKey } from './essence.ts';
import { LABEL_SERVICE_NAME, type EndpointSlice, type NamespacedName } from './k8s.ts';
import type { ObjectErrors } from './object-errors.ts';
import { validateEndpointSlice } from './validate.ts';

function ownerOf(slice: EndpointSlice): NamespacedName | undefined {
  const owner = slice.metadata.labels?.[LABEL_SERVICE_NAME];
  return owner ? `${slice.metadata.namespace ?? 'default'}/${owner}` : undefined;
}

export class EndpointsChangeTracker {
  readonly #slices = new Map<string, EndpointSlice>();
  readonly #byService = new Map<NamespacedName, Map<string, EndpointSlice>>();
  readonly #pending: Set<NamespacedName>;
  readonly #errors: ObjectErrors;

  constructor(pending: Set<NamespacedName>, errors: ObjectErrors) {
    this.#pending = pending;
    this.#errors = errors;
  }

  /** Records one change; returns whether it can affect a Service's endpoints. */
  update(previous: EndpointSlice | undefined, current: EndpointSlice | undefined): boolean {
    const key = objectKey((current ?? previous)!.metadata);
    if (current) {
      const problems = validateEndpointSlice(current);
      if (problems.length > 0) {
        this.#errors.set(`EndpointSlice ${key}`, problems); // the last valid version stays in force
        return false;
      }
    }
    this.#errors.delete(`EndpointSlice ${key}`);
    const held = this.#slices.get(key);
    if (held) this.#unindex(key, held);
    if (!current) return held !== undefined;
    this.#slices.set(key, current);
    const svc = ownerOf(current);
    if (!svc) return held !== undefined;
    let map = this.#byService.get(svc);
    if (!map) this.#byService.set(svc, (map = new Map()));
    map.set(key, current);
    this.#pending.add(svc);
    return true;
  }

  /** The slices of one Service, in the order they arrived. */
  slicesOf(service: NamespacedName): EndpointSlice[] {
    return [...(this.#byService.get(service)?.values() ?? [])];
  }

  #unindex(key: string, slice: EndpointSlice): void {
    this.#slices.delete(key);
    const svc = ownerOf(slice);
    if (!svc) return;
    const map = this.#byService.get(svc);
    map?.delete(key);
    if (map?.size === 0) this.#byService.delete(svc);
    this.#pending.add(svc);
  }
}
