// Publishes frontend changes into the load-balancing maps so that a reader (a BPF program running
// at the same moment) never sees half a service (the order is in lb/publish.ts). Ids are read back
// from the pinned maps at start and never reassigned for a live object, so an agent restart neither
// flushes nor renumbers anything. This class only sequences the parts in lb/ over one LbState.
import type { Frontend, FrontendDiff } from '../model/frontend.ts';
import { readBackState, sweepOrphans } from './lb/adopt.ts';
import { matches, removeFrontend, upsertFrontend } from './lb/publish.ts';
import { collectUnused } from './lb/refcounts.ts';
import { emptyLbState, type LbMaps, type LbState, type ProgrammedFrontend } from './lb/state.ts';
import type { BackendValue } from './lb-codec.ts';

export type { MapLike } from './codec/map.ts';
export type { LbMaps, ProgrammedFrontend } from './lb/state.ts';

export interface ApplyResult {
  readonly upserted: number;
  readonly removed: number;
  readonly failed: readonly { readonly frontend: string; readonly error: Error }[];
  /** Map entries that belonged to nothing (after a crash) and were removed. */
  readonly orphansRemoved: number;
}

export class ServiceWriter {
  readonly #maps: LbMaps;
  #state: LbState = emptyLbState();
  #adopted = false;

  constructor(maps: LbMaps) {
    this.#maps = maps;
  }

  /** Rebuilds the in-memory view from the maps (agent start); returns the frontends found. */
  readBack(): ProgrammedFrontend[] {
    this.#adopted = true;
    this.#state = readBackState(this.#maps);
    return [...this.#state.programmed.values()];
  }

  programmed(): ReadonlyMap<string, ProgrammedFrontend> {
    return this.#state.programmed;
  }

  backend(id: number): BackendValue | undefined {
    return this.#state.backends.get(id);
  }

  /** Applies an incremental diff from the model. */
  apply(diff: FrontendDiff): ApplyResult {
    const failed: { frontend: string; error: Error }[] = [];
    let removed = 0;
    let upserted = 0;
    for (const f of diff.remove) if (removeFrontend(this.#state, this.#maps, f.key)) removed++;
    for (const f of diff.upsert) {
      try {
        if (upsertFrontend(this.#state, this.#maps, f)) upserted++;
      } catch (error) {
        failed.push({ frontend: f.key, error: error as Error });
      }
    }
    collectUnused(this.#state, this.#maps);
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
    for (const key of this.#state.programmed.keys()) if (!want.has(key)) remove.push({ key } as Frontend);
    const upsert = [...want.values()].filter((f) => !matches(this.#state, f));
    // Sweep against what readBack found before changing anything, so leftovers of a crash are
    // counted as such rather than disappearing among ordinary deletions.
    const orphansRemoved = sweepOrphans(this.#state, this.#maps);
    const result = this.apply({ upsert, remove });
    return { ...result, orphansRemoved };
  }
}
