// The map layer: `MapLike` is the byte-level surface a writer needs (BpfMap has it, and so has
// the in-memory `MemoryMap` the tests use); `TypedMap` puts codecs on both sides of it so callers
// deal in values and the bytes stay at the boundary, as cilium/ebpf's Map does.
export interface MapLike {
  readonly name: string;
  lookup(key: Buffer): Buffer | undefined;
  update(key: Buffer, value: Buffer): void;
  delete(key: Buffer): boolean;
  entries(): Iterable<[Buffer, Buffer]>;
}

export interface Codec<T> {
  encode(value: T): Buffer;
  decode(buf: Buffer): T;
}

/**
 * Past this many entries an iteration stops with an error: a hash map walked while the datapath
 * inserts into it can restart from the first key, and a walk must end.
 */
export const DEFAULT_ITERATION_CAP = 1 << 22;

/** Yields from items, throwing once more than `cap` have come (`what` names the map). */
export function* capped<T>(items: Iterable<T>, cap: number, what: string): Generator<T> {
  let n = 0;
  for (const item of items) {
    if (++n > cap) throw new RangeError(`${what}: iteration passed ${cap} entries`);
    yield item;
  }
}

export class TypedMap<K, V> {
  readonly #map: MapLike;
  readonly #key: Codec<K>;
  readonly #value: Codec<V>;
  readonly #cap: number;

  constructor(
    map: MapLike,
    key: Codec<K>,
    value: Codec<V>,
    options: { readonly iterationCap?: number } = {},
  ) {
    this.#map = map;
    this.#key = key;
    this.#value = value;
    this.#cap = options.iterationCap ?? DEFAULT_ITERATION_CAP;
  }

  get name(): string {
    return this.#map.name;
  }

  get(key: K): V | undefined {
    const raw = this.#map.lookup(this.#key.encode(key));
    return raw === undefined ? undefined : this.#value.decode(raw);
  }

  set(key: K, value: V): void {
    this.#map.update(this.#key.encode(key), this.#value.encode(value));
  }

  delete(key: K): boolean {
    return this.#map.delete(this.#key.encode(key));
  }

  *entries(): Generator<[K, V]> {
    for (const [k, v] of capped(this.#map.entries(), this.#cap, this.#map.name))
      yield [this.#key.decode(k), this.#value.decode(v)];
  }
}

/** A MapLike in memory, keyed by the key's bytes: for tests and dry runs. */
export class MemoryMap implements MapLike {
  readonly name: string;
  readonly #entries = new Map<string, [Buffer, Buffer]>();

  constructor(name: string) {
    this.name = name;
  }

  get size(): number {
    return this.#entries.size;
  }

  lookup(key: Buffer): Buffer | undefined {
    const hit = this.#entries.get(key.toString('hex'));
    return hit && Buffer.from(hit[1]);
  }

  update(key: Buffer, value: Buffer): void {
    this.#entries.set(key.toString('hex'), [Buffer.from(key), Buffer.from(value)]);
  }

  delete(key: Buffer): boolean {
    return this.#entries.delete(key.toString('hex'));
  }

  *entries(): Generator<[Buffer, Buffer]> {
    for (const [k, v] of [...this.#entries.values()]) yield [Buffer.from(k), Buffer.from(v)];
  }
}
