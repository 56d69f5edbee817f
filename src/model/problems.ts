// One object's validation problems, collected field by field so that a caller sees every problem
// of an object at once (as the API server reports them), each naming the object and the field.
import { InvalidObjectError } from '../common/errors.ts';

export class Problems {
  readonly list: InvalidObjectError[] = [];
  readonly #object: string;
  constructor(object: string) {
    this.#object = object;
  }
  add(field: string, problem: string): void {
    this.list.push(new InvalidObjectError(this.#object, field, problem));
  }
}
