// The objects the model refused, by `Kind namespace/name`: each tracker records its own, and the
// model reports them all in the order they were first refused.
import type { InvalidObjectError } from '../common/errors.ts';

export class ObjectErrors {
  readonly #errors = new Map<string, InvalidObjectError[]>();

  set(object: string, problems: InvalidObjectError[]): void {
    this.#errors.set(object, problems);
  }

  delete(object: string): void {
    this.#errors.delete(object);
  }

  all(): InvalidObjectError[] {
    return [...this.#errors.values()].flat();
  }
}
