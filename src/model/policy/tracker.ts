// NetworkPolicy changes in, the last valid version of each policy kept, as the Service tracker
// does (../service-change-tracker.ts): an invalid edit is reported by object and field and the
// previous version stays in force, as a rejected apply would leave it; a no-op update is dropped.
import type { InvalidObjectError } from '../../common/errors.ts';
import { ObjectErrors } from '../object-errors.ts';
import type { NetworkPolicy } from './api.ts';
import { policyKey } from './api.ts';
import { describePolicy, validateNetworkPolicy } from './validate.ts';

/** The fields that decide behaviour: a resourceVersion bump alone changes nothing. */
function essence(policy: NetworkPolicy): string {
  return JSON.stringify([policy.metadata.namespace ?? 'default', policy.metadata.name, policy.spec]);
}

export class PolicyTracker {
  readonly #policies = new Map<string, NetworkPolicy>();
  readonly #errors = new ObjectErrors();

  /** Records one change; returns whether the policy in force changed. */
  update(previous: NetworkPolicy | undefined, current: NetworkPolicy | undefined): boolean {
    const object = (current ?? previous)!;
    const key = policyKey(object);
    if (!current) {
      this.#errors.delete(describePolicy(object));
      return this.#policies.delete(key);
    }
    const problems = validateNetworkPolicy(current);
    if (problems.length > 0) {
      this.#errors.set(describePolicy(current), problems);
      return false;
    }
    this.#errors.delete(describePolicy(current));
    const held = this.#policies.get(key);
    if (held && essence(held) === essence(current)) return false;
    this.#policies.set(key, current);
    return true;
  }

  /** The policies in force, by namespace/name: the order never matters to the decision, but stays stable. */
  policies(): NetworkPolicy[] {
    return [...this.#policies.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, p]) => p);
  }

  /** Every refused version still awaiting a fix, each problem naming object and field. */
  errors(): InvalidObjectError[] {
    return this.#errors.all();
  }
}
