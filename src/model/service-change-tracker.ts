// Service changes in, the last valid version of each Service kept (kube-proxy's
// pkg/proxy/servicechangetracker.go): an invalid edit keeps the previous version, as a rejected
// apply would, and every Service whose version changed is marked for the next sync.
import { essence } from './essence.ts';
import { serviceName } from './frontends.ts';
import type { NamespacedName, Service } from './k8s.ts';
import type { ObjectErrors } from './object-errors.ts';
import { validateService, type ServiceValidationOptions } from './validate.ts';

export class ServiceChangeTracker {
  readonly #services = new Map<NamespacedName, Service>();
  readonly #pending: Set<NamespacedName>;
  readonly #errors: ObjectErrors;
  readonly #validation: ServiceValidationOptions;

  constructor(pending: Set<NamespacedName>, errors: ObjectErrors, validation: ServiceValidationOptions) {
    this.#pending = pending;
    this.#errors = errors;
    this.#validation = validation;
  }

  /** Records one change; returns whether the held Service changed. */
  update(previous: Service | undefined, current: Service | undefined): boolean {
    const name = serviceName((current ?? previous)!);
    if (!current) {
      this.#errors.delete(`Service ${name}`);
      if (!this.#services.delete(name)) return false;
      this.#pending.add(name);
      return true;
    }
    const problems = validateService(current, this.#validation);
    if (problems.length > 0) {
      this.#errors.set(`Service ${name}`, problems);
      return false;
    }
    this.#errors.delete(`Service ${name}`);
    const held = this.#services.get(name);
    if (held && essence(held) === essence(current)) return false;
    this.#services.set(name, current);
    this.#pending.add(name);
    return true;
  }

  get(name: NamespacedName): Service | undefined {
    return this.#services.get(name);
  }

  names(): IterableIterator<NamespacedName> {
    return this.#services.keys();
  }
}
