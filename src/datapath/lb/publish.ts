// Publishes one frontend so that a reader (a BPF program running at the same moment) never sees
// half a service: backends → slots 1..N → the slot 0 master entry (the moment the new set becomes
// visible) → surplus slots deleted. Unreferenced backends go later, in collectUnused(). A failed
// write undoes what this frontend's publish did, so a frontend is in the maps whole or not at all.
import { MapFullError } from '../../common/errors.ts';
import type { Backend, Frontend } from '../../model/frontend.ts';
import type { MapLike } from '../codec/map.ts';
import {
  ALG,
  SVC_F_DROP,
  SVC_F_REJECT,
  encodeBackend,
  encodeId,
  encodeNodePortKey,
  encodeRevNat,
  encodeServiceKey,
  encodeServiceValue,
  NODEPORT_VALUE,
  type BackendValue,
  type ServiceValue,
} from '../lb-codec.ts';
import { forgetBackend, nextBackendId, nextServiceId, rememberBackend } from './ids.ts';
import { deleteProgrammed, refNodePort, setProgrammed, unrefNodePort } from './refcounts.ts';
import { addressKey, nodePortKey, type LbMaps, type LbState } from './state.ts';

/** Steps that restore the maps (and the in-memory copies of them) to before a failed publish. */
type UndoLog = (() => void)[];

type SlotGroup = Pick<Frontend, 'address' | 'port' | 'protocol' | 'scope'>;

export function masterValue(f: Frontend, serviceId: number): ServiceValue {
  const flags = f.action === 'reject' ? SVC_F_REJECT : f.action === 'drop' ? SVC_F_DROP : 0;
  return {
    backendId: 0,
    count: f.action === 'forward' ? f.backends.length : 0,
    flags,
    serviceId,
    affinityTimeout: f.affinityTimeoutSeconds,
    algorithm: ALG[f.algorithm],
    kind: f.kind,
  };
}

/** Whether the maps already hold exactly `f`. */
export function matches(state: LbState, f: Frontend): boolean {
  const p = state.programmed.get(f.key);
  if (!p) return false;
  const m = masterValue(f, p.serviceId);
  if (p.flags !== m.flags || p.affinityTimeout !== m.affinityTimeout || p.algorithm !== m.algorithm || p.kind !== m.kind) return false;
  if (p.backendIds.length !== m.count) return false;
  const wanted = m.count === 0 ? [] : f.backends;
  for (let i = 0; i < wanted.length; i++) {
    const b = state.backends.get(p.backendIds[i]!);
    const w = wanted[i]!;
    if (!b || b.address !== w.address || b.port !== w.port || b.protocol !== w.protocol) return false;
    if (b.state !== w.state || b.nodeLocal !== w.nodeLocal) return false;
  }
  return true;
}

/** An update whose failure for want of room is reported as MapFullError naming the map. */
function update(map: MapLike, key: Buffer, value: Buffer): void {
  try {
    map.update(key, value);
  } catch (error) {
    if (error instanceof MapFullError) throw error;
    const code = (error as { errnoName?: string }).errnoName;
    if (code === 'E2BIG' || code === 'ENOSPC' || code === 'ENOMEM') throw new MapFullError(map.name);
    throw error;
  }
}

/** Writes `f` unless the maps hold it already; returns whether anything was written. */
export function upsertFrontend(state: LbState, maps: LbMaps, f: Frontend): boolean {
  if (matches(state, f)) return false;
  const previous = state.programmed.get(f.key);
  const ak = addressKey(f.address, f.port, f.protocol);
  const knownServiceId = state.serviceIds.get(ak);
  const serviceId = knownServiceId ?? nextServiceId(state);
  const master = masterValue(f, serviceId);
  const undo: UndoLog = [];
  const newBackendIds: number[] = [];
  try {
    const ids = publishBackends(state, maps, master.count === 0 ? [] : f.backends, undo, newBackendIds);
    if (knownServiceId === undefined) {
      update(maps.revnat, encodeId(serviceId), encodeRevNat({ address: f.address, port: f.port }));
      undo.push(() => maps.revnat.delete(encodeId(serviceId)));
    }
    const group = slotGroup(f);
    publishSlots(maps.services, group, ids, undo);
    // From here on readers use the new set.
    update(maps.services, encodeServiceKey({ ...group, slot: 0 }), encodeServiceValue(master));
    for (let slot = ids.length + 1; slot <= (previous?.backendIds.length ?? 0); slot++) {
      maps.services.delete(encodeServiceKey({ ...group, slot }));
    }
    if (f.kind === 'NodePort') markNodePort(state, maps, f);
    state.serviceIds.set(ak, serviceId);
    const { flags, affinityTimeout, algorithm } = master;
    setProgrammed(state, f.key, { ...group, key: f.key, serviceId, flags, affinityTimeout, algorithm, kind: f.kind, backendIds: ids });
    return true;
  } catch (error) {
    rollBack(undo);
    for (const id of newBackendIds) forgetBackend(state, id);
    throw error;
  }
}

/** Step 1: every wanted backend has an id and an up-to-date entry; returns the ids in order. */
function publishBackends(state: LbState, maps: LbMaps, wanted: readonly Backend[], undo: UndoLog, created: number[]): number[] {
  const ids: number[] = [];
  for (const b of wanted) {
    const value: BackendValue = { address: b.address, port: b.port, protocol: b.protocol, state: b.state, nodeLocal: b.nodeLocal };
    const known = state.backendIds.get(addressKey(b.address, b.port, b.protocol));
    if (known === undefined) {
      const id = nextBackendId(state);
      created.push(id);
      update(maps.backends, encodeId(id), encodeBackend(value));
      undo.push(() => maps.backends.delete(encodeId(id)));
      rememberBackend(state, id, value);
      ids.push(id);
      continue;
    }
    const old = state.backends.get(known);
    if (old && (old.state !== value.state || old.nodeLocal !== value.nodeLocal)) {
      update(maps.backends, encodeId(known), encodeBackend(value));
      // The in-memory copy is undone with the map entry: `service list`, `explain` and the
      // north-south SNAT decision (nodeLocal) read it, and must see what the map holds.
      undo.push(() => {
        state.backends.set(known, old);
        maps.backends.update(encodeId(known), encodeBackend(old));
      });
      state.backends.set(known, value);
    }
    ids.push(known);
  }
  return ids;
}

/** Step 2: slots 1..N point at the backends; the master still describes the old set. */
function publishSlots(services: MapLike, group: SlotGroup, ids: readonly number[], undo: UndoLog): void {
  const slotValue = { backendId: 0, count: 0, flags: 0, serviceId: 0, affinityTimeout: 0, algorithm: 0, kind: 'ClusterIP' as const };
  for (let i = 0; i < ids.length; i++) {
    const kb = encodeServiceKey({ ...group, slot: i + 1 });
    const before = services.lookup(kb);
    update(services, kb, encodeServiceValue({ ...slotValue, backendId: ids[i]! }));
    undo.push(() => (before ? services.update(kb, before) : services.delete(kb)));
  }
}

/** NodePort frontends mark their port so the bind hook keeps local sockets off it. */
function markNodePort(state: LbState, maps: LbMaps, f: Frontend): void {
  const np = nodePortKey(f.port, f.protocol);
  if (!state.nodePorts.has(np)) update(maps.nodeports, encodeNodePortKey(f.port, f.protocol), NODEPORT_VALUE);
  state.nodePorts.add(np);
  refNodePort(state, f.port, f.protocol, f.key);
}

function rollBack(undo: UndoLog): void {
  for (const step of undo.reverse()) {
    try {
      step();
    } catch {
      // best effort: the next full sync sweeps what is left
    }
  }
}

/** Unpublishes a frontend, master first so it vanishes at once; returns whether it was there. */
export function removeFrontend(state: LbState, maps: LbMaps, key: string): boolean {
  const p = state.programmed.get(key);
  if (!p) return false;
  const group = slotGroup(p);
  maps.services.delete(encodeServiceKey({ ...group, slot: 0 }));
  for (let slot = 1; slot <= p.backendIds.length; slot++) maps.services.delete(encodeServiceKey({ ...group, slot }));
  deleteProgrammed(state, key);
  unrefNodePort(state, p.port, p.protocol, key);
  return true;
}

function slotGroup(f: SlotGroup): SlotGroup {
  return { address: f.address, port: f.port, protocol: f.protocol, scope: f.scope };
}
