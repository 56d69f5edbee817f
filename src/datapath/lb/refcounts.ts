// Who refers to which backend, reverse-NAT address and NodePort mark. A frontend that is replaced
// or removed drops its references, and whatever reaches zero becomes a candidate that collect()
// deletes after the change: cost O(change), not O(maps).
import type { Protocol } from '../../model/k8s.ts';
import { encodeId, encodeNodePortKey } from '../lb-codec.ts';
import { forgetBackend } from './ids.ts';
import { addressKey, nodePortKey, type LbMaps, type LbState, type ProgrammedFrontend } from './state.ts';

export function setProgrammed(state: LbState, key: string, p: ProgrammedFrontend): void {
  deleteProgrammed(state, key);
  state.programmed.set(key, p);
  for (const id of p.backendIds) state.backendRefs.set(id, (state.backendRefs.get(id) ?? 0) + 1);
  const ak = addressKey(p.address, p.port, p.protocol);
  state.addressRefs.set(ak, (state.addressRefs.get(ak) ?? 0) + 1);
}

export function deleteProgrammed(state: LbState, key: string): void {
  const old = state.programmed.get(key);
  if (!old) return;
  state.programmed.delete(key);
  for (const id of old.backendIds) {
    if (release(state.backendRefs, id)) state.backendCandidates.add(id);
  }
  const ak = addressKey(old.address, old.port, old.protocol);
  if (release(state.addressRefs, ak)) state.addressCandidates.add(ak);
}

/** Drops one reference; true when it was the last. */
function release<K>(refs: Map<K, number>, key: K): boolean {
  const n = (refs.get(key) ?? 1) - 1;
  if (n > 0) {
    refs.set(key, n);
    return false;
  }
  refs.delete(key);
  return true;
}

export function refNodePort(state: LbState, port: number, protocol: Protocol, frontendKey: string): void {
  const np = nodePortKey(port, protocol);
  let refs = state.nodePortRefs.get(np);
  if (!refs) state.nodePortRefs.set(np, (refs = new Set()));
  refs.add(frontendKey);
}

export function unrefNodePort(state: LbState, port: number, protocol: Protocol, frontendKey: string): void {
  const np = nodePortKey(port, protocol);
  state.nodePortRefs.get(np)?.delete(frontendKey);
  state.nodePortCandidates.add(np);
}

/** Deletes the service ids, reverse-NAT entries, NodePort marks and backends a change left unused. */
export function collectUnused(state: LbState, maps: LbMaps): void {
  for (const ak of state.addressCandidates) {
    const id = state.serviceIds.get(ak);
    if (state.addressRefs.has(ak) || id === undefined) continue;
    maps.revnat.delete(encodeId(id));
    state.serviceIds.delete(ak);
  }
  state.addressCandidates.clear();
  for (const id of state.backendCandidates) {
    if (state.backendRefs.has(id) || !state.backends.has(id)) continue;
    maps.backends.delete(encodeId(id));
    forgetBackend(state, id);
  }
  state.backendCandidates.clear();
  for (const np of state.nodePortCandidates) {
    if (!state.nodePorts.has(np) || state.nodePortRefs.get(np)?.size) continue;
    const [port, protocol] = np.split('|') as [string, Protocol];
    maps.nodeports.delete(encodeNodePortKey(Number(port), protocol));
    state.nodePorts.delete(np);
    state.nodePortRefs.delete(np);
  }
  state.nodePortCandidates.clear();
}
