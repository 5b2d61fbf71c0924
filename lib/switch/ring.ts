/**
 * Zero-copy views of netmap rings in a port's shared memory.
 *
 * A {@link Ring} reads and writes head/cur/tail and the slots in place; a
 * slot's buffer is a Uint8Array over the shared buffer itself. Indices read
 * from shared memory are checked before use, so a misbehaving peer can give
 * us garbage frames but never make us read outside the mapping (out of range
 * views throw RangeError).
 *
 * @module
 */
import { RING, SLOT } from "../../ffi/structs/ring.ts";

/** Slot flags, as netmap. */
export const SlotFlags = {
  BUF_CHANGED: 0x1,
  REPORT: 0x2,
  FORWARD: 0x4,
  NO_LEARN: 0x8,
  INDIRECT: 0x10,
  MOREFRAG: 0x20,
} as const;

/** Bytes per buffer: every buffer of a switch. */
export const BUF_SIZE = 2048;
/** At most this many slots (fragments) per packet. */
export const MAX_FRAGS = 64;

// offsets of struct vale_ring / vale_slot (ffi/structs/ring.ts, checked against C)
const OFF_BUF_OFS = RING.fields.buf_ofs.offset;
const OFF_NUM_SLOTS = RING.fields.num_slots.offset;
const OFF_HEAD = RING.fields.head.offset;
const OFF_CUR = RING.fields.cur.offset;
const OFF_TAIL = RING.fields.tail.offset;
const OFF_SLOTS = RING.fields.slot.offset;
const SLOT_SIZE = SLOT.size;
const OFF_LEN = SLOT.fields.len.offset;
const OFF_FLAGS = SLOT.fields.flags.offset;

/** One ring of a port: the application's side of netmap's `struct netmap_ring`. */
export class Ring {
  /** Slots in the ring. */
  readonly numSlots: number;
  /** `tx` or `rx`. */
  readonly dir: "tx" | "rx";
  /** Ring number within the port. */
  readonly index: number;
  readonly #dv: DataView;
  readonly #u8: Uint8Array;
  readonly #off: number;
  readonly #bufBase: number;
  readonly #nbufs: number;

  /**
   * @param region the whole port region (shared memory)
   * @param offset of this ring in the region
   * @param bufOfs offset of buffer 0 in the region
   * @param nbufs buffers in the region
   * @param numSlots the ring size as the library validated it (vale_info)
   */
  constructor(
    region: ArrayBuffer,
    offset: number,
    bufOfs: number,
    nbufs: number,
    dir: "tx" | "rx",
    index: number,
    numSlots?: number,
  ) {
    this.#dv = new DataView(region);
    this.#u8 = new Uint8Array(region);
    this.#off = offset;
    this.#bufBase = bufOfs;
    this.#nbufs = nbufs;
    this.dir = dir;
    this.index = index;
    // The size the library validated (vale_info), when given: the ring header
    // is shared memory that another process may have scribbled on.
    const shared = this.#dv.getUint32(offset + OFF_NUM_SLOTS, true);
    this.numSlots = numSlots ?? shared;
    if (this.numSlots < 1 || this.numSlots > 4096 || shared !== this.numSlots) {
      throw new RangeError("damaged ring header");
    }
    // the C side checked the geometry; buf_ofs must agree with it
    const bo = Number(this.#dv.getBigInt64(offset + OFF_BUF_OFS, true));
    if (offset + bo !== bufOfs) throw new RangeError("damaged ring header (buf_ofs)");
  }

  /** First slot owned by the application. */
  get head(): number {
    return this.#dv.getUint32(this.#off + OFF_HEAD, true);
  }
  set head(v: number) {
    this.#dv.setUint32(this.#off + OFF_HEAD, v, true);
  }
  /** Wake-up point. */
  get cur(): number {
    return this.#dv.getUint32(this.#off + OFF_CUR, true);
  }
  set cur(v: number) {
    this.#dv.setUint32(this.#off + OFF_CUR, v, true);
  }
  /** First slot not owned by the application (set by the sync calls). */
  get tail(): number {
    return this.#dv.getUint32(this.#off + OFF_TAIL, true);
  }
  /** Set head and cur together, as netmap applications do. */
  advance(to: number): void {
    this.head = to;
    this.cur = to;
  }

  /** Next slot index after i. */
  next(i: number): number {
    return i + 1 === this.numSlots ? 0 : i + 1;
  }
  /** Slots between head and tail: free slots (tx) or received ones (rx). */
  space(): number {
    const h = this.head, t = this.tail, n = this.numSlots;
    if (h >= n || t >= n) return 0;
    return t >= h ? t - h : t + n - h;
  }
  /** Same as netmap's nm_ring_empty. */
  empty(): boolean {
    return this.head === this.tail;
  }

  #slot(i: number): number {
    if (!(i >= 0 && i < this.numSlots)) throw new RangeError(`slot ${i} out of range`);
    return this.#off + OFF_SLOTS + i * SLOT_SIZE;
  }
  /** Buffer index of slot i. */
  bufIdx(i: number): number {
    return this.#dv.getUint32(this.#slot(i), true);
  }
  /** Set slot i's buffer (set BUF_CHANGED too, as netmap wants). */
  setBufIdx(i: number, idx: number): void {
    this.#dv.setUint32(this.#slot(i), idx, true);
  }
  /** Length of slot i. */
  len(i: number): number {
    return this.#dv.getUint16(this.#slot(i) + OFF_LEN, true);
  }
  /** Set the length of slot i. */
  setLen(i: number, len: number): void {
    this.#dv.setUint16(this.#slot(i) + OFF_LEN, len, true);
  }
  /** Flags of slot i. */
  flags(i: number): number {
    return this.#dv.getUint16(this.#slot(i) + OFF_FLAGS, true);
  }
  /** Set the flags of slot i. */
  setFlags(i: number, f: number): void {
    this.#dv.setUint16(this.#slot(i) + OFF_FLAGS, f, true);
  }
  /** Byte offset of buffer `idx` in the region (checked). */
  bufferOffset(idx: number): number {
    if (!(idx >= 0 && idx < this.#nbufs)) throw new RangeError(`buffer index ${idx} out of range`);
    return this.#bufBase + idx * BUF_SIZE;
  }
  /** The whole buffer of slot i (BUF_SIZE bytes), zero-copy. */
  buffer(i: number): Uint8Array {
    const o = this.bufferOffset(this.bufIdx(i));
    return this.#u8.subarray(o, o + BUF_SIZE);
  }
  /** The frame bytes of slot i (its buffer cut to the slot's length), zero-copy. */
  frame(i: number): Uint8Array {
    const o = this.bufferOffset(this.bufIdx(i));
    const len = Math.min(this.len(i), BUF_SIZE);
    return this.#u8.subarray(o, o + len);
  }
  /** The underlying region bytes (for bulk copies by offset). */
  get bytes(): Uint8Array {
    return this.#u8;
  }
}
