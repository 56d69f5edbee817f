// The agent's one door to the datapath. A sync writes the load-balancing maps (ServiceWriter) and
// then the north-south edge (Maglev tables, source ranges, healthCheckNodePort listeners), which
// is keyed by the service ids the first assigned. Both are inside the sync: a failure at the edge
// fails the sync and makes the next one full, as a failure in the LB maps does.
import type { Frontend, FrontendDiff, FrontendTable } from '../model/frontend.ts';
import type { ServiceWriter } from '../datapath/service-writer.ts';
import type { DatapathResult, DatapathWriter } from './agent.ts';

/** What is written from the whole desired table after the LB maps (north-south.ts). */
export interface EdgeSync {
  sync(table: FrontendTable, lb: ServiceWriter): Promise<void>;
  stop(): Promise<void>;
}

export class Datapath implements DatapathWriter {
  readonly name = 'datapath edge';
  readonly lb: ServiceWriter;
  #edge: EdgeSync | undefined;

  constructor(lb: ServiceWriter) {
    this.lb = lb;
  }

  /**
   * From the next sync on, `edge` is written with the LB maps. North-south joins after the first
   * sync: which interfaces and addresses it serves comes from the node the sources list.
   */
  attachEdge(edge: EdgeSync): void {
    this.#edge = edge;
  }

  readBack(): unknown {
    return this.lb.readBack();
  }

  async reconcile(desired: Iterable<Frontend>, table: FrontendTable): Promise<DatapathResult> {
    const result = this.lb.reconcile(desired);
    await this.#edge?.sync(table, this.lb);
    return result;
  }

  async apply(diff: FrontendDiff, table: FrontendTable): Promise<DatapathResult> {
    const result = this.lb.apply(diff);
    await this.#edge?.sync(table, this.lb);
    return result;
  }

  /** Frontends in the maps and the distinct backends they use (metrics). */
  programmedCounts(): { frontends: number; backends: number } {
    const frontends = this.lb.programmed();
    const backends = new Set<number>();
    for (const f of frontends.values()) for (const id of f.backendIds) backends.add(id);
    return { frontends: frontends.size, backends: backends.size };
  }

  /** Stops the edge (its listeners and programs' handles); the LB maps are the socket LB's. */
  async stop(): Promise<void> {
    const edge = this.#edge;
    this.#edge = undefined;
    await edge?.stop();
  }
}
