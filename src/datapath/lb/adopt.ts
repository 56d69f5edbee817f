// Adopting what the pinned maps hold: at agent start the state is rebuilt from the maps (no flush,
// no renumbering), and a full sync sweeps what a crash between publish steps left behind.
import {
  decodeBackend,
  decodeId,
  decodeNodePortKey,
  decodeServiceKey,
  decodeServiceValue,
  type ServiceKey,
  type ServiceValue,
} from '../lb-codec.ts';
import { forgetBackend, rememberBackend } from './ids.ts';
import { refNodePort, setProgrammed } from './refcounts.ts';
import { addressKey, emptyLbState, nodePortKey, slotGroupKey, type LbMaps, type LbState } from './state.ts';

/** A fresh state holding what the maps hold. */
export function readBackState(maps: LbMaps): LbState {
  const state = emptyLbState();
  for (const [k, v] of maps.backends.entries()) rememberBackend(state, decodeId(k), decodeBackend(v));
  const { masters, slots } = readServices(maps);
  for (const [fk, { key, value }] of masters) {
    const s = slots.get(fk) ?? new Map<number, number>();
    const backendIds: number[] = [];
    for (let i = 1; i <= value.count; i++) backendIds.push(s.get(i) ?? 0);
    const { serviceId, flags, affinityTimeout, algorithm, kind } = value;
    const { address, port, protocol, scope } = key;
    setProgrammed(state, fk, { key: fk, address, port, protocol, scope, serviceId, flags, affinityTimeout, algorithm, kind, backendIds });
    state.serviceIds.set(addressKey(address, port, protocol), serviceId);
    if (kind === 'NodePort') refNodePort(state, port, protocol, fk);
  }
  for (const [k] of maps.nodeports.entries()) {
    const np = decodeNodePortKey(k);
    state.nodePorts.add(nodePortKey(np.port, np.protocol));
    state.nodePortCandidates.add(nodePortKey(np.port, np.protocol)); // kept only if a NodePort frontend refers to it
  }
  return state;
}

/** The services map grouped by frontend: master entries, and each frontend's slot → backend id. */
function readServices(maps: LbMaps): {
  masters: Map<string, { key: ServiceKey; value: ServiceValue }>;
  slots: Map<string, Map<number, number>>;
} {
  const masters = new Map<string, { key: ServiceKey; value: ServiceValue }>();
  const slots = new Map<string, Map<number, number>>();
  for (const [k, v] of maps.services.entries()) {
    const key = decodeServiceKey(k);
    const value = decodeServiceValue(v);
    const fk = slotGroupKey(key);
    if (key.slot === 0) masters.set(fk, { key, value });
    else {
      let s = slots.get(fk);
      if (!s) slots.set(fk, (s = new Map()));
      s.set(key.slot, value.backendId);
    }
  }
  return { masters, slots };
}

/**
 * After a crash between steps: slots above a master's count, slots without a master, revnat of
 * nobody, backends of nobody. Returns how many entries were removed.
 */
export function sweepOrphans(state: LbState, maps: LbMaps): number {
  let orphans = 0;
  for (const [k, v] of [...maps.services.entries()]) {
    const key = decodeServiceKey(k);
    const p = state.programmed.get(slotGroupKey(key));
    const stale = key.slot === 0 ? !p : !p || key.slot > p.backendIds.length || p.backendIds[key.slot - 1] !== decodeServiceValue(v).backendId;
    if (stale && maps.services.delete(k)) orphans++;
  }
  const liveIds = new Set([...state.programmed.values()].map((p) => p.serviceId));
  for (const [k] of [...maps.revnat.entries()]) {
    if (!liveIds.has(decodeId(k)) && maps.revnat.delete(k)) orphans++;
  }
  const liveBackends = new Set([...state.programmed.values()].flatMap((p) => p.backendIds));
  for (const [k] of [...maps.backends.entries()]) {
    const id = decodeId(k);
    if (!liveBackends.has(id) && maps.backends.delete(k)) {
      orphans++;
      forgetBackend(state, id);
    }
  }
  return orphans;
}
