// The refusal the allocator and its family rules share.
import { FerryError } from '../../common/errors.ts';

/** A Service the allocator refused; names the Service, the field and, for a collision, the holder. */
export class AllocationError extends FerryError {
  readonly object: string;
  readonly field: string;
  constructor(object: string, field: string, problem: string) {
    super('FERRY_E_ALLOCATION', `${object}: ${field}: ${problem}`);
    this.object = object;
    this.field = field;
  }
}
