// Publishes frontend changes into the load-balancing maps so that a reader (a BPF program running
// at the same moment) never sees half a service: backends → slots 1..N → the slot 0 master entry
// (the moment the new set becomes visible) → surplus slots deleted → unreferenced backends deleted.
// Ids are read back from the pinned maps at start and never reassigned for a live object, so an
// agent restart neither flushes nor renumbers anything.
import { MapFullError } from '../common/errors.ts';
import type { Frontend, FrontendDiff } from '../model/frontend.ts';
import type { Protocol } from '../model/k8s.ts';
import {
  ALG,
  SVC_F_DROP,
  SVC_F_REJECT,
  decodeBackend,
  decodeId,
  decodeNodePortKey,
  decodeServiceKey,
  decodeServiceValue,
  encodeBackend,
  encodeId,
  encodeNodePortKey,
  encodeRevNat,
  encodeServiceKey,
  encodeServiceValue,
  NODEPORT_VALUE,
  type BackendValue,
  type ServiceKey,
  type ServiceValue,
} from './lb-codec.ts';

/** The part of a BPF map the writer needs; the real BpfMap and the tests' fake both provide it. */
export interface MapLike {
  readonly name: string;
  lookup(key: Buffer): Buffer | undefined;
  update(key: Buffer, value: Buffer): void;
  delete(key: Buffer): boolean;
  entries(): Iterable<[Buffer, Buffer]>;
}

export interface LbMaps {
  readonly services: MapLike;
  readonly backends: MapLike;
  readonly revnat: MapLike;
  readonly nodeports: MapLike;
}

/** What a frontend looks like in the maps: enough to compare with a desired Frontend. */
export interface ProgrammedFrontend {
  readonly key: string; // frontendKey()
  readonly address: string;
  readonly port: number;
  readonly protocol: Protocol;
  readonly scope: Frontend['scope'];
  readonly serviceId: number;
  readonly flags: number;
  readonly affinityTimeout: number;
  readonly algorithm: number;
  readonly kind: Frontend['kind'];
  readonly backendIds: readonly number[];
}

export interface ApplyResult {
  readonly upserted: number;
  readonly removed: number;
  readonly failed: readonly { readonly frontend: string; readonly error: Error }[];
  /** Map entries that belonged to nothing (after a crash) and were removed. */
  readonly orphansRemoved: number;
}

const addressKey = (address: string, port: number, protocol: Protocol): string => `${address}|${port}|${protocol}`;

function masterValue(f: Frontend, serviceId: number): ServiceValue {
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

export class ServiceWriter {
  readonly #maps: LbMaps;
  readonly #programmed = new Map<string, ProgrammedFrontend>();
  /** frontend address|port|protocol → service id (both scopes share it: one reverse-NAT entry). */
  readonly #serviceIds = new Map<string, number>();
  readonly #backendIds = new Map<string, number>(); // address|port|protocol → id
  readonly #backends = new Map<number, BackendValue>();
  readonly #nodePorts = new Set<string>(); // port|protocol currently in the nodeports map
  #orphans = 0;
  #adopted = false;

  constructor(maps: LbMaps) {
    this.#maps = maps;
  }

  /** Rebuilds the in-memory view from the maps (agent start); returns the frontends found. */
  readBack(): ProgrammedFrontend[] {
    this.#adopted = true;
    this.#programmed.clear();
    this.#backendRefs.clear();
    this.#addressRefs.clear();
    this.#backendCandidates.clear();
    this.#addressCandidates.clear();
    this.#npCandidates.clear();
    this.#serviceIds.clear();
    this.#backendIds.clear();
    this.#backends.clear();
    this.#nodePorts.clear();
    this.#nodePortRefs.clear();
    this.#serviceIdCursor = 0;
    this.#backendIdCursor = 0;
    for (const [k, v] of this.#maps.backends.entries()) {
      const id = decodeId(k);
      const b = decodeBackend(v);
      this.#backends.set(id, b);
      this.#backendIds.set(addressKey(b.address, b.port, b.protocol), id);
    }
    const masters = new Map<string, { key: ServiceKey; value: ServiceValue }>();
    const slots = new Map<string, Map<number, number>>();
    for (const [k, v] of this.#maps.services.entries()) {
      const key = decodeServiceKey(k);
      const value = decodeServiceValue(v);
      const fk = `${key.address}|${key.port}|${key.protocol}|${key.scope}`;
      if (key.slot === 0) masters.set(fk, { key, value });
      else {
        let s = slots.get(fk);
        if (!s) slots.set(fk, (s = new Map()));
        s.set(key.slot, value.backendId);
      }
    }
    for (const [fk, { key, value }] of masters) {
      const s = slots.get(fk) ?? new Map<number, number>();
      const backendIds: number[] = [];
      for (let i = 1; i <= value.count; i++) backendIds.push(s.get(i) ?? 0);
      this.#setProgrammed(fk, {
        key: fk,
        address: key.address,
        port: key.port,
        protocol: key.protocol,
        scope: key.scope,
        serviceId: value.serviceId,
        flags: value.flags,
        affinityTimeout: value.affinityTimeout,
        algorithm: value.algorithm,
        kind: value.kind,
        backendIds,
      });
      this.#serviceIds.set(addressKey(key.address, key.port, key.protocol), value.serviceId);
      if (value.kind === 'NodePort') this.#refNodePort(key.port, key.protocol, fk);
    }
    for (const [k] of this.#maps.nodeports.entries()) {
      const np = decodeNodePortKey(k);
      this.#nodePorts.add(`${np.port}|${np.protocol}`);
      this.#npCandidates.add(`${np.port}|${np.protocol}`); // kept only if a NodePort frontend refers to it
    }
    return [...this.#programmed.values()];
  }

  programmed(): ReadonlyMap<string, ProgrammedFrontend> {
    return this.#programmed;
  }

  backend(id: number): BackendValue | undefined {
    return this.#backends.get(id);
  }

  /** Applies an incremental diff from the model. */
  apply(diff: FrontendDiff): ApplyResult {
    const failed: { frontend: string; error: Error }[] = [];
    let removed = 0;
    let upserted = 0;
    for (const f of diff.remove) if (this.#remove(f.key)) removed++;
    for (const f of diff.upsert) {
      try {
        if (this.#upsert(f)) upserted++;
      } catch (error) {
        failed.push({ frontend: f.key, error: error as Error });
      }
    }
    this.#collect();
    return { upserted, removed, failed, orphansRemoved: 0 };
  }

  /**
   * Makes the maps hold exactly `desired` (a full sync, or the first sync after readBack): writes
   * what differs, removes what is not desired, and sweeps entries that belong to no frontend.
   */
  reconcile(desired: Iterable<Frontend>): ApplyResult {
    if (!this.#adopted) this.readBack(); // never sweep against an empty view: that would flush the maps
    const want = new Map<string, Frontend>();
    for (const f of desired) want.set(f.key, f);
    const remove: Frontend[] = [];
    for (const key of this.#programmed.keys()) if (!want.has(key)) remove.push({ key } as Frontend);
    const upsert = [...want.values()].filter((f) => !this.#matches(f));
    // Sweep against what readBack found before changing anything, so leftovers of a crash are
    // counted as such rather than disappearing among ordinary deletions.
    this.#orphans = 0;
    this.#sweepOrphans();
    const result = this.apply({ upsert, remove });
    return { ...result, orphansRemoved: this.#orphans };
  }

  #matches(f: Frontend): boolean {
    const p = this.#programmed.get(f.key);
    if (!p) return false;
    const m = masterValue(f, p.serviceId);
    if (p.flags !== m.flags || p.affinityTimeout !== m.affinityTimeout || p.algorithm !== m.algorithm || p.kind !== m.kind) return false;
    if (p.backendIds.length !== m.count) return false;
    const wanted = m.count === 0 ? [] : f.backends;
    for (let i = 0; i < wanted.length; i++) {
      const b = this.#backends.get(p.backendIds[i]!);
      const w = wanted[i]!;
      if (!b || b.address !== w.address || b.port !== w.port || b.protocol !== w.protocol) return false;
      if (b.state !== w.state || b.nodeLocal !== w.nodeLocal) return false;
    }
    return true;
  }

  #nextServiceId(): number {
    if (!this.#serviceIdCursor) for (const id of this.#serviceIds.values()) this.#serviceIdCursor = Math.max(this.#serviceIdCursor, id);
    return ++this.#serviceIdCursor;
  }
  #serviceIdCursor = 0;

  #nextBackendId(): number {
    if (!this.#backendIdCursor) for (const id of this.#backends.keys()) this.#backendIdCursor = Math.max(this.#backendIdCursor, id);
    return ++this.#backendIdCursor;
  }
  #backendIdCursor = 0;

  #update(map: MapLike, key: Buffer, value: Buffer): void {
    try {
      map.update(key, value);
    } catch (error) {
      if (error instanceof MapFullError) throw error;
      const code = (error as { errnoName?: string }).errnoName;
      if (code === 'E2BIG' || code === 'ENOSPC' || code === 'ENOMEM') throw new MapFullError(map.name);
      throw error;
    }
  }

  #upsert(f: Frontend): boolean {
    if (this.#matches(f)) return false;
    const previous = this.#programmed.get(f.key);
    const ak = addressKey(f.address, f.port, f.protocol);
    let serviceId = this.#serviceIds.get(ak);
    const newServiceId = serviceId === undefined;
    serviceId ??= this.#nextServiceId();
    const master = masterValue(f, serviceId);
    const wanted = master.count === 0 ? [] : f.backends;
    // Undo log: restores the maps if an update fails part-way, so a frontend is all or nothing.
    const undo: (() => void)[] = [];
    const newBackendIds: number[] = [];
    try {
      // 1. backends and the reverse-NAT entry
      const ids: number[] = [];
      for (const b of wanted) {
        const bk = addressKey(b.address, b.port, b.protocol);
        let id = this.#backendIds.get(bk);
        const value: BackendValue = { address: b.address, port: b.port, protocol: b.protocol, state: b.state, nodeLocal: b.nodeLocal };
        const old = id === undefined ? undefined : this.#backends.get(id);
        if (id === undefined) {
          id = this.#nextBackendId();
          newBackendIds.push(id);
          const created = id;
          this.#update(this.#maps.backends, encodeId(id), encodeBackend(value));
          undo.push(() => this.#maps.backends.delete(encodeId(created)));
          this.#backendIds.set(bk, id);
          this.#backends.set(id, value);
        } else if (old && (old.state !== value.state || old.nodeLocal !== value.nodeLocal)) {
          const same = id;
          this.#update(this.#maps.backends, encodeId(id), encodeBackend(value));
          // The in-memory copy is undone with the map entry: `service list`, `explain` and the
          // north-south SNAT decision (nodeLocal) read it, and must see what the map holds.
          undo.push(() => {
            this.#backends.set(same, old);
            this.#maps.backends.update(encodeId(same), encodeBackend(old));
          });
          this.#backends.set(id, value);
        }
        ids.push(id);
      }
      if (newServiceId) {
        this.#update(this.#maps.revnat, encodeId(serviceId), encodeRevNat({ address: f.address, port: f.port }));
        undo.push(() => this.#maps.revnat.delete(encodeId(serviceId)));
      }
      // 2. slots 1..N
      const key = { address: f.address, port: f.port, protocol: f.protocol, scope: f.scope };
      for (let i = 0; i < ids.length; i++) {
        const kb = encodeServiceKey({ ...key, slot: i + 1 });
        const before = this.#maps.services.lookup(kb);
        this.#update(this.#maps.services, kb, encodeServiceValue({ ...master, backendId: ids[i]!, count: 0, flags: 0, serviceId: 0, affinityTimeout: 0, algorithm: 0, kind: 'ClusterIP' }));
        undo.push(() => (before ? this.#maps.services.update(kb, before) : this.#maps.services.delete(kb)));
      }
      // 3. the master entry: from here on readers use the new set
      this.#update(this.#maps.services, encodeServiceKey({ ...key, slot: 0 }), encodeServiceValue(master));
      // 4. surplus slots
      for (let slot = ids.length + 1; slot <= (previous?.backendIds.length ?? 0); slot++) {
        this.#maps.services.delete(encodeServiceKey({ ...key, slot }));
      }
      if (f.kind === 'NodePort') this.#addNodePort(f);
      this.#serviceIds.set(ak, serviceId);
      this.#setProgrammed(f.key, {
        key: f.key,
        address: f.address,
        port: f.port,
        protocol: f.protocol,
        scope: f.scope,
        serviceId,
        flags: master.flags,
        affinityTimeout: master.affinityTimeout,
        algorithm: master.algorithm,
        kind: f.kind,
        backendIds: ids,
      });
      return true;
    } catch (error) {
      for (const step of undo.reverse()) {
        try {
          step();
        } catch {
          // best effort: the next full sync sweeps what is left
        }
      }
      for (const id of newBackendIds) {
        const b = this.#backends.get(id);
        if (b) this.#backendIds.delete(addressKey(b.address, b.port, b.protocol));
        this.#backends.delete(id);
      }
      throw error;
    }
  }

  #remove(key: string): boolean {
    const p = this.#programmed.get(key);
    if (!p) return false;
    const base = { address: p.address, port: p.port, protocol: p.protocol, scope: p.scope };
    this.#maps.services.delete(encodeServiceKey({ ...base, slot: 0 })); // master first: the frontend vanishes at once
    for (let slot = 1; slot <= p.backendIds.length; slot++) this.#maps.services.delete(encodeServiceKey({ ...base, slot }));
    this.#deleteProgrammed(key);
    const np = `${p.port}|${p.protocol}`;
    this.#nodePortRefs.get(np)?.delete(key);
    this.#npCandidates.add(np);
    return true;
  }

  // Reference counts, so that collecting what a change left unused costs O(change), not O(maps).
  readonly #backendRefs = new Map<number, number>();
  readonly #addressRefs = new Map<string, number>();
  readonly #backendCandidates = new Set<number>();
  readonly #addressCandidates = new Set<string>();
  readonly #npCandidates = new Set<string>();

  #setProgrammed(key: string, p: ProgrammedFrontend): void {
    this.#deleteProgrammed(key);
    this.#programmed.set(key, p);
    for (const id of p.backendIds) this.#backendRefs.set(id, (this.#backendRefs.get(id) ?? 0) + 1);
    const ak = addressKey(p.address, p.port, p.protocol);
    this.#addressRefs.set(ak, (this.#addressRefs.get(ak) ?? 0) + 1);
  }

  #deleteProgrammed(key: string): void {
    const old = this.#programmed.get(key);
    if (!old) return;
    this.#programmed.delete(key);
    for (const id of old.backendIds) {
      const n = (this.#backendRefs.get(id) ?? 1) - 1;
      if (n > 0) this.#backendRefs.set(id, n);
      else {
        this.#backendRefs.delete(id);
        this.#backendCandidates.add(id);
      }
    }
    const ak = addressKey(old.address, old.port, old.protocol);
    const n = (this.#addressRefs.get(ak) ?? 1) - 1;
    if (n > 0) this.#addressRefs.set(ak, n);
    else {
      this.#addressRefs.delete(ak);
      this.#addressCandidates.add(ak);
    }
  }

  /** Deletes the service ids, reverse-NAT entries, NodePort marks and backends a change left unused. */
  #collect(): void {
    for (const ak of this.#addressCandidates) {
      const id = this.#serviceIds.get(ak);
      if (this.#addressRefs.has(ak) || id === undefined) continue;
      this.#maps.revnat.delete(encodeId(id));
      this.#serviceIds.delete(ak);
    }
    this.#addressCandidates.clear();
    for (const id of this.#backendCandidates) {
      const b = this.#backends.get(id);
      if (this.#backendRefs.has(id) || !b) continue;
      this.#maps.backends.delete(encodeId(id));
      this.#backends.delete(id);
      this.#backendIds.delete(addressKey(b.address, b.port, b.protocol));
    }
    this.#backendCandidates.clear();
    for (const np of this.#npCandidates) {
      if (!this.#nodePorts.has(np) || this.#nodePortRefs.get(np)?.size) continue;
      const [port, protocol] = np.split('|') as [string, Protocol];
      this.#maps.nodeports.delete(encodeNodePortKey(Number(port), protocol));
      this.#nodePorts.delete(np);
      this.#nodePortRefs.delete(np);
    }
    this.#npCandidates.clear();
  }

  /** NodePort frontends mark their port so the bind hook keeps local sockets off it. */
  readonly #nodePortRefs = new Map<string, Set<string>>();

  #addNodePort(f: Frontend): void {
    const np = `${f.port}|${f.protocol}`;
    if (!this.#nodePorts.has(np)) this.#update(this.#maps.nodeports, encodeNodePortKey(f.port, f.protocol), NODEPORT_VALUE);
    this.#nodePorts.add(np);
    this.#refNodePort(f.port, f.protocol, f.key);
  }

  #refNodePort(port: number, protocol: Protocol, frontendKey: string): void {
    const np = `${port}|${protocol}`;
    let refs = this.#nodePortRefs.get(np);
    if (!refs) this.#nodePortRefs.set(np, (refs = new Set()));
    refs.add(frontendKey);
  }

  /** After a crash between steps: slots above a master's count, slots without a master, revnat of nobody. */
  #sweepOrphans(): void {
    for (const [k, v] of [...this.#maps.services.entries()]) {
      const key = decodeServiceKey(k);
      const fk = `${key.address}|${key.port}|${key.protocol}|${key.scope}`;
      const p = this.#programmed.get(fk);
      const stale = key.slot === 0 ? !p : !p || key.slot > p.backendIds.length || p.backendIds[key.slot - 1] !== decodeServiceValue(v).backendId;
      if (stale && this.#maps.services.delete(k)) this.#orphans++;
    }
    const liveIds = new Set([...this.#programmed.values()].map((p) => p.serviceId));
    for (const [k] of [...this.#maps.revnat.entries()]) {
      if (!liveIds.has(decodeId(k)) && this.#maps.revnat.delete(k)) this.#orphans++;
    }
    const liveBackends = new Set([...this.#programmed.values()].flatMap((p) => p.backendIds));
    for (const [k] of [...this.#maps.backends.entries()]) {
      const id = decodeId(k);
      if (!liveBackends.has(id) && this.#maps.backends.delete(k)) {
        this.#orphans++;
        const b = this.#backends.get(id);
        if (b) this.#backendIds.delete(addressKey(b.address, b.port, b.protocol));
        this.#backends.delete(id);
      }
    }
  }
}
