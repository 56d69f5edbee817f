// The north-south maps the ServiceWriter does not own: Maglev lookup tables and
// loadBalancerSourceRanges, both keyed by the service id the ServiceWriter assigned. Run after
// each ServiceWriter apply; it rewrites only what changed and deletes what no frontend needs.
import type { Frontend } from '../../model/frontend.ts';
import type { BackendValue } from '../lb-codec.ts';
import type { ProgrammedFrontend } from '../service-writer.ts';
import type { MapLike } from '../codec/index.ts';
import { encodeMaglevTable, maglevTable } from '../maglev.ts';
import { srcRangeEntries } from './maps.ts';

/** What the edge writer needs from the ServiceWriter. */
export interface ProgrammedView {
  programmed(): ReadonlyMap<string, ProgrammedFrontend>;
  backend(id: number): BackendValue | undefined;
}

export interface EdgeMaps {
  readonly maglev: MapLike;
  readonly srcRanges: MapLike;
}

function idKey(id: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(id);
  return b;
}

export class NodeportEdgeWriter {
  readonly #maps: EdgeMaps;
  readonly #tables = new Map<number, string>(); // service id → signature of the table written
  readonly #ranges = new Map<number, string>(); // service id → signature of the ranges written

  constructor(maps: EdgeMaps) {
    this.#maps = maps;
  }

  /** Bring both maps in line with the external frontends of `desired`. */
  sync(desired: Iterable<Frontend>, view: ProgrammedView): void {
    const programmed = view.programmed();
    const wantTables = new Map<number, Array<{ name: string; id: number }>>();
    const wantRanges = new Map<number, readonly string[]>();
    for (const f of desired) {
      if (f.scope !== 'external') continue;
      const p = programmed.get(f.key);
      if (!p) continue;
      if (f.algorithm === 'maglev' && f.action === 'forward') {
        const named = p.backendIds.flatMap((id) => {
          const b = view.backend(id);
          return b ? [{ name: `${b.address}:${b.port}`, id }] : [];
        });
        wantTables.set(p.serviceId, named);
      }
      if (f.sourceRanges.length > 0) wantRanges.set(p.serviceId, [...f.sourceRanges].sort());
    }

    for (const [sid, named] of wantTables) {
      const sig = named
        .map((n) => `${n.name}=${n.id}`)
        .sort()
        .join(',');
      if (this.#tables.get(sid) === sig) continue;
      this.#maps.maglev.update(idKey(sid), encodeMaglevTable(maglevTable(named)));
      this.#tables.set(sid, sig);
    }
    for (const sid of [...this.#tables.keys()]) {
      if (wantTables.has(sid)) continue;
      this.#maps.maglev.delete(idKey(sid));
      this.#tables.delete(sid);
    }

    for (const [sid, cidrs] of wantRanges) {
      const sig = cidrs.join(',');
      const old = this.#ranges.get(sid);
      if (old === sig) continue;
      // New entries first (the sentinel included), then the ones no longer wanted, so a client
      // inside both the old and the new ranges is never dropped in between.
      const entries = srcRangeEntries(sid, cidrs);
      for (const [k, v] of entries) this.#maps.srcRanges.update(k, v);
      if (old) {
        const keep = new Set(entries.map(([k]) => k.toString('hex')));
        for (const [k] of srcRangeEntries(sid, old.split(',')))
          if (!keep.has(k.toString('hex'))) this.#maps.srcRanges.delete(k);
      }
      this.#ranges.set(sid, sig);
    }
    for (const [sid, old] of [...this.#ranges]) {
      if (wantRanges.has(sid)) continue;
      // Sentinel last would leave a window where only the deny entry exists: delete it first.
      const entries = srcRangeEntries(sid, old.split(','));
      for (const [k] of entries) this.#maps.srcRanges.delete(k);
      this.#ranges.delete(sid);
    }
  }
}
