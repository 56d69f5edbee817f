// Declarative struct layouts: a C struct's size and each member's offset and type, written once;
// encode and decode follow from it. Multi-byte fields the kernel compares with packet or socket
// data (ports) are `be16`; ids and counters are host order (little-endian on every target Ferry
// builds for). Unnamed bytes (pads) stay zero.
import { ADDRESS_SIZE, readAddress, writeAddress } from './address.ts';

export type FieldType = 'u8' | 'u16' | 'be16' | 'u32' | 'u64' | 'addr';

type FieldValue<T extends FieldType> = T extends 'u64' ? bigint : T extends 'addr' ? string : number;

export type Fields = Readonly<Record<string, readonly [offset: number, type: FieldType]>>;
export type Values<F extends Fields> = { readonly [K in keyof F]: FieldValue<F[K][1]> };

const WIDTH: Readonly<Record<FieldType, number>> = {
  u8: 1,
  u16: 2,
  be16: 2,
  u32: 4,
  u64: 8,
  addr: ADDRESS_SIZE,
};

export interface Layout<F extends Fields> {
  /** The C struct's name, for errors and the BTF check. */
  readonly name: string;
  readonly size: number;
  readonly fields: F;
  encode(values: Values<F>, buf?: Buffer): Buffer;
  decode(buf: Buffer): Values<F>;
}

function write(buf: Buffer, offset: number, type: FieldType, value: unknown, what: string): void {
  switch (type) {
    case 'u8':
      return void buf.writeUInt8(value as number, offset);
    case 'u16':
      return void buf.writeUInt16LE(value as number, offset);
    case 'be16':
      return void buf.writeUInt16BE(value as number, offset);
    case 'u32':
      return void buf.writeUInt32LE(value as number, offset);
    case 'u64':
      return void buf.writeBigUInt64LE(value as bigint, offset);
    case 'addr':
      return writeAddress(buf, offset, value as string, what);
  }
}

function read(buf: Buffer, offset: number, type: FieldType): number | bigint | string {
  switch (type) {
    case 'u8':
      return buf.readUInt8(offset);
    case 'u16':
      return buf.readUInt16LE(offset);
    case 'be16':
      return buf.readUInt16BE(offset);
    case 'u32':
      return buf.readUInt32LE(offset);
    case 'u64':
      return buf.readBigUInt64LE(offset);
    case 'addr':
      return readAddress(buf, offset);
  }
}

/** Defines a layout; throws at module load if a field runs past the struct (a typo, never data). */
export function struct<const F extends Fields>(name: string, size: number, fields: F): Layout<F> {
  const entries = Object.entries(fields);
  for (const [field, [offset, type]] of entries)
    if (offset < 0 || offset + WIDTH[type] > size)
      throw new RangeError(`struct ${name}.${field}: outside ${size} bytes`);
  return {
    name,
    size,
    fields,
    encode(values, buf = Buffer.alloc(size)) {
      buf.fill(0, 0, size);
      for (const [field, [offset, type]] of entries)
        write(buf, offset, type, values[field as keyof F], `${name}.${field}`);
      return buf;
    },
    decode(buf) {
      if (buf.length < size) throw new RangeError(`struct ${name}: ${buf.length} bytes, expected ${size}`);
      const out: Record<string, unknown> = {};
      for (const [field, [offset, type]] of entries) out[field] = read(buf, offset, type);
      return out as Values<F>;
    },
  };
}
