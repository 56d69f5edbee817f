// The frontend table a sync maintains: each Service's computed frontends, who owns each frontend
// key, and the minimal diff a set of recomputed Services makes. Two Services may define one
// frontend (a shared externalIP:port); one owns it, and when it lets go the next claimant in name
// order takes it over instead of the frontend vanishing.
import type { Frontend, FrontendDiff, FrontendTable, HealthCheck } from './frontend.ts';
import type { ServiceFrontends } from './frontends.ts';
import type { NamespacedName } from './k8s.ts';

/** Frontend keys a sync touched → the frontend each had before it. */
type Touched = Map<string, Frontend | undefined>;

function sameFrontend(a: Frontend | undefined, b: Frontend | undefined): boolean {
  return a !== undefined && b !== undefined && JSON.stringify(a) === JSON.stringify(b);
}

export class ServiceFrontendTable {
  readonly #computed = new Map<NamespacedName, ServiceFrontends>();
  readonly #table = new Map<string, Frontend>();
  readonly #owner = new Map<string, NamespacedName>();
  /** frontend key → every Service whose computed frontends include it. */
  readonly #claims = new Map<string, Set<NamespacedName>>();
  readonly #healthChecks = new Map<NamespacedName, HealthCheck>();

  /** Services with computed frontends (a deleted Service stays until a sync replaces it). */
  names(): IterableIterator<NamespacedName> {
    return this.#computed.keys();
  }

  view(): FrontendTable {
    return { frontends: this.#table, healthChecks: this.#healthChecks };
  }

  /**
   * Recomputes the given Services in the order given (`compute` undefined: the Service is gone)
   * and returns the diff; conflicts over a frontend key are appended to `warnings`.
   */
  update(
    names: Iterable<NamespacedName>,
    compute: (name: NamespacedName) => ServiceFrontends | undefined,
    warnings: string[],
  ): FrontendDiff {
    const touched: Touched = new Map();
    for (const name of names) {
      const after = compute(name);
      if (after !== undefined && after.warnings.length > 0) warnings.push(...after.warnings);
      this.#release(name, touched);
      this.#claim(name, after, touched, warnings);
      if (after) this.#computed.set(name, after);
      else this.#computed.delete(name);
      if (after?.healthCheck) this.#healthChecks.set(name, after.healthCheck);
      else this.#healthChecks.delete(name);
    }
    this.#passToHeirs(touched);
    return this.#diff(touched);
  }

  /** Drops the Service's claims, and the frontends it owned. */
  #release(name: NamespacedName, touched: Touched): void {
    for (const f of this.#computed.get(name)?.frontends ?? []) {
      const claimants = this.#claims.get(f.key);
      claimants?.delete(name);
      if (claimants?.size === 0) this.#claims.delete(f.key);
      if (this.#owner.get(f.key) !== name) continue;
      if (!touched.has(f.key)) touched.set(f.key, this.#table.get(f.key));
      this.#table.delete(f.key);
      this.#owner.delete(f.key);
    }
  }

  /** Claims the Service's new frontends, taking those no other Service owns. */
  #claim(name: NamespacedName, after: ServiceFrontends | undefined, touched: Touched, warnings: string[]): void {
    for (const f of after?.frontends ?? []) {
      let claimants = this.#claims.get(f.key);
      if (!claimants) this.#claims.set(f.key, (claimants = new Set()));
      claimants.add(name);
      const owner = this.#owner.get(f.key);
      if (owner !== undefined && owner !== name) {
        warnings.push(`${name}: frontend ${f.address}:${f.port}/${f.protocol} (${f.scope}) already belongs to ${owner}`);
        continue;
      }
      if (!touched.has(f.key)) touched.set(f.key, this.#table.get(f.key));
      this.#table.set(f.key, f);
      this.#owner.set(f.key, name);
    }
  }

  /** A frontend its owner let go goes to the first remaining claimant in name order. */
  #passToHeirs(touched: Touched): void {
    for (const key of touched.keys()) {
      if (this.#owner.has(key)) continue;
      const claimants = this.#claims.get(key);
      if (!claimants || claimants.size === 0) continue;
      const heir = [...claimants].sort()[0]!;
      const f = this.#computed.get(heir)?.frontends.find((x) => x.key === key);
      if (!f) continue;
      this.#table.set(key, f);
      this.#owner.set(key, heir);
    }
  }

  // In service-name order, then each service's own frontend order: deterministic without a sort.
  #diff(touched: Touched): FrontendDiff {
    const upsert: Frontend[] = [];
    const remove: Frontend[] = [];
    for (const [key, before] of touched) {
      const now = this.#table.get(key);
      if (now === undefined) {
        if (before) remove.push(before);
      } else if (!sameFrontend(before, now)) {
        upsert.push(now);
      }
    }
    return { upsert, remove };
  }
}
