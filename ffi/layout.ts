/**
 * Struct layouts shared with the C library, and a view to read and write one
 * in a buffer by field name. Each struct the TypeScript side passes through
 * the FFI has exactly one {@link Layout}, in `ffi/structs/`, named and
 * spelled as in C: tests/abi_test.ts compares every offset and size with what
 * the compiler says (`vale_abi_layout`, c-src/core/abi.c), so a layout can no
 * longer drift from its C struct unnoticed.
 *
 * Everything is little-endian, as the machines vale runs on.
 *
 * @module
 */

/** Scalar type of a field (`char` is a fixed-size, NUL-padded string). */
export type FieldType = "u8" | "u16" | "u32" | "i32" | "u64" | "i64" | "char";

const WIDTH: Record<FieldType, number> = { u8: 1, u16: 2, u32: 4, i32: 4, u64: 8, i64: 8, char: 1 };

/** One field: byte offset, element type and element count (arrays). */
export interface Field {
  /** Byte offset in the struct (C's offsetof). */
  readonly offset: number;
  /** Element type. */
  readonly type: FieldType;
  /** Elements (1 for a scalar). */
  readonly count: number;
}

/** A C struct as TypeScript sees it: its C name, sizeof and fields. */
export interface Layout<K extends string = string> {
  /** The C struct name (`vale_open_req`). */
  readonly name: string;
  /** sizeof(struct name). */
  readonly size: number;
  /** Fields by their C names. */
  readonly fields: Readonly<Record<K, Field>>;
}

/**
 * Declares a layout: `fields` maps each C field name to `[offset, type]` or
 * `[offset, type, count]`. Throws at load time if a field does not fit.
 */
export function layout<K extends string>(
  name: string,
  size: number,
  fields: Record<K, readonly [number, FieldType] | readonly [number, FieldType, number]>,
): Layout<K> {
  const out = {} as Record<K, Field>;
  for (const k of Object.keys(fields) as K[]) {
    const [offset, type, count = 1] = fields[k];
    if (offset % Math.min(WIDTH[type], 8) !== 0 || offset + WIDTH[type] * count > size) {
      throw new Error(`ffi layout ${name}.${k}: offset ${offset} does not fit in ${size} bytes`);
    }
    out[k] = { offset, type, count };
  }
  return { name, size, fields: out };
}

const dec = new TextDecoder();
const enc = new TextEncoder();

/** A struct in a byte buffer, read and written by field name. */
export class Struct<K extends string> {
  /** The struct's bytes: pass this to the C function. */
  readonly bytes: Uint8Array<ArrayBuffer>;
  readonly #dv: DataView;
  readonly #layout: Layout<K>;

  /** A zeroed struct, or a view of `bytes` (at least the struct's size). */
  constructor(layout: Layout<K>, bytes?: Uint8Array<ArrayBuffer>) {
    this.#layout = layout;
    this.bytes = bytes ?? new Uint8Array(layout.size);
    if (this.bytes.length < layout.size) {
      throw new RangeError(`${layout.name}: ${this.bytes.length} bytes, needs ${layout.size}`);
    }
    this.#dv = new DataView(this.bytes.buffer, this.bytes.byteOffset, layout.size);
  }

  #at(k: K, i: number): [number, FieldType] {
    const f = this.#layout.fields[k];
    if (!(i >= 0 && i < f.count)) throw new RangeError(`${this.#layout.name}.${k}[${i}]`);
    return [f.offset + i * WIDTH[f.type], f.type];
  }

  /** Field `k` (element `i` of an array) as a number (64-bit values above 2^53 lose precision). */
  get(k: K, i = 0): number {
    const [o, t] = this.#at(k, i);
    return t === "u64" || t === "i64" ? Number(this.getBig(k, i)) : this.#scalar(o, t);
  }

  #scalar(o: number, t: FieldType): number {
    const dv = this.#dv;
    switch (t) {
      case "u8":
      case "char":
        return dv.getUint8(o);
      case "u16":
        return dv.getUint16(o, true);
      case "u32":
        return dv.getUint32(o, true);
      case "i32":
        return dv.getInt32(o, true);
      default:
        throw new TypeError(`${t} is not a 32-bit field`);
    }
  }

  /** A 64-bit field exactly. */
  getBig(k: K, i = 0): bigint {
    const [o, t] = this.#at(k, i);
    if (t === "u64") return this.#dv.getBigUint64(o, true);
    if (t === "i64") return this.#dv.getBigInt64(o, true);
    return BigInt(this.#scalar(o, t));
  }

  /** Sets field `k` (element `i`). */
  set(k: K, v: number | bigint, i = 0): this {
    const [o, t] = this.#at(k, i);
    const dv = this.#dv;
    switch (t) {
      case "u8":
      case "char":
        dv.setUint8(o, Number(v));
        break;
      case "u16":
        dv.setUint16(o, Number(v), true);
        break;
      case "u32":
        dv.setUint32(o, Number(v), true);
        break;
      case "i32":
        dv.setInt32(o, Number(v), true);
        break;
      case "u64":
        dv.setBigUint64(o, BigInt(v), true);
        break;
      case "i64":
        dv.setBigInt64(o, BigInt(v), true);
        break;
    }
    return this;
  }

  /** The bytes of field `k` (all its elements), zero-copy. */
  field(k: K): Uint8Array<ArrayBuffer> {
    const f = this.#layout.fields[k];
    return this.bytes.subarray(f.offset, f.offset + WIDTH[f.type] * f.count);
  }

  /** A `char[]` field up to its first NUL. */
  string(k: K): string {
    const b = this.field(k);
    const z = b.indexOf(0);
    return dec.decode(z < 0 ? b : b.subarray(0, z));
  }

  /** Stores `s` in a `char[]` field, NUL-terminated; false if it does not fit. */
  setString(k: K, s: string): boolean {
    const b = this.field(k);
    const e = enc.encode(s);
    if (e.length >= b.length) return false;
    b.fill(0);
    b.set(e);
    return true;
  }
}
