// The structural checks every manifest kind shares: a field of the wrong JSON type is a
// ShapeError naming its JSON path, which parse.ts turns into an issue naming file, object and field.
import { canonicalIp } from '../../common/ip.ts';

export type Json = null | boolean | number | string | readonly Json[] | { readonly [k: string]: Json };
export type JsonObject = { readonly [k: string]: Json };

export class ShapeError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(message);
    this.field = field;
  }
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function objectAt(parent: JsonObject, key: string, path: string): JsonObject | undefined {
  const v = parent[key];
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw new ShapeError(join(path, key), 'must be an object');
  return v;
}

export function arrayAt(parent: JsonObject, key: string, path: string): readonly Json[] | undefined {
  const v = parent[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new ShapeError(join(path, key), 'must be a list');
  return v as readonly Json[];
}

export function stringAt(parent: JsonObject, key: string, path: string): string | undefined {
  const v = parent[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new ShapeError(join(path, key), 'must be a string');
  return v;
}

export function ipAt(parent: JsonObject, key: string, path: string): void {
  const v = stringAt(parent, key, path);
  if (v !== undefined && v !== '' && canonicalIp(v) === undefined)
    throw new ShapeError(join(path, key), `${JSON.stringify(v)} is not an IP address`);
}

export function integerAt(
  parent: JsonObject,
  key: string,
  path: string,
  min: number,
  max: number,
): number | undefined {
  const v = parent[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw new ShapeError(join(path, key), `must be an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
  return v;
}

export function stringMapAt(parent: JsonObject, key: string, path: string): void {
  const m = objectAt(parent, key, path);
  if (!m) return;
  for (const [k, v] of Object.entries(m))
    if (typeof v !== 'string') throw new ShapeError(`${join(path, key)}.${k}`, 'must be a string');
}

export function stringListAt(parent: JsonObject, key: string, path: string): void {
  const list = arrayAt(parent, key, path);
  list?.forEach((v, i) => {
    if (typeof v !== 'string') throw new ShapeError(`${join(path, key)}[${i}]`, 'must be a string');
  });
}

export function objectListAt(parent: JsonObject, key: string, path: string): JsonObject[] {
  const list = arrayAt(parent, key, path) ?? [];
  return list.map((v, i) => {
    if (!isObject(v)) throw new ShapeError(`${join(path, key)}[${i}]`, 'must be an object');
    return v;
  });
}

export function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}
