// Pod identity by address. Two feeds, either may be absent: the EndpointSlices the agent already
// watches (their targetRefs name the Pod behind each address: every backend, in both modes) and,
// in standalone mode, the Pods of the manifest directory (clients that back no Service too).
import { canonicalIp } from '../common/ip.ts';
import type { EndpointSlice, Pod } from '../model/k8s.ts';
import type { ModelChange } from '../model/service-model.ts';
import type { PodRef } from './flow.ts';

export class PodIndex {
  /** slice namespace/name → the address → pod pairs it contributed. */
  readonly #bySlice = new Map<string, ReadonlyMap<string, PodRef>>();
  readonly #fromSlices = new Map<string, PodRef>();
  #fromPods = new Map<string, PodRef>();
  readonly #pods: (() => readonly Pod[]) | undefined;
  #podsReadAt = -Infinity;

  /** @param pods a listing of Pods (standalone source), re-read at most once a second on a miss. */
  constructor(pods?: () => readonly Pod[]) {
    this.#pods = pods;
  }

  /** Feed every model change here; only EndpointSlices matter. */
  onChange(change: ModelChange): void {
    if (change.kind !== 'EndpointSlice') return;
    const object = change.current ?? change.previous;
    if (!object) return;
    const key = `${object.metadata.namespace ?? 'default'}/${object.metadata.name}`;
    this.#bySlice.delete(key);
    if (change.current) this.#bySlice.set(key, sliceAddresses(change.current));
    this.#rebuild();
  }

  podByIp(ip: string): PodRef | undefined {
    if (this.#pods) {
      // Re-read on a miss (at most once a second) and every 10 s anyway: an address can pass
      // from a deleted Pod to a new one without any lookup missing.
      const age = performance.now() - this.#podsReadAt;
      if (age > 10_000 || (age > 1000 && !this.#fromPods.has(ip) && !this.#fromSlices.has(ip))) {
        this.#podsReadAt = performance.now();
        this.#fromPods = podAddresses(this.#pods());
      }
    }
    return this.#fromPods.get(ip) ?? this.#fromSlices.get(ip);
  }

  #rebuild(): void {
    this.#fromSlices.clear();
    for (const m of this.#bySlice.values()) for (const [ip, pod] of m) this.#fromSlices.set(ip, pod);
  }
}

function sliceAddresses(slice: EndpointSlice): Map<string, PodRef> {
  const out = new Map<string, PodRef>();
  for (const e of slice.endpoints ?? []) {
    const ref = e.targetRef;
    if (!ref?.name || (ref.kind !== undefined && ref.kind !== 'Pod')) continue;
    const pod = { namespace: ref.namespace ?? slice.metadata.namespace ?? 'default', name: ref.name };
    for (const a of e.addresses) out.set(canonicalIp(a) ?? a, pod);
  }
  return out;
}

/** hostNetwork Pods share the node's addresses: they name no one. */
export function podAddresses(pods: readonly Pod[]): Map<string, PodRef> {
  const out = new Map<string, PodRef>();
  for (const p of pods) {
    if (p.spec.hostNetwork) continue;
    const pod = { namespace: p.metadata.namespace ?? 'default', name: p.metadata.name };
    const ips = [p.status?.podIP, ...(p.status?.podIPs ?? []).map((i) => i.ip)];
    for (const ip of ips) if (ip) out.set(canonicalIp(ip) ?? ip, pod);
  }
  return out;
}
