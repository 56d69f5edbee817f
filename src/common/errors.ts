// Ferry's error classes. Each carries a stable code that scripts, metrics and `ferry status` can
// key on; the message names the object and the field at fault. Pure: the model imports this.

export type FerryErrorCode =
  | 'FERRY_E_INVALID_OBJECT'
  | 'FERRY_E_INVALID_ARGUMENT'
  | 'FERRY_E_MAP_FULL'
  | 'FERRY_E_BPF'
  | 'FERRY_E_NETLINK'
  | 'FERRY_E_LAB'
  | 'FERRY_E_EXEC'
  | 'FERRY_E_CNI'
  | 'FERRY_E_ALLOCATION'
  | 'FERRY_E_SOURCE';

export class FerryError extends Error {
  readonly code: FerryErrorCode;
  constructor(code: FerryErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A Kubernetes object (or manifest document) that fails validation. */
export class InvalidObjectError extends FerryError {
  readonly object: string;
  readonly field: string;
  /** @param object `Kind namespace/name`, e.g. `Service default/web`. @param field a JSON path, e.g. `spec.ports[1].port`. */
  constructor(object: string, field: string, problem: string) {
    super('FERRY_E_INVALID_OBJECT', `${object}: ${field}: ${problem}`);
    this.object = object;
    this.field = field;
  }
}

/** Bad CLI flag or API argument. */
export class InvalidArgumentError extends FerryError {
  constructor(message: string) {
    super('FERRY_E_INVALID_ARGUMENT', message);
  }
}

/** A BPF map has no room for an entry; names the map so the operator knows which size to raise. */
export class MapFullError extends FerryError {
  readonly map: string;
  constructor(map: string, detail = '') {
    super('FERRY_E_MAP_FULL', `BPF map ${map} is full${detail ? `: ${detail}` : ''}`);
    this.map = map;
  }
}

/** A failed libbpf / bpf(2) call: carries the operation and the errno name (`ENOENT`, `E2BIG` …). */
export class BpfError extends FerryError {
  readonly op: string;
  readonly errno: number;
  readonly errnoName: string;
  /** The verifier's log when a program load was rejected. */
  readonly verifierLog: string | undefined;
  constructor(op: string, errno: number, errnoName: string, detail?: string, verifierLog?: string) {
    const base = `${op}: ${errnoName}${detail ? ` (${detail})` : ''}`;
    super('FERRY_E_BPF', verifierLog ? `${base}\nverifier log:\n${verifierLog}` : base);
    this.op = op;
    this.errno = errno;
    this.errnoName = errnoName;
    this.verifierLog = verifierLog;
  }
}
