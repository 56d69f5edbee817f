// Service identity by frontend id (the id every event carries, which the ServiceWriter assigned and
// keeps across restarts) and by NodePort (bind events). Built from the writer's view of the maps
// joined with the model's table, lazily: rebuilt on a miss at most twice a second, so a flood of
// events for an unknown id costs a map lookup each, not a rebuild each.
import type { Frontend } from '../model/frontend.ts';
import type { ProgrammedFrontend } from '../datapath/service-writer.ts';
import type { ServiceRef } from './flow.ts';

export interface ServiceSources {
  readonly programmed: () => ReadonlyMap<string, ProgrammedFrontend>;
  readonly frontends: () => ReadonlyMap<string, Frontend>;
}

const REBUILD_MS = 500;
const REFRESH_MS = 5000;

export class ServiceIndex {
  readonly #sources: ServiceSources;
  #byId = new Map<number, ServiceRef>();
  #byNodePort = new Map<string, ServiceRef>();
  #builtAt = -Infinity;

  constructor(sources: ServiceSources) {
    this.#sources = sources;
  }

  serviceById(id: number): ServiceRef | undefined {
    this.#refreshIfOld();
    return this.#byId.get(id) ?? (this.#maybeRebuild() ? this.#byId.get(id) : undefined);
  }

  serviceByNodePort(port: number, protocol: string): ServiceRef | undefined {
    this.#refreshIfOld();
    const key = `${port}|${protocol}`;
    return this.#byNodePort.get(key) ?? (this.#maybeRebuild() ? this.#byNodePort.get(key) : undefined);
  }

  /** A hit can be stale too (an id freed and given to another Service): refresh now and then. */
  #refreshIfOld(): void {
    if (performance.now() - this.#builtAt > REFRESH_MS) this.#maybeRebuild();
  }

  #maybeRebuild(): boolean {
    const now = performance.now();
    if (now - this.#builtAt < REBUILD_MS) return false;
    this.#builtAt = now;
    const frontends = this.#sources.frontends();
    const byId = new Map<number, ServiceRef>();
    const byNodePort = new Map<string, ServiceRef>();
    for (const p of this.#sources.programmed().values()) {
      const f = frontends.get(p.key);
      if (!f) continue;
      const ref = serviceRef(f);
      byId.set(p.serviceId, ref);
      if (f.kind === 'NodePort') byNodePort.set(`${f.port}|${f.protocol}`, ref);
    }
    // Ids of services that are gone stay known: late events still name what they were for.
    for (const [id, ref] of byId) this.#byId.set(id, ref);
    this.#byNodePort = byNodePort;
    return true;
  }
}

export function serviceRef(f: Frontend): ServiceRef {
  const slash = f.service.indexOf('/');
  return { namespace: f.service.slice(0, slash), name: f.service.slice(slash + 1), portName: f.portName };
}
