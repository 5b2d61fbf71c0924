/**
 * `struct vale_ring` and `struct vale_slot` (c-src/include/vale.h): the netmap ring
 * header and slots in a port's shared memory. lib/switch/ring.ts reads them in
 * place (no copy), by these offsets.
 *
 * @module
 */
import { layout } from "../layout.ts";

/** The ring header (64 bytes before the slots; the slots follow at `slot`). */
export const RING = layout("vale_ring", 64, {
  buf_ofs: [0, "i64"],
  num_slots: [8, "u32"],
  nr_buf_size: [12, "u32"],
  head: [24, "u32"],
  cur: [28, "u32"],
  tail: [32, "u32"],
  slot: [64, "u8", 0],
});

/** One slot (16 bytes). */
export const SLOT = layout("vale_slot", 16, {
  buf_idx: [0, "u32"],
  len: [4, "u16"],
  flags: [6, "u16"],
});
